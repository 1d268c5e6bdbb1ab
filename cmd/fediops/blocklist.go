package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/fediops/fediops/cmd/fediops/internal/screen"
	"github.com/fediops/fediops/functions/blocklist"
	"github.com/fediops/fediops/functions/blocklist/lists"
	"github.com/fediops/fediops/functions/blocklist/plan"
)

func (c *cli) blocklistCmd() *cobra.Command {
	var rebase []string
	cmd := &cobra.Command{
		Use:   "blocklist",
		Short: "Blocklist sync: merge federation blocklists and apply them to instances",
	}
	cmd.PersistentFlags().StringArrayVar(&rebase, "rebase", nil, "OLD=NEW: read file:// sources under OLD from NEW (FediBlockHole configs name their own machine's paths)")
	opts := func() (blocklist.RunOptions, error) {
		var ro blocklist.RunOptions
		for _, r := range rebase {
			old, nw, ok := strings.Cut(r, "=")
			if !ok || old == "" {
				return ro, fail(exitConfig, fmt.Errorf("--rebase %q: want OLD=NEW", r))
			}
			if !strings.Contains(old, "://") {
				old = "file://" + old
			}
			ro.Rebase = append(ro.Rebase, [2]string{old, nw})
		}
		return ro, nil
	}
	cmd.AddCommand(c.blocklistMergeCmd(opts), c.blocklistPlanCmd(opts), c.blocklistSyncCmd(opts),
		c.blocklistApplyCmd(), c.blocklistSnapshotsCmd(), c.blocklistRollbackCmd())
	return cmd
}

func (c *cli) blocklistMergeCmd(opts func() (blocklist.RunOptions, error)) *cobra.Command {
	var out, format, report string
	var timeout *time.Duration
	cmd := &cobra.Command{
		Use:   "merge",
		Short: "Fetch and merge the configured sources; write the merged list",
		Long: "Writes the merged list (default: Mastodon's import CSV to stdout), prints a per-source\n" +
			"summary to stderr, and the same as JSON with --report. Exit 0 when the merged list was\n" +
			"produced, even if some sources failed (the summary says which), 2 on a configuration error.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ro, err := opts()
			if err != nil {
				return err
			}
			if format != "mastodon" && format != "fediblockhole" && format != "json" {
				return fail(exitConfig, fmt.Errorf("--format %q: use mastodon, fediblockhole or json", format))
			}
			ctx, env, done, err := c.timedEnv(cmd.Context(), *timeout, "blocklist")
			if err != nil {
				return err
			}
			defer done()
			sec, err := blocklist.LoadSection(env.Config)
			if err != nil {
				return fail(exitConfig, err)
			}
			ro.MergeOnly = true
			rep, err := blocklist.RunSection(ctx, env, sec, blocklist.Message{}, ro)
			if err != nil {
				return err
			}
			w := c.stdout
			if out != "" {
				f, err := os.Create(out)
				if err != nil {
					return err
				}
				defer f.Close()
				w = f
			}
			blocks := rep.Run.Result.Blocks
			switch format {
			case "fediblockhole":
				err = lists.WriteFediBlockHoleCSV(w, blocks, sec.ExportFields)
			case "json":
				err = lists.WriteJSON(w, blocks)
			default:
				err = lists.WriteMastodonCSV(w, blocks)
			}
			if err != nil {
				return err
			}
			c.printMergeSummary(c.stderr, rep.Merge)
			if report != "" {
				b, err := json.MarshalIndent(rep.Merge, "", "  ")
				if err != nil {
					return err
				}
				if err := os.WriteFile(report, append(b, '\n'), 0o644); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "write the merged list to FILE (default stdout)")
	cmd.Flags().StringVar(&format, "format", "mastodon", "mastodon (import CSV), fediblockhole (its own CSV) or json (admin domain-block objects)")
	cmd.Flags().StringVar(&report, "report", "", "write the per-source report as JSON to FILE")
	timeout = timeoutFlag(cmd)
	return cmd
}

// printMergeSummary prints a table of the sources (status, rows read and used, what was
// skipped, the error) fitted to the terminal, and the merge's counts.
func (c *cli) printMergeSummary(w io.Writer, r *blocklist.MergeReport) {
	t := screen.Table{Header: []string{"SOURCE", "STATUS", "ROWS", "USED", "SKIPPED"}, Right: []int{2, 3}, Lead: 2}
	withErrors := slices.ContainsFunc(r.Sources, func(s blocklist.SourceReport) bool { return s.Error != "" })
	if withErrors {
		t.Header = append(t.Header, "ERROR")
	}
	withNotes := slices.ContainsFunc(r.Sources, func(s blocklist.SourceReport) bool { return s.Note != "" })
	if withNotes {
		t.Header = append(t.Header, "NOTE")
	}
	for _, s := range r.Sources {
		var sk []string
		for k, v := range s.Skipped {
			sk = append(sk, fmt.Sprintf("%s %d", k, v))
		}
		sort.Strings(sk)
		name := s.Name
		if s.Allowlist {
			name += " (allowlist)"
		}
		row := []string{name, string(s.Status), strconv.Itoa(s.Rows), strconv.Itoa(s.Used), strings.Join(sk, ", ")}
		if withErrors {
			row = append(row, s.Error)
		}
		if withNotes {
			row = append(row, s.Note)
		}
		t.Rows = append(t.Rows, row)
	}
	_ = t.Write(w, c.tableWidth(w))
	fmt.Fprintf(w, "merged: %d entries; %d source(s) failed; %d bytes of new data archived; snapshot %s\n", r.Merged, r.Failed, r.StoredBytes, r.Snapshot)
}

func (c *cli) blocklistPlanCmd(opts func() (blocklist.RunOptions, error)) *cobra.Command {
	var instances []string
	var asJSON bool
	var timeout *time.Duration
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Show what a sync would do (a dry run): action, domain, from → to, reason",
		Long: "Plans a sync of every destination without changing anything and prints, per destination,\n" +
			"a table (action, domain, from → to, reason), wrapped to the terminal's width (--wide prints\n" +
			"every cell whole), or with --json one complete JSON line per action.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ro, err := opts()
			if err != nil {
				return err
			}
			ctx, env, done, err := c.timedEnv(cmd.Context(), *timeout, "blocklist")
			if err != nil {
				return err
			}
			defer done()
			dry := true
			rep, err := blocklist.RunConfigured(ctx, env, blocklist.Message{DryRun: &dry, Instances: instances}, ro)
			for _, o := range rep.Outcomes {
				if o.Plan == nil {
					continue
				}
				if asJSON {
					enc := json.NewEncoder(c.stdout)
					for _, a := range o.Plan.Actions {
						if err := enc.Encode(struct {
							Instance string `json:"instance"`
							plan.Action
						}{o.Instance, a}); err != nil {
							return err
						}
					}
					for _, s := range o.Plan.Skipped {
						if err := enc.Encode(struct {
							Instance string `json:"instance"`
							Action   string `json:"action"`
							plan.Skip
						}{o.Instance, "skip", s}); err != nil {
							return err
						}
					}
					continue
				}
				c.printPlan(c.stdout, o)
			}
			return err
		},
	}
	cmd.Flags().StringSliceVar(&instances, "instance", nil, "only these destinations")
	cmd.Flags().BoolVar(&asJSON, "json", false, "JSON lines instead of a table")
	timeout = timeoutFlag(cmd)
	return cmd
}

func sev(f *plan.Fields) string {
	if f == nil {
		return "-"
	}
	return f.Severity.String()
}

// printPlan prints a destination's counts and a table of its plan, fitted to the terminal.
func (c *cli) printPlan(w io.Writer, o *blocklist.Outcome) {
	fmt.Fprintf(w, "%s (%s): %d to create, %d to update, %d to remove, %d skipped\n", o.Instance, o.Server,
		o.Plan.Count(plan.Create), o.Plan.Count(plan.Update), o.Plan.Count(plan.Remove), len(o.Plan.Skipped))
	t := screen.Table{Header: []string{"ACTION", "DOMAIN", "FROM → TO", "REASON"}, Indent: "  ", Lead: 2}
	for _, a := range o.Plan.Actions {
		reason := a.Reason
		if a.FollowCheck {
			reason += " (follows checked before suspending)"
		}
		t.Rows = append(t.Rows, []string{string(a.Kind), a.Domain, sev(a.From) + " → " + sev(a.To), reason})
	}
	for _, s := range o.Plan.Skipped {
		t.Rows = append(t.Rows, []string{"skip", s.Domain, "", string(s.Reason) + ": " + s.Detail})
	}
	_ = t.Write(w, c.tableWidth(w))
}

func (c *cli) blocklistSyncCmd(opts func() (blocklist.RunOptions, error)) *cobra.Command {
	var instances []string
	var dryRun bool
	var timeout *time.Duration
	cmd := &cobra.Command{
		Use:   "sync",
		Short: "Run the blocklist job once, as the BlocklistSync function does",
		Long: "Merges the sources and syncs every destination. On a terminal, a status line on stderr\n" +
			"shows how far the changes are (done / total) and when the run waits for the server's\n" +
			"rate-limit window.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ro, err := opts()
			if err != nil {
				return err
			}
			msg := blocklist.Message{Instances: instances}
			if cmd.Flags().Changed("dry-run") {
				msg.DryRun = &dryRun
			}
			return c.runBlocklist(cmd, msg, ro, *timeout)
		},
	}
	cmd.Flags().StringSliceVar(&instances, "instance", nil, "only these destinations")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "plan and report, change nothing")
	timeout = timeoutFlag(cmd)
	return cmd
}

// runBlocklist runs the job and prints one summary line per destination. On a terminal, a
// status line shows the progress while it runs.
func (c *cli) runBlocklist(cmd *cobra.Command, msg blocklist.Message, ro blocklist.RunOptions, timeout time.Duration) error {
	ctx, env, done, err := c.timedEnv(cmd.Context(), timeout, "blocklist")
	if err != nil {
		return err
	}
	defer done()
	if c.status != nil {
		ro.Progress = &progress{status: c.status}
	}
	rep, err := blocklist.RunConfigured(ctx, env, msg, ro)
	if c.status != nil {
		c.status.Clear()
	}
	if rep.Merge != nil {
		c.printMergeSummary(c.stderr, rep.Merge)
	}
	failed := false
	for _, o := range rep.Outcomes {
		fmt.Fprintln(c.stdout, o.Summary())
		failed = failed || o.Failed > 0 || o.Held != ""
	}
	if err != nil {
		return err
	}
	if failed {
		return fail(exitFailed, fmt.Errorf("some changes failed or were held back"))
	}
	return nil
}

func (c *cli) blocklistApplyCmd() *cobra.Command {
	var id string
	var timeout *time.Duration
	cmd := &cobra.Command{
		Use:   "apply --plan ID",
		Short: "Apply a plan that a guard held back (its id is in the ERROR log line)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if id == "" {
				return fail(exitConfig, fmt.Errorf("--plan is required"))
			}
			return c.runBlocklist(cmd, blocklist.Message{ApplyPlan: id}, blocklist.RunOptions{}, *timeout)
		},
	}
	cmd.Flags().StringVar(&id, "plan", "", "the held plan's id")
	timeout = timeoutFlag(cmd)
	return cmd
}

func (c *cli) blocklistSnapshotsCmd() *cobra.Command {
	var instance string
	cmd := &cobra.Command{
		Use:   "snapshots",
		Short: "List the archived runs (oldest first) usable with rollback",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			env, err := c.env(cmd.Context(), "blocklist")
			if err != nil {
				return err
			}
			defer env.Close()
			snaps, err := blocklist.ListSnapshots(cmd.Context(), env.Store, instance)
			if err != nil {
				return err
			}
			for _, s := range snaps {
				fmt.Fprintf(c.stdout, "%s  %s\n", s.ID, strings.Join(s.Instances, ","))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&instance, "instance", "", "only snapshots of this destination")
	return cmd
}

func (c *cli) blocklistRollbackCmd() *cobra.Command {
	var to string
	var instances []string
	var dryRun bool
	var timeout *time.Duration
	cmd := &cobra.Command{
		Use:   "rollback --to SNAPSHOT",
		Short: "Return the owned blocks to their state in a snapshot (manual blocks are never touched)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if to == "" {
				return fail(exitConfig, fmt.Errorf("--to is required (see `fediops blocklist snapshots`)"))
			}
			msg := blocklist.Message{Instances: instances}
			if dryRun {
				msg.DryRun = &dryRun
			}
			return c.runBlocklist(cmd, msg, blocklist.RunOptions{Rollback: to}, *timeout)
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "snapshot id")
	cmd.Flags().StringSliceVar(&instances, "instance", nil, "only these destinations")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show what the rollback would do")
	timeout = timeoutFlag(cmd)
	return cmd
}

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/fediops/fediops/cmd/fediops/internal/screen"
	"github.com/fediops/fediops/functions/backupaudit"
	"github.com/fediops/fediops/shared/clock"
)

func (c *cli) backupCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Backup audit: prove that the instance's backups exist, are fresh and cover what they should",
	}
	var asJSON, dryRun bool
	var timeout *time.Duration
	audit := &cobra.Command{
		Use:   "audit",
		Short: "Run the backup audit once, as the BackupAudit function does",
		Long: "Prints a table (check, target, status, observed, expected, hint) or, with --json, one JSON\n" +
			"object {\"checks\": [...], \"summary\": {...}}. On a terminal, long cells are wrapped to its\n" +
			"width (--wide prints them whole). The report is also archived.\n" +
			"With --dry-run the leftover-pods cleanup (delete_leftover_pods_older_than) says what it\n" +
			"would delete and deletes nothing.\n" +
			"Exit code 0 when no check fails, 1 when one does, 2 on a configuration error.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, env, done, err := c.timedEnv(cmd.Context(), *timeout)
			if err != nil {
				return err
			}
			defer done()
			r, where, err := backupaudit.RunConfiguredWith(ctx, env, backupaudit.AuditOptions{DryRun: dryRun})
			if err != nil {
				return err
			}
			if asJSON {
				if err := json.NewEncoder(c.stdout).Encode(r); err != nil {
					return err
				}
			} else {
				if err := c.printAudit(c.stdout, r); err != nil {
					return err
				}
				fmt.Fprintf(c.stdout, "report archived at %s\n", where)
			}
			if r.Summary.Fail > 0 {
				return fail(exitFailed, fmt.Errorf("%d backup check(s) failed", r.Summary.Fail))
			}
			return nil
		},
	}
	audit.Flags().BoolVar(&asJSON, "json", false, "one JSON object instead of a table")
	audit.Flags().BoolVar(&dryRun, "dry-run", false, "the leftover-pods cleanup only says what it would delete")
	timeout = timeoutFlag(audit)
	cmd.AddCommand(audit, c.drillCmd())
	return cmd
}

func (c *cli) drillCmd() *cobra.Command {
	var start, status, asJSON bool
	var timeout, poll time.Duration
	cmd := &cobra.Command{
		Use:   "drill",
		Short: "Restore drill: clone the database at a point in time, verify it, measure RTO/RPO, delete the clone",
		Long: "Advances the restore drill of every [[backup.cloudsql]] entry with drill = true, as the\n" +
			"scheduled {\"drill\": \"advance\"} message does, but without the function's deadline: it\n" +
			"waits for the clone and goes on until the drill is done (or --timeout).\n" +
			"  --start   start a drill (as the monthly {\"drill\": \"start\"}); one in progress is advanced\n" +
			"  --status  show the drills as the archive has them; no Google API is called\n" +
			"Exit code 1 when a finished drill has a failed check, 2 on a configuration error.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if start && status {
				return fail(exitConfig, errors.New("--start and --status do not go together"))
			}
			action := backupaudit.DrillAdvance
			switch {
			case start:
				action = backupaudit.DrillStart
			case status:
				action = backupaudit.DrillStatus
			}
			env, err := c.env(cmd.Context(), "backup")
			if err != nil {
				return err
			}
			defer env.Close()
			ctx := cmd.Context()
			if timeout > 0 {
				ctx = clock.WithDeadline(ctx, env.Clock.Now().Add(timeout))
			}
			out, err := backupaudit.RunDrill(ctx, env, action, backupaudit.DrillOptions{Poll: poll})
			if asJSON {
				if jerr := json.NewEncoder(c.stdout).Encode(drillJSON(out)); jerr != nil {
					return jerr
				}
			} else {
				c.printDrills(c.stdout, out, env.Clock.Now())
			}
			if err != nil {
				return err
			}
			for _, o := range out {
				if !o.State.InProgress() && o.Exists && failed(o.State.Checks) > 0 {
					return fail(exitFailed, fmt.Errorf("the restore drill of %s failed %d check(s)", o.Target, failed(o.State.Checks)))
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&start, "start", false, "start a drill")
	cmd.Flags().BoolVar(&status, "status", false, "show the drills' state only")
	cmd.Flags().BoolVar(&asJSON, "json", false, "JSON instead of tables")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "stop waiting after this long (the next run continues); default: until the drill is done")
	cmd.Flags().DurationVar(&poll, "poll", backupaudit.DefaultDrillPoll, "pause between two looks at the clone")
	return cmd
}

func failed(checks []backupaudit.Check) int {
	n := 0
	for _, c := range checks {
		if c.Status == backupaudit.Fail {
			n++
		}
	}
	return n
}

type drillView struct {
	Target string                  `json:"target"`
	Exists bool                    `json:"exists"`
	Held   bool                    `json:"held,omitempty"`
	Error  string                  `json:"error,omitempty"`
	State  *backupaudit.DrillState `json:"state,omitempty"`
}

func drillJSON(out []backupaudit.DrillOutcome) []drillView {
	views := make([]drillView, 0, len(out))
	for _, o := range out {
		v := drillView{Target: o.Target.String(), Exists: o.Exists, Held: o.Held}
		if o.Err != nil {
			v.Error = o.Err.Error()
		}
		if o.Exists {
			s := o.State
			v.State = &s
		}
		views = append(views, v)
	}
	return views
}

// printDrills writes one block per drilled instance: where its drill is, and its checks.
func (c *cli) printDrills(w io.Writer, out []backupaudit.DrillOutcome, now time.Time) {
	for i, o := range out {
		if i > 0 {
			fmt.Fprintln(w)
		}
		s := o.State
		switch {
		case o.Held:
			fmt.Fprintf(w, "%s: another run is advancing this drill right now; nothing done\n", o.Target)
			continue
		case !o.Exists:
			fmt.Fprintf(w, "%s: no drill yet (start one with: fediops backup drill --start)\n", o.Target)
			continue
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "drill of\t%s\n", o.Target)
		fmt.Fprintf(tw, "clone\t%s\n", s.Clone)
		fmt.Fprintf(tw, "phase\t%s\n", s.Phase)
		fmt.Fprintf(tw, "started\t%s (%s ago)\n", s.Started.UTC().Format("2006-01-02 15:04 UTC"), now.Sub(s.Started).Round(time.Second))
		if !s.PointInTime.IsZero() {
			fmt.Fprintf(tw, "point in time\t%s\n", s.PointInTime.UTC().Format("2006-01-02 15:04:05 UTC"))
		}
		if s.InProgress() {
			fmt.Fprintf(tw, "deadline\t%s (the clone is deleted then, whatever happens)\n", s.Deadline.UTC().Format("2006-01-02 15:04 UTC"))
		} else {
			fmt.Fprintf(tw, "measured\t%s\n", s.Measures())
		}
		fmt.Fprintf(tw, "last step\t%s\n", s.Note)
		if len(s.Swept) > 0 {
			fmt.Fprintf(tw, "swept\t%s\n", strings.Join(s.Swept, ", "))
		}
		if s.Report != "" {
			fmt.Fprintf(tw, "report\t%s\n", s.Report)
		}
		_ = tw.Flush()
		if len(s.Checks) > 0 {
			fmt.Fprintln(w)
			_ = c.printAudit(w, backupaudit.NewReport(s.Checks))
		}
		if o.Err != nil {
			fmt.Fprintf(w, "error: %v\n", o.Err)
		}
	}
}

// printAudit prints the audit's table, fitted to the terminal, and its summary line.
func (c *cli) printAudit(w io.Writer, r backupaudit.Report) error {
	header, rows := backupaudit.Table(r)
	if err := (screen.Table{Header: header, Rows: rows, Lead: 3}).Write(w, c.tableWidth(w)); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\n%s\n", backupaudit.SummaryLine(r))
	return err
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/fediops/fediops/cmd/fediops/internal/screen"
	"github.com/fediops/fediops/functions/approve"
	"github.com/fediops/fediops/shared/config"
	"github.com/fediops/fediops/shared/setup"
)

// triage presets and triage email-blocks plan|sync.

func (c *cli) triagePresetsCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "presets",
		Short: "Print the presets: the public-sector table with its sources, webmail, disposable",
		Long: "Print the lists that approve_presets and reject_presets name. They are a starting point to\n" +
			"review, not a verdict: every public-sector row names the registry page that restricts the\n" +
			"suffix to public bodies. To propose a row, see functions/approve/presets/README.md.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			public, err := approve.PublicSectorTable()
			if err != nil {
				return err
			}
			webmail, err := approve.WebmailTable()
			if err != nil {
				return err
			}
			hosts, err := approve.MailHosts()
			if err != nil {
				return err
			}
			if asJSON {
				var web []string
				for _, w := range webmail {
					web = append(web, w[0])
				}
				return json.NewEncoder(c.stdout).Encode(map[string]any{
					approve.PresetPublicSector: public, approve.PresetWebmail: web,
					approve.PresetDisposable: map[string]string{"source": approve.DisposableListURL}, "mail_hosts": hosts,
				})
			}
			c.printPresets(public, webmail, hosts)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (c *cli) printPresets(public []approve.PresetRow, webmail [][2]string, hosts map[string]string) {
	w := c.tableWidth(c.stdout)
	fmt.Fprintf(c.stdout, "approve_presets = [%q]: %d suffixes whose registry admits public bodies only\n", approve.PresetPublicSector, len(public))
	t := screen.Table{Header: []string{"SUFFIX", "COUNTRY OR BODY", "WHO MAY REGISTER", "SOURCE"}, Indent: "  ", Lead: 2}
	for _, r := range public {
		t.Rows = append(t.Rows, []string{r.Suffix, r.Body, r.Note, r.Source})
	}
	_ = t.Write(c.stdout, w)
	var web []string
	for _, r := range webmail {
		web = append(web, r[0])
	}
	fmt.Fprintf(c.stdout, "\nreject_presets = [%q]: %d free-mail domains\n  %s\n", approve.PresetWebmail, len(web), strings.Join(web, " "))
	fmt.Fprintf(c.stdout, "\nreject_presets = [%q]: read from the maintained list\n  %s\n", approve.PresetDisposable, approve.DisposableListURL)
	names := make([]string, 0, len(hosts))
	for d := range hosts {
		names = append(names, d)
	}
	sort.Strings(names)
	fmt.Fprintln(c.stdout, "\nNever made email-domain blocks (they also name other organisations' mail servers):")
	for _, d := range names {
		fmt.Fprintf(c.stdout, "  %s: %s\n", d, hosts[d])
	}
	fmt.Fprintln(c.stdout, "\nPresets are a starting point: review them against your instance's rules.")
}

func (c *cli) triageEmailBlocksCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "email-blocks",
		Short: "Keep the instances' email-domain blocks equal to the reject list (Mastodon)",
		Long: "Mastodon refuses sign-ups from blocked email domains at the form. plan shows what a sync\n" +
			"would change; sync applies it (as the Approve function does when sync_email_domain_blocks is\n" +
			"on), or with --apply-plan approves a plan that a guard held back.",
	}
	cmd.AddCommand(c.emailBlocksRunCmd("plan"), c.emailBlocksRunCmd("sync"))
	return cmd
}

func (c *cli) emailBlocksRunCmd(mode string) *cobra.Command {
	var instances []string
	var dryRun bool
	var applyPlan string
	var timeout *time.Duration
	cmd := &cobra.Command{
		Use:   mode,
		Short: "Show what a sync would change on each instance (nothing changes)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, env, done, err := c.timedEnv(cmd.Context(), *timeout, "triage")
			if err != nil {
				return err
			}
			defer done()
			if applyPlan != "" && len(instances) != 1 {
				return fail(exitConfig, errors.New("--apply-plan needs the plan's --instance"))
			}
			return c.emailBlocks(ctx, env, instances, mode == "plan" || dryRun, applyPlan)
		},
	}
	if mode == "sync" {
		cmd.Short = "Create and remove the email-domain blocks fediops owns so they match the reject list"
		cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show what would be done, change nothing")
		cmd.Flags().StringVar(&applyPlan, "apply-plan", "", "approve a plan a guard held back (its id is in the ERROR log line) and apply it")
	}
	cmd.Flags().StringSliceVar(&instances, "instance", nil, "only these instances (default: every triage instance)")
	timeout = timeoutFlag(cmd)
	return cmd
}

func (c *cli) emailBlocks(ctx context.Context, env *setup.Env, names []string, dryRun bool, applyPlan string) error {
	sec, err := approve.LoadSection(env.Config)
	if err != nil {
		return fail(exitConfig, err)
	}
	insts := sec.InstancesOf(env.Config)
	for _, n := range names {
		if !slices.ContainsFunc(insts, func(i config.Instance) bool { return i.Name == n }) {
			return fail(exitConfig, fmt.Errorf("--instance %q is not one of triage's instances", n))
		}
	}
	lists, err := approve.ReadLists(ctx, env, sec)
	if err != nil {
		return fail(exitConfig, err)
	}
	runID := setup.RunID(env.Clock.Now())
	var problems []string
	for _, inst := range insts {
		if len(names) > 0 && !slices.Contains(names, inst.Name) {
			continue
		}
		tr := sec.For(inst.Name)
		rules, err := sec.RulesFor(tr, lists)
		if err != nil {
			return fail(exitConfig, fmt.Errorf("instance %s: %w", inst.Name, err))
		}
		client, err := env.Mastodon(ctx, inst)
		if err != nil {
			return err
		}
		eo := tr.EmailBlocks
		eo.ApplyPlan = applyPlan
		out, err := approve.SyncEmailBlocks(ctx, approve.Deps{Accounts: client, EmailBlocks: client, Store: env.Store, Clock: env.Clock, Log: env.Log},
			approve.EmailBlocksOptions{Instance: inst.Name, Rules: rules, DryRun: dryRun, LeaseTTL: tr.LeaseTTL, RunID: runID, Blocks: eo})
		c.printEmailBlocks(out)
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("%s: %v", inst.Name, err))
		case out.Failed > 0 || out.Held != "" || out.Refused != "":
			problems = append(problems, inst.Name+": some changes failed, were held back or refused")
		}
	}
	if len(problems) > 0 {
		return fail(exitFailed, errors.New(strings.Join(problems, "; ")))
	}
	return nil
}

// printEmailBlocks prints an email-domain block sync: what was (or would be) done, what was
// left alone and why, a held plan.
func (c *cli) printEmailBlocks(out *approve.EmailBlocksOutcome) {
	if out == nil {
		return
	}
	mode := "applied"
	if out.DryRun {
		mode = "dry run, nothing changed"
	}
	switch {
	case out.Unsupported != "":
		fmt.Fprintf(c.stdout, "%s email-domain blocks: not supported (%s); nothing changed\n", out.Instance, out.Unsupported)
		return
	case out.Refused != "":
		fmt.Fprintf(c.stdout, "%s email-domain blocks: not synced: %s\n", out.Instance, out.Refused)
		return
	case out.Plan == nil:
		fmt.Fprintf(c.stdout, "%s email-domain blocks: stopped before planning: %s\n", out.Instance, out.Stopped)
		return
	}
	p := out.Plan
	fmt.Fprintf(c.stdout, "%s email-domain blocks (%s; %s, %d blocks, %d fediops'): %d to create, %d to remove; %d created, %d removed, %d failed, %d deferred\n",
		out.Instance, mode, p.Server, p.Blocks, p.Owned, p.Count(approve.ActionCreate), p.Count(approve.ActionRemove), out.Created, out.Removed, out.Failed, out.Deferred)
	rows := out.Results
	if len(rows) == 0 {
		for _, a := range p.Actions {
			rows = append(rows, approve.EmailBlockResult{EmailBlockAction: a, Outcome: "held"})
		}
	}
	if len(rows) > 0 {
		t := screen.Table{Header: []string{"ACTION", "DOMAIN", "OUTCOME", "REASON"}, Indent: "  ", Lead: 2}
		for _, r := range rows {
			outcome := r.Outcome
			if r.Error != "" {
				outcome += ": " + r.Error
			}
			t.Rows = append(t.Rows, []string{r.Action, r.Domain, outcome, r.Reason})
		}
		_ = t.Write(c.stdout, c.tableWidth(c.stdout))
	}
	if len(p.Skipped) > 0 {
		byReason := map[string][]string{}
		for _, s := range p.Skipped {
			byReason[s.Reason] = append(byReason[s.Reason], s.Domain)
		}
		reasons := make([]string, 0, len(byReason))
		for r := range byReason {
			reasons = append(reasons, r)
		}
		sort.Strings(reasons)
		for _, r := range reasons {
			fmt.Fprintf(c.stdout, "  left alone (%s): %s\n", r, strings.Join(byReason[r], " "))
		}
	}
	if out.Held != "" {
		fmt.Fprintf(c.stdout, "  held back: %s. Review, then: fediops triage email-blocks sync --instance %s --apply-plan %s\n", out.HeldReason, out.Instance, out.Held)
	}
	if out.Stopped != "" {
		fmt.Fprintf(c.stdout, "  stopped early: %s; the next run continues\n", out.Stopped)
	}
	if out.Record != "" {
		fmt.Fprintf(c.stdout, "  record: %s\n", out.Record)
	}
}

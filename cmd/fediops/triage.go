package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/fediops/fediops/cmd/fediops/internal/screen"
	"github.com/fediops/fediops/functions/approve"
	"github.com/fediops/fediops/shared/setup"
)

func (c *cli) triageCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "triage",
		Short: "Registration triage: approve or reject pending sign-ups by email domain",
	}
	cmd.AddCommand(c.triageRunCmd(), c.triageClassifyCmd(), c.triagePresetsCmd(), c.triageEmailBlocksCmd())
	return cmd
}

func (c *cli) triageRunCmd() *cobra.Command {
	var dryRun bool
	var instances []string
	var timeout *time.Duration
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the triage job once, as the Approve function does",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, env, done, err := c.timedEnv(cmd.Context(), *timeout, "triage")
			if err != nil {
				return err
			}
			defer done()
			msg := approve.Message{Instances: instances}
			if cmd.Flags().Changed("dry-run") {
				msg.DryRun = &dryRun
			}
			results, err := approve.RunConfigured(ctx, env, msg)
			printTriage(c, results)
			if err != nil {
				return err
			}
			for _, r := range results {
				if r.Failed > 0 {
					return fail(exitFailed, fmt.Errorf("%d account(s) failed on %s", r.Failed, r.Instance))
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show what would be done, change nothing (overrides [triage] dry_run)")
	cmd.Flags().StringSliceVar(&instances, "instance", nil, "only these instances (default: all configured)")
	timeout = timeoutFlag(cmd)
	return cmd
}

// printTriage prints each instance's counts and a table of its sign-ups (decision, user,
// email domain, outcome and rule), fitted to the terminal.
func printTriage(c *cli, results []*approve.Result) {
	for _, r := range results {
		mode := "applied"
		if r.DryRun {
			mode = "dry run, nothing changed"
		}
		fmt.Fprintf(c.stdout, "%s (%s): %d pending, %d approved, %d rejected, %d held, %d skipped, %d failed, %d deferred\n",
			r.Instance, mode, r.Pending, r.Approved, r.Rejected, r.Held, r.Skipped, r.Failed, r.Deferred)
		if len(r.Records) > 0 {
			t := screen.Table{Header: []string{"DECISION", "USER", "EMAIL DOMAIN", "OUTCOME (RULE)"}, Indent: "  ", Lead: 3}
			for _, rec := range r.Records {
				t.Rows = append(t.Rows, []string{string(rec.Decision), rec.Username, rec.EmailDomain, fmt.Sprintf("%s (%s)", rec.Outcome, rec.Rule)})
			}
			_ = t.Write(c.stdout, c.tableWidth(c.stdout))
		}
		if r.Stopped != "" {
			fmt.Fprintf(c.stdout, "  stopped early: %s; the next run continues\n", r.Stopped)
		}
		if r.Audit != "" {
			fmt.Fprintf(c.stdout, "  audit trail: %s\n", r.Audit)
		}
		c.printEmailBlocks(r.EmailBlocks)
	}
}

func (c *cli) triageClassifyCmd() *cobra.Command {
	var instance string
	cmd := &cobra.Command{
		Use:   "classify EMAIL...",
		Short: "Print the decision for each address (no network): one JSON line per address",
		Long: "Classify email addresses with the configured rules (--config, $FEDIOPS_CONFIG) or, without a\n" +
			"configuration, with the built-in default domain lists. Prints {\"email\",\"decision\",\"rule\"} lines.\n" +
			"Presets count; list sources (approve_domain_sources, reject_domain_sources, the disposable\n" +
			"preset) and the instances' email-domain blocks are not read.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rules, err := c.classifyRules(cmd.Context(), instance)
			if err != nil {
				return err
			}
			enc := json.NewEncoder(c.stdout)
			for _, a := range args {
				if err := enc.Encode(rules.Classify(a)); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&instance, "instance", "", "use this instance's [instance.triage] overrides")
	return cmd
}

// classifyRules loads the rules without opening the archive or resolving secrets.
func (c *cli) classifyRules(ctx context.Context, instance string) (*approve.Rules, error) {
	loc := c.configPath
	if loc == "" {
		loc = c.getenv("FEDIOPS_CONFIG")
	}
	if loc == "" {
		if instance != "" {
			return nil, fail(exitConfig, fmt.Errorf("--instance needs a configuration"))
		}
		d := approve.Defaults()
		return d.RulesFor(d.For(""), nil)
	}
	p := c.params()
	p.ConfigLocation = loc
	cfg, err := setup.LoadConfig(ctx, p)
	if err != nil {
		return nil, fail(exitConfig, err)
	}
	log, err := setup.NewLogger(p, nil)
	if err != nil {
		return nil, fail(exitConfig, err)
	}
	if err := c.checkSections(log, cfg, []string{"triage"}); err != nil {
		return nil, err
	}
	sec, err := approve.LoadSection(cfg)
	if err != nil {
		return nil, fail(exitConfig, err)
	}
	if instance != "" {
		if _, ok := cfg.Instance(instance); !ok {
			return nil, fail(exitConfig, fmt.Errorf("unknown instance %q", instance))
		}
	}
	// The presets are built in; list sources need the network and are not read here.
	return sec.RulesFor(sec.For(instance), nil)
}

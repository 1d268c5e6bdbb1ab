package main

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/spf13/cobra"

	"github.com/fediops/fediops/shared/config"
	"github.com/fediops/fediops/shared/setup"
)

func (c *cli) configCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Check the configuration file",
	}
	check := &cobra.Command{
		Use:   "check",
		Short: "List every problem of every section (exit 2 if there is one)",
		Long: "Reads the configuration (--config, $FEDIOPS_CONFIG) as the deployed functions do and lists,\n" +
			"one per line, every problem in it: the shared [[instance]] and [archive] tables and each\n" +
			"function's section ([triage], [blocklist], [backup]). The other commands check their own\n" +
			"section strictly and only warn about the others; this one is strict about all of them.\n" +
			"Nothing is contacted: tokens are not read and the archive is not opened.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := setup.LoadConfig(cmd.Context(), c.params())
			if cfg == nil {
				return fail(exitConfig, err) // unreadable, or not TOML
			}
			r := cfg.Report()
			r.Merge(err)
			r.Merge(cfg.CheckArchive())
			checks := sections()
			for _, name := range slices.Sorted(maps.Keys(checks)) {
				r.Merge(checks[name](cfg))
			}
			var problems []config.Problem
			if ce := (*config.Error)(nil); errors.As(r.Err(), &ce) {
				problems = ce.Problems
			}
			for _, p := range problems {
				fmt.Fprintln(c.stdout, p)
			}
			if len(problems) > 0 {
				return fail(exitConfig, fmt.Errorf("%d problem(s) in the configuration", len(problems)))
			}
			fmt.Fprintf(c.stdout, "%s: no problems\n", cfg.File)
			return nil
		},
	}
	cmd.AddCommand(check)
	return cmd
}

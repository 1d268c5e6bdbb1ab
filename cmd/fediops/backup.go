package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/fediops/fediops/functions/backupaudit"
)

func (c *cli) backupCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Backup audit: prove that the instance's backups exist, are fresh and cover what they should",
	}
	var asJSON bool
	audit := &cobra.Command{
		Use:   "audit",
		Short: "Run the backup audit once, as the BackupAudit function does",
		Long: "Prints a table (check, target, status, observed, expected, hint) or, with --json, one JSON\n" +
			"object {\"checks\": [...], \"summary\": {...}}. The report is also archived.\n" +
			"Exit code 0 when no check fails, 1 when one does, 2 on a configuration error.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			env, err := c.env(cmd.Context())
			if err != nil {
				return err
			}
			defer env.Close()
			r, where, err := backupaudit.RunConfigured(cmd.Context(), env)
			if err != nil {
				return err
			}
			if asJSON {
				if err := json.NewEncoder(c.stdout).Encode(r); err != nil {
					return err
				}
			} else {
				if err := backupaudit.WriteTable(c.stdout, r); err != nil {
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
	cmd.AddCommand(audit)
	return cmd
}

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/fediops/fediops/cmd/fediops/internal/screen"
	"github.com/fediops/fediops/functions/backupaudit"
)

func (c *cli) backupCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Backup audit: prove that the instance's backups exist, are fresh and cover what they should",
	}
	var asJSON bool
	var timeout *time.Duration
	audit := &cobra.Command{
		Use:   "audit",
		Short: "Run the backup audit once, as the BackupAudit function does",
		Long: "Prints a table (check, target, status, observed, expected, hint) or, with --json, one JSON\n" +
			"object {\"checks\": [...], \"summary\": {...}}. On a terminal, long cells are wrapped to its\n" +
			"width (--wide prints them whole). The report is also archived.\n" +
			"Exit code 0 when no check fails, 1 when one does, 2 on a configuration error.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			env, err := c.env(cmd.Context(), "backup")
			if err != nil {
				return err
			}
			defer env.Close()
			ctx, cancel, err := withTimeout(cmd.Context(), env, *timeout)
			if err != nil {
				return err
			}
			defer cancel()
			r, where, err := backupaudit.RunConfigured(ctx, env)
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
	timeout = timeoutFlag(audit)
	cmd.AddCommand(audit)
	return cmd
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

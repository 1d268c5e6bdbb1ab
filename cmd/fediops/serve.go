package main

import (
	"fmt"
	"net"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"
	"github.com/spf13/cobra"

	_ "github.com/fediops/fediops" // registers the functions
)

func (c *cli) serveCmd() *cobra.Command {
	var port string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve every function on a local Functions Framework server (127.0.0.1:$PORT, default 8080)",
		Long: "Starts the Functions Framework with Approve, BlocklistSync and BackupAudit at /<Name> on\n" +
			"127.0.0.1. Post Pub/Sub CloudEvents to them to run the deployed code path locally.\n" +
			"Configuration comes from $FEDIOPS_CONFIG as in production.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if port == "" {
				port = c.getenv("PORT")
			}
			if port == "" {
				port = "8080"
			}
			if c.configPath != "" {
				return fail(exitConfig, fmt.Errorf("serve reads $FEDIOPS_CONFIG, as the deployed functions do; --config is not used"))
			}
			addr := net.JoinHostPort("127.0.0.1", port)
			fmt.Fprintf(c.stderr, "serving Approve, BlocklistSync and BackupAudit on http://%s/<Name>\n", addr)
			return funcframework.StartHostPort("127.0.0.1", port)
		},
	}
	cmd.Flags().StringVar(&port, "port", "", "port (default $PORT or 8080)")
	return cmd
}

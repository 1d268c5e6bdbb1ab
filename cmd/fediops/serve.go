package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"
	"github.com/spf13/cobra"

	_ "github.com/fediops/fediops" // registers the functions
	"github.com/fediops/fediops/functions/approve"
	"github.com/fediops/fediops/shared/setup"
	"github.com/fediops/fediops/shared/testsupport/localpubsub"
)

// servedTopics are the topics fediops serve creates in its in-process Pub/Sub, the variable
// that tells the functions their name, and the function each one's messages are pushed to.
func servedTopics() []struct{ id, env, function string } {
	return []struct{ id, env, function string }{
		{"fediops-triage", approve.TopicVar, "Approve"},
		{"fediops-blocklist", "FEDIOPS_BLOCKLIST_TOPIC", "BlocklistSync"},
		{"fediops-backupaudit", "", "BackupAudit"},
	}
}

func (c *cli) serveCmd() *cobra.Command {
	var port string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve every function on a local Functions Framework server (127.0.0.1:$PORT, default 8080)",
		Long: "Starts the Functions Framework with Approve, BlocklistSync, BackupAudit and TriageWebhook at\n" +
			"/<Name> on 127.0.0.1, and an in-process Pub/Sub (the pubsub library's pstest server) with the\n" +
			"topics fediops-triage, fediops-blocklist and fediops-backupaudit, whose messages are pushed to\n" +
			"Approve, BlocklistSync and BackupAudit as Eventarc would. So a signed Mastodon webhook posted to\n" +
			"/TriageWebhook/<instance> is published and decided by Approve, and a scheduled run fans out.\n" +
			"Post Pub/Sub CloudEvents to /<Name> to run the deployed code path directly.\n" +
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
			return c.serve(port)
		},
	}
	cmd.Flags().StringVar(&port, "port", "", "port (default $PORT or 8080)")
	return cmd
}

func (c *cli) serve(port string) error {
	addr := net.JoinHostPort("127.0.0.1", port)
	ps, err := startLocalPubSub("http://" + addr)
	if err != nil {
		return err
	}
	defer ps.Close()
	// Every function at its path (FUNCTION_TARGET would serve one at "/"), and the webhook's
	// instance paths too.
	_ = os.Unsetenv("FUNCTION_TARGET")
	if err := funcframework.RegisterHTTPFunctionContext(context.Background(), approve.WebhookLocalPath,
		approve.Webhook{Invocation: setup.Process(nil)}.ServeHTTP); err != nil {
		return err
	}
	fmt.Fprintf(c.stderr, "serving Approve, BlocklistSync, BackupAudit and TriageWebhook on http://%s/<Name>\n", addr)
	fmt.Fprintf(c.stderr, "Mastodon webhooks (event account.created): http://%s/TriageWebhook/<instance name>\n", addr)
	fmt.Fprintf(c.stderr, "in-process Pub/Sub at %s: fediops-triage → Approve, fediops-blocklist → BlocklistSync, fediops-backupaudit → BackupAudit\n", ps.Addr)
	return funcframework.StartHostPort("127.0.0.1", port)
}

// startLocalPubSub starts the in-process Pub/Sub, creates the topics, pushes each to its
// function under base, and points the functions at it (FEDIOPS_PUBSUB_ENDPOINT and the topic
// variables of this process, which the served functions read).
func startLocalPubSub(base string) (*localpubsub.Server, error) {
	ps, err := localpubsub.Start("local")
	if err != nil {
		return nil, fmt.Errorf("in-process Pub/Sub: %w", err)
	}
	for _, t := range servedTopics() {
		name, err := ps.Topic(t.id)
		if err == nil {
			err = ps.Push(name, base+"/"+t.function, localpubsub.PushOptions{Concurrency: 4, Backoff: 2 * time.Second})
		}
		if err != nil {
			_ = ps.Close()
			return nil, err
		}
		if t.env != "" {
			_ = os.Setenv(t.env, name)
		}
	}
	_ = os.Setenv("FEDIOPS_PUBSUB_ENDPOINT", ps.Addr)
	return ps, nil
}

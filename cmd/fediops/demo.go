package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"text/template"
	"time"

	"cloud.google.com/go/cloudsqlconn"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/spf13/cobra"

	"github.com/BurntSushi/toml"

	"github.com/fediops/fediops/functions/approve"
	"github.com/fediops/fediops/functions/backupaudit"
	"github.com/fediops/fediops/functions/blocklist"
	"github.com/fediops/fediops/shared/logging"
	"github.com/fediops/fediops/shared/setup"
	"github.com/fediops/fediops/shared/testsupport/backupfake"
	"github.com/fediops/fediops/shared/testsupport/localpubsub"
	"github.com/fediops/fediops/shared/testsupport/mastosim"
	"github.com/fediops/fediops/shared/testsupport/pgserver"
)

//go:embed demo.toml
var demoConfig string

//go:embed demodata/*.csv
var demoLists embed.FS

// sandbox is the demo's built-in instance: the Mastodon simulator on a loopback port.
type sandbox struct {
	sim   *mastosim.Server
	url   string
	token string
	stop  func()
}

func startSandbox() (*sandbox, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	sb := &sandbox{sim: mastosim.New(mastosim.Options{Title: "fediops sandbox"}), url: "http://" + l.Addr().String(), token: hex.EncodeToString(b)}
	sb.sim.AddToken(sb.token, "admin:read admin:write profile")
	srv := &http.Server{Handler: sb.sim, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	sb.stop = func() { _ = srv.Close() }
	return sb, nil
}

// seedSignups adds the sample sign-ups the triage demo decides.
func (sb *sandbox) seedSignups(now time.Time) {
	for i, s := range []struct {
		user, email string
		confirmed   bool
	}{
		{"maria", "maria.lopez@health.gov", true},
		{"tom", "tom@dwp.gov.uk", true},
		{"amelie", "a.dubois@ec.europa.eu", true},
		{"kim", "kim@transport.gov.au", false},
		{"spammer1", "cheap.pills@gmail.com", false},
		{"phisher", "it-support@health.gov.evil.com", true},
		{"journalist", "reporter@newspaper.example", true},
	} {
		sb.sim.AddAccount(mastosim.Account{Username: s.user, Email: s.email, Confirmed: s.confirmed,
			CreatedAt: now.Add(time.Duration(i-10) * time.Minute), InviteRequest: "I would like to post updates for my department."})
	}
}

func (c *cli) demoCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the jobs on embedded defaults against a built-in sandbox instance (no cloud account needed)",
		Long: "Starts a sandbox Mastodon instance in-process (the simulator, seeded with sample sign-ups),\n" +
			"writes a configuration for it, and runs triage and blocklist sync: each first as a dry run,\n" +
			"then for real; then the backup audit and a restore drill on a sample Google Cloud setup\n" +
			"(fakes of the Google APIs; the drill's clone is a local PostgreSQL when there is one).\n" +
			"The audit trail and the configuration are written to --dir.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.demo(cmd.Context(), dir)
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "fediops-demo", "directory for the demo's configuration and archive")
	return cmd
}

func (c *cli) demo(ctx context.Context, dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return err
	}
	sb, err := startSandbox()
	if err != nil {
		return err
	}
	defer sb.stop()
	sb.seedSignups(time.Now())

	listsDir := filepath.Join(abs, "lists")
	if err := writeDemoLists(listsDir); err != nil {
		return err
	}
	sb.seedBlocks()
	tokenFile := filepath.Join(abs, "sandbox-token")
	if err := os.WriteFile(tokenFile, []byte(sb.token+"\n"), 0o600); err != nil {
		return err
	}
	var cfg bytes.Buffer
	if err := template.Must(template.New("demo").Parse(demoConfig)).Execute(&cfg, map[string]string{
		"URL": sb.url, "TokenFile": fileURLPath(tokenFile), "Archive": filepath.ToSlash(filepath.Join(abs, "archive")), "Lists": fileURLPath(listsDir),
		"WebhookSecretFile": fileURLPath(filepath.Join(abs, "sandbox-webhook-secret")),
	}); err != nil {
		return err
	}
	// The backup audit's sample environment: one healthy and one broken setup, served by
	// fakes of the Cloud SQL Admin, Cloud Storage, Backup for GKE, GKE and Kubernetes APIs.
	// The healthy database gets a restore drill; its "clone" is a throw-away PostgreSQL
	// seeded with a small Mastodon database, when this machine has PostgreSQL.
	now := time.Now()
	sample := backupfake.Merge(backupfake.Healthy(now), backupfake.Broken(now))
	sample.SQL[0].Drill = backupfake.Quick()
	backups := backupfake.Start(sample)
	defer backups.Close()
	db, dbNote := startDemoDatabase(ctx, now)
	if db != nil {
		defer db.Stop()
	}
	pwFile := filepath.Join(abs, "drill-password")
	if err := os.WriteFile(pwFile, []byte(demoDrillPassword+"\n"), 0o600); err != nil {
		return err
	}
	if db != nil {
		// The sample instance's server-side proxy (and its clones') forwards to the local
		// PostgreSQL: the drill connects through the real Cloud SQL Go connector.
		backups.ServeDatabase(backupfake.HealthyProject, backupfake.SampleInstance, db.Addr)
	}
	backupCfg := demoBackupConfig(backups.Config(), "", pwFile)
	if err := toml.NewEncoder(&cfg).Encode(struct {
		Backup map[string]any `toml:"backup"`
	}{backupCfg}); err != nil {
		return err
	}
	cfgFile := filepath.Join(abs, "fediops.toml")
	if err := os.WriteFile(cfgFile, cfg.Bytes(), 0o600); err != nil {
		return err
	}
	c.configPath = cfgFile
	if c.logLevel == "" {
		c.logLevel = "warning" // the demo prints its own summary; logs only for problems
	}
	fmt.Fprintf(c.stdout, "fediops demo: sandbox instance at %s, configuration %s\n\n", sb.url, cfgFile)

	env, err := c.env(ctx, "triage", "blocklist", "backup")
	if err != nil {
		return err
	}
	defer env.Close()
	dry := true
	fmt.Fprintln(c.stdout, "== Registration triage, dry run (nothing changes) ==")
	results, err := approve.RunConfigured(ctx, env, approve.Message{DryRun: &dry})
	printTriage(c, results)
	if err != nil {
		return err
	}
	live := false
	fmt.Fprintln(c.stdout, "\n== Registration triage ==")
	results, err = approve.RunConfigured(ctx, env, approve.Message{DryRun: &live})
	printTriage(c, results)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "\nStill pending for a human on the sandbox: %d account(s).\n", countPending(sb.sim))
	if err := c.demoInstantTriage(ctx, sb, cfgFile); err != nil {
		return err
	}

	fmt.Fprintln(c.stdout, "\n== Blocklist sync: merge the sample lists ==")
	rep, err := blocklist.RunConfigured(ctx, env, blocklist.Message{DryRun: &dry}, blocklist.RunOptions{})
	if err != nil {
		return err
	}
	c.printMergeSummary(c.stdout, rep.Merge)
	fmt.Fprintln(c.stdout, "\n== Blocklist plan (dry run, nothing changes) ==")
	for _, o := range rep.Outcomes {
		c.printPlan(c.stdout, o)
	}
	fmt.Fprintln(c.stdout, "\n== Blocklist sync ==")
	rep, err = blocklist.RunConfigured(ctx, env, blocklist.Message{DryRun: &live}, blocklist.RunOptions{})
	for _, o := range rep.Outcomes {
		fmt.Fprintln(c.stdout, o.Summary())
	}
	if err != nil {
		return err
	}
	owned := 0
	for _, b := range sb.sim.DomainBlocks() {
		if strings.HasPrefix(b.PrivateComment, "fediops:") {
			owned++
		}
	}
	fmt.Fprintf(c.stdout, "The sandbox now has %d domain blocks: %d managed by fediops, %d manual (untouched).\n",
		len(sb.sim.DomainBlocks()), owned, len(sb.sim.DomainBlocks())-owned)

	fmt.Fprintln(c.stdout, "\n== Backup audit: a healthy and a broken sample setup (leftover-pods cleanup as a dry run) ==")
	env.Log = logging.Discard() // the table below says it all
	report, where, err := backupaudit.RunConfiguredWith(ctx, env, backupaudit.AuditOptions{DryRun: true})
	if err != nil {
		return err
	}
	if err := c.printAudit(c.stdout, report); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "report archived at %s\n", where)

	fmt.Fprintln(c.stdout, "\n== Restore drill of the healthy database: clone, verify, measure, delete ==")
	if dbNote != "" {
		fmt.Fprintln(c.stdout, dbNote)
	}
	drills, err := backupaudit.RunDrill(ctx, env, backupaudit.DrillStart, backupaudit.DrillOptions{
		Poll:             250 * time.Millisecond,
		ConnectorOptions: []cloudsqlconn.Option{cloudsqlconn.WithDialFunc(backups.DialConnector)},
	})
	c.printDrills(c.stdout, drills, time.Now())
	if err != nil {
		return err
	}
	for _, n := range backups.Instances(backupfake.HealthyProject) {
		if strings.HasPrefix(n, "fediops-drill-") {
			return fmt.Errorf("demo: the drill left %s behind", n)
		}
	}
	fmt.Fprintln(c.stdout, "The clone is gone: a drill always deletes it, whatever happened.")
	fmt.Fprintf(c.stdout, "\nEverything fediops decided and did is in %s\n", filepath.Join(abs, "archive"))
	return nil
}

// seedBlocks gives the sandbox the manual blocks and follows an instance has.
func (sb *sandbox) seedBlocks() {
	sb.sim.AddDomainBlock(mastosim.DomainBlock{Domain: "abyss.fun", Severity: "suspend", PrivateComment: "our moderators' decision"})
	sb.sim.AddDomainBlock(mastosim.DomainBlock{Domain: "harassers.example", Severity: "suspend", PrivateComment: "ticket 42"})
	sb.sim.SetFollows("101010.pl", 2, 5) // local users follow people there: no suspension
}

func writeDemoLists(dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	entries, err := demoLists.ReadDir("demodata")
	if err != nil {
		return err
	}
	for _, e := range entries {
		b, err := demoLists.ReadFile("demodata/" + e.Name())
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func countPending(sim *mastosim.Server) int {
	n := 0
	for _, a := range sim.Accounts() {
		if a.Domain == "" && !a.Approved {
			n++
		}
	}
	return n
}

// demoInstantTriage shows a sign-up decided within moments: the sandbox sends its
// account.created webhook to TriageWebhook, which publishes to an in-process Pub/Sub, which
// pushes the message to Approve, as deployed.
func (c *cli) demoInstantTriage(ctx context.Context, sb *sandbox, cfgFile string) error {
	secretFile := filepath.Join(filepath.Dir(cfgFile), "sandbox-webhook-secret")
	b := make([]byte, 20)
	_, _ = rand.Read(b)
	secret := hex.EncodeToString(b) // what Mastodon generates for a blank secret
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		return err
	}
	ps, err := localpubsub.Start("demo")
	if err != nil {
		return err
	}
	defer ps.Close()
	topic, err := ps.Topic("fediops-triage")
	if err != nil {
		return err
	}
	vars := map[string]string{"FEDIOPS_CONFIG": cfgFile, "FEDIOPS_TIMEOUT": "60s", "FEDIOPS_LOG_LEVEL": "error",
		"FEDIOPS_PUBSUB_ENDPOINT": ps.Addr, approve.TopicVar: topic}
	inv := setup.Invocation{Getenv: func(k string) string { return vars[k] }, LogOutput: io.Discard}
	approveSrv := httptest.NewServer(cloudEventHandler(approve.Handler{Invocation: inv}.Handle))
	defer approveSrv.Close()
	hookSrv := httptest.NewServer(approve.Webhook{Invocation: inv})
	defer hookSrv.Close()
	if err := ps.Push(topic, approveSrv.URL, localpubsub.PushOptions{Backoff: 200 * time.Millisecond}); err != nil {
		return err
	}
	hookURL := hookSrv.URL + "/TriageWebhook/sandbox"
	sb.sim.AddWebhook(mastosim.Webhook{URL: hookURL, Secret: secret, Events: []string{"account.created"}})
	defer sb.sim.StopWebhooks()

	fmt.Fprintln(c.stdout, "\n== Instant triage: Mastodon's webhook (account.created) → TriageWebhook → Pub/Sub → Approve ==")
	fmt.Fprintf(c.stdout, "Webhook URL %s, secret in %s (webhook_secret)\n", hookURL, secretFile)
	fmt.Fprintln(c.stdout, "(nadia's address is verified at sign-up, as with single sign-on; an approvable sign-up that still has to\n"+
		"confirm its address is held, and the next scheduled run approves it once confirmed)")
	for _, s := range []struct{ user, email, want string }{
		{"nadia", "nadia@transport.gov", "approved"}, // verified at sign-up, as with single sign-on
		{"promo", "promo.deals@gmail.com", "rejected"},
	} {
		start := time.Now()
		id := sb.sim.AddAccount(mastosim.Account{Username: s.user, Email: s.email, Confirmed: s.want == "approved"})
		state := "pending"
		for time.Since(start) < 10*time.Second && state == "pending" {
			time.Sleep(5 * time.Millisecond)
			switch a, ok := sb.sim.Account(id); {
			case !ok:
				state = "rejected"
			case a.Approved:
				state = "approved"
			}
		}
		if state == "pending" {
			return fmt.Errorf("instant triage: %s was not decided within 10s", s.user)
		}
		fmt.Fprintf(c.stdout, "%s <%s> signed up: %s %d ms later\n", s.user, s.email, state, time.Since(start).Milliseconds())
	}
	return nil
}

// cloudEventHandler serves a CloudEvent function over HTTP, as the Functions Framework does:
// 200 when it returns nil, 500 (a redelivery) when it returns an error.
func cloudEventHandler(fn func(context.Context, event.Event) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e, err := cehttp.NewEventFromHTTPRequest(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := fn(r.Context(), *e); err != nil {
			http.Error(w, "function error", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
}

// demoDrillPassword is the sample database's drill password (a throw-away local server).
const demoDrillPassword = "demo-drill-password"

// startDemoDatabase starts a throw-away PostgreSQL holding a small Mastodon database whose
// newest post is 12 minutes old, or explains why there is none.
func startDemoDatabase(ctx context.Context, now time.Time) (*pgserver.Server, string) {
	db, err := pgserver.Start(ctx)
	if err != nil {
		return nil, fmt.Sprintf("(No local PostgreSQL to stand in for the clone: %v. The drill runs anyway, and drill.data shows how a failed connection looks.)", err)
	}
	seed := func() error {
		if err := db.CreateDatabase(ctx, "mastodon_production"); err != nil {
			return err
		}
		if err := db.SeedMastodon(ctx, "mastodon_production", pgserver.DefaultSample(now.Add(-12*time.Minute))); err != nil {
			return err
		}
		return db.CreateReader(ctx, "fediops_drill", demoDrillPassword)
	}
	if err := seed(); err != nil {
		db.Stop()
		return nil, fmt.Sprintf("(Could not seed the local PostgreSQL: %v.)", err)
	}
	return db, ""
}

// demoBackupConfig enables the drill on the healthy instance and the leftover-pods cleanup on
// the broken plan of the sample [backup] table. With address set, the drill connects there
// with pgx instead of through the Cloud SQL connector.
func demoBackupConfig(cfg map[string]any, address, pwFile string) map[string]any {
	var sql []map[string]any
	for _, e := range cfg["cloudsql"].([]map[string]string) {
		m := map[string]any{"project": e["project"], "instance": e["instance"]}
		if e["project"] == backupfake.HealthyProject {
			m["drill"] = true
			m["drill_user"] = "fediops_drill"
			m["drill_password"] = "file://" + fileURLPath(pwFile)
			if address != "" {
				m["drill_address"] = address
			}
			m["drill_schema_version"] = "20251217091936"
		}
		sql = append(sql, m)
	}
	cfg["cloudsql"] = sql
	var gke []map[string]any
	for _, e := range cfg["gke"].([]map[string]string) {
		m := map[string]any{"project": e["project"], "location": e["location"], "plan": e["plan"]}
		if e["project"] == backupfake.BrokenProject {
			m["delete_leftover_pods_older_than"] = "72h"
		}
		gke = append(gke, m)
	}
	cfg["gke"] = gke
	return cfg
}

// fileURLPath is what follows "file://" for the absolute path p, on every system: forward
// slashes (a backslash would also be an escape in the TOML string) and a leading slash, so that
// C:\demo\lists becomes /C:/demo/lists (file:///C:/demo/lists). On Unix it is p.
func fileURLPath(p string) string {
	p = filepath.ToSlash(p)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	return p
}

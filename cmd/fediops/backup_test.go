package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/fediops/fediops/shared/testsupport/backupfake"
	"github.com/fediops/fediops/shared/testsupport/pgserver"
)

func backupConfig(t *testing.T, env backupfake.Env) string {
	t.Helper()
	srv := backupfake.Start(env)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	var b bytes.Buffer
	b.WriteString("[archive]\nurl = \"" + filepath.Join(dir, "archive") + "\"\n\n")
	if err := toml.NewEncoder(&b).Encode(struct {
		Backup map[string]any `toml:"backup"`
	}{srv.Config()}); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "fediops.toml")
	if err := os.WriteFile(p, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBackupAudit(t *testing.T) {
	now := time.Now()
	healthy := backupConfig(t, backupfake.Healthy(now))
	broken := backupConfig(t, backupfake.Broken(now))

	code, out, errOut := runCLI(t, nil, "--config", healthy, "backup", "audit")
	if code != 0 || !strings.Contains(out, "cloudsql.backups_enabled") || !strings.Contains(out, "report archived at") {
		t.Fatalf("healthy: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, _ = runCLI(t, nil, "--config", broken, "backup", "audit", "--json")
	if code != 1 {
		t.Errorf("broken: exit %d, want 1", code)
	}
	var r struct {
		Checks []struct {
			ID, Target, Status, Observed, Expected, Hint string
		}
		Summary struct{ Pass, Warn, Fail int }
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("--json output is not one JSON object: %v\n%s", err, out)
	}
	if r.Summary.Fail == 0 || len(r.Checks) != r.Summary.Pass+r.Summary.Warn+r.Summary.Fail {
		t.Errorf("summary = %+v", r.Summary)
	}
	for _, c := range r.Checks {
		if c.ID == "" || c.Target == "" || c.Observed == "" || c.Expected == "" || (c.Status == "fail" && c.Hint == "") {
			t.Errorf("incomplete check %+v", c)
		}
	}
	empty := filepath.Join(t.TempDir(), "empty.toml")
	if err := os.WriteFile(empty, []byte("[archive]\nurl = \"/tmp/x\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runCLI(t, nil, "--config", empty, "backup", "audit"); code != 2 || !strings.Contains(errOut, "lists nothing to audit") {
		t.Errorf("nothing to audit: exit %d %s", code, errOut)
	}
	bad := filepath.Join(t.TempDir(), "bad.toml")
	if err := os.WriteFile(bad, []byte("[archive]\nurl = \"/tmp/x\"\n[[backup.bucket]]\nname = \"gs://nope\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := runCLI(t, nil, "--config", bad, "backup", "audit"); code != 2 {
		t.Errorf("bad config: exit %d", code)
	}
}

// drillConfig writes a configuration whose healthy instance drills against a real PostgreSQL
// standing in for the clone, and whose broken plan cleans up leftover pods.
func drillConfig(t *testing.T) (string, *backupfake.Server) {
	t.Helper()
	now := time.Now()
	db := pgserver.StartT(t)
	ctx := context.Background()
	if err := db.CreateDatabase(ctx, "mastodon_production"); err != nil {
		t.Fatal(err)
	}
	if err := db.SeedMastodon(ctx, "mastodon_production", pgserver.DefaultSample(now.Add(-11*time.Minute))); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateReader(ctx, "fediops_drill", "cli-drill-pw"); err != nil {
		t.Fatal(err)
	}
	env := backupfake.Merge(backupfake.Healthy(now), backupfake.Broken(now))
	env.SQL[0].Drill = backupfake.Quick()
	srv := backupfake.Start(env)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("cli-drill-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := demoBackupConfig(srv.Config(), db.Addr, pw)
	var b bytes.Buffer
	b.WriteString("[archive]\nurl = \"" + filepath.Join(dir, "archive") + "\"\n\n")
	if err := toml.NewEncoder(&b).Encode(struct {
		Backup map[string]any `toml:"backup"`
	}{cfg}); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "fediops.toml")
	if err := os.WriteFile(p, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p, srv
}

func TestBackupDrillCommand(t *testing.T) {
	cfg, srv := drillConfig(t)
	code, out, errOut := runCLI(t, nil, "--config", cfg, "backup", "drill", "--status")
	if code != 0 || !strings.Contains(out, "fediops-healthy/mastodon-db: no drill yet") {
		t.Fatalf("status before: %d\n%s\n%s", code, out, errOut)
	}
	if code, out, _ := runCLI(t, nil, "--config", cfg, "backup", "drill"); code != 0 || !strings.Contains(out, "no drill yet") {
		t.Errorf("advance with nothing in progress: %d\n%s", code, out)
	}
	if n := len(srv.Clones()); n != 0 {
		t.Errorf("%d clones before --start", n)
	}
	code, out, errOut = runCLI(t, nil, "--config", cfg, "backup", "drill", "--start", "--poll", "100ms")
	if code != 0 || !strings.Contains(out, "phase          done") || !strings.Contains(out, "PASS: 5 pass, 0 warn, 0 fail") ||
		!strings.Contains(out, "measured       RTO") {
		t.Fatalf("start: %d\n%s\n%s", code, out, errOut)
	}
	if strings.Contains(out+errOut, "cli-drill-pw") {
		t.Error("the password was printed")
	}
	code, out, _ = runCLI(t, nil, "--config", cfg, "backup", "drill", "--status", "--json")
	var views []struct {
		Target string
		Exists bool
		State  struct {
			Phase  string
			Checks []struct{ ID, Status string }
		}
	}
	if err := json.Unmarshal([]byte(out), &views); code != 0 || err != nil || len(views) != 1 || views[0].State.Phase != "done" || len(views[0].State.Checks) != 5 {
		t.Errorf("status --json: %d %v\n%s", code, err, out)
	}
	if code, _, errOut := runCLI(t, nil, "--config", cfg, "backup", "drill", "--start", "--status"); code != 2 || !strings.Contains(errOut, "do not go together") {
		t.Errorf("--start --status: %d %s", code, errOut)
	}
	for _, n := range srv.Instances(backupfake.HealthyProject) {
		if strings.HasPrefix(n, "fediops-drill-") {
			t.Errorf("clone %s left", n)
		}
	}

	// The leftover-pods cleanup of the broken plan, as a dry run: nothing is deleted.
	cluster := backupfake.ClusterName(backupfake.BrokenProject, backupfake.SampleLocation, backupfake.SampleCluster)
	before := len(srv.Pods(cluster))
	code, out, _ = runCLI(t, nil, "--config", cfg, "backup", "audit", "--dry-run", "--json")
	if code != 1 || !strings.Contains(out, "dry run: would delete 27 Failed pods older than 3d") {
		t.Errorf("audit --dry-run: %d\n%s", code, out)
	}
	if after := len(srv.Pods(cluster)); after != before {
		t.Errorf("the dry run deleted %d pods", before-after)
	}
	code, out, _ = runCLI(t, nil, "--config", cfg, "backup", "audit", "--json")
	if code != 1 || !strings.Contains(out, "cleanup: deleted 27 Failed pods older than 3d") {
		t.Errorf("audit: %d\n%s", code, out)
	}
	if after := len(srv.Pods(cluster)); after != before-27 {
		t.Errorf("the cleanup left %d of %d pods", after, before)
	}
}

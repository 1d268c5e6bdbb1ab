package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/fediops/fediops/shared/testsupport/backupfake"
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

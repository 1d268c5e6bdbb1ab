package main

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fediops/fediops/shared/testsupport/mastosim"
)

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestClassifyWithoutArchive: classify needs [triage] only; a file without [archive] does.
func TestClassifyWithoutArchive(t *testing.T) {
	cfg := writeFile(t, t.TempDir(), "triage.toml", "[triage]\napprove_domains = [\"example.gov\"]\n")
	code, out, errOut := runCLI(t, nil, "--config", cfg, "triage", "classify", "a@x.example.gov")
	var v struct{ Decision string }
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || v.Decision != "approve" {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	if strings.Contains(errOut, "archive") {
		t.Errorf("classify complained about the archive: %s", errOut)
	}
	// A command that archives still needs it, and says so.
	if code, _, errOut := runCLI(t, nil, "--config", cfg, "triage", "run"); code != 2 || !strings.Contains(errOut, "archive.url: is required") {
		t.Errorf("triage run without [archive]: exit %d %s", code, errOut)
	}
}

// TestOtherSectionsWarn: a command validates its own section strictly and warns, one line per
// section, about the others; config check lists every problem.
func TestOtherSectionsWarn(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "fediops.toml", fmt.Sprintf(`[archive]
url = %q

[triage]
approve_domains = ["example.gov"]

[blocklist]
mergeplan = "maybe"
max_change_pct = -5

[backup]
min_retained_backups = "many"
`, filepath.Join(dir, "archive")))

	code, out, errOut := runCLI(t, nil, "--config", cfg, "triage", "classify", "a@x.example.gov")
	if code != 0 || !strings.Contains(out, `"approve"`) {
		t.Fatalf("classify with broken other sections: exit %d\n%s\n%s", code, out, errOut)
	}
	var warnings []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(errOut), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not a JSON log line: %q", l)
		}
		warnings = append(warnings, m)
	}
	if len(warnings) != 2 {
		t.Fatalf("want one warning per broken section, got:\n%s", errOut)
	}
	for i, sec := range []string{"backup", "blocklist"} {
		w := warnings[i]
		msg, _ := w["message"].(string)
		if w["severity"] != "WARNING" || w["section"] != sec || !strings.Contains(msg, "["+sec+"] has problems") {
			t.Errorf("warning %d = %v", i, w)
		}
	}
	if msg := warnings[1]["message"].(string); !strings.Contains(msg, "blocklist.mergeplan") || !strings.Contains(msg, "blocklist.max_change_pct") || strings.Contains(msg, "\n") {
		t.Errorf("the blocklist warning does not list its problems: %s", msg)
	}

	// A command whose own section is broken fails, naming the problems, and runs nothing.
	code, _, errOut = runCLI(t, nil, "--config", cfg, "blocklist", "plan")
	_, failure, _ := strings.Cut(errOut, "fediops: ")
	if code != 2 || !strings.Contains(failure, "blocklist.mergeplan") || strings.Contains(failure, "min_retained_backups") {
		t.Errorf("blocklist plan: exit %d\n%s", code, errOut)
	}

	// config check: every problem of every section, exit 2.
	code, out, errOut = runCLI(t, nil, "--config", cfg, "config", "check")
	if code != 2 || !strings.Contains(errOut, "3 problem(s)") {
		t.Errorf("config check: exit %d\n%s\n%s", code, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("config check lines:\n%s", out)
	}
	for i, want := range []string{"backup", "blocklist.max_change_pct", "blocklist.mergeplan"} {
		if !strings.HasPrefix(lines[i], cfg+": ") || !strings.Contains(lines[i], want) {
			t.Errorf("line %d = %q, want %q", i, lines[i], want)
		}
	}
}

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "good.toml", "[[instance]]\nname = \"main\"\nurl = \"https://social.example\"\ntoken = \"env://TOKEN\"\n\n[archive]\nurl = \"gs://bucket/prefix\"\n\n[triage]\ndry_run = true\n")
	code, out, errOut := runCLI(t, nil, "--config", good, "config", "check")
	if code != 0 || out != good+": no problems\n" {
		t.Errorf("good file: exit %d\n%s\n%s", code, out, errOut)
	}
	// Shared problems, a missing [archive] and sections' problems together.
	bad := writeFile(t, dir, "bad.toml", "[[instance]]\nname = \"Main\"\nurl = \"http://social.example\"\ntoken = \"literal-token\"\n\n[triage]\nmax_actions = 0\n\n[backup]\nwat = 1\n")
	code, out, _ = runCLI(t, nil, "--config", bad, "config", "check")
	if code != 2 {
		t.Errorf("exit %d", code)
	}
	for _, want := range []string{"instance[0].name", "instance[0].url", "instance[0].token", "archive.url: is required", "triage.max_actions", "backup.wat: unknown key"} {
		if !strings.Contains(out, want) {
			t.Errorf("config check lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "literal-token") {
		t.Error("config check printed the token")
	}
	if code, _, errOut := runCLI(t, nil, "--config", filepath.Join(dir, "missing.toml"), "config", "check"); code != 2 || !strings.Contains(errOut, "missing.toml") {
		t.Errorf("missing file: exit %d %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, nil, "--config", writeFile(t, dir, "syntax.toml", "[[instance]\n"), "config", "check"); code != 2 || !strings.Contains(errOut, "line") {
		t.Errorf("syntax error: exit %d %s", code, errOut)
	}
}

// TestDefaultArchiveNamed: a FediBlockHole file without [archive] archives in
// ./fediops-archive, and the command says where.
func TestDefaultArchiveNamed(t *testing.T) {
	dir := t.TempDir()
	list := writeFile(t, dir, "list.csv", "domain,severity\nbad.example,suspend\n")
	cfg := writeFile(t, dir, "fbh.conf.toml", fmt.Sprintf("blocklist_url_sources = [ { url = 'file://%s', format = 'csv' } ]\n", list))
	work := t.TempDir()
	cwd, _ := os.Getwd()
	if err := os.Chdir(work); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chdir(cwd) })
	code, _, errOut := runCLI(t, nil, "--config", cfg, "blocklist", "merge")
	want := filepath.Join(work, "fediops-archive")
	if code != 0 || strings.Count(errOut, "archiving in the local directory "+want) != 1 {
		t.Errorf("exit %d; the archive's location is not named once:\n%s", code, errOut)
	}
	if _, err := os.Stat(want); err != nil {
		t.Errorf("nothing archived where it said: %v", err)
	}
}

// TestTimeoutFlag: --timeout is the run's deadline; one that leaves no time is refused.
func TestTimeoutFlag(t *testing.T) {
	cfg, _, _ := sandboxConfig(t, "")
	for _, args := range [][]string{{"triage", "run"}, {"backup", "audit"}, {"blocklist", "sync"}, {"blocklist", "plan"},
		{"blocklist", "merge"}, {"blocklist", "apply", "--plan", "x"}, {"blocklist", "rollback", "--to", "x"}} {
		code, _, errOut := runCLI(t, nil, append([]string{"--config", cfg}, append(args, "--timeout", "5s")...)...)
		if code != 2 || !strings.Contains(errOut, "--timeout 5s") {
			t.Errorf("%v --timeout 5s: exit %d %s", args, code, errOut)
		}
	}
	if code, out, errOut := runCLI(t, nil, "--config", cfg, "triage", "run", "--dry-run", "--timeout", "2m"); code != 0 || !strings.Contains(out, "dry run") {
		t.Errorf("--timeout 2m: exit %d\n%s\n%s", code, out, errOut)
	}
}

// TestAuthCheckWithoutArchive: checking tokens needs the instances, not the archive.
func TestAuthCheckWithoutArchive(t *testing.T) {
	sim := mastosim.New(mastosim.Options{})
	sim.AddToken("auth-check-token-123", "admin:read:accounts admin:write:accounts admin:read:email_domain_blocks admin:write:email_domain_blocks profile")
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	tok := writeFile(t, dir, "token", "auth-check-token-123")
	cfg := writeFile(t, dir, "fediops.toml", fmt.Sprintf("[[instance]]\nname = \"main\"\nurl = %q\ntoken = \"file://%s\"\n", srv.URL, tok))
	code, out, errOut := runCLI(t, nil, "--config", cfg, "auth", "check", "--for", "triage")
	if code != 0 || !strings.Contains(out, "main: token: ok") || strings.Contains(errOut, "archive") {
		t.Errorf("exit %d\n%s\n%s", code, out, errOut)
	}
}

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

// blocklistData is the repository's blocklist test data (testdata/blocklists at the root).
const blocklistData = "../../testdata/blocklists"

func TestBlocklistMergeFediBlockHoleConfig(t *testing.T) {
	dir := t.TempDir()
	abs, err := filepath.Abs(blocklistData)
	if err != nil {
		t.Fatal(err)
	}
	cwd, _ := os.Getwd()
	if err := os.Chdir(dir); err != nil { // FBH configs archive to ./fediops-archive
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chdir(cwd) })
	out := filepath.Join(dir, "merged.csv")
	report := filepath.Join(dir, "report.json")
	code, stdout, stderr := runCLI(t, nil, "blocklist", "merge",
		"--config", filepath.Join(abs, "fediblockhole-config", "oliphant-tier0.conf.toml"),
		"--rebase", "/opt/fediblockhole/blocklists/="+filepath.Join(abs, "oliphant")+"/",
		"--format", "fediblockhole", "-o", out, "--report", report)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(abs, "fediblockhole-expected", "oliphant-tier0.conf.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("merged list differs from FediBlockHole's own output for this config")
	}
	for _, w := range []string{"seirdy-tier0.csv", "gardenfence.csv", "dni.csv", "canary 2", "merged: 417 entries"} {
		if !strings.Contains(stderr, w) {
			t.Errorf("summary lacks %q:\n%s", w, stderr)
		}
	}
	var rep struct {
		Merged  int
		Sources []struct{ Name, Status string }
	}
	b, _ := os.ReadFile(report)
	if err := json.Unmarshal(b, &rep); err != nil || rep.Merged != 417 || len(rep.Sources) != 4 {
		t.Errorf("report = %+v, %v", rep, err)
	}
	// Default format: Mastodon's import CSV on stdout.
	code, stdout, _ = runCLI(t, nil, "blocklist", "merge",
		"--config", filepath.Join(abs, "fediblockhole-config", "oliphant-tier0.conf.toml"),
		"--rebase", "/opt/fediblockhole/blocklists/="+filepath.Join(abs, "oliphant")+"/")
	if code != 0 || !strings.HasPrefix(stdout, "#domain,#severity,#reject_media,#reject_reports,#public_comment,#obfuscate\n") {
		t.Errorf("exit %d, stdout %.200s", code, stdout)
	}
	// Without --rebase the sources cannot be read: the last good archived copies stand in,
	// exit 0, and the summary says so...
	code, _, stderr = runCLI(t, nil, "blocklist", "merge", "--config", filepath.Join(abs, "fediblockhole-config", "oliphant-tier0.conf.toml"))
	if code != 0 || !strings.Contains(stderr, "failed_using_last_good_copy") || !strings.Contains(stderr, "merged: 417 entries") {
		t.Errorf("exit %d, stderr %s", code, stderr)
	}
	// ...and with no archive yet they are left out.
	if err := os.Chdir(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runCLI(t, nil, "blocklist", "merge", "--config", filepath.Join(abs, "fediblockhole-config", "oliphant-tier0.conf.toml"))
	if code != 0 || !strings.Contains(stderr, "failed_left_out") || !strings.Contains(stderr, "merged: 0 entries") {
		t.Errorf("exit %d, stderr %s", code, stderr)
	}
	if code, _, _ := runCLI(t, nil, "blocklist", "merge", "--config", filepath.Join(abs, "fediblockhole-config", "oliphant-tier0.conf.toml"), "--format", "xml"); code != 2 {
		t.Errorf("bad format: exit %d", code)
	}
	if code, _, _ := runCLI(t, nil, "blocklist", "merge", "--rebase", "nonsense"); code != 2 {
		t.Errorf("bad rebase: exit %d", code)
	}
}

func TestBlocklistPlanSyncSnapshotsRollback(t *testing.T) {
	cfg, sim, dir := sandboxConfig(t, "")
	list := filepath.Join(dir, "list.csv")
	write := func(body string) {
		if err := os.WriteFile(list, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("domain,severity\nbad.example,suspend\nmeh.example,silence\n")
	f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "\n[blocklist]\nblocklist_url_sources = [ { url = \"file://%s\", name = \"ours\" } ]\ninitial_import = true\nmax_change_pct = 100\ndestinations = [\"sb\"]\n", list)
	f.Close()
	sim.AddDomainBlock(mastosim.DomainBlock{Domain: "manual.example", Severity: "suspend"})

	code, out, errOut := runCLI(t, nil, "--config", cfg, "blocklist", "plan")
	if code != 0 || !strings.Contains(out, "create  bad.example") || !strings.Contains(out, "- → suspend") || len(sim.DomainBlocks()) != 1 {
		t.Fatalf("plan: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, _ = runCLI(t, nil, "--config", cfg, "blocklist", "plan", "--json")
	var first map[string]any
	if code != 0 || json.Unmarshal([]byte(strings.SplitN(out, "\n", 2)[0]), &first) != nil || first["action"] != "create" || first["instance"] != "sb" {
		t.Fatalf("plan --json: exit %d\n%s", code, out)
	}
	code, out, errOut = runCLI(t, nil, "--config", cfg, "blocklist", "sync", "--dry-run")
	if code != 0 || !strings.Contains(out, "dry run (nothing changed): blocklist sb: 2 created") || len(sim.DomainBlocks()) != 1 {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, nil, "--config", cfg, "blocklist", "sync")
	if code != 0 || !strings.Contains(out, "blocklist sb: 2 created, 0 updated, 0 removed") || len(sim.DomainBlocks()) != 3 {
		t.Fatalf("sync: exit %d\n%s\n%s", code, out, errOut)
	}
	write("domain,severity\nbad.example,suspend\nmeh.example,suspend\nnew.example,suspend\n")
	if code, out, _ := runCLI(t, nil, "--config", cfg, "blocklist", "sync"); code != 0 || !strings.Contains(out, "1 created, 1 updated") {
		t.Fatalf("second sync: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, nil, "--config", cfg, "blocklist", "snapshots", "--instance", "sb")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 2 {
		t.Fatalf("snapshots: exit %d\n%s", code, out)
	}
	first3 := strings.Fields(lines[0])[0]
	code, out, errOut = runCLI(t, nil, "--config", cfg, "blocklist", "rollback", "--to", first3)
	if code != 0 || !strings.Contains(out, "0 created, 1 updated, 1 removed") {
		t.Fatalf("rollback: exit %d\n%s\n%s", code, out, errOut)
	}
	sev := map[string]string{}
	for _, b := range sim.DomainBlocks() {
		sev[b.Domain] = b.Severity
	}
	if fmt.Sprint(sev) != "map[bad.example:suspend manual.example:suspend meh.example:silence]" {
		t.Errorf("after rollback: %v", sev)
	}
	if code, _, _ := runCLI(t, nil, "--config", cfg, "blocklist", "rollback"); code != 2 {
		t.Errorf("rollback without --to: exit %d", code)
	}
	if code, _, errOut := runCLI(t, nil, "--config", cfg, "blocklist", "apply", "--plan", "nope"); code != 2 || !strings.Contains(errOut, "no destination has a held plan") {
		t.Errorf("apply unknown plan: exit %d %s", code, errOut)
	}
}

// TestFediBlockHoleDestination syncs through a FediBlockHole-style destination (domain and
// token_env_var, no [[instance]]), as an unchanged FediBlockHole configuration would.
func TestFediBlockHoleDestination(t *testing.T) {
	sim := mastosim.New(mastosim.Options{})
	sim.AddToken("fbh-dest-token-123456", "admin:read admin:write")
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	dir := t.TempDir()
	list := filepath.Join(dir, "list.csv")
	if err := os.WriteFile(list, []byte("domain,severity\nbad.example,suspend\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "fbh.conf.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`
blocklist_url_sources = [ { url = 'file://%s', format = 'csv' } ]
blocklist_instance_destinations = [ { domain = '%s', scheme = 'http', token_env_var = 'DEST_TOKEN', max_followed_severity = 'silence' } ]
import_fields = ['public_comment']

[archive]
url = '%s'
`, list, host, filepath.Join(dir, "archive"))), 0o600); err != nil {
		t.Fatal(err)
	}
	// The first import exceeds max_change_pct: held; the plan id is applied.
	env := map[string]string{"DEST_TOKEN": "fbh-dest-token-123456"}
	code, out, errOut := runCLI(t, env, "--config", cfg, "blocklist", "sync")
	if code != 1 || !strings.Contains(out, "held") {
		t.Fatalf("first import: exit %d\n%s\n%s", code, out, errOut)
	}
	id := out[strings.Index(out, "plan ")+5:]
	id = id[:strings.IndexByte(id, ' ')]
	if code, out, errOut := runCLI(t, env, "--config", cfg, "blocklist", "apply", "--plan", id); code != 0 || !strings.Contains(out, "1 created") {
		t.Fatalf("apply: exit %d\n%s\n%s", code, out, errOut)
	}
	if bs := sim.DomainBlocks(); len(bs) != 1 || bs[0].Domain != "bad.example" || !strings.HasPrefix(bs[0].PrivateComment, "fediops:") {
		t.Errorf("blocks = %+v", bs)
	}
	if strings.Contains(errOut, "fbh-dest-token-123456") {
		t.Error("token logged")
	}
	// Without the variable: a configuration error naming the destination.
	if code, _, errOut := runCLI(t, nil, "--config", cfg, "blocklist", "sync"); code != 2 || !strings.Contains(errOut, "DEST_TOKEN") {
		t.Errorf("missing token: exit %d %s", code, errOut)
	}
}

// An archive written before raw sources were content-addressed: its snapshots are listed and
// rolled back to; a merge over unchanged sources archives nothing new (58 bytes of source and
// 155 of merged list the first time).
func TestBlocklistArchiveBeforeContentAddressing(t *testing.T) {
	sim := mastosim.New(mastosim.Options{})
	sim.AddToken("cli-token-abcdef", "admin:read admin:write")
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	archive := filepath.Join(dir, "archive")
	if err := os.CopyFS(archive, os.DirFS("../../functions/blocklist/testdata/archive-before-13")); err != nil {
		t.Fatal(err)
	}
	list := filepath.Join(dir, "team.csv")
	if err := os.WriteFile(list, []byte("domain,severity\nbad.example,suspend\nworse.example,suspend\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tok := filepath.Join(dir, "token")
	if err := os.WriteFile(tok, []byte("cli-token-abcdef"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "fediops.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("[[instance]]\nname = \"main\"\nurl = %q\ntoken = \"file://%s\"\n\n[archive]\nurl = %q\n\n[blocklist]\nblocklist_url_sources = [ { url = \"file://%s\", name = \"team\" } ]\ndestinations = [\"main\"]\nmax_change_pct = 1000\n",
		srv.URL, tok, archive, list)), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, nil, "--config", cfg, "blocklist", "snapshots", "--instance", "main")
	if code != 0 || !strings.Contains(out, "20261125T100000.000000Z-olda  main") || !strings.Contains(out, "20261125T110000.000000Z-oldb  main") {
		t.Fatalf("snapshots: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, nil, "--config", cfg, "blocklist", "rollback", "--to", "20261125T100000.000000Z-olda")
	if code != 0 || !strings.Contains(out, "4 created") || len(sim.DomainBlocks()) != 4 {
		t.Fatalf("rollback: exit %d\n%s\n%s", code, out, errOut)
	}
	for i, want := range []string{"merged: 2 entries; 0 source(s) failed; 213 bytes of new data archived", "merged: 2 entries; 0 source(s) failed; 0 bytes of new data archived"} {
		code, _, errOut = runCLI(t, nil, "--config", cfg, "blocklist", "merge")
		if code != 0 || !strings.Contains(errOut, want) {
			t.Fatalf("merge %d: exit %d\n%s", i, code, errOut)
		}
	}
}

// TestDestinationWithoutTokenFailsAlone: of two FediBlockHole-style destinations, the one
// whose token variable is unset fails with a message naming it; the other is synced.
func TestDestinationWithoutTokenFailsAlone(t *testing.T) {
	var hosts []string
	var sims []*mastosim.Server
	for range 2 {
		sim := mastosim.New(mastosim.Options{})
		sim.AddToken("fbh-dest-token-123456", "admin:read admin:write")
		srv := httptest.NewServer(sim)
		t.Cleanup(srv.Close)
		hosts = append(hosts, strings.TrimPrefix(srv.URL, "http://"))
		sims = append(sims, sim)
	}
	dir := t.TempDir()
	list := filepath.Join(dir, "list.csv")
	if err := os.WriteFile(list, []byte("domain,severity\nbad.example,suspend\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "fbh.conf.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`
blocklist_url_sources = [ { url = 'file://%s', format = 'csv' } ]
blocklist_instance_destinations = [
  { domain = '%s', scheme = 'http', token_env_var = 'GOOD_TOKEN' },
  { domain = '%s', scheme = 'http', token_env_var = 'MISSING_TOKEN' },
]
initial_import = true

[archive]
url = '%s'
`, list, hosts[0], hosts[1], filepath.Join(dir, "archive"))), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, map[string]string{"GOOD_TOKEN": "fbh-dest-token-123456"}, "--config", cfg, "blocklist", "sync")
	if code != 2 || !strings.Contains(errOut, "MISSING_TOKEN is not set") {
		t.Errorf("exit %d; want 2 naming the missing variable\n%s\n%s", code, out, errOut)
	}
	if bs := sims[0].DomainBlocks(); len(bs) != 1 || bs[0].Domain != "bad.example" {
		t.Errorf("the destination with a token was not synced: %+v\n%s", bs, out)
	}
	if bs := sims[1].DomainBlocks(); len(bs) != 0 {
		t.Errorf("blocks on the destination without a token: %+v", bs)
	}
}

// TestLiteralTokenWarnsOnTheCommandLine: FediBlockHole's token = '…' works in the CLI, with a
// WARNING (the functions refuse it: see e2e).
func TestLiteralTokenWarnsOnTheCommandLine(t *testing.T) {
	sim := mastosim.New(mastosim.Options{})
	sim.AddToken("literal-token-abcdef", "admin:read admin:write")
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	list := filepath.Join(dir, "list.csv")
	if err := os.WriteFile(list, []byte("domain,severity\nbad.example,suspend\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "fbh.conf.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`
blocklist_url_sources = [ { url = 'file://%s', format = 'csv' } ]
blocklist_instance_destinations = [ { domain = '%s', scheme = 'http', token = 'literal-token-abcdef' } ]
initial_import = true

[archive]
url = '%s'
`, list, strings.TrimPrefix(srv.URL, "http://"), filepath.Join(dir, "archive"))), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, nil, "--config", cfg, "blocklist", "sync")
	if code != 0 || len(sim.DomainBlocks()) != 1 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "WARNING") || !strings.Contains(errOut, "token is written into the configuration file") {
		t.Errorf("no warning about the literal token:\n%s", errOut)
	}
	if strings.Contains(errOut+out, "literal-token-abcdef") {
		t.Error("the token was printed")
	}
}

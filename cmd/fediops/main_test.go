package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fediops/fediops/shared/pubsubmsg"
	"github.com/fediops/fediops/shared/testsupport/mastosim"
)

// runCLI runs the CLI in-process and returns its exit code and output.
func runCLI(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := execute(context.Background(), args, &out, &errb, func(k string) string { return env[k] })
	return code, out.String(), errb.String()
}

// sandboxConfig starts a simulator with pending sign-ups and writes a configuration for it.
func sandboxConfig(t *testing.T, extra string) (string, *mastosim.Server, string) {
	t.Helper()
	sim := mastosim.New(mastosim.Options{})
	sim.AddToken("cli-token-abcdef", "admin:read admin:write")
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	if err := os.WriteFile(tok, []byte("cli-token-abcdef"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf("[[instance]]\nname = \"sb\"\nurl = %q\ntoken = \"file://%s\"\n\n[archive]\nurl = %q\n%s",
		srv.URL, tok, filepath.Join(dir, "archive"), extra)
	p := filepath.Join(dir, "fediops.toml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p, sim, dir
}

func TestClassify(t *testing.T) {
	cfg, _, _ := sandboxConfig(t, "\n[triage]\napprove_domains = [\"example.gov\"]\nreject_domains = [\"gmail.com\"]\n\n[[instance]]\nname = \"other\"\nurl = \"https://o.example\"\ntoken = \"env://X\"\n[instance.triage]\napprove_domains = [\"gov.uk\"]\n")
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want []string // decision per address
	}{
		{"embedded defaults", nil, []string{"triage", "classify", "a@agency.gov", "b@gmail.com", "c@agency.gov.evil.com", "bad"}, []string{"approve", "reject", "hold", "hold"}},
		{"--config", nil, []string{"--config", cfg, "triage", "classify", "a@agency.gov", "b@x.example.gov"}, []string{"hold", "approve"}},
		{"FEDIOPS_CONFIG", map[string]string{"FEDIOPS_CONFIG": cfg}, []string{"triage", "classify", "b@x.example.gov"}, []string{"approve"}},
		{"--instance override", nil, []string{"--config", cfg, "triage", "classify", "--instance", "other", "b@x.example.gov", "c@hmrc.gov.uk"}, []string{"hold", "approve"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, tt.env, tt.args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("output:\n%s", out)
			}
			for i, l := range lines {
				var v struct{ Email, Decision, Rule string }
				if err := json.Unmarshal([]byte(l), &v); err != nil {
					t.Fatalf("line %q: %v", l, err)
				}
				if v.Decision != tt.want[i] || v.Rule == "" || v.Email != tt.args[len(tt.args)-len(tt.want)+i] {
					t.Errorf("line %d = %+v, want decision %s", i, v, tt.want[i])
				}
			}
		})
	}
}

func TestExitCodes(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.toml")
	if err := os.WriteFile(bad, []byte("[archive]\nurl = \"/tmp/unused\"\n[triage]\nmax_actions = 0\nwat = 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"triage", "run", "--config", bad}, 2, "triage.max_actions"},
		{[]string{"triage", "run", "--config", bad}, 2, "wat: unknown key"},
		{[]string{"triage", "run"}, 2, "FEDIOPS_CONFIG"},
		{[]string{"triage", "classify", "--config", bad, "a@b.gov"}, 2, "max_actions"},
		{[]string{"triage", "classify"}, 2, "requires at least 1 arg"},
		{[]string{"nosuch"}, 2, "unknown command"},
	}
	for _, tt := range tests {
		code, _, errOut := runCLI(t, nil, tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.msg) {
			t.Errorf("%v: exit %d, stderr %q; want %d containing %q", tt.args, code, errOut, tt.code, tt.msg)
		}
	}
}

func TestTriageRun(t *testing.T) {
	cfg, sim, dir := sandboxConfig(t, "")
	ok := sim.AddAccount(mastosim.Account{Username: "ann", Email: "ann@agency.gov", Confirmed: true})
	spam := sim.AddAccount(mastosim.Account{Username: "spam", Email: "s@gmail.com"})

	code, out, errOut := runCLI(t, nil, "--config", cfg, "triage", "run", "--dry-run")
	if code != 0 || !strings.Contains(out, "dry run, nothing changed") || !strings.Contains(out, "would approve") {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, out, errOut)
	}
	if a, _ := sim.Account(ok); a.Approved {
		t.Fatal("dry run approved")
	}
	code, out, errOut = runCLI(t, nil, "--config", cfg, "triage", "run")
	if code != 0 || !strings.Contains(out, "1 approved, 1 rejected") || !strings.Contains(out, "audit trail: "+filepath.Join(dir, "archive")) {
		t.Fatalf("run: exit %d\n%s\n%s", code, out, errOut)
	}
	if a, _ := sim.Account(ok); !a.Approved {
		t.Error("not approved")
	}
	if _, exists := sim.Account(spam); exists {
		t.Error("not rejected")
	}
	for _, line := range strings.Split(strings.TrimSpace(errOut), "\n") {
		if line != "" && !strings.HasPrefix(line, "{") {
			t.Errorf("non-JSON log line on stderr: %q", line)
		}
	}
	// A failing server: exit 1.
	sim.InjectFault(mastosim.Fault{Kind: mastosim.FaultServerError, Times: -1})
	if code, _, _ := runCLI(t, map[string]string{"FEDIOPS_CONFIG": cfg}, "triage", "run", "--instance", "sb"); code != 1 {
		t.Errorf("exit %d on a failing server, want 1", code)
	}
}

func TestDemo(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	code, out, errOut := runCLI(t, nil, "demo", "--dir", dir)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"dry run, nothing changed", "would approve", "approved (approve_domains: gov)",
		"rejected (reject_domains: gmail.com)", "held (no rule matches health.gov.evil.com)", "Still pending for a human on the sandbox: 3",
		"our-team", "canary 1", "invalid_domain 1", "allowlisted 1", "16 to create", "less_strict_than_manual",
		"blocklist sandbox: 16 created", "limited because of follows: 101010.pl", "2 manual (untouched)",
		"Backup audit", "cloudsql.pitr_enabled", "fediops-broken/mastodon-db", "FAIL: 18 pass, 6 warn, 13 fail",
		"dry run: would delete 27 Failed pods", "Restore drill of the healthy database", "drill.cleanup", "The clone is gone",
		"Instant triage", "nadia <nadia@transport.gov> signed up: approved", "promo <promo.deals@gmail.com> signed up: rejected"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	audits, _ := filepath.Glob(filepath.Join(dir, "archive", "triage", "sandbox", "*", "*", "*", "*.jsonl"))
	if len(audits) != 4 {
		t.Errorf("audit files = %v, want 4 (dry run, run, two instant decisions)", audits)
	}
	if _, err := os.Stat(filepath.Join(dir, "fediops.toml")); err != nil {
		t.Error(err)
	}
}

func TestServe(t *testing.T) {
	cfg, sim, dir := sandboxConfig(t, "")
	id := sim.AddAccount(mastosim.Account{Username: "ann", Email: "ann@agency.gov", Confirmed: true})
	hook := filepath.Join(dir, "webhook-secret")
	if err := os.WriteFile(hook, []byte("serve-hook-secret-42"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte(strings.Replace(string(b), "\n\n[archive]", "\nwebhook_secret = \"file://"+hook+"\"\n\n[archive]", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FEDIOPS_CONFIG", cfg)
	for _, k := range []string{"FEDIOPS_PUBSUB_ENDPOINT", "FEDIOPS_TRIAGE_TOPIC", "FEDIOPS_BLOCKLIST_TOPIC"} {
		t.Setenv(k, "") // serve sets them for its functions
	}
	t.Setenv("FUNCTION_TARGET", "")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	go runCLI(t, map[string]string{"PORT": port}, "serve") // serves until the test binary exits
	url := "http://127.0.0.1:" + port + "/Approve"
	var resp *http.Response
	for i := 0; i < 100; i++ {
		e := pubsubmsg.NewEvent("e1", "fediops-triage", []byte(`{}`), time.Now())
		body, _ := json.Marshal(e)
		resp, err = http.Post(url, "application/cloudevents+json", bytes.NewReader(body))
		if err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if a, _ := sim.Account(id); !a.Approved {
		t.Error("the served Approve function did not run triage")
	}

	// A sign-up on the server: its webhook reaches the served TriageWebhook, which publishes to
	// the in-process Pub/Sub, which pushes to the served Approve, which decides.
	t.Cleanup(sim.StopWebhooks)
	sim.AddWebhook(mastosim.Webhook{URL: "http://127.0.0.1:" + port + "/TriageWebhook/sb", Secret: "serve-hook-secret-42", Events: []string{"account.created"}})
	start := time.Now()
	signup := sim.AddAccount(mastosim.Account{Username: "maria", Email: "maria@health.gov", Confirmed: true})
	for a, _ := sim.Account(signup); !a.Approved; a, _ = sim.Account(signup) {
		if time.Since(start) > 20*time.Second {
			t.Fatalf("the sign-up was not decided through the webhook; deliveries: %+v", sim.Deliveries())
		}
		time.Sleep(20 * time.Millisecond)
	}
	sim.WaitWebhooks(5 * time.Second)
	if d := sim.Deliveries(); len(d) == 0 || d[0].Status != http.StatusAccepted {
		t.Errorf("deliveries = %+v", d)
	}
	t.Logf("sign-up to approval through fediops serve: %s", time.Since(start))
}

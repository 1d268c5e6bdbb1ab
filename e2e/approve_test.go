package e2e

import (
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fediops/fediops/shared/testsupport/gcpfake"
	"github.com/fediops/fediops/shared/testsupport/mastosim"
)

const triageToken = "e2e-triage-token-5f2a9c"

// deployment is what the deployed functions find around them: the configuration object and
// the archive bucket in Cloud Storage, tokens in Secret Manager, and a Mastodon server.
type deployment struct {
	gcs *gcpfake.Storage
	sm  *gcpfake.SecretManager
	sim *mastosim.Server
	url string
}

func deploy(t *testing.T, extraConfig string) *deployment {
	t.Helper()
	d := &deployment{gcs: gcpfake.StartStorage(t, "fediops-config", "fediops-archive"), sm: gcpfake.StartSecretManager(t)}
	d.sim = mastosim.New(mastosim.Options{})
	d.sim.AddToken(triageToken, "admin:read:accounts admin:write:accounts admin:read:email_domain_blocks admin:write:email_domain_blocks admin:read:domain_blocks admin:write:domain_blocks admin:read")
	srv := httptest.NewServer(d.sim)
	t.Cleanup(srv.Close)
	d.url = srv.URL
	d.sm.Set("projects/test/secrets/mastodon-token", []byte(triageToken))
	cfg := fmt.Sprintf(`
[[instance]]
name = "main"
url = %q
token = "sm://projects/test/secrets/mastodon-token/versions/latest"

[archive]
url = "gs://fediops-archive/prod"
%s`, srv.URL, extraConfig)
	d.gcs.Put("fediops-config", "fediops.toml", []byte(cfg))
	t.Setenv("FEDIOPS_CONFIG", "gs://fediops-config/fediops.toml")
	t.Setenv("FEDIOPS_STORAGE_ENDPOINT", d.gcs.Endpoint)
	t.Setenv("FEDIOPS_SECRETMANAGER_ENDPOINT", d.sm.Addr)
	resetLogs(t)
	return d
}

func TestApproveDeployedPath(t *testing.T) {
	d := deploy(t, "")
	now := time.Now()
	ok := d.sim.AddAccount(mastosim.Account{Username: "alice", Email: "alice@agency.gov", Confirmed: true, CreatedAt: now})
	bad := d.sim.AddAccount(mastosim.Account{Username: "spam", Email: "spam@gmail.com", CreatedAt: now})
	held := d.sim.AddAccount(mastosim.Account{Username: "who", Email: "who@example.org", Confirmed: true, CreatedAt: now})

	// A dry run from the message changes nothing.
	if code := publish(t, "Approve", []byte(`{"dry_run": true}`), now); code != 200 {
		t.Fatalf("dry run: status %d", code)
	}
	if a, _ := d.sim.Account(ok); a.Approved {
		t.Fatal("dry run approved")
	}
	// The scheduled tick: an empty JSON object.
	if code := publish(t, "Approve", []byte(`{}`), now); code != 200 {
		t.Fatalf("status %d", code)
	}
	if a, _ := d.sim.Account(ok); !a.Approved {
		t.Error("alice not approved")
	}
	if _, exists := d.sim.Account(bad); exists {
		t.Error("spam not rejected")
	}
	if a, _ := d.sim.Account(held); a.Approved {
		t.Error("held account approved")
	}
	objs := d.gcs.Objects(t, "fediops-archive", "prod/triage/main/")
	if len(objs) != 2 {
		t.Fatalf("audit objects = %d, want 2 (dry run + run)", len(objs))
	}
	var sawApplied bool
	for name, b := range objs {
		if strings.Contains(string(b), triageToken) {
			t.Errorf("token in %s", name)
		}
		if strings.Contains(string(b), `"outcome":"approved"`) {
			sawApplied = true
		}
	}
	if !sawApplied {
		t.Error("no applied approval in the audit trail")
	}
	if got := d.sm.Accessed(); len(got) == 0 || !strings.HasSuffix(got[0], "/versions/latest") {
		t.Errorf("secret manager not used: %v", got)
	}
	lines := logLines(t)
	if !hasLog(lines, "INFO", "triage done on main") {
		t.Errorf("no summary line")
	}
	if flushLogs(t); strings.Contains(stdout.String(), triageToken) {
		t.Error("token in the logs")
	}
}

func TestApproveInvalidMessagesAreAcknowledged(t *testing.T) {
	d := deploy(t, "")
	id := d.sim.AddAccount(mastosim.Account{Username: "alice", Email: "alice@agency.gov", Confirmed: true})
	tests := []struct {
		body string
		want string
	}{
		{`{"dryrun": true}`, "invalid Pub/Sub message"},
		{`not json`, "invalid Pub/Sub message"},
		{`{"instances": ["nope"]}`, `unknown instance "nope"`},
	}
	for _, tt := range tests {
		resetLogs(t)
		if code := publish(t, "Approve", []byte(tt.body), time.Now()); code != 200 {
			t.Errorf("%s: status %d, want 200 (acknowledged)", tt.body, code)
		}
		if !hasLog(logLines(t), "ERROR", tt.want) {
			t.Errorf("%s: no ERROR line containing %q:\n%s", tt.body, tt.want, stdout.String())
		}
	}
	if a, _ := d.sim.Account(id); a.Approved {
		t.Error("an invalid message led to a run")
	}
	// A stale event (Pub/Sub retries for a day) is dropped.
	resetLogs(t)
	if code := publish(t, "Approve", nil, time.Now().Add(-3*time.Hour)); code != 200 {
		t.Errorf("stale: status %d", code)
	}
	if a, _ := d.sim.Account(id); a.Approved {
		t.Error("a stale event led to a run")
	}
	if !hasLog(logLines(t), "WARNING", "stale event") {
		t.Error("stale event not logged")
	}
}

func TestApproveServerDownIsRetried(t *testing.T) {
	d := deploy(t, "")
	d.sim.AddAccount(mastosim.Account{Username: "alice", Email: "alice@agency.gov", Confirmed: true})
	d.sim.InjectFault(mastosim.Fault{Kind: mastosim.FaultServerError, Status: 503, Times: -1})
	if code := publish(t, "Approve", nil, time.Now()); code != 500 {
		t.Errorf("status %d, want 500 so that Pub/Sub redelivers", code)
	}
	if !hasLog(logLines(t), "ERROR", "Pub/Sub will redeliver") {
		t.Errorf("no ERROR line:\n%s", stdout.String())
	}
}

func TestApproveBadConfigIsReported(t *testing.T) {
	deploy(t, "\n[triage]\nmax_actions = 0\n")
	if code := publish(t, "Approve", nil, time.Now()); code != 200 {
		t.Errorf("status %d", code)
	}
	if !hasLog(logLines(t), "ERROR", "triage.max_actions") {
		t.Errorf("config problem not logged with its key:\n%s", stdout.String())
	}
}

// TestApproveListSourcesAndEmailBlocksDeployed: the deployed function reads a reject list
// from Cloud Storage (gs://), rejects a pending sign-up it names (the audit names the list),
// keeps the instance's email-domain blocks equal to the reject list and rejects a sign-up
// whose domain an admin blocked by hand.
func TestApproveListSourcesAndEmailBlocksDeployed(t *testing.T) {
	d := deploy(t, `
[triage]
reject_domains = ["gmail.com"]
reject_domain_sources = [ { url = "gs://fediops-config/lists/spam.txt", name = "spam" } ]
sync_email_domain_blocks = true
`)
	d.gcs.Put("fediops-config", "lists/spam.txt", []byte("# our spam list\nlisted.example\n"))
	d.sim.AddEmailDomainBlock(mastosim.EmailDomainBlock{Domain: "byhand.example"})
	now := time.Now()
	listed := d.sim.AddAccount(mastosim.Account{Username: "lis", Email: "lis@listed.example", Confirmed: true, CreatedAt: now})
	byHand := d.sim.AddAccount(mastosim.Account{Username: "man", Email: "man@byhand.example", Confirmed: true, CreatedAt: now})
	gov := d.sim.AddAccount(mastosim.Account{Username: "gov", Email: "gov@agency.gov", Confirmed: true, CreatedAt: now})
	if code := publish(t, "Approve", []byte(`{}`), now); code != 200 {
		t.Fatalf("status %d", code)
	}
	for name, id := range map[string]string{"lis": listed, "man": byHand} {
		if _, exists := d.sim.Account(id); exists {
			t.Errorf("%s not rejected", name)
		}
	}
	if a, _ := d.sim.Account(gov); !a.Approved {
		t.Error("gov not approved")
	}
	var audit string
	for _, b := range d.gcs.Objects(t, "fediops-archive", "prod/triage/main/") {
		audit += string(b)
	}
	for _, want := range []string{`"rule":"reject_domain_sources spam: listed.example"`, `"rule":"email_domain_block: byhand.example"`} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit lacks %s:\n%s", want, audit)
		}
	}
	var blocks []string
	for _, b := range d.sim.EmailDomainBlocks() {
		blocks = append(blocks, b.Domain)
	}
	slices.Sort(blocks)
	if !slices.Equal(blocks, []string{"byhand.example", "gmail.com", "listed.example"}) {
		t.Errorf("email-domain blocks %v", blocks)
	}
	if len(d.gcs.Objects(t, "fediops-archive", "prod/triage-lists/objects/")) != 1 || len(d.gcs.Objects(t, "fediops-archive", "prod/triage-email-blocks/state/")) != 1 {
		t.Error("the list copy or the email-domain block state is not archived")
	}
	if !hasLog(logLines(t), "INFO", "email-domain blocks of main synced") {
		t.Errorf("no sync line:\n%s", stdout.String())
	}
}

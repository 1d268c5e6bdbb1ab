package e2e

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/fediops/fediops/shared/clock"
	"github.com/fediops/fediops/shared/testsupport/mastosim"
)

// TestSecretManagerOutageIsRedelivered: Secret Manager answering UNAVAILABLE is an outage a
// retry can fix: the function fails the event (Pub/Sub redelivers it), and the redelivery
// does the work once the service is back.
func TestSecretManagerOutageIsRedelivered(t *testing.T) {
	d := deploy(t, "")
	t.Setenv("FEDIOPS_TIMEOUT", "15s") // a short function: the outage ends its run in 10s
	now := time.Now()
	alice := d.sim.AddAccount(mastosim.Account{Username: "alice", Email: "alice@agency.gov", Confirmed: true, CreatedAt: now})
	d.sm.Fail(codes.Unavailable)
	if code := publish(t, "Approve", []byte(`{}`), now); code == 200 {
		t.Fatal("an outage was acknowledged; the event would be lost")
	}
	if !hasLog(logLines(t), "ERROR", "Pub/Sub will redeliver") {
		t.Error("no ERROR saying the event will be redelivered")
	}
	if a, _ := d.sim.Account(alice); a.Approved {
		t.Fatal("approved without a token?")
	}
	d.sm.Fail(codes.OK)
	if code := publish(t, "Approve", []byte(`{}`), now); code != 200 {
		t.Fatalf("redelivery: status %d", code)
	}
	if a, _ := d.sim.Account(alice); !a.Approved {
		t.Error("the redelivered event did not do the work")
	}
}

// TestMissingSecretIsAcknowledged: a secret that does not exist (NOT_FOUND) needs a person; the
// event is acknowledged with an ERROR, not redelivered for a day.
func TestMissingSecretIsAcknowledged(t *testing.T) {
	d := deploy(t, "")
	d.gcs.Put("fediops-config", "fediops.toml", []byte(fmt.Sprintf(`
[[instance]]
name = "main"
url = %q
token = "sm://projects/test/secrets/no-such-token/versions/latest"

[archive]
url = "gs://fediops-archive/prod"
`, d.url)))
	if code := publish(t, "Approve", []byte(`{}`), time.Now()); code != 200 {
		t.Fatalf("status %d: a missing secret must be acknowledged", code)
	}
	if !hasLog(logLines(t), "ERROR", "a retry cannot fix this") {
		t.Error("no ERROR naming the permanent failure")
	}
}

// TestBrokenBackupSectionDoesNotStopTriage: a mistake in [backup] is the backup audit's
// business; triage runs, with one WARNING naming the section.
func TestBrokenBackupSectionDoesNotStopTriage(t *testing.T) {
	d := deploy(t, "\n[backup]\nmin_retained_backups = \"many\"\n")
	alice := d.sim.AddAccount(mastosim.Account{Username: "alice", Email: "alice@agency.gov", Confirmed: true, CreatedAt: time.Now()})
	if code := publish(t, "Approve", []byte(`{}`), time.Now()); code != 200 {
		t.Fatalf("status %d", code)
	}
	if a, _ := d.sim.Account(alice); !a.Approved {
		t.Error("triage did not run")
	}
	lines := logLines(t)
	n := 0
	for _, l := range lines {
		if l["severity"] == "WARNING" && strings.Contains(fmt.Sprint(l["message"]), "[backup] has problems") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("want one WARNING naming [backup], got %d", n)
	}
	// The backup audit itself refuses to run on it.
	if code := publish(t, "BackupAudit", []byte(`{}`), time.Now()); code != 200 || !hasLog(logLines(t), "ERROR", "min_retained_backups") {
		t.Errorf("backup audit: status %d", code)
	}
}

// TestApproveNeverSleepsPastItsTimeout: deployed with --timeout=240s (FEDIOPS_TIMEOUT), triage
// meets a spent rate-limit window that resets in five minutes. It stops at once, writes its
// audit trail and releases its lease, instead of sleeping into the platform's kill.
func TestApproveNeverSleepsPastItsTimeout(t *testing.T) {
	d := deploy(t, "")
	// The simulator's rate-limit windows are five-minute periods of its clock: it runs just
	// ahead of the wall clock, one second into a period, so the window resets in five minutes,
	// after the function's deadline (240s less its margin).
	now := time.Now()
	ahead := now.Truncate(5 * time.Minute).Add(5*time.Minute + time.Second).Sub(now)
	d.sim = mastosim.New(mastosim.Options{RateLimit: 3, Clock: aheadClock(ahead)})
	d.sim.AddToken(triageToken, "admin:read:accounts admin:write:accounts admin:read:email_domain_blocks admin:write:email_domain_blocks")
	srv := httptest.NewServer(d.sim)
	t.Cleanup(srv.Close)
	d.gcs.Put("fediops-config", "fediops.toml", []byte(fmt.Sprintf(`
[[instance]]
name = "main"
url = %q
token = "sm://projects/test/secrets/mastodon-token/versions/latest"

[archive]
url = "gs://fediops-archive/prod"
`, srv.URL)))
	t.Setenv("FEDIOPS_TIMEOUT", "240s")
	for i := range 5 {
		d.sim.AddAccount(mastosim.Account{Username: fmt.Sprint("u", i), Email: fmt.Sprintf("u%d@agency.gov", i), Confirmed: true, CreatedAt: now})
	}
	start := time.Now()
	if code := publish(t, "Approve", []byte(`{}`), now); code != 200 {
		t.Fatalf("status %d", code)
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Fatalf("the run took %v: it slept for the rate-limit window", took)
	}
	lines := logLines(t)
	if !hasLog(lines, "INFO", "budget") {
		t.Errorf("the summary does not say the budget stopped it:\n%v", lines)
	}
	objs := d.gcs.Objects(t, "fediops-archive", "prod/triage/main/")
	if len(objs) != 1 {
		t.Fatalf("audit objects = %d, want 1", len(objs))
	}
	for _, data := range objs {
		if !strings.Contains(string(data), "deferred to the next run") {
			t.Errorf("audit trail lacks the deferred accounts:\n%s", data)
		}
	}
	// The lease was released: the next run starts at once (and finds the window spent).
	lease := d.gcs.Objects(t, "fediops-archive", "prod/leases/triage/main.json")
	for _, data := range lease {
		if !strings.Contains(string(data), `"expires":"0001-01-01T00:00:00Z"`) {
			t.Errorf("lease not released: %s", data)
		}
	}
}

// aheadClock is the wall clock, d ahead.
type aheadClock time.Duration

func (a aheadClock) Now() time.Time { return time.Now().Add(time.Duration(a)) }
func (a aheadClock) Sleep(ctx context.Context, d time.Duration) error {
	return clock.Real{}.Sleep(ctx, d)
}

// TestLiteralTokenRefusedWhenDeployed: a FediBlockHole-style destination with its token
// written into the configuration is refused by the deployed function (every function's account
// can read that object); the other destinations are synced, and the event is acknowledged.
func TestLiteralTokenRefusedWhenDeployed(t *testing.T) {
	other := mastosim.New(mastosim.Options{})
	other.AddToken("literal-token-0123456789", "admin:read admin:write")
	srv := httptest.NewServer(other)
	t.Cleanup(srv.Close)
	d := deploy(t, fmt.Sprintf(`
[blocklist]
blocklist_url_sources = [ { url = "gs://fediops-config/lists/tier0.csv", name = "tier0" } ]
blocklist_instance_destinations = [ { domain = %q, scheme = "http", token = "literal-token-0123456789" } ]
initial_import = true
destinations = ["main"]
`, strings.TrimPrefix(srv.URL, "http://")))
	d.gcs.Put("fediops-config", "lists/tier0.csv", []byte("domain,severity\nbad.example,suspend\n"))
	if code := publish(t, "BlocklistSync", []byte(`{}`), time.Now()); code != 200 {
		t.Fatalf("status %d: a configuration mistake must be acknowledged", code)
	}
	if n := len(d.sim.DomainBlocks()); n != 1 {
		t.Errorf("main has %d blocks, want 1: the other destination's mistake stopped it", n)
	}
	if n := len(other.DomainBlocks()); n != 0 {
		t.Errorf("the literal token was used: %d blocks", n)
	}
	lines := logLines(t)
	if !hasLog(lines, "ERROR", "written into the configuration file") {
		t.Error("no ERROR about the literal token")
	}
	if strings.Contains(stdout.String(), "literal-token-0123456789") {
		t.Error("the token was logged")
	}
}

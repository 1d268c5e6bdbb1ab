package approve

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2/pstest"
	"google.golang.org/grpc/codes"

	"github.com/fediops/fediops/shared/pubsubmsg"
	"github.com/fediops/fediops/shared/run"
	"github.com/fediops/fediops/shared/testsupport/mastosim"
)

const hookSecret = "hook-secret-5b1d0c9a7e"

// withWebhookSecret gives every instance of d a webhook_secret (from the environment).
func withWebhookSecret(t *testing.T, d *deployment) {
	t.Helper()
	b, err := os.ReadFile(d.config)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.ReplaceAll(string(b), "token = \"env://FEDIOPS_TOKEN\"\n", "token = \"env://FEDIOPS_TOKEN\"\nwebhook_secret = \"env://FEDIOPS_HOOK\"\n")
	if err := os.WriteFile(d.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	d.env["FEDIOPS_HOOK"] = hookSecret
}

func (d *deployment) webhookServer(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(Webhook{Invocation: d.handler().Invocation})
	t.Cleanup(srv.Close)
	return srv.URL
}

func sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func eventBody(event, id string, created time.Time, approved bool) []byte {
	return fmt.Appendf(nil, `{"event":%q,"created_at":%q,"object":{"id":%q,"username":"maria","domain":null,"email":"maria@health.gov","confirmed":true,"approved":%v,"role":{"id":-99,"permissions":65536}}}`,
		event, created.UTC().Format("2006-01-02T15:04:05.000Z"), id, approved)
}

func post(t *testing.T, url string, body []byte, sig string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if sig != "" {
		req.Header.Set("X-Hub-Signature", sig)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestWebhookAnswers covers every answer of the webhook: only a signed account.created for a
// pending local account, not too old, is published (202); everything else publishes nothing.
func TestWebhookAnswers(t *testing.T) {
	now := time.Now()
	good := eventBody("account.created", "110000000000000001", now, false)
	big := append(eventBody("account.created", "1", now, false), make([]byte, MaxWebhookBody)...)
	tests := []struct {
		name   string
		method string
		path   string
		body   []byte
		sig    string // "good" signs body with the right secret
		setup  func(t *testing.T, d *deployment)
		want   int
		log    string
	}{
		{name: "signed account.created", path: "/TriageWebhook/a", body: good, sig: "good", want: 202, log: "handed to triage"},
		{name: "deployed path (served at /)", path: "/a", body: good, sig: "good", want: 202},
		{name: "trailing slash", path: "/TriageWebhook/a/", body: good, sig: "good", want: 202},
		{name: "uppercase hex signature (same bytes)", path: "/TriageWebhook/a", body: good, sig: strings.ToUpper(sign(hookSecret, good)[7:]), want: 202},
		{name: "missing signature", path: "/TriageWebhook/a", body: good, want: 401, log: "X-Hub-Signature is missing or wrong"},
		{name: "wrong secret", path: "/TriageWebhook/a", body: good, sig: sign("another-secret-123", good), want: 401},
		{name: "signature of another body", path: "/TriageWebhook/a", body: good, sig: sign(hookSecret, eventBody("account.created", "2", now, false)), want: 401},
		{name: "not sha256=", path: "/TriageWebhook/a", body: good, sig: "sha1=" + sign(hookSecret, good)[7:], want: 401},
		{name: "garbage signature", path: "/TriageWebhook/a", body: good, sig: "sha256=zz", want: 401},
		{name: "body over 64 KiB", path: "/TriageWebhook/a", body: big, sig: "good", want: 413},
		{name: "GET", method: http.MethodGet, path: "/TriageWebhook/a", want: 405},
		{name: "no instance in the path", path: "/TriageWebhook", body: good, sig: "good", want: 404},
		{name: "unknown instance", path: "/TriageWebhook/zzz", body: good, sig: "good", want: 401, log: "no [[instance]] name"},
		{name: "instance without webhook_secret", path: "/TriageWebhook/a", body: good, sig: "good", want: 401, log: "has no webhook_secret",
			setup: func(t *testing.T, d *deployment) {
				b, _ := os.ReadFile(d.config)
				_ = os.WriteFile(d.config, []byte(strings.ReplaceAll(string(b), "webhook_secret = \"env://FEDIOPS_HOOK\"\n", "")), 0o600)
			}},
		{name: "account.approved", path: "/TriageWebhook/a", body: eventBody("account.approved", "1", now, true), sig: "good", want: 204, log: "needs nothing"},
		{name: "report.created", path: "/TriageWebhook/a", body: []byte(`{"event":"report.created","created_at":"2026-01-01T00:00:00.000Z","object":{"id":"5"}}`), sig: "good", want: 204},
		{name: "account already approved", path: "/TriageWebhook/a", body: eventBody("account.created", "1", now, true), sig: "good", want: 204, log: "approved already"},
		{name: "event older than webhook_max_age", path: "/TriageWebhook/a", body: eventBody("account.created", "1", now.Add(-2*time.Hour), false), sig: "good", want: 204, log: "older than webhook_max_age"},
		{name: "signed but not JSON", path: "/TriageWebhook/a", body: []byte("hello {{object.username}}"), sig: "good", want: 400, log: "payload template"},
		{name: "signed, bad account id", path: "/TriageWebhook/a", body: eventBody("account.created", "../1", now, false), sig: "good", want: 400},
		{name: "no triage topic", path: "/TriageWebhook/a", body: good, sig: "good", want: 503, log: "FEDIOPS_TRIAGE_TOPIC is not set",
			setup: func(t *testing.T, d *deployment) { d.env[TopicVar] = "" }},
		{name: "Pub/Sub outage", path: "/TriageWebhook/a", body: good, sig: "good", want: 503, log: "publish failed",
			setup: func(t *testing.T, d *deployment) {
				ps := pstest.NewServer(pstest.WithErrorInjection("Publish", codes.Unavailable, "down"))
				t.Cleanup(func() { _ = ps.Close() })
				d.env["FEDIOPS_PUBSUB_ENDPOINT"] = ps.Addr
			}},
		{name: "configuration unreadable", path: "/TriageWebhook/a", body: good, sig: "good", want: 503, log: "cannot start",
			setup: func(t *testing.T, d *deployment) { d.env["FEDIOPS_CONFIG"] = d.config + ".missing" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDeployment(t, "", "a")
			withWebhookSecret(t, d)
			if tt.setup != nil {
				tt.setup(t, d)
			}
			url := d.webhookServer(t)
			sig := tt.sig
			if sig == "good" {
				sig = sign(hookSecret, tt.body)
			} else if sig != "" && !strings.Contains(sig, "=") {
				sig = "sha256=" + sig
			}
			var code int
			if tt.method == http.MethodGet {
				resp, err := http.Get(url + tt.path)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				code = resp.StatusCode
			} else {
				code = post(t, url+tt.path, tt.body, sig)
			}
			if code != tt.want {
				t.Errorf("status %d, want %d\n%s", code, tt.want, d.logs)
			}
			published := d.published()
			if tt.want == 202 {
				if want := `{"instances":["a"],"accounts":["110000000000000001"]}`; len(published) != 1 || published[0] != want {
					t.Errorf("published %v, want [%s]", published, want)
				}
			} else if len(published) != 0 {
				t.Errorf("published %v on a %d", published, code)
			}
			if tt.log != "" && !strings.Contains(d.logs.String(), tt.log) {
				t.Errorf("log lacks %q:\n%s", tt.log, d.logs)
			}
			if strings.Contains(d.logs.String(), hookSecret) {
				t.Error("the webhook secret is in the logs")
			}
			if d.requests() != 0 {
				t.Error("the webhook talked to the instance; it only publishes")
			}
		})
	}
}

// TestWebhookChunkedOverLongBody: a body without Content-Length is cut at the limit too.
func TestWebhookChunkedOverLongBody(t *testing.T) {
	d := newDeployment(t, "", "a")
	withWebhookSecret(t, d)
	url := d.webhookServer(t)
	pr, pw := io.Pipe()
	go func() {
		_, _ = pw.Write(make([]byte, 2*MaxWebhookBody))
		pw.Close()
	}()
	resp, err := http.Post(url+"/TriageWebhook/a", "application/json", pr)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Errorf("status %d, want 413", resp.StatusCode)
	}
}

// TestWebhookRedeliveredAndConcurrent: Mastodon delivers the same sign-up several times (a
// retry after a lost answer) and at the same time; the account is approved exactly once.
func TestWebhookRedeliveredAndConcurrent(t *testing.T) {
	d := newDeployment(t, "", "a")
	withWebhookSecret(t, d)
	url := d.webhookServer(t)
	id := d.sims["a"].AddAccount(mastosim.Account{Username: "maria", Email: "maria@health.gov", Confirmed: true})
	body := eventBody("account.created", id, time.Now(), false)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if code := post(t, url+"/TriageWebhook/a", body, sign(hookSecret, body)); code != 202 {
				t.Errorf("status %d", code)
			}
		})
	}
	wg.Wait()
	msgs := d.ps.Messages()
	if len(msgs) != 4 {
		t.Fatalf("%d messages published for 4 deliveries", len(msgs))
	}
	// Deliver the four messages to Approve at once, and each failed one again (as Pub/Sub does)
	// until all are acknowledged.
	pending := msgs
	for round := 0; len(pending) > 0; round++ {
		if round > 20 {
			t.Fatal("messages never acknowledged")
		}
		var mu sync.Mutex
		var again []*pstest.Message
		for _, m := range pending {
			wg.Go(func() {
				err := d.handler().Handle(context.Background(), pubsubmsg.NewEvent(m.ID, "fediops-triage", m.Data, time.Now()))
				if err != nil {
					if reason, _ := run.ReasonOf(err); reason != run.LeaseHeld {
						t.Errorf("message %s: %v", m.ID, err)
						return
					}
					mu.Lock()
					again = append(again, m)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		pending = again
	}
	approvals := 0
	for _, r := range d.sims["a"].Requests() {
		if r.Method == http.MethodPost && strings.HasSuffix(r.Path, "/approve") {
			approvals++
		}
	}
	if a, _ := d.sims["a"].Account(id); !a.Approved || approvals != 1 {
		t.Errorf("approved = %v after %d approve requests, want once", a.Approved, approvals)
	}
}

// TestSignUpToDecisionThroughTheWebhook: the simulator signs a new account up and delivers its
// webhook to TriageWebhook, whose message Approve decides.
func TestSignUpToDecisionThroughTheWebhook(t *testing.T) {
	d := newDeployment(t, "", "a")
	withWebhookSecret(t, d)
	url := d.webhookServer(t)
	sim := d.sims["a"]
	t.Cleanup(sim.StopWebhooks)
	sim.AddWebhook(mastosim.Webhook{URL: url + "/TriageWebhook/a", Secret: hookSecret, Events: []string{"account.created", "account.approved"}})
	approved := sim.AddAccount(mastosim.Account{Username: "maria", Email: "maria@health.gov", Confirmed: true})
	rejected := sim.AddAccount(mastosim.Account{Username: "spam", Email: "cheap@gmail.com"})
	if !sim.WaitWebhooks(10 * time.Second) {
		t.Fatal("deliveries did not finish")
	}
	for _, m := range d.ps.Messages() {
		if err := d.handler().Handle(context.Background(), pubsubmsg.NewEvent(m.ID, "fediops-triage", m.Data, time.Now())); err != nil {
			t.Fatal(err)
		}
	}
	if a, _ := sim.Account(approved); !a.Approved {
		t.Error("maria not approved")
	}
	if _, ok := sim.Account(rejected); ok {
		t.Error("spam not rejected")
	}
	// The approval makes Mastodon send account.approved, which the webhook answers 204.
	if !sim.WaitWebhooks(10 * time.Second) {
		t.Fatal("deliveries did not finish")
	}
	statuses := map[string]int{}
	for _, dl := range sim.Deliveries() {
		statuses[dl.Event] = dl.Status
	}
	if statuses["account.created"] != 202 || statuses["account.approved"] != 204 {
		t.Errorf("delivery statuses = %v", statuses)
	}
}

package e2e

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fediops/fediops/shared/testsupport/gcpfake"
	"github.com/fediops/fediops/shared/testsupport/localpubsub"
	"github.com/fediops/fediops/shared/testsupport/mastosim"
)

const webhookSecret = "e2e-webhook-secret-93c1d7f0a2"

// fleet is a deployment with several instances: the configuration in fake-gcs-server, the
// tokens and webhook secrets in the Secret Manager fake, one simulator per instance, and the
// in-process Pub/Sub pushing each topic to its function on the Functions Framework.
type fleet struct {
	gcs  *gcpfake.Storage
	sm   *gcpfake.SecretManager
	ps   *localpubsub.Server
	sims map[string]*mastosim.Server
	urls map[string]string
}

func deployFleet(t testing.TB, extra string, names ...string) *fleet {
	return deployFleetWith(t, extra, mastosim.Options{}, 10, 0, names...)
}

// deployFleetWith is deployFleet with the simulators' options, the push concurrency (the
// functions' max instance count) and a delay before each server answers.
func deployFleetWith(t testing.TB, extra string, simOpts mastosim.Options, concurrency int, latency time.Duration, names ...string) *fleet {
	t.Helper()
	f := &fleet{gcs: gcpfake.StartStorage(t, "fediops-config", "fediops-archive"), sm: gcpfake.StartSecretManager(t),
		sims: map[string]*mastosim.Server{}, urls: map[string]string{}}
	f.sm.Set("projects/test/secrets/mastodon-token", []byte(triageToken))
	f.sm.Set("projects/test/secrets/mastodon-webhook", []byte(webhookSecret))
	var cfg strings.Builder
	for _, n := range names {
		o := simOpts
		o.Webhooks = mastosim.WebhookOptions{Backoff: func(int) time.Duration { return 50 * time.Millisecond }}
		sim := mastosim.New(o)
		sim.AddToken(triageToken, "admin:read:accounts admin:write:accounts admin:read:domain_blocks admin:write:domain_blocks admin:read")
		var h http.Handler = sim
		if latency > 0 {
			h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				time.Sleep(latency)
				sim.ServeHTTP(w, r)
			})
		}
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		t.Cleanup(sim.StopWebhooks)
		f.sims[n], f.urls[n] = sim, srv.URL
		fmt.Fprintf(&cfg, "[[instance]]\nname = %q\nurl = %q\ntoken = \"sm://projects/test/secrets/mastodon-token/versions/latest\"\n"+
			"webhook_secret = \"sm://projects/test/secrets/mastodon-webhook\"\n\n", n, srv.URL)
	}
	fmt.Fprintf(&cfg, "[archive]\nurl = \"gs://fediops-archive/prod\"\n%s", extra)
	f.gcs.Put("fediops-config", "fediops.toml", []byte(cfg.String()))
	ps, err := localpubsub.Start("test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ps.Close() })
	f.ps = ps
	for topic, fn := range map[string]string{"fediops-triage": "Approve", "fediops-blocklist": "BlocklistSync"} {
		name, err := ps.Topic(topic)
		if err != nil {
			t.Fatal(err)
		}
		if err := ps.Push(name, baseURL+"/"+fn, localpubsub.PushOptions{Concurrency: concurrency, Backoff: 100 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
		t.Setenv(map[string]string{"Approve": "FEDIOPS_TRIAGE_TOPIC", "BlocklistSync": "FEDIOPS_BLOCKLIST_TOPIC"}[fn], name)
	}
	t.Setenv("FEDIOPS_PUBSUB_ENDPOINT", ps.Addr)
	t.Setenv("FEDIOPS_CONFIG", "gs://fediops-config/fediops.toml")
	t.Setenv("FEDIOPS_STORAGE_ENDPOINT", f.gcs.Endpoint)
	t.Setenv("FEDIOPS_SECRETMANAGER_ENDPOINT", f.sm.Addr)
	t.Setenv("FEDIOPS_TIMEOUT", "60s")
	resetLogs(t)
	return f
}

func signature(body []byte) string {
	mac := hmac.New(sha256.New, []byte(webhookSecret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func postWebhook(t *testing.T, path string, body []byte, sig string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, baseURL+path, strings.NewReader(string(body)))
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
	resp.Body.Close()
	return resp.StatusCode
}

// TestTriageWebhookDeployedPath: Mastodon's webhook for a sign-up reaches TriageWebhook on
// the Functions Framework, which reads its configuration from Cloud Storage and the secret
// from Secret Manager, publishes to Pub/Sub, which delivers to Approve, which decides.
func TestTriageWebhookDeployedPath(t *testing.T) {
	f := deployFleet(t, "", "main")
	sim := f.sims["main"]
	sim.AddWebhook(mastosim.Webhook{URL: baseURL + "/TriageWebhook/main", Secret: webhookSecret, Events: []string{"account.created", "account.approved"}})
	start := time.Now()
	maria := sim.AddAccount(mastosim.Account{Username: "maria", Email: "maria@health.gov", Confirmed: true})
	spam := sim.AddAccount(mastosim.Account{Username: "spam", Email: "cheap@gmail.com"})
	if err := f.ps.WaitIdle(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	for {
		a, _ := sim.Account(maria)
		_, spamLeft := sim.Account(spam)
		if a.Approved && !spamLeft {
			break
		}
		if time.Since(start) > 20*time.Second {
			t.Fatalf("not decided: maria approved=%v, spam present=%v; deliveries %+v", a.Approved, spamLeft, sim.Deliveries())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !sim.WaitWebhooks(10 * time.Second) {
		t.Fatal("webhook deliveries did not finish")
	}
	statuses := map[string][]int{}
	for _, d := range sim.Deliveries() {
		statuses[d.Event] = append(statuses[d.Event], d.Status)
	}
	if !slices.Equal(statuses["account.created"], []int{202, 202}) || !slices.Equal(statuses["account.approved"], []int{204}) {
		t.Errorf("delivery statuses %v", statuses)
	}
	if got := f.sm.Accessed(); !slices.ContainsFunc(got, func(s string) bool { return strings.Contains(s, "mastodon-webhook") }) {
		t.Errorf("the webhook secret was not read from Secret Manager: %v", got)
	}
	audits := f.gcs.Objects(t, "fediops-archive", "prod/triage/main/")
	if len(audits) != 2 {
		t.Errorf("%d audit objects, want one per decided sign-up", len(audits))
	}

	// A forged delivery is refused and publishes nothing; the logs never hold the secret.
	before := len(f.ps.Messages(""))
	body := []byte(`{"event":"account.created","created_at":"` + time.Now().UTC().Format(time.RFC3339) + `","object":{"id":"1","approved":false}}`)
	if code := postWebhook(t, "/TriageWebhook/main", body, "sha256="+strings.Repeat("0", 64)); code != 401 {
		t.Errorf("forged delivery: %d, want 401", code)
	}
	if code := postWebhook(t, "/TriageWebhook/main", append(body, make([]byte, 70<<10)...), signature(body)); code != 413 {
		t.Errorf("over-long body: %d, want 413", code)
	}
	if code := postWebhook(t, "/TriageWebhook/main", body, signature(body)); code != 202 {
		t.Errorf("signed delivery: %d, want 202", code)
	}
	if n := len(f.ps.Messages("")) - before; n != 1 {
		t.Errorf("%d messages published, want 1 (only the signed delivery)", n)
	}
	lines := logLines(t)
	if !hasLog(lines, "WARNING", "X-Hub-Signature is missing or wrong") || !hasLog(lines, "INFO", "handed to triage") {
		t.Errorf("log lines:\n%s", stdout.String())
	}
	if strings.Contains(stdout.String(), webhookSecret) || strings.Contains(stdout.String(), triageToken) {
		t.Error("a secret is in the logs")
	}
}

// TestFanOutWithAFailingInstance: a scheduled tick for four instances fans out; the instance
// whose server fails is retried by Pub/Sub while the others finish; when it recovers, it
// finishes too, and no instance is acted on twice.
func TestFanOutWithAFailingInstance(t *testing.T) {
	f := deployFleet(t, `
[blocklist]
blocklist_url_sources = [ { url = "gs://fediops-config/lists/tier0.csv", name = "tier0" } ]
initial_import = true
destinations = ["a", "b", "c", "broken"]
`, "a", "b", "c", "broken")
	f.gcs.Put("fediops-config", "lists/tier0.csv", []byte("domain,severity\nbad.example,suspend\nmeh.example,silence\n"))
	ids := map[string]string{}
	for n, s := range f.sims {
		ids[n] = s.AddAccount(mastosim.Account{Username: "u", Email: "u@agency.gov", Confirmed: true})
	}
	f.sims["broken"].InjectFault(mastosim.Fault{Kind: mastosim.FaultServerError, Status: 503, Times: -1})

	triage, blocklist := "projects/test/topics/fediops-triage", "projects/test/topics/fediops-blocklist"
	f.ps.Publish(triage, []byte(`{}`)) // the scheduler's ticks
	f.ps.Publish(blocklist, []byte(`{}`))
	healthy := []string{"a", "b", "c"}
	deadline := time.Now().Add(60 * time.Second)
	for !allDone(f, ids, healthy) {
		if time.Now().After(deadline) {
			t.Fatalf("the healthy instances did not finish while one failed; deliveries %+v", f.ps.Deliveries())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The broken instance's messages fail (after the client's own retries) and Pub/Sub
	// delivers them again.
	retried := map[string]bool{}
	for !retried[triage] || !retried[blocklist] {
		if time.Now().After(deadline) {
			t.Fatalf("the failing instance's messages were not returned for redelivery: %v", retried)
		}
		time.Sleep(50 * time.Millisecond)
		for _, d := range f.ps.Deliveries() {
			if strings.Contains(d.Data, `"broken"`) && d.Status >= 500 {
				retried[d.Topic] = true
			}
		}
	}
	if a, _ := f.sims["broken"].Account(ids["broken"]); a.Approved {
		t.Error("the broken instance was decided while it failed")
	}
	f.sims["broken"].ClearFaults()
	if err := f.ps.WaitIdle(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	if !allDone(f, ids, append(healthy, "broken")) {
		t.Error("the recovered instance did not finish")
	}
	// One message per instance and topic, besides the ticks; every account decided once,
	// every block created once.
	for _, topic := range []string{triage, blocklist} {
		var per []string
		for _, m := range f.ps.Messages(topic) {
			if string(m.Data) != "{}" {
				per = append(per, string(m.Data))
			}
		}
		if len(per) != 4 {
			t.Errorf("%s: %d fanned-out messages, want 4: %v", topic, len(per), per)
		}
	}
	for n, s := range f.sims {
		writes := map[string]int{}
		for _, r := range s.Requests() {
			// Writes that succeeded: an approval by its path, a block by its body (measures
			// are reads sent as POST).
			if r.Method == http.MethodPost && r.Status < 300 && r.Status != 0 && !strings.HasSuffix(r.Path, "/measures") {
				writes[r.Path+" "+r.Body]++
			}
		}
		if len(writes) != 3 {
			t.Errorf("%s: %d distinct writes, want 3 (one approval, two blocks): %v", n, len(writes), writes)
		}
		for w, k := range writes {
			if k != 1 {
				t.Errorf("%s: %s succeeded %d times", n, w, k)
			}
		}
	}
}

func allDone(f *fleet, ids map[string]string, names []string) bool {
	for _, n := range names {
		s := f.sims[n]
		if a, _ := s.Account(ids[n]); !a.Approved || len(s.DomainBlocks()) != 2 {
			return false
		}
	}
	return true
}

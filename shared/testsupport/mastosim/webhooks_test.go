package mastosim

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// receiver records webhook deliveries and answers each with the next status of a script
// (the last one repeats).
type receiver struct {
	mu       sync.Mutex
	statuses []int
	hang     time.Duration // the first request waits this long before answering
	got      []received
}

type received struct {
	header http.Header
	body   []byte
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	n := len(rc.got)
	rc.got = append(rc.got, received{header: r.Header.Clone(), body: body})
	status := rc.statuses[min(n, len(rc.statuses)-1)]
	hang := rc.hang
	rc.mu.Unlock()
	if n == 0 && hang > 0 {
		select {
		case <-time.After(hang):
		case <-r.Context().Done():
			return
		}
	}
	w.WriteHeader(status)
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

const hookSecret = "webhook-secret-0123456789"

func fastWebhooks() WebhookOptions {
	return WebhookOptions{Backoff: func(int) time.Duration { return 5 * time.Millisecond }}
}

func startReceiver(t *testing.T, rc *receiver) string {
	t.Helper()
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	return srv.URL + "/TriageWebhook/main"
}

func TestSignUpSendsAccountCreated(t *testing.T) {
	s, fc := newSim(t, Options{Domain: "social.example", Webhooks: fastWebhooks()})
	t.Cleanup(s.StopWebhooks)
	rc := &receiver{statuses: []int{http.StatusAccepted}}
	s.AddWebhook(Webhook{URL: startReceiver(t, rc), Secret: hookSecret, Events: []string{"account.created"}})

	id := s.AddAccount(Account{Username: "newbie", Email: "newbie@mail.example", IP: "203.0.113.7",
		InviteRequest: "I run a small book club.", Locale: "en"})
	s.AddAccount(Account{Username: "remote", Domain: "elsewhere.example"}) // no sign-up here
	if !s.WaitWebhooks(5 * time.Second) {
		t.Fatal("deliveries did not finish")
	}
	reqs := rc.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d deliveries, want 1 (the remote account is no sign-up)", len(reqs))
	}
	r := reqs[0]
	if !SignatureValid(hookSecret, r.body, r.header.Get("X-Hub-Signature")) {
		t.Errorf("X-Hub-Signature %q does not sign the body", r.header.Get("X-Hub-Signature"))
	}
	if got := r.header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q", got)
	}
	sum := sha256.Sum256(r.body)
	if got := r.header.Get("Digest"); got != "SHA-256="+base64.StdEncoding.EncodeToString(sum[:]) {
		t.Errorf("Digest = %q", got)
	}
	if ua := r.header.Get("User-Agent"); !strings.Contains(ua, "Mastodon/4.3.0") {
		t.Errorf("User-Agent = %q", ua)
	}
	// The shape of REST::Admin::WebhookEventSerializer with REST::Admin::AccountSerializer.
	var ev struct {
		Event     string          `json:"event"`
		CreatedAt string          `json:"created_at"`
		Object    json.RawMessage `json:"object"`
	}
	if err := json.Unmarshal(r.body, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Event != "account.created" || ev.CreatedAt != fc.Now().UTC().Format("2006-01-02T15:04:05.000Z") {
		t.Errorf("event = %q at %q", ev.Event, ev.CreatedAt)
	}
	var obj map[string]any
	if err := json.Unmarshal(ev.Object, &obj); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"id": id, "username": "newbie", "email": "newbie@mail.example", "confirmed": false,
		"approved": false, "domain": nil, "ip": "203.0.113.7", "locale": "en", "invite_request": "I run a small book club."}
	for k, v := range want {
		if obj[k] != v {
			t.Errorf("object.%s = %#v, want %#v", k, obj[k], v)
		}
	}
	for _, k := range []string{"role", "ips", "account", "created_at", "suspended", "silenced", "sensitized", "disabled"} {
		if _, ok := obj[k]; !ok {
			t.Errorf("object has no %s", k)
		}
	}
	if acct, _ := obj["account"].(map[string]any); acct["url"] != "https://social.example/@newbie" {
		t.Errorf("object.account.url = %v", acct["url"])
	}
	d := s.Deliveries()
	if len(d) != 1 || d[0].Status != http.StatusAccepted || d[0].Object != id || d[0].Event != "account.created" {
		t.Errorf("deliveries = %+v", d)
	}
}

// TestDeliveryRetries follows Webhooks::DeliveryWorker under Sidekiq: failures are retried
// until a success or an unsalvageable answer, or until the retries are used up.
func TestDeliveryRetries(t *testing.T) {
	tests := []struct {
		name     string
		statuses []int
		retries  int
		want     int // attempts
	}{
		{"success at once", []int{204}, 0, 1},
		{"server errors, then success", []int{500, 503, 202}, 0, 3},
		{"401 is retried (a secret fixed later still gets the event)", []int{401, 401, 200}, 0, 3},
		{"429 and 408 are retried", []int{429, 408, 200}, 0, 3},
		{"413 is not retried", []int{413}, 0, 1},
		{"400 is not retried", []int{400}, 0, 1},
		{"501 is not retried", []int{501}, 0, 1},
		{"retries used up", []int{500}, 3, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := fastWebhooks()
			o.Retries = tt.retries
			s, _ := newSim(t, Options{Webhooks: o})
			t.Cleanup(s.StopWebhooks)
			rc := &receiver{statuses: tt.statuses}
			s.AddWebhook(Webhook{URL: startReceiver(t, rc), Secret: hookSecret, Events: []string{"account.created"}})
			s.AddAccount(Account{Username: "u", Email: "u@example.org"})
			if !s.WaitWebhooks(10 * time.Second) {
				t.Fatal("deliveries did not finish")
			}
			reqs := rc.requests()
			if len(reqs) != tt.want {
				t.Fatalf("%d attempts, want %d", len(reqs), tt.want)
			}
			for i, r := range reqs[1:] {
				if string(r.body) != string(reqs[0].body) {
					t.Errorf("retry %d sent another body: the body is serialised once", i+1)
				}
			}
			d := s.Deliveries()
			if len(d) != tt.want || d[len(d)-1].Attempt != tt.want-1 {
				t.Errorf("deliveries = %+v", d)
			}
		})
	}
}

// TestDeliveryTimeoutIsRetried: a receiver slower than the read timeout counts as a failure.
func TestDeliveryTimeoutIsRetried(t *testing.T) {
	o := fastWebhooks()
	o.Client = &http.Client{Timeout: 100 * time.Millisecond}
	s, _ := newSim(t, Options{Webhooks: o})
	t.Cleanup(s.StopWebhooks)
	rc := &receiver{statuses: []int{202}, hang: time.Second}
	s.AddWebhook(Webhook{URL: startReceiver(t, rc), Secret: hookSecret, Events: []string{"account.created"}})
	s.AddAccount(Account{Username: "u", Email: "u@example.org"})
	if !s.WaitWebhooks(10 * time.Second) {
		t.Fatal("deliveries did not finish")
	}
	d := s.Deliveries()
	if len(d) != 2 || d[0].Status != 0 || d[0].Err == "" || d[1].Status != 202 {
		t.Errorf("deliveries = %+v, want a timeout then a success", d)
	}
}

func TestApprovalOfConfirmedAccountSendsAccountApproved(t *testing.T) {
	s, _ := newSim(t, Options{Webhooks: fastWebhooks()})
	t.Cleanup(s.StopWebhooks)
	rc := &receiver{statuses: []int{204}}
	s.AddWebhook(Webhook{URL: startReceiver(t, rc), Secret: hookSecret, Events: []string{"account.created", "account.approved"}})
	s.AddWebhook(Webhook{URL: startReceiver(t, rc), Secret: hookSecret, Events: []string{"account.created"}, Disabled: true})
	confirmed := s.AddAccount(Account{Username: "c", Email: "c@agency.gov", Confirmed: true})
	unconfirmed := s.AddAccount(Account{Username: "u", Email: "u@agency.gov"})
	for _, id := range []string{confirmed, unconfirmed} {
		if rr := do(t, s, http.MethodPost, "/api/v1/admin/accounts/"+id+"/approve", adminTok, nil); rr.Code != 200 {
			t.Fatalf("approve: %d", rr.Code)
		}
	}
	if !s.WaitWebhooks(5 * time.Second) {
		t.Fatal("deliveries did not finish")
	}
	var events []string
	for _, d := range s.Deliveries() {
		events = append(events, d.Event+" "+d.Object)
	}
	want := map[string]bool{"account.created " + confirmed: true, "account.created " + unconfirmed: true, "account.approved " + confirmed: true}
	if len(events) != len(want) {
		t.Fatalf("events = %v (the disabled webhook gets nothing, an unconfirmed approval sends no account.approved)", events)
	}
	for _, e := range events {
		if !want[e] {
			t.Errorf("unexpected event %s", e)
		}
	}
}

func TestAddWebhookValidates(t *testing.T) {
	s, _ := newSim(t, Options{})
	id := s.AddWebhook(Webhook{URL: "http://127.0.0.1:1/hook", Events: []string{"account.created"}})
	if id == "" {
		t.Fatal("no id")
	}
	for name, w := range map[string]Webhook{
		"short secret":  {URL: "http://x/", Secret: "short", Events: []string{"account.created"}},
		"no events":     {URL: "http://x/", Secret: hookSecret},
		"unknown event": {URL: "http://x/", Secret: hookSecret, Events: []string{"account.deleted"}},
		"no url":        {Secret: hookSecret, Events: []string{"account.created"}},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: accepted", name)
				}
			}()
			s.AddWebhook(w)
		}()
	}
}

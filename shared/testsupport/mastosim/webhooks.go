package mastosim

// Admin webhooks, as Mastodon 4.3 delivers them:
//
//   - app/models/webhook.rb: EVENTS, a secret of at least 12 characters (20 random bytes as
//     40 hex characters when left blank), enabled webhooks only;
//   - app/models/user.rb: after_create_commit trigger_webhooks queues account.created for every
//     new local user (before e-mail confirmation and approval); prepare_new_user! (approve!
//     of a confirmed user) queues account.approved;
//   - app/services/webhook_service.rb + app/serializers/rest/admin/webhook_event_serializer.rb:
//     the body {"event", "created_at", "object"} is serialised once (the object with
//     REST::Admin::AccountSerializer, created_at when the event is built,
//     app/presenters/webhooks/event_presenter.rb) and handed to one delivery job per webhook;
//   - app/workers/webhooks/delivery_worker.rb: POST with Content-Type: application/json and
//     X-Hub-Signature: sha256=<hex HMAC-SHA256(secret, body)>; sidekiq_options retry: 16,
//     dead: false; a response that is neither successful (2xx) nor unsalvageable (501, and every
//     4xx except 401, 408 and 429: app/helpers/json_ld_helper.rb) raises, so Sidekiq retries it
//     with its default backoff;
//   - app/lib/request.rb: User-Agent, Date and Digest headers; TIMEOUT connect 5 s, read and
//     write 10 s, 30 s in all; up to 3 redirects.
//
// Simulator: the event is serialised when it happens (Mastodon's TriggerWebhookWorker loads the
// record a moment later), retries wait in real time (Options.Webhooks.Backoff makes them short
// in tests), and payload templates are not modelled.

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// WebhookEvents are Webhook::EVENTS of Mastodon 4.3.
var WebhookEvents = []string{"account.approved", "account.created", "account.updated", "report.created", "report.updated", "status.created", "status.updated"}

// WebhookOptions configure the delivery of webhooks (Options.Webhooks).
type WebhookOptions struct {
	// Retries is how often a failed delivery is retried: Webhooks::DeliveryWorker's retry: 16
	// when 0; negative means no retry.
	Retries int
	// Backoff is the wait before retry n (0 for the first retry). Default: Sidekiq's
	// (n⁴ + 15 + rand(10)·(n+1)) seconds, about two days over 16 retries.
	Backoff func(n int) time.Duration
	// Client sends the deliveries. Default: Request::TIMEOUT (connect 5 s, response within
	// 10 s, 30 s in all) and at most 3 redirects.
	Client *http.Client
	// UserAgent of the deliveries. Default Mastodon.user_agent:
	// "http.rb/5.2.0 (Mastodon/<Version>; +https://<domain>/)".
	UserAgent string
}

// Webhook is an admin webhook (Administration → Webhooks).
type Webhook struct {
	URL string
	// Secret signs the deliveries; "" generates one like Mastodon (40 hex characters).
	Secret string
	Events []string
	// Disabled webhooks receive nothing.
	Disabled bool
}

// Delivery is one delivery attempt.
type Delivery struct {
	Webhook string // the webhook's id
	Event   string
	Object  string // the object's id
	Attempt int    // 0 for the first attempt, n for the n-th retry
	Status  int    // 0 when no response arrived
	Err     string // the network error, if any
	Time    time.Time
	Body    string
	// Signature is the X-Hub-Signature header sent.
	Signature string
}

type webhook struct {
	id string
	Webhook
}

type webhookState struct {
	mu         sync.Mutex
	hooks      []*webhook
	deliveries []Delivery
	pending    int
	idle       *sync.Cond
	ctx        context.Context
	cancel     context.CancelFunc
	lastID     int
	client     *http.Client
}

// AddWebhook creates a webhook and returns its id. It panics, as the model's validations
// would refuse to save it, on a missing URL, a secret shorter than 12 characters, no events or
// an unknown event.
func (s *Server) AddWebhook(w Webhook) string {
	if w.URL == "" {
		panic("mastosim: AddWebhook: url is required")
	}
	if w.Secret == "" {
		b := make([]byte, 20)
		_, _ = rand.Read(b)
		w.Secret = hex.EncodeToString(b) // SecureRandom.hex(20)
	}
	if len(w.Secret) < 12 {
		panic("mastosim: AddWebhook: the secret must have at least 12 characters")
	}
	if len(w.Events) == 0 {
		panic("mastosim: AddWebhook: events are required")
	}
	for _, e := range w.Events {
		if !slices.Contains(WebhookEvents, e) {
			panic(fmt.Sprintf("mastosim: AddWebhook: unknown event %q", e))
		}
	}
	st := &s.webhooks
	st.mu.Lock()
	defer st.mu.Unlock()
	st.lastID++
	id := strconv.Itoa(st.lastID)
	st.hooks = append(st.hooks, &webhook{id: id, Webhook: w})
	return id
}

// Deliveries returns every delivery attempt so far, in the order they ended.
func (s *Server) Deliveries() []Delivery {
	st := &s.webhooks
	st.mu.Lock()
	defer st.mu.Unlock()
	return slices.Clone(st.deliveries)
}

// WaitWebhooks waits until no delivery is under way or waiting for a retry, at most timeout;
// it reports whether that happened.
func (s *Server) WaitWebhooks(timeout time.Duration) bool {
	st := &s.webhooks
	done := make(chan struct{})
	go func() {
		st.mu.Lock()
		for st.pending > 0 {
			st.idle.Wait()
		}
		st.mu.Unlock()
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// StopWebhooks abandons the deliveries still waiting for a retry and stops the ones under
// way (tests call it when they end).
func (s *Server) StopWebhooks() {
	s.webhooks.cancel()
}

func (st *webhookState) init() {
	st.idle = sync.NewCond(&st.mu)
	st.ctx, st.cancel = context.WithCancel(context.Background())
	st.client = requestClient()
}

// triggerWebhooks is WebhookService#call for an account event: it serialises the body once and
// starts one delivery per enabled webhook subscribed to event. The caller holds s.mu.
func (s *Server) triggerWebhooks(event string, a *Account) {
	st := &s.webhooks
	st.mu.Lock()
	var hooks []*webhook
	for _, h := range st.hooks {
		if !h.Disabled && slices.Contains(h.Events, event) {
			hooks = append(hooks, h)
		}
	}
	st.pending += len(hooks)
	st.mu.Unlock()
	if len(hooks) == 0 {
		return
	}
	c := &call{r: &http.Request{Host: s.webhookDomain()}}
	body, err := json.Marshal(webhookEventJSON{Event: event, CreatedAt: railsTime(s.clk.Now()), Object: s.adminAccountJSON(c, a)})
	if err != nil {
		panic("mastosim: cannot encode a webhook event: " + err.Error())
	}
	for _, h := range hooks {
		go s.deliver(h, event, a.ID, body)
	}
}

// webhookEventJSON is REST::Admin::WebhookEventSerializer.
type webhookEventJSON struct {
	Event     string `json:"event"`
	CreatedAt string `json:"created_at"`
	Object    any    `json:"object"`
}

// webhookDomain is the local domain the serialised accounts' URLs use. Simulator: without
// Options.Domain there is no request to take a Host from, so it is "localhost".
func (s *Server) webhookDomain() string {
	if s.opts.Domain != "" {
		return s.opts.Domain
	}
	return "localhost"
}

// deliver is Webhooks::DeliveryWorker under Sidekiq: attempts, then retries with backoff
// until a response is successful or unsalvageable, or the retries are used up (the job is
// then dropped: dead: false).
func (s *Server) deliver(h *webhook, event, objectID string, body []byte) {
	st := &s.webhooks
	defer func() {
		st.mu.Lock()
		st.pending--
		st.idle.Broadcast()
		st.mu.Unlock()
	}()
	o := s.opts.Webhooks
	retries := o.Retries
	switch {
	case retries == 0:
		retries = 16
	case retries < 0:
		retries = 0
	}
	for attempt := 0; ; attempt++ {
		d := s.post(st.ctx, h, body)
		d.Webhook, d.Event, d.Object, d.Attempt = h.id, event, objectID, attempt
		st.mu.Lock()
		st.deliveries = append(st.deliveries, d)
		st.mu.Unlock()
		if d.Status != 0 && (successful(d.Status) || unsalvageable(d.Status)) || attempt >= retries {
			return
		}
		t := time.NewTimer(s.backoff(attempt))
		select {
		case <-st.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func (s *Server) backoff(n int) time.Duration {
	if b := s.opts.Webhooks.Backoff; b != nil {
		return b(n)
	}
	// Sidekiq::JobRetry#delay_for: (count ** 4) + 15 + (rand(10) * (count + 1)) seconds.
	secs := n*n*n*n + 15 + mrand.IntN(10)*(n+1)
	return time.Duration(secs) * time.Second
}

// successful is JsonLdHelper#response_successful?.
func successful(status int) bool { return status >= 200 && status < 300 }

// unsalvageable is JsonLdHelper#response_error_unsalvageable?: no retry.
func unsalvageable(status int) bool {
	return status == 501 || status >= 400 && status < 500 && status != 401 && status != 408 && status != 429
}

// post sends one delivery (Webhooks::DeliveryWorker#perform_request via Request).
func (s *Server) post(ctx context.Context, h *webhook, body []byte) Delivery {
	mac := hmac.New(sha256.New, []byte(h.Secret))
	mac.Write(body)
	sig := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	d := Delivery{Time: s.clk.Now(), Body: string(body), Signature: sig}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		d.Err = err.Error()
		return d
	}
	digest := sha256.Sum256(body)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Hub-Signature", sig)
	req.Header.Set("User-Agent", s.userAgent())
	req.Header.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	req.Header.Set("Digest", "SHA-256="+base64.StdEncoding.EncodeToString(digest[:]))
	resp, err := s.webhookClient().Do(req)
	if err != nil {
		d.Err = err.Error()
		return d
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	d.Status = resp.StatusCode
	return d
}

func (s *Server) userAgent() string {
	if ua := s.opts.Webhooks.UserAgent; ua != "" {
		return ua
	}
	return "http.rb/5.2.0 (Mastodon/" + s.opts.Version + "; +https://" + s.webhookDomain() + "/)"
}

func (s *Server) webhookClient() *http.Client {
	if c := s.opts.Webhooks.Client; c != nil {
		return c
	}
	return s.webhooks.client
}

// requestClient is an HTTP client with Request::TIMEOUT's limits.
func requestClient() *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			TLSHandshakeTimeout:   5 * time.Second,
			ResponseHeaderTimeout: 10 * time.Second,
		},
		CheckRedirect: func(_ *http.Request, via []*http.Request) error {
			if len(via) > 3 {
				return errors.New("too many redirects")
			}
			return nil
		},
	}
}

// SignatureValid reports whether sig (an X-Hub-Signature value) signs body with secret (for
// tests of receivers).
func SignatureValid(secret string, body []byte, sig string) bool {
	hexSig, ok := strings.CutPrefix(sig, "sha256=")
	if !ok {
		return false
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

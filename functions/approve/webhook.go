package approve

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/fediops/fediops/shared/clock"
	"github.com/fediops/fediops/shared/logging"
	"github.com/fediops/fediops/shared/run"
	"github.com/fediops/fediops/shared/setup"
)

// MaxWebhookBody is the largest webhook body TriageWebhook reads: an account.created event is
// about 2 KiB.
const MaxWebhookBody = 64 << 10

// WebhookLocalPath is the path a local Functions Framework (no FUNCTION_TARGET) needs for
// /TriageWebhook/<instance> to reach the webhook: it serves a declarative function at exactly
// /TriageWebhook (funcframework.RegisterHTTPFunctionContext(ctx, WebhookLocalPath, …)).
// Deployed, the function is served at "/" and needs nothing.
const WebhookLocalPath = "/TriageWebhook/"

// WebhookDeadline bounds the handling of one delivery (configuration, secret, publish), inside
// the 10 seconds Mastodon waits for an answer (Request::TIMEOUT, app/lib/request.rb); and
// PublishTimeout its publish.
const (
	WebhookDeadline = 8 * time.Second
	PublishTimeout  = 5 * time.Second
)

// Webhook is the TriageWebhook HTTP function. It receives the admin webhooks of Mastodon
// (≥ 4.0) at …/TriageWebhook/<instance name> (the last path segment names the [[instance]]),
// authenticates each delivery by its X-Hub-Signature (HMAC-SHA256 of the raw body with the
// instance's webhook_secret) before reading it, and hands an account.created event to Approve
// by publishing {"instances": ["<name>"], "accounts": ["<id>"]} to the triage topic. It
// decides nothing itself.
//
// Answers, and what Mastodon's delivery worker does with them (app/helpers/json_ld_helper.rb):
//
//	202  account.created published to the triage topic
//	204  a valid event that needs nothing: another event (account.approved, report.created, …),
//	     an account already approved or not local, an event older than [triage] webhook_max_age
//	400  a signed body that is not an event fediops can read (not retried; logged at ERROR)
//	401  no instance of that name, no webhook_secret, a missing or wrong signature
//	     (retried by Mastodon, so a secret fixed later still gets the event)
//	404  no instance name in the path; 405 not a POST; 413 a body over 64 KiB (not retried)
//	503  the configuration, the secret or the publish failed (retried)
type Webhook struct {
	Invocation setup.Invocation
}

// webhookEvent is REST::Admin::WebhookEventSerializer with the account fields triage reads.
type webhookEvent struct {
	Event     string    `json:"event"`
	CreatedAt time.Time `json:"created_at"`
	Object    struct {
		ID       string  `json:"id"`
		Username string  `json:"username"`
		Domain   *string `json:"domain"`
		Approved bool    `json:"approved"`
	} `json:"object"`
}

// reply is an answer and the log line that explains it.
type reply struct {
	status int
	level  slog.Level
	msg    string
	attrs  []any
}

func answer(status int, level slog.Level, msg string, attrs ...any) reply {
	return reply{status: status, level: level, msg: msg, attrs: attrs}
}

// ServeHTTP handles one delivery. What can be refused without the configuration (method,
// path, size) is refused before it is read.
func (h Webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := h.Invocation.Params()
	p.NoArchive = true // it reads the configuration and a secret, and publishes; nothing else
	name, body, rep := precheck(r)
	if rep == nil {
		rep = h.serve(r.Context(), p, name, body, r.Header.Get("X-Hub-Signature"))
	} else if log, err := setup.NewLogger(p, logging.NewRedactor()); err == nil {
		log.Log(r.Context(), rep.level, rep.msg, append(rep.attrs, "function", "webhook", "status", rep.status)...)
	}
	if rep.status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", http.MethodPost)
	}
	if rep.status == http.StatusAccepted || rep.status == http.StatusNoContent {
		w.WriteHeader(rep.status)
		return
	}
	http.Error(w, http.StatusText(rep.status), rep.status)
}

// precheck refuses a request that is no delivery: not a POST, no instance name in the path, a
// body over MaxWebhookBody.
func precheck(r *http.Request) (string, []byte, *reply) {
	if r.Method != http.MethodPost {
		rep := answer(http.StatusMethodNotAllowed, slog.LevelWarn, "webhook: refused a "+r.Method+" request (Mastodon POSTs)")
		return "", nil, &rep
	}
	name := instanceName(r.URL.Path)
	if name == "" {
		rep := answer(http.StatusNotFound, slog.LevelWarn, "webhook: the URL names no instance: use …/TriageWebhook/<instance name>", "path", r.URL.Path)
		return "", nil, &rep
	}
	body, err := readBody(r)
	if err != nil {
		rep := answer(http.StatusRequestEntityTooLarge, slog.LevelWarn, "webhook: "+err.Error(), "instance", name)
		return "", nil, &rep
	}
	return name, body, nil
}

// serve opens the environment, checks the signature, then reads the event.
func (h Webhook) serve(ctx context.Context, p setup.Params, name string, body []byte, signature string) *reply {
	timeout, terr := setup.Timeout(h.Invocation.Getenv)
	bound := min(timeout-run.Margin(timeout), WebhookDeadline)
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	env, openErr := setup.Open(ctx, p)
	defer env.Close()
	if terr != nil {
		env.Log.Warn(terr.Error(), "function", "webhook")
	}
	ctx = clock.WithDeadline(ctx, env.Clock.Now().Add(bound))
	rep := h.verified(ctx, env, openErr, name, body, signature)
	env.Log.Log(ctx, rep.level, rep.msg, append(rep.attrs, "function", "webhook", "status", rep.status)...)
	return &rep
}

func (h Webhook) verified(ctx context.Context, env *setup.Env, openErr error, name string, body []byte, signature string) reply {
	log := []any{"instance", name}
	if openErr != nil {
		return answer(http.StatusServiceUnavailable, slog.LevelError, "webhook: cannot start (Mastodon retries the delivery): "+openErr.Error(), log...)
	}
	secret, rep := webhookSecret(ctx, env, name)
	if rep != nil {
		return *rep
	}
	if !signed(secret, body, signature) {
		return answer(http.StatusUnauthorized, slog.LevelWarn, "webhook: refused a delivery for "+name+" whose X-Hub-Signature is missing or wrong (check the secret in Mastodon and webhook_secret)", log...)
	}
	var ev webhookEvent
	if err := json.Unmarshal(body, &ev); err != nil || ev.Event == "" {
		return answer(http.StatusBadRequest, slog.LevelError, fmt.Sprintf("webhook: a signed delivery for %s is not a Mastodon event (a payload template set on the webhook? leave it empty): %v", name, err), log...)
	}
	log = append(log, "event", ev.Event)
	if ev.Event != "account.created" {
		return answer(http.StatusNoContent, slog.LevelInfo, "webhook: "+ev.Event+" for "+name+" needs nothing (triage acts on account.created)", log...)
	}
	return h.accountCreated(ctx, env, name, ev, log)
}

// accountCreated publishes the account of an account.created event for Approve.
func (h Webhook) accountCreated(ctx context.Context, env *setup.Env, name string, ev webhookEvent, log []any) reply {
	id := ev.Object.ID
	log = append(log, "account_id", id, "username", ev.Object.Username)
	switch {
	case !accountID.MatchString(id):
		return answer(http.StatusBadRequest, slog.LevelError, fmt.Sprintf("webhook: account.created for %s without a usable account id %q", name, id), log...)
	case ev.CreatedAt.IsZero():
		return answer(http.StatusBadRequest, slog.LevelError, "webhook: account.created for "+name+" without created_at", log...)
	case ev.Object.Domain != nil && *ev.Object.Domain != "":
		return answer(http.StatusNoContent, slog.LevelInfo, "webhook: account.created for a remote account needs nothing", log...)
	case ev.Object.Approved:
		return answer(http.StatusNoContent, slog.LevelInfo, fmt.Sprintf("webhook: account %s on %s is approved already (open registrations): nothing to decide", ev.Object.Username, name), log...)
	}
	sec, err := LoadSection(env.Config)
	if err != nil {
		return answer(http.StatusServiceUnavailable, slog.LevelError, "webhook: [triage] has problems (Mastodon retries the delivery): "+err.Error(), log...)
	}
	if age := env.Clock.Now().Sub(ev.CreatedAt); age > sec.WebhookMaxAge.Duration {
		return answer(http.StatusNoContent, slog.LevelWarn, fmt.Sprintf("webhook: ignoring account.created for %s from %s ago (older than webhook_max_age %s); the scheduled run decides the account",
			name, age.Round(time.Second), sec.WebhookMaxAge.Duration), log...)
	}
	topic, err := env.Topic(TopicVar)
	if err == nil && topic == "" {
		err = fmt.Errorf("%s is not set", TopicVar)
	}
	if err != nil {
		return answer(http.StatusServiceUnavailable, slog.LevelError, "webhook: cannot publish (Mastodon retries the delivery): "+err.Error(), log...)
	}
	msg, err := json.Marshal(Message{Instances: []string{name}, Accounts: []string{id}})
	if err != nil {
		return answer(http.StatusInternalServerError, slog.LevelError, "webhook: "+err.Error(), log...)
	}
	pctx, cancel := context.WithTimeout(ctx, PublishTimeout)
	defer cancel()
	ids, err := env.Publisher().Publish(pctx, topic, msg)
	if err != nil {
		return answer(http.StatusServiceUnavailable, slog.LevelError, "webhook: publish failed (Mastodon retries the delivery): "+err.Error(), append(log, "class", run.ClassOf(err).String())...)
	}
	return answer(http.StatusAccepted, slog.LevelInfo, fmt.Sprintf("webhook: account %s (%s) signed up on %s: handed to triage", ev.Object.Username, id, name),
		append(log, "message_id", strings.Join(ids, ","), "topic", topic)...)
}

// webhookSecret resolves the instance's webhook_secret. The reply is set when the delivery
// cannot be checked: 401 when the instance or its secret is not configured (Mastodon retries,
// so fixing the configuration recovers the event), 503 when Secret Manager failed.
func webhookSecret(ctx context.Context, env *setup.Env, name string) (string, *reply) {
	inst, ok := env.Config.Instance(name)
	switch {
	case !ok:
		rep := answer(http.StatusUnauthorized, slog.LevelWarn, fmt.Sprintf("webhook: refused a delivery for %q, which is no [[instance]] name", name), "instance", name)
		return "", &rep
	case inst.WebhookSecret == "":
		rep := answer(http.StatusUnauthorized, slog.LevelWarn, "webhook: refused a delivery for "+name+", which has no webhook_secret in the configuration", "instance", name)
		return "", &rep
	}
	secret, err := env.Secrets.Resolve(ctx, inst.WebhookSecret)
	switch {
	case err != nil && run.IsPermanent(err):
		rep := answer(http.StatusUnauthorized, slog.LevelError, "webhook: cannot read the webhook_secret of "+name+": "+err.Error(), "instance", name)
		return "", &rep
	case err != nil:
		rep := answer(http.StatusServiceUnavailable, slog.LevelError, "webhook: cannot read the webhook_secret of "+name+" (Mastodon retries the delivery): "+err.Error(), "instance", name)
		return "", &rep
	}
	return secret, nil
}

// instanceName is the last segment of the path: …/TriageWebhook/<name> locally, /<name>
// deployed (the function is served at /). "" when there is none.
func instanceName(path string) string {
	path = strings.TrimRight(path, "/")
	i := strings.LastIndexByte(path, '/')
	name := path[i+1:]
	if name == "TriageWebhook" || !instanceNameRe.MatchString(name) {
		return ""
	}
	return name
}

// instanceNameRe is the shape of an [[instance]] name (shared/config).
var instanceNameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

var errTooLarge = fmt.Errorf("the body is larger than %d bytes", MaxWebhookBody)

// readBody reads at most MaxWebhookBody bytes of the body.
func readBody(r *http.Request) ([]byte, error) {
	if r.ContentLength > MaxWebhookBody {
		return nil, errTooLarge
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, MaxWebhookBody+1))
	if err != nil {
		return nil, fmt.Errorf("reading the body: %w", err)
	}
	if len(b) > MaxWebhookBody {
		return nil, errTooLarge
	}
	return b, nil
}

// signed checks an X-Hub-Signature ("sha256=<hex>") against the HMAC-SHA256 of the raw body,
// in constant time.
func signed(secret string, body []byte, header string) bool {
	hexSig, ok := strings.CutPrefix(strings.TrimSpace(header), "sha256=")
	if !ok {
		return false
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil || len(got) != sha256.Size {
		return false
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

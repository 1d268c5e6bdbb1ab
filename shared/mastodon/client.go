// Package mastodon is a typed client for the Mastodon admin REST API, and for the parts of it
// that GoToSocial implements. It handles what every caller would otherwise get wrong:
//
//   - pagination: list calls follow Link rel="next" to the end (Mastodon and GoToSocial cursors
//     differ; both are treated as opaque), never leaving the configured host;
//   - rate limits: X-RateLimit-Remaining/-Reset are tracked on every response (Rate). The
//     client never waits for a window: when it knows the budget is spent it returns a
//     *RateLimitError without sending, and a 429 answer becomes one too. The caller's run
//     (shared/run) decides whether to wait for the reset or stop;
//   - faults: 5xx answers and network errors are retried with exponential backoff, within the
//     caller's deadline, for requests that are safe to repeat (GET, PUT, DELETE). A POST is
//     repeated only when it provably never left (the connection was refused, the name did not
//     resolve); otherwise the error is an *AmbiguousError and the caller reads back whether
//     it took effect;
//   - server differences: Server() tells Mastodon (with its version) from GoToSocial.
//
// Every method takes a context. Deadlines come from the context or from clock.WithDeadline,
// measured on the client's clock, so tests can run rate-limit windows in simulated time.
// The access token is sent only in the Authorization header and never appears in errors.
package mastodon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fediops/fediops/shared/clock"
	"github.com/fediops/fediops/shared/run"
)

// UserAgent is sent with every request.
const UserAgent = "fediops/1.0 (+https://github.com/fediops/fediops)"

// maxBody caps how much of a response is read.
const maxBody = 64 << 20

// Client talks to one server with one token. It is safe for concurrent use.
type Client struct {
	base       *url.URL
	token      string
	hc         *http.Client
	clock      clock.Clock
	log        *slog.Logger
	retries    int
	minBackoff time.Duration
	maxBackoff time.Duration
	timeout    time.Duration
	reserve    int

	mu       sync.Mutex
	rate     run.Rate
	server   *Server
	requests int
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the HTTP client (default: a new client without overall timeout; each
// attempt is bounded by WithTimeout).
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithClock sets the clock used for rate-limit waits and backoff.
func WithClock(k clock.Clock) Option { return func(c *Client) { c.clock = k } }

// WithLogger sets the logger for retries and waits (default: discard).
func WithLogger(l *slog.Logger) Option { return func(c *Client) { c.log = l } }

// WithRetries sets how many times a 5xx or network failure is retried (default 3).
func WithRetries(n int) Option { return func(c *Client) { c.retries = n } }

// WithBackoff sets the first and the largest backoff between retries (default 1s, 30s).
func WithBackoff(min, max time.Duration) Option {
	return func(c *Client) { c.minBackoff, c.maxBackoff = min, max }
}

// WithTimeout bounds each request attempt (default 30s).
func WithTimeout(d time.Duration) Option { return func(c *Client) { c.timeout = d } }

// WithReserve keeps n requests of every rate-limit window unused (default 0).
func WithReserve(n int) Option { return func(c *Client) { c.reserve = n } }

// New returns a client for the server at baseURL (e.g. https://social.example). token may be
// empty for public endpoints.
func New(baseURL, token string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("mastodon: invalid server URL %q", baseURL)
	}
	c := &Client{
		base:       u,
		token:      token,
		hc:         &http.Client{},
		clock:      clock.Real{},
		log:        slog.New(slog.DiscardHandler),
		retries:    3,
		minBackoff: time.Second,
		maxBackoff: 30 * time.Second,
		timeout:    30 * time.Second,
	}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// BaseURL returns the server's base URL.
func (c *Client) BaseURL() string { return c.base.String() }

// Rate returns the last rate-limit state seen.
func (c *Client) Rate() run.Rate {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rate
}

// Requests returns how many HTTP requests the client has sent (every attempt counts).
func (c *Client) Requests() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.requests
}

// APIError is a non-2xx answer.
type APIError struct {
	Method  string
	Path    string
	Status  int
	Message string // the "error" field of the body, if any
	Body    []byte
}

func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	return fmt.Sprintf("%s %s: %d: %s", e.Method, e.Path, e.Status, msg)
}

// StatusOf returns the HTTP status of an *APIError in err's chain, or 0.
func StatusOf(err error) int {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

// RateLimitError says the rate-limit budget is spent until Rate.Reset: either the client knew
// it and sent nothing, or the server answered 429 (which did nothing). The request can be
// repeated after the reset.
type RateLimitError struct {
	Rate run.Rate
	// Throttled is set when the server answered 429.
	Throttled bool
}

func (e *RateLimitError) Error() string {
	what := "rate limit budget spent"
	if e.Throttled {
		what = "rate limited by the server (429)"
	}
	return fmt.Sprintf("%s until %s", what, e.Rate.Reset.UTC().Format(time.RFC3339))
}

// LimitedUntil returns when the window resets (run.Limited).
func (e *RateLimitError) LimitedUntil() time.Time { return e.Rate.Reset }

// RateLimit returns the *RateLimitError in err's chain.
func RateLimit(err error) (*RateLimitError, bool) {
	var rl *RateLimitError
	ok := errors.As(err, &rl)
	return rl, ok
}

// AmbiguousError says a request that changes something may or may not have taken effect: it
// was sent, and then the answer was lost (a timeout, a reset connection) or was a 5xx. It is
// not repeated blindly; the caller reads back what the server holds.
type AmbiguousError struct {
	Method, Path string
	Err          error
}

func (e *AmbiguousError) Error() string {
	return fmt.Sprintf("%s %s: may or may not have taken effect: %v", e.Method, e.Path, e.Err)
}

func (e *AmbiguousError) Unwrap() error { return e.Err }

// IsAmbiguous reports whether err is an *AmbiguousError.
func IsAmbiguous(err error) bool {
	var ae *AmbiguousError
	return errors.As(err, &ae)
}

// IsRateLimited reports whether err is a *RateLimitError.
func IsRateLimited(err error) bool {
	var rl *RateLimitError
	return errors.As(err, &rl)
}

// ErrUnsupported is returned for endpoints the server does not implement (404/405/501 on a
// known API path, e.g. measures or PUT domain_blocks on GoToSocial).
var ErrUnsupported = errors.New("not supported by this server")

// request describes one API call.
type request struct {
	method string
	path   string // absolute path, with query for GETs built by the caller
	query  url.Values
	body   any
}

// response is what do returns besides the decoded body.
type response struct {
	header http.Header
	next   string // path+query of Link rel="next", "" if none
	status int
}

// do sends r, handling rate limits and retries, decodes a JSON answer into out (if non-nil).
func (c *Client) do(ctx context.Context, r request, out any) (*response, error) {
	var payload []byte
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			return nil, fmt.Errorf("%s %s: encode body: %w", r.method, r.path, err)
		}
		payload = b
	}
	target := *c.base
	p, rawQuery, _ := strings.Cut(r.path, "?")
	target.Path = c.base.Path + p
	target.RawQuery = rawQuery
	if r.query != nil {
		target.RawQuery = r.query.Encode()
	}

	safe := r.method != http.MethodPost // GET, PUT and DELETE may be repeated
	for attempt := 0; ; attempt++ {
		if err := c.checkBudget(); err != nil {
			return nil, err
		}
		resp, body, err := c.send(ctx, r.method, target.String(), payload)
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("%s %s: %w", r.method, p, ctx.Err())
			}
			if !safe && !neverSent(err) {
				return nil, &AmbiguousError{Method: r.method, Path: p, Err: err}
			}
			if werr := c.retry(ctx, attempt, r.method, p, err); werr != nil {
				return nil, werr
			}
			continue
		}
		c.observe(resp)
		switch {
		case resp.StatusCode == http.StatusTooManyRequests:
			return nil, &RateLimitError{Rate: c.throttled(resp, attempt), Throttled: true}
		case resp.StatusCode >= 500:
			apiErr := newAPIError(r.method, p, resp.StatusCode, body)
			if !safe {
				return nil, &AmbiguousError{Method: r.method, Path: p, Err: apiErr}
			}
			if werr := c.retry(ctx, attempt, r.method, p, apiErr); werr != nil {
				return nil, werr
			}
			continue
		case resp.StatusCode >= 300:
			return &response{header: resp.Header, status: resp.StatusCode}, newAPIError(r.method, p, resp.StatusCode, body)
		}
		out2 := &response{header: resp.Header, status: resp.StatusCode, next: c.nextPath(resp.Header.Get("Link"))}
		if out != nil && len(bytes.TrimSpace(body)) > 0 {
			if err := json.Unmarshal(body, out); err != nil {
				return out2, fmt.Errorf("%s %s: decode answer: %w", r.method, p, err)
			}
		}
		return out2, nil
	}
}

// retry waits before attempt+1, or returns the error to give up with.
func (c *Client) retry(ctx context.Context, attempt int, method, path string, err error) error {
	if attempt >= c.retries {
		return fmt.Errorf("%s %s: giving up after %d attempts: %w", method, path, attempt+1, err)
	}
	if werr := c.backoff(ctx, attempt, method, path, err.Error()); werr != nil {
		return fmt.Errorf("%s %s: %w (retry abandoned: %v)", method, path, err, werr)
	}
	return nil
}

// throttled returns the window a 429 answer names: the rate-limit headers, GoToSocial's
// Retry-After, or a backoff when neither says.
func (c *Client) throttled(resp *http.Response, attempt int) run.Rate {
	now := c.clock.Now()
	r := c.Rate()
	if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs > 0 {
		r.Reset = now.Add(time.Duration(secs) * time.Second) // GoToSocial's CPU throttler
	}
	if r.Reset.IsZero() || !r.Reset.After(now) {
		r.Reset = now.Add(c.backoffFor(attempt))
	}
	r.Known, r.Remaining = true, 0
	c.mu.Lock()
	c.rate = r
	c.mu.Unlock()
	return r
}

// neverSent reports transport failures that prove the request never reached the server:
// the name did not resolve, or the connection was not made.
func neverSent(err error) bool {
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func (c *Client) send(ctx context.Context, method, target string, payload []byte) (*http.Response, []byte, error) {
	// An attempt ends at the request timeout or at the run's deadline, whichever comes first.
	timeout := c.timeout
	if left, ok := clock.Remaining(ctx, c.clock); ok && left > 0 && left < timeout {
		timeout = left
	}
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(actx, method, target, rd)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set("Accept", "application/json")
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	c.mu.Lock()
	c.requests++
	c.mu.Unlock()
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, nil, scrub(err, target)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, nil, fmt.Errorf("reading answer: %w", err)
	}
	return resp, body, nil
}

// scrub removes the full URL (with query) from transport errors; the caller adds the path.
func scrub(err error, target string) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return errors.New(strings.ReplaceAll(err.Error(), target, "…"))
}

func newAPIError(method, path string, status int, body []byte) *APIError {
	e := &APIError{Method: method, Path: path, Status: status, Body: body}
	var m struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &m) == nil {
		e.Message = m.Error
	}
	return e
}

// observe records the rate-limit headers of resp.
func (c *Client) observe(resp *http.Response) {
	h := resp.Header
	rem, rerr := strconv.Atoi(h.Get("X-RateLimit-Remaining"))
	reset, terr := time.Parse(time.RFC3339Nano, h.Get("X-RateLimit-Reset"))
	if rerr != nil || terr != nil {
		if resp.StatusCode == http.StatusTooManyRequests {
			c.mu.Lock()
			c.rate.Known, c.rate.Remaining = true, 0
			c.mu.Unlock()
		}
		return
	}
	lim, _ := strconv.Atoi(h.Get("X-RateLimit-Limit"))
	c.mu.Lock()
	c.rate = run.Rate{Known: true, Limit: lim, Remaining: rem, Reset: reset}
	c.mu.Unlock()
}

// checkBudget returns a *RateLimitError, without sending anything, when the last answer
// said the window is spent (keeping WithReserve requests unused) and it has not reset yet.
func (c *Client) checkBudget() error {
	r := c.Rate()
	if r.Spent(c.clock.Now(), c.reserve+1) {
		return &RateLimitError{Rate: r}
	}
	return nil
}

func (c *Client) backoffFor(attempt int) time.Duration {
	d := c.minBackoff << attempt
	if d > c.maxBackoff || d <= 0 {
		d = c.maxBackoff
	}
	return d
}

func (c *Client) backoff(ctx context.Context, attempt int, method, path, why string) error {
	d := c.backoffFor(attempt)
	if left, ok := clock.Remaining(ctx, c.clock); ok && d > left {
		return errors.New("no time left before the deadline")
	}
	c.log.Warn("request failed; retrying", "server", c.base.Host, "method", method, "path", path, "error", why, "retry_in", d.String())
	return c.clock.Sleep(ctx, d)
}

// nextPath returns the path and query of the rel="next" link, re-rooted on the configured
// server: the token is never sent to another host, even if the Link header names one.
func (c *Client) nextPath(link string) string {
	for _, l := range parseLink(link) {
		if l.rel != "next" {
			continue
		}
		u, err := url.Parse(l.url)
		if err != nil {
			return ""
		}
		p := strings.TrimPrefix(u.Path, c.base.Path)
		if u.RawQuery != "" {
			p += "?" + u.RawQuery
		}
		return p
	}
	return ""
}

type linkValue struct{ url, rel string }

// parseLink parses an RFC 8288 Link header: <url>; rel="next", <url>; rel="prev".
func parseLink(h string) []linkValue {
	var out []linkValue
	for len(h) > 0 {
		start := strings.IndexByte(h, '<')
		if start < 0 {
			break
		}
		end := strings.IndexByte(h[start:], '>')
		if end < 0 {
			break
		}
		lv := linkValue{url: h[start+1 : start+end]}
		rest := h[start+end+1:]
		next := strings.IndexByte(rest, '<')
		params := rest
		if next >= 0 {
			params = rest[:next]
		}
		for _, p := range strings.Split(params, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(strings.TrimRight(strings.TrimSpace(p), ",")), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "rel") {
				for _, rel := range strings.Fields(strings.Trim(strings.TrimSpace(v), `"`)) {
					if lv.rel == "" || rel == "next" {
						lv.rel = rel
					}
				}
			}
		}
		out = append(out, lv)
		if next < 0 {
			break
		}
		h = rest[next:]
	}
	return out
}

package mastodon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fediops/fediops/shared/clock"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func newTestClient(t *testing.T, h http.Handler, opts ...Option) (*Client, *clock.Fake) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	fc := clock.NewFake(t0)
	c, err := New(srv.URL, "secret-token-xyz", append([]Option{WithClock(fc), WithTimeout(2 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c, fc
}

func TestParseLink(t *testing.T) {
	tests := []struct {
		in       string
		wantNext string
	}{
		{`<https://s.example/api/v2/admin/accounts?limit=1&max_id=11>; rel="next", <https://s.example/api/v2/admin/accounts?limit=1&min_id=99>; rel="prev"`, "https://s.example/api/v2/admin/accounts?limit=1&max_id=11"},
		{`<https://s.example/x?min_id=1>; rel="prev"`, ""},
		{`<http://localhost:8080/api/v2/admin/accounts?limit=50&max_id=xn--xample-ova.org%2F%40%C3%BCser>; rel="next", <http://localhost:8080/api/v2/admin/accounts?limit=50&min_id=%2F%401happyturtle>; rel="prev"`, "http://localhost:8080/api/v2/admin/accounts?limit=50&max_id=xn--xample-ova.org%2F%40%C3%BCser"},
		{`<https://s.example/a?x=1,2>; rel=next`, "https://s.example/a?x=1,2"},
		{``, ""},
		{`garbage`, ""},
	}
	for _, tt := range tests {
		got := ""
		for _, l := range parseLink(tt.in) {
			if l.rel == "next" {
				got = l.url
			}
		}
		if got != tt.wantNext {
			t.Errorf("parseLink(%q) next = %q, want %q", tt.in, got, tt.wantNext)
		}
	}
}

func TestAdminAccountsFollowsNextAndStaysOnHost(t *testing.T) {
	var auth []string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth = append(auth, r.Header.Get("Authorization"))
		switch r.URL.Query().Get("max_id") {
		case "":
			if r.URL.Query().Get("status") != "pending" || r.URL.Query().Get("limit") != "2" {
				t.Errorf("first page query = %s", r.URL.RawQuery)
			}
			// A Link pointing at another host: the client must re-root it on its own server.
			w.Header().Set("Link", `<https://evil.example/api/v2/admin/accounts?limit=2&max_id=8&status=pending>; rel="next"`)
			fmt.Fprint(w, `[{"id":"10","username":"a","email":"a@x.gov"},{"id":"9","username":"b","email":"b@x.gov"}]`)
		case "8":
			w.Header().Set("Link", `<https://s.example/api/v2/admin/accounts?limit=2&max_id=7&status=pending>; rel="next"`)
			fmt.Fprint(w, `[{"id":"8","username":"c","email":"c@x.gov","confirmed":true}]`)
		case "7":
			fmt.Fprint(w, `[]`)
		default:
			t.Errorf("unexpected page %s", r.URL.RawQuery)
		}
	})
	c, _ := newTestClient(t, h)
	got, err := c.AdminAccounts(context.Background(), AccountFilter{Origin: "local", Status: "pending", Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[2].ID != "8" || !got[2].Confirmed {
		t.Fatalf("accounts = %+v", got)
	}
	for _, a := range auth {
		if a != "Bearer secret-token-xyz" {
			t.Errorf("Authorization = %q", a)
		}
	}
}

func TestAdminAccountsOldMastodonV1Link(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v2/admin/accounts" {
			t.Errorf("followed a v1 link: %s", r.URL.Path)
			fmt.Fprint(w, `[]`)
			return
		}
		if r.URL.Query().Get("max_id") == "" {
			w.Header().Set("Link", `<https://s.example/api/v1/admin/accounts?limit=1&max_id=5>; rel="next"`)
			fmt.Fprint(w, `[{"id":"5","username":"a","email":"a@x.gov"}]`)
			return
		}
		if r.URL.Query().Get("status") != "pending" || r.URL.Query().Get("max_id") != "5" {
			t.Errorf("rebuilt query = %s", r.URL.RawQuery)
		}
		fmt.Fprint(w, `[]`)
	})
	c, _ := newTestClient(t, h)
	got, err := c.AdminAccounts(context.Background(), AccountFilter{Status: "pending", Limit: 1})
	if err != nil || len(got) != 1 {
		t.Fatalf("got %v, %v", got, err)
	}
}

func rateHeaders(w http.ResponseWriter, remaining int, reset time.Time) {
	w.Header().Set("X-RateLimit-Limit", "300")
	w.Header().Set("X-RateLimit-Remaining", fmt.Sprint(remaining))
	w.Header().Set("X-RateLimit-Reset", reset.UTC().Format("2006-01-02T15:04:05.000000Z"))
}

// TestSpentBudgetIsReportedNotWaited: the client never sleeps for a rate-limit window. When
// the last answer said the budget is spent, the next request is not sent: a *RateLimitError
// carries the rate state, and the caller's run decides whether to wait.
func TestSpentBudgetIsReportedNotWaited(t *testing.T) {
	var calls atomic.Int32
	reset := t0.Add(3 * time.Minute)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		rateHeaders(w, 0, reset)
		fmt.Fprint(w, `{}`)
	})
	c, fc := newTestClient(t, h)
	ctx := context.Background()
	if _, err := c.AdminAccount(ctx, "1"); err != nil {
		t.Fatal(err)
	}
	if r := c.Rate(); !r.Known || r.Remaining != 0 || !r.Reset.Equal(reset) || r.Limit != 300 {
		t.Fatalf("rate = %+v", r)
	}
	_, err := c.AdminAccount(ctx, "1")
	rl, ok := RateLimit(err)
	if !ok || !IsRateLimited(err) || rl.Throttled || !rl.Rate.Reset.Equal(reset) || !rl.LimitedUntil().Equal(reset) {
		t.Fatalf("err = %#v, want *RateLimitError until %v", err, reset)
	}
	if calls.Load() != 1 {
		t.Errorf("a request was sent although no budget was left: calls = %d", calls.Load())
	}
	if !fc.Now().Equal(t0) {
		t.Errorf("the client slept %v", fc.Now().Sub(t0))
	}
	fc.Set(reset.Add(time.Second))
	if _, err := c.AdminAccount(ctx, "1"); err != nil || calls.Load() != 2 {
		t.Errorf("after the reset: %v, calls %d", err, calls.Load())
	}
}

// Test429IsReported: a 429 (nothing done) becomes a *RateLimitError with the window the
// server named, in its rate-limit headers or GoToSocial's Retry-After.
func Test429IsReported(t *testing.T) {
	reset := t0.Add(90 * time.Second)
	tests := []struct {
		name   string
		header func(w http.ResponseWriter)
		want   time.Time
	}{
		{"rate-limit headers", func(w http.ResponseWriter) { rateHeaders(w, 0, reset) }, reset},
		{"Retry-After", func(w http.ResponseWriter) { w.Header().Set("Retry-After", "42") }, t0.Add(42 * time.Second)},
		{"neither: a backoff", func(http.ResponseWriter) {}, t0.Add(time.Second)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int32
			c, fc := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				tt.header(w)
				w.WriteHeader(http.StatusTooManyRequests)
				fmt.Fprint(w, `{"error":"Too many requests"}`)
			}))
			_, err := c.AdminAccount(context.Background(), "1")
			rl, ok := RateLimit(err)
			if !ok || !rl.Throttled || !rl.Rate.Reset.Equal(tt.want) {
				t.Fatalf("err = %v (%+v), want a 429 until %v", err, rl, tt.want)
			}
			if calls.Load() != 1 || !fc.Now().Equal(t0) {
				t.Errorf("calls %d, slept %v", calls.Load(), fc.Now().Sub(t0))
			}
		})
	}
}

// TestWritesAreRepeatedOnlyWhenTheyNeverLeft: a POST that may have reached the server (an
// answer lost, a 5xx) is not repeated: the caller gets an *AmbiguousError and reads back. One
// that provably never left (connection refused) is retried.
func TestWritesAreRepeatedOnlyWhenTheyNeverLeft(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	fc := clock.NewFake(t0)
	c, err := New(srv.URL, "tok", WithClock(fc), WithBackoff(time.Millisecond, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Approve(context.Background(), "1")
	if !IsAmbiguous(err) || StatusOf(err) != 503 || calls.Load() != 1 {
		t.Errorf("POST 503: %v, calls %d; want one ambiguous attempt", err, calls.Load())
	}
	calls.Store(0)
	if _, err := c.AdminAccount(context.Background(), "1"); err == nil || calls.Load() != 4 {
		t.Errorf("GET 503: %v, calls %d; want 4 attempts", err, calls.Load())
	}

	// Connection refused: nothing left, so the POST is tried again (and again refused).
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c2, err := New("http://"+addr, "tok", WithClock(fc), WithBackoff(time.Millisecond, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	err = c2.Approve(context.Background(), "1")
	if err == nil || IsAmbiguous(err) || !strings.Contains(err.Error(), "giving up after 4 attempts") {
		t.Errorf("refused POST: %v; want 4 attempts and no ambiguity", err)
	}

	// An answer that never comes: the POST may have been processed.
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		time.Sleep(200 * time.Millisecond)
	}))
	defer hang.Close()
	calls.Store(0)
	c3, err := New(hang.URL, "tok", WithClock(fc), WithTimeout(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if err := c3.Approve(context.Background(), "1"); !IsAmbiguous(err) || calls.Load() != 1 {
		t.Errorf("timed-out POST: %v, calls %d", err, calls.Load())
	}
}

func TestRetries5xxAndNetworkErrors(t *testing.T) {
	tests := []struct {
		name     string
		fail     func(w http.ResponseWriter)
		failures int32
		wantErr  bool
	}{
		{"500 once", func(w http.ResponseWriter) { w.WriteHeader(500) }, 1, false},
		{"503 three times", func(w http.ResponseWriter) { w.WriteHeader(503) }, 3, false},
		{"502 forever", func(w http.ResponseWriter) { w.WriteHeader(502) }, 100, true},
		{"dropped connection", func(w http.ResponseWriter) {
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
		}, 2, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int32
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if calls.Add(1) <= tt.failures {
					tt.fail(w)
					return
				}
				fmt.Fprint(w, `{"id":"1"}`)
			})
			c, fc := newTestClient(t, h, WithBackoff(time.Second, 8*time.Second))
			_, err := c.AdminAccount(context.Background(), "1")
			if tt.wantErr {
				if err == nil || StatusOf(err) != 502 {
					t.Fatalf("err = %v, want 502", err)
				}
				if calls.Load() != 4 {
					t.Errorf("attempts = %d, want 4", calls.Load())
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			total, _ := fc.Slept()
			if total == 0 {
				t.Error("no backoff between attempts")
			}
		})
	}
}

func TestTimeoutIsRetried(t *testing.T) {
	var calls atomic.Int32
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			<-r.Context().Done()
			return
		}
		fmt.Fprint(w, `{"id":"1"}`)
	})
	c, _ := newTestClient(t, h, WithTimeout(100*time.Millisecond))
	if _, err := c.AdminAccount(context.Background(), "1"); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 2 {
		t.Errorf("calls = %d", calls.Load())
	}
}

func TestErrorsCarryStatusNotToken(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(403)
		fmt.Fprint(w, `{"error":"This action is not allowed"}`)
	})
	c, _ := newTestClient(t, h)
	err := c.Approve(context.Background(), "42")
	if StatusOf(err) != 403 || !strings.Contains(err.Error(), "This action is not allowed") || !strings.Contains(err.Error(), "/api/v1/admin/accounts/42/approve") {
		t.Errorf("err = %v", err)
	}
	if strings.Contains(err.Error(), "secret-token-xyz") {
		t.Errorf("token in error: %v", err)
	}
	// A transport error must not leak it either.
	c2, err2 := New("http://127.0.0.1:1", "secret-token-xyz", WithRetries(0))
	if err2 != nil {
		t.Fatal(err2)
	}
	_, err = c2.AdminAccount(context.Background(), "1")
	if err == nil || strings.Contains(err.Error(), "secret-token-xyz") {
		t.Errorf("err = %v", err)
	}
}

func TestServerDetection(t *testing.T) {
	tests := []struct {
		name      string
		header    string
		body      string
		v2missing bool
		want      Server
		limit     int
	}{
		{"mastodon 4.3", "", `{"version":"4.3.0","source_url":"https://github.com/mastodon/mastodon"}`, false, Server{Software: Mastodon, Version: "4.3.0", Major: 4, Minor: 3}, 500},
		{"mastodon 4.2 glitch", "", `{"version":"4.2.10+glitch"}`, false, Server{Software: Mastodon, Version: "4.2.10+glitch", Major: 4, Minor: 2, Patch: 10}, 200},
		{"mastodon 3.5 v1 only", "", `{"version":"3.5.3"}`, true, Server{Software: Mastodon, Version: "3.5.3", Major: 3, Minor: 5, Patch: 3}, 200},
		{"gotosocial header", "gotosocial", `{"version":""}`, false, Server{Software: GoToSocial}, 200},
		{"gotosocial source", "", `{"version":"0.17.3","source_url":"https://github.com/superseriousbusiness/gotosocial"}`, false, Server{Software: GoToSocial, Version: "0.17.3", Minor: 17, Patch: 3}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls int
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls++
				if tt.v2missing && r.URL.Path == "/api/v2/instance" {
					w.WriteHeader(404)
					return
				}
				if tt.header != "" {
					w.Header().Set("Server", tt.header)
				}
				fmt.Fprint(w, tt.body)
			})
			c, _ := newTestClient(t, h)
			for range 2 {
				got, err := c.Server(context.Background())
				if err != nil || got != tt.want {
					t.Fatalf("Server = %+v, %v; want %+v", got, err, tt.want)
				}
				if got.DomainBlockPageLimit() != tt.limit {
					t.Errorf("limit = %d", got.DomainBlockPageLimit())
				}
			}
			if want := map[bool]int{false: 1, true: 2}[tt.v2missing]; calls != want {
				t.Errorf("calls = %d, want %d (cached)", calls, want)
			}
		})
	}
}

func TestCreateDomainBlockConflict(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p map[string]any
		_ = json.NewDecoder(r.Body).Decode(&p)
		if p["domain"] != "sub.bad.example" || p["severity"] != "silence" {
			t.Errorf("body = %v", p)
		}
		if _, ok := p["reject_media"]; ok {
			t.Errorf("unset field sent: %v", p)
		}
		w.WriteHeader(422)
		fmt.Fprint(w, `{"error":"You have already imposed stricter limits on bad.example.","existing_domain_block":{"id":"42","domain":"bad.example","severity":"suspend","private_comment":null}}`)
	})
	c, _ := newTestClient(t, h)
	sev := "silence"
	_, err := c.CreateDomainBlock(context.Background(), DomainBlockParams{Domain: "sub.bad.example", Severity: &sev})
	var ce *ConflictError
	if !errors.As(err, &ce) || ce.Existing.ID != "42" || ce.Existing.Domain != "bad.example" || ce.Existing.Severity != "suspend" {
		t.Fatalf("err = %v", err)
	}
}

func TestUpdateUnsupportedAndMeasures(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPut:
			w.WriteHeader(405)
		case r.URL.Path == "/api/v1/admin/measures":
			var body map[string]any
			_ = json.NewDecoder(r.Body).Decode(&body)
			if body["start_at"] == nil || body["end_at"] == nil {
				t.Errorf("measures without dates: %v", body)
			}
			fmt.Fprint(w, `[{"key":"instance_follows","total":"12","data":[]},{"key":"instance_followers","total":"3","data":[]}]`)
		}
	})
	c, _ := newTestClient(t, h)
	if _, err := c.UpdateDomainBlock(context.Background(), "1", DomainBlockParams{}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("update: %v", err)
	}
	f, err := c.DomainFollows(context.Background(), "bad.example", t0.AddDate(0, 0, -30), t0)
	if err != nil || f.Follows != 12 || f.Followers != 3 {
		t.Errorf("follows = %+v, %v", f, err)
	}
}

func TestNewRejectsBadURL(t *testing.T) {
	for _, u := range []string{"", "social.example", "ftp://x", "https://"} {
		if _, err := New(u, ""); err == nil {
			t.Errorf("New(%q) accepted", u)
		}
	}
}

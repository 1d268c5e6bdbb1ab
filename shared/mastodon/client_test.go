package mastodon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

func TestWaitsForResetWhenBudgetSpent(t *testing.T) {
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
	if _, err := c.AdminAccount(ctx, "1"); err != nil {
		t.Fatal(err)
	}
	if !fc.Now().After(reset) {
		t.Errorf("second request sent at %v, before the reset %v", fc.Now(), reset)
	}
	if calls.Load() != 2 {
		t.Errorf("calls = %d", calls.Load())
	}
}

func TestStopsCleanlyWhenResetIsPastDeadline(t *testing.T) {
	var calls atomic.Int32
	reset := t0.Add(4 * time.Minute)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		rateHeaders(w, 0, reset)
		fmt.Fprint(w, `{}`)
	})
	c, fc := newTestClient(t, h)
	ctx := clock.WithDeadline(context.Background(), t0.Add(time.Minute))
	if _, err := c.AdminAccount(ctx, "1"); err != nil {
		t.Fatal(err)
	}
	_, err := c.AdminAccount(ctx, "1")
	var rl *RateLimitError
	if !errors.As(err, &rl) || !IsRateLimited(err) {
		t.Fatalf("err = %v, want *RateLimitError", err)
	}
	if calls.Load() != 1 {
		t.Errorf("a request was sent although no budget was left: calls = %d", calls.Load())
	}
	if !fc.Now().Equal(t0) {
		t.Errorf("slept although the deadline did not allow it")
	}
}

func Test429WaitsForResetThenRetries(t *testing.T) {
	var calls atomic.Int32
	reset := t0.Add(90 * time.Second)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			rateHeaders(w, 0, reset)
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprint(w, `{"error":"Too many requests"}`)
			return
		}
		rateHeaders(w, 299, reset.Add(5*time.Minute))
		fmt.Fprint(w, `{"id":"1","username":"u"}`)
	})
	c, fc := newTestClient(t, h)
	a, err := c.AdminAccount(context.Background(), "1")
	if err != nil || a.Username != "u" {
		t.Fatalf("got %+v, %v", a, err)
	}
	if !fc.Now().After(reset) {
		t.Errorf("retried before the reset")
	}
	// With a deadline before the reset: a clean *RateLimitError.
	calls.Store(0)
	c2, _ := newTestClient(t, h)
	_, err = c2.AdminAccount(clock.WithDeadline(context.Background(), t0.Add(30*time.Second)), "1")
	if !IsRateLimited(err) {
		t.Errorf("err = %v, want rate limited", err)
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

package mastosim

import (
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

func wantRateHeaders(t *testing.T, w *httptest.ResponseRecorder, limit, remaining int, reset string) {
	t.Helper()
	h := w.Header()
	if h.Get("X-RateLimit-Limit") != strconv.Itoa(limit) || h.Get("X-RateLimit-Remaining") != strconv.Itoa(remaining) || h.Get("X-RateLimit-Reset") != reset {
		t.Fatalf("rate headers = limit %q remaining %q reset %q; want %d %d %s",
			h.Get("X-RateLimit-Limit"), h.Get("X-RateLimit-Remaining"), h.Get("X-RateLimit-Reset"), limit, remaining, reset)
	}
}

func TestPerTokenRateLimit(t *testing.T) {
	s, fc := newSim(t, Options{})
	fc.Set(time.Date(2026, 8, 21, 14, 3, 20, 500_000_000, time.UTC))
	pending := s.AddAccount(Account{Username: "p"})
	const reset = "2026-08-21T14:05:00.000000Z"

	for i := 1; i <= 300; i++ {
		w := do(t, s, "GET", "/api/v1/admin/domain_blocks", adminTok, nil)
		wantStatus(t, w, 200)
		if i == 1 || i == 300 {
			wantRateHeaders(t, w, 300, 300-i, reset)
		}
	}
	// The 301st request in the window is throttled and has no effect.
	w := do(t, s, "POST", "/api/v1/admin/accounts/"+pending+"/approve", adminTok, nil)
	wantError(t, w, 429, "Too many requests")
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("429 Content-Type = %q", ct)
	}
	if w.Header().Get("Retry-After") != "" {
		t.Fatal("429 has Retry-After")
	}
	wantRateHeaders(t, w, 300, 0, reset)
	if a, _ := s.Account(pending); a.Approved {
		t.Fatal("throttled approve had an effect")
	}
	if reqs := s.Requests(); len(reqs) != 301 || reqs[300].Status != 429 || reqs[300].Token != adminTok {
		t.Fatalf("recorded %d requests, last %+v", len(reqs), reqs[len(reqs)-1])
	}

	// Another token of the same user has its own per-token bucket.
	s.AddToken("other", "admin:read")
	wantRateHeaders(t, do(t, s, "GET", "/api/v1/admin/domain_blocks", "other", nil), 300, 299, reset)

	// The next window (aligned to the epoch, not to the first request) starts afresh.
	fc.Set(time.Date(2026, 8, 21, 14, 5, 0, 0, time.UTC))
	w = do(t, s, "POST", "/api/v1/admin/accounts/"+pending+"/approve", adminTok, nil)
	wantStatus(t, w, 200)
	wantRateHeaders(t, w, 300, 299, "2026-08-21T14:10:00.000000Z")
}

func TestPagingRateLimit(t *testing.T) {
	s, fc := newSim(t, Options{PagingLimit: 3})
	seedPending(s, 3, "p")
	const reset15 = "2026-08-21T14:15:00.000000Z" // t0 is 14:01

	// A non-paging request reports the per-token bucket.
	wantRateHeaders(t, do(t, s, "GET", "/api/v2/admin/accounts", adminTok, nil), 300, 299, "2026-08-21T14:05:00.000000Z")
	// Paging requests count against the 15-minute bucket, which becomes the most limited one.
	for i := 1; i <= 3; i++ {
		w := do(t, s, "GET", "/api/v2/admin/accounts?max_id=99999999999999999", adminTok, nil)
		wantStatus(t, w, 200)
		wantRateHeaders(t, w, 3, 3-i, reset15)
	}
	w := do(t, s, "GET", "/api/v2/admin/accounts?min_id=1", adminTok, nil)
	wantError(t, w, 429, "Too many requests")
	wantRateHeaders(t, w, 3, 0, reset15)
	// page= and since_id= are paging too; a blank max_id is not.
	wantStatus(t, do(t, s, "GET", "/api/v2/admin/accounts?since_id=1", adminTok, nil), 429)
	wantStatus(t, do(t, s, "GET", "/api/v1/admin/domain_blocks?page=2", adminTok, nil), 429)
	wantStatus(t, do(t, s, "GET", "/api/v2/admin/accounts?max_id=", adminTok, nil), 200)
	// The bucket is per user, so another token of the administrator is throttled too.
	s.AddToken("second", "admin:read")
	wantStatus(t, do(t, s, "GET", "/api/v2/admin/accounts?max_id=1", "second", nil), 429)
	// Five minutes later the per-token window has rolled over but the paging one has not.
	fc.Advance(5 * time.Minute)
	wantStatus(t, do(t, s, "GET", "/api/v2/admin/accounts?max_id=1", adminTok, nil), 429)
	fc.Set(time.Date(2026, 8, 21, 14, 15, 0, 0, time.UTC))
	w = do(t, s, "GET", "/api/v2/admin/accounts?max_id=1", adminTok, nil)
	wantStatus(t, w, 200)
	wantRateHeaders(t, w, 3, 2, "2026-08-21T14:30:00.000000Z")
}

func TestUnauthenticatedRateLimitPerIP(t *testing.T) {
	s, _ := newSim(t, Options{})
	for i := 1; i <= 300; i++ {
		w := serve(s, newReq("GET", "/api/v1/instance", ""))
		wantStatus(t, w, 200)
		if i == 300 {
			wantRateHeaders(t, w, 300, 0, "2026-08-21T14:05:00.000000Z")
		}
	}
	wantError(t, serve(s, newReq("GET", "/api/v2/instance", "")), 429, "Too many requests")
	// An unknown token is unauthenticated: it shares the IP bucket.
	wantStatus(t, serve(s, newReq("GET", "/api/v1/instance", "bogus")), 429)
	// Another IP, and an IPv6 /64 different from it, have their own buckets.
	r := newReq("GET", "/api/v1/instance", "")
	r.RemoteAddr = "198.51.100.9:4444"
	wantStatus(t, serve(s, r), 200)
	// A valid token is counted per token, not per IP.
	wantStatus(t, serve(s, newReq("GET", "/api/v1/instance", adminTok)), 200)
}

func TestIPv6Masking(t *testing.T) {
	if a, b := throttleableIP("[2001:db8:1:2::1]:80"), throttleableIP("[2001:db8:1:2:ffff::9]:80"); a != b || a != "2001:db8:1:2::/64" {
		t.Fatalf("masked %q %q", a, b)
	}
	if throttleableIP("192.0.2.1:5") != "192.0.2.1" {
		t.Fatal("IPv4 must not be masked")
	}
}

func TestRateLimitOptions(t *testing.T) {
	s, _ := newSim(t, Options{RateLimit: 2, PagingLimit: -1})
	wantStatus(t, do(t, s, "GET", "/api/v1/admin/domain_blocks?max_id=5", adminTok, nil), 200)
	w := do(t, s, "GET", "/api/v1/admin/domain_blocks", adminTok, nil)
	wantStatus(t, w, 200)
	wantRateHeaders(t, w, 2, 0, "2026-08-21T14:05:00.000000Z")
	wantStatus(t, do(t, s, "GET", "/api/v1/admin/domain_blocks", adminTok, nil), 429)

	off, _ := newSim(t, Options{RateLimit: -1, PagingLimit: -1})
	for i := 0; i < 400; i++ {
		w := do(t, off, "GET", "/api/v1/admin/domain_blocks?max_id=9", adminTok, nil)
		wantStatus(t, w, 200)
		if w.Header().Get("X-RateLimit-Limit") != "" {
			t.Fatal("rate-limit headers without throttles")
		}
	}

	user, _ := newSim(t, Options{UserRateLimit: 3})
	user.AddToken("b", "admin:read")
	wantStatus(t, do(t, user, "GET", "/api/v1/instance", adminTok, nil), 200)
	wantStatus(t, do(t, user, "GET", "/api/v1/instance", "b", nil), 200)
	wantRateHeaders(t, do(t, user, "GET", "/api/v1/instance", adminTok, nil), 3, 0, "2026-08-21T14:05:00.000000Z")
	wantStatus(t, do(t, user, "GET", "/api/v1/instance", "b", nil), 429)
}

func TestAppRegistrationThrottle(t *testing.T) {
	s, _ := newSim(t, Options{})
	body := map[string]any{"client_name": "fediops", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob", "scopes": "admin:read"}
	for i := 0; i < 5; i++ {
		wantStatus(t, do(t, s, "POST", "/api/v1/apps", "", body), 200)
	}
	w := do(t, s, "POST", "/api/v1/apps", "", body)
	wantError(t, w, 429, "Too many requests")
	wantRateHeaders(t, w, 5, 0, "2026-08-21T14:10:00.000000Z")
}

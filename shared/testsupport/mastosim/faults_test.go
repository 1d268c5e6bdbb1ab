package mastosim

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// liveSim runs the simulator on a real listener and returns a client that opens a new
// connection per request (so the transport never silently retries a dropped GET).
func liveSim(t *testing.T, opts Options) (*Server, *httptest.Server, *http.Client) {
	t.Helper()
	s, _ := newSim(t, opts)
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	client := &http.Client{
		Timeout:   300 * time.Millisecond,
		Transport: &http.Transport{DisableKeepAlives: true},
	}
	return s, ts, client
}

type liveResp struct {
	status int
	header http.Header
	body   string
}

func liveCall(t *testing.T, c *http.Client, method, url, tok, body string) (liveResp, error) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.Do(req)
	if err != nil {
		return liveResp{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return liveResp{resp.StatusCode, resp.Header, string(b)}, err
}

func mustCall(t *testing.T, c *http.Client, method, url, tok, body string) liveResp {
	t.Helper()
	r, err := liveCall(t, c, method, url, tok, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return r
}

func TestFaultTooManyRequests(t *testing.T) {
	s, ts, c := liveSim(t, Options{})
	s.InjectFault(Fault{Kind: FaultTooManyRequests, Match: MatchPath("GET", "/api/v1/admin/domain_blocks"), Skip: 1, Times: 2})
	url := ts.URL + "/api/v1/admin/domain_blocks"
	want := []int{200, 429, 429, 200}
	for i, st := range want {
		r := mustCall(t, c, "GET", url, adminTok, "")
		if r.status != st {
			t.Fatalf("request %d: status %d, want %d", i, r.status, st)
		}
		if st == 429 {
			if r.body != `{"error":"Too many requests"}` || r.header.Get("X-RateLimit-Remaining") != "0" ||
				r.header.Get("X-RateLimit-Limit") != "300" || r.header.Get("X-RateLimit-Reset") != "2026-08-21T14:05:00.000000Z" ||
				r.header.Get("Content-Type") != "application/json" {
				t.Fatalf("fault 429 = %d %v %s", r.status, r.header, r.body)
			}
		}
	}
	// Non-matching requests are untouched.
	s.InjectFault(Fault{Kind: FaultTooManyRequests, Match: MatchPath("POST", "/api/v1/admin/domain_blocks")})
	if r := mustCall(t, c, "GET", url, adminTok, ""); r.status != 200 {
		t.Fatalf("GET got %d", r.status)
	}
	var statuses []int
	for _, r := range s.Requests() {
		statuses = append(statuses, r.Status)
	}
	if len(statuses) != 5 || statuses[1] != 429 || statuses[2] != 429 {
		t.Fatalf("recorded statuses %v", statuses)
	}
}

func TestFaultServerError(t *testing.T) {
	tests := []struct {
		status, want int
		msg          string
	}{
		{0, 500, "Internal Server Error"},
		{502, 502, "Bad Gateway"},
		{503, 503, "There was a temporary problem serving your request, please try again"},
		{504, 504, "Gateway Timeout"},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.want), func(t *testing.T) {
			s, ts, c := liveSim(t, Options{})
			s.InjectFault(Fault{Kind: FaultServerError, Status: tt.status})
			r := mustCall(t, c, "GET", ts.URL+"/api/v2/instance", "", "")
			var body map[string]string
			_ = json.Unmarshal([]byte(r.body), &body)
			if r.status != tt.want || body["error"] != tt.msg {
				t.Fatalf("got %d %s", r.status, r.body)
			}
			if r := mustCall(t, c, "GET", ts.URL+"/api/v2/instance", "", ""); r.status != 200 {
				t.Fatalf("second request: %d", r.status)
			}
		})
	}
}

func TestFaultTimeout(t *testing.T) {
	s, ts, c := liveSim(t, Options{})
	s.InjectFault(Fault{Kind: FaultTimeout, Match: MatchExactPath("GET", "/api/v1/admin/domain_blocks")})
	start := time.Now()
	_, err := liveCall(t, c, "GET", ts.URL+"/api/v1/admin/domain_blocks", adminTok, "")
	var ne net.Error
	if err == nil || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("err = %v, want a client timeout", err)
	}
	if time.Since(start) < 250*time.Millisecond {
		t.Fatal("returned before the client timeout")
	}
	if r := mustCall(t, c, "GET", ts.URL+"/api/v1/admin/domain_blocks", adminTok, ""); r.status != 200 {
		t.Fatalf("after timeout fault: %d", r.status)
	}
	if reqs := s.Requests(); len(reqs) != 2 || reqs[0].Status != 0 || reqs[1].Status != 200 {
		t.Fatalf("requests = %+v", reqs)
	}
}

func TestClearFaultsReleasesHangingRequests(t *testing.T) {
	s, ts, _ := liveSim(t, Options{})
	s.InjectFault(Fault{Kind: FaultTimeout, Times: -1})
	slow := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	done := make(chan error, 1)
	go func() {
		_, err := liveCall(t, slow, "GET", ts.URL+"/api/v1/instance", "", "")
		done <- err
	}()
	for len(s.Requests()) == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	s.ClearFaults()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("released request got a response")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ClearFaults did not release the request")
	}
}

func TestFaultDrop(t *testing.T) {
	s, ts, c := liveSim(t, Options{})
	s.InjectFault(Fault{Kind: FaultDrop, Match: MatchToken(adminTok)})
	_, err := liveCall(t, c, "GET", ts.URL+"/api/v1/admin/domain_blocks", adminTok, "")
	if err == nil {
		t.Fatal("dropped connection gave a response")
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("drop looked like a timeout: %v", err)
	}
	if r := mustCall(t, c, "GET", ts.URL+"/api/v1/admin/domain_blocks", adminTok, ""); r.status != 200 {
		t.Fatalf("after drop: %d", r.status)
	}
	if reqs := s.Requests(); len(reqs) != 2 || reqs[0].Status != 0 {
		t.Fatalf("requests = %+v", reqs)
	}
}

func TestFaultAfterApply(t *testing.T) {
	kinds := []FaultKind{FaultDrop, FaultTimeout, FaultServerError, FaultTooManyRequests}
	for _, kind := range kinds {
		t.Run(kind.String(), func(t *testing.T) {
			s, ts, c := liveSim(t, Options{})
			id := s.AddAccount(Account{Username: "p"})
			approve := ts.URL + "/api/v1/admin/accounts/" + id + "/approve"
			s.InjectFault(Fault{Kind: kind, Match: MatchPath("POST", "/api/v1/admin/accounts/"), AfterApply: true})
			r, err := liveCall(t, c, "POST", approve, adminTok, "")
			if err == nil && r.status == 200 {
				t.Fatalf("fault did not reach the client: %d %s", r.status, r.body)
			}
			// The server did it anyway.
			if a, _ := s.Account(id); !a.Approved {
				t.Fatal("AfterApply fault prevented the effect")
			}
			// A retry finds it already approved (403) and a re-GET shows approved: true.
			if r := mustCall(t, c, "POST", approve, adminTok, ""); r.status != 403 {
				t.Fatalf("retry: %d %s", r.status, r.body)
			}
			r = mustCall(t, c, "GET", ts.URL+"/api/v1/admin/accounts/"+id, adminTok, "")
			if !strings.Contains(r.body, `"approved":true`) {
				t.Fatalf("re-GET: %s", r.body)
			}
		})
	}

	// Without AfterApply the request has no effect.
	s, ts, c := liveSim(t, Options{})
	s.InjectFault(Fault{Kind: FaultServerError, Match: MatchPath("POST", "/api/v1/admin/domain_blocks")})
	r := mustCall(t, c, "POST", ts.URL+"/api/v1/admin/domain_blocks", adminTok, `{"domain":"bad.example","severity":"suspend"}`)
	if r.status != 500 || len(s.DomainBlocks()) != 0 {
		t.Fatalf("pre-apply fault: %d, blocks %v", r.status, s.DomainBlocks())
	}
	// With AfterApply the block exists and the retry meets the existing-block 422.
	s.InjectFault(Fault{Kind: FaultServerError, Status: 502, Match: MatchPath("POST", "/api/v1/admin/domain_blocks"), AfterApply: true})
	r = mustCall(t, c, "POST", ts.URL+"/api/v1/admin/domain_blocks", adminTok, `{"domain":"bad.example","severity":"suspend"}`)
	if r.status != 502 || len(s.DomainBlocks()) != 1 {
		t.Fatalf("after-apply fault: %d, blocks %v", r.status, s.DomainBlocks())
	}
	r = mustCall(t, c, "POST", ts.URL+"/api/v1/admin/domain_blocks", adminTok, `{"domain":"bad.example","severity":"suspend"}`)
	if r.status != 422 || !strings.Contains(r.body, `"existing_domain_block"`) {
		t.Fatalf("retry: %d %s", r.status, r.body)
	}
}

func TestMatchers(t *testing.T) {
	r := httptest.NewRequest("GET", "http://h/api/v2/admin/accounts?status=pending", nil)
	r.Header.Set("Authorization", "Bearer tok")
	tests := []struct {
		name string
		m    func(*http.Request) bool
		want bool
	}{
		{"path prefix", MatchPath("GET", "/api/v2/admin"), true},
		{"path any method", MatchPath("", "/api/v2/admin/accounts"), true},
		{"path wrong method", MatchPath("POST", "/api/v2/admin"), false},
		{"exact path", MatchExactPath("GET", "/api/v2/admin/accounts"), true},
		{"exact path prefix only", MatchExactPath("GET", "/api/v2/admin"), false},
		{"query", MatchQuery("status", "pending"), true},
		{"query other value", MatchQuery("status", "active"), false},
		{"token", MatchToken("tok"), true},
		{"other token", MatchToken("nope"), false},
		{"all", MatchAll(MatchPath("GET", "/api"), MatchToken("tok")), true},
		{"all with a miss", MatchAll(MatchPath("GET", "/api"), MatchToken("nope")), false},
	}
	for _, tt := range tests {
		if got := tt.m(r); got != tt.want {
			t.Errorf("%s = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestFaultMatchSeesBody(t *testing.T) {
	s, _ := newSim(t, Options{})
	s.InjectFault(Fault{Kind: FaultServerError, Match: func(r *http.Request) bool {
		b, _ := io.ReadAll(r.Body)
		return strings.Contains(string(b), "evil.example")
	}, Times: -1})
	wantStatus(t, do(t, s, "POST", "/api/v1/admin/domain_blocks", adminTok, map[string]any{"domain": "evil.example"}), 500)
	wantStatus(t, do(t, s, "POST", "/api/v1/admin/domain_blocks", adminTok, map[string]any{"domain": "fine.example"}), 200)
	wantStatus(t, do(t, s, "POST", "/api/v1/admin/domain_blocks", adminTok, map[string]any{"domain": "evil.example"}), 500)
	if got := s.Requests()[1].Body; got != `{"domain":"fine.example"}` {
		t.Fatalf("recorded body %q", got)
	}
	s.ClearFaults()
	wantStatus(t, do(t, s, "POST", "/api/v1/admin/domain_blocks", adminTok, map[string]any{"domain": "evil.example"}), 200)
	s.ResetRequests()
	if len(s.Requests()) != 0 {
		t.Fatal("ResetRequests kept requests")
	}
}

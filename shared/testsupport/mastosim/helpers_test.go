package mastosim

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fediops/fediops/shared/clock"
)

// t0 is inside a 5-minute and a 15-minute window: 14:01:00 UTC.
var t0 = time.Date(2026, 8, 21, 14, 1, 0, 0, time.UTC)

const (
	adminTok = "admin-token"
	host     = "social.example"
)

func newSim(t *testing.T, opts Options) (*Server, *clock.Fake) {
	t.Helper()
	fc := clock.NewFake(t0)
	if opts.Clock == nil {
		opts.Clock = fc
	}
	s := New(opts)
	s.AddToken(adminTok, "admin:read admin:write")
	return s, fc
}

// do sends a request straight to the handler. body may be nil, url.Values (form) or anything
// else (JSON).
func do(t *testing.T, h http.Handler, method, target, tok string, body any) *httptest.ResponseRecorder {
	t.Helper()
	var rd io.Reader
	ct := ""
	switch b := body.(type) {
	case nil:
	case url.Values:
		rd, ct = strings.NewReader(b.Encode()), "application/x-www-form-urlencoded"
	case string:
		rd, ct = strings.NewReader(b), "application/json"
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd, ct = strings.NewReader(string(j)), "application/json"
	}
	if !strings.HasPrefix(target, "http") {
		target = "http://" + host + target
	}
	r := httptest.NewRequest(method, target, rd)
	if ct != "" {
		r.Header.Set("Content-Type", ct)
	}
	if tok != "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func decode[T any](t *testing.T, w *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("decode %q: %v", w.Body.String(), err)
	}
	return v
}

func wantStatus(t *testing.T, w *httptest.ResponseRecorder, status int) {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status = %d, want %d; body %s", w.Code, status, w.Body.String())
	}
}

func wantError(t *testing.T, w *httptest.ResponseRecorder, status int, msg string) {
	t.Helper()
	wantStatus(t, w, status)
	got := decode[map[string]any](t, w)
	if got["error"] != msg {
		t.Fatalf("error = %q, want %q (body %s)", got["error"], msg, w.Body.String())
	}
}

func ids(t *testing.T, w *httptest.ResponseRecorder) []string {
	t.Helper()
	var list []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &list); err != nil {
		t.Fatalf("decode %q: %v", w.Body.String(), err)
	}
	out := make([]string, len(list))
	for i, e := range list {
		out[i] = e.ID
	}
	return out
}

// seedPending adds n pending local accounts, one second apart, and returns their ids (oldest first).
func seedPending(s *Server, n int, prefix string) []string {
	var out []string
	for i := 0; i < n; i++ {
		out = append(out, s.AddAccount(Account{
			Username:  fmt.Sprintf("%s%d", prefix, i),
			Email:     fmt.Sprintf("%s%d@mail.example", prefix, i),
			CreatedAt: t0.Add(-time.Hour + time.Duration(i)*time.Second),
		}))
	}
	return out
}

func reversed(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[len(s)-1-i] = v
	}
	return out
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

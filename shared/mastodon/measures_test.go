package mastodon

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync"
	"testing"

	"github.com/fediops/fediops/shared/testsupport/mastosim"
)

// measuresCapture passes requests to the simulator and keeps the body of its last measures answer.
type measuresCapture struct {
	sim  http.Handler
	mu   sync.Mutex
	body []byte
}

func (m *measuresCapture) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := httptest.NewRecorder()
	m.sim.ServeHTTP(rec, r)
	if r.URL.Path == "/api/v1/admin/measures" {
		m.mu.Lock()
		m.body = bytes.Clone(rec.Body.Bytes())
		m.mu.Unlock()
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// TestDomainFollowsReadsBothDateForms: Mastodon 4.3 sends the per-day data of measures as plain
// dates ("2026-11-24", app/lib/admin/metrics/measure/query_helper.rb casts the series to ::date,
// #29928); earlier versions send timestamps. DomainFollows reads the totals from either.
func TestDomainFollowsReadsBothDateForms(t *testing.T) {
	tests := []struct {
		version string
		form    *regexp.Regexp
	}{
		{"4.2.10", regexp.MustCompile(`^\d{4}-\d\d-\d\dT00:00:00\.000\+00:00$`)},
		{"4.3.0", regexp.MustCompile(`^\d{4}-\d\d-\d\d$`)},
	}
	for _, tt := range tests {
		t.Run(tt.version, func(t *testing.T) {
			sim := mastosim.New(mastosim.Options{Version: tt.version})
			sim.AddToken("secret-token-xyz", "admin:read") // newTestClient's token
			sim.SetFollows("bad.example", 12, 3)
			sim.SetFollows("sub.bad.example", 1, 1)
			capture := &measuresCapture{sim: sim}
			c, _ := newTestClient(t, capture)
			f, err := c.DomainFollows(context.Background(), "bad.example", t0.AddDate(0, 0, -2), t0)
			if err != nil || f != (Follows{Follows: 13, Followers: 4}) {
				t.Fatalf("DomainFollows = %+v, %v", f, err)
			}
			var got []struct {
				Data []struct {
					Date string `json:"date"`
				} `json:"data"`
			}
			if err := json.Unmarshal(capture.body, &got); err != nil || len(got) != 2 {
				t.Fatalf("answer %s: %v", capture.body, err)
			}
			for _, m := range got {
				if len(m.Data) != 3 {
					t.Fatalf("answer %s: want 3 days", capture.body)
				}
				for _, d := range m.Data {
					if !tt.form.MatchString(d.Date) {
						t.Errorf("date %q is not of the %s form %s", d.Date, tt.version, tt.form)
					}
				}
			}
		})
	}
}

package blocklist

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fediops/fediops/functions/blocklist/lists"
	"github.com/fediops/fediops/shared/fetch"
	"github.com/fediops/fediops/shared/logging"
	"github.com/fediops/fediops/shared/setup"
	"github.com/fediops/fediops/shared/testsupport/mastosim"
)

// listServer serves blocklists that a test can change between runs.
type listServer struct {
	mu    sync.Mutex
	files map[string]string
	hits  map[string]int
	srv   *httptest.Server
}

func newListServer(t *testing.T) *listServer {
	ls := &listServer{files: map[string]string{}, hits: map[string]int{}}
	ls.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ls.mu.Lock()
		defer ls.mu.Unlock()
		ls.hits[r.URL.Path]++
		body, ok := ls.files[r.URL.Path]
		if !ok {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		etag := fmt.Sprintf(`"%x"`, sha256.Sum256([]byte(body)))
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", etag)
		fmt.Fprint(w, body)
	}))
	t.Cleanup(ls.srv.Close)
	return ls
}

func (ls *listServer) set(path, body string) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if body == "" {
		delete(ls.files, path)
		return
	}
	ls.files[path] = body
}

func csvOf(domains ...string) string {
	var b strings.Builder
	b.WriteString("domain,severity\n")
	for _, d := range domains {
		b.WriteString(d + ",suspend\n")
	}
	return b.String()
}

func many(prefix string, n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("%s%02d.example", prefix, i))
	}
	return out
}

func (h *simHarness) collect(t *testing.T, ls *listServer, srcs []Source) *MergeRun {
	t.Helper()
	h.run++
	r := reader{fetcher: fetch.New(time.Second, 1<<20)}
	run, err := Collect(context.Background(), h.deps(), r, srcs, CollectOptions{MaxShrinkPct: 50, AllowSubdomains: true},
		NewSnapshot(h.store, h.clock.Now(), fmt.Sprintf("c%d", h.run)))
	if err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(time.Hour)
	return run
}

func status(run *MergeRun, name string) SourceReport {
	for _, s := range run.Report.Sources {
		if s.Name == name {
			return s
		}
	}
	return SourceReport{}
}

func TestBadSourcesAreIsolated(t *testing.T) {
	h := newSim(t, mastosim.Options{})
	ls := newListServer(t)
	ls.set("/a.csv", csvOf(many("a", 10)...))
	ls.set("/b.csv", csvOf(many("b", 10)...))
	srcs := []Source{{Name: "a", URL: ls.srv.URL + "/a.csv"}, {Name: "b", URL: ls.srv.URL + "/b.csv"}}
	run := h.collect(t, ls, srcs)
	if run.Report.Merged != 20 || run.Report.Failed != 0 {
		t.Fatalf("first run: %+v", run.Report)
	}

	tests := []struct {
		name   string
		body   string // new content of b ("" = the server fails)
		want   string
		errHas string
	}{
		{"fetch fails", "", StatusFallback, "HTTP 500"},
		{"not a blocklist", "<html><body>Cloudflare</body></html>", StatusFallback, ""},
		{"zero usable rows", "domain,severity\nnot a domain,suspend\n", StatusFallback, "zero usable rows"},
		{"shrinks by more than half", csvOf(many("b", 3)...), StatusFallback, "shrank by 70%"},
		{"shrinks a little", csvOf(many("b", 8)...), StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ls.set("/b.csv", tt.body)
			run := h.collect(t, ls, srcs)
			got := status(run, "b")
			if got.Status != tt.want || !strings.Contains(got.Error, tt.errHas) {
				t.Fatalf("b = %+v", got)
			}
			if status(run, "a").Status == StatusFallback {
				t.Error("a good source was affected")
			}
			if tt.want == StatusFallback {
				// The last good copy stands in: nothing retracted because of a bad fetch.
				if run.Report.Merged != 20 || got.Copy == "" {
					t.Errorf("merged %d, copy %q", run.Report.Merged, got.Copy)
				}
			}
		})
	}
	// Unchanged list: 304, the archived copy is used.
	run = h.collect(t, ls, srcs)
	if s := status(run, "a"); s.Status != StatusNotModified || s.Copy == "" || s.Used != 10 {
		t.Errorf("a = %+v", s)
	}
	// A new source that fails has no copy: left out, the run goes on.
	run = h.collect(t, ls, append(srcs, Source{Name: "c", URL: ls.srv.URL + "/c.csv"}))
	if s := status(run, "c"); s.Status != StatusLeftOut || run.Report.Merged != 18 {
		t.Errorf("c = %+v, merged %d", s, run.Report.Merged)
	}
}

func TestAllowlistSourceAndSubdomains(t *testing.T) {
	h := newSim(t, mastosim.Options{})
	ls := newListServer(t)
	ls.set("/block.csv", csvOf("home.example", "sub.home.example", "bad.example"))
	ls.set("/allow.csv", "domain\nhome.example\n")
	run := h.collect(t, ls, []Source{{Name: "block", URL: ls.srv.URL + "/block.csv"}, {Name: "allow", URL: ls.srv.URL + "/allow.csv", Allowlist: true}})
	if run.Report.Merged != 1 || !run.Desired.Allowed("x.home.example") || run.Desired.Allowed("bad.example") {
		t.Errorf("report = %+v", run.Report)
	}
}

func TestRapidBlockSignature(t *testing.T) {
	h := newSim(t, mastosim.Options{})
	ls := newListServer(t)
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	body := `{"@spec":"https://rapidblock.org/spec/v1/","publishedAt":"2026-11-01T00:00:00Z","blocks":{"bad.example":{"isBlocked":true,"reason":"spam"}}}`
	sum := sha256.Sum256([]byte(body))
	ls.set("/blocklist.json", body)
	ls.set("/blocklist.json.sig", base64.StdEncoding.EncodeToString(ed25519.Sign(priv, sum[:])))
	src := Source{Name: "rapidblock", URL: ls.srv.URL + "/blocklist.json", Format: lists.Format("rapidblock.json"), PublicKey: base64.StdEncoding.EncodeToString(pub)}
	run := h.collect(t, ls, []Source{src})
	if s := status(run, "rapidblock"); s.Status != StatusOK || run.Report.Merged != 1 {
		t.Fatalf("signed list: %+v", s)
	}
	// Tampered list: refused, the last good copy is used.
	ls.set("/blocklist.json", strings.Replace(body, "bad.example", "good.example", 1))
	run = h.collect(t, ls, []Source{src})
	if s := status(run, "rapidblock"); s.Status != StatusFallback || !strings.Contains(s.Error, "signature does not match") {
		t.Fatalf("tampered list: %+v", s)
	}
	if run.Desired.Blocks[0].Domain != "bad.example" {
		t.Errorf("tampered content used: %+v", run.Desired.Blocks)
	}
}

func TestInstanceSources(t *testing.T) {
	h := newSim(t, mastosim.Options{})
	h.sim.AddDomainBlock(mastosim.DomainBlock{Domain: "public.example", Severity: "suspend", PublicComment: "spam"})
	h.sim.AddDomainBlock(mastosim.DomainBlock{Domain: "hidden.example", Severity: "suspend", Obfuscate: true})
	h.sim.AddDomainBlock(mastosim.DomainBlock{Domain: "quiet.example", Severity: "noop", RejectMedia: true})
	env := &setup.Env{Clock: h.clock, HTTPClient: &http.Client{}, Log: logging.Discard()}
	r := reader{fetcher: fetch.New(time.Second, 1<<20), env: env}
	run, err := Collect(context.Background(), h.deps(), r, []Source{
		{Name: "public", URL: h.srv.URL, Format: "mastodon_api_public", Instance: &InstanceSource{}},
		{Name: "admin", URL: h.srv.URL, Format: "json", Instance: &InstanceSource{Admin: true, Token: simToken},
			Options: lists.Options{ImportFields: []string{"reject_media"}}},
	}, CollectOptions{}, NewSnapshot(h.store, h.clock.Now(), "inst"))
	if err != nil {
		t.Fatal(err)
	}
	pub, adm := status(run, "public"), status(run, "admin")
	// The public list shows silence and suspend only, with obfuscated names resolved by the
	// admin list's real names.
	if pub.Status != StatusOK || pub.Rows != 2 || adm.Status != StatusOK || adm.Rows != 3 {
		t.Fatalf("public %+v admin %+v", pub, adm)
	}
	if run.Report.Merged != 3 || len(run.Result.Resolved) != 1 {
		t.Errorf("merged %d, resolved %+v", run.Report.Merged, run.Result.Resolved)
	}
}

package blocklist

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fediops/fediops/functions/blocklist/lists"
	"github.com/fediops/fediops/functions/blocklist/merge"
	"github.com/fediops/fediops/functions/blocklist/plan"
	"github.com/fediops/fediops/shared/archive"
	"github.com/fediops/fediops/shared/clock"
	"github.com/fediops/fediops/shared/logging"
	"github.com/fediops/fediops/shared/mastodon"
	"github.com/fediops/fediops/shared/testsupport/mastosim"
)

const simToken = "blocklist-sim-token-8c1f"

var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

// testdataDir is the repository's blocklist test data (real published blocklists,
// testdata/blocklists at the root; see its README for provenance and licences).
func testdataDir(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs("../../testdata/blocklists")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "README.md")); err != nil {
		t.Fatalf("blocklist test data missing: %v", err)
	}
	return dir
}

var importFields = []string{"public_comment", "reject_media", "reject_reports", "obfuscate"}

// mergeFiles parses and merges blocklist files (FBH defaults: mergeplan max).
func mergeFiles(t testing.TB, files ...string) Desired {
	t.Helper()
	var ls []*lists.List
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		l, err := lists.Parse(filepath.Base(f), b, lists.Detect(b, f), lists.Options{ImportFields: importFields})
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
	}
	res, err := merge.Merge(ls, nil, merge.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	return Desired{Blocks: DesiredFrom(res), Allowed: Allowlist(nil, true)}
}

// desiredOf builds a merged list by hand: "domain:severity".
func desiredOf(entries ...string) Desired {
	var out []plan.Desired
	for _, e := range entries {
		d, s, _ := strings.Cut(e, ":")
		sev, err := lists.ParseSeverity(s)
		if err != nil {
			panic(err)
		}
		out = append(out, plan.Desired{Block: lists.Block{Domain: d, Severity: sev}, Sources: []string{"test-list"}})
	}
	return Desired{Blocks: out, Allowed: func(string) bool { return false }}
}

type simHarness struct {
	sim   *mastosim.Server
	srv   *httptest.Server
	clock *clock.Fake
	store *archive.Local
	logs  *bytes.Buffer
	run   int
}

func newSim(t testing.TB, opts mastosim.Options) *simHarness {
	t.Helper()
	fc := clock.NewFake(t0)
	opts.Clock = fc
	sim := mastosim.New(opts)
	sim.AddToken(simToken, "admin:read admin:write:domain_blocks")
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	store, err := archive.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &simHarness{sim: sim, srv: srv, clock: fc, store: store, logs: &bytes.Buffer{}}
}

func (h *simHarness) client(t testing.TB) *mastodon.Client {
	t.Helper()
	c, err := mastodon.New(h.srv.URL, simToken, mastodon.WithClock(h.clock), mastodon.WithTimeout(500*time.Millisecond),
		mastodon.WithBackoff(time.Second, 4*time.Second),
		mastodon.WithHTTPClient(&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (h *simHarness) deps() Deps {
	red := logging.NewRedactor()
	red.Add(simToken)
	return Deps{Store: h.store, Clock: h.clock, Log: logging.New(h.logs, slog.LevelDebug, red)}
}

func dest(name string, c Blocks) Destination {
	return Destination{
		Name: name, Client: c,
		Plan:        plan.Options{Managed: importFields, RemoveRetracted: true, MaxFollowedSeverity: lists.Silence},
		MaxRemovals: 100000, MaxChangePct: 1e9, InitialImport: true, LeaseTTL: 10 * time.Minute,
	}
}

// sync runs one sync with a fresh client and returns the outcome.
func (h *simHarness) sync(t testing.TB, ctx context.Context, d Destination, want Desired) *Outcome {
	t.Helper()
	h.run++
	if d.Client == nil {
		d.Client = h.client(t)
	}
	out, err := Sync(ctx, h.deps(), d, want, NewSnapshot(h.store, h.clock.Now(), fmt.Sprintf("r%03d", h.run)), fmt.Sprintf("run-%d", h.run))
	if err != nil {
		t.Fatalf("sync %d: %v\nlogs:\n%s", h.run, err, tail(h.logs.String(), 30))
	}
	return out
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// blocks renders the simulator's blocks: domain → "severity media reports obfuscate comment".
func (h *simHarness) blocks() map[string]string {
	out := map[string]string{}
	for _, b := range h.sim.DomainBlocks() {
		out[b.Domain] = fmt.Sprintf("%s media=%v reports=%v obf=%v %q", b.Severity, b.RejectMedia, b.RejectReports, b.Obfuscate, b.PublicComment)
	}
	return out
}

func render(d Desired) map[string]string {
	out := map[string]string{}
	for _, b := range d.Blocks {
		out[b.Domain] = fmt.Sprintf("%s media=%v reports=%v obf=%v %q", b.Severity, b.RejectMedia, b.RejectReports, b.Obfuscate, b.PublicComment)
	}
	return out
}

// writes counts the write requests (POST/PUT/PATCH/DELETE on domain blocks).
func writes(reqs []mastosim.Request) int {
	n := 0
	for _, r := range reqs {
		if strings.HasPrefix(r.Path, "/api/v1/admin/domain_blocks") && r.Method != http.MethodGet {
			n++
		}
	}
	return n
}

// diffMaps describes how got differs from want.
func diffMaps(got, want map[string]string) string {
	var out []string
	for k, v := range want {
		if g, ok := got[k]; !ok {
			out = append(out, "missing "+k+" "+v)
		} else if g != v {
			out = append(out, "differs "+k+": "+g+" want "+v)
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			out = append(out, "extra "+k+" "+v)
		}
	}
	sort.Strings(out)
	if len(out) > 10 {
		out = append(out[:10], fmt.Sprintf("… %d more", len(out)-10))
	}
	return strings.Join(out, "\n")
}

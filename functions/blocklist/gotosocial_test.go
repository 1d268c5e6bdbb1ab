package blocklist

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fediops/fediops/functions/blocklist/lists"
	"github.com/fediops/fediops/functions/blocklist/plan"
	"github.com/fediops/fediops/shared/archive"
	"github.com/fediops/fediops/shared/clock"
	"github.com/fediops/fediops/shared/domain"
	"github.com/fediops/fediops/shared/logging"
	"github.com/fediops/fediops/shared/mastodon"
	"github.com/fediops/fediops/shared/testsupport/gotosocial"
)

// countingTransport counts the write requests a client sends.
type countingTransport struct {
	writes atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodGet && strings.HasPrefix(r.URL.Path, "/api/v1/admin/domain_blocks") {
		c.writes.Add(1)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// TestHistoryReplayGoToSocial syncs the 38 monthly versions into a real GoToSocial server,
// which has no severities: after every step it holds exactly that version's suspensions plus
// the untouched manual blocks, and re-syncing the same version writes nothing.
func TestHistoryReplayGoToSocial(t *testing.T) {
	gts := gotosocial.Start(t, gotosocial.Options{})
	ctx := context.Background()
	ct := &countingTransport{}
	client, err := mastodon.New(gts.URL, gts.AdminToken, mastodon.WithHTTPClient(&http.Client{Transport: ct}))
	if err != nil {
		t.Fatal(err)
	}
	manualComment := "blocked by hand"
	manual := []string{"manual-one.example", "manual-two.example"}
	for _, d := range manual {
		if _, err := client.CreateDomainBlock(ctx, mastodon.DomainBlockParams{Domain: d, PrivateComment: &manualComment}); err != nil {
			t.Fatal(err)
		}
	}
	store, err := archive.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	deps := Deps{Store: store, Clock: clock.Real{}, Log: logging.Discard()}
	state := func() []string {
		t.Helper()
		bs, _, err := client.DomainBlocks(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, b := range bs {
			d, err := domain.Normalize(b.Domain)
			if err != nil {
				t.Fatalf("server returned %q: %v", b.Domain, err)
			}
			out = append(out, d)
		}
		sort.Strings(out)
		return out
	}
	for i, f := range historyFiles(t) {
		want := mergeFiles(t, f)
		expected := append([]string(nil), manual...)
		for _, b := range want.Blocks {
			if b.Severity == lists.Suspend {
				expected = append(expected, b.Domain)
			}
		}
		sort.Strings(expected)
		d := dest("gts", client)
		out, err := Sync(ctx, deps, d, want, NewSnapshot(store, time.Now(), fmt.Sprint(i)), fmt.Sprintf("run-%d", i))
		if err != nil || out.Failed != 0 {
			t.Fatalf("%s: %+v, %v", filepath.Base(f), out, err)
		}
		if got := state(); strings.Join(got, ",") != strings.Join(expected, ",") {
			t.Fatalf("%s: instance differs from the list's suspensions:\n%s", filepath.Base(f), diffLists(got, expected))
		}
		before := ct.writes.Load()
		again, err := Sync(ctx, deps, d, want, NewSnapshot(store, time.Now(), fmt.Sprint(i)+"b"), fmt.Sprintf("run-%db", i))
		if err != nil {
			t.Fatal(err)
		}
		if n := ct.writes.Load() - before; n != 0 {
			t.Fatalf("%s: re-sync made %d write requests: %+v", filepath.Base(f), n, again)
		}
		if i == 0 && again.Skipped[plan.SkipUnsupportedSev] == 0 && hasNonSuspend(want) {
			t.Errorf("silence entries not reported as unsupported: %+v", again.Skipped)
		}
	}
}

func hasNonSuspend(d Desired) bool {
	for _, b := range d.Blocks {
		if b.Severity != lists.Suspend {
			return true
		}
	}
	return false
}

func diffLists(got, want []string) string {
	g, w := map[string]bool{}, map[string]bool{}
	for _, x := range got {
		g[x] = true
	}
	for _, x := range want {
		w[x] = true
	}
	var out []string
	for x := range w {
		if !g[x] {
			out = append(out, "missing "+x)
		}
	}
	for x := range g {
		if !w[x] {
			out = append(out, "extra "+x)
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

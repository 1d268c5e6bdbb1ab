package blocklist

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/fediops/fediops/shared/testsupport/mastosim"
)

var manualBlocks = []mastosim.DomainBlock{
	{Domain: "manual-suspend.example", Severity: "suspend", PrivateComment: "our own decision", PublicComment: "harassment"},
	{Domain: "manual-silence.example", Severity: "silence", RejectMedia: true},
	{Domain: "manual-noop.example", Severity: "noop", RejectReports: true},
}

func historyFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(testdataDir(t), "history", "oliphant-tier0", "*.csv"))
	if err != nil || len(files) != 38 {
		t.Fatalf("history files: %d, %v", len(files), err)
	}
	sort.Strings(files)
	return files
}

// TestHistoryReplayMastodon syncs 38 monthly versions of a real list, in order, into the
// simulator (real 300/5 min rate limit, fake clock). After every step the instance holds
// exactly that version's entries plus the untouched manual blocks, and re-syncing the same
// version makes no write request.
func TestHistoryReplayMastodon(t *testing.T) {
	h := newSim(t, mastosim.Options{})
	manual := map[string]string{}
	for _, b := range manualBlocks {
		h.sim.AddDomainBlock(b)
	}
	for k, v := range h.blocks() {
		manual[k] = v
	}
	ctx := context.Background()
	for _, f := range historyFiles(t) {
		want := mergeFiles(t, f)
		out := h.sync(t, ctx, dest("main", nil), want)
		if out.Failed != 0 || out.Deferred != 0 || out.Held != "" {
			t.Fatalf("%s: %+v", filepath.Base(f), out)
		}
		expected := render(want)
		maps.Copy(expected, manual)
		if d := diffMaps(h.blocks(), expected); d != "" {
			t.Fatalf("%s: instance differs from the list:\n%s", filepath.Base(f), d)
		}
		h.sim.ResetRequests()
		again := h.sync(t, ctx, dest("main", nil), want)
		if n := writes(h.sim.Requests()); n != 0 || again.Created+again.Updated+again.Removed != 0 {
			t.Fatalf("%s: re-sync made %d write requests: %+v", filepath.Base(f), n, again)
		}
		h.clock.Advance(24 * 3600 * 1e9) // a day between versions
	}
	for _, b := range manualBlocks {
		got := h.blocks()[b.Domain]
		if got != manual[b.Domain] {
			t.Errorf("manual block %s changed: %s", b.Domain, got)
		}
	}
	if _, err := os.Stat(h.store.Location("blocklist/state/main.json")); err != nil {
		t.Error("no state archived")
	}
}

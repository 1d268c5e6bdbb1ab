package blocklist

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fediops/fediops/functions/blocklist/lists"
	"github.com/fediops/fediops/shared/archive"
	"github.com/fediops/fediops/shared/fetch"
	"github.com/fediops/fediops/shared/listsource"
	"github.com/fediops/fediops/shared/testsupport/mastosim"
)

func (h *simHarness) objects(t *testing.T) []string {
	t.Helper()
	keys, err := h.store.List(context.Background(), "blocklist/objects/")
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func manifestOf(t *testing.T, store archive.Store, snapshot string) map[string]SourceRef {
	t.Helper()
	b, err := store.Read(context.Background(), snapshotsPrefix+snapshot+"/sources.json")
	if err != nil {
		t.Fatal(err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	out := map[string]SourceRef{}
	for _, r := range m.Sources {
		out[r.Name] = r
	}
	return out
}

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// TestCollectArchivesSourcesMergedAndReport: a snapshot holds the report and the manifest
// naming the content-addressed copy of each source and of the merged list.
func TestCollectArchivesSourcesMergedAndReport(t *testing.T) {
	h := newSim(t, mastosim.Options{})
	ls := newListServer(t)
	body := csvOf("a.example")
	ls.set("/a.csv", body)
	run := h.collect(t, ls, []Source{{Name: "team/a list", URL: ls.srv.URL + "/a.csv"}})
	keys, _ := h.store.List(context.Background(), "blocklist/snapshots/"+run.Report.Snapshot+"/")
	want := []string{"report.json", "sources.json"}
	if len(keys) != len(want) {
		t.Fatalf("archived %v", keys)
	}
	for i, k := range keys {
		if !strings.HasSuffix(k, want[i]) {
			t.Errorf("key %s, want suffix %s", k, want[i])
		}
	}
	m := manifestOf(t, h.store, run.Report.Snapshot)
	ref := m["team/a list"]
	if ref.Key != "blocklist/objects/"+sha(body) || ref.SHA256 != sha(body) || ref.Bytes != len(body) || !ref.Stored || ref.Status != StatusOK || ref.Format != "csv" {
		t.Fatalf("manifest entry = %+v", ref)
	}
	if b, err := h.store.Read(context.Background(), ref.Key); err != nil || string(b) != body {
		t.Errorf("object = %q, %v", b, err)
	}
	merged := mergedOf(t, h.store, run.Report.Snapshot)
	b, err := h.store.Read(context.Background(), merged.Key)
	if err != nil || string(b) != lists.MastodonCSVHeader+"\na.example,suspend,false,false,,false\n" || merged.SHA256 != sha(string(b)) || !merged.Stored {
		t.Errorf("merged list %+v = %q, %v", merged, b, err)
	}
	if run.Report.StoredBytes != len(body)+len(b) {
		t.Errorf("stored bytes = %d", run.Report.StoredBytes)
	}
}

func mergedOf(t *testing.T, store archive.Store, snapshot string) *listsource.Object {
	t.Helper()
	b, err := store.Read(context.Background(), snapshotsPrefix+snapshot+"/sources.json")
	if err != nil {
		t.Fatal(err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil || m.Merged == nil {
		t.Fatalf("manifest %s: %v", b, err)
	}
	return m.Merged
}

// TestUnchangedSourcesCostNoBytes: runs over unchanged sources (HTTP 304, or the same bytes
// from a file) add no object: neither a source nor the merged list; a changed source adds
// its new copy and the new merged list; a source returning to earlier content adds none.
func TestUnchangedSourcesCostNoBytes(t *testing.T) {
	h := newSim(t, mastosim.Options{})
	ls := newListServer(t)
	a1, a2 := csvOf(many("a", 10)...), csvOf(many("a", 12)...)
	ls.set("/a.csv", a1)
	file := filepath.Join(t.TempDir(), "b.csv")
	b := csvOf(many("b", 10)...)
	if err := os.WriteFile(file, []byte(b), 0o600); err != nil {
		t.Fatal(err)
	}
	srcs := []Source{{Name: "a", URL: ls.srv.URL + "/a.csv"}, {Name: "b", URL: "file://" + file}}

	first := h.collect(t, ls, srcs)
	merged1 := mergedOf(t, h.store, first.Report.Snapshot)
	if n := len(h.objects(t)); n != 3 || first.Report.StoredBytes != len(a1)+len(b)+merged1.Bytes {
		t.Fatalf("first run: %d objects, %d bytes stored", n, first.Report.StoredBytes)
	}
	second := h.collect(t, ls, srcs)
	if n := len(h.objects(t)); n != 3 || second.Report.StoredBytes != 0 || mergedOf(t, h.store, second.Report.Snapshot).Key != merged1.Key {
		t.Fatalf("unchanged run: %d objects, %d bytes stored", n, second.Report.StoredBytes)
	}
	if s := status(second, "a"); s.Status != StatusNotModified || s.Used != 10 {
		t.Errorf("a (304) = %+v", s)
	}
	if s := status(second, "b"); s.Status != StatusNotModified || s.Used != 10 {
		t.Errorf("b (same bytes) = %+v", s)
	}
	m1, m2 := manifestOf(t, h.store, first.Report.Snapshot), manifestOf(t, h.store, second.Report.Snapshot)
	for _, name := range []string{"a", "b"} {
		if m1[name].Key == "" || m1[name].Key != m2[name].Key || m2[name].Stored {
			t.Errorf("%s: first %+v, second %+v", name, m1[name], m2[name])
		}
	}
	if second.Report.Merged != 20 {
		t.Errorf("merged %d", second.Report.Merged)
	}

	ls.set("/a.csv", a2)
	third := h.collect(t, ls, srcs)
	merged3 := mergedOf(t, h.store, third.Report.Snapshot)
	if n := len(h.objects(t)); n != 5 || third.Report.StoredBytes != len(a2)+merged3.Bytes {
		t.Fatalf("changed run: %d objects, %d bytes stored", n, third.Report.StoredBytes)
	}
	if m := manifestOf(t, h.store, third.Report.Snapshot); m["a"].SHA256 != sha(a2) || m["b"].Key != m1["b"].Key {
		t.Errorf("manifest after a change = %+v", m)
	}
	ls.set("/a.csv", a1)
	fourth := h.collect(t, ls, srcs)
	if n := len(h.objects(t)); n != 5 || fourth.Report.StoredBytes != 0 || status(fourth, "a").Status != StatusOK {
		t.Fatalf("back to the first content: %d objects, %d bytes stored, %+v", len(h.objects(t)), fourth.Report.StoredBytes, status(fourth, "a"))
	}
	// Every snapshot's manifest names objects that exist.
	snaps, _ := ListSnapshots(context.Background(), h.store, "")
	for _, s := range snaps {
		for name, ref := range manifestOf(t, h.store, s.ID) {
			if _, err := h.store.Read(context.Background(), ref.Key); err != nil {
				t.Errorf("snapshot %s, source %s: %v", s.ID, name, err)
			}
		}
		if _, err := h.store.Read(context.Background(), mergedOf(t, h.store, s.ID).Key); err != nil {
			t.Errorf("snapshot %s, merged list: %v", s.ID, err)
		}
	}
}

// copyTree copies the old-layout archive fixture into a fresh directory.
func copyTree(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o750)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestArchiveBeforeContentAddressing works on an archive written by fediops before raw
// sources were content-addressed (testdata/archive-before-13: raw copies under each
// snapshot's sources/, last good copies pointing there): snapshots are listed, a failing
// source falls back to its old copy, the shrink guard compares with it, rollback works, and
// the next good read moves the source to the new layout without touching the old copies.
func TestArchiveBeforeContentAddressing(t *testing.T) {
	ctx := context.Background()
	h := newSim(t, mastosim.Options{})
	store, err := archive.NewLocal(copyTree(t, "testdata/archive-before-13"))
	if err != nil {
		t.Fatal(err)
	}
	h.store = store
	h.clock.Set(t0.Add(24 * time.Hour))

	snaps, err := ListSnapshots(ctx, store, "main")
	if err != nil || len(snaps) != 2 || snaps[0].ID != "20261125T100000.000000Z-olda" {
		t.Fatalf("snapshots = %+v, %v", snaps, err)
	}

	ls := newListServer(t)
	ls.set("/team.csv", csvOf("bad.example"))                                                                            // 2 usable rows before: a 50% shrink
	srcs := []Source{{Name: "team", URL: ls.srv.URL + "/team.csv"}, {Name: "partner", URL: ls.srv.URL + "/partner.csv"}} // partner: HTTP 500
	r := reader{fetcher: fetch.New(time.Second, 1<<20)}
	run, err := Collect(ctx, h.deps(), r, srcs, CollectOptions{MaxShrinkPct: 25, AllowSubdomains: true}, NewSnapshot(store, h.clock.Now(), "new1"))
	if err != nil {
		t.Fatal(err)
	}
	team, partner := status(run, "team"), status(run, "partner")
	if team.Status != StatusFallback || !strings.Contains(team.Error, "shrank by 50%") || !strings.HasSuffix(team.Copy, "20261125T110000.000000Z-oldb/sources/team") {
		t.Errorf("team = %+v", team)
	}
	if partner.Status != StatusFallback || !strings.HasSuffix(partner.Copy, "20261125T100000.000000Z-olda/sources/partner") {
		t.Errorf("partner = %+v", partner)
	}
	if got := strings.Join(domainsOf(run.Desired), ","); got != "bad.example,meh.example,worse.example" {
		t.Errorf("merged from the old copies: %s", got)
	}
	if m := manifestOf(t, store, run.Report.Snapshot); m["team"].Key != "blocklist/snapshots/20261125T110000.000000Z-oldb/sources/team" || m["team"].SHA256 != "" {
		t.Errorf("manifest refers to the old copy: %+v", m["team"])
	}

	// Rollback to the first old snapshot on an empty instance recreates its owned blocks.
	out, err := Rollback(ctx, h.deps(), dest("main", h.client(t)), "20261125T100000.000000Z-olda", NewSnapshot(store, h.clock.Now(), "rb"), "rb")
	if err != nil || out.Created != 4 {
		t.Fatalf("rollback = %+v, %v", out, err)
	}
	if got := h.blocks(); len(got) != 4 || got["spam.example"] == "" || !strings.HasPrefix(got["meh.example"], "silence") {
		t.Errorf("after rollback: %v", got)
	}

	// Good reads: a changed source gets an object and a pointer in the new layout; the old
	// copies stay.
	ls.set("/team.csv", csvOf("bad.example", "worse.example", "new.example"))
	ls.set("/partner.csv", "#domain,#severity\nbad.example,suspend\nmeh.example,silence\n")
	run, err = Collect(ctx, h.deps(), r, srcs, CollectOptions{MaxShrinkPct: 25, AllowSubdomains: true}, NewSnapshot(store, h.clock.Now(), "new2"))
	if err != nil {
		t.Fatal(err)
	}
	if s := status(run, "team"); s.Status != StatusOK {
		t.Errorf("team = %+v", s)
	}
	// Objects: the merged lists of both runs, and team's new copy.
	if n := len(h.objects(t)); n != 3 {
		t.Errorf("objects = %v", h.objects(t))
	}
	last, _, err := sourceCache(h.deps()).Last(ctx, "team")
	if err != nil || last.Key != "blocklist/objects/"+sha(csvOf("bad.example", "worse.example", "new.example")) {
		t.Errorf("team: last good copy = %+v, %v", last, err)
	}
	// partner answers 304 to the old copy's ETag: it keeps using the old copy, for free.
	if s := status(run, "partner"); s.Status != StatusNotModified || !strings.HasSuffix(s.Copy, "olda/sources/partner") {
		t.Errorf("partner = %+v", s)
	}
	if _, err := store.Read(ctx, "blocklist/snapshots/20261125T100000.000000Z-olda/sources/team"); err != nil {
		t.Errorf("old copy: %v", err)
	}
}

func domainsOf(d Desired) []string {
	var out []string
	for _, b := range d.Blocks {
		out = append(out, b.Domain)
	}
	return out
}

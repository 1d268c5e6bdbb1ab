package blocklist

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fediops/fediops/functions/blocklist/fires"
	"github.com/fediops/fediops/functions/blocklist/lists"
	"github.com/fediops/fediops/functions/blocklist/plan"
	"github.com/fediops/fediops/shared/archive"
	"github.com/fediops/fediops/shared/clock"
	"github.com/fediops/fediops/shared/fetch"
	"github.com/fediops/fediops/shared/logging"
	"github.com/fediops/fediops/shared/mastodon"
	firesim "github.com/fediops/fediops/shared/testsupport/fires"
	"github.com/fediops/fediops/shared/testsupport/gotosocial"
	"github.com/fediops/fediops/shared/testsupport/mastosim"
)

// startFIRES starts a FIRES server with one dataset (two changes per page, so that a few
// changes take several pages).
func startFIRES(t *testing.T) (*firesim.Server, *firesim.Dataset) {
	t.Helper()
	s := firesim.New(firesim.Options{PageSize: 2})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	s.Base = srv.URL
	return s, s.AddDataset("Community blocklist")
}

func firesSource(ds *firesim.Dataset, m fires.Mapping) Source {
	return Source{Name: "community", URL: ds.URL(), Format: fires.Format, FIRES: &m, Options: lists.Options{ImportFields: importFields}}
}

// marked renders the simulator's blocks with their ownership marker: domain → "severity media
// reports comment | private comment".
func (h *simHarness) marked() map[string]string {
	out := map[string]string{}
	for _, b := range h.sim.DomainBlocks() {
		out[b.Domain] = fmt.Sprintf("%s media=%v reports=%v %q | %s", b.Severity, b.RejectMedia, b.RejectReports, b.PublicComment, b.PrivateComment)
	}
	return out
}

// TestFIRESSyncMastodon follows a dataset through additions, a policy change and a
// retraction into the simulator, alongside a CSV source: the FIRES source is merged,
// planned and marked like any other, an unchanged feed costs one request and no bytes, a
// broken feed falls back to the last good state, and accept recommendations allow domains
// that other lists block.
func TestFIRESSyncMastodon(t *testing.T) {
	h := newSim(t, mastosim.Options{})
	ctx := context.Background()
	fs, ds := startFIRES(t)
	ls := newListServer(t)
	ls.set("/team.csv", csvOf("team.example", "friend.example"))
	spam := fs.AddLabel("Spam")
	harass := fs.AddLabel("Harassment")
	srcs := []Source{firesSource(ds, fires.Mapping{}), {Name: "team", URL: ls.srv.URL + "/team.csv"}}
	sync := func() (*MergeRun, *Outcome) {
		t.Helper()
		run := h.collect(t, ls, srcs)
		return run, h.sync(t, ctx, dest("main", nil), run.Desired)
	}

	// Additions (an advisory and an actor recommendation are not entries).
	ds.Recommend("spam.example", "drop", spam)
	ds.Recommend("rude.example", "reject", harass, spam)
	ds.Add(firesim.Change{Type: firesim.Recommendation, Kind: "domain", Key: "meh.example", Policy: "filter", Filters: []string{"reject-media"}})
	ds.Add(firesim.Change{Type: firesim.Advisory, Kind: "domain", Key: "watch.example", Labels: []string{spam}})
	ds.Add(firesim.Change{Type: firesim.Recommendation, Kind: "actor", Key: "https://x.example/users/troll", Policy: "drop"})
	run, out := sync()
	want := map[string]string{
		"spam.example":   `suspend media=false reports=false "Spam" | fediops: community`,
		"rude.example":   `suspend media=false reports=false "Harassment, Spam" | fediops: community`,
		"meh.example":    `silence media=true reports=false "" | fediops: community`,
		"team.example":   `suspend media=false reports=false "" | fediops: team`,
		"friend.example": `suspend media=false reports=false "" | fediops: team`,
	}
	if d := diffMaps(h.marked(), want); d != "" || out.Created != 5 {
		t.Fatalf("additions: %+v\n%s", out, d)
	}
	rep := status(run, "community")
	if rep.Status != StatusOK || rep.Rows != 5 || rep.Used != 3 || rep.Skipped[fires.ReasonAdvisory] != 1 || rep.Skipped[fires.ReasonActor] != 1 || rep.Format != fires.Format {
		t.Errorf("report = %+v", rep)
	}

	// Nothing new: one request (304), no new object, no writes.
	objects := len(h.objects(t))
	before := len(fs.Requests())
	h.sim.ResetRequests()
	run, out = sync()
	if n := len(fs.Requests()) - before; n != 1 || status(run, "community").Status != StatusNotModified || len(h.objects(t)) != objects || writes(h.sim.Requests()) != 0 {
		t.Fatalf("unchanged: %d requests, %+v, %d objects", n, status(run, "community"), len(h.objects(t)))
	}

	// A policy change, an addition with an accept for a domain the team list blocks, and a
	// retraction: over several pages of changes.
	ds.Recommend("meh.example", "drop")
	ds.Recommend("new.example", "reject")
	ds.Recommend("friend.example", "accept")
	ds.Retract("spam.example")
	run, out = sync()
	want["meh.example"] = `suspend media=false reports=false "" | fediops: community`
	want["new.example"] = `suspend media=false reports=false "" | fediops: community`
	delete(want, "spam.example")
	delete(want, "friend.example")
	if d := diffMaps(h.marked(), want); d != "" || out.Created != 1 || out.Updated != 1 || out.Removed != 2 {
		t.Fatalf("changes: %+v\n%s", out, d)
	}
	for _, r := range fs.Requests()[before:] {
		if strings.Contains(r, "/snapshot") {
			t.Errorf("an incremental run read the snapshot: %s", r)
		}
	}

	// The feed breaks: the last good state stands in, nothing is removed.
	fs.Fail("/datasets/", http.StatusBadGateway, 1)
	run, out = sync()
	if s := status(run, "community"); s.Status != StatusFallback || !strings.Contains(s.Error, "HTTP 502") || out.Removed != 0 {
		t.Fatalf("broken feed: %+v, %+v", s, out)
	}
	if d := diffMaps(h.marked(), want); d != "" {
		t.Fatalf("after a broken feed:\n%s", d)
	}

	// The history is compacted: the next run reads the snapshot afresh and says why.
	ds.Recommend("late.example", "drop")
	ds.Compact()
	run, _ = sync()
	if s := status(run, "community"); s.Status != StatusOK || !strings.Contains(s.Note, "snapshot afresh") {
		t.Fatalf("compacted: %+v", s)
	}
	if _, ok := h.marked()["late.example"]; !ok {
		t.Error("late.example not applied after the fresh read")
	}
}

// A FIRES source with a label filter and its own policy mapping.
func TestFIRESLabelsAndPolicies(t *testing.T) {
	h := newSim(t, mastosim.Options{})
	fs, ds := startFIRES(t)
	spam := fs.AddLabel("Spam")
	ds.Recommend("spam.example", "filter", spam)
	ds.Recommend("other.example", "drop")
	src := firesSource(ds, fires.Mapping{Labels: []string{"spam"}, Policies: map[string]string{"filter": "noop"}})
	run := h.collect(t, newListServer(t), []Source{src})
	if len(run.Desired.Blocks) != 1 || run.Desired.Blocks[0].Domain != "spam.example" || run.Desired.Blocks[0].Severity != lists.Noop {
		t.Fatalf("desired = %+v", run.Desired.Blocks)
	}
	if s := status(run, "community"); s.Skipped[fires.ReasonLabelFiltered] != 1 {
		t.Errorf("report = %+v", s)
	}
}

// TestFIRESSyncGoToSocial follows a dataset into a real GoToSocial server, which has no
// severities: suspensions are created, a filter recommendation is reported as unsupported
// until its policy changes to drop, and a retraction removes the block.
func TestFIRESSyncGoToSocial(t *testing.T) {
	gts := gotosocial.Start(t, gotosocial.Options{})
	ctx := context.Background()
	client, err := mastodon.New(gts.URL, gts.AdminToken)
	if err != nil {
		t.Fatal(err)
	}
	store, err := archive.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	deps := Deps{Store: store, Clock: clock.Real{}, Log: logging.Discard()}
	fs, ds := startFIRES(t)
	spam := fs.AddLabel("Spam")
	src := firesSource(ds, fires.Mapping{})
	n := 0
	step := func() *Outcome {
		t.Helper()
		n++
		snap := NewSnapshot(store, time.Now(), fmt.Sprint("g", n))
		run, err := Collect(ctx, deps, reader{fetcher: fetch.New(5*time.Second, 1<<20)}, []Source{src}, CollectOptions{MaxShrinkPct: 100, AllowSubdomains: true}, snap)
		if err != nil {
			t.Fatal(err)
		}
		out, err := Sync(ctx, deps, dest("gts", client), run.Desired, snap, fmt.Sprint("run-g", n))
		if err != nil || out.Failed != 0 {
			t.Fatalf("step %d: %+v, %v", n, out, err)
		}
		return out
	}
	blocked := func() string {
		t.Helper()
		bs, _, err := client.DomainBlocks(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, b := range bs {
			out = append(out, b.Domain)
			if !strings.HasPrefix(b.PrivateComment, "fediops: community") {
				t.Errorf("%s: private comment %v", b.Domain, b.PrivateComment)
			}
		}
		sort.Strings(out)
		return strings.Join(out, ",")
	}

	ds.Recommend("spam.example", "drop", spam)
	ds.Recommend("rude.example", "reject")
	ds.Recommend("meh.example", "filter")
	out := step()
	if got := blocked(); got != "rude.example,spam.example" || out.Skipped[plan.SkipUnsupportedSev] != 1 {
		t.Fatalf("additions: %s, %+v", got, out)
	}
	ds.Recommend("meh.example", "drop") // policy change
	step()
	if got := blocked(); got != "meh.example,rude.example,spam.example" {
		t.Fatalf("policy change: %s", got)
	}
	ds.Retract("spam.example")
	out = step()
	if got := blocked(); got != "meh.example,rude.example" || out.Removed != 1 {
		t.Fatalf("retraction: %s, %+v", got, out)
	}
}

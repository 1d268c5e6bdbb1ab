package blocklist

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fediops/fediops/shared/archive"
	"github.com/fediops/fediops/shared/clock"
	"github.com/fediops/fediops/shared/mastodon"
	"github.com/fediops/fediops/shared/run"
	"github.com/fediops/fediops/shared/testsupport/mastosim"
)

// hookProgress runs a function after every applied action.
type hookProgress struct{ after func(done int) }

func (p hookProgress) Applied(_ string, done, _ int) { p.after(done) }
func (hookProgress) Waiting(string, time.Time)       {}

// creates counts the successful creates per domain (the body names it).
func creates(reqs []mastosim.Request) map[string]int {
	n := map[string]int{}
	for _, r := range reqs {
		if r.Method == http.MethodPost && r.Path == "/api/v1/admin/domain_blocks" && r.Status == http.StatusOK {
			n[domainOf(r.Body)]++
		}
	}
	return n
}

// TestLeaseLostStopsALongRun: a long CLI import is paused (a laptop lid closed) past its
// lease's TTL; meanwhile a scheduled run takes the expired lease and does the work. The CLI
// run stops before its next request, says so, writes no state, and no block is created twice.
func TestLeaseLostStopsALongRun(t *testing.T) {
	h := newSim(t, mastosim.Options{})
	ctx := context.Background()
	want := desiredOf(func() []string {
		var e []string
		for _, d := range many("x", 20) {
			e = append(e, d+":silence")
		}
		return e
	}()...)
	d := dest("main", nil)
	d.LeaseTTL = 15 * time.Minute
	var scheduled *Outcome
	cli := h.deps()
	cli.Progress = hookProgress{after: func(done int) {
		if done != 5 || scheduled != nil {
			return
		}
		h.clock.Advance(20 * time.Minute) // paused past the TTL
		scheduled = h.sync(t, ctx, dest("main", nil), want)
	}}
	d.Client = h.client(t)
	out, err := Sync(ctx, cli, d, want, NewSnapshot(h.store, h.clock.Now(), "cli"), "cli-run")
	if err != nil {
		t.Fatal(err)
	}
	if scheduled == nil || scheduled.Created != 15 || scheduled.Stopped != "" {
		t.Fatalf("scheduled run = %+v", scheduled)
	}
	if out.Stopped != run.LeaseLost || out.Created != 5 {
		t.Errorf("CLI run = %+v; want 5 created and stopped: lease lost", out)
	}
	if !strings.Contains(h.logs.String(), "lost the lease") || !strings.Contains(h.logs.String(), `"severity":"ERROR"`) {
		t.Errorf("the loser did not say so at ERROR:\n%s", tail(h.logs.String(), 10))
	}
	for dom, n := range creates(h.sim.Requests()) {
		if n != 1 {
			t.Errorf("%s created %d times", dom, n)
		}
	}
	if d := diffMaps(h.blocks(), render(want)); d != "" {
		t.Errorf("instance differs from the list:\n%s", d)
	}
	// The state is the scheduled run's: the CLI run wrote nothing after losing the lease.
	st, err := (&stateStore{store: h.store, instance: "main"}).loadState(ctx)
	if err != nil || len(st.Owned) != 15 {
		t.Errorf("state owns %d blocks (%v), want the scheduled run's 15", len(st.Owned), err)
	}
}

// TestResumedWorkIsPlannedAgain: work cut short by the rate-limit budget is kept as intent.
// Between two invocations an admin changes an owned block by hand and a domain leaves the
// lists; the resumed run keeps the admin's version and does not create the dropped domain.
func TestResumedWorkIsPlannedAgain(t *testing.T) {
	h := newSim(t, mastosim.Options{RateLimit: 12})
	ctx := context.Background()
	var entries []string
	for _, dom := range many("y", 10) {
		entries = append(entries, dom+":silence")
	}
	// Run 0: import the ten as silences, over as many windows as it takes.
	for i := 0; i < 5; i++ {
		out := h.sync(t, clock.WithDeadline(ctx, h.clock.Now().Add(time.Minute)), dest("main", nil), desiredOf(entries...))
		h.clock.Advance(5 * time.Minute)
		if out.Stopped == "" {
			break
		}
	}
	if n := len(h.sim.DomainBlocks()); n != 10 {
		t.Fatalf("setup: %d blocks", n)
	}
	// The lists now say suspend for all, and add two domains: run 1 is cut short.
	var raised []string
	for _, dom := range many("y", 10) {
		raised = append(raised, dom+":suspend")
	}
	raised = append(raised, "new1.example:suspend", "new2.example:suspend")
	out := h.sync(t, clock.WithDeadline(ctx, h.clock.Now().Add(time.Minute)), dest("main", nil), desiredOf(raised...))
	if out.Stopped != run.BudgetSpent || out.Deferred == 0 {
		t.Fatalf("run 1 was not cut short: %+v", out)
	}
	ckpt, err := (&stateStore{store: h.store, instance: "main"}).loadCheckpoint(ctx)
	if err != nil || ckpt == nil || len(ckpt.Intent.Want) == 0 {
		t.Fatalf("no intent kept: %+v %v", ckpt, err)
	}
	var pending []string
	for _, w := range ckpt.Intent.Want {
		pending = append(pending, w.Domain)
	}
	// An admin edits an owned block that is still to be raised, by hand.
	var edited string
	for _, dom := range pending {
		if strings.HasPrefix(dom, "y") {
			edited = dom
			break
		}
	}
	if edited == "" || !slices.Contains(pending, "new2.example") {
		t.Fatalf("pending = %v", pending)
	}
	admin := h.client(t)
	h.clock.Advance(5 * time.Minute)
	var id string
	for _, b := range h.sim.DomainBlocks() {
		if b.Domain == edited {
			id = b.ID
		}
	}
	noop := "noop"
	if _, err := admin.UpdateDomainBlock(ctx, id, mastodon.DomainBlockParams{Severity: &noop}); err != nil {
		t.Fatal(err)
	}
	// new2.example leaves the lists before the work resumes.
	var now []string
	for _, e := range raised {
		if !strings.HasPrefix(e, "new2.") {
			now = append(now, e)
		}
	}
	adminKept := 0
	for i := 0; i < 5; i++ {
		out = h.sync(t, clock.WithDeadline(ctx, h.clock.Now().Add(time.Minute)), dest("main", nil), desiredOf(now...))
		adminKept += out.Skipped["changed_by_admin"]
		h.clock.Advance(5 * time.Minute)
		if out.Stopped == "" {
			break
		}
	}
	if adminKept == 0 {
		t.Error("the admin's edit was not reported (changed_by_admin)")
	}
	got := h.blocks()
	if !strings.HasPrefix(got[edited], "noop") {
		t.Errorf("the admin's edit of %s was overwritten: %s", edited, got[edited])
	}
	if _, ok := got["new2.example"]; ok {
		t.Error("a domain that left the lists was created from the kept work")
	}
	if !strings.HasPrefix(got["new1.example"], "suspend") {
		t.Errorf("new1.example = %q", got["new1.example"])
	}
	for _, dom := range many("y", 10) {
		if dom != edited && !strings.HasPrefix(got[dom], "suspend") {
			t.Errorf("%s = %q", dom, got[dom])
		}
	}
}

// TestHeldPlanAppliedOnceAfterATransientFailure: applying a held plan fails half way (the
// server keeps answering 503); the plan is not marked applied and the error asks for a
// redelivery, which carries on where the first attempt stopped. Every removal happens once.
func TestHeldPlanAppliedOnceAfterATransientFailure(t *testing.T) {
	h := newSim(t, mastosim.Options{})
	ctx := context.Background()
	var all []string
	for _, dom := range many("z", 30) {
		all = append(all, dom+":suspend")
	}
	d := dest("main", nil)
	h.sync(t, ctx, d, desiredOf(all...))
	d.MaxRemovals = 2
	fresh := desiredOf(all[6:]...)
	out := h.sync(t, ctx, d, fresh)
	if out.Held == "" || out.Removed != 0 {
		t.Fatalf("not held: %+v", out)
	}
	// The third removal fails on every retry the client makes.
	third := ""
	for _, b := range h.sim.DomainBlocks() {
		if b.Domain == "z02.example" {
			third = b.ID
		}
	}
	h.sim.InjectFault(mastosim.Fault{Kind: mastosim.FaultServerError, Status: 503, Times: 4,
		Match: mastosim.MatchPath(http.MethodDelete, "/api/v1/admin/domain_blocks/"+third)})
	d.Client = h.client(t)
	first, err := ApplyHeld(ctx, h.deps(), d, out.Held, &fresh, NewSnapshot(h.store, h.clock.Now(), "apply1"), "apply1")
	if err == nil || run.IsPermanent(err) {
		t.Fatalf("a transient failure must ask for a redelivery: %v", err)
	}
	if first.Removed != 2 {
		t.Errorf("first attempt removed %d, want 2", first.Removed)
	}
	if _, rerr := h.store.Read(ctx, appliedKey("main", out.Held)); rerr == nil {
		t.Fatal("the plan was marked applied although its work is not done")
	}
	// The redelivered message carries on.
	d.Client = h.client(t)
	second, err := ApplyHeld(ctx, h.deps(), d, out.Held, &fresh, NewSnapshot(h.store, h.clock.Now(), "apply2"), "apply2")
	if err != nil || second.Removed != 4 {
		t.Fatalf("redelivery: %+v, %v", second, err)
	}
	if n := len(h.sim.DomainBlocks()); n != 24 {
		t.Errorf("%d blocks left, want 24", n)
	}
	deletes := map[string]int{}
	for _, r := range h.sim.Requests() {
		if r.Method == http.MethodDelete && r.Status == http.StatusOK {
			deletes[r.Path]++
		}
	}
	for p, n := range deletes {
		if n != 1 {
			t.Errorf("%s removed %d times", p, n)
		}
	}
	if len(deletes) != 6 {
		t.Errorf("%d removals, want 6", len(deletes))
	}
	_, err = ApplyHeld(ctx, h.deps(), d, out.Held, &fresh, NewSnapshot(h.store, h.clock.Now(), "apply3"), "apply3")
	if !errors.Is(err, ErrAlreadyApplied) || !run.IsPermanent(err) {
		t.Errorf("a third delivery: %v, want already applied (acknowledged)", err)
	}
}

// TestFailedSourcesNeverRetract: after a good run, every source fails and no last good copy
// can be read. The merged list is empty, but nothing fediops owns is removed: a block is
// retracted only when every source that listed it was read.
func TestFailedSourcesNeverRetract(t *testing.T) {
	h := newSim(t, mastosim.Options{})
	ctx := context.Background()
	ls := newListServer(t)
	ls.set("/a.csv", csvOf(many("a", 5)...))
	ls.set("/b.csv", csvOf(many("b", 5)...))
	srcs := []Source{{Name: "a", URL: ls.srv.URL + "/a.csv"}, {Name: "b", URL: ls.srv.URL + "/b.csv"}}
	good := h.collect(t, ls, srcs)
	if out := h.sync(t, ctx, dest("main", nil), good.Desired); out.Created != 10 {
		t.Fatalf("good run: %+v", out)
	}
	// Both sources fail, and their archived copies are gone.
	ls.set("/a.csv", "")
	ls.set("/b.csv", "")
	keys, err := h.store.List(ctx, "blocklist/objects/")
	if err != nil || len(keys) == 0 {
		t.Fatalf("no archived copies: %v %v", keys, err)
	}
	for _, k := range keys {
		if err := os.Remove(filepath.Join(h.store.Dir(), filepath.FromSlash(k))); err != nil {
			t.Fatal(err)
		}
	}
	bad := h.collect(t, ls, srcs)
	if bad.Report.Failed != 2 || bad.Report.Merged != 0 || len(bad.Desired.Unread) != 2 {
		t.Fatalf("bad run: %+v", bad.Report)
	}
	out := h.sync(t, ctx, dest("main", nil), bad.Desired)
	if out.Removed != 0 || len(h.sim.DomainBlocks()) != 10 {
		t.Errorf("removed %d of the owned blocks after every source failed: %+v", out.Removed, out)
	}
	if out.Skipped["source_unavailable"] != 10 {
		t.Errorf("skips = %v", out.Skipped)
	}
	// One source recovers: only what it listed, and no longer lists, can go.
	ls.set("/a.csv", csvOf(many("a", 4)...))
	partial := h.collect(t, ls, srcs)
	out = h.sync(t, ctx, dest("main", nil), partial.Desired)
	if out.Removed != 1 || len(h.sim.DomainBlocks()) != 9 {
		t.Errorf("with a read again: removed %d, %d left: %+v", out.Removed, len(h.sim.DomainBlocks()), out)
	}
}

// TestSecretInSourceURLIsNeverShown: a source URL that carries a token and fails shows the
// token in no log line and no archived object.
func TestSecretInSourceURLIsNeverShown(t *testing.T) {
	h := newSim(t, mastosim.Options{})
	ls := newListServer(t)
	ls.set("/good.csv", csvOf(many("g", 3)...))
	srcs := []Source{
		{Name: "good", URL: ls.srv.URL + "/good.csv?access_token=SECRET-TOKEN-1"},
		{Name: "bad", URL: ls.srv.URL + "/bad.csv?token=SECRET-TOKEN-2"},
	}
	run := h.collect(t, ls, srcs)
	h.sync(t, context.Background(), dest("main", nil), run.Desired)
	if strings.Contains(h.logs.String(), "SECRET-TOKEN") {
		t.Errorf("a token in a source URL was logged:\n%s", h.logs.String())
	}
	keys, err := h.store.List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		b, err := h.store.Read(context.Background(), k)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "SECRET-TOKEN") {
			t.Errorf("%s holds a token from a source URL", k)
		}
	}
	if got := status(run, "bad"); got.Status != StatusLeftOut || !strings.Contains(got.Location, "token=REDACTED") {
		t.Errorf("bad source = %+v", got)
	}
}

// failingStore fails the Create of objects whose key ends with a suffix, and every WriteIf on
// the leases after the first (so that releasing the lease fails).
type failingStore struct {
	archive.Store
	suffix     string
	leaseFails bool
	leases     int
}

func (f *failingStore) Create(ctx context.Context, key string, data []byte) error {
	if strings.HasSuffix(key, f.suffix) {
		return errors.New("disk full")
	}
	return f.Store.Create(ctx, key, data)
}

func (f *failingStore) WriteIf(ctx context.Context, key string, data []byte, gen int64) (int64, error) {
	if strings.HasPrefix(key, "leases/") && f.leaseFails {
		if f.leases++; f.leases > 2 {
			return 0, errors.New("storage unavailable")
		}
	}
	return f.Store.WriteIf(ctx, key, data, gen)
}

// TestArchiveFailuresAreLogged: a snapshot object or a lease release that cannot be written
// is logged at WARNING, never silently dropped; the sync itself goes on.
func TestArchiveFailuresAreLogged(t *testing.T) {
	h := newSim(t, mastosim.Options{})
	deps := h.deps()
	deps.Store = &failingStore{Store: h.store, suffix: "/before.json", leaseFails: true}
	d := dest("main", h.client(t))
	out, err := Sync(context.Background(), deps, d, desiredOf("a.example:suspend"), NewSnapshot(deps.Store, h.clock.Now(), "s"), "s")
	if err != nil || out.Created != 1 {
		t.Fatalf("sync: %+v %v", out, err)
	}
	logs := h.logs.String()
	for _, want := range []string{"could not archive main/before.json: disk full", "could not release the lease"} {
		if !strings.Contains(logs, want) {
			t.Errorf("not logged: %q\n%s", want, tail(logs, 10))
		}
	}
}

package blocklist

import (
	"context"
	"errors"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/fediops/fediops/functions/blocklist/lists"
	"github.com/fediops/fediops/functions/blocklist/plan"
	"github.com/fediops/fediops/shared/mastodon"
	"github.com/fediops/fediops/shared/run"
	"github.com/fediops/fediops/shared/testsupport/mastosim"
)

func TestGuardsHoldPlansUntilApplied(t *testing.T) {
	h := newSim(t, mastosim.Options{})
	ctx := context.Background()
	d := dest("main", nil)
	d.MaxRemovals, d.MaxChangePct, d.InitialImport = 2, 10, false

	// First import into an instance with no owned blocks: held by the percentage guard...
	var seed []string
	for i := range 30 {
		seed = append(seed, "host"+string(rune('a'+i%26))+strings.Repeat("x", i/26)+".example:suspend")
	}
	out := h.sync(t, ctx, d, desiredOf(seed...))
	if out.Held == "" || out.Created != 0 || len(h.sim.DomainBlocks()) != 0 {
		t.Fatalf("first import not held: %+v", out)
	}
	if !strings.Contains(h.logs.String(), `"severity":"ERROR"`) || !strings.Contains(h.logs.String(), out.Held) {
		t.Errorf("held plan not logged at ERROR with its id:\n%s", tail(h.logs.String(), 5))
	}
	// ...the same plan next hour is not archived twice...
	again := h.sync(t, ctx, d, desiredOf(seed...))
	if again.Held != out.Held {
		t.Errorf("plan id changed: %s vs %s", again.Held, out.Held)
	}
	pending, _ := h.store.List(ctx, "blocklist/pending/main/")
	if len(pending) != 1 {
		t.Errorf("pending plans = %v", pending)
	}
	// ...and initial_import = true lets the first import through.
	d.InitialImport = true
	out = h.sync(t, ctx, d, desiredOf(seed...))
	if out.Held != "" || out.Created != 30 {
		t.Fatalf("initial import: %+v", out)
	}

	// Removing 5 > max_removals = 2: held, nothing removed.
	out = h.sync(t, ctx, d, desiredOf(seed[5:]...))
	if out.Held == "" || out.Removed != 0 || len(h.sim.DomainBlocks()) != 30 || !strings.Contains(out.HeldReason, "remove 5") {
		t.Fatalf("mass removal not held: %+v", out)
	}
	// Applied by plan id: exactly that plan, once.
	fresh := desiredOf(seed[5:]...)
	applied, err := ApplyHeld(ctx, h.deps(), dest("main", h.client(t)), out.Held, &fresh, NewSnapshot(h.store, h.clock.Now(), "apply"), "apply")
	if err != nil || applied.Removed != 5 || len(h.sim.DomainBlocks()) != 25 {
		t.Fatalf("apply held plan: %+v, %v", applied, err)
	}
	if _, err := ApplyHeld(ctx, h.deps(), dest("main", h.client(t)), out.Held, &fresh, NewSnapshot(h.store, h.clock.Now(), "apply2"), "apply2"); !errors.Is(err, ErrAlreadyApplied) || !run.IsPermanent(err) {
		t.Errorf("second apply: %v", err)
	}
	if _, err := ApplyHeld(ctx, h.deps(), dest("main", h.client(t)), "nosuchplan", nil, NewSnapshot(h.store, h.clock.Now(), "apply3"), "apply3"); err == nil || !run.IsPermanent(err) {
		t.Error("unknown plan applied")
	}
	// A small change (1 of 25 = 4%) goes through unattended.
	out = h.sync(t, ctx, d, desiredOf(seed[6:]...))
	if out.Held != "" || out.Removed != 1 {
		t.Errorf("small change: %+v", out)
	}
}

func TestAllowlistWins(t *testing.T) {
	h := newSim(t, mastosim.Options{})
	ctx := context.Background()
	h.sync(t, ctx, dest("main", nil), desiredOf("home.example:suspend", "bad.example:suspend"))
	want := desiredOf("home.example:suspend", "bad.example:suspend", "sub.home.example:suspend")
	want.Allowed = func(d string) bool { return d == "home.example" || strings.HasSuffix(d, ".home.example") }
	out := h.sync(t, ctx, dest("main", nil), want)
	got := h.blocks()
	if _, ok := got["home.example"]; ok {
		t.Error("allowlisted home.example still blocked")
	}
	if _, ok := got["sub.home.example"]; ok {
		t.Error("allowlisted subdomain blocked")
	}
	if _, ok := got["bad.example"]; !ok {
		t.Error("bad.example not blocked")
	}
	if out.Removed != 1 || out.Skipped[plan.SkipAllowlisted] != 2 {
		t.Errorf("outcome = %+v", out)
	}
}

func TestAdoptOrphans(t *testing.T) {
	for _, adopt := range []bool{false, true} {
		h := newSim(t, mastosim.Options{})
		h.sim.AddDomainBlock(mastosim.DomainBlock{Domain: "orphan.example", Severity: "silence", PrivateComment: "from an old import"})
		h.sim.AddDomainBlock(mastosim.DomainBlock{Domain: "unlisted.example", Severity: "silence"})
		d := dest("main", nil)
		d.Plan.AdoptOrphans = adopt
		out := h.sync(t, context.Background(), d, desiredOf("orphan.example:suspend"))
		var orphan mastosim.DomainBlock
		for _, b := range h.sim.DomainBlocks() {
			if b.Domain == "orphan.example" {
				orphan = b
			}
		}
		if !adopt {
			if orphan.Severity != "silence" || out.Skipped[plan.SkipManual] != 1 || out.Updated != 0 {
				t.Errorf("without adopt_orphans: %+v, %+v", orphan, out)
			}
			continue
		}
		if orphan.Severity != "suspend" || orphan.PrivateComment != "fediops: test-list | from an old import" {
			t.Errorf("adopted block = %+v", orphan)
		}
		// Now owned: a retraction removes it; the unlisted manual block stays.
		h.sync(t, context.Background(), d, desiredOf())
		if _, ok := h.blocks()["orphan.example"]; ok {
			t.Error("adopted block not removed when retracted")
		}
		if _, ok := h.blocks()["unlisted.example"]; !ok {
			t.Error("manual block removed")
		}
	}
}

func TestFollowProtection(t *testing.T) {
	h := newSim(t, mastosim.Options{})
	h.sim.SetFollows("friends.example", 3, 0)
	h.sim.SetFollows("fans.example", 0, 2)
	h.sync(t, context.Background(), dest("main", nil), desiredOf("raise.example:silence"))
	h.sim.SetFollows("raise.example", 1, 1)
	h.sim.ResetRequests()
	out := h.sync(t, context.Background(), dest("main", nil),
		desiredOf("friends.example:suspend", "fans.example:suspend", "nobody.example:suspend", "raise.example:suspend"))
	got := h.blocks()
	for d, sev := range map[string]string{"friends.example": "silence", "fans.example": "silence", "nobody.example": "suspend", "raise.example": "silence"} {
		if !strings.HasPrefix(got[d], sev+" ") {
			t.Errorf("%s = %s, want %s", d, got[d], sev)
		}
	}
	sort.Strings(out.FollowProtected)
	if strings.Join(out.FollowProtected, ",") != "fans.example,friends.example,raise.example" {
		t.Errorf("reported = %v", out.FollowProtected)
	}
	measures := 0
	for _, r := range h.sim.Requests() {
		if r.Path == "/api/v1/admin/measures" {
			measures++
			if !strings.Contains(r.Body, "instance_followers") || !strings.Contains(r.Body, "start_at") || !strings.Contains(r.Body, "end_at") {
				t.Errorf("measures request lacks a key: %s", r.Body)
			}
		}
	}
	if measures != 4 {
		t.Errorf("measures calls = %d, want 4", measures)
	}
	// raise.example stayed silence: no update was sent for it.
	for _, r := range h.sim.Requests() {
		if r.Method == http.MethodPut {
			t.Errorf("unexpected update %s %s", r.Path, r.Body)
		}
	}

	// Without measures (like GoToSocial), the check is skipped with a warning.
	h2 := newSim(t, mastosim.Options{DisableMeasures: true})
	out = h2.sync(t, context.Background(), dest("main", nil), desiredOf("x.example:suspend"))
	if out.Created != 1 || len(out.Warnings) == 0 || !strings.Contains(out.Warnings[0], "measures") {
		t.Errorf("without measures: %+v", out)
	}
}

func TestCommentsAndUnmanagedFieldsPreserved(t *testing.T) {
	h := newSim(t, mastosim.Options{})
	h.sync(t, context.Background(), dest("main", nil), desiredOf("a.example:silence"))
	// An admin writes a public comment on our block and sets reject_reports, which this
	// destination does not manage.
	c := h.client(t)
	var id string
	for _, b := range h.sim.DomainBlocks() {
		id = b.ID
	}
	note, yes := "see our policy page", true
	if _, err := c.UpdateDomainBlock(context.Background(), id, mastodon.DomainBlockParams{PublicComment: &note, RejectReports: &yes}); err != nil {
		t.Fatal(err)
	}
	d := dest("main", nil)
	d.Plan.Managed = []string{"reject_media"}
	h.sim.ResetRequests()
	// The admin changed our block: it is theirs now, and stays as they left it.
	out := h.sync(t, context.Background(), d, desiredOf("a.example:suspend"))
	if out.Skipped[plan.SkipAdminModified] != 0 {
		// reject_reports and public_comment are not managed: not an admin override of ours
		t.Logf("outcome %+v", out)
	}
	var b mastosim.DomainBlock
	for _, x := range h.sim.DomainBlocks() {
		b = x
	}
	if b.Severity != "suspend" || b.PublicComment != note || !b.RejectReports {
		t.Errorf("block = %+v", b)
	}
	for _, r := range h.sim.Requests() {
		if r.Method == http.MethodPut && (strings.Contains(r.Body, "public_comment") || strings.Contains(r.Body, "reject_reports") || strings.Contains(r.Body, "private_comment")) {
			t.Errorf("update sent unmanaged fields: %s", r.Body)
		}
	}
}

func TestAdminOverrideOfOwnedBlockIsKept(t *testing.T) {
	h := newSim(t, mastosim.Options{})
	h.sync(t, context.Background(), dest("main", nil), desiredOf("a.example:silence"))
	var id string
	for _, b := range h.sim.DomainBlocks() {
		id = b.ID
	}
	sev := "suspend"
	if _, err := h.client(t).UpdateDomainBlock(context.Background(), id, mastodon.DomainBlockParams{Severity: &sev}); err != nil {
		t.Fatal(err)
	}
	out := h.sync(t, context.Background(), dest("main", nil), desiredOf("a.example:silence"))
	if out.Skipped[plan.SkipAdminModified] != 1 || out.Updated != 0 || !strings.HasPrefix(h.blocks()["a.example"], "suspend") {
		t.Errorf("admin's severity overwritten: %+v %v", out, h.blocks())
	}
}

// conflictFirst creates the block behind the job's back right before its create request.
type conflictFirst struct {
	*mastodon.Client
	other  *mastodon.Client
	target string
	done   bool
	sev    string
}

func (c *conflictFirst) CreateDomainBlock(ctx context.Context, p mastodon.DomainBlockParams) (mastodon.DomainBlock, error) {
	if !c.done && p.Domain == c.target {
		c.done = true
		s := c.sev
		if _, err := c.other.CreateDomainBlock(ctx, mastodon.DomainBlockParams{Domain: p.Domain, Severity: &s}); err != nil {
			return mastodon.DomainBlock{}, err
		}
	}
	return c.Client.CreateDomainBlock(ctx, p)
}

func TestConflict422ReplansTheDomain(t *testing.T) {
	h := newSim(t, mastosim.Options{})
	c := &conflictFirst{Client: h.client(t), other: h.client(t), target: "race.example", sev: "silence"}
	d := dest("main", c)
	out := h.sync(t, context.Background(), d, desiredOf("race.example:suspend", "calm.example:suspend"))
	if out.Failed != 0 {
		t.Fatalf("a 422 failed the run: %+v", out)
	}
	got := h.blocks()
	if !strings.HasPrefix(got["race.example"], "silence") {
		t.Errorf("someone else's block was changed: %s", got["race.example"])
	}
	if !strings.HasPrefix(got["calm.example"], "suspend") {
		t.Errorf("the run did not go on: %v", got)
	}
	if out.Skipped[plan.SkipManual] != 1 {
		t.Errorf("skips = %v, want the raced domain reported as a manual block", out.Skipped)
	}
	if out.Created != 1 {
		t.Errorf("outcome = %+v", out)
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	h := newSim(t, mastosim.Options{})
	d := dest("main", nil)
	d.DryRun = true
	out := h.sync(t, context.Background(), d, desiredOf("a.example:suspend", "b.example:silence"))
	if writes(h.sim.Requests()) != 0 || len(h.sim.DomainBlocks()) != 0 {
		t.Errorf("dry run wrote")
	}
	if out.Created != 2 || len(out.Results) != 2 || out.Results[0].Result != ResultWould {
		t.Errorf("outcome = %+v", out)
	}
}

func TestGoToSocialLikeDuplicateCreate(t *testing.T) {
	// Severity parsing of what servers answer: GoToSocial sends no severity (a suspension).
	e := toExisting(mastodon.DomainBlock{ID: "01H", Domain: "Bücher.example", PrivateComment: "x"}, mastodon.Server{Software: mastodon.GoToSocial})
	if e.Domain != "xn--bcher-kva.example" || e.Severity != lists.Suspend {
		t.Errorf("toExisting = %+v", e)
	}
}

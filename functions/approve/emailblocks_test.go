package approve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fediops/fediops/shared/clock"
	"github.com/fediops/fediops/shared/mastodon"
	"github.com/fediops/fediops/shared/run"
	"github.com/fediops/fediops/shared/testsupport/mastosim"
)

const emailScopes = "admin:read:accounts admin:write:accounts admin:read:email_domain_blocks admin:write:email_domain_blocks"

func newEmailHarness(t *testing.T, opts mastosim.Options) *harness {
	t.Helper()
	h := newHarness(t, opts)
	h.sim.AddToken(simToken, emailScopes)
	return h
}

func (h *harness) emailDeps(blocks EmailDomainBlocks) Deps {
	d := h.deps(h.client)
	d.EmailBlocks = blocks
	return d
}

func emailRules(t *testing.T, approve, reject []string) *Rules {
	t.Helper()
	r, err := BuildRules([]RuleSet{{Approve, "approve_domains", approve}, {Reject, "reject_domains", reject}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func syncOptions(rules *Rules, runID string) EmailBlocksOptions {
	return EmailBlocksOptions{Instance: "main", Rules: rules, LeaseTTL: 10 * time.Minute, RunID: runID,
		Blocks: EmailBlockOptions{Read: true, Sync: true, MaxAdditions: -1, MaxRemovals: -1}}
}

// blocks returns the simulator's blocks as domain → "block" | "approval".
func (h *harness) blocks() map[string]string {
	out := map[string]string{}
	for _, b := range h.sim.EmailDomainBlocks() {
		out[b.Domain] = "block"
		if b.AllowWithApproval {
			out[b.Domain] = "approval"
		}
	}
	return out
}

// emailWrites counts POST and DELETE requests to the email-domain blocks.
func (h *harness) emailWrites() int {
	n := 0
	for _, r := range h.sim.Requests() {
		if strings.HasPrefix(r.Path, "/api/v1/admin/email_domain_blocks") && r.Method != http.MethodGet {
			n++
		}
	}
	return n
}

func skipReasons(p *EmailBlocksPlan) map[string]string {
	out := map[string]string{}
	for _, s := range p.Skipped {
		out[s.Domain] = s.Reason
	}
	return out
}

func TestEmailBlocksSyncCreatesRemovesAndLeavesManualAlone(t *testing.T) {
	ctx := context.Background()
	h := newEmailHarness(t, mastosim.Options{})
	h.sim.AddEmailDomainBlock(mastosim.EmailDomainBlock{Domain: "manual.example"})
	h.sim.AddEmailDomainBlock(mastosim.EmailDomainBlock{Domain: "gmail.com", OtherDomains: []string{"gmail-smtp-in.l.google.com"}})
	reject := []string{"gmail.com", "spam.example", "junk.example", "outlook.com", "agency.example"}
	approve := []string{"gov", "dept.agency.example"}

	out, err := SyncEmailBlocks(ctx, h.emailDeps(h.client), syncOptions(emailRules(t, approve, reject), "s1"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"manual.example": "block", "gmail.com": "block", "gmail-smtp-in.l.google.com": "block", "spam.example": "block", "junk.example": "block"}
	if got := h.blocks(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("blocks = %v\nwant     %v", got, want)
	}
	if out.Created != 2 || out.Removed != 0 || out.Failed != 0 || out.Plan.Blocks != 3 {
		t.Errorf("outcome %+v", out)
	}
	if got := skipReasons(out.Plan); got["gmail.com"] != SkipManualBlock || got["outlook.com"] != SkipMailHost || got["agency.example"] != SkipApproveBeneath {
		t.Errorf("skipped %v", got)
	}
	if !strings.HasSuffix(out.Record, "-s1.json") {
		t.Errorf("record %q", out.Record)
	}
	st, _, err := loadEmailBlockState(ctx, h.store, "main")
	if err != nil || len(st.Owned) != 2 || st.Owned["spam.example"].ID == "" || !slices.Equal(st.Owned["spam.example"].Lists, []string{"reject_domains"}) {
		t.Fatalf("state %+v, %v", st, err)
	}

	// junk.example leaves the list: only fediops' own block goes; manual.example, which no
	// list names, stays.
	h.sim.ResetRequests()
	out, err = SyncEmailBlocks(ctx, h.emailDeps(h.client), syncOptions(emailRules(t, approve, slices.DeleteFunc(slices.Clone(reject), func(d string) bool { return d == "junk.example" })), "s2"))
	if err != nil {
		t.Fatal(err)
	}
	delete(want, "junk.example")
	if got := h.blocks(); fmt.Sprint(got) != fmt.Sprint(want) || out.Removed != 1 || out.Created != 0 || h.emailWrites() != 1 {
		t.Errorf("after retraction: blocks %v, outcome %+v, %d writes", got, out, h.emailWrites())
	}

	// Nothing changed: no write at all.
	h.sim.ResetRequests()
	out, err = SyncEmailBlocks(ctx, h.emailDeps(h.client), syncOptions(emailRules(t, approve, []string{"spam.example"}), "s3"))
	if err != nil || len(out.Plan.Actions) != 0 || h.emailWrites() != 0 {
		t.Errorf("steady state: %+v, %v, %d writes", out, err, h.emailWrites())
	}
}

func TestEmailBlocksDryRun(t *testing.T) {
	h := newEmailHarness(t, mastosim.Options{})
	o := syncOptions(emailRules(t, nil, []string{"spam.example", "junk.example"}), "dry")
	o.DryRun = true
	out, err := SyncEmailBlocks(context.Background(), h.emailDeps(h.client), o)
	if err != nil {
		t.Fatal(err)
	}
	if h.emailWrites() != 0 || len(h.blocks()) != 0 || out.Plan.Count(ActionCreate) != 2 || len(out.Results) != 2 || out.Results[0].Outcome != OutcomeWouldCreate {
		t.Errorf("dry run: %d writes, outcome %+v", h.emailWrites(), out)
	}
	if st, gen, _ := loadEmailBlockState(context.Background(), h.store, "main"); gen != 0 || len(st.Owned) != 0 {
		t.Errorf("a dry run saved state %+v", st)
	}
	if !strings.Contains(h.logs.String(), "dry run (nothing changed)") {
		t.Errorf("log:\n%s", h.logs)
	}
}

func TestEmailBlocksGuardHoldsUntilApproved(t *testing.T) {
	ctx := context.Background()
	h := newEmailHarness(t, mastosim.Options{})
	var reject []string
	for i := range 6 {
		reject = append(reject, fmt.Sprintf("d%d.example", i))
	}
	o := syncOptions(emailRules(t, nil, reject), "g1")
	o.Blocks.MaxAdditions = 3
	out, err := SyncEmailBlocks(ctx, h.emailDeps(h.client), o)
	if err != nil {
		t.Fatal(err)
	}
	if out.Held == "" || !strings.Contains(out.HeldReason, "add 6") || h.emailWrites() != 0 {
		t.Fatalf("not held: %+v, %d writes", out, h.emailWrites())
	}
	if !strings.Contains(h.logs.String(), "--apply-plan "+out.Held) || !strings.Contains(h.logs.String(), `"severity":"ERROR"`) {
		t.Errorf("the held plan is not an ERROR naming the command:\n%s", h.logs)
	}
	id := out.Held

	// Approved: the first run is cut short by the rate limit after two blocks; the next run,
	// without the command, finishes the approved plan although it is over the bound.
	h.sim.InjectFault(mastosim.Fault{Kind: mastosim.FaultTooManyRequests, Skip: 2,
		Match: mastosim.MatchExactPath(http.MethodPost, "/api/v1/admin/email_domain_blocks")})
	o.Blocks.ApplyPlan, o.RunID = id, "g2"
	ctx20 := clock.WithDeadline(ctx, h.clock.Now().Add(20*time.Second))
	out, err = SyncEmailBlocks(ctx20, h.emailDeps(h.client), o)
	if err != nil {
		t.Fatal(err)
	}
	if out.Created != 2 || out.Stopped != run.BudgetSpent || out.Deferred != 4 {
		t.Fatalf("approved run: %+v", out)
	}
	h.clock.Advance(5 * time.Minute)
	o.Blocks.ApplyPlan, o.RunID = "", "g3"
	out, err = SyncEmailBlocks(ctx, h.emailDeps(h.newClient(t)), o)
	if err != nil || out.Held != "" || out.Created != 4 || len(h.blocks()) != 6 {
		t.Fatalf("next run: %+v, %v, blocks %v", out, err, h.blocks())
	}
	if st, _, _ := loadEmailBlockState(ctx, h.store, "main"); st.Approved != nil {
		t.Errorf("approved intent left after it was done: %+v", st.Approved)
	}

	// Applying the same plan again is refused, and a plan that is not held does not exist.
	o.Blocks.ApplyPlan = id
	if _, err := SyncEmailBlocks(ctx, h.emailDeps(h.client), o); !errors.Is(err, ErrPlanApplied) || !run.IsPermanent(err) {
		t.Errorf("second apply: %v", err)
	}
	o.Blocks.ApplyPlan = "000000000000"
	if _, err := SyncEmailBlocks(ctx, h.emailDeps(h.client), o); err == nil || !strings.Contains(err.Error(), "no held") {
		t.Errorf("unknown plan: %v", err)
	}

	// Removals have their own bound.
	o.Blocks.ApplyPlan, o.Blocks.MaxRemovals, o.Rules, o.RunID = "", 2, emailRules(t, nil, reject[:1]), "g4"
	out, err = SyncEmailBlocks(ctx, h.emailDeps(h.client), o)
	if err != nil || out.Held == "" || !strings.Contains(out.HeldReason, "remove 5") || len(h.blocks()) != 6 {
		t.Errorf("removals: %+v, %v", out, err)
	}
}

// adminFirst blocks a domain through the simulator, as an admin would, right before the
// job's own create reaches the server.
type adminFirst struct {
	*mastodon.Client
	h      *harness
	domain string
}

func (a adminFirst) CreateEmailDomainBlock(ctx context.Context, d string, approval bool) (mastodon.EmailDomainBlock, error) {
	if d == a.domain {
		a.h.sim.AddEmailDomainBlock(mastosim.EmailDomainBlock{Domain: d})
	}
	return a.Client.CreateEmailDomainBlock(ctx, d, approval)
}

// Mastodon answers 422 to a duplicate: the block an admin made meanwhile is read back, left
// alone and not taken as fediops'.
func TestEmailBlocksDuplicate422(t *testing.T) {
	ctx := context.Background()
	h := newEmailHarness(t, mastosim.Options{})
	out, err := SyncEmailBlocks(ctx, h.emailDeps(adminFirst{h.client, h, "taken.example"}), syncOptions(emailRules(t, nil, []string{"taken.example", "free.example"}), "dup"))
	if err != nil {
		t.Fatal(err)
	}
	var outcomes []string
	for _, r := range out.Results {
		outcomes = append(outcomes, r.Domain+": "+r.Outcome)
	}
	if !slices.Equal(outcomes, []string{"free.example: created", "taken.example: " + OutcomeTaken}) || out.Failed != 0 {
		t.Errorf("outcomes %v (%+v)", outcomes, out)
	}
	var got422 bool
	for _, r := range h.sim.Requests() {
		got422 = got422 || (r.Method == http.MethodPost && r.Status == http.StatusUnprocessableEntity)
	}
	if !got422 {
		t.Error("the simulator did not answer 422")
	}
	st, _, _ := loadEmailBlockState(ctx, h.store, "main")
	if _, owned := st.Owned["taken.example"]; owned {
		t.Error("the admin's block was taken as fediops'")
	}
	// The admin's block stays when the list drops it.
	if _, err := SyncEmailBlocks(ctx, h.emailDeps(h.client), syncOptions(emailRules(t, nil, nil), "dup2")); err != nil {
		t.Fatal(err)
	}
	if got := h.blocks(); fmt.Sprint(got) != "map[taken.example:block]" {
		t.Errorf("blocks %v", got)
	}
}

// An answer lost after the server created the block: reading back finds it, and it is fediops'.
func TestEmailBlocksLostAnswerReadBack(t *testing.T) {
	ctx := context.Background()
	h := newEmailHarness(t, mastosim.Options{})
	h.sim.InjectFault(mastosim.Fault{Kind: mastosim.FaultDrop, AfterApply: true,
		Match: mastosim.MatchExactPath(http.MethodPost, "/api/v1/admin/email_domain_blocks")})
	out, err := SyncEmailBlocks(ctx, h.emailDeps(h.client), syncOptions(emailRules(t, nil, []string{"spam.example"}), "lost"))
	if err != nil {
		t.Fatal(err)
	}
	if out.Created != 1 || out.Results[0].Outcome != OutcomeCreatedReadBack {
		t.Errorf("outcome %+v", out)
	}
	st, _, _ := loadEmailBlockState(ctx, h.store, "main")
	if st.Owned["spam.example"].ID == "" {
		t.Errorf("state %+v", st)
	}
}

// Pagination: the instance's blocks span pages; fediops reads them all and only adds its own.
func TestEmailBlocksManyPages(t *testing.T) {
	h := newEmailHarness(t, mastosim.Options{RateLimit: -1, PagingLimit: -1})
	for i := range 450 {
		h.sim.AddEmailDomainBlock(mastosim.EmailDomainBlock{Domain: fmt.Sprintf("m%d.example", i)})
	}
	out, err := SyncEmailBlocks(context.Background(), h.emailDeps(h.client), syncOptions(emailRules(t, nil, []string{"m449.example", "m0.example", "new.example"}), "pages"))
	if err != nil {
		t.Fatal(err)
	}
	if out.Plan.Blocks != 450 || out.Created != 1 || skipReasons(out.Plan)["m0.example"] != SkipManualBlock || skipReasons(out.Plan)["m449.example"] != SkipManualBlock {
		t.Errorf("plan %+v", out.Plan)
	}
}

// A failed input never widens the door: an unreadable reject list keeps the blocks it listed,
// an unreadable approve list adds none.
func TestEmailBlocksUnreadableLists(t *testing.T) {
	ctx := context.Background()
	h := newEmailHarness(t, mastosim.Options{})
	lists := func(reject []string, missing ...MissingList) *Rules {
		r, err := BuildRules([]RuleSet{{Reject, "reject_domain_sources spam", reject}}, missing)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if _, err := SyncEmailBlocks(ctx, h.emailDeps(h.client), syncOptions(lists([]string{"spam.example"}), "u1")); err != nil {
		t.Fatal(err)
	}
	out, err := SyncEmailBlocks(ctx, h.emailDeps(h.client), syncOptions(lists(nil, MissingList{Reject, "reject_domain_sources spam"}), "u2"))
	if err != nil || out.Removed != 0 || skipReasons(out.Plan)["spam.example"] != SkipSourceUnavailable || h.blocks()["spam.example"] == "" {
		t.Errorf("reject list down: %+v, %v", out, err)
	}
	out, err = SyncEmailBlocks(ctx, h.emailDeps(h.client), syncOptions(lists([]string{"spam.example", "new.example"}, MissingList{Approve, "approve_domain_sources partners"}), "u3"))
	if err != nil || out.Created != 0 || skipReasons(out.Plan)["new.example"] != SkipApproveListDown {
		t.Errorf("approve list down: %+v, %v", out, err)
	}
}

// email_domain_blocks_require_approval: blocks that only make sign-ups wait; switching it
// replaces fediops' blocks (there is no update); before Mastodon 4.3 nothing is synced.
func TestEmailBlocksRequireApproval(t *testing.T) {
	ctx := context.Background()
	h := newEmailHarness(t, mastosim.Options{})
	o := syncOptions(emailRules(t, nil, []string{"spam.example"}), "a1")
	if _, err := SyncEmailBlocks(ctx, h.emailDeps(h.client), o); err != nil {
		t.Fatal(err)
	}
	o.Blocks.RequireApproval, o.RunID = true, "a2"
	out, err := SyncEmailBlocks(ctx, h.emailDeps(h.client), o)
	if err != nil || out.Removed != 1 || out.Created != 1 || fmt.Sprint(h.blocks()) != "map[spam.example:approval]" {
		t.Errorf("switch: %+v, %v, blocks %v", out, err, h.blocks())
	}

	old := newEmailHarness(t, mastosim.Options{Version: "4.2.10"})
	out, err = SyncEmailBlocks(ctx, old.emailDeps(old.client), o)
	if err != nil || !strings.Contains(out.Refused, "4.3") || old.emailWrites() != 0 {
		t.Errorf("4.2: %+v, %v", out, err)
	}
}

// Item: a pending sign-up whose domain an admin blocks is rejected by the next triage run,
// and the audit names the block; a block that only requires approval holds.
func TestPendingSignUpRejectedOnceItsDomainIsBlocked(t *testing.T) {
	ctx := context.Background()
	h := newEmailHarness(t, mastosim.Options{})
	ids := map[string]string{
		"sam":  h.add("sam", "sam@spam.example", true),
		"sub":  h.add("sub", "sub@mx.spam.example", true),
		"rita": h.add("rita", "rita@review.example", true),
		"gov":  h.add("gov", "x@agency.gov", true),
	}
	o := testOptions(t, "before")
	o.EmailBlocks = EmailBlockOptions{Read: true}
	if _, err := Run(ctx, h.emailDeps(h.client), o); err != nil {
		t.Fatal(err)
	}
	if got := h.state(ids); got["sam"] != "pending" || got["gov"] != "approved" {
		t.Fatalf("before the block: %v", got)
	}

	h.sim.AddEmailDomainBlock(mastosim.EmailDomainBlock{Domain: "spam.example"})
	h.sim.AddEmailDomainBlock(mastosim.EmailDomainBlock{Domain: "review.example", AllowWithApproval: true})
	o.RunID = "after"
	h.clock.Advance(time.Minute) // audit trails sort by time: this run's come last
	res, err := Run(ctx, h.emailDeps(h.client), o)
	if err != nil {
		t.Fatal(err)
	}
	if got := h.state(ids); got["sam"] != "gone" || got["sub"] != "gone" || got["rita"] != "pending" {
		t.Errorf("after the block: %v (%+v)", got, res)
	}
	rules := map[string]string{}
	for _, r := range h.audit(t) {
		rules[r.Username] = r.Rule
	}
	if rules["sam"] != "email_domain_block: spam.example" || rules["sub"] != "email_domain_block: spam.example" ||
		rules["rita"] != "email_domain_block (requires approval): review.example" {
		t.Errorf("audit rules %v", rules)
	}
}

// A token without admin:read:email_domain_blocks: the blocks are a missing reject list, so
// approvals are held (they could be blocked), and an ERROR says how to fix it.
func TestEmailBlocksUnreadableHoldsApprovals(t *testing.T) {
	h := newHarness(t, mastosim.Options{}) // accounts scopes only
	id := h.add("gov", "x@agency.gov", true)
	o := testOptions(t, "noscope")
	o.EmailBlocks = EmailBlockOptions{Read: true}
	res, err := Run(context.Background(), h.emailDeps(h.client), o)
	if err != nil {
		t.Fatal(err)
	}
	if h.state(map[string]string{"gov": id})["gov"] != "pending" || res.Held != 1 {
		t.Errorf("result %+v", res)
	}
	recs := h.audit(t)
	if len(recs) != 1 || recs[0].Rule != "held: email_domain_block unavailable (would approve by approve_domains: gov)" {
		t.Errorf("audit %+v", recs)
	}
	if !strings.Contains(h.logs.String(), "admin:read:email_domain_blocks") {
		t.Errorf("no ERROR naming the scope:\n%s", h.logs)
	}
}

// Triage and sync in one run: the blocks fediops made are not read back as reject entries
// of their own (the list entry decides), and the sync's outcome is part of the result.
func TestRunSyncsAfterDeciding(t *testing.T) {
	ctx := context.Background()
	h := newEmailHarness(t, mastosim.Options{})
	o := testOptions(t, "r1")
	o.EmailBlocks = EmailBlockOptions{Read: true, Sync: true, MaxAdditions: -1, MaxRemovals: -1}
	res, err := Run(ctx, h.emailDeps(h.client), o)
	if err != nil {
		t.Fatal(err)
	}
	if res.EmailBlocks == nil || res.EmailBlocks.Created != 4 || len(h.blocks()) != 4 { // gmail.com yahoo.com aol.com contractor.agency.gov
		t.Fatalf("sync in the run: %+v, blocks %v", res.EmailBlocks, h.blocks())
	}
	if _, ok := h.blocks()["contractor.agency.gov"]; !ok {
		t.Errorf("blocks %v", h.blocks())
	}
	h.add("dan", "dan@gmail.com", false)
	o.RunID = "r2"
	if _, err := Run(ctx, h.emailDeps(h.client), o); err != nil {
		t.Fatal(err)
	}
	for _, r := range h.audit(t) {
		if r.Username == "dan" && r.Rule != "reject_domains: gmail.com" {
			t.Errorf("dan decided by %q", r.Rule)
		}
	}
	// The archived record of the sync reads back.
	keys, _ := h.store.List(ctx, emailBlocksPrefix+"runs/main/")
	if len(keys) != 2 {
		t.Fatalf("records %v", keys)
	}
	b, _ := h.store.Read(ctx, keys[0])
	var rec EmailBlocksOutcome
	if err := json.Unmarshal(b, &rec); err != nil || rec.Created != 4 {
		t.Errorf("record %+v, %v", rec, err)
	}
}

// refuser sends a name the server refuses in place of one domain, to get Mastodon's real 422
// for a domain it does not accept.
type refuser struct {
	*mastodon.Client
	domain string
}

func (r refuser) CreateEmailDomainBlock(ctx context.Context, d string, approval bool) (mastodon.EmailDomainBlock, error) {
	if d == r.domain {
		d = "not a domain!"
	}
	return r.Client.CreateEmailDomainBlock(ctx, d, approval)
}

// A domain the server refuses fails once (ERROR), is remembered and not tried again while a
// list names it; the other domains go through.
func TestEmailBlocksRefusedDomainIsNotRetried(t *testing.T) {
	ctx := context.Background()
	h := newEmailHarness(t, mastosim.Options{})
	blocks := refuser{h.client, "odd.example"}
	out, err := SyncEmailBlocks(ctx, h.emailDeps(blocks), syncOptions(emailRules(t, nil, []string{"odd.example", "spam.example"}), "r1"))
	if err != nil {
		t.Fatal(err)
	}
	if out.Failed != 1 || out.Created != 1 || !strings.Contains(h.logs.String(), "email-domain block create odd.example on main failed") {
		t.Fatalf("first run: %+v\n%s", out, h.logs)
	}
	h.sim.ResetRequests()
	out, err = SyncEmailBlocks(ctx, h.emailDeps(blocks), syncOptions(emailRules(t, nil, []string{"odd.example", "spam.example"}), "r2"))
	if err != nil || out.Failed != 0 || skipReasons(out.Plan)["odd.example"] != SkipRefused || h.emailWrites() != 0 {
		t.Errorf("second run: %+v, %v, %d writes", out, err, h.emailWrites())
	}
	// Off the list, the refusal is forgotten.
	if _, err := SyncEmailBlocks(ctx, h.emailDeps(blocks), syncOptions(emailRules(t, nil, []string{"spam.example"}), "r3")); err != nil {
		t.Fatal(err)
	}
	if st, _, _ := loadEmailBlockState(ctx, h.store, "main"); len(st.Refused) != 0 {
		t.Errorf("refused %v", st.Refused)
	}
}

// An owned block whose domain gets an approve entry beneath it goes, and says why.
func TestEmailBlocksRemovedWhenAnApproveEntryComesBeneath(t *testing.T) {
	ctx := context.Background()
	h := newEmailHarness(t, mastosim.Options{})
	if _, err := SyncEmailBlocks(ctx, h.emailDeps(h.client), syncOptions(emailRules(t, nil, []string{"agency.example"}), "b1")); err != nil {
		t.Fatal(err)
	}
	out, err := SyncEmailBlocks(ctx, h.emailDeps(h.client), syncOptions(emailRules(t, []string{"dept.agency.example"}, []string{"agency.example"}), "b2"))
	if err != nil || out.Removed != 1 || len(h.blocks()) != 0 || !strings.Contains(out.Results[0].Reason, "approve_domains: dept.agency.example lies beneath it") {
		t.Errorf("%+v, %v", out, err)
	}
}

// A run for the accounts of a webhook message decides them with the blocks read (an admin's
// block rejects), but leaves syncing the blocks to the scheduled run.
func TestAccountsRunReadsBlocksButDoesNotSync(t *testing.T) {
	ctx := context.Background()
	h := newEmailHarness(t, mastosim.Options{})
	h.sim.AddEmailDomainBlock(mastosim.EmailDomainBlock{Domain: "spam.example"})
	sam := h.add("sam", "sam@spam.example", true)
	o := testOptions(t, "w1")
	o.Accounts = []string{sam}
	o.EmailBlocks = EmailBlockOptions{Read: true, Sync: true, MaxAdditions: -1, MaxRemovals: -1}
	res, err := Run(ctx, h.emailDeps(h.client), o)
	if err != nil {
		t.Fatal(err)
	}
	if got := h.state(map[string]string{"sam": sam})["sam"]; got != "gone" {
		t.Errorf("sam is %s, want gone (rejected by the admin's block)", got)
	}
	if res.EmailBlocks != nil || h.emailWrites() != 0 || len(h.blocks()) != 1 {
		t.Errorf("a webhook run synced: outcome %+v, %d writes, blocks %v", res.EmailBlocks, h.emailWrites(), h.blocks())
	}
}

// looper answers every page with the same next cursor, as a broken server or proxy might.
type looper struct{ *mastodon.Client }

func (l looper) EmailDomainBlocksPage(ctx context.Context, cursor string) ([]mastodon.EmailDomainBlock, string, error) {
	page, _, err := l.Client.EmailDomainBlocksPage(ctx, "")
	return page, "/api/v1/admin/email_domain_blocks?max_id=1", err
}

// A list of blocks that never ends is not taken for the whole list: the sync stops with an
// error and changes nothing (a partial list would read as blocks gone, or missing).
func TestEmailBlocksRepeatedCursorChangesNothing(t *testing.T) {
	h := newEmailHarness(t, mastosim.Options{})
	h.sim.AddEmailDomainBlock(mastosim.EmailDomainBlock{Domain: "manual.example"})
	_, err := SyncEmailBlocks(context.Background(), h.emailDeps(looper{h.client}), syncOptions(emailRules(t, nil, []string{"spam.example"}), "r1"))
	if !errors.Is(err, mastodon.ErrRepeatedCursor) {
		t.Errorf("err = %v, want ErrRepeatedCursor", err)
	}
	if n := h.emailWrites(); n != 0 {
		t.Errorf("%d writes on a list read in part", n)
	}
}

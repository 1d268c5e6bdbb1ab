package approve

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fediops/fediops/shared/archive"
	"github.com/fediops/fediops/shared/clock"
	"github.com/fediops/fediops/shared/logging"
	"github.com/fediops/fediops/shared/mastodon"
	"github.com/fediops/fediops/shared/run"
	"github.com/fediops/fediops/shared/testsupport/mastosim"
)

const simToken = "sim-admin-token-0123456789"

var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

// harness is a simulator, a client on it, a local archive and a captured log.
type harness struct {
	sim    *mastosim.Server
	srv    *httptest.Server
	clock  *clock.Fake
	store  *archive.Local
	logs   *bytes.Buffer
	client *mastodon.Client
}

func newHarness(t *testing.T, simOpts mastosim.Options) *harness {
	t.Helper()
	fc := clock.NewFake(t0)
	simOpts.Clock = fc
	sim := mastosim.New(simOpts)
	sim.AddToken(simToken, "admin:read:accounts admin:write:accounts")
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	store, err := archive.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{sim: sim, srv: srv, clock: fc, store: store, logs: &bytes.Buffer{}}
	h.client = h.newClient(t)
	return h
}

func (h *harness) newClient(t *testing.T) *mastodon.Client {
	t.Helper()
	c, err := mastodon.New(h.srv.URL, simToken, mastodon.WithClock(h.clock),
		mastodon.WithTimeout(300*time.Millisecond), mastodon.WithBackoff(time.Second, 4*time.Second),
		// A fresh connection per request, so that a dropped connection is an error and not
		// hidden by the transport's silent retry of idempotent requests on reused connections.
		mastodon.WithHTTPClient(&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (h *harness) deps(accounts Accounts) Deps {
	red := logging.NewRedactor()
	red.Add(simToken)
	return Deps{Accounts: accounts, Store: h.store, Clock: h.clock, Log: logging.New(h.logs, slog.LevelDebug, red)}
}

func (h *harness) add(username, email string, confirmed bool) string {
	h.clock.Advance(time.Second)
	return h.sim.AddAccount(mastosim.Account{Username: username, Email: email, Confirmed: confirmed, CreatedAt: h.clock.Now()})
}

func testOptions(t *testing.T, runID string) Options {
	t.Helper()
	return Options{Instance: "main", Rules: testRules(t), RequireConfirmed: true, MaxActions: 100, PageSize: 200, LeaseTTL: 10 * time.Minute, RunID: runID}
}

// state returns username → "approved" | "pending" | "gone".
func (h *harness) state(ids map[string]string) map[string]string {
	out := map[string]string{}
	for name, id := range ids {
		a, ok := h.sim.Account(id)
		switch {
		case !ok:
			out[name] = "gone"
		case a.Approved:
			out[name] = "approved"
		default:
			out[name] = "pending"
		}
	}
	return out
}

// writes counts approve/reject requests per account id.
func (h *harness) writes() map[string]int {
	n := map[string]int{}
	for _, r := range h.sim.Requests() {
		if r.Method == http.MethodPost && (strings.HasSuffix(r.Path, "/approve") || strings.HasSuffix(r.Path, "/reject")) {
			n[strings.Split(r.Path, "/")[5]]++
		}
	}
	return n
}

func (h *harness) audit(t *testing.T) []Record {
	t.Helper()
	keys, err := h.store.List(context.Background(), "triage/")
	if err != nil {
		t.Fatal(err)
	}
	var recs []Record
	for _, k := range keys {
		b, err := h.store.Read(context.Background(), k)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var r Record
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("audit line %q: %v", line, err)
			}
			recs = append(recs, r)
		}
	}
	return recs
}

func seedMix(h *harness) map[string]string {
	return map[string]string{
		"alice": h.add("alice", "alice@agency.gov", true),
		"bob":   h.add("bob", "bob@hmrc.gov.uk", true),
		"carol": h.add("carol", "carol@agency.gov", false),         // approvable but unconfirmed
		"dan":   h.add("dan", "dan@gmail.com", false),              // reject does not wait
		"eve":   h.add("eve", "eve@agency.gov.evil.com", true),     // evil suffix
		"fred":  h.add("fred", "fred@example.org", true),           // no rule
		"gina":  h.add("gina", "gina@contractor.agency.gov", true), // specific reject beats gov
		"hank":  h.add("hank", "hank@@agency.gov", true),           // malformed
	}
}

func TestRunDecidesAndAudits(t *testing.T) {
	h := newHarness(t, mastosim.Options{})
	ids := seedMix(h)
	res, err := Run(context.Background(), h.deps(h.client), testOptions(t, "run1"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"alice": "approved", "bob": "approved", "carol": "pending", "dan": "gone",
		"eve": "pending", "fred": "pending", "gina": "gone", "hank": "pending"}
	if got := h.state(ids); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("state = %v\nwant    %v", got, want)
	}
	if res.Pending != 8 || res.Approved != 2 || res.Rejected != 2 || res.Held != 4 || res.Failed != 0 || res.Stopped != "" {
		t.Errorf("result = %+v", res)
	}
	recs := h.audit(t)
	if len(recs) != 8 {
		t.Fatalf("audit has %d records", len(recs))
	}
	byUser := map[string]Record{}
	for _, r := range recs {
		byUser[r.Username] = r
		if r.Instance != "main" || r.Mode != "applied" || r.Time.IsZero() || r.AccountID == "" {
			t.Errorf("incomplete record %+v", r)
		}
	}
	if r := byUser["carol"]; r.Decision != Hold || !strings.Contains(r.Rule, "not confirmed") || r.EmailDomain != "agency.gov" {
		t.Errorf("carol = %+v", r)
	}
	if r := byUser["gina"]; r.Decision != Reject || r.Rule != "reject_domains: contractor.agency.gov" || r.Outcome != OutcomeRejected {
		t.Errorf("gina = %+v", r)
	}
	if r := byUser["hank"]; r.Decision != Hold || !strings.HasPrefix(r.Rule, "malformed address") {
		t.Errorf("hank = %+v", r)
	}
	if !strings.HasPrefix(res.Audit, h.store.Dir()) || !strings.HasSuffix(res.Audit, "run1.jsonl") {
		t.Errorf("audit location %q", res.Audit)
	}
	// Every write went to exactly one account once.
	for id, n := range h.writes() {
		if n != 1 {
			t.Errorf("account %s written %d times", id, n)
		}
	}

	// A second run: held accounts are recorded again, nothing is written, a new audit object.
	h.sim.ResetRequests()
	res2, err := Run(context.Background(), h.deps(h.client), testOptions(t, "run2"))
	if err != nil {
		t.Fatal(err)
	}
	if len(h.writes()) != 0 || res2.Pending != 4 || res2.Held != 4 {
		t.Errorf("second run wrote %v, result %+v", h.writes(), res2)
	}
	if keys, _ := h.store.List(context.Background(), "triage/"); len(keys) != 2 {
		t.Errorf("audit objects = %v", keys)
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	h := newHarness(t, mastosim.Options{})
	ids := seedMix(h)
	o := testOptions(t, "dry")
	o.DryRun = true
	res, err := Run(context.Background(), h.deps(h.client), o)
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range h.state(ids) {
		if s != "pending" {
			t.Errorf("%s is %s after a dry run", name, s)
		}
	}
	if len(h.writes()) != 0 {
		t.Errorf("dry run wrote: %v", h.writes())
	}
	if res.Approved != 2 || res.Rejected != 2 || !res.DryRun {
		t.Errorf("dry-run result = %+v", res)
	}
	for _, r := range h.audit(t) {
		if r.Mode != "dry-run" {
			t.Errorf("record mode %q", r.Mode)
		}
		if r.Decision == Approve && r.Outcome != OutcomeWouldApprove {
			t.Errorf("record %+v", r)
		}
	}
	if !strings.Contains(h.logs.String(), OutcomeWouldApprove) {
		t.Errorf("dry run did not log what it would do:\n%s", h.logs)
	}
}

func TestPaginationBeyondOnePage(t *testing.T) {
	h := newHarness(t, mastosim.Options{})
	ids := map[string]string{}
	for i := range 450 {
		name := fmt.Sprintf("u%03d", i)
		email := name + "@agency.gov"
		if i%3 == 0 {
			email = name + "@gmail.com"
		}
		ids[name] = h.add(name, email, true)
	}
	o := testOptions(t, "big")
	o.MaxActions = 1000
	res, err := Run(context.Background(), h.deps(h.client), o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Pending != 450 || res.Approved != 300 || res.Rejected != 150 {
		t.Errorf("result = %+v", res)
	}
	pages := 0
	for _, r := range h.sim.Requests() {
		if r.Path == "/api/v2/admin/accounts" {
			pages++
		}
	}
	if pages != 3 {
		t.Errorf("listed %d pages, want 3 (200+200+50)", pages)
	}
	for name, s := range h.state(ids) {
		if s == "pending" {
			t.Errorf("%s left pending", name)
		}
	}
}

func TestMaxActionsStopsAndNextRunFinishes(t *testing.T) {
	h := newHarness(t, mastosim.Options{})
	ids := map[string]string{}
	for i := range 5 {
		ids[fmt.Sprint(i)] = h.add(fmt.Sprintf("spam%d", i), fmt.Sprintf("s%d@gmail.com", i), false)
	}
	o := testOptions(t, "r1")
	o.MaxActions = 2
	res, err := Run(context.Background(), h.deps(h.client), o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Rejected != 2 || res.Deferred != 3 || res.Stopped != run.MaxActions {
		t.Fatalf("first run = %+v", res)
	}
	if !strings.Contains(h.logs.String(), `"severity":"ERROR"`) || !strings.Contains(h.logs.String(), "max_actions") {
		t.Errorf("guard not reported at ERROR:\n%s", h.logs)
	}
	for _, id := range []string{"r2", "r3"} {
		o.RunID = id
		if _, err := Run(context.Background(), h.deps(h.client), o); err != nil {
			t.Fatal(err)
		}
	}
	for name, s := range h.state(ids) {
		if s != "gone" {
			t.Errorf("%s is %s", name, s)
		}
	}
	for id, n := range h.writes() {
		if n != 1 {
			t.Errorf("account %s written %d times", id, n)
		}
	}
}

func TestFaults(t *testing.T) {
	approveAny := mastosim.MatchAll(mastosim.MatchPath(http.MethodPost, "/api/v1/admin/accounts/"), func(r *http.Request) bool {
		return strings.HasSuffix(r.URL.Path, "/approve")
	})
	tests := []struct {
		name  string
		fault mastosim.Fault
		// readBack: the first approval took effect but its answer was lost; the audit must
		// say so (read back), not "decided by someone else".
		readBack bool
		// writes is how many approve requests account a gets.
		writes int
	}{
		{"429 with reset", mastosim.Fault{Kind: mastosim.FaultTooManyRequests, Match: approveAny}, false, 2},
		{"500 twice", mastosim.Fault{Kind: mastosim.FaultServerError, Match: approveAny, Times: 2}, false, 3},
		{"503 on listing", mastosim.Fault{Kind: mastosim.FaultServerError, Status: 503, Match: mastosim.MatchPath(http.MethodGet, "/api/v2/admin/accounts")}, false, 1},
		{"timeout", mastosim.Fault{Kind: mastosim.FaultTimeout, Match: approveAny}, false, 2},
		{"dropped connection", mastosim.Fault{Kind: mastosim.FaultDrop, Match: approveAny}, false, 2},
		{"approved but answer lost", mastosim.Fault{Kind: mastosim.FaultDrop, Match: approveAny, AfterApply: true}, true, 1},
		{"timeout after approving", mastosim.Fault{Kind: mastosim.FaultTimeout, Match: approveAny, AfterApply: true}, true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, mastosim.Options{})
			ids := map[string]string{"a": h.add("a", "a@agency.gov", true), "b": h.add("b", "b@gov.uk", true)}
			h.sim.InjectFault(tt.fault)
			res, err := Run(context.Background(), h.deps(h.client), testOptions(t, "f"))
			if err != nil {
				t.Fatalf("run: %v\nlogs:\n%s", err, h.logs)
			}
			if got := h.state(ids); got["a"] != "approved" || got["b"] != "approved" {
				t.Errorf("state = %v", got)
			}
			if res.Failed != 0 || res.Approved != 2 || res.Skipped != 0 {
				t.Errorf("result = %+v", res)
			}
			want := OutcomeApproved
			if tt.readBack {
				want = OutcomeApprovedReadBack
			}
			for _, r := range h.audit(t) {
				if r.AccountID == ids["a"] && r.Outcome != want {
					t.Errorf("audit of a: %q, want %q", r.Outcome, want)
				}
			}
			if n := h.writes()[ids["a"]]; n != tt.writes {
				t.Errorf("a was sent %d approvals, want %d (an answer lost after the effect is read back, not repeated)", n, tt.writes)
			}
			if tt.fault.Kind == mastosim.FaultTooManyRequests {
				if h.clock.Now().Before(t0.Add(2 * time.Second)) {
					t.Error("did not wait for the rate-limit reset")
				}
			}
		})
	}
}

func TestRateLimitPastDeadlineStopsCleanlyAndNextRunFinishes(t *testing.T) {
	h := newHarness(t, mastosim.Options{})
	ids := map[string]string{}
	for i := range 4 {
		ids[fmt.Sprint(i)] = h.add(fmt.Sprintf("u%d", i), fmt.Sprintf("u%d@agency.gov", i), true)
	}
	// The second approval is throttled; the window resets minutes away, past the deadline.
	h.sim.InjectFault(mastosim.Fault{Kind: mastosim.FaultTooManyRequests, Skip: 1,
		Match: mastosim.MatchPath(http.MethodPost, "/api/v1/admin/accounts/")})
	ctx := clock.WithDeadline(context.Background(), h.clock.Now().Add(20*time.Second))
	res, err := Run(ctx, h.deps(h.client), testOptions(t, "cut"))
	if err != nil {
		t.Fatalf("a rate-limited run must stop cleanly, got %v", err)
	}
	if res.Approved != 1 || res.Deferred != 3 || res.Stopped != run.BudgetSpent {
		t.Fatalf("first run = %+v", res)
	}
	h.clock.Advance(5 * time.Minute)
	res2, err := Run(context.Background(), h.deps(h.newClient(t)), testOptions(t, "next"))
	if err != nil || res2.Approved != 3 {
		t.Fatalf("second run = %+v, %v", res2, err)
	}
	for name, s := range h.state(ids) {
		if s != "approved" {
			t.Errorf("%s is %s", name, s)
		}
	}
	for id, n := range h.writes() {
		if n > 2 { // the throttled attempt and the real one
			t.Errorf("account %s written %d times", id, n)
		}
	}
}

func TestDeadlineStopsBeforeStartingActions(t *testing.T) {
	h := newHarness(t, mastosim.Options{})
	h.add("a", "a@agency.gov", true)
	ctx := clock.WithDeadline(context.Background(), h.clock.Now().Add(4*time.Second)) // less than run.DefaultStopBefore
	res, err := Run(ctx, h.deps(h.client), testOptions(t, "late"))
	if err != nil {
		t.Fatal(err)
	}
	// Too close to the deadline to start: not even the listing is sent.
	if res.Stopped != run.DeadlineNear || res.Pending != 0 || len(h.sim.Requests()) != 0 {
		t.Errorf("result = %+v, writes %v", res, h.writes())
	}
}

// humanFirst decides an account through the simulator (as a human admin would) right before
// the job's own request reaches the server.
type humanFirst struct {
	*mastodon.Client
	h      *harness
	target string
	reject bool
}

func (a humanFirst) Approve(ctx context.Context, id string) error {
	a.human(id)
	return a.Client.Approve(ctx, id)
}

func (a humanFirst) Reject(ctx context.Context, id string) error {
	a.human(id)
	return a.Client.Reject(ctx, id)
}

func (a humanFirst) human(id string) {
	if id != a.target {
		return
	}
	c, _ := mastodon.New(a.h.srv.URL, simToken)
	if a.reject {
		_ = c.Reject(context.Background(), id)
	} else {
		_ = c.Approve(context.Background(), id)
	}
}

func TestDecidedMeanwhileIsSkipped(t *testing.T) {
	tests := []struct {
		name        string
		email       string
		humanReject bool
		wantOutcome string
	}{
		{"approved by a human before our approve (403)", "x@agency.gov", false, OutcomeDone},
		{"rejected by a human before our approve (404)", "x@agency.gov", true, OutcomeGone},
		{"approved by a human before our reject (403)", "x@gmail.com", false, OutcomeDone},
		{"rejected by a human before our reject (404)", "x@gmail.com", true, OutcomeGone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, mastosim.Options{})
			id := h.add("x", tt.email, true)
			acc := humanFirst{Client: h.client, h: h, target: id, reject: tt.humanReject}
			res, err := Run(context.Background(), h.deps(acc), testOptions(t, "m"))
			if err != nil {
				t.Fatal(err)
			}
			if res.Skipped != 1 || res.Failed != 0 {
				t.Errorf("result = %+v", res)
			}
			if recs := h.audit(t); len(recs) != 1 || recs[0].Outcome != tt.wantOutcome {
				t.Errorf("audit = %+v", recs)
			}
		})
	}
}

func TestMissingScopeIsAFailureNotASkip(t *testing.T) {
	h := newHarness(t, mastosim.Options{})
	h.sim.AddToken("read-only-token-abcdef", "admin:read:accounts")
	c, err := mastodon.New(h.srv.URL, "read-only-token-abcdef", mastodon.WithClock(h.clock))
	if err != nil {
		t.Fatal(err)
	}
	id := h.add("a", "a@agency.gov", true)
	res, err := Run(context.Background(), h.deps(c), testOptions(t, "s"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Failed != 1 || res.Skipped != 0 {
		t.Errorf("result = %+v", res)
	}
	if recs := h.audit(t); len(recs) != 1 || !strings.Contains(recs[0].Error, "outside the authorized scopes") {
		t.Errorf("audit = %+v", recs)
	}
	if a, _ := h.sim.Account(id); a.Approved {
		t.Error("approved without the scope")
	}
}

func TestOverlappingRunsNeverActTwice(t *testing.T) {
	h := newHarness(t, mastosim.Options{})
	ids := map[string]string{}
	for i := range 20 {
		email := fmt.Sprintf("u%d@agency.gov", i)
		if i%2 == 1 {
			email = fmt.Sprintf("u%d@gmail.com", i)
		}
		ids[fmt.Sprint(i)] = h.add(fmt.Sprintf("u%d", i), email, true)
	}
	var wg sync.WaitGroup
	results := make([]*Result, 4)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := Run(context.Background(), h.deps(h.newClient(t)), testOptions(t, fmt.Sprintf("p%d", i)))
			if err != nil {
				t.Errorf("run %d: %v", i, err)
			}
			results[i] = res
		}()
	}
	wg.Wait()
	acted := 0
	for _, r := range results {
		if r != nil && r.Stopped != run.LeaseHeld {
			acted++
		}
	}
	if acted < 1 {
		t.Fatalf("no run acted: %+v", results)
	}
	for id, n := range h.writes() {
		if n != 1 {
			t.Errorf("account %s written %d times", id, n)
		}
	}
	for name, s := range h.state(ids) {
		if s == "pending" {
			t.Errorf("%s still pending", name)
		}
	}
}

func TestTokenNeverLogged(t *testing.T) {
	h := newHarness(t, mastosim.Options{})
	seedMix(h)
	h.sim.InjectFault(mastosim.Fault{Kind: mastosim.FaultServerError, Times: 2})
	if _, err := Run(context.Background(), h.deps(h.client), testOptions(t, "log")); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(h.logs.String(), simToken) {
		t.Error("token in logs")
	}
	err := filepath.WalkDir(h.store.Dir(), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err == nil && bytes.Contains(b, []byte(simToken)) {
			t.Errorf("token in archived %s", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// blockingAccounts pauses the first approval until released.
type blockingAccounts struct {
	*mastodon.Client
	started chan struct{}
	release chan struct{}
	once    sync.Once
}

func (b *blockingAccounts) Approve(ctx context.Context, id string) error {
	b.once.Do(func() {
		close(b.started)
		<-b.release
	})
	return b.Client.Approve(ctx, id)
}

func TestSecondRunDuringFirstIsExcluded(t *testing.T) {
	h := newHarness(t, mastosim.Options{})
	ids := map[string]string{"a": h.add("a", "a@agency.gov", true), "b": h.add("b", "b@agency.gov", true)}
	slow := &blockingAccounts{Client: h.client, started: make(chan struct{}), release: make(chan struct{})}
	done := make(chan *Result)
	go func() {
		res, err := Run(context.Background(), h.deps(slow), testOptions(t, "first"))
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	<-slow.started // the first run listed both accounts and is about to approve
	second, err := Run(context.Background(), h.deps(h.newClient(t)), testOptions(t, "second"))
	if err != nil {
		t.Fatal(err)
	}
	if second.Stopped != run.LeaseHeld || second.Pending != 0 {
		t.Errorf("second run was not excluded: %+v", second)
	}
	close(slow.release)
	first := <-done
	if first.Approved != 2 {
		t.Errorf("first run = %+v", first)
	}
	for id, n := range h.writes() {
		if n != 1 {
			t.Errorf("account %s written %d times", id, n)
		}
	}
	if got := h.state(ids); got["a"] != "approved" || got["b"] != "approved" {
		t.Errorf("state = %v", got)
	}
	// The lease was released: a third run gets in.
	third, err := Run(context.Background(), h.deps(h.client), testOptions(t, "third"))
	if err != nil || third.Stopped == run.LeaseHeld {
		t.Errorf("third run = %+v, %v", third, err)
	}
}

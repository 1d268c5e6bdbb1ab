package approve

import (
	"bytes"
	"context"
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
	"github.com/fediops/fediops/shared/fetch"
	"github.com/fediops/fediops/shared/listsource"
	"github.com/fediops/fediops/shared/logging"
	"github.com/fediops/fediops/shared/testsupport/mastosim"
)

// listServer serves lists by path; a path's status can be set to fail it. It answers
// conditional requests with 304 when the ETag matches.
type listServer struct {
	mu     sync.Mutex
	bodies map[string]string
	status map[string]int
	hits   map[string]int
	srv    *httptest.Server
}

func newListServer(t *testing.T) *listServer {
	ls := &listServer{bodies: map[string]string{}, status: map[string]int{}, hits: map[string]int{}}
	ls.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ls.mu.Lock()
		defer ls.mu.Unlock()
		ls.hits[r.URL.Path]++
		if s := ls.status[r.URL.Path]; s != 0 {
			w.WriteHeader(s)
			return
		}
		body, ok := ls.bodies[r.URL.Path]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		etag := fmt.Sprintf("%q", fmt.Sprint(len(body), body[:min(8, len(body))]))
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", etag)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(ls.srv.Close)
	return ls
}

func (ls *listServer) set(path, body string, status int) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.bodies[path], ls.status[path] = body, status
}

type listHarness struct {
	store *archive.Local
	clock *clock.Fake
	logs  *bytes.Buffer
	deps  ListDeps
}

func newListHarness(t *testing.T) *listHarness {
	store, err := archive.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	h := &listHarness{store: store, clock: clock.NewFake(t0), logs: &bytes.Buffer{}}
	h.deps = ListDeps{Store: store, Clock: h.clock, Log: logging.New(h.logs, slog.LevelDebug, logging.NewRedactor()),
		Reader: fetch.New(5*time.Second, 1<<20)}
	return h
}

func TestCollectListsEveryFormatAndFailure(t *testing.T) {
	ctx := context.Background()
	ls := newListServer(t)
	dir := t.TempDir()
	csvPath := filepath.Join(dir, "partners.csv")
	if err := os.WriteFile(csvPath, []byte("name,domain\nMinistry,ministry.example\nCouncil,council.example\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ls.set("/disposable.txt", "# disposable\nmailinator.com\ntrash.example\nbin.example\n", 0)
	ls.set("/blocks.json", `[{"id":"1","domain":"spam.example","allow_with_approval":false}]`, 0)
	ls.set("/universities.txt", "uni.example\n", 0)
	srcs := []ListSource{
		{Decision: Approve, Name: "partners", URL: "file://" + csvPath},
		{Decision: Approve, Name: "universities", URL: ls.srv.URL + "/universities.txt"},
		{Decision: Reject, Name: "disposable", URL: ls.srv.URL + "/disposable.txt", Format: FormatText},
		{Decision: Reject, Name: "export", URL: ls.srv.URL + "/blocks.json"},
	}
	h := newListHarness(t)
	lists := CollectLists(ctx, h.deps, srcs, DefaultMaxListShrink)
	if len(lists.Missing) != 0 || len(lists.Sets) != 4 {
		t.Fatalf("first read: missing %v, sets %+v, reports %+v", lists.Missing, lists.Sets, lists.Reports)
	}
	for i, want := range []string{FormatCSV, FormatText, FormatText, FormatMastodon} {
		if rep := lists.Reports[i]; rep.Status != string(listsource.OK) || rep.Format != want || rep.Used == 0 {
			t.Errorf("report %d = %+v, want ok in %s", i, rep, want)
		}
	}
	keys, _ := h.store.List(ctx, ListsPrefix+"/")
	if len(keys) != 8 { // 4 objects by content + 4 last-good pointers
		t.Errorf("archived %v", keys)
	}

	// Second run: unchanged lists answer 304 (conditional GET), an approve list fails with a
	// copy (fallback), a reject list that shrank by more than half is refused (fallback too).
	ls.set("/universities.txt", "", http.StatusInternalServerError)
	ls.set("/disposable.txt", "mailinator.com\n", 0)
	lists = CollectLists(ctx, h.deps, srcs, DefaultMaxListShrink)
	status := map[string]string{}
	for _, r := range lists.Reports {
		status[r.List] = r.Status
	}
	if status["approve_domain_sources universities"] != string(listsource.Fallback) ||
		status["reject_domain_sources disposable"] != string(listsource.Fallback) ||
		status["reject_domain_sources export"] != string(listsource.NotModified) ||
		len(lists.Missing) != 0 || len(lists.Sets) != 4 {
		t.Errorf("second read: %v, missing %v", status, lists.Missing)
	}
	rules, err := BuildRules(lists.Sets, lists.Missing)
	if err != nil {
		t.Fatal(err)
	}
	if v := rules.Classify("x@trash.example"); v.Decision != Reject || v.Rule != "reject_domain_sources disposable: trash.example" {
		t.Errorf("the last good copy of the shrunk list is not used: %+v", v)
	}
	if !strings.Contains(h.logs.String(), "using its last good copy") {
		t.Errorf("fallback not logged:\n%s", h.logs)
	}
}

// A list that fails with no last good copy is missing: a failed approve list never approves
// and holds the rejections it could overturn; a failed reject list holds the approvals.
func TestFailedListsNeverWiden(t *testing.T) {
	ctx := context.Background()
	ls := newListServer(t)
	ls.set("/approve.txt", "", http.StatusServiceUnavailable)
	ls.set("/reject.txt", "", http.StatusNotFound)
	h := newListHarness(t)

	approveDown := CollectLists(ctx, h.deps, []ListSource{{Decision: Approve, Name: "partners", URL: ls.srv.URL + "/approve.txt"}}, 50)
	if len(approveDown.Missing) != 1 || approveDown.Reports[0].Status != string(listsource.LeftOut) {
		t.Fatalf("approve list: %+v", approveDown)
	}
	if !strings.Contains(h.logs.String(), `"level":"ERROR"`) && !strings.Contains(h.logs.String(), "ERROR") {
		t.Errorf("a missing list is not an ERROR:\n%s", h.logs)
	}
	r, err := BuildRules(append([]RuleSet{{Approve, "approve_domains", []string{"gov"}}, {Reject, "reject_domains", []string{"gmail.com"}}}, approveDown.Sets...), approveDown.Missing)
	if err != nil {
		t.Fatal(err)
	}
	for email, want := range map[string][2]string{
		"a@agency.gov":   {"approve", "approve_domains: gov"}, // an approve list cannot overturn an approval
		"a@gmail.com":    {"hold", "held: approve_domain_sources partners unavailable (would reject by reject_domains: gmail.com)"},
		"a@partner.org":  {"hold", "held: approve_domain_sources partners unavailable; no other rule matches partner.org"},
		"a@@partner.org": {"hold", "malformed address: several @"},
	} {
		if v := r.Classify(email); string(v.Decision) != want[0] || v.Rule != want[1] {
			t.Errorf("approve list down: %s = %s (%s), want %s (%s)", email, v.Decision, v.Rule, want[0], want[1])
		}
	}

	rejectDown := CollectLists(ctx, h.deps, []ListSource{{Decision: Reject, Name: "spam", URL: ls.srv.URL + "/reject.txt"}}, 50)
	r, err = BuildRules(append([]RuleSet{{Approve, "approve_domains", []string{"gov"}}, {Reject, "reject_domains", []string{"gmail.com"}}}, rejectDown.Sets...), rejectDown.Missing)
	if err != nil {
		t.Fatal(err)
	}
	for email, want := range map[string][2]string{
		"a@agency.gov": {"hold", "held: reject_domain_sources spam unavailable (would approve by approve_domains: gov)"},
		"a@gmail.com":  {"reject", "reject_domains: gmail.com"},
		"a@other.org":  {"hold", "no rule matches other.org"},
	} {
		if v := r.Classify(email); string(v.Decision) != want[0] || v.Rule != want[1] {
			t.Errorf("reject list down: %s = %s (%s), want %s (%s)", email, v.Decision, v.Rule, want[0], want[1])
		}
	}
}

// Lists that disagree on a suffix hold the addresses under it; the most specific entry still
// wins across lists.
func TestListConflictsAndSpecificity(t *testing.T) {
	r, err := BuildRules([]RuleSet{
		{Approve, "approve_domains", []string{"gov"}},
		{Approve, "approve_domain_sources partners", []string{"shared.example", "dept.agency.example"}},
		{Reject, "reject_domain_sources spam", []string{"shared.example", "agency.example", "contractor.agency.gov"}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for email, want := range map[string][2]string{
		"a@shared.example":         {"hold", "conflict: approve_domain_sources partners and reject_domain_sources spam both list shared.example"},
		"a@x.dept.agency.example":  {"approve", "approve_domain_sources partners: dept.agency.example"},
		"a@other.agency.example":   {"reject", "reject_domain_sources spam: agency.example"},
		"a@contractor.agency.gov":  {"reject", "reject_domain_sources spam: contractor.agency.gov"},
		"a@procurement.agency.gov": {"approve", "approve_domains: gov"},
	} {
		if v := r.Classify(email); string(v.Decision) != want[0] || v.Rule != want[1] {
			t.Errorf("%s = %s (%s), want %s (%s)", email, v.Decision, v.Rule, want[0], want[1])
		}
	}
}

// End to end on the simulator: a reject source decides pending sign-ups and the audit names
// the list and the entry. When the list fails on the next run its last good copy decides,
// the copy decides, and a second source that never worked holds approvals.
func TestRunWithListSources(t *testing.T) {
	ctx := context.Background()
	ls := newListServer(t)
	ls.set("/disposable.txt", "mailinator.com\n", 0)
	h := newHarness(t, mastosim.Options{})
	ids := map[string]string{
		"alice": h.add("alice", "alice@agency.gov", true),
		"mal":   h.add("mal", "mal@mailinator.com", true),
	}
	ld := ListDeps{Store: h.store, Clock: h.clock, Log: logging.Discard(), Reader: fetch.New(5*time.Second, 1<<20)}
	srcs := []ListSource{{Decision: Reject, Name: "disposable", URL: ls.srv.URL + "/disposable.txt"}}
	lists := CollectLists(ctx, ld, srcs, 50)
	o := testOptions(t, "lists1")
	var err error
	if o.Rules, err = BuildRules([]RuleSet{{Approve, "approve_domains", []string{"gov"}}}, nil); err != nil {
		t.Fatal(err)
	}
	o.Rules = o.Rules.With(lists.Sets, lists.Missing)
	if _, err := Run(ctx, h.deps(h.client), o); err != nil {
		t.Fatal(err)
	}
	if got := h.state(ids); got["alice"] != "approved" || got["mal"] != "gone" {
		t.Errorf("state %v", got)
	}
	var rules []string
	for _, rec := range h.audit(t) {
		rules = append(rules, rec.Rule)
	}
	if !strings.Contains(strings.Join(rules, "|"), "reject_domain_sources disposable: mailinator.com") {
		t.Errorf("audit rules %v", rules)
	}

	// The next run: the list fails; its last good copy still rejects, and another reject list
	// that never worked holds approvals.
	ls.set("/disposable.txt", "", http.StatusBadGateway)
	ls.set("/new.txt", "", http.StatusBadGateway)
	ids["bob"] = h.add("bob", "bob@agency.gov", true)
	ids["tim"] = h.add("tim", "tim@mailinator.com", true)
	lists = CollectLists(ctx, ld, append(srcs, ListSource{Decision: Reject, Name: "new", URL: ls.srv.URL + "/new.txt"}), 50)
	o.RunID = "lists2"
	o.Rules, _ = BuildRules([]RuleSet{{Approve, "approve_domains", []string{"gov"}}}, nil)
	o.Rules = o.Rules.With(lists.Sets, lists.Missing)
	res, err := Run(ctx, h.deps(h.client), o)
	if err != nil {
		t.Fatal(err)
	}
	if got := h.state(ids); got["bob"] != "pending" || got["tim"] != "gone" || res.Approved != 0 {
		t.Errorf("state %v, result %+v", got, res)
	}
}

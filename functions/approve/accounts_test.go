package approve

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/fediops/fediops/shared/testsupport/mastosim"
)

// TestAccountsRunDecidesOnlyThose: a run for named accounts (the webhook's message) reads
// each one, decides those still pending by the same rules, records the others, and never
// lists the pending accounts.
func TestAccountsRunDecidesOnlyThose(t *testing.T) {
	h := newHarness(t, mastosim.Options{})
	ids := map[string]string{
		"alice": h.add("alice", "alice@agency.gov", true),
		"dan":   h.add("dan", "dan@gmail.com", false),
		"fred":  h.add("fred", "fred@example.org", true),
		"olga":  h.sim.AddAccount(mastosim.Account{Username: "olga", Email: "olga@agency.gov", Confirmed: true, Approved: true}),
		"rem":   h.sim.AddAccount(mastosim.Account{Username: "rem", Domain: "elsewhere.example"}),
	}
	o := testOptions(t, "hook1")
	o.Accounts = []string{ids["fred"], ids["alice"], "999999", ids["olga"], ids["rem"], ids["alice"]}
	res, err := Run(context.Background(), h.deps(h.client), o)
	if err != nil {
		t.Fatal(err)
	}
	if got := h.state(map[string]string{"alice": ids["alice"], "dan": ids["dan"], "fred": ids["fred"]}); got["alice"] != "approved" || got["dan"] != "pending" || got["fred"] != "pending" {
		t.Errorf("state = %v (dan was not named: untouched)", got)
	}
	if res.Pending != 2 || res.Approved != 1 || res.Held != 1 || res.Skipped != 3 || res.Failed != 0 {
		t.Errorf("result = %+v", res)
	}
	reads := 0
	for _, r := range h.sim.Requests() {
		if r.Method == http.MethodGet && strings.HasPrefix(r.Path, "/api/v2/admin/accounts") {
			t.Errorf("an accounts run listed the pending accounts: %s", r.Path)
		}
		if r.Method == http.MethodGet && strings.HasPrefix(r.Path, "/api/v1/admin/accounts/") {
			reads++
		}
	}
	if reads != 5 {
		t.Errorf("%d account reads, want 5 (each named account once)", reads)
	}
	outcomes := map[string]string{}
	for _, r := range h.audit(t) {
		outcomes[r.AccountID] = r.Outcome
	}
	want := map[string]string{ids["alice"]: OutcomeApproved, ids["fred"]: OutcomeHeld, "999999": OutcomeGone,
		ids["olga"]: OutcomeDone, ids["rem"]: OutcomeNotLocal}
	for id, w := range want {
		if outcomes[id] != w {
			t.Errorf("audit of %s = %q, want %q", id, outcomes[id], w)
		}
	}

	// The same message again (a redelivered webhook): alice is read, found approved, skipped.
	h.sim.ResetRequests()
	o.RunID, o.Accounts = "hook2", []string{ids["alice"]}
	res, err = Run(context.Background(), h.deps(h.client), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.writes()) != 0 || res.Skipped != 1 || res.Approved != 0 {
		t.Errorf("redelivery wrote %v, result %+v", h.writes(), res)
	}
}

// TestAccountsRunDryRun: a dry run for named accounts says what it would do.
func TestAccountsRunDryRun(t *testing.T) {
	h := newHarness(t, mastosim.Options{})
	id := h.add("erin", "erin@gmail.com", false)
	o := testOptions(t, "dry")
	o.DryRun, o.Accounts = true, []string{id}
	res, err := Run(context.Background(), h.deps(h.client), o)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := h.sim.Account(id); !ok || res.Rejected != 1 || len(h.writes()) != 0 {
		t.Errorf("dry run: result %+v, writes %v", res, h.writes())
	}
	if recs := h.audit(t); len(recs) != 1 || recs[0].Outcome != OutcomeWouldReject || recs[0].Mode != "dry-run" {
		t.Errorf("audit = %+v", recs)
	}
}

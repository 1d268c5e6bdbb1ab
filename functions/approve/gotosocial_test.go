package approve

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fediops/fediops/shared/archive"
	"github.com/fediops/fediops/shared/clock"
	"github.com/fediops/fediops/shared/logging"
	"github.com/fediops/fediops/shared/mastodon"
	"github.com/fediops/fediops/shared/run"
	"github.com/fediops/fediops/shared/testsupport/gotosocial"
)

// TestTriageAgainstGoToSocial runs the job end to end against a real GoToSocial server:
// pending sign-ups are created through its public API, emails confirmed through its own
// confirmation mails, and the results read back through its admin API.
func TestTriageAgainstGoToSocial(t *testing.T) {
	gts := gotosocial.Start(t, gotosocial.Options{})
	ctx := context.Background()
	signups := []struct {
		user, email string
		confirm     bool
	}{
		{"alice", "alice@agency.gov", true},
		{"bob", "bob@ec.europa.eu", true},
		{"carol", "carol@hmrc.gov.uk", true},
		{"dave", "dave@agency.gov", false},             // approvable, unconfirmed: held
		{"erin", "erin@gmail.com", false},              // rejected even unconfirmed
		{"frank", "frank@contractor.agency.gov", true}, // the specific reject entry wins
		{"gina", "gina@agency.gov.evil.com", true},     // evil suffix: held
		{"hank", "hank@example.org", true},             // no rule: held
	}
	ids := map[string]string{}
	for _, s := range signups {
		ids[s.user] = gts.SignUp(t, s.user, s.email)
	}
	for _, s := range signups {
		if s.confirm {
			gts.ConfirmEmail(t, s.email)
		}
	}
	client, err := mastodon.New(gts.URL, gts.AdminToken)
	if err != nil {
		t.Fatal(err)
	}
	store, err := archive.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	deps := Deps{Accounts: client, Store: store, Clock: clock.Real{}, Log: logging.Discard()}
	opts := Options{Instance: "gts", Rules: testRules(t), RequireConfirmed: true, MaxActions: 100,
		PageSize: 2, LeaseTTL: time.Minute, RunID: "dry"}

	pending := func() []string {
		t.Helper()
		accts, err := client.AdminAccounts(ctx, mastodon.AccountFilter{Origin: "local", Status: "pending", Limit: 200})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, a := range accts {
			names = append(names, a.Username)
		}
		slices.Sort(names)
		return names
	}
	all := []string{"alice", "bob", "carol", "dave", "erin", "frank", "gina", "hank"}

	t.Run("dry run changes nothing", func(t *testing.T) {
		o := opts
		o.DryRun = true
		res, err := Run(ctx, deps, o)
		if err != nil {
			t.Fatal(err)
		}
		if res.Pending != 8 || res.Approved != 3 || res.Rejected != 2 || res.Held != 3 {
			t.Errorf("dry run = %+v", res)
		}
		if got := pending(); !slices.Equal(got, all) {
			t.Errorf("pending after dry run = %v", got)
		}
	})

	t.Run("email-domain blocks: unsupported, reported once, nothing else changes", func(t *testing.T) {
		var logs bytes.Buffer
		d := deps
		d.EmailBlocks, d.Log = client, logging.New(&logs, slog.LevelDebug, logging.NewRedactor())
		o := opts
		o.DryRun, o.RunID = true, "email-blocks"
		o.EmailBlocks = EmailBlockOptions{Read: true, Sync: true, MaxAdditions: -1, MaxRemovals: -1}
		res, err := Run(ctx, d, o)
		if err != nil {
			t.Fatal(err)
		}
		if res.Pending != 8 || res.Approved != 3 || res.Rejected != 2 || res.Held != 3 {
			t.Errorf("triage changed with email-domain blocks on: %+v", res)
		}
		if res.EmailBlocks == nil || !strings.Contains(res.EmailBlocks.Unsupported, "gotosocial") || res.EmailBlocks.Plan != nil {
			t.Errorf("email-domain blocks outcome %+v", res.EmailBlocks)
		}
		if n := strings.Count(logs.String(), "email-domain blocks are not supported"); n != 1 {
			t.Errorf("reported %d times:\n%s", n, logs.String())
		}
		out, err := SyncEmailBlocks(ctx, d, EmailBlocksOptions{Instance: "gts", Rules: testRules(t), LeaseTTL: time.Minute, RunID: "cli",
			Blocks: EmailBlockOptions{Sync: true, MaxAdditions: -1, MaxRemovals: -1}})
		if err != nil || out.Unsupported == "" {
			t.Errorf("email-blocks sync against GoToSocial: %+v, %v", out, err)
		}
		if got := pending(); !slices.Equal(got, all) {
			t.Errorf("pending after the email-domain block runs = %v", got)
		}
	})

	t.Run("run decides across pages", func(t *testing.T) {
		o := opts
		o.RunID = "live"
		res, err := Run(ctx, deps, o)
		if err != nil {
			t.Fatal(err)
		}
		if res.Pending != 8 || res.Approved != 3 || res.Rejected != 2 || res.Held != 3 || res.Failed != 0 {
			t.Errorf("run = %+v", res)
		}
		// GoToSocial approves in a background worker: wait until the approvals are visible.
		for _, u := range []string{"alice", "bob", "carol"} {
			waitApproved(t, client, ids[u])
		}
		// GoToSocial deletes rejected accounts asynchronously.
		want := []string{"dave", "gina", "hank"}
		deadline := time.Now().Add(20 * time.Second)
		for got := pending(); !slices.Equal(got, want); got = pending() {
			if time.Now().After(deadline) {
				t.Fatalf("pending = %v, want %v", got, want)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})

	t.Run("held account approved once its email is confirmed", func(t *testing.T) {
		gts.ConfirmEmail(t, "dave@agency.gov")
		o := opts
		o.RunID = "after-confirm"
		res, err := Run(ctx, deps, o)
		if err != nil {
			t.Fatal(err)
		}
		if res.Approved != 1 || res.Held != 2 {
			t.Errorf("run = %+v", res)
		}
		if got := pending(); !slices.Equal(got, []string{"gina", "hank"}) {
			t.Errorf("pending = %v", got)
		}
	})

	t.Run("an accounts message decides just the named account", func(t *testing.T) {
		// GoToSocial has no webhooks; a message naming accounts (fediops' manual or webhook
		// message) must still work there, and the scheduled path decides the rest.
		judy := gts.SignUp(t, "judy", "judy@agency.gov")
		kate := gts.SignUp(t, "kate", "kate@agency.gov")
		gts.ConfirmEmail(t, "judy@agency.gov")
		gts.ConfirmEmail(t, "kate@agency.gov")
		o := opts
		o.RunID, o.Accounts = "accounts", []string{judy, "01ZZZZZZZZZZZZZZZZZZZZZZZZ"}
		res, err := Run(ctx, deps, o)
		if err != nil {
			t.Fatal(err)
		}
		if res.Approved != 1 || res.Pending != 1 || res.Skipped != 1 {
			t.Errorf("accounts run = %+v", res)
		}
		waitApproved(t, client, judy)
		if a, err := client.AdminAccount(ctx, kate); err != nil || a.Approved {
			t.Errorf("kate was not named: approved=%v, %v", a.Approved, err)
		}
		o.RunID, o.Accounts = "accounts-again", []string{judy}
		if res, err := Run(ctx, deps, o); err != nil || res.Skipped != 1 || res.Approved != 0 {
			t.Errorf("the same message again = %+v, %v", res, err)
		}
		o.RunID, o.Accounts = "scheduled", nil
		if res, err := Run(ctx, deps, o); err != nil || res.Approved != 1 {
			t.Errorf("scheduled run after = %+v, %v", res, err)
		}
		waitApproved(t, client, kate)
	})

	t.Run("an account approved meanwhile is skipped", func(t *testing.T) {
		// GoToSocial answers 422 to rejecting an approved account: the job must look and skip.
		id := gts.SignUp(t, "ivan", "ivan@gmail.com")
		// GoToSocial approves in a background worker: until it has, the account is still
		// pending and a reject would be accepted. Wait until the approval is visible.
		approveAndWait(t, client, id)
		rec := Record{AccountID: id, Decision: Reject}
		res := &Result{}
		r, err := run.Start(ctx, run.Options{Store: deps.Store, Clock: deps.Clock, Lease: "triage/gts-act", Holder: "act", TTL: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if err := act(ctx, r, deps, &rec, res); err != nil {
			t.Fatalf("act = %v", err)
		}
		if rec.Outcome != OutcomeDone || res.Skipped != 1 {
			t.Errorf("record = %+v", rec)
		}
	})
}

// waitApproved waits until GoToSocial shows the account as approved: it approves in a
// background worker, after answering the request.
func waitApproved(t *testing.T, client *mastodon.Client, id string) {
	t.Helper()
	pollApproved(t, client, id, false)
}

// approveAndWait approves the account as an admin would, and again every 2 s until GoToSocial
// shows it approved: a worker racing another one over the same cached user can lose it.
func approveAndWait(t *testing.T, client *mastodon.Client, id string) {
	t.Helper()
	if err := client.Approve(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	pollApproved(t, client, id, true)
}

func pollApproved(t *testing.T, client *mastodon.Client, id string, again bool) {
	t.Helper()
	start := time.Now()
	for next := start.Add(2 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		a, err := client.AdminAccount(context.Background(), id)
		if err == nil && a.Approved {
			return
		}
		if again && time.Now().After(next) {
			next = next.Add(2 * time.Second)
			_ = client.Approve(context.Background(), id) // a failure shows as the account still pending
		}
		if time.Since(start) > 20*time.Second {
			t.Fatalf("the approval of %s never became visible: %+v %v", id, a, err)
		}
	}
}

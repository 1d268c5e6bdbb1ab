package approve

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/fediops/fediops/shared/archive"
	"github.com/fediops/fediops/shared/clock"
	"github.com/fediops/fediops/shared/mastodon"
	"github.com/fediops/fediops/shared/run"
)

// Accounts is what triage needs from a server; *mastodon.Client implements it.
type Accounts interface {
	AdminAccounts(ctx context.Context, f mastodon.AccountFilter) ([]mastodon.AdminAccount, error)
	AdminAccountsPage(ctx context.Context, f mastodon.AccountFilter, cursor string) ([]mastodon.AdminAccount, string, error)
	AdminAccount(ctx context.Context, id string) (mastodon.AdminAccount, error)
	Approve(ctx context.Context, id string) error
	Reject(ctx context.Context, id string) error
}

// Deps are the adapters a run uses.
type Deps struct {
	Accounts Accounts
	// EmailBlocks, if set, reads (and syncs) the instance's email-domain blocks.
	EmailBlocks EmailDomainBlocks
	Store       archive.Store
	Clock       clock.Clock
	Log         *slog.Logger
}

// Options configure one run for one instance.
type Options struct {
	Instance         string
	Rules            *Rules
	RequireConfirmed bool
	MaxActions       int
	PageSize         int
	DryRun           bool
	LeaseTTL         time.Duration
	// RunID identifies the run in the lease and the audit object name.
	RunID string
	// StopBefore is how long before the deadline the run stops starting new actions
	// (run.DefaultStopBefore).
	StopBefore time.Duration
	// EmailBlocks: reading and syncing the instance's email-domain blocks (emailblocks.go).
	EmailBlocks EmailBlockOptions
	// Accounts, if set, limits the run to these account ids, each read on its own
	// (GET /api/v1/admin/accounts/:id) instead of listing every pending account: what a
	// message from the webhook asks for. An account no longer pending is skipped.
	Accounts []string
}

// Outcomes recorded in the audit trail.
const (
	OutcomeApproved         = "approved"
	OutcomeRejected         = "rejected"
	OutcomeApprovedReadBack = "approved (answer lost, confirmed by reading back)"
	OutcomeRejectedReadBack = "rejected (answer lost, confirmed by reading back)"
	OutcomeHeld             = "held"
	OutcomeWouldApprove     = "would approve (dry run)"
	OutcomeWouldReject      = "would reject (dry run)"
	OutcomeDone             = "skipped: already decided by someone else"
	OutcomeGone             = "skipped: account no longer exists"
	OutcomeNotLocal         = "skipped: not a local account"
	OutcomeDeferred         = "deferred to the next run"
	OutcomeFailed           = "failed"
)

// Record is one line of the audit trail.
type Record struct {
	Time        time.Time `json:"time"`
	Instance    string    `json:"instance"`
	AccountID   string    `json:"account_id"`
	Username    string    `json:"username"`
	EmailDomain string    `json:"email_domain"`
	Decision    Decision  `json:"decision"`
	Rule        string    `json:"rule"`
	Mode        string    `json:"mode"` // "dry-run" or "applied"
	Outcome     string    `json:"outcome"`
	Error       string    `json:"error,omitempty"`
}

// Result summarises a run.
type Result struct {
	Instance string     `json:"instance"`
	DryRun   bool       `json:"dry_run"`
	Pending  int        `json:"pending"`
	Approved int        `json:"approved"`
	Rejected int        `json:"rejected"`
	Held     int        `json:"held"`
	Skipped  int        `json:"skipped"`
	Failed   int        `json:"failed"`
	Deferred int        `json:"deferred"`
	Stopped  run.Reason `json:"stopped,omitempty"` // why the run stopped early, if it did
	Audit    string     `json:"audit,omitempty"`   // where the audit trail was written
	Records  []Record   `json:"-"`
	// EmailBlocks is the email-domain block sync's outcome, when it ran.
	EmailBlocks *EmailBlocksOutcome `json:"email_blocks,omitempty"`
}

// Run triages the pending local accounts of one instance. It holds the instance's lease for
// the whole run (renewed as it works), so overlapping runs (Pub/Sub redelivery, a slow run
// meeting the next schedule) never act on the same account twice. Each account is one atomic
// request; a run that stops early (max_actions, rate limit, deadline, lease lost, server
// errors) leaves the rest pending for the next run. The returned error is non-nil only for
// failures worth retrying soon.
func Run(ctx context.Context, d Deps, o Options) (*Result, error) {
	res := &Result{Instance: o.Instance, DryRun: o.DryRun}
	log := d.Log.With("instance", o.Instance, "dry_run", o.DryRun)
	r, err := run.Start(ctx, run.Options{Store: d.Store, Clock: d.Clock, Log: log, Lease: "triage/" + o.Instance,
		Holder: o.RunID, TTL: o.LeaseTTL, StopBefore: o.StopBefore})
	if reason, ok := run.ReasonOf(err); ok {
		res.Stopped = reason
		log.Info("triage skipped: another run is working on this instance", "reason", err.Error())
		return res, nil
	}
	if err != nil {
		return res, fmt.Errorf("triage %s: %w", o.Instance, err)
	}
	defer func() {
		if err := r.End(ctx); errors.Is(err, archive.ErrLeaseLost) && res.Stopped != run.LeaseLost {
			res.Stopped = run.LeaseLost
			log.Error("triage finished without its lease: another run took it over meanwhile", "stopped", string(run.LeaseLost))
		}
	}()

	blocks, err := prepareEmailBlocks(ctx, r, d, &o, log)
	if reason, ok := run.ReasonOf(err); ok {
		res.Stopped = reason
		log.Warn("triage stopped before reading the email-domain blocks ("+reason.Explain()+"); the next run continues", "stopped", string(reason))
		return res, nil
	}
	if err != nil {
		return res, fmt.Errorf("triage %s: %w", o.Instance, err)
	}
	var pending []mastodon.AdminAccount
	var skipped []Record
	if len(o.Accounts) > 0 {
		pending, skipped, err = readAccounts(ctx, r, d, o)
	} else {
		pending, err = listPending(ctx, r, d.Accounts, o.PageSize)
	}
	if reason, ok := run.ReasonOf(err); ok {
		res.Stopped = reason
		log.Warn("triage stopped before reading the pending accounts ("+reason.Explain()+"); the next run continues", "stopped", string(reason))
		return res, nil
	}
	if err != nil {
		return res, fmt.Errorf("triage %s: read pending accounts: %w", o.Instance, err)
	}
	res.Pending = len(pending)
	for _, rec := range skipped {
		res.Skipped++
		res.Records = append(res.Records, rec)
		logRecord(log, rec)
	}
	runErr := decideAll(ctx, r, d, o, pending, res, log)
	if res.Stopped == run.MaxActions {
		log.Error("triage stopped at max_actions: the rest waits for the next run; check the rules if this is unexpected",
			"max_actions", o.MaxActions, "deferred", res.Deferred)
	}
	if len(res.Records) > 0 {
		if err := writeAudit(ctx, d, o, res); err != nil {
			return res, err
		}
	}
	if runErr != nil {
		return res, fmt.Errorf("triage %s: %w", o.Instance, runErr)
	}
	// What time and budget are left go to the email-domain blocks; a run for the accounts of a
	// webhook message only decides them, and the schedule keeps the blocks in step.
	if len(o.Accounts) == 0 && (res.Stopped == "" || res.Stopped == run.MaxActions) {
		if res.EmailBlocks, err = syncEmailBlocks(ctx, r, d, o, blocks, log); err != nil {
			return res, fmt.Errorf("triage %s: email-domain blocks: %w", o.Instance, err)
		}
	}
	return res, nil
}

// listPending reads every pending local account, oldest first (they have waited longest),
// page by page, waiting for rate-limit windows between pages when the deadline allows.
func listPending(ctx context.Context, r *run.Run, a Accounts, pageSize int) ([]mastodon.AdminAccount, error) {
	f := mastodon.AccountFilter{Origin: "local", Status: "pending", Limit: pageSize}
	all, err := mastodon.Pages(ctx, func(ctx context.Context, cursor string) (page []mastodon.AdminAccount, next string, err error) {
		err = r.Call(ctx, func() (err error) {
			page, next, err = a.AdminAccountsPage(ctx, f, cursor)
			return err
		})
		return page, next, err
	})
	if errors.Is(err, mastodon.ErrRepeatedCursor) {
		err = nil // each account is decided on what it is: the ones read can be
	}
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(all, func(a, b mastodon.AdminAccount) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return all, nil
}

// readAccounts reads the accounts o.Accounts names, one request each, and returns those still
// pending (oldest first, like listPending) and a record for each of the others: gone (rejected
// or deleted), already approved, or not local. A redelivered webhook thus never acts twice.
func readAccounts(ctx context.Context, r *run.Run, d Deps, o Options) ([]mastodon.AdminAccount, []Record, error) {
	var pending []mastodon.AdminAccount
	var skipped []Record
	seen := map[string]bool{}
	for _, id := range o.Accounts {
		if seen[id] {
			continue
		}
		seen[id] = true
		var a mastodon.AdminAccount
		err := r.Call(ctx, func() (err error) {
			a, err = d.Accounts.AdminAccount(ctx, id)
			return err
		})
		rec := Record{Time: d.Clock.Now().UTC(), Instance: o.Instance, AccountID: id, Username: a.Username,
			Rule: "not pending when read", Mode: mode(o)}
		switch {
		case mastodon.StatusOf(err) == http.StatusNotFound:
			rec.Outcome = OutcomeGone
		case err != nil:
			return nil, nil, err
		case a.Domain != nil && *a.Domain != "":
			rec.Outcome = OutcomeNotLocal
		case a.Approved:
			rec.Outcome = OutcomeDone
		default:
			pending = append(pending, a)
			continue
		}
		if a.Email != "" {
			rec.EmailDomain = o.Rules.Classify(a.Email).Domain
		}
		skipped = append(skipped, rec)
	}
	slices.SortStableFunc(pending, func(a, b mastodon.AdminAccount) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return pending, skipped, nil
}

func mode(o Options) string {
	if o.DryRun {
		return "dry-run"
	}
	return "applied"
}

// decideAll decides every account and acts on it until the run must stop; it returns the
// server error that stopped it, if any.
func decideAll(ctx context.Context, r *run.Run, d Deps, o Options, pending []mastodon.AdminAccount, res *Result, log *slog.Logger) error {
	var runErr error
	actions := 0
	for _, acct := range pending {
		rec := decide(d, o, acct, mode(o))
		switch {
		case rec.Decision == Hold:
			rec.Outcome = OutcomeHeld
			res.Held++
		case res.Stopped != "":
			rec.Outcome = OutcomeDeferred
			res.Deferred++
		case actions >= o.MaxActions:
			res.Stopped = run.MaxActions
			rec.Outcome = OutcomeDeferred
			res.Deferred++
		case o.DryRun:
			actions++
			dryRun(&rec, res)
		default:
			if err := act(ctx, r, d, &rec, res); err != nil {
				reason, ok := run.ReasonOf(err)
				if !ok {
					reason, runErr = run.ServerError, err
				}
				res.Stopped = reason
			} else {
				actions++
			}
		}
		res.Records = append(res.Records, rec)
		logRecord(log, rec)
	}
	return runErr
}

func decide(d Deps, o Options, acct mastodon.AdminAccount, mode string) Record {
	v := o.Rules.Classify(acct.Email)
	rec := Record{
		Time: d.Clock.Now().UTC(), Instance: o.Instance, AccountID: acct.ID, Username: acct.Username,
		EmailDomain: v.Domain, Decision: v.Decision, Rule: v.Rule, Mode: mode,
	}
	if v.Decision == Approve && o.RequireConfirmed && !acct.Confirmed {
		rec.Decision = Hold
		rec.Rule = "email not confirmed yet (would approve by " + v.Rule + ")"
	}
	return rec
}

func dryRun(rec *Record, res *Result) {
	if rec.Decision == Approve {
		rec.Outcome = OutcomeWouldApprove
		res.Approved++
	} else {
		rec.Outcome = OutcomeWouldReject
		res.Rejected++
	}
}

func (rec *Record) done(res *Result, readBack bool) {
	switch {
	case rec.Decision == Approve && readBack:
		rec.Outcome = OutcomeApprovedReadBack
		res.Approved++
	case rec.Decision == Approve:
		rec.Outcome = OutcomeApproved
		res.Approved++
	case readBack:
		rec.Outcome = OutcomeRejectedReadBack
		res.Rejected++
	default:
		rec.Outcome = OutcomeRejected
		res.Rejected++
	}
}

// act approves or rejects one account and records the outcome. The error is a *run.StopError
// when the run must stop without a failure of this account (deadline, budget, lease), or the
// server error that failed it.
func act(ctx context.Context, r *run.Run, d Deps, rec *Record, res *Result) error {
	// An ambiguous answer is read back; if the account is still pending, the request provably
	// did nothing and is sent again, up to maxAttempts in all.
	for attempt := 0; ; attempt++ {
		err := r.Call(ctx, func() error {
			if rec.Decision == Approve {
				return d.Accounts.Approve(ctx, rec.AccountID)
			}
			return d.Accounts.Reject(ctx, rec.AccountID)
		})
		switch status := mastodon.StatusOf(err); {
		case err == nil:
			rec.done(res, false)
			return nil
		case isStop(err):
			rec.Outcome, rec.Error = OutcomeDeferred, errText(err)
			res.Deferred++
			return err
		case mastodon.IsAmbiguous(err) && attempt+1 < maxAttempts:
			again, rerr := readBack(ctx, r, d, rec, res)
			if rerr != nil || !again {
				return rerr
			}
		case status == http.StatusForbidden || status == http.StatusNotFound || status == http.StatusUnprocessableEntity:
			// Mastodon answers 403/404 and GoToSocial 404/422 when someone decided the account
			// meanwhile. A 403 can also mean a missing permission: look before concluding.
			return reconcile(ctx, r, d, rec, res, err, attempt > 0)
		case ctx.Err() != nil:
			rec.Outcome, rec.Error = OutcomeDeferred, err.Error()
			res.Deferred++
			return run.Stop(run.Cancelled, err)
		default:
			rec.Outcome, rec.Error = OutcomeFailed, err.Error()
			res.Failed++
			return err
		}
	}
}

// maxAttempts bounds how often one decision is sent when its answers are lost.
const maxAttempts = 3

func isStop(err error) bool {
	_, ok := run.ReasonOf(err)
	return ok
}

func errText(err error) string {
	if reason, ok := run.ReasonOf(err); ok {
		return reason.Explain()
	}
	return err.Error()
}

// readBack looks at an account after an answer was lost. It records the outcome when the
// account shows what happened, and reports whether the request must be sent again (the
// account is still pending: it did nothing).
func readBack(ctx context.Context, r *run.Run, d Deps, rec *Record, res *Result) (bool, error) {
	var cur mastodon.AdminAccount
	err := r.Call(ctx, func() (err error) {
		cur, err = d.Accounts.AdminAccount(ctx, rec.AccountID)
		return err
	})
	switch {
	case mastodon.StatusOf(err) == http.StatusNotFound && rec.Decision == Reject:
		rec.done(res, true) // rejecting deletes the account
		return false, nil
	case mastodon.StatusOf(err) == http.StatusNotFound:
		rec.Outcome = OutcomeGone
		res.Skipped++
		return false, nil
	case err != nil:
		rec.Outcome, rec.Error = OutcomeFailed, "answer lost, and reading back failed: "+errText(err)
		res.Failed++
		return false, err
	case cur.Approved && rec.Decision == Approve:
		rec.done(res, true)
		return false, nil
	case cur.Approved:
		rec.Outcome = OutcomeDone
		res.Skipped++
		return false, nil
	}
	return true, nil
}

// reconcile looks at an account the server refused to decide. afterLoss is set when an
// earlier attempt's answer was lost: a refusal then means that attempt did it after all.
func reconcile(ctx context.Context, r *run.Run, d Deps, rec *Record, res *Result, actErr error, afterLoss bool) error {
	var cur mastodon.AdminAccount
	err := r.Call(ctx, func() (err error) {
		cur, err = d.Accounts.AdminAccount(ctx, rec.AccountID)
		return err
	})
	switch {
	case mastodon.StatusOf(err) == http.StatusNotFound && afterLoss && rec.Decision == Reject:
		rec.done(res, true)
		return nil
	case mastodon.StatusOf(err) == http.StatusNotFound:
		rec.Outcome = OutcomeGone
		res.Skipped++
		return nil
	case err == nil && cur.Approved && afterLoss && rec.Decision == Approve:
		rec.done(res, true)
		return nil
	case err == nil && cur.Approved:
		rec.Outcome = OutcomeDone
		res.Skipped++
		return nil
	case err == nil:
		// Still pending: the refusal was about us (missing scope or role), not the account.
		rec.Outcome, rec.Error = OutcomeFailed, actErr.Error()
		res.Failed++
		return nil
	case isStop(err):
		rec.Outcome, rec.Error = OutcomeDeferred, actErr.Error()
		res.Deferred++
		return err
	default:
		rec.Outcome, rec.Error = OutcomeFailed, fmt.Sprintf("%v; then: %v", actErr, err)
		res.Failed++
		return err
	}
}

func logRecord(log *slog.Logger, r Record) {
	level := slog.LevelInfo
	if r.Outcome == OutcomeFailed {
		level = slog.LevelError
	}
	msg := fmt.Sprintf("account %s (%s): %s by %s: %s", r.Username, r.EmailDomain, r.Decision, r.Rule, r.Outcome)
	attrs := []any{"account_id", r.AccountID, "username", r.Username, "email_domain", r.EmailDomain,
		"decision", string(r.Decision), "rule", r.Rule, "outcome", r.Outcome}
	if r.Error != "" {
		attrs = append(attrs, "error", r.Error)
	}
	log.Log(context.Background(), level, msg, attrs...)
}

// AuditKey returns the archive key of a run's audit trail.
func AuditKey(instance string, t time.Time, runID string) string {
	t = t.UTC()
	return fmt.Sprintf("triage/%s/%s/%s-%s.jsonl", instance, t.Format("2006/01/02"), t.Format("20060102T150405.000000Z"), runID)
}

func writeAudit(ctx context.Context, d Deps, o Options, res *Result) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, r := range res.Records {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	key := AuditKey(o.Instance, d.Clock.Now(), o.RunID)
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if err = d.Store.Create(context.WithoutCancel(ctx), key, buf.Bytes()); err == nil || errors.Is(err, archive.ErrExists) {
			res.Audit = d.Store.Location(key)
			return nil
		}
	}
	// Keep the trail in the logs rather than lose it.
	d.Log.Error("could not write the triage audit trail; the decisions follow in this line",
		"instance", o.Instance, "error", err.Error(), "records", res.Records)
	return fmt.Errorf("triage %s: write audit trail: %w", o.Instance, err)
}

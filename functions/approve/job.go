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
)

// Accounts is what triage needs from a server; *mastodon.Client implements it.
type Accounts interface {
	AdminAccounts(ctx context.Context, f mastodon.AccountFilter) ([]mastodon.AdminAccount, error)
	AdminAccount(ctx context.Context, id string) (mastodon.AdminAccount, error)
	Approve(ctx context.Context, id string) error
	Reject(ctx context.Context, id string) error
}

// Deps are the adapters a run uses.
type Deps struct {
	Accounts Accounts
	Store    archive.Store
	Clock    clock.Clock
	Log      *slog.Logger
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
	// StopBefore is how long before the deadline the run stops starting new actions (default 15s).
	StopBefore time.Duration
}

// Outcomes recorded in the audit trail.
const (
	OutcomeApproved     = "approved"
	OutcomeRejected     = "rejected"
	OutcomeHeld         = "held"
	OutcomeWouldApprove = "would approve (dry run)"
	OutcomeWouldReject  = "would reject (dry run)"
	OutcomeDone         = "skipped: already decided by someone else"
	OutcomeGone         = "skipped: account no longer exists"
	OutcomeDeferred     = "deferred to the next run"
	OutcomeFailed       = "failed"
	stopMaxActions      = "max_actions reached"
	stopRateLimit       = "rate limit budget spent"
	stopDeadline        = "deadline near"
	stopServerError     = "server error"
	stopLeaseHeld       = "another run holds the lease"
	defaultStopBefore   = 15 * time.Second
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
	Instance string   `json:"instance"`
	DryRun   bool     `json:"dry_run"`
	Pending  int      `json:"pending"`
	Approved int      `json:"approved"`
	Rejected int      `json:"rejected"`
	Held     int      `json:"held"`
	Skipped  int      `json:"skipped"`
	Failed   int      `json:"failed"`
	Deferred int      `json:"deferred"`
	Stopped  string   `json:"stopped,omitempty"` // why the run stopped early, if it did
	Audit    string   `json:"audit,omitempty"`   // where the audit trail was written
	Records  []Record `json:"-"`
}

// Run triages the pending local accounts of one instance. It holds the instance's lease for
// the whole run, so overlapping runs (Pub/Sub redelivery, a slow run meeting the next
// schedule) never act on the same account twice. Each account is one atomic request; a run
// that stops early (max_actions, rate limit, deadline, server errors) leaves the rest pending
// for the next run. The returned error is non-nil only for failures worth retrying soon.
func Run(ctx context.Context, d Deps, o Options) (*Result, error) {
	if o.StopBefore == 0 {
		o.StopBefore = defaultStopBefore
	}
	res := &Result{Instance: o.Instance, DryRun: o.DryRun}
	log := d.Log.With("instance", o.Instance, "dry_run", o.DryRun)

	lease, err := archive.AcquireLease(ctx, d.Store, "triage/"+o.Instance, o.RunID, d.Clock.Now(), o.LeaseTTL)
	if errors.Is(err, archive.ErrLeaseHeld) {
		res.Stopped = stopLeaseHeld
		log.Info("triage skipped: another run is working on this instance", "reason", err.Error())
		return res, nil
	}
	if err != nil {
		return res, fmt.Errorf("triage %s: %w", o.Instance, err)
	}
	defer func() {
		if rerr := lease.Release(context.WithoutCancel(ctx)); rerr != nil {
			log.Warn("could not release the triage lease; it expires by itself", "error", rerr.Error())
		}
	}()

	pending, err := d.Accounts.AdminAccounts(ctx, mastodon.AccountFilter{Origin: "local", Status: "pending", Limit: o.PageSize})
	if err != nil {
		if mastodon.IsRateLimited(err) {
			res.Stopped = stopRateLimit
			log.Warn("triage stopped before listing: rate limit budget spent; the next run continues", "error", err.Error())
			return res, nil
		}
		return res, fmt.Errorf("triage %s: list pending accounts: %w", o.Instance, err)
	}
	// Oldest first: they have waited longest.
	slices.SortStableFunc(pending, func(a, b mastodon.AdminAccount) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	res.Pending = len(pending)
	mode := "applied"
	if o.DryRun {
		mode = "dry-run"
	}

	var runErr error
	actions := 0
	for _, acct := range pending {
		v := o.Rules.Classify(acct.Email)
		rec := Record{
			Time: d.Clock.Now().UTC(), Instance: o.Instance, AccountID: acct.ID, Username: acct.Username,
			EmailDomain: v.Domain, Decision: v.Decision, Rule: v.Rule, Mode: mode,
		}
		if v.Decision == Approve && o.RequireConfirmed && !acct.Confirmed {
			rec.Decision = Hold
			rec.Rule = "email not confirmed yet (would approve by " + v.Rule + ")"
		}
		switch {
		case rec.Decision == Hold:
			rec.Outcome = OutcomeHeld
			res.Held++
		case res.Stopped != "":
			rec.Outcome = OutcomeDeferred
			res.Deferred++
		case actions >= o.MaxActions:
			res.Stopped = stopMaxActions
			rec.Outcome = OutcomeDeferred
			res.Deferred++
		case nearDeadline(ctx, d.Clock, o.StopBefore):
			res.Stopped = stopDeadline
			rec.Outcome = OutcomeDeferred
			res.Deferred++
		case o.DryRun:
			actions++
			if rec.Decision == Approve {
				rec.Outcome = OutcomeWouldApprove
				res.Approved++
			} else {
				rec.Outcome = OutcomeWouldReject
				res.Rejected++
			}
		default:
			actions++
			stop, err := act(ctx, d, &rec, res)
			if stop != "" {
				res.Stopped = stop
				actions-- // not done
				if stop == stopServerError {
					runErr = err
				}
			}
		}
		res.Records = append(res.Records, rec)
		logRecord(log, rec)
	}

	if res.Stopped == stopMaxActions {
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
	return res, nil
}

func nearDeadline(ctx context.Context, c clock.Clock, margin time.Duration) bool {
	left, ok := clock.Remaining(ctx, c)
	return ok && left < margin
}

// act approves or rejects one account and records the outcome. It returns a stop reason when
// the run cannot go on.
func act(ctx context.Context, d Deps, rec *Record, res *Result) (string, error) {
	var err error
	if rec.Decision == Approve {
		err = d.Accounts.Approve(ctx, rec.AccountID)
	} else {
		err = d.Accounts.Reject(ctx, rec.AccountID)
	}
	if err == nil {
		if rec.Decision == Approve {
			rec.Outcome = OutcomeApproved
			res.Approved++
		} else {
			rec.Outcome = OutcomeRejected
			res.Rejected++
		}
		return "", nil
	}
	switch status := mastodon.StatusOf(err); {
	case mastodon.IsRateLimited(err):
		rec.Outcome, rec.Error = OutcomeDeferred, err.Error()
		res.Deferred++
		return stopRateLimit, nil
	case status == http.StatusForbidden || status == http.StatusNotFound || status == http.StatusUnprocessableEntity:
		// Mastodon answers 403/404 and GoToSocial 404/422 when someone decided the account
		// meanwhile. A 403 can also mean a missing permission: look before concluding.
		return reconcile(ctx, d, rec, res, err)
	case ctx.Err() != nil:
		rec.Outcome, rec.Error = OutcomeDeferred, err.Error()
		res.Deferred++
		return stopDeadline, nil
	default:
		rec.Outcome, rec.Error = OutcomeFailed, err.Error()
		res.Failed++
		return stopServerError, err
	}
}

func reconcile(ctx context.Context, d Deps, rec *Record, res *Result, actErr error) (string, error) {
	cur, err := d.Accounts.AdminAccount(ctx, rec.AccountID)
	switch {
	case mastodon.StatusOf(err) == http.StatusNotFound:
		rec.Outcome = OutcomeGone
		res.Skipped++
		return "", nil
	case err == nil && cur.Approved:
		rec.Outcome = OutcomeDone
		res.Skipped++
		return "", nil
	case err == nil:
		// Still pending: the refusal was about us (missing scope or role), not the account.
		rec.Outcome, rec.Error = OutcomeFailed, actErr.Error()
		res.Failed++
		return "", nil
	case mastodon.IsRateLimited(err):
		rec.Outcome, rec.Error = OutcomeDeferred, actErr.Error()
		res.Deferred++
		return stopRateLimit, nil
	default:
		rec.Outcome, rec.Error = OutcomeFailed, fmt.Sprintf("%v; then: %v", actErr, err)
		res.Failed++
		return stopServerError, err
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

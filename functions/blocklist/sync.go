// Package blocklist is blocklist sync: it merges federation blocklists and applies the result
// to the instances' domain blocks, owning only what it creates, removing what the lists
// retract, archiving every run, and holding back plans that would change too much.
package blocklist

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/fediops/fediops/functions/blocklist/lists"
	"github.com/fediops/fediops/functions/blocklist/plan"
	"github.com/fediops/fediops/shared/archive"
	"github.com/fediops/fediops/shared/clock"
	"github.com/fediops/fediops/shared/domain"
	"github.com/fediops/fediops/shared/mastodon"
)

// Blocks is what a sync needs from a destination server; *mastodon.Client implements it.
type Blocks interface {
	Server(ctx context.Context) (mastodon.Server, error)
	DomainBlocks(ctx context.Context) ([]mastodon.DomainBlock, int, error)
	CreateDomainBlock(ctx context.Context, p mastodon.DomainBlockParams) (mastodon.DomainBlock, error)
	UpdateDomainBlock(ctx context.Context, id string, p mastodon.DomainBlockParams) (mastodon.DomainBlock, error)
	DeleteDomainBlock(ctx context.Context, id string) error
	DomainFollows(ctx context.Context, domain string, start, end time.Time) (mastodon.Follows, error)
	Rate() mastodon.Rate
}

// Deps are the adapters a sync uses.
type Deps struct {
	Store archive.Store
	Clock clock.Clock
	Log   *slog.Logger
}

// Destination is one instance to sync, with its options.
type Destination struct {
	Name   string
	Client Blocks
	Plan   plan.Options // Caps are filled in from the server
	// Guards: a plan removing more than MaxRemovals blocks, or changing more than
	// MaxChangePct percent of the instance's blocks, is held back for an admin.
	MaxRemovals  int
	MaxChangePct float64
	// InitialImport exempts the first import (no owned blocks yet) from the percentage guard.
	InitialImport bool
	DryRun        bool
	LeaseTTL      time.Duration
	// StopBefore is how long before the deadline no new action starts (default 20s).
	StopBefore time.Duration
}

// Result outcomes per action.
const (
	ResultDone        = "done"
	ResultSkipped     = "skipped"
	ResultFailed      = "failed"
	ResultDeferred    = "deferred"
	ResultWould       = "would do (dry run)"
	ResultFollowCap   = "follow_protected"
	ResultUnsupported = "unsupported"
)

// ActionResult is what happened to one planned action.
type ActionResult struct {
	plan.Action
	Result string `json:"result"`
	Detail string `json:"detail,omitempty"`
}

// Outcome summarises the sync of one destination.
type Outcome struct {
	Instance string `json:"instance"`
	Server   string `json:"server,omitempty"`
	DryRun   bool   `json:"dry_run"`
	Snapshot string `json:"snapshot,omitempty"`
	Created  int    `json:"created"`
	Updated  int    `json:"updated"`
	Removed  int    `json:"removed"`
	// Skipped counts skipped entries by reason.
	Skipped  map[string]int `json:"skipped,omitempty"`
	Failed   int            `json:"failed"`
	Deferred int            `json:"deferred"`
	// Held is set when a guard held the plan back: its id, for `fediops blocklist apply --plan`.
	Held       string   `json:"held_plan,omitempty"`
	HeldReason string   `json:"held_reason,omitempty"`
	Stopped    string   `json:"stopped,omitempty"`
	Warnings   []string `json:"warnings,omitempty"`
	// FollowProtected names the domains whose severity was capped because of follows.
	FollowProtected []string       `json:"follow_protected,omitempty"`
	Results         []ActionResult `json:"-"`
	Plan            *plan.Plan     `json:"-"`
}

func (o *Outcome) skip(reason string) {
	if o.Skipped == nil {
		o.Skipped = map[string]int{}
	}
	o.Skipped[reason]++
}

// Desired is the merged list to apply, with the allowlist.
type Desired struct {
	Blocks  []plan.Desired
	Allowed func(domain string) bool
}

const defaultStopBefore = 20 * time.Second

// Sync brings one destination in line with the merged list: it resumes unfinished work from
// a checkpoint, reads the instance's blocks, plans, checks the guards and applies, within the
// rate-limit budget and the deadline. What does not fit is checkpointed for the next run.
// The error is non-nil only for failures worth retrying soon.
func Sync(ctx context.Context, d Deps, dest Destination, want Desired, snap *Snapshot, runID string) (*Outcome, error) {
	out := &Outcome{Instance: dest.Name, DryRun: dest.DryRun, Snapshot: snap.ID}
	log := d.Log.With("instance", dest.Name, "dry_run", dest.DryRun)
	if dest.StopBefore == 0 {
		dest.StopBefore = defaultStopBefore
	}
	lease, err := archive.AcquireLease(ctx, d.Store, "blocklist/"+dest.Name, runID, d.Clock.Now(), dest.LeaseTTL)
	if errors.Is(err, archive.ErrLeaseHeld) {
		out.Stopped = "another run holds the lease"
		log.Info("blocklist sync skipped: another run is working on this instance", "reason", err.Error())
		return out, nil
	}
	if err != nil {
		return out, fmt.Errorf("blocklist %s: %w", dest.Name, err)
	}
	defer func() { _ = lease.Release(context.WithoutCancel(ctx)) }()

	ss := &stateStore{store: d.Store, instance: dest.Name}
	st, err := ss.loadState(ctx)
	if err != nil {
		return out, err
	}
	var ckpt *Checkpoint
	if !dest.DryRun {
		if ckpt, err = ss.loadCheckpoint(ctx); err != nil {
			return out, err
		}
	}
	// The previous run may have spent this window's budget: wait for the reset, or stop
	// without a request if the deadline does not allow it (no 429 in normal operation).
	if st.Rate != nil {
		if stop := waitForWindow(ctx, d.Clock, *st.Rate, 2, dest.StopBefore); stop != "" {
			out.Stopped = stop
			if ckpt != nil {
				out.Deferred = len(ckpt.Remaining)
			}
			log.Info("the rate-limit window is still exhausted; the next run continues")
			return out, nil
		}
	}

	srv, err := dest.Client.Server(ctx)
	if err != nil {
		if mastodon.IsRateLimited(err) {
			out.Stopped = "rate limit budget spent"
			return out, nil
		}
		return out, fmt.Errorf("blocklist %s: %w", dest.Name, err)
	}
	out.Server = srv.String()
	dest.Plan.Caps = capabilities(srv)
	dest.Plan.Allowed = want.Allowed
	a := &applier{d: d, dest: dest, out: out, state: st, log: log, srv: srv}

	// 1. Unfinished work first.
	if ckpt != nil {
		log.Info(fmt.Sprintf("resuming %d unfinished action(s) of plan %s", len(ckpt.Remaining), ckpt.PlanID))
		rest := a.applyAll(ctx, ckpt.Remaining)
		if err := a.finish(ctx, ss, snap, ckpt.PlanID, rest, ckpt.Done+len(ckpt.Remaining)-len(rest), "resume-"); err != nil {
			return out, err
		}
		if len(rest) > 0 || a.fatal != nil {
			return out, a.fatal
		}
	}

	// 2. Read, plan, guard.
	current, _, err := dest.Client.DomainBlocks(ctx)
	if err != nil {
		if mastodon.IsRateLimited(err) {
			out.Stopped = "rate limit budget spent"
			rate := dest.Client.Rate()
			st.Rate = &rate
			return out, ss.saveState(context.WithoutCancel(ctx), st)
		}
		return out, fmt.Errorf("blocklist %s: %w", dest.Name, err)
	}
	existing := ToExisting(current, srv)
	_ = snap.PutJSON(ctx, dest.Name+"/before.json", current)
	p := plan.Compute(existing, want.Blocks, st.Owned, dest.Plan)
	out.Plan = p
	for _, s := range p.Skipped {
		out.skip(s.Reason)
	}
	_ = snap.PutJSON(ctx, dest.Name+"/plan.json", p)
	planID := PlanID(dest.Name, p.Actions)

	if dest.DryRun {
		for _, act := range p.Actions {
			a.record(act, ResultWould, "")
			a.count(act)
		}
		log.Info(fmt.Sprintf("dry run: %d action(s) planned, nothing changed", len(p.Actions)))
		return out, a.archiveResults(ctx, snap)
	}
	if reason := guard(p, dest); reason != "" && len(p.Actions) > 0 {
		held, err := holdPlan(ctx, d, dest.Name, planID, reason, p.Actions, snap)
		if err != nil {
			return out, err
		}
		out.Held, out.HeldReason = held, reason
		log.Error(fmt.Sprintf("blocklist plan %s for %s held back: %s; nothing was applied. Review it and apply with `fediops blocklist apply --plan %s` or a Pub/Sub message {\"apply_plan\": %q}",
			held, dest.Name, reason, held, held),
			"plan", held, "creates", p.Count(plan.Create), "updates", p.Count(plan.Update), "removals", p.Count(plan.Remove), "blocks", p.Blocks)
		return out, a.archiveResults(ctx, snap)
	}

	// 3. Apply.
	rest := a.applyAll(ctx, p.Actions)
	if err := a.finish(ctx, ss, snap, planID, rest, len(p.Actions)-len(rest), ""); err != nil {
		return out, err
	}
	return out, a.fatal
}

// ApplyHeld applies a plan that a guard held back (`fediops blocklist apply --plan ID` or a
// Pub/Sub message {"apply_plan": ID}). It runs like a checkpoint: within the budget, the rest
// resumed by the next run. Applying a plan twice is refused.
func ApplyHeld(ctx context.Context, d Deps, dest Destination, planID string, snap *Snapshot, runID string) (*Outcome, error) {
	out := &Outcome{Instance: dest.Name, Snapshot: snap.ID}
	b, err := d.Store.Read(ctx, pendingKey(dest.Name, planID))
	if errors.Is(err, archive.ErrNotFound) {
		return out, fmt.Errorf("no held plan %s for %s", planID, dest.Name)
	}
	if err != nil {
		return out, err
	}
	var pp PendingPlan
	if err := json.Unmarshal(b, &pp); err != nil {
		return out, fmt.Errorf("held plan %s is corrupt: %w", planID, err)
	}
	if _, err := d.Store.Read(ctx, appliedKey(dest.Name, planID)); err == nil {
		return out, fmt.Errorf("plan %s was already applied", planID)
	}
	lease, err := archive.AcquireLease(ctx, d.Store, "blocklist/"+dest.Name, runID, d.Clock.Now(), dest.LeaseTTL)
	if err != nil {
		return out, fmt.Errorf("blocklist %s: %w", dest.Name, err)
	}
	defer func() { _ = lease.Release(context.WithoutCancel(ctx)) }()
	if err := d.Store.Create(ctx, appliedKey(dest.Name, planID), []byte(d.Clock.Now().UTC().Format(time.RFC3339))); err != nil {
		return out, fmt.Errorf("plan %s: %w", planID, err)
	}
	srv, err := dest.Client.Server(ctx)
	if err != nil {
		return out, err
	}
	out.Server = srv.String()
	dest.Plan.Caps = capabilities(srv)
	ss := &stateStore{store: d.Store, instance: dest.Name}
	st, err := ss.loadState(ctx)
	if err != nil {
		return out, err
	}
	if _, err := ss.loadCheckpoint(ctx); err != nil { // learn its generation
		return out, err
	}
	a := &applier{d: d, dest: dest, out: out, state: st, log: d.Log.With("instance", dest.Name, "plan", planID), srv: srv}
	rest := a.applyAll(ctx, pp.Actions)
	if err := a.finish(ctx, ss, snap, planID, rest, len(pp.Actions)-len(rest), ""); err != nil {
		return out, err
	}
	return out, a.fatal
}

// capabilities says what a server can do: Mastodon has severities and PUT; GoToSocial
// (before 0.19) neither.
func capabilities(srv mastodon.Server) plan.Capabilities {
	m := srv.Software == mastodon.Mastodon
	return plan.Capabilities{Severities: m, Update: m}
}

// guard returns why a plan must not be applied unattended, or "".
func guard(p *plan.Plan, dest Destination) string {
	removals := p.Count(plan.Remove)
	if dest.MaxRemovals >= 0 && removals > dest.MaxRemovals {
		return fmt.Sprintf("it would remove %d blocks (max_removals = %d)", removals, dest.MaxRemovals)
	}
	if dest.InitialImport && p.Owned == 0 {
		return ""
	}
	changes := len(p.Actions)
	pct := 100.0
	if p.Blocks > 0 {
		pct = 100 * float64(changes) / float64(p.Blocks)
	}
	if changes > 0 && pct > dest.MaxChangePct {
		return fmt.Sprintf("it would change %d of the instance's %d blocks (%.0f%% > max_change_pct = %g)", changes, p.Blocks, pct, dest.MaxChangePct)
	}
	return ""
}

// PlanID identifies a plan by its content, so that the same held plan is not archived twice.
func PlanID(instance string, actions []plan.Action) string {
	h := sha256.New()
	h.Write([]byte(instance))
	for _, a := range actions {
		b, _ := json.Marshal(a)
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

func holdPlan(ctx context.Context, d Deps, instance, id, reason string, actions []plan.Action, snap *Snapshot) (string, error) {
	pp := PendingPlan{ID: id, Instance: instance, Created: d.Clock.Now().UTC(), Snapshot: snap.ID, Reason: reason, Actions: actions}
	b, err := json.MarshalIndent(pp, "", "  ")
	if err != nil {
		return "", err
	}
	if err := d.Store.Create(ctx, pendingKey(instance, id), b); err != nil && !errors.Is(err, archive.ErrExists) {
		return "", fmt.Errorf("archive held plan: %w", err)
	}
	return id, nil
}

// ToExisting converts a server's blocks for planning: domains normalised (GoToSocial
// returns Unicode), GoToSocial blocks read as suspensions.
func ToExisting(blocks []mastodon.DomainBlock, srv mastodon.Server) []plan.Existing {
	out := make([]plan.Existing, 0, len(blocks))
	for _, b := range blocks {
		out = append(out, toExisting(b, srv))
	}
	return out
}

func toExisting(b mastodon.DomainBlock, srv mastodon.Server) plan.Existing {
	d, err := domain.Normalize(b.Domain)
	if err != nil {
		d = strings.ToLower(strings.TrimSpace(b.Domain))
	}
	sev, err := lists.ParseSeverity(b.Severity)
	if err != nil || srv.Software == mastodon.GoToSocial || b.Severity == "" {
		sev = lists.Suspend
	}
	return plan.Existing{ID: b.ID, Domain: d, PrivateComment: b.PrivateComment, Fields: plan.Fields{
		Severity: sev, RejectMedia: b.RejectMedia, RejectReports: b.RejectReports, Obfuscate: b.Obfuscate, PublicComment: b.PublicComment,
	}}
}

// applier executes actions and records what happened.
type applier struct {
	d     Deps
	dest  Destination
	out   *Outcome
	state *State
	log   *slog.Logger
	srv   mastodon.Server
	// fatal is the error that stopped the run, if it is worth a retry.
	fatal error
	// noMeasures is set once the server turned out to have no measures.
	noMeasures bool
}

func (a *applier) record(act plan.Action, result, detail string) {
	a.out.Results = append(a.out.Results, ActionResult{Action: act, Result: result, Detail: detail})
}

func (a *applier) count(act plan.Action) {
	switch act.Kind {
	case plan.Create:
		a.out.Created++
	case plan.Update:
		a.out.Updated++
	case plan.Remove:
		a.out.Removed++
	}
}

// applyAll applies actions in order and returns those not done (deferred to the next run).
func (a *applier) applyAll(ctx context.Context, actions []plan.Action) []plan.Action {
	for i, act := range actions {
		if reason := a.mustStop(ctx, act); reason != "" {
			a.out.Stopped = reason
			a.out.Deferred += len(actions) - i
			for _, r := range actions[i:] {
				a.record(r, ResultDeferred, reason)
			}
			return actions[i:]
		}
		stop := a.apply(ctx, act)
		if stop != "" {
			a.out.Stopped = stop
			a.out.Deferred += len(actions) - i
			for _, r := range actions[i:] {
				a.record(r, ResultDeferred, stop)
			}
			return actions[i:]
		}
	}
	return nil
}

// requestsFor is how many requests an action takes.
func (a *applier) requestsFor(act plan.Action) int {
	if act.FollowCheck && !a.noMeasures {
		return 2
	}
	return 1
}

// mustStop says why the next action must not start: too close to the deadline, or not enough
// rate-limit budget left in this window and no time to wait for the next one.
func (a *applier) mustStop(ctx context.Context, act plan.Action) string {
	left, hasDeadline := clock.Remaining(ctx, a.d.Clock)
	if hasDeadline && left < a.dest.StopBefore {
		return "deadline near"
	}
	return waitForWindow(ctx, a.d.Clock, a.dest.Client.Rate(), a.requestsFor(act), a.dest.StopBefore)
}

// waitForWindow makes sure need requests fit in the rate-limit budget: if the window has
// fewer left, it sleeps until the reset when the deadline allows, else it returns a stop reason.
func waitForWindow(ctx context.Context, c clock.Clock, r mastodon.Rate, need int, margin time.Duration) string {
	now := c.Now()
	if !r.Known || r.Remaining >= need || !r.Reset.After(now) {
		return ""
	}
	wait := r.Reset.Sub(now) + time.Second
	if left, ok := clock.Remaining(ctx, c); ok && wait > left-margin {
		return "rate limit budget spent"
	}
	if err := c.Sleep(ctx, wait); err != nil {
		return "cancelled"
	}
	return ""
}

// apply performs one action; it returns a stop reason if the run cannot go on.
func (a *applier) apply(ctx context.Context, act plan.Action) string {
	if act.FollowCheck && act.To != nil && !a.noMeasures {
		capped, stop := a.followCheck(ctx, &act)
		if stop != "" {
			return stop
		}
		if capped && act.Kind == plan.Update && act.From != nil && act.To.Severity == act.From.Severity {
			act.Changed = slices.DeleteFunc(slices.Clone(act.Changed), func(f string) bool { return f == plan.FieldSeverity })
			if len(act.Changed) == 0 && !act.Adopt {
				a.record(act, ResultFollowCap, "severity kept because local users follow accounts there")
				return ""
			}
		}
	}
	var err error
	switch act.Kind {
	case plan.Create:
		err = a.create(ctx, act)
	case plan.Update:
		err = a.update(ctx, act)
	case plan.Remove:
		err = a.dest.Client.DeleteDomainBlock(ctx, act.ID)
		if mastodon.StatusOf(err) == http.StatusNotFound {
			err = nil // removed meanwhile: the goal is reached
		}
		if err == nil {
			delete(a.state.Owned, act.Domain)
			a.record(act, ResultDone, "")
			a.count(act)
		}
	}
	if err == nil {
		return ""
	}
	if mastodon.IsRateLimited(err) {
		return "rate limit budget spent"
	}
	if ctx.Err() != nil {
		return "cancelled"
	}
	a.out.Failed++
	a.record(act, ResultFailed, err.Error())
	a.log.Error(fmt.Sprintf("%s %s failed: %v", act.Kind, act.Domain, err), "domain", act.Domain, "action", string(act.Kind))
	if s := mastodon.StatusOf(err); s >= 400 && s < 500 {
		return "" // this action is wrong, not the server: go on with the others
	}
	a.fatal = fmt.Errorf("blocklist %s: %w", a.dest.Name, err)
	return "server error"
}

// followCheck asks the instance whether local users follow accounts on the domain, or are
// followed from it, and caps the severity if so. A server without measures skips the check
// (with a warning); any other failure caps the severity: never suspend on a guess.
func (a *applier) followCheck(ctx context.Context, act *plan.Action) (bool, string) {
	now := a.d.Clock.Now()
	f, err := a.dest.Client.DomainFollows(ctx, act.Domain, now.AddDate(0, -1, 0), now)
	switch {
	case errors.Is(err, mastodon.ErrUnsupported):
		a.noMeasures = true
		a.out.Warnings = append(a.out.Warnings, "the server has no measures API: follow protection was not checked")
		return false, ""
	case mastodon.IsRateLimited(err):
		return false, "rate limit budget spent"
	case err != nil:
		a.capSeverity(act, fmt.Sprintf("could not check follows (%v)", err))
		return true, ""
	case f.Follows > 0 || f.Followers > 0:
		a.capSeverity(act, fmt.Sprintf("%d follow(s) of accounts there and %d follower(s) from there", f.Follows, f.Followers))
		return true, ""
	}
	return false, ""
}

func (a *applier) capSeverity(act *plan.Action, why string) {
	max := a.dest.Plan.MaxFollowedSeverity
	if act.To.Severity <= max {
		return
	}
	to := *act.To
	to.Severity = max
	act.To = &to
	a.out.FollowProtected = append(a.out.FollowProtected, act.Domain)
	a.log.Warn(fmt.Sprintf("%s: limited to %s instead of suspending: %s", act.Domain, max, why), "domain", act.Domain)
}

func params(f plan.Fields, fields []string, caps plan.Capabilities) mastodon.DomainBlockParams {
	var p mastodon.DomainBlockParams
	for _, name := range fields {
		switch name {
		case plan.FieldSeverity:
			if caps.Severities {
				s := f.Severity.String()
				p.Severity = &s
			}
		case plan.FieldRejectMedia:
			v := f.RejectMedia
			p.RejectMedia = &v
		case plan.FieldRejectReports:
			v := f.RejectReports
			p.RejectReports = &v
		case plan.FieldObfuscate:
			v := f.Obfuscate
			p.Obfuscate = &v
		case plan.FieldPublicComment:
			v := f.PublicComment
			p.PublicComment = &v
		}
	}
	return p
}

var allFields = []string{plan.FieldSeverity, plan.FieldRejectMedia, plan.FieldRejectReports, plan.FieldObfuscate, plan.FieldPublicComment}

func (a *applier) own(b mastodon.DomainBlock, act plan.Action) {
	e := toExisting(b, a.srv)
	a.state.Owned[e.Domain] = plan.Owned{ID: b.ID, Domain: e.Domain, Applied: e.Fields, Sources: act.Sources}
}

func (a *applier) create(ctx context.Context, act plan.Action) error {
	p := params(*act.To, allFields, a.dest.Plan.Caps)
	p.Domain = act.Domain
	comment := act.PrivateComment
	p.PrivateComment = &comment
	b, err := a.dest.Client.CreateDomainBlock(ctx, p)
	var ce *mastodon.ConflictError
	if errors.As(err, &ce) {
		return a.conflict(ctx, act, ce)
	}
	if err != nil {
		return err
	}
	if !a.dest.Plan.Owns(b.PrivateComment) {
		// GoToSocial answers a duplicate create with the existing block: someone else's.
		a.out.skip(plan.SkipManual)
		a.record(act, ResultSkipped, "a block created by someone else exists; left alone")
		return nil
	}
	a.own(b, act)
	a.record(act, ResultDone, "")
	a.count(act)
	return nil
}

// conflict handles Mastodon's 422 on create: someone created the block meanwhile (or our own
// earlier attempt did, when its answer was lost). The domain is planned again against what
// exists now.
func (a *applier) conflict(ctx context.Context, act plan.Action, ce *mastodon.ConflictError) error {
	e := toExisting(ce.Existing, a.srv)
	if e.Domain != act.Domain {
		a.out.skip(plan.SkipCoveredByParent)
		a.record(act, ResultSkipped, "the existing block on "+e.Domain+" covers it")
		return nil
	}
	want := plan.Desired{Block: lists.Block{Domain: act.Domain, Severity: act.To.Severity, RejectMedia: act.To.RejectMedia,
		RejectReports: act.To.RejectReports, Obfuscate: act.To.Obfuscate, PublicComment: act.To.PublicComment}, Sources: act.Sources}
	o := a.dest.Plan
	o.RemoveRetracted = false
	re := plan.Compute([]plan.Existing{e}, []plan.Desired{want}, nil, o)
	if len(re.Actions) == 0 {
		if o.Owns(e.PrivateComment) {
			a.state.Owned[e.Domain] = plan.Owned{ID: e.ID, Domain: e.Domain, Applied: e.Fields, Sources: act.Sources}
			a.record(act, ResultDone, "already created (an earlier attempt's answer was lost)")
			a.count(act)
			return nil
		}
		for _, s := range re.Skipped {
			a.out.skip(s.Reason)
		}
		a.record(act, ResultSkipped, "created by someone else meanwhile; left alone")
		return nil
	}
	next := re.Actions[0]
	next.FollowCheck = false // the severity was checked already
	return a.update(ctx, next)
}

func (a *applier) update(ctx context.Context, act plan.Action) error {
	if !a.dest.Plan.Caps.Update {
		a.out.skip(plan.SkipUnsupportedUpd)
		a.record(act, ResultUnsupported, "the server cannot update a block")
		return nil
	}
	p := params(*act.To, act.Changed, a.dest.Plan.Caps)
	if act.Adopt {
		c := act.PrivateComment
		p.PrivateComment = &c
	}
	b, err := a.dest.Client.UpdateDomainBlock(ctx, act.ID, p)
	if mastodon.StatusOf(err) == http.StatusNotFound {
		delete(a.state.Owned, act.Domain)
		a.out.skip("removed_meanwhile")
		a.record(act, ResultSkipped, "the block was removed meanwhile")
		return nil
	}
	if err != nil {
		return err
	}
	a.own(b, act)
	a.record(act, ResultDone, "")
	a.count(act)
	return nil
}

// finish saves the checkpoint (rest), the state and the run's results.
func (a *applier) finish(ctx context.Context, ss *stateStore, snap *Snapshot, planID string, rest []plan.Action, done int, prefix string) error {
	ctx = context.WithoutCancel(ctx)
	var ckpt *Checkpoint
	if len(rest) > 0 {
		ckpt = &Checkpoint{PlanID: planID, Created: a.d.Clock.Now().UTC(), Remaining: rest, Done: done}
		a.log.Info(fmt.Sprintf("%d action(s) left for the next run (%s)", len(rest), a.out.Stopped))
	}
	if err := ss.saveCheckpoint(ctx, ckpt); err != nil {
		return err
	}
	a.state.Updated = a.d.Clock.Now().UTC()
	rate := a.dest.Client.Rate()
	a.state.Rate = &rate
	if err := ss.saveState(ctx, a.state); err != nil {
		return err
	}
	if err := snap.PutJSON(ctx, a.dest.Name+"/"+prefix+"state.json", a.state); err != nil && !errors.Is(err, archive.ErrExists) {
		return err
	}
	return a.archiveResults(ctx, snap)
}

func (a *applier) archiveResults(ctx context.Context, snap *Snapshot) error {
	name := a.dest.Name + "/results.json"
	err := snap.PutJSON(context.WithoutCancel(ctx), name, struct {
		Outcome *Outcome       `json:"outcome"`
		Results []ActionResult `json:"results"`
	}{a.out, a.out.Results})
	if errors.Is(err, archive.ErrExists) {
		// A resumed checkpoint and a new plan in one run: keep both.
		err = snap.PutJSON(context.WithoutCancel(ctx), a.dest.Name+"/results-"+fmt.Sprint(a.d.Clock.Now().UnixNano())+".json", a.out.Results)
	}
	return err
}

// SortedReasons returns the skip reasons of an outcome in a stable order.
func (o *Outcome) SortedReasons() []string {
	var r []string
	for k := range o.Skipped {
		r = append(r, k)
	}
	sort.Strings(r)
	return r
}

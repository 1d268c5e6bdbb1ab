package blocklist

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/fediops/fediops/functions/blocklist/plan"
	"github.com/fediops/fediops/shared/archive"
	"github.com/fediops/fediops/shared/run"
)

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

// planIDOf identifies a plan by its content, so that the same held plan is not archived twice.
func planIDOf(instance string, actions []plan.Action) string {
	return archive.ContentID(instance, actions)
}

// heldPlan is a plan a guard held back: the intent an admin approves, and the actions it
// meant when it was held (for people; applying plans the intent again).
type heldPlan struct {
	ID       string        `json:"id"`
	Instance string        `json:"instance"`
	Created  time.Time     `json:"created"`
	Snapshot string        `json:"snapshot"`
	Reason   string        `json:"reason"`
	Intent   *Intent       `json:"intent,omitempty"`
	Actions  []plan.Action `json:"actions"`
}

// intent returns what the plan approves (plans held before intents were stored: their actions).
func (h *heldPlan) approved() Intent {
	if h.Intent != nil {
		return *h.Intent
	}
	return intentOf(h.Actions, BasisLists)
}

func (s *session) hold(ctx context.Context, id, reason string, p *plan.Plan, basis Basis) error {
	in := intentOf(p.Actions, basis)
	hp := heldPlan{ID: id, Instance: s.dest.Name, Created: s.d.Clock.Now().UTC(), Snapshot: s.snap.ID, Reason: reason, Intent: &in, Actions: p.Actions}
	b, err := json.MarshalIndent(hp, "", "  ")
	if err != nil {
		return err
	}
	if err := s.r.Fence(ctx); err != nil {
		return s.archiveResults(ctx)
	}
	if err := s.d.Store.Create(context.WithoutCancel(ctx), heldKey(s.dest.Name, id), b); err != nil && !errors.Is(err, archive.ErrExists) {
		return fmt.Errorf("archive held plan: %w", err)
	}
	s.out.Held, s.out.HeldReason = id, reason
	s.log.Error(fmt.Sprintf("blocklist plan %s for %s held back: %s; nothing was applied. Review it and apply with `fediops blocklist apply --plan %s` or a Pub/Sub message {\"apply_plan\": %q}",
		id, s.dest.Name, reason, id, id),
		"plan", id, "creates", p.Count(plan.Create), "updates", p.Count(plan.Update), "removals", p.Count(plan.Remove), "blocks", p.Blocks)
	return s.archiveResults(ctx)
}

// ErrAlreadyApplied says a held plan was applied before (a repeated command or message).
var ErrAlreadyApplied = errors.New("already applied")

// ApplyHeld applies a plan that a guard held back (`fediops blocklist apply --plan ID` or a
// Pub/Sub message {"apply_plan": ID}). Its intent is planned again against the instance's
// blocks now (and, with fresh, today's merged list) and applied within the budget. The plan
// is marked applied only when its work is done or kept as intent for the next run; after a
// server failure it is not, and the error is returned, so that a redelivered message carries
// on. Applying it again afterwards does nothing and says so (ErrAlreadyApplied).
func ApplyHeld(ctx context.Context, d Deps, dest Destination, planID string, fresh *Desired, snap *Snapshot, runID string) (*Outcome, error) {
	hp, err := readHeld(ctx, d.Store, dest.Name, planID)
	if err != nil {
		return &Outcome{Instance: dest.Name, Snapshot: snap.ID}, err
	}
	dest.DryRun = false
	s, out, err := open(ctx, d, dest, snap, runID)
	if s == nil {
		if err == nil { // the lease is held: try again later
			err = fmt.Errorf("blocklist %s: plan %s: %w", dest.Name, planID, errLeaseHeld)
		}
		return out, err
	}
	defer s.end(ctx)
	if _, err := d.Store.Read(ctx, appliedKey(dest.Name, planID)); err == nil {
		return out, run.MarkPermanent(fmt.Errorf("plan %s for %s: %w", planID, dest.Name, ErrAlreadyApplied))
	}
	if err := s.prepare(ctx); err != nil {
		return out, heldStop(dest.Name, planID, err)
	}
	if s.ckpt != nil { // unfinished work first, as in every run
		if done, err := s.resume(ctx, fresh); err != nil || !done {
			return out, heldStop(dest.Name, planID, err)
		}
	}
	s.log = s.log.With("plan", planID)
	current, err := s.read(ctx)
	if err != nil {
		return out, heldStop(dest.Name, planID, err)
	}
	in := hp.approved()
	p := planIntent(existingOf(current, s.srv), in, fresh, s.state.Owned, s.dest.Plan)
	s.out.Plan = p
	s.countSkips(p)
	rest := s.applyAll(ctx, p.Actions)
	if err := s.finish(ctx, planID, in.Basis, rest); err != nil {
		return out, err
	}
	if s.fatal != nil || s.r.Lost() {
		if s.fatal == nil {
			return out, fmt.Errorf("blocklist %s: plan %s: %w", dest.Name, planID, run.Stop(run.LeaseLost, nil))
		}
		return out, fmtErr(dest.Name, s.fatal)
	}
	if err := d.Store.Create(context.WithoutCancel(ctx), appliedKey(dest.Name, planID), []byte(d.Clock.Now().UTC().Format(time.RFC3339))); err != nil && !errors.Is(err, archive.ErrExists) {
		return out, fmt.Errorf("plan %s: mark applied: %w", planID, err)
	}
	return out, nil
}

// heldStop is the error of an apply that could not start: the run had to stop (budget,
// deadline, lease), or earlier unfinished work is not done yet. It is worth a retry: a
// redelivered message tries again.
func heldStop(instance, planID string, err error) error {
	if err == nil {
		err = run.Stop(run.BudgetSpent, errors.New("earlier unfinished work is not done yet"))
	}
	return fmt.Errorf("blocklist %s: plan %s not applied yet: %w", instance, planID, err)
}

func readHeld(ctx context.Context, store archive.Store, instance, id string) (*heldPlan, error) {
	b, err := store.Read(ctx, heldKey(instance, id))
	if errors.Is(err, archive.ErrNotFound) {
		return nil, run.MarkPermanent(fmt.Errorf("no held plan %s for %s", id, instance))
	}
	if err != nil {
		return nil, err
	}
	var hp heldPlan
	if err := json.Unmarshal(b, &hp); err != nil {
		return nil, run.MarkPermanent(fmt.Errorf("held plan %s is corrupt: %w", id, err))
	}
	return &hp, nil
}

package blocklist

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/fediops/fediops/functions/blocklist/plan"
	"github.com/fediops/fediops/shared/archive"
	"github.com/fediops/fediops/shared/mastodon"
	"github.com/fediops/fediops/shared/run"
)

// session is one run's work on one destination: its lease, its state, what it read from the
// server and what it did.
type session struct {
	d     Deps
	dest  Destination
	r     *run.Run
	out   *Outcome
	snap  *Snapshot
	ss    *stateStore
	state *State
	ckpt  *checkpoint
	srv   mastodon.Server
	log   *slog.Logger
	// fatal is the server error that stopped the run, if it is worth a retry.
	fatal error
	// noMeasures is set once the server turned out to have no measures.
	noMeasures  bool
	done, total int
}

// open takes the destination's lease. It returns no session when there is nothing to do: the
// destination is broken (its error) or another run holds the lease (the outcome says so).
func open(ctx context.Context, d Deps, dest Destination, snap *Snapshot, runID string) (*session, *Outcome, error) {
	out := &Outcome{Instance: dest.Name, DryRun: dest.DryRun, Snapshot: snap.ID}
	log := d.Log.With("instance", dest.Name, "dry_run", dest.DryRun)
	if dest.Err != nil {
		out.Error = dest.Err.Error()
		return nil, out, dest.Err
	}
	s := &session{d: d, dest: dest, out: out, snap: snap, log: log, ss: &stateStore{store: d.Store, instance: dest.Name}}
	r, err := run.Start(ctx, run.Options{Store: d.Store, Clock: d.Clock, Log: log, Lease: leaseName(dest.Name), Holder: runID,
		TTL: dest.LeaseTTL, StopBefore: dest.StopBefore, OnWait: s.waiting})
	if reason, ok := run.ReasonOf(err); ok {
		out.Stopped = reason
		log.Info("blocklist sync skipped: another run is working on this instance", "reason", err.Error())
		return nil, out, nil
	}
	if err != nil {
		return nil, out, fmtErr(dest.Name, err)
	}
	s.r = r
	return s, out, nil
}

func (s *session) waiting(until time.Time) {
	if s.d.Progress != nil {
		s.d.Progress.Waiting(s.dest.Name, until)
	}
}

// end releases the lease; a lease another run took over is reported.
func (s *session) end(ctx context.Context) {
	if err := s.r.End(ctx); errors.Is(err, archive.ErrLeaseLost) && s.out.Stopped != run.LeaseLost {
		s.out.Stopped = run.LeaseLost
		s.log.Error("blocklist sync finished without its lease: another run took it over meanwhile", "stopped", string(run.LeaseLost))
	}
}

// prepare loads the state and the unfinished work, waits out a rate-limit window the
// previous run spent, and learns what the server can do.
func (s *session) prepare(ctx context.Context) error {
	st, err := s.ss.loadState(ctx)
	if err != nil {
		return err
	}
	s.state = st
	if !s.dest.DryRun {
		if s.ckpt, err = s.ss.loadCheckpoint(ctx); err != nil {
			return err
		}
	}
	if st.Rate != nil {
		if err := s.r.Reserve(ctx, *st.Rate, 2); err != nil {
			if s.ckpt != nil {
				s.out.Deferred = s.ckpt.Intent.Len()
			}
			return err
		}
	}
	err = s.r.Call(ctx, func() (err error) {
		s.srv, err = s.dest.Client.Server(ctx)
		return err
	})
	if err != nil {
		return err
	}
	s.out.Server = s.srv.String()
	s.dest.Plan.Caps = capabilities(s.srv)
	return nil
}

// stopOr turns a stop into the outcome (the next run continues) and returns other errors.
func (s *session) stopOr(ctx context.Context, err error) (*Outcome, error) {
	reason, ok := run.ReasonOf(err)
	if !ok {
		if err != nil {
			return s.out, fmtErr(s.dest.Name, err)
		}
		return s.out, nil
	}
	if s.out.Stopped == "" {
		s.out.Stopped = reason
	}
	if reason == run.BudgetSpent && s.state != nil && !s.r.Lost() {
		// Remember the spent window, so that the next run does not start into it.
		if err := s.saveState(context.WithoutCancel(ctx)); err != nil {
			return s.out, err
		}
	}
	return s.out, nil
}

// read returns the instance's blocks now.
func (s *session) read(ctx context.Context) ([]mastodon.DomainBlock, error) {
	var blocks []mastodon.DomainBlock
	err := s.r.Call(ctx, func() (err error) {
		blocks, _, err = s.dest.Client.DomainBlocks(ctx)
		return err
	})
	return blocks, err
}

// resume plans the unfinished work again against the instance's blocks now and applies it.
// It reports whether that work is done.
func (s *session) resume(ctx context.Context, want *Desired) (bool, error) {
	current, err := s.read(ctx)
	if err != nil {
		return false, err
	}
	p := planIntent(existingOf(current, s.srv), s.ckpt.Intent, want, s.state.Owned, s.dest.Plan)
	s.countSkips(p)
	s.log.Info(fmt.Sprintf("resuming plan %s: %d domain(s) left, %d action(s) after planning them again against the instance's blocks",
		s.ckpt.PlanID, s.ckpt.Intent.Len(), len(p.Actions)), "plan", s.ckpt.PlanID)
	rest := s.applyAll(ctx, p.Actions)
	if err := s.finish(ctx, s.ckpt.PlanID, s.ckpt.Intent.Basis, rest); err != nil {
		return false, err
	}
	return len(rest) == 0 && s.fatal == nil, s.fatal
}

// planFresh reads the instance's blocks and plans the merged list against them.
func (s *session) planFresh(ctx context.Context, want Desired) (*plan.Plan, error) {
	current, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	s.archive(ctx, "before.json", current)
	opts := s.dest.Plan
	opts.Allowed, opts.Unread = want.Allowed, want.Unread
	p := plan.Compute(existingOf(current, s.srv), want.Blocks, s.state.Owned, opts)
	s.out.Plan = p
	s.countSkips(p)
	s.archive(ctx, "plan.json", p)
	return p, nil
}

func (s *session) countSkips(p *plan.Plan) {
	for _, sk := range p.Skipped {
		s.out.skip(sk.Reason)
	}
}

// archive writes a snapshot object of this destination; a failure is logged, not fatal.
func (s *session) archive(ctx context.Context, name string, v any) {
	if err := s.snap.PutJSON(context.WithoutCancel(ctx), s.dest.Name+"/"+name, v); err != nil && !errors.Is(err, archive.ErrExists) {
		s.log.Warn(fmt.Sprintf("could not archive %s/%s: %v", s.dest.Name, name, err), "error", err.Error())
	}
}

func (s *session) dryRun(ctx context.Context, p *plan.Plan) error {
	for _, act := range p.Actions {
		s.record(act, ResultWould, "")
		s.count(act)
	}
	s.log.Info(fmt.Sprintf("dry run: %d action(s) planned, nothing changed", len(p.Actions)))
	return s.archiveResults(ctx)
}

// finish keeps what is left as intent for the next run (or clears it), saves the state and
// archives the run's results. A run that lost its lease writes no control object.
func (s *session) finish(ctx context.Context, planID string, basis Basis, rest []plan.Action) error {
	ctx = context.WithoutCancel(ctx)
	if s.r.Lost() {
		s.log.Error(fmt.Sprintf("%d action(s) not done and not recorded: the lease was lost; the run that holds it plans them again", len(rest)))
		return s.archiveResults(ctx)
	}
	var ckpt *checkpoint
	if len(rest) > 0 {
		ckpt = &checkpoint{PlanID: planID, Created: s.d.Clock.Now().UTC(), Intent: intentOf(rest, basis)}
		s.log.Info(fmt.Sprintf("%d action(s) left for the next run (%s)", len(rest), s.out.Stopped))
	}
	if err := s.r.Fence(ctx); err != nil {
		return s.archiveResults(ctx)
	}
	if err := s.ss.saveCheckpoint(ctx, ckpt); err != nil {
		return err
	}
	if err := s.saveState(ctx); err != nil {
		return err
	}
	s.archive(ctx, "state.json", s.state)
	return s.archiveResults(ctx)
}

func (s *session) saveState(ctx context.Context) error {
	s.state.Updated = s.d.Clock.Now().UTC()
	rate := s.dest.Client.Rate()
	s.state.Rate = &rate
	return s.ss.saveState(ctx, s.state)
}

func (s *session) archiveResults(ctx context.Context) error {
	name := s.dest.Name + "/results.json"
	err := s.snap.PutJSON(context.WithoutCancel(ctx), name, struct {
		Outcome *Outcome       `json:"outcome"`
		Results []ActionResult `json:"results"`
	}{s.out, s.out.Results})
	if errors.Is(err, archive.ErrExists) {
		// A resumed checkpoint and a new plan in one run: keep both.
		err = s.snap.PutJSON(context.WithoutCancel(ctx), s.dest.Name+"/results-"+fmt.Sprint(s.d.Clock.Now().UnixNano())+".json", s.out.Results)
	}
	return err
}

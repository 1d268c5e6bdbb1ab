package run

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/fediops/fediops/shared/archive"
	"github.com/fediops/fediops/shared/clock"
)

// DefaultStopBefore is how long before the deadline a run starts no new request. Each request
// is itself cut off at the deadline (the Mastodon client bounds every attempt by the time
// left), so this only keeps a run from starting what cannot finish.
const DefaultStopBefore = 5 * time.Second

// Options configure a Run.
type Options struct {
	Store archive.Store
	Clock clock.Clock
	Log   *slog.Logger
	// Lease names what the run works on exclusively, e.g. "triage/main".
	Lease string
	// Holder identifies the run in the lease (its run id).
	Holder string
	// TTL is how long the lease lasts without renewal; the run renews it after a third of it.
	TTL time.Duration
	// StopBefore is how long before the deadline no new request starts (DefaultStopBefore).
	StopBefore time.Duration
	// OnWait, if set, hears when the run starts waiting for a rate-limit window (progress).
	OnWait func(until time.Time)
}

// Run is one job's work on one instance: it holds the instance's lease and knows the
// deadline. It is not safe for concurrent use: a run is one sequence of requests.
type Run struct {
	o       Options
	lease   *archive.Lease
	renewed time.Time
	lost    error
}

// Start takes the lease. If another run holds it, the error is a *StopError with LeaseHeld
// (and the *archive.HeldError): nothing was done, and the caller reports that.
func Start(ctx context.Context, o Options) (*Run, error) {
	if o.StopBefore == 0 {
		o.StopBefore = DefaultStopBefore
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	now := o.Clock.Now()
	l, err := archive.AcquireLease(ctx, o.Store, o.Lease, o.Holder, now, o.TTL)
	if errors.Is(err, archive.ErrLeaseHeld) {
		return nil, Stop(LeaseHeld, err)
	}
	if err != nil {
		return nil, err
	}
	return &Run{o: o, lease: l, renewed: now}, nil
}

// Remaining returns the time left before the deadline, and whether there is one.
func (r *Run) Remaining(ctx context.Context) (time.Duration, bool) {
	return clock.Remaining(ctx, r.o.Clock)
}

// Check is asked before every request to the instance. It returns a *StopError when the run
// must stop: the context is done, the deadline is near, or the lease was lost (then it logs
// at ERROR once). It renews the lease when a third of its TTL has passed.
func (r *Run) Check(ctx context.Context) error {
	if r.lost != nil {
		return r.lost
	}
	if ctx.Err() != nil {
		return Stop(Cancelled, ctx.Err())
	}
	if left, ok := r.Remaining(ctx); ok && left < r.o.StopBefore {
		return Stop(DeadlineNear, nil)
	}
	if r.o.Clock.Now().Sub(r.renewed) >= r.o.TTL/3 {
		return r.renew(ctx)
	}
	return nil
}

// Fence proves, right before a control write (state, checkpoint, held plan), that the run
// still holds its lease: it renews the lease with a generation precondition, which fails if
// another run has written it since. A run that lost its lease must not write.
func (r *Run) Fence(ctx context.Context) error {
	if r.lost != nil {
		return r.lost
	}
	return r.renew(context.WithoutCancel(ctx))
}

func (r *Run) renew(ctx context.Context) error {
	now := r.o.Clock.Now()
	err := r.lease.Renew(ctx, now, r.o.TTL)
	switch {
	case errors.Is(err, archive.ErrPrecondition):
		r.lost = Stop(LeaseLost, fmt.Errorf("lease %s: %w", r.o.Lease, archive.ErrLeaseLost))
		r.o.Log.Error(fmt.Sprintf("lost the lease on %s: another run took it over (this run was paused past its TTL of %s); stopping before the next request",
			r.o.Lease, r.o.TTL), "lease", r.o.Lease, "stopped", string(LeaseLost))
		return r.lost
	case err != nil:
		return err
	}
	r.renewed = now
	return nil
}

// Lost reports whether the run lost its lease.
func (r *Run) Lost() bool { return r.lost != nil }

// Wait sleeps until t if the deadline allows it, renewing the lease on the way; otherwise it
// returns a *StopError with BudgetSpent. It is how a run waits for a rate-limit window.
func (r *Run) Wait(ctx context.Context, t time.Time) error {
	waiting := false
	for {
		now := r.o.Clock.Now()
		wait := t.Sub(now)
		if wait <= 0 {
			return r.Check(ctx)
		}
		if left, ok := r.Remaining(ctx); ok && wait > left-r.o.StopBefore {
			return Stop(BudgetSpent, nil)
		}
		if !waiting {
			waiting = true
			r.o.Log.Info(fmt.Sprintf("waiting for the rate-limit window until %s", t.Local().Format(time.TimeOnly)), "until", t)
			if r.o.OnWait != nil {
				r.o.OnWait(t)
			}
		}
		step := min(wait, r.o.TTL/3)
		if err := r.o.Clock.Sleep(ctx, step); err != nil {
			return Stop(Cancelled, err)
		}
		if err := r.renew(ctx); err != nil {
			return err
		}
	}
}

// Reserve makes sure need requests fit in the server's rate-limit budget: when the window has
// fewer left, it waits for the reset if the deadline allows, else it returns BudgetSpent.
// Then it checks the run as Check does.
func (r *Run) Reserve(ctx context.Context, rate Rate, need int) error {
	if rate.Spent(r.o.Clock.Now(), need) {
		if err := r.Wait(ctx, rate.Reset.Add(time.Second)); err != nil {
			return err
		}
	}
	return r.Check(ctx)
}

// Limited is implemented by errors that say the server's rate-limit budget is spent until a
// time (mastodon.RateLimitError).
type Limited interface {
	error
	LimitedUntil() time.Time
}

// Call checks the run (Check), then runs op, one request to the instance. When op fails
// because the rate-limit budget is spent (a Limited error: nothing was done), the run waits
// for the window's reset if the deadline allows and calls op again; otherwise it stops with
// BudgetSpent. This is the single place where a run waits for a rate-limit window.
func (r *Run) Call(ctx context.Context, op func() error) error {
	for {
		if err := r.Check(ctx); err != nil {
			return err
		}
		err := op()
		var l Limited
		if !errors.As(err, &l) {
			return err
		}
		if werr := r.Wait(ctx, l.LimitedUntil().Add(time.Second)); werr != nil {
			if reason, _ := ReasonOf(werr); reason == BudgetSpent {
				return Stop(BudgetSpent, err)
			}
			return werr
		}
	}
}

// End releases the lease. It returns an error wrapping archive.ErrLeaseLost if another run
// had taken the lease over.
func (r *Run) End(ctx context.Context) error {
	err := r.lease.Release(context.WithoutCancel(ctx))
	if err != nil && !errors.Is(err, archive.ErrLeaseLost) {
		r.o.Log.Warn("could not release the lease; it expires by itself", "lease", r.o.Lease, "error", err.Error())
	}
	return err
}

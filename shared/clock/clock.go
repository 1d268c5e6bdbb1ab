// Package clock abstracts time so that jobs, the Mastodon client and the test servers can share
// one notion of "now". Production code uses Real; tests drive a Fake so that rate-limit windows,
// backoffs and invocation deadlines run in simulated time.
package clock

import (
	"context"
	"sort"
	"sync"
	"time"
)

// Clock tells the time and sleeps.
type Clock interface {
	Now() time.Time
	// Sleep waits for d or until ctx is done, whichever comes first.
	Sleep(ctx context.Context, d time.Duration) error
}

// Real is the wall clock.
type Real struct{}

// Now returns time.Now().
func (Real) Now() time.Time { return time.Now() }

// Sleep waits for d or until ctx is done.
func (Real) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Fake is a manually driven clock. Sleep advances the fake time immediately by d (a sleeping
// goroutine "skips ahead"), which keeps single-goroutine tests deterministic and instantaneous.
// Advance moves time forward explicitly.
type Fake struct {
	mu     sync.Mutex
	now    time.Time
	slept  time.Duration
	sleeps []time.Duration
}

// NewFake returns a fake clock set to t.
func NewFake(t time.Time) *Fake { return &Fake{now: t} }

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// Sleep advances the fake time by d unless ctx is already done.
func (f *Fake) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d <= 0 {
		return nil
	}
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.slept += d
	f.sleeps = append(f.sleeps, d)
	f.mu.Unlock()
	return nil
}

// Advance moves the fake time forward by d.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

// Set moves the fake time to t.
func (f *Fake) Set(t time.Time) {
	f.mu.Lock()
	f.now = t
	f.mu.Unlock()
}

// Slept reports the total time spent in Sleep and each individual sleep, longest first.
func (f *Fake) Slept() (time.Duration, []time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := append([]time.Duration(nil), f.sleeps...)
	sort.Slice(s, func(i, j int) bool { return s[i] > s[j] })
	return f.slept, s
}

type deadlineKey struct{}

// WithDeadline attaches a deadline in the clock's own time to ctx. Unlike context.WithDeadline
// it cancels nothing: it tells long-running work (rate-limit waits, budgeted loops) when it must
// stop and checkpoint. Use it with a Fake clock to simulate a Cloud Functions invocation limit.
// An earlier deadline already on ctx is kept.
func WithDeadline(ctx context.Context, t time.Time) context.Context {
	if old, ok := ctx.Value(deadlineKey{}).(time.Time); ok && old.Before(t) {
		return ctx
	}
	return context.WithValue(ctx, deadlineKey{}, t)
}

// Deadline returns the earlier of ctx's own deadline and one set by WithDeadline.
func Deadline(ctx context.Context) (time.Time, bool) {
	d, ok := ctx.Deadline()
	if v, vok := ctx.Value(deadlineKey{}).(time.Time); vok && (!ok || v.Before(d)) {
		return v, true
	}
	return d, ok
}

// Remaining returns how much time is left before Deadline(ctx) according to c, and whether
// there is a deadline at all.
func Remaining(ctx context.Context, c Clock) (time.Duration, bool) {
	d, ok := Deadline(ctx)
	if !ok {
		return 0, false
	}
	return d.Sub(c.Now()), true
}

package run_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/api/googleapi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fediops/fediops/shared/archive"
	"github.com/fediops/fediops/shared/clock"
	"github.com/fediops/fediops/shared/run"
)

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func TestClassOf(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want run.Class
	}{
		{"grpc unavailable", status.Error(codes.Unavailable, "x"), run.Transient},
		{"grpc deadline", status.Error(codes.DeadlineExceeded, "x"), run.Transient},
		{"grpc internal", status.Error(codes.Internal, "x"), run.Transient},
		{"grpc resource exhausted", status.Error(codes.ResourceExhausted, "x"), run.Transient},
		{"grpc aborted", status.Error(codes.Aborted, "x"), run.Transient},
		{"grpc not found", status.Error(codes.NotFound, "x"), run.Permanent},
		{"grpc permission denied", status.Error(codes.PermissionDenied, "x"), run.Permanent},
		{"grpc unauthenticated", status.Error(codes.Unauthenticated, "x"), run.Permanent},
		{"grpc invalid argument", status.Error(codes.InvalidArgument, "x"), run.Permanent},
		{"grpc failed precondition", status.Error(codes.FailedPrecondition, "x"), run.Permanent},
		{"wrapped grpc not found", fmt.Errorf("secret sm://x: %w", status.Error(codes.NotFound, "x")), run.Permanent},
		{"http 500", &googleapi.Error{Code: 500}, run.Transient},
		{"http 503", fmt.Errorf("read: %w", &googleapi.Error{Code: 503}), run.Transient},
		{"http 429", &googleapi.Error{Code: 429}, run.Transient},
		{"http 408", &googleapi.Error{Code: 408}, run.Transient},
		{"http 403", &googleapi.Error{Code: 403}, run.Permanent},
		{"http 404", &googleapi.Error{Code: 404}, run.Permanent},
		{"timeout", context.DeadlineExceeded, run.Transient},
		{"unknown", errors.New("connection reset"), run.Transient},
		{"marked permanent", run.MarkPermanent(errors.New("bad config")), run.Permanent},
		{"marked transient wins over a code", run.MarkTransient(status.Error(codes.NotFound, "x")), run.Transient},
		{"wrapped mark", fmt.Errorf("instance a: %w", run.MarkPermanent(errors.New("x"))), run.Permanent},
		{"joined: one transient", errors.Join(run.MarkPermanent(errors.New("a")), status.Error(codes.Unavailable, "b")), run.Transient},
		{"joined: all permanent", errors.Join(run.MarkPermanent(errors.New("a")), status.Error(codes.NotFound, "b")), run.Permanent},
	}
	for _, tt := range tests {
		if got := run.ClassOf(tt.err); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
	if run.IsPermanent(nil) || run.MarkPermanent(nil) != nil {
		t.Error("nil is no failure")
	}
}

func TestMargin(t *testing.T) {
	for _, tt := range []struct{ timeout, margin time.Duration }{
		{30 * time.Second, 5 * time.Second},
		{60 * time.Second, 6 * time.Second},
		{240 * time.Second, 24 * time.Second},
		{540 * time.Second, 54 * time.Second},
		{3600 * time.Second, time.Minute},
	} {
		if got := run.Margin(tt.timeout); got != tt.margin {
			t.Errorf("Margin(%v) = %v, want %v", tt.timeout, got, tt.margin)
		}
	}
	fc := clock.NewFake(t0)
	ctx := run.WithTimeout(context.Background(), fc, 240*time.Second)
	if left, ok := clock.Remaining(ctx, fc); !ok || left != 216*time.Second {
		t.Errorf("deadline: %v %v", left, ok)
	}
	if _, ok := clock.Remaining(run.WithTimeout(context.Background(), fc, 0), fc); ok {
		t.Error("no timeout must mean no deadline")
	}
}

func start(t *testing.T, store archive.Store, fc *clock.Fake, holder string) (*run.Run, error) {
	t.Helper()
	return run.Start(context.Background(), run.Options{Store: store, Clock: fc, Lease: "blocklist/main", Holder: holder, TTL: 15 * time.Minute})
}

func newStore(t *testing.T) archive.Store {
	t.Helper()
	s, err := archive.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestLeaseIsRenewedWhileWorking: a run that keeps working past its TTL keeps its lease.
func TestLeaseIsRenewedWhileWorking(t *testing.T) {
	store, fc := newStore(t), clock.NewFake(t0)
	ctx := context.Background()
	a, err := start(t, store, fc, "a")
	if err != nil {
		t.Fatal(err)
	}
	for range 12 { // an hour of work, a request every 5 minutes
		fc.Advance(5 * time.Minute)
		if err := a.Check(ctx); err != nil {
			t.Fatalf("check: %v", err)
		}
	}
	if _, err := start(t, store, fc, "b"); !errors.Is(err, archive.ErrLeaseHeld) {
		t.Fatalf("a renewed lease was taken: %v", err)
	}
	if reason, _ := run.ReasonOf(func() error { _, err := start(t, store, fc, "b"); return err }()); reason != run.LeaseHeld {
		t.Errorf("reason = %q", reason)
	}
	if err := a.End(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := start(t, store, fc, "b"); err != nil {
		t.Fatalf("after End: %v", err)
	}
}

// TestLeaseLostStopsTheRun: a run paused past its TTL (a laptop asleep during a CLI import)
// finds another run holding the lease; it stops before its next request, cannot write, and
// End says the lease was taken over.
func TestLeaseLostStopsTheRun(t *testing.T) {
	store, fc := newStore(t), clock.NewFake(t0)
	ctx := context.Background()
	cli, err := start(t, store, fc, "cli")
	if err != nil {
		t.Fatal(err)
	}
	fc.Advance(20 * time.Minute) // paused past the 15-minute TTL
	sched, err := start(t, store, fc, "scheduled")
	if err != nil {
		t.Fatalf("the expired lease must be taken over: %v", err)
	}
	err = cli.Check(ctx)
	if reason, ok := run.ReasonOf(err); !ok || reason != run.LeaseLost || !errors.Is(err, archive.ErrLeaseLost) {
		t.Fatalf("check after takeover: %v", err)
	}
	if err := cli.Fence(ctx); err == nil || !cli.Lost() {
		t.Errorf("fence after takeover: %v", err)
	}
	if err := cli.End(ctx); !errors.Is(err, archive.ErrLeaseLost) {
		t.Errorf("End must report the takeover: %v", err)
	}
	if err := sched.Check(ctx); err != nil {
		t.Errorf("the winner was disturbed: %v", err)
	}
	if err := sched.Fence(ctx); err != nil {
		t.Errorf("the winner cannot write: %v", err)
	}
}

type limited struct{ until time.Time }

func (l limited) Error() string           { return "budget spent" }
func (l limited) LimitedUntil() time.Time { return l.until }

// TestCallWaitsForTheWindowOrStops: the governor waits for a window's reset when the deadline
// allows (renewing the lease on the way), and stops with BudgetSpent when it does not.
func TestCallWaitsForTheWindowOrStops(t *testing.T) {
	store, fc := newStore(t), clock.NewFake(t0)
	var waits []time.Time
	r, err := run.Start(context.Background(), run.Options{Store: store, Clock: fc, Lease: "x", Holder: "h", TTL: 3 * time.Minute,
		OnWait: func(u time.Time) { waits = append(waits, u) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := clock.WithDeadline(context.Background(), t0.Add(10*time.Minute))
	calls := 0
	reset := t0.Add(5 * time.Minute)
	err = r.Call(ctx, func() error {
		calls++
		if fc.Now().Before(reset) {
			return fmt.Errorf("wrapped: %w", limited{reset})
		}
		return nil
	})
	if err != nil || calls != 2 || fc.Now().Before(reset) || len(waits) == 0 {
		t.Fatalf("err %v, calls %d, now %v, waits %v", err, calls, fc.Now(), waits)
	}
	// The wait was longer than a third of the TTL: the lease was renewed on the way.
	if _, err := run.Start(context.Background(), run.Options{Store: store, Clock: fc, Lease: "x", Holder: "other", TTL: time.Minute}); !errors.Is(err, archive.ErrLeaseHeld) {
		t.Errorf("lease not renewed while waiting: %v", err)
	}
	// A reset past the deadline (less StopBefore): stop, without sleeping.
	before := fc.Now()
	err = r.Call(ctx, func() error { return limited{fc.Now().Add(time.Hour)} })
	if reason, _ := run.ReasonOf(err); reason != run.BudgetSpent || !fc.Now().Equal(before) {
		t.Errorf("err %v, slept %v", err, fc.Now().Sub(before))
	}
	var l run.Limited
	if !errors.As(err, &l) {
		t.Error("the stop does not carry the rate-limit error")
	}
}

func TestCheckStopsNearTheDeadline(t *testing.T) {
	store, fc := newStore(t), clock.NewFake(t0)
	r, err := run.Start(context.Background(), run.Options{Store: store, Clock: fc, Lease: "x", Holder: "h", TTL: time.Minute, StopBefore: 15 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := clock.WithDeadline(context.Background(), t0.Add(20*time.Second))
	if err := r.Check(ctx); err != nil {
		t.Fatalf("20s left: %v", err)
	}
	fc.Advance(6 * time.Second)
	if reason, _ := run.ReasonOf(r.Check(ctx)); reason != run.DeadlineNear {
		t.Errorf("14s left: %q", reason)
	}
	cctx, cancel := context.WithCancel(context.Background())
	cancel()
	if reason, _ := run.ReasonOf(r.Check(cctx)); reason != run.Cancelled {
		t.Errorf("cancelled: %q", reason)
	}
}

func TestRateSpent(t *testing.T) {
	tests := []struct {
		r    run.Rate
		need int
		want bool
	}{
		{run.Rate{}, 1, false},
		{run.Rate{Known: true, Remaining: 0, Reset: t0.Add(time.Minute)}, 1, true},
		{run.Rate{Known: true, Remaining: 1, Reset: t0.Add(time.Minute)}, 2, true},
		{run.Rate{Known: true, Remaining: 2, Reset: t0.Add(time.Minute)}, 2, false},
		{run.Rate{Known: true, Remaining: 0, Reset: t0.Add(-time.Second)}, 1, false},
	}
	for _, tt := range tests {
		if got := tt.r.Spent(t0, tt.need); got != tt.want {
			t.Errorf("%+v need %d: %v", tt.r, tt.need, got)
		}
	}
}

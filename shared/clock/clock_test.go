package clock

import (
	"context"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func TestFake(t *testing.T) {
	f := NewFake(t0)
	if err := f.Sleep(context.Background(), 3*time.Second); err != nil {
		t.Fatal(err)
	}
	f.Advance(time.Minute)
	if err := f.Sleep(context.Background(), time.Second); err != nil {
		t.Fatal(err)
	}
	if got := f.Now(); !got.Equal(t0.Add(time.Minute + 4*time.Second)) {
		t.Errorf("Now = %v", got)
	}
	total, sleeps := f.Slept()
	if total != 4*time.Second || len(sleeps) != 2 || sleeps[0] != 3*time.Second {
		t.Errorf("Slept = %v %v", total, sleeps)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := f.Sleep(ctx, time.Hour); err == nil || f.Now().After(t0.Add(2*time.Minute)) {
		t.Error("sleep on a cancelled context")
	}
	f.Set(t0)
	if !f.Now().Equal(t0) {
		t.Error("Set")
	}
}

func TestRealSleep(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := (Real{}).Sleep(ctx, time.Hour); err == nil {
		t.Error("Real.Sleep ignored the context")
	}
	if err := (Real{}).Sleep(context.Background(), time.Millisecond); err != nil {
		t.Error(err)
	}
}

func TestDeadlines(t *testing.T) {
	f := NewFake(t0)
	if _, ok := Deadline(context.Background()); ok {
		t.Error("deadline without one")
	}
	ctx := WithDeadline(context.Background(), t0.Add(9*time.Minute))
	if d, ok := Deadline(ctx); !ok || !d.Equal(t0.Add(9*time.Minute)) {
		t.Errorf("Deadline = %v %v", d, ok)
	}
	// A later logical deadline does not extend an earlier one.
	if d, _ := Deadline(WithDeadline(ctx, t0.Add(time.Hour))); !d.Equal(t0.Add(9 * time.Minute)) {
		t.Errorf("extended to %v", d)
	}
	if d, _ := Deadline(WithDeadline(ctx, t0.Add(time.Minute))); !d.Equal(t0.Add(time.Minute)) {
		t.Errorf("not shortened: %v", d)
	}
	f.Advance(2 * time.Minute)
	if left, ok := Remaining(ctx, f); !ok || left != 7*time.Minute {
		t.Errorf("Remaining = %v %v", left, ok)
	}
	// A context deadline earlier than the logical one wins.
	real, cancel := context.WithDeadline(context.Background(), t0.Add(time.Minute))
	defer cancel()
	if d, _ := Deadline(WithDeadline(real, t0.Add(time.Hour))); !d.Equal(t0.Add(time.Minute)) {
		t.Errorf("context deadline lost: %v", d)
	}
}

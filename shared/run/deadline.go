package run

import (
	"context"
	"time"

	"github.com/fediops/fediops/shared/clock"
)

// Margin is how much of an invocation's timeout a run leaves unused, for what it does after
// its last request (writing its audit trail, its state, releasing its lease) and for the
// platform's own start-up: a tenth of the timeout, at least 5 seconds and at most a minute.
func Margin(timeout time.Duration) time.Duration {
	return min(max(timeout/10, 5*time.Second), time.Minute)
}

// WithTimeout returns ctx with a deadline of timeout minus its Margin from now, on c's time.
// An earlier deadline already on ctx is kept. timeout 0 means no deadline (the CLI's
// default).
func WithTimeout(ctx context.Context, c clock.Clock, timeout time.Duration) context.Context {
	if timeout <= 0 {
		return ctx
	}
	return clock.WithDeadline(ctx, c.Now().Add(timeout-Margin(timeout)))
}

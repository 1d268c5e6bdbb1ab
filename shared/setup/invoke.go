package setup

import (
	"context"
	"errors"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/fediops/fediops/shared/pubsubmsg"
)

// MaxEventAge is how old a delivered event may be before it is dropped: Pub/Sub retries for
// up to 24 hours, and acting on a day-old schedule tick helps nobody (the next tick comes).
const MaxEventAge = time.Hour

// PermanentError marks a failure that retrying cannot fix (bad configuration, unknown
// instance): the event is acknowledged after logging it at ERROR.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err as a *PermanentError.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// Invocation is how a CloudEvent function finds its surroundings; tests replace the fields.
type Invocation struct {
	Getenv    func(string) string
	LogOutput io.Writer
	// DefaultTimeout is the logical deadline when the context has none (default 9 minutes,
	// the event-function maximum; CLOUD_RUN_TIMEOUT_SECONDS overrides it).
	DefaultTimeout time.Duration
	// Customize, if set, adjusts the environment before the job runs (tests).
	Customize func(*Env)
}

// Process returns the Invocation for a real process: os.Getenv, and os.Stdout as it is when
// the event arrives.
func Process() Invocation { return Invocation{Getenv: os.Getenv} }

// Invoke runs a CloudEvent function: it decodes the Pub/Sub options into opts, opens the
// environment, and calls run. Invalid messages, stale events and permanent errors are logged
// at ERROR and acknowledged (nil); transient errors are returned so Pub/Sub redelivers.
func (inv Invocation) Invoke(ctx context.Context, e event.Event, function string, opts any, run func(ctx context.Context, env *Env) error) error {
	if inv.Getenv == nil {
		inv.Getenv = os.Getenv
	}
	if inv.LogOutput == nil {
		inv.LogOutput = os.Stdout
	}
	env, openErr := Open(ctx, ParamsFromEnv(inv.Getenv, inv.LogOutput))
	defer env.Close()
	log := env.Log.With("function", function, "event_id", e.ID())

	if _, err := pubsubmsg.Decode(e, opts); err != nil {
		log.Error("ignoring an invalid Pub/Sub message (acknowledged, not retried): "+err.Error(), "error", err.Error())
		return nil
	}
	if t := e.Time(); !t.IsZero() && env.Clock.Now().Sub(t) > MaxEventAge {
		log.Warn("ignoring a stale event; the next scheduled run will do the work", "event_time", t.UTC().Format(time.RFC3339))
		return nil
	}
	if openErr != nil {
		log.Error("cannot start: "+openErr.Error(), "error", openErr.Error())
		return nil
	}
	if inv.Customize != nil {
		inv.Customize(env)
	}
	env.Log = log
	timeout := inv.DefaultTimeout
	if s, err := strconv.Atoi(inv.Getenv("CLOUD_RUN_TIMEOUT_SECONDS")); err == nil && s > 0 {
		timeout = time.Duration(s) * time.Second
	}
	if timeout == 0 {
		timeout = 9 * time.Minute
	}
	err := run(Deadline(ctx, env.Clock, timeout), env)
	var pe *PermanentError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &pe):
		log.Error(err.Error(), "error", err.Error())
		return nil
	default:
		log.Error("run failed; Pub/Sub will redeliver the event: "+err.Error(), "error", err.Error())
		return err
	}
}

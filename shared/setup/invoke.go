package setup

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/fediops/fediops/shared/config"
	"github.com/fediops/fediops/shared/pubsubmsg"
	"github.com/fediops/fediops/shared/run"
)

// MaxEventAge is how old a delivered event may be before it is dropped: Pub/Sub retries for
// up to 24 hours, and acting on a day-old schedule tick helps nobody (the next tick comes).
const MaxEventAge = time.Hour

// DefaultTimeout is the timeout assumed when FEDIOPS_TIMEOUT is not set: the platform's own
// default for a function deployed without --timeout.
const DefaultTimeout = time.Minute

// SectionCheck validates one function's section of the configuration.
type SectionCheck func(*config.Config) error

// Invocation is how a CloudEvent function finds its surroundings; tests replace the fields.
type Invocation struct {
	Getenv    func(string) string
	LogOutput io.Writer
	// Sections validate the configuration's sections by name ("triage", "blocklist",
	// "backup"): a function runs with problems in the others' sections, logging a WARNING.
	Sections map[string]SectionCheck
	// Customize, if set, adjusts the environment before the job runs (tests).
	Customize func(*Env)
}

// Process returns the Invocation for a real process: os.Getenv, and os.Stdout as it is when
// the event arrives.
func Process(sections map[string]SectionCheck) Invocation {
	return Invocation{Getenv: os.Getenv, Sections: sections}
}

// Params returns the parameters a deployed function opens its environment with: the
// FEDIOPS_* variables, JSON logs to LogOutput (os.Stdout as it is now by default).
func (inv Invocation) Params() Params {
	getenv, out := inv.Getenv, inv.LogOutput
	if getenv == nil {
		getenv = os.Getenv
	}
	if out == nil {
		out = os.Stdout
	}
	p := ParamsFromEnv(getenv, out)
	p.Deployed = true
	return p
}

// Timeout returns the function's timeout from FEDIOPS_TIMEOUT (a duration such as "240s",
// or seconds), which the deployment sets to the same value as --timeout.
func Timeout(getenv func(string) string) (time.Duration, error) {
	v := getenv("FEDIOPS_TIMEOUT")
	if v == "" {
		return DefaultTimeout, fmt.Errorf("FEDIOPS_TIMEOUT is not set; assuming the platform default of %s (set it to the function's --timeout)", DefaultTimeout)
	}
	d, err := time.ParseDuration(v)
	if secs, serr := strconv.Atoi(v); serr == nil {
		d, err = time.Duration(secs)*time.Second, nil
	}
	if err != nil {
		return DefaultTimeout, fmt.Errorf("FEDIOPS_TIMEOUT %q is not a duration; assuming %s", v, DefaultTimeout)
	}
	if d <= 0 {
		return DefaultTimeout, fmt.Errorf("FEDIOPS_TIMEOUT %q must be positive; assuming %s", v, DefaultTimeout)
	}
	return d, nil
}

// Invoke runs a CloudEvent function: it decodes the Pub/Sub options into opts, opens the
// environment, warns about problems in the sections other functions own, and calls fn with a
// deadline of the function's timeout minus a margin. Invalid messages, stale events and
// permanent failures are logged at ERROR and acknowledged (nil); transient failures are
// returned so Pub/Sub redelivers the event.
func (inv Invocation) Invoke(ctx context.Context, e event.Event, function, section string, opts any, fn func(ctx context.Context, env *Env) error) error {
	if inv.Getenv == nil {
		inv.Getenv = os.Getenv
	}
	if inv.LogOutput == nil {
		inv.LogOutput = os.Stdout
	}
	p := ParamsFromEnv(inv.Getenv, inv.LogOutput)
	p.Deployed = true
	env, openErr := Open(ctx, p)
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
		return inv.outcome(log, "cannot start", openErr)
	}
	inv.warnOthers(env, log, section)
	if inv.Customize != nil {
		inv.Customize(env)
	}
	env.Log = log
	timeout, terr := Timeout(inv.Getenv)
	if terr != nil {
		log.Warn(terr.Error())
	}
	return inv.outcome(log, "run failed", fn(run.WithTimeout(ctx, env.Clock, timeout), env))
}

// outcome maps a failure to the acknowledgement: permanent ones are logged and acknowledged,
// transient ones returned for a redelivery.
func (inv Invocation) outcome(log interface {
	Error(string, ...any)
	Warn(string, ...any)
}, what string, err error) error {
	reason, stopped := run.ReasonOf(err)
	switch {
	case err == nil:
		return nil
	case stopped && reason == run.LeaseHeld && !run.IsPermanent(err):
		// Another run works on the instance: nothing failed, the event comes back later.
		log.Warn("run postponed, Pub/Sub will redeliver the event: "+err.Error(), "error", err.Error(), "class", run.Transient.String(), "stopped", string(reason))
		return err
	case run.IsPermanent(err):
		log.Error(what+" (acknowledged; a retry cannot fix this): "+err.Error(), "error", err.Error(), "class", run.Permanent.String())
		return nil
	default:
		log.Error(what+"; Pub/Sub will redeliver the event: "+err.Error(), "error", err.Error(), "class", run.Transient.String())
		return err
	}
}

// warnOthers logs one WARNING per section of another function that has problems.
func (inv Invocation) warnOthers(env *Env, log interface{ Warn(string, ...any) }, own string) {
	for _, name := range slices.Sorted(maps.Keys(inv.Sections)) {
		if name == own || inv.Sections[name] == nil {
			continue
		}
		if err := inv.Sections[name](env.Config); err != nil {
			log.Warn(fmt.Sprintf("[%s] has problems; this function does not use it and runs anyway: %v", name, err), "section", name)
		}
	}
}

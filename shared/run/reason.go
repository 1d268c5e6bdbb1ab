// Package run owns what every job run shares: its deadline, its lease on the instance it works
// on, the rate-limit governor that decides whether to wait for the next window or stop, the
// typed reasons a run stops early, and whether a failure is worth a retry.
//
// A job creates one Run per instance (Start), asks it before every request to the instance
// (Check, Reserve), lets it wait when the server's budget is spent (Wait), fences its control
// writes with it (Fence) and ends it (End). The three jobs report the same stop reasons in
// their outcomes and logs.
package run

import (
	"errors"
	"fmt"
)

// Reason says why a run stopped before its work was done. The next run continues.
type Reason string

// The stop reasons shared by the jobs.
const (
	// BudgetSpent: the server's rate-limit budget is spent and its window resets after the
	// deadline.
	BudgetSpent Reason = "budget spent"
	// DeadlineNear: too little time is left before the invocation's deadline to start more.
	DeadlineNear Reason = "deadline near"
	// LeaseHeld: another run works on the same instance; this one did nothing.
	LeaseHeld Reason = "lease held by another run"
	// LeaseLost: another run took the lease over while this one worked (it had expired, for
	// instance while this run was paused); this run stopped before its next request.
	LeaseLost Reason = "lease lost"
	// Cancelled: the context was cancelled (interrupt, platform shutdown).
	Cancelled Reason = "cancelled"
	// ServerError: the server failed in a way retries within the run did not fix.
	ServerError Reason = "server error"
	// MaxActions: the run reached its cap on actions (max_actions).
	MaxActions Reason = "max actions reached"
)

// Explain returns a sentence for people.
func (r Reason) Explain() string {
	switch r {
	case BudgetSpent:
		return "the server's rate-limit budget is spent until after this run's deadline"
	case DeadlineNear:
		return "the run's deadline is near"
	case LeaseHeld:
		return "another run is working on this instance"
	case LeaseLost:
		return "another run took over this instance's lease; this run stopped before its next request"
	case Cancelled:
		return "the run was cancelled"
	case ServerError:
		return "the server kept failing"
	case MaxActions:
		return "the run reached its cap on actions"
	}
	return string(r)
}

// StopError carries a stop reason through an error return.
type StopError struct {
	Reason Reason
	Err    error // what caused it, if anything
}

func (e *StopError) Error() string {
	if e.Err == nil {
		return "stopped: " + string(e.Reason)
	}
	return fmt.Sprintf("stopped: %s: %v", e.Reason, e.Err)
}

func (e *StopError) Unwrap() error { return e.Err }

// Stop returns a *StopError.
func Stop(r Reason, err error) error { return &StopError{Reason: r, Err: err} }

// ReasonOf returns the stop reason in err's chain.
func ReasonOf(err error) (Reason, bool) {
	var se *StopError
	if errors.As(err, &se) {
		return se.Reason, true
	}
	return "", false
}

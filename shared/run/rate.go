package run

import "time"

// Rate is a server's rate-limit state as fediops keeps it: what the last answer said about
// the current window. It is the project's own type, stored in state objects.
type Rate struct {
	Known     bool      `json:"known"`
	Limit     int       `json:"limit,omitempty"`
	Remaining int       `json:"remaining"`
	Reset     time.Time `json:"reset"`
}

// Spent reports whether fewer than need requests are left in a window that has not reset by
// now.
func (r Rate) Spent(now time.Time, need int) bool {
	return r.Known && r.Remaining < need && r.Reset.After(now)
}

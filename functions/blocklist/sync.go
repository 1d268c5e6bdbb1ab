// Package blocklist is blocklist sync: it merges federation blocklists and applies the result
// to the instances' domain blocks, owning only what it creates, removing what the lists
// retract, archiving every run, and holding back plans that would change too much.
//
// The files follow the job's stages: sources.go reads and merges the lists, sync.go brings
// one destination in line (session.go), apply.go performs the actions, guard.go holds back
// surprising plans and applies them when an admin says so, intent.go is the approved work a
// later run resumes, store.go the archive layout.
package blocklist

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/fediops/fediops/functions/blocklist/plan"
	"github.com/fediops/fediops/shared/archive"
	"github.com/fediops/fediops/shared/clock"
	"github.com/fediops/fediops/shared/mastodon"
	"github.com/fediops/fediops/shared/run"
)

// Blocks is what a sync needs from a destination server; *mastodon.Client implements it.
type Blocks interface {
	Server(ctx context.Context) (mastodon.Server, error)
	DomainBlocks(ctx context.Context) ([]mastodon.DomainBlock, int, error)
	CreateDomainBlock(ctx context.Context, p mastodon.DomainBlockParams) (mastodon.DomainBlock, error)
	UpdateDomainBlock(ctx context.Context, id string, p mastodon.DomainBlockParams) (mastodon.DomainBlock, error)
	DeleteDomainBlock(ctx context.Context, id string) error
	DomainFollows(ctx context.Context, domain string, start, end time.Time) (mastodon.Follows, error)
	Rate() run.Rate
}

// Progress hears how far an apply is (the CLI shows it on a terminal).
type Progress interface {
	// Applied is called after each action: done of total for the destination.
	Applied(instance string, done, total int)
	// Waiting is called when the run waits for a rate-limit window until t.
	Waiting(instance string, until time.Time)
}

// Deps are the adapters a sync uses.
type Deps struct {
	Store archive.Store
	Clock clock.Clock
	Log   *slog.Logger
	// Progress, if set, hears how far the apply is.
	Progress Progress
}

// Destination is one instance to sync, with its options.
type Destination struct {
	Name   string
	Client Blocks
	Plan   plan.Options // Caps are filled in from the server
	// Guards: a plan removing more than MaxRemovals blocks, or changing more than
	// MaxChangePct percent of the instance's blocks, is held back for an admin.
	MaxRemovals  int
	MaxChangePct float64
	// InitialImport exempts the first import (no owned blocks yet) from the percentage guard.
	InitialImport bool
	DryRun        bool
	LeaseTTL      time.Duration
	// StopBefore is how long before the deadline no new action starts (run.DefaultStopBefore).
	StopBefore time.Duration
	// Err is set when the destination cannot be synced at all (e.g. no token): it fails
	// alone, the others run.
	Err error
}

// Result outcomes per action.
const (
	ResultDone        = "done"
	ResultSkipped     = "skipped"
	ResultFailed      = "failed"
	ResultDeferred    = "deferred"
	ResultWould       = "would do (dry run)"
	ResultFollowCap   = "follow_protected"
	ResultUnsupported = "unsupported"
)

// ActionResult is what happened to one planned action.
type ActionResult struct {
	plan.Action
	Result string `json:"result"`
	Detail string `json:"detail,omitempty"`
}

// Outcome summarises the sync of one destination.
type Outcome struct {
	Instance string `json:"instance"`
	Server   string `json:"server,omitempty"`
	DryRun   bool   `json:"dry_run"`
	Snapshot string `json:"snapshot,omitempty"`
	Created  int    `json:"created"`
	Updated  int    `json:"updated"`
	Removed  int    `json:"removed"`
	// Skipped counts skipped entries by reason.
	Skipped  map[string]int `json:"skipped,omitempty"`
	Failed   int            `json:"failed"`
	Deferred int            `json:"deferred"`
	// Held is set when a guard held the plan back: its id, for `fediops blocklist apply --plan`.
	Held       string     `json:"held_plan,omitempty"`
	HeldReason string     `json:"held_reason,omitempty"`
	Stopped    run.Reason `json:"stopped,omitempty"`
	Warnings   []string   `json:"warnings,omitempty"`
	// Error is set when the destination could not be synced at all.
	Error string `json:"error,omitempty"`
	// FollowProtected names the domains whose severity was capped because of follows.
	FollowProtected []string       `json:"follow_protected,omitempty"`
	Results         []ActionResult `json:"-"`
	Plan            *plan.Plan     `json:"-"`
}

func (o *Outcome) skip(reason string) {
	if o.Skipped == nil {
		o.Skipped = map[string]int{}
	}
	o.Skipped[reason]++
}

// Desired is the merged list to apply, with the allowlist and the sources that could not be
// read.
type Desired struct {
	Blocks  []plan.Desired
	Allowed func(domain string) bool
	// Unread names the blocklist sources that could not be read (no fresh copy, no last good
	// copy): blocks they listed are not retracted.
	Unread map[string]bool
	// Basis is what the list comes from (BasisLists, or BasisRollback for a rollback).
	Basis  Basis
	listed map[string]bool
}

// Listed reports whether the merged list has domain.
func (w *Desired) Listed(domain string) bool {
	if w.listed == nil {
		w.listed = make(map[string]bool, len(w.Blocks))
		for _, b := range w.Blocks {
			w.listed[b.Domain] = true
		}
	}
	return w.listed[domain]
}

// Sync brings one destination in line with the merged list: it resumes approved work that an
// earlier run left (planned again against what the server holds now), reads the instance's
// blocks, plans, checks the guards and applies, within the rate-limit budget and the deadline.
// What does not fit is kept as intent for the next run. The error is non-nil only for
// failures worth retrying soon.
func Sync(ctx context.Context, d Deps, dest Destination, want Desired, snap *Snapshot, runID string) (*Outcome, error) {
	s, out, err := open(ctx, d, dest, snap, runID)
	if s == nil {
		return out, err
	}
	defer s.end(ctx)
	if err := s.prepare(ctx); err != nil {
		return s.stopOr(ctx, err)
	}
	if s.ckpt != nil {
		done, err := s.resume(ctx, &want)
		if err != nil || !done {
			return s.stopOr(ctx, err)
		}
	}
	p, err := s.planFresh(ctx, want)
	if err != nil {
		return s.stopOr(ctx, err)
	}
	planID := planIDOf(dest.Name, p.Actions)
	if s.dest.DryRun {
		return out, s.dryRun(ctx, p)
	}
	if reason := guard(p, s.dest); reason != "" && len(p.Actions) > 0 {
		return out, s.hold(ctx, planID, reason, p, want.Basis)
	}
	rest := s.applyAll(ctx, p.Actions)
	if err := s.finish(ctx, planID, want.Basis, rest); err != nil {
		return out, err
	}
	return s.stopOr(ctx, s.fatal)
}

// capabilities says what a server can do: Mastodon has severities and PUT; GoToSocial
// (before 0.19) neither.
func capabilities(srv mastodon.Server) plan.Capabilities {
	m := srv.Software == mastodon.Mastodon
	return plan.Capabilities{Severities: m, Update: m}
}

// SortedReasons returns the skip reasons of an outcome in a stable order.
func (o *Outcome) SortedReasons() []string {
	var r []string
	for k := range o.Skipped {
		r = append(r, k)
	}
	sort.Strings(r)
	return r
}

// errLeaseHeld is returned by open when another run holds the destination's lease.
var errLeaseHeld = errors.New("another run is working on this instance")

func leaseName(instance string) string { return "blocklist/" + instance }

func fmtErr(dest string, err error) error { return fmt.Errorf("blocklist %s: %w", dest, err) }

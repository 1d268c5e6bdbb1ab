package blocklist

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/fediops/fediops/functions/blocklist/lists"
	"github.com/fediops/fediops/functions/blocklist/plan"
	"github.com/fediops/fediops/shared/domain"
	"github.com/fediops/fediops/shared/mastodon"
	"github.com/fediops/fediops/shared/run"
)

func (s *session) record(act plan.Action, result, detail string) {
	s.out.Results = append(s.out.Results, ActionResult{Action: act, Result: result, Detail: detail})
}

func (s *session) count(act plan.Action) {
	switch act.Kind {
	case plan.Create:
		s.out.Created++
	case plan.Update:
		s.out.Updated++
	case plan.Remove:
		s.out.Removed++
	}
}

// applyAll applies actions in order and returns those not done: the run had to stop (the
// deadline, the budget, the lease) or the server kept failing.
func (s *session) applyAll(ctx context.Context, actions []plan.Action) []plan.Action {
	s.total += len(actions)
	for i, act := range actions {
		err := s.apply(ctx, act)
		if err == nil {
			s.done++
			if s.d.Progress != nil {
				s.d.Progress.Applied(s.dest.Name, s.done, s.total)
			}
			continue
		}
		reason, ok := run.ReasonOf(err)
		if !ok {
			reason = run.ServerError
			s.fatal = err
		}
		s.out.Stopped = reason
		s.out.Deferred += len(actions) - i
		for _, r := range actions[i:] {
			s.record(r, ResultDeferred, reason.Explain())
		}
		return actions[i:]
	}
	return nil
}

// requestsFor is how many requests an action takes.
func (s *session) requestsFor(act plan.Action) int {
	if act.FollowCheck && !s.noMeasures {
		return 2
	}
	return 1
}

// call is one request to the instance, under the run's checks and rate governor.
func (s *session) call(ctx context.Context, op func() error) error { return s.r.Call(ctx, op) }

// apply performs one action. It returns a *run.StopError when the run must stop before it,
// or the server error that made it fail and is worth a retry; a refused action (4xx) is
// recorded as failed and the run goes on.
func (s *session) apply(ctx context.Context, act plan.Action) error {
	// An action is started only when all its requests fit in the window (or the run waits
	// for the next one), so that a follow check is never asked twice.
	if err := s.r.Reserve(ctx, s.dest.Client.Rate(), s.requestsFor(act)); err != nil {
		return err
	}
	if act.FollowCheck && act.To != nil && !s.noMeasures {
		capped, err := s.followCheck(ctx, &act)
		if err != nil {
			return err
		}
		if capped && act.Kind == plan.Update && act.From != nil && act.To.Severity == act.From.Severity {
			act.Changed = slices.DeleteFunc(slices.Clone(act.Changed), func(f string) bool { return f == plan.FieldSeverity })
			if len(act.Changed) == 0 && !act.Adopt {
				s.record(act, ResultFollowCap, "severity kept because local users follow accounts there")
				return nil
			}
		}
	}
	var err error
	switch act.Kind {
	case plan.Create:
		err = s.create(ctx, act)
	case plan.Update:
		err = s.update(ctx, act)
	case plan.Remove:
		err = s.remove(ctx, act)
	}
	if err == nil {
		return nil
	}
	if _, stop := run.ReasonOf(err); stop {
		return err
	}
	if ctx.Err() != nil {
		return run.Stop(run.Cancelled, err)
	}
	s.out.Failed++
	s.record(act, ResultFailed, err.Error())
	s.log.Error(fmt.Sprintf("%s %s failed: %v", act.Kind, act.Domain, err), "domain", act.Domain, "action", string(act.Kind))
	if st := mastodon.StatusOf(err); st >= 400 && st < 500 {
		return nil // this action is wrong, not the server: go on with the others
	}
	return err
}

// followCheck asks the instance whether local users follow accounts on the domain, or are
// followed from it, and caps the severity if so. A server without measures skips the check
// (with a warning); any other failure caps the severity: never suspend on a guess.
func (s *session) followCheck(ctx context.Context, act *plan.Action) (bool, error) {
	now := s.d.Clock.Now()
	var f mastodon.Follows
	err := s.call(ctx, func() (err error) {
		f, err = s.dest.Client.DomainFollows(ctx, act.Domain, now.AddDate(0, -1, 0), now)
		return err
	})
	switch {
	case errors.Is(err, mastodon.ErrUnsupported):
		s.noMeasures = true
		s.out.Warnings = append(s.out.Warnings, "the server has no measures API: follow protection was not checked")
		return false, nil
	case isStop(err):
		return false, err
	case err != nil:
		s.capSeverity(act, fmt.Sprintf("could not check follows (%v)", err))
		return true, nil
	case f.Follows > 0 || f.Followers > 0:
		s.capSeverity(act, fmt.Sprintf("%d follow(s) of accounts there and %d follower(s) from there", f.Follows, f.Followers))
		return true, nil
	}
	return false, nil
}

func isStop(err error) bool {
	_, ok := run.ReasonOf(err)
	return ok
}

func (s *session) capSeverity(act *plan.Action, why string) {
	limit := s.dest.Plan.MaxFollowedSeverity
	if act.To.Severity <= limit {
		return
	}
	to := *act.To
	to.Severity = limit
	act.To = &to
	s.out.FollowProtected = append(s.out.FollowProtected, act.Domain)
	s.log.Warn(fmt.Sprintf("%s: limited to %s instead of suspending: %s", act.Domain, limit, why), "domain", act.Domain)
}

func params(f plan.Fields, fields []string, caps plan.Capabilities) mastodon.DomainBlockParams {
	var p mastodon.DomainBlockParams
	for _, name := range fields {
		switch name {
		case plan.FieldSeverity:
			if caps.Severities {
				s := f.Severity.String()
				p.Severity = &s
			}
		case plan.FieldRejectMedia:
			v := f.RejectMedia
			p.RejectMedia = &v
		case plan.FieldRejectReports:
			v := f.RejectReports
			p.RejectReports = &v
		case plan.FieldObfuscate:
			v := f.Obfuscate
			p.Obfuscate = &v
		case plan.FieldPublicComment:
			v := f.PublicComment
			p.PublicComment = &v
		}
	}
	return p
}

var allFields = []string{plan.FieldSeverity, plan.FieldRejectMedia, plan.FieldRejectReports, plan.FieldObfuscate, plan.FieldPublicComment}

func (s *session) own(b mastodon.DomainBlock, act plan.Action) {
	e := toExisting(b, s.srv)
	s.state.Owned[e.Domain] = plan.Owned{ID: b.ID, Domain: e.Domain, Applied: e.Fields, Sources: act.Sources}
}

func (s *session) remove(ctx context.Context, act plan.Action) error {
	err := s.call(ctx, func() error { return s.dest.Client.DeleteDomainBlock(ctx, act.ID) })
	if mastodon.StatusOf(err) == http.StatusNotFound {
		err = nil // removed meanwhile: the goal is reached
	}
	if err != nil {
		return err
	}
	delete(s.state.Owned, act.Domain)
	s.record(act, ResultDone, "")
	s.count(act)
	return nil
}

// create sends the block. An answer lost on the way back (an ambiguous create) is resolved by
// sending it once more: Mastodon refuses a second block on the domain with 422 and the block
// it has, which the conflict path reads as ours; GoToSocial answers with the block it has.
func (s *session) create(ctx context.Context, act plan.Action) error {
	p := params(*act.To, allFields, s.dest.Plan.Caps)
	p.Domain = act.Domain
	comment := act.PrivateComment
	p.PrivateComment = &comment
	var b mastodon.DomainBlock
	send := func() error {
		return s.call(ctx, func() (err error) {
			b, err = s.dest.Client.CreateDomainBlock(ctx, p)
			return err
		})
	}
	err := send()
	if mastodon.IsAmbiguous(err) {
		s.log.Warn(fmt.Sprintf("create %s: the answer was lost; asking again to read back what the server holds", act.Domain), "domain", act.Domain)
		err = send()
	}
	var ce *mastodon.ConflictError
	if errors.As(err, &ce) {
		return s.conflict(ctx, act, ce)
	}
	if err != nil {
		return err
	}
	if !s.dest.Plan.Owns(b.PrivateComment) {
		// GoToSocial answers a duplicate create with the existing block: someone else's.
		s.out.skip(plan.SkipManual)
		s.record(act, ResultSkipped, "a block created by someone else exists; left alone")
		return nil
	}
	s.own(b, act)
	s.record(act, ResultDone, "")
	s.count(act)
	return nil
}

// conflict handles Mastodon's 422 on create: someone created the block meanwhile (or our own
// earlier attempt did, when its answer was lost). The domain is planned again against what
// exists now.
func (s *session) conflict(ctx context.Context, act plan.Action, ce *mastodon.ConflictError) error {
	e := toExisting(ce.Existing, s.srv)
	if e.Domain != act.Domain {
		s.out.skip(plan.SkipCoveredByParent)
		s.record(act, ResultSkipped, "the existing block on "+e.Domain+" covers it")
		return nil
	}
	want := plan.Desired{Block: lists.Block{Domain: act.Domain, Severity: act.To.Severity, RejectMedia: act.To.RejectMedia,
		RejectReports: act.To.RejectReports, Obfuscate: act.To.Obfuscate, PublicComment: act.To.PublicComment}, Sources: act.Sources}
	o := s.dest.Plan
	o.RemoveRetracted = false
	re := plan.Compute([]plan.Existing{e}, []plan.Desired{want}, nil, o)
	if len(re.Actions) == 0 {
		if o.Owns(e.PrivateComment) {
			s.state.Owned[e.Domain] = plan.Owned{ID: e.ID, Domain: e.Domain, Applied: e.Fields, Sources: act.Sources}
			s.record(act, ResultDone, "already created (an earlier attempt's answer was lost; confirmed by reading back)")
			s.count(act)
			return nil
		}
		for _, sk := range re.Skipped {
			s.out.skip(sk.Reason)
		}
		s.record(act, ResultSkipped, "created by someone else meanwhile; left alone")
		return nil
	}
	next := re.Actions[0]
	next.FollowCheck = false // the severity was checked already
	return s.update(ctx, next)
}

func (s *session) update(ctx context.Context, act plan.Action) error {
	if !s.dest.Plan.Caps.Update {
		s.out.skip(plan.SkipUnsupportedUpd)
		s.record(act, ResultUnsupported, "the server cannot update a block")
		return nil
	}
	p := params(*act.To, act.Changed, s.dest.Plan.Caps)
	if act.Adopt {
		c := act.PrivateComment
		p.PrivateComment = &c
	}
	var b mastodon.DomainBlock
	err := s.call(ctx, func() (err error) {
		b, err = s.dest.Client.UpdateDomainBlock(ctx, act.ID, p)
		return err
	})
	if mastodon.StatusOf(err) == http.StatusNotFound {
		delete(s.state.Owned, act.Domain)
		s.out.skip("removed_meanwhile")
		s.record(act, ResultSkipped, "the block was removed meanwhile")
		return nil
	}
	if err != nil {
		return err
	}
	s.own(b, act)
	s.record(act, ResultDone, "")
	s.count(act)
	return nil
}

// existingOf converts a server's blocks for planning: domains normalised (GoToSocial
// returns Unicode), GoToSocial blocks read as suspensions.
func existingOf(blocks []mastodon.DomainBlock, srv mastodon.Server) []plan.Existing {
	out := make([]plan.Existing, 0, len(blocks))
	for _, b := range blocks {
		out = append(out, toExisting(b, srv))
	}
	return out
}

func toExisting(b mastodon.DomainBlock, srv mastodon.Server) plan.Existing {
	d, err := domain.Normalize(b.Domain)
	if err != nil {
		d = strings.ToLower(strings.TrimSpace(b.Domain))
	}
	sev, err := lists.ParseSeverity(b.Severity)
	if err != nil || srv.Software == mastodon.GoToSocial || b.Severity == "" {
		sev = lists.Suspend
	}
	return plan.Existing{ID: b.ID, Domain: d, PrivateComment: b.PrivateComment, Fields: plan.Fields{
		Severity: sev, RejectMedia: b.RejectMedia, RejectReports: b.RejectReports, Obfuscate: b.Obfuscate, PublicComment: b.PublicComment,
	}}
}

package approve

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/fediops/fediops/shared/archive"
	"github.com/fediops/fediops/shared/domain"
	"github.com/fediops/fediops/shared/mastodon"
	"github.com/fediops/fediops/shared/run"
)

// Email-domain blocks: Mastodon refuses sign-ups from a blocked domain at the form (and from
// domains whose mail servers are named under it), or with allow_with_approval makes them wait
// for approval. Triage reads the instance's blocks as reject entries (an admin's block rejects
// pending sign-ups too), and with sync_email_domain_blocks keeps the blocks equal to its
// reject list:
//
//   - fediops records the blocks it creates in its state and only ever removes those, when
//     their domain has left the lists; a block an admin made is never touched;
//   - a reject entry is left out when an approve entry lies beneath it (Mastodon would refuse
//     the approved subdomain too) and when it also names other organisations' mail servers
//     (presets/mail-hosts.csv);
//   - a plan that adds or removes more than email_domain_blocks_max_additions/_removals is
//     held; `fediops triage email-blocks sync --apply-plan ID` approves it;
//   - a failed input never widens the door: while a reject list is unreadable the blocks it
//     listed stay, while an approve list is unreadable no block is added;
//   - GoToSocial has no such API: reported once per run, nothing else changes.
//
// Archive layout:
//
//	triage-email-blocks/state/<instance>.json           what fediops owns (control object, generation-checked)
//	triage-email-blocks/pending/<instance>/<id>.json    plans a guard held (create-only)
//	triage-email-blocks/pending/<instance>/<id>.applied written when such a plan is approved
//	triage-email-blocks/runs/<instance>/<time>-<run>.json each sync's plan and results (create-only)

// EmailDomainBlocks is what reading and syncing email-domain blocks need; *mastodon.Client
// implements it.
type EmailDomainBlocks interface {
	Server(ctx context.Context) (mastodon.Server, error)
	EmailDomainBlocksPage(ctx context.Context, cursor string) ([]mastodon.EmailDomainBlock, string, error)
	CreateEmailDomainBlock(ctx context.Context, domain string, allowWithApproval bool) (mastodon.EmailDomainBlock, error)
	DeleteEmailDomainBlock(ctx context.Context, id string) error
}

const emailBlocksPrefix = "triage-email-blocks/"

// Lists of the entries triage reads from the instance.
const (
	ListEmailDomainBlock         = "email_domain_block"
	ListEmailDomainBlockApproval = "email_domain_block (requires approval)"
)

// EmailBlockState is what fediops owns on one instance.
type EmailBlockState struct {
	Instance string                     `json:"instance"`
	Updated  time.Time                  `json:"updated"`
	Owned    map[string]OwnedEmailBlock `json:"owned"` // by domain
	// Approved is the part of a held plan an admin approved that is not done yet: the guard
	// lets it through until it is.
	Approved *ApprovedEmailBlocks `json:"approved,omitempty"`
	// Refused are the domains the server would not block (422 for a domain it does not
	// accept), with its answer: not tried again while a list names them.
	Refused map[string]string `json:"refused,omitempty"`
}

// OwnedEmailBlock is a block fediops created.
type OwnedEmailBlock struct {
	ID              string    `json:"id"`
	RequireApproval bool      `json:"require_approval,omitempty"`
	Lists           []string  `json:"lists,omitempty"`
	Created         time.Time `json:"created"`
}

// ApprovedEmailBlocks is the approved intent of a held plan.
type ApprovedEmailBlocks struct {
	Plan   string   `json:"plan"`
	Create []string `json:"create,omitempty"`
	Remove []string `json:"remove,omitempty"`
}

// Email-block actions and skip reasons.
const (
	ActionCreate = "create"
	ActionRemove = "remove"

	SkipManualBlock       = "manual_block"             // the instance has a block fediops did not make
	SkipMailHost          = "mail_host"                // the domain names other organisations' mail servers
	SkipApproveBeneath    = "approve_entry_beneath"    // an approve entry lies under the domain
	SkipApproveListDown   = "approve_list_unavailable" // not added while an approve list cannot be read
	SkipSourceUnavailable = "source_unavailable"       // retracted, but a list that named it cannot be read
	SkipRefused           = "refused_by_server"        // the server refused to block it before
)

// EmailBlockAction is one change to the instance's email-domain blocks.
type EmailBlockAction struct {
	Action          string   `json:"action"`
	Domain          string   `json:"domain"`
	ID              string   `json:"id,omitempty"`
	RequireApproval bool     `json:"require_approval,omitempty"`
	Reason          string   `json:"reason"`
	Lists           []string `json:"lists,omitempty"`
}

// EmailBlockSkip is an entry the plan leaves alone, with why.
type EmailBlockSkip struct {
	Domain string `json:"domain"`
	Reason string `json:"reason"`
	Detail string `json:"detail,omitempty"`
}

// EmailBlocksPlan is what a sync would change.
type EmailBlocksPlan struct {
	Instance string             `json:"instance"`
	Server   string             `json:"server"`
	Blocks   int                `json:"blocks"` // the instance's blocks (children included)
	Owned    int                `json:"owned"`
	Actions  []EmailBlockAction `json:"actions"`
	Skipped  []EmailBlockSkip   `json:"skipped,omitempty"`
}

// Count returns the number of actions of a kind.
func (p *EmailBlocksPlan) Count(action string) int {
	n := 0
	for _, a := range p.Actions {
		if a.Action == action {
			n++
		}
	}
	return n
}

// EmailBlockResult is what happened to one action.
type EmailBlockResult struct {
	EmailBlockAction
	Outcome string `json:"outcome"`
	Error   string `json:"error,omitempty"`
}

// Outcomes of email-block actions.
const (
	OutcomeCreated         = "created"
	OutcomeCreatedReadBack = "created (answer lost, confirmed by reading back)"
	OutcomeRemoved         = "removed"
	OutcomeAlreadyGone     = "already removed"
	OutcomeTaken           = "skipped: blocked meanwhile by someone else"
	OutcomeWouldCreate     = "would create (dry run)"
	OutcomeWouldRemove     = "would remove (dry run)"
)

// EmailBlocksOutcome is the outcome of a sync.
type EmailBlocksOutcome struct {
	Instance string `json:"instance"`
	DryRun   bool   `json:"dry_run"`
	// Unsupported says the server has no email-domain block API (GoToSocial); Refused why
	// nothing was synced although it has.
	Unsupported string             `json:"unsupported,omitempty"`
	Refused     string             `json:"refused,omitempty"`
	Plan        *EmailBlocksPlan   `json:"plan,omitempty"`
	Held        string             `json:"held,omitempty"` // the held plan's id
	HeldReason  string             `json:"held_reason,omitempty"`
	Created     int                `json:"created"`
	Removed     int                `json:"removed"`
	Skipped     int                `json:"skipped"`
	Failed      int                `json:"failed"`
	Deferred    int                `json:"deferred"`
	Stopped     run.Reason         `json:"stopped,omitempty"`
	Results     []EmailBlockResult `json:"results,omitempty"`
	Record      string             `json:"record,omitempty"` // where the plan and results were archived
}

// emailBlocksView is what a run learned about the instance's email-domain blocks.
type emailBlocksView struct {
	server    mastodon.Server
	supported bool
	readErr   error // the blocks could not be read (e.g. a missing scope)
	blocks    []mastodon.EmailDomainBlock
	state     *EmailBlockState
	stateGen  int64
}

// prepareEmailBlocks reads the instance's email-domain blocks (when reading or syncing is on)
// and adds them to o.Rules as reject entries (hold entries for blocks that only require
// approval), leaving out the blocks fediops made: their domains are in the lists already. A
// token that may not read them makes them a missing reject list (approvals are held). The
// error is a stop or a failure worth retrying.
func prepareEmailBlocks(ctx context.Context, r *run.Run, d Deps, o *Options, log *slog.Logger) (*emailBlocksView, error) {
	eo := o.EmailBlocks
	if d.EmailBlocks == nil || (!eo.Read && !eo.Sync) {
		return nil, nil
	}
	v := &emailBlocksView{}
	err := r.Call(ctx, func() (err error) {
		v.server, err = d.EmailBlocks.Server(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	if !v.server.EmailDomainBlocks() {
		level := slog.LevelDebug
		if eo.Sync {
			level = slog.LevelWarn
		}
		log.Log(ctx, level, fmt.Sprintf("email-domain blocks are not supported by %s on %s: sync_email_domain_blocks does nothing there, and triage uses no blocks", v.server, o.Instance),
			"server", v.server.String())
		return v, nil
	}
	v.supported = true
	if v.state, v.stateGen, err = loadEmailBlockState(ctx, d.Store, o.Instance); err != nil {
		return nil, err
	}
	v.blocks, err = listEmailBlocks(ctx, r, d.EmailBlocks)
	switch {
	case isStop(err):
		return nil, err
	case mastodon.StatusOf(err) == http.StatusForbidden || mastodon.StatusOf(err) == http.StatusUnauthorized:
		v.readErr = err
		log.Error(fmt.Sprintf("cannot read the email-domain blocks of %s (%v): approvals they could overturn are held. Give the token admin:read:email_domain_blocks (`fediops auth login --for triage`), or set read_email_domain_blocks = false", o.Instance, err))
		if eo.Read {
			o.Rules = o.Rules.With(nil, []MissingList{{Decision: Reject, List: ListEmailDomainBlock}})
		}
		return v, nil
	case err != nil:
		return nil, fmt.Errorf("read email-domain blocks: %w", err)
	}
	if eo.Read {
		o.Rules = o.Rules.With(blockSets(v.blocks, v.state), nil)
	}
	return v, nil
}

// blockSets turns the instance's blocks, except fediops' own, into rule sets.
func blockSets(blocks []mastodon.EmailDomainBlock, st *EmailBlockState) []RuleSet {
	reject := RuleSet{Decision: Reject, List: ListEmailDomainBlock}
	hold := RuleSet{Decision: Hold, List: ListEmailDomainBlockApproval}
	for _, b := range blocks {
		if own, ok := st.Owned[b.Domain]; ok && own.ID == b.ID {
			continue
		}
		if b.RequiresApproval() {
			hold.Domains = append(hold.Domains, b.Domain)
		} else {
			reject.Domains = append(reject.Domains, b.Domain)
		}
	}
	return []RuleSet{reject, hold}
}

// listEmailBlocks reads every block, page by page, through the run.
func listEmailBlocks(ctx context.Context, r *run.Run, c EmailDomainBlocks) ([]mastodon.EmailDomainBlock, error) {
	all, err := mastodon.Pages(ctx, func(ctx context.Context, cursor string) (page []mastodon.EmailDomainBlock, next string, err error) {
		err = r.Call(ctx, func() (err error) {
			page, next, err = c.EmailDomainBlocksPage(ctx, cursor)
			return err
		})
		return page, next, err
	})
	if err != nil {
		return nil, err // a partial list would read as blocks gone
	}
	for i, b := range all {
		if n, err := domain.Normalize(b.Domain); err == nil {
			all[i].Domain = n
		}
	}
	return all, nil
}

// syncEmailBlocks plans the instance's email-domain blocks against the rules and applies the
// plan (unless dry run, held by a guard, or the server cannot). The error is a server failure
// worth retrying; stops are recorded in the outcome.
func syncEmailBlocks(ctx context.Context, r *run.Run, d Deps, o Options, v *emailBlocksView, log *slog.Logger) (*EmailBlocksOutcome, error) {
	if v == nil || !o.EmailBlocks.Sync {
		return nil, nil
	}
	out := &EmailBlocksOutcome{Instance: o.Instance, DryRun: o.DryRun}
	switch {
	case !v.supported:
		out.Unsupported = fmt.Sprintf("%s has no email-domain block API", v.server)
		return out, nil
	case v.readErr != nil:
		out.Refused = "the blocks could not be read: " + v.readErr.Error()
		return out, nil
	case o.EmailBlocks.RequireApproval && !v.server.EmailDomainBlockApproval():
		out.Refused = fmt.Sprintf("email_domain_blocks_require_approval needs Mastodon 4.3 or later; %s runs %s", o.Instance, v.server)
		log.Error("email-domain blocks of " + o.Instance + " not synced: " + out.Refused + ". Upgrade, or set email_domain_blocks_require_approval = false")
		return out, nil
	}
	mailHosts, err := MailHosts()
	if err != nil {
		return nil, err
	}
	s := &emailSync{r: r, d: d, o: o, v: v, log: log.With("email_blocks", true), out: out}
	if o.EmailBlocks.ApplyPlan != "" {
		if err := s.approve(ctx, o.EmailBlocks.ApplyPlan); err != nil {
			return out, err
		}
	}
	desired, skips := desiredEmailBlocks(o.Rules, mailHosts)
	out.Plan = planEmailBlocks(v.blocks, desired, v.state, planOptions{
		RequireApproval: o.EmailBlocks.RequireApproval, Missing: o.Rules.Missing(), Unwanted: skips})
	out.Plan.Instance, out.Plan.Server = o.Instance, v.server.String()
	out.Plan.Skipped = sortedSkips(append(out.Plan.Skipped, skips...))
	out.Skipped = len(out.Plan.Skipped)
	s.pruneRefused(desired)
	return out, s.run(ctx)
}

// emailSync is one sync's state.
type emailSync struct {
	r   *run.Run
	d   Deps
	o   Options
	v   *emailBlocksView
	log *slog.Logger
	out *EmailBlocksOutcome
	// readBack is the instance's blocks as read back after the first refused or lost create
	// of the run (nil until then): later ones look there, not at the server again.
	readBack map[string]mastodon.EmailDomainBlock
}

func (s *emailSync) run(ctx context.Context) error {
	p := s.out.Plan
	s.pruneOwned()
	if s.o.DryRun {
		for _, a := range p.Actions {
			res := EmailBlockResult{EmailBlockAction: a, Outcome: OutcomeWouldCreate}
			if a.Action == ActionRemove {
				res.Outcome = OutcomeWouldRemove
			}
			s.out.Results = append(s.out.Results, res)
		}
		s.logPlan()
		return s.archive(ctx)
	}
	if reason := s.guard(); reason != "" {
		return s.hold(ctx, reason)
	}
	runErr := s.apply(ctx)
	s.pruneApproved()
	if err := s.save(ctx); err != nil {
		return err
	}
	s.logPlan()
	if err := s.archive(ctx); err != nil {
		return err
	}
	return runErr
}

// guard returns why the plan must not be applied unattended, or "".
func (s *emailSync) guard() string {
	approved := s.v.state.Approved
	if approved == nil {
		approved = &ApprovedEmailBlocks{}
	}
	adds, removes := 0, 0
	for _, a := range s.out.Plan.Actions {
		switch {
		case a.Action == ActionCreate && !slices.Contains(approved.Create, a.Domain):
			adds++
		case a.Action == ActionRemove && !slices.Contains(approved.Remove, a.Domain):
			removes++
		}
	}
	eo := s.o.EmailBlocks
	if eo.MaxAdditions >= 0 && adds > eo.MaxAdditions {
		return fmt.Sprintf("it would add %d email-domain blocks (email_domain_blocks_max_additions = %d)", adds, eo.MaxAdditions)
	}
	if eo.MaxRemovals >= 0 && removes > eo.MaxRemovals {
		return fmt.Sprintf("it would remove %d email-domain blocks (email_domain_blocks_max_removals = %d)", removes, eo.MaxRemovals)
	}
	return ""
}

// HeldEmailBlocksPlan is a plan a guard held back.
type HeldEmailBlocksPlan struct {
	ID       string             `json:"id"`
	Instance string             `json:"instance"`
	Created  time.Time          `json:"created"`
	Reason   string             `json:"reason"`
	Actions  []EmailBlockAction `json:"actions"`
}

func heldEmailPlanKey(instance, id string) string {
	return emailBlocksPrefix + "pending/" + instance + "/" + id + ".json"
}

func appliedEmailPlanKey(instance, id string) string {
	return emailBlocksPrefix + "pending/" + instance + "/" + id + ".applied"
}

// EmailPlanID identifies a plan by its content, so that the same held plan is stored once.
func EmailPlanID(instance string, actions []EmailBlockAction) string {
	return archive.ContentID(instance, actions)
}

func (s *emailSync) hold(ctx context.Context, reason string) error {
	p := s.out.Plan
	id := EmailPlanID(s.o.Instance, p.Actions)
	hp := HeldEmailBlocksPlan{ID: id, Instance: s.o.Instance, Created: s.d.Clock.Now().UTC(), Reason: reason, Actions: p.Actions}
	b, err := json.MarshalIndent(hp, "", "  ")
	if err != nil {
		return err
	}
	if err := s.r.Fence(ctx); err != nil {
		s.out.Stopped = stopReason(err)
		return nil
	}
	if err := s.d.Store.Create(context.WithoutCancel(ctx), heldEmailPlanKey(s.o.Instance, id), b); err != nil && !errors.Is(err, archive.ErrExists) {
		return fmt.Errorf("archive held email-domain block plan: %w", err)
	}
	s.out.Held, s.out.HeldReason = id, reason
	s.log.Error(fmt.Sprintf("email-domain block plan %s for %s held back: %s; nothing was changed. Review it with `fediops triage email-blocks plan --instance %s` and apply it with `fediops triage email-blocks sync --instance %s --apply-plan %s`",
		id, s.o.Instance, reason, s.o.Instance, s.o.Instance, id),
		"plan", id, "creates", p.Count(ActionCreate), "removals", p.Count(ActionRemove))
	return s.archive(ctx)
}

// approve records a held plan's intent as approved, once.
func (s *emailSync) approve(ctx context.Context, id string) error {
	b, err := s.d.Store.Read(ctx, heldEmailPlanKey(s.o.Instance, id))
	if errors.Is(err, archive.ErrNotFound) {
		return run.MarkPermanent(fmt.Errorf("no held email-domain block plan %s for %s", id, s.o.Instance))
	}
	if err != nil {
		return err
	}
	if _, err := s.d.Store.Read(ctx, appliedEmailPlanKey(s.o.Instance, id)); err == nil {
		return run.MarkPermanent(fmt.Errorf("email-domain block plan %s for %s: %w", id, s.o.Instance, ErrPlanApplied))
	}
	var hp HeldEmailBlocksPlan
	if err := json.Unmarshal(b, &hp); err != nil {
		return run.MarkPermanent(fmt.Errorf("held email-domain block plan %s is corrupt: %w", id, err))
	}
	ap := &ApprovedEmailBlocks{Plan: id}
	for _, a := range hp.Actions {
		if a.Action == ActionCreate {
			ap.Create = append(ap.Create, a.Domain)
		} else {
			ap.Remove = append(ap.Remove, a.Domain)
		}
	}
	s.v.state.Approved = ap
	if err := s.save(ctx); err != nil {
		return err
	}
	if err := s.d.Store.Create(context.WithoutCancel(ctx), appliedEmailPlanKey(s.o.Instance, id), []byte(s.d.Clock.Now().UTC().Format(time.RFC3339))); err != nil && !errors.Is(err, archive.ErrExists) {
		return fmt.Errorf("mark email-domain block plan %s approved: %w", id, err)
	}
	s.log.Info(fmt.Sprintf("email-domain block plan %s for %s approved: %d additions and %d removals go ahead, now and in the next runs until done", id, s.o.Instance, len(ap.Create), len(ap.Remove)), "plan", id)
	return nil
}

// ErrPlanApplied says a held plan was approved before (a repeated command).
var ErrPlanApplied = errors.New("already applied")

// apply sends the plan's actions, removals first; it returns the server error that stopped it.
func (s *emailSync) apply(ctx context.Context) error {
	for i, a := range s.out.Plan.Actions {
		res := EmailBlockResult{EmailBlockAction: a}
		var err error
		if a.Action == ActionCreate {
			err = s.create(ctx, &res)
		} else {
			err = s.remove(ctx, &res)
		}
		if err != nil {
			s.out.Results = append(s.out.Results, res)
			if reason, ok := run.ReasonOf(err); ok {
				s.out.Stopped = reason
				s.out.Deferred += len(s.out.Plan.Actions) - i
				return nil
			}
			s.out.Failed++
			s.out.Stopped = run.ServerError
			s.out.Deferred += len(s.out.Plan.Actions) - i - 1
			return err
		}
		s.out.Results = append(s.out.Results, res)
	}
	return nil
}

func (s *emailSync) create(ctx context.Context, res *EmailBlockResult) error {
	var b mastodon.EmailDomainBlock
	err := s.r.Call(ctx, func() (err error) {
		b, err = s.d.EmailBlocks.CreateEmailDomainBlock(ctx, res.Domain, res.RequireApproval)
		return err
	})
	switch {
	case err == nil:
		s.own(res, b.ID)
		res.Outcome = OutcomeCreated
		s.out.Created++
		return nil
	case isStop(err):
		res.Outcome, res.Error = OutcomeDeferred, errText(err)
		return err
	case mastodon.IsAmbiguous(err) || mastodon.StatusOf(err) == http.StatusUnprocessableEntity:
		// 422 is also what a duplicate gets: read back whether the block is there now.
		found, rerr := s.find(ctx, res.Domain)
		switch {
		case rerr != nil:
			res.Outcome, res.Error = OutcomeFailed, fmt.Sprintf("%v; reading back: %v", err, errText(rerr))
			return cmp.Or(stopOnly(rerr), err)
		case found != nil && mastodon.IsAmbiguous(err):
			s.own(res, found.ID)
			res.Outcome = OutcomeCreatedReadBack
			s.out.Created++
			return nil
		case found != nil:
			res.Outcome = OutcomeTaken
			s.out.Skipped++
			return nil
		case mastodon.IsAmbiguous(err):
			res.Outcome, res.Error = OutcomeDeferred, "answer lost and the block is not there: the next run plans it again"
			s.out.Deferred++
			return nil
		}
		res.Outcome, res.Error = OutcomeFailed, err.Error()
		s.out.Failed++
		if s.v.state.Refused == nil {
			s.v.state.Refused = map[string]string{}
		}
		s.v.state.Refused[res.Domain] = err.Error() // not tried again while a list names it
		return nil                                  // the server refused this domain; the others may go through
	default:
		res.Outcome, res.Error = OutcomeFailed, err.Error()
		return err
	}
}

// stopOnly returns err if it is a stop, else nil.
func stopOnly(err error) error {
	if isStop(err) {
		return err
	}
	return nil
}

func (s *emailSync) remove(ctx context.Context, res *EmailBlockResult) error {
	err := s.r.Call(ctx, func() error { return s.d.EmailBlocks.DeleteEmailDomainBlock(ctx, res.ID) })
	switch {
	case err == nil:
		res.Outcome = OutcomeRemoved
	case mastodon.StatusOf(err) == http.StatusNotFound:
		res.Outcome = OutcomeAlreadyGone
	case isStop(err):
		res.Outcome, res.Error = OutcomeDeferred, errText(err)
		return err
	default:
		res.Outcome, res.Error = OutcomeFailed, err.Error()
		return err
	}
	delete(s.v.state.Owned, res.Domain)
	s.out.Removed++
	return nil
}

func (s *emailSync) own(res *EmailBlockResult, id string) {
	s.v.state.Owned[res.Domain] = OwnedEmailBlock{ID: id, RequireApproval: res.RequireApproval, Lists: res.Lists, Created: s.d.Clock.Now().UTC()}
	if s.readBack != nil {
		s.readBack[res.Domain] = mastodon.EmailDomainBlock{ID: id, Domain: res.Domain}
	}
}

// find returns the block on domain d, if any, as the instance has it now: the blocks are
// read back once per run, and each create that succeeds afterwards is added to that copy.
func (s *emailSync) find(ctx context.Context, d string) (*mastodon.EmailDomainBlock, error) {
	if s.readBack == nil {
		blocks, err := listEmailBlocks(ctx, s.r, s.d.EmailBlocks)
		if err != nil {
			return nil, err
		}
		s.readBack = make(map[string]mastodon.EmailDomainBlock, len(blocks))
		for _, b := range blocks {
			s.readBack[b.Domain] = b
		}
	}
	if b, ok := s.readBack[d]; ok {
		return &b, nil
	}
	return nil, nil
}

// pruneOwned forgets owned blocks that are gone from the instance, or that carry another id
// now (an admin deleted fediops' block and made one): they are not fediops' any more.
func (s *emailSync) pruneOwned() {
	byDomain := map[string]string{}
	for _, b := range s.v.blocks {
		byDomain[b.Domain] = b.ID
	}
	for d, own := range s.v.state.Owned {
		if byDomain[d] != own.ID {
			delete(s.v.state.Owned, d)
		}
	}
}

// pruneRefused forgets refusals of domains no list names any more.
func (s *emailSync) pruneRefused(desired map[string][]string) {
	for d := range s.v.state.Refused {
		if _, ok := desired[d]; !ok {
			delete(s.v.state.Refused, d)
		}
	}
}

// pruneApproved keeps only the approved intent that is still to do.
func (s *emailSync) pruneApproved() {
	ap := s.v.state.Approved
	if ap == nil {
		return
	}
	planned := map[string]string{}
	for _, a := range s.out.Plan.Actions {
		planned[a.Domain] = a.Action
	}
	done := func(action string) func(string) bool {
		return func(d string) bool {
			_, owned := s.v.state.Owned[d]
			if action == ActionCreate {
				return owned || planned[d] != ActionCreate
			}
			return !owned || planned[d] != ActionRemove
		}
	}
	ap.Create = slices.DeleteFunc(ap.Create, done(ActionCreate))
	ap.Remove = slices.DeleteFunc(ap.Remove, done(ActionRemove))
	if len(ap.Create) == 0 && len(ap.Remove) == 0 {
		s.v.state.Approved = nil
	}
}

func (s *emailSync) save(ctx context.Context) error {
	if err := s.r.Fence(ctx); err != nil {
		s.out.Stopped = stopReason(err)
		return nil
	}
	s.v.state.Updated = s.d.Clock.Now().UTC()
	b, err := json.Marshal(s.v.state)
	if err != nil {
		return err
	}
	gen, err := s.d.Store.WriteIf(context.WithoutCancel(ctx), emailStateKey(s.o.Instance), b, s.v.stateGen)
	if err != nil {
		return fmt.Errorf("save email-domain block state: %w", err)
	}
	s.v.stateGen = gen
	return nil
}

func stopReason(err error) run.Reason {
	if reason, ok := run.ReasonOf(err); ok {
		return reason
	}
	return run.LeaseLost
}

// archive writes the plan and results (create-only).
func (s *emailSync) archive(ctx context.Context) error {
	now := s.d.Clock.Now().UTC()
	key := emailBlocksPrefix + "runs/" + s.o.Instance + "/" + now.Format("20060102T150405.000000Z") + "-" + s.o.RunID + ".json"
	b, err := json.MarshalIndent(s.out, "", "  ")
	if err != nil {
		return err
	}
	if err := s.d.Store.Create(context.WithoutCancel(ctx), key, b); err != nil && !errors.Is(err, archive.ErrExists) {
		return fmt.Errorf("archive email-domain block sync: %w", err)
	}
	s.out.Record = s.d.Store.Location(key)
	return nil
}

func (s *emailSync) logPlan() {
	p, out := s.out.Plan, s.out
	verb := "synced"
	if out.DryRun {
		verb = "dry run (nothing changed)"
	}
	level := slog.LevelInfo
	if out.Failed > 0 {
		level = slog.LevelError
	}
	msg := fmt.Sprintf("email-domain blocks of %s %s: %d to create, %d to remove; %d created, %d removed, %d left alone, %d failed, %d deferred",
		s.o.Instance, verb, p.Count(ActionCreate), p.Count(ActionRemove), out.Created, out.Removed, out.Skipped, out.Failed, out.Deferred)
	if out.Stopped != "" {
		msg += " (stopped early: " + out.Stopped.Explain() + ")"
	}
	s.log.Log(context.Background(), level, msg, "instance", s.o.Instance, "creates", p.Count(ActionCreate), "removals", p.Count(ActionRemove),
		"created", out.Created, "removed", out.Removed, "failed", out.Failed, "deferred", out.Deferred)
	for _, r := range out.Results {
		if r.Outcome == OutcomeFailed {
			s.log.Error(fmt.Sprintf("email-domain block %s %s on %s failed: %s", r.Action, r.Domain, s.o.Instance, r.Error), "domain", r.Domain)
		}
	}
}

func emailStateKey(instance string) string { return emailBlocksPrefix + "state/" + instance + ".json" }

func loadEmailBlockState(ctx context.Context, store archive.Store, instance string) (*EmailBlockState, int64, error) {
	st := &EmailBlockState{Instance: instance, Owned: map[string]OwnedEmailBlock{}}
	b, gen, err := store.ReadVersion(ctx, emailStateKey(instance))
	if errors.Is(err, archive.ErrNotFound) {
		return st, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read email-domain block state: %w", err)
	}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, 0, run.MarkPermanent(fmt.Errorf("email-domain block state %s is corrupt: %w", store.Location(emailStateKey(instance)), err))
	}
	if st.Owned == nil {
		st.Owned = map[string]OwnedEmailBlock{}
	}
	return st, gen, nil
}

// desiredEmailBlocks is the reject list as email-domain blocks: every reject entry of the
// lists (not the instance's own blocks), by domain with the lists naming it, except entries
// with an approve (or hold) entry beneath them and domains that name other organisations'
// mail servers.
func desiredEmailBlocks(rules *Rules, mailHosts map[string]string) (map[string][]string, []EmailBlockSkip) {
	beneath := map[string]string{}
	for _, dec := range []Decision{Approve, Hold} {
		for suffix, lists := range rules.Suffixes(dec) {
			for _, v := range domain.Variants(suffix) {
				if _, ok := beneath[v]; !ok {
					beneath[v] = lists[0] + ": " + suffix
				}
			}
		}
	}
	desired := map[string][]string{}
	var skips []EmailBlockSkip
	for suffix, lists := range rules.Suffixes(Reject) {
		lists = slices.DeleteFunc(lists, func(l string) bool { return strings.HasPrefix(l, ListEmailDomainBlock) })
		switch {
		case len(lists) == 0:
		case mailHosts[suffix] != "":
			skips = append(skips, EmailBlockSkip{Domain: suffix, Reason: SkipMailHost,
				Detail: "it also names the mail servers of other organisations' domains: " + mailHosts[suffix] + "; Mastodon would refuse them all. Triage still rejects its own addresses"})
		case beneath[suffix] != "":
			skips = append(skips, EmailBlockSkip{Domain: suffix, Reason: SkipApproveBeneath,
				Detail: beneath[suffix] + " lies beneath it; a block would refuse those sign-ups too"})
		default:
			desired[suffix] = lists
		}
	}
	return desired, skips
}

type planOptions struct {
	RequireApproval bool
	Missing         []MissingList
	// Unwanted are the reject entries left out of the blocks, which say why an owned block
	// on one of them goes.
	Unwanted []EmailBlockSkip
}

// planEmailBlocks computes the actions that make the instance's blocks match desired,
// touching only blocks fediops owns.
func planEmailBlocks(current []mastodon.EmailDomainBlock, desired map[string][]string, st *EmailBlockState, o planOptions) *EmailBlocksPlan {
	p := &EmailBlocksPlan{Blocks: len(current)}
	byDomain := make(map[string]mastodon.EmailDomainBlock, len(current))
	for _, b := range current {
		byDomain[b.Domain] = b
	}
	owned := func(b mastodon.EmailDomainBlock) bool {
		own, ok := st.Owned[b.Domain]
		return ok && own.ID == b.ID
	}
	var approveDown, rejectDown []string
	for _, m := range o.Missing {
		if m.Decision == Approve {
			approveDown = append(approveDown, m.List)
		} else {
			rejectDown = append(rejectDown, m.List)
		}
	}
	for _, d := range sortedKeys(desired) {
		lists := desired[d]
		b, exists := byDomain[d]
		switch {
		case !exists && st.Refused[d] != "":
			p.Skipped = append(p.Skipped, EmailBlockSkip{Domain: d, Reason: SkipRefused, Detail: "the server refused it before: " + st.Refused[d]})
		case !exists && len(approveDown) > 0:
			p.Skipped = append(p.Skipped, EmailBlockSkip{Domain: d, Reason: SkipApproveListDown, Detail: approveDown[0] + " cannot be read: no block is added until it can"})
		case !exists:
			p.Actions = append(p.Actions, EmailBlockAction{Action: ActionCreate, Domain: d, RequireApproval: o.RequireApproval, Reason: "listed by " + strings.Join(lists, ", "), Lists: lists})
		case owned(b) && b.RequiresApproval() != o.RequireApproval:
			// No update endpoint: replace the block to change allow_with_approval.
			p.Actions = append(p.Actions,
				EmailBlockAction{Action: ActionRemove, Domain: d, ID: b.ID, Reason: "email_domain_blocks_require_approval changed: replaced", Lists: lists},
				EmailBlockAction{Action: ActionCreate, Domain: d, RequireApproval: o.RequireApproval, Reason: "email_domain_blocks_require_approval changed: replaced", Lists: lists})
		case !owned(b):
			p.Skipped = append(p.Skipped, EmailBlockSkip{Domain: d, Reason: SkipManualBlock, Detail: "the instance already has a block on it that fediops did not make; left as it is"})
		}
	}
	unwanted := map[string]string{}
	for _, s := range o.Unwanted {
		unwanted[s.Domain] = s.Detail
	}
	for _, b := range current {
		if !owned(b) {
			continue
		}
		p.Owned++
		if _, want := desired[b.Domain]; want {
			continue
		}
		listed := st.Owned[b.Domain].Lists
		if down := slices.IndexFunc(rejectDown, func(l string) bool { return len(listed) == 0 || slices.Contains(listed, l) }); down >= 0 {
			p.Skipped = append(p.Skipped, EmailBlockSkip{Domain: b.Domain, Reason: SkipSourceUnavailable, Detail: rejectDown[down] + " cannot be read; kept until it can"})
			continue
		}
		reason := "retracted: no list names it any more"
		if why := unwanted[b.Domain]; why != "" {
			reason = "listed, but no longer made a block: " + why
		}
		p.Actions = append(p.Actions, EmailBlockAction{Action: ActionRemove, Domain: b.Domain, ID: b.ID, Reason: reason, Lists: st.Owned[b.Domain].Lists})
	}
	slices.SortStableFunc(p.Actions, func(a, b EmailBlockAction) int {
		return cmp.Or(cmp.Compare(actionOrder(a.Action), actionOrder(b.Action)), strings.Compare(a.Domain, b.Domain))
	})
	return p
}

func actionOrder(a string) int {
	if a == ActionRemove {
		return 0 // removals first: a replacement removes before it creates
	}
	return 1
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func sortedSkips(s []EmailBlockSkip) []EmailBlockSkip {
	slices.SortStableFunc(s, func(a, b EmailBlockSkip) int { return strings.Compare(a.Domain, b.Domain) })
	return s
}

// EmailBlocksOptions configure SyncEmailBlocks.
type EmailBlocksOptions struct {
	Instance string
	Rules    *Rules
	DryRun   bool
	LeaseTTL time.Duration
	RunID    string
	Blocks   EmailBlockOptions
	// StopBefore is how long before the deadline the run stops starting new requests.
	StopBefore time.Duration
}

// SyncEmailBlocks runs email-domain block sync alone (`fediops triage email-blocks plan|sync`),
// on the instance's triage lease so that it never overlaps a triage run.
func SyncEmailBlocks(ctx context.Context, d Deps, eo EmailBlocksOptions) (*EmailBlocksOutcome, error) {
	eo.Blocks.Sync = true
	o := Options{Instance: eo.Instance, Rules: eo.Rules, DryRun: eo.DryRun, LeaseTTL: eo.LeaseTTL, RunID: eo.RunID,
		StopBefore: eo.StopBefore, EmailBlocks: eo.Blocks}
	log := d.Log.With("instance", o.Instance, "dry_run", o.DryRun)
	r, err := run.Start(ctx, run.Options{Store: d.Store, Clock: d.Clock, Log: log, Lease: "triage/" + o.Instance,
		Holder: o.RunID, TTL: o.LeaseTTL, StopBefore: o.StopBefore})
	if reason, ok := run.ReasonOf(err); ok {
		return &EmailBlocksOutcome{Instance: o.Instance, DryRun: o.DryRun, Stopped: reason}, fmt.Errorf("email-domain blocks %s: %w", o.Instance, err)
	}
	if err != nil {
		return nil, fmt.Errorf("email-domain blocks %s: %w", o.Instance, err)
	}
	defer func() { _ = r.End(ctx) }()
	v, err := prepareEmailBlocks(ctx, r, d, &o, log)
	if err != nil {
		out := &EmailBlocksOutcome{Instance: o.Instance, DryRun: o.DryRun}
		if reason, ok := run.ReasonOf(err); ok {
			out.Stopped = reason
			return out, nil
		}
		return out, fmt.Errorf("email-domain blocks %s: %w", o.Instance, err)
	}
	out, err := syncEmailBlocks(ctx, r, d, o, v, log)
	if err != nil {
		return out, fmt.Errorf("email-domain blocks %s: %w", o.Instance, err)
	}
	return out, nil
}

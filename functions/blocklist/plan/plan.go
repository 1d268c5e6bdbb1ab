// Package plan computes what a blocklist sync changes on one instance: which domain blocks to
// create, update and remove so that the instance matches the merged list, without ever
// touching what fediops does not own. It is pure: the instance's current blocks, the merged
// list and the ownership state go in, a plan comes out.
//
// The rules, in the words an admin would use:
//
//   - fediops updates, downgrades or removes only the blocks it created (they carry a marker in
//     their private comment and are recorded in the state). A manual block is never touched,
//     unless AdoptOrphans is set and a source lists its domain.
//   - An owned block that an admin changed by hand since fediops last applied it is left alone
//     and reported: the admin's decision wins.
//   - A block whose domain has left every source is removed (RemoveRetracted), and so is an
//     owned block on an allowlisted domain.
//   - Only the managed fields (severity, plus the import_fields) are compared and sent; nothing
//     changed means no request.
//   - An entry Mastodon would refuse (a subdomain not stricter than an existing parent block)
//     is skipped and reported instead of being tried every run.
//   - On servers without severities or updates (GoToSocial) only suspensions are applied.
package plan

import (
	"cmp"
	"slices"
	"strings"

	"github.com/fediops/fediops/functions/blocklist/lists"
	"github.com/fediops/fediops/shared/domain"
)

// Fields are the parts of a domain block that a sync manages.
type Fields struct {
	Severity      lists.Severity `json:"severity"`
	RejectMedia   bool           `json:"reject_media"`
	RejectReports bool           `json:"reject_reports"`
	Obfuscate     bool           `json:"obfuscate"`
	PublicComment string         `json:"public_comment"`
}

// FieldsOf returns the managed fields of a block.
func FieldsOf(b lists.Block) Fields {
	return Fields{Severity: b.Severity, RejectMedia: b.RejectMedia, RejectReports: b.RejectReports, Obfuscate: b.Obfuscate, PublicComment: b.PublicComment}
}

// Field names, as in import_fields.
const (
	FieldSeverity      = "severity"
	FieldRejectMedia   = "reject_media"
	FieldRejectReports = "reject_reports"
	FieldObfuscate     = "obfuscate"
	FieldPublicComment = "public_comment"
)

// Existing is a block as the instance has it.
type Existing struct {
	ID     string `json:"id"`
	Domain string `json:"domain"` // normalised
	Fields
	PrivateComment string `json:"private_comment"`
}

// Owned is what fediops recorded about a block it created or adopted.
type Owned struct {
	ID      string   `json:"id"`
	Domain  string   `json:"domain"`
	Applied Fields   `json:"applied"`
	Sources []string `json:"sources,omitempty"`
}

// Desired is an entry of the merged list with the names of the sources that list it.
type Desired struct {
	lists.Block
	Sources []string
}

// Kind of action.
type Kind string

// Action kinds.
const (
	Create Kind = "create"
	Update Kind = "update"
	Remove Kind = "remove"
)

// Action is one request to the instance.
type Action struct {
	Kind   Kind   `json:"action"`
	Domain string `json:"domain"`
	ID     string `json:"id,omitempty"` // the block's id for update and remove
	// From is the block before (update, remove); To the block after (create, update).
	From *Fields `json:"from,omitempty"`
	To   *Fields `json:"to,omitempty"`
	// Changed names the fields an update sends.
	Changed []string `json:"changed,omitempty"`
	// PrivateComment is set on create, and on adoption (the marker is added).
	PrivateComment string `json:"private_comment,omitempty"`
	Reason         string `json:"reason"`
	// FollowCheck asks the applier to check the instance's follows before this suspension.
	FollowCheck bool     `json:"follow_check,omitempty"`
	Sources     []string `json:"sources,omitempty"`
	Adopt       bool     `json:"adopt,omitempty"`
}

// Skip reasons (stable codes for reports).
const (
	SkipManual          = "manual_block"            // a block fediops does not own exists
	SkipLessStrict      = "less_strict_than_manual" // the entry is less strict than a manual block
	SkipAdminModified   = "changed_by_admin"        // an owned block was changed by hand
	SkipCoveredByParent = "covered_by_parent"       // Mastodon would refuse it (422)
	SkipUnsupportedSev  = "unsupported_severity"    // the server cannot silence or noop
	SkipUnsupportedUpd  = "unsupported_update"      // the server cannot update a block
	SkipAllowlisted     = "allowlisted"
	SkipSourceUnread    = "source_unavailable" // retracted, but a source that listed it could not be read
)

// Skip is an entry the plan leaves alone, with why.
type Skip struct {
	Domain string `json:"domain"`
	Reason string `json:"reason"`
	Detail string `json:"detail,omitempty"`
}

// Plan is the outcome of Compute.
type Plan struct {
	Actions []Action `json:"actions"`
	Skipped []Skip   `json:"skipped,omitempty"`
	// Blocks is how many blocks the instance had; Owned how many of them fediops owns.
	Blocks int `json:"blocks"`
	Owned  int `json:"owned"`
}

// Count returns the number of actions of kind k.
func (p *Plan) Count(k Kind) int {
	n := 0
	for _, a := range p.Actions {
		if a.Kind == k {
			n++
		}
	}
	return n
}

// Capabilities are what the destination server can do.
type Capabilities struct {
	Severities bool // silence and noop exist (Mastodon); GoToSocial: every block is a suspension
	Update     bool // PUT exists (Mastodon; GoToSocial from 0.19)
}

// Options configure Compute.
type Options struct {
	// Marker starts the private comment of every block fediops creates (default "fediops:").
	Marker string
	// Managed are the optional fields compared and sent besides severity (import_fields).
	Managed []string
	// AdoptOrphans makes a manual block that a source lists owned.
	AdoptOrphans bool
	// RemoveRetracted removes owned blocks whose domain has left every source.
	RemoveRetracted bool
	// MaxFollowedSeverity: creating or raising a block above it needs a follow check.
	MaxFollowedSeverity lists.Severity
	Caps                Capabilities
	// Allowed reports whether a domain is allowlisted (never blocked).
	Allowed func(domain string) bool
	// Unread names the sources that could not be read this run (no fresh copy and no last good
	// one). A block is retracted only when every source that listed it was read: a failed
	// input never widens what is removed.
	Unread map[string]bool
	// Only limits the removals considered to these domains (nil: all). It is how approved
	// work is planned again: only the domains it covers may change.
	Only map[string]bool
}

// DefaultMarker is the default ownership marker.
const DefaultMarker = "fediops:"

// Owns reports whether a block carries the marker.
func (o Options) Owns(privateComment string) bool {
	return strings.HasPrefix(strings.TrimSpace(privateComment), o.marker())
}

func (o Options) marker() string {
	if o.Marker == "" {
		return DefaultMarker
	}
	return o.Marker
}

// PrivateComment returns the private comment of a block fediops creates.
func (o Options) PrivateComment(sources []string) string {
	return o.marker() + " " + strings.Join(sources, ", ")
}

func (o Options) manages(field string) bool {
	return field == FieldSeverity || slices.Contains(o.Managed, field)
}

// diff lists the managed fields where want differs from have.
func (o Options) diff(have, want Fields) []string {
	var out []string
	if have.Severity != want.Severity {
		out = append(out, FieldSeverity)
	}
	if o.manages(FieldRejectMedia) && have.RejectMedia != want.RejectMedia {
		out = append(out, FieldRejectMedia)
	}
	if o.manages(FieldRejectReports) && have.RejectReports != want.RejectReports {
		out = append(out, FieldRejectReports)
	}
	if o.manages(FieldObfuscate) && have.Obfuscate != want.Obfuscate {
		out = append(out, FieldObfuscate)
	}
	if o.manages(FieldPublicComment) && have.PublicComment != want.PublicComment {
		out = append(out, FieldPublicComment)
	}
	return out
}

// managedOnly returns want with the unmanaged fields taken from have, so that an update
// preserves what an admin set there.
func (o Options) managedOnly(have, want Fields) Fields {
	out := have
	out.Severity = want.Severity
	if o.manages(FieldRejectMedia) {
		out.RejectMedia = want.RejectMedia
	}
	if o.manages(FieldRejectReports) {
		out.RejectReports = want.RejectReports
	}
	if o.manages(FieldObfuscate) {
		out.Obfuscate = want.Obfuscate
	}
	if o.manages(FieldPublicComment) {
		out.PublicComment = want.PublicComment
	}
	return out
}

// forCreate returns the fields a new block gets: the unmanaged ones at Mastodon's defaults.
func (o Options) forCreate(want Fields) Fields {
	return o.managedOnly(Fields{}, want)
}

// Compute plans the sync of one instance. current are the instance's blocks, desired the
// merged list, state what fediops owns (by domain).
func Compute(current []Existing, desired []Desired, state map[string]Owned, o Options) *Plan {
	p := &Plan{Blocks: len(current)}
	allowed := o.Allowed
	if allowed == nil {
		allowed = func(string) bool { return false }
	}
	byDomain := make(map[string]Existing, len(current))
	for _, e := range current {
		byDomain[e.Domain] = e
	}
	owned := func(e Existing) bool {
		if o.Owns(e.PrivateComment) {
			return true
		}
		s, ok := state[e.Domain]
		return ok && s.ID == e.ID
	}
	for _, e := range current {
		if owned(e) {
			p.Owned++
		}
	}

	wanted := make(map[string]bool, len(desired))
	for _, d := range desired {
		if !o.Caps.Severities && d.Severity != lists.Suspend {
			// GoToSocial knows only suspensions: a silence or noop entry cannot be applied,
			// and does not keep an owned suspension alive either.
			p.skip(d.Domain, SkipUnsupportedSev, "the server has no "+d.Severity.String()+"; only suspensions are applied")
			continue
		}
		if allowed(d.Domain) {
			p.skip(d.Domain, SkipAllowlisted, "")
			continue
		}
		wanted[d.Domain] = true
		want := FieldsOf(d.Block)
		e, exists := byDomain[d.Domain]
		switch {
		case !exists:
			p.planCreate(d, want, byDomain, o)
		case owned(e):
			p.planOwned(e, d, want, state, o)
		case o.AdoptOrphans:
			p.planAdopt(e, d, want, o)
		case want.Severity > e.Severity:
			p.skip(d.Domain, SkipManual, "a manual "+e.Severity.String()+" block exists and the lists say "+want.Severity.String()+
				"; fediops does not touch manual blocks (adopt_orphans lets it)")
		case want.Severity < e.Severity:
			p.skip(d.Domain, SkipLessStrict, "the lists say "+want.Severity.String()+", less strict than the manual "+e.Severity.String()+" block")
		default:
			p.skip(d.Domain, SkipManual, "already blocked manually ("+e.Severity.String()+")")
		}
	}

	for _, e := range current {
		if wanted[e.Domain] || !owned(e) || (o.Only != nil && !o.Only[e.Domain]) {
			continue
		}
		p.planRemoval(e, state, o, allowed(e.Domain))
	}
	slices.SortStableFunc(p.Actions, func(a, b Action) int {
		return cmp.Or(cmp.Compare(kindOrder(a.Kind), kindOrder(b.Kind)), strings.Compare(a.Domain, b.Domain))
	})
	slices.SortStableFunc(p.Skipped, func(a, b Skip) int { return strings.Compare(a.Domain, b.Domain) })
	return p
}

func (p *Plan) planRemoval(e Existing, state map[string]Owned, o Options, allowlisted bool) {
	from := e.Fields
	s, recorded := state[e.Domain]
	switch {
	case allowlisted:
		p.Actions = append(p.Actions, Action{Kind: Remove, Domain: e.Domain, ID: e.ID, From: &from, Reason: "the domain is allowlisted"})
	case !o.RemoveRetracted:
	case recorded && s.ID == e.ID && o.diff(s.Applied, e.Fields) != nil:
		p.skip(e.Domain, SkipAdminModified, "retracted by the lists, but changed by an admin since fediops applied it")
	case len(o.Unread) > 0 && (len(s.Sources) == 0 || slices.ContainsFunc(s.Sources, func(src string) bool { return o.Unread[src] })):
		p.skip(e.Domain, SkipSourceUnread, "no longer in the lists read, but a source that listed it could not be read; kept until it can")
	default:
		p.Actions = append(p.Actions, Action{Kind: Remove, Domain: e.Domain, ID: e.ID, From: &from, Reason: "retracted: no source lists it any more"})
	}
}

// Removals first (they can only make room), then updates, then creates.
func kindOrder(k Kind) int {
	switch k {
	case Remove:
		return 0
	case Update:
		return 1
	default:
		return 2
	}
}

func (p *Plan) skip(d, reason, detail string) {
	p.Skipped = append(p.Skipped, Skip{Domain: d, Reason: reason, Detail: detail})
}

// ruleFor is Mastodon's DomainBlock.rule_for: the most specific existing block on d's parents.
func ruleFor(d string, byDomain map[string]Existing) (Existing, bool) {
	for _, v := range domain.Variants(d)[1:] {
		if e, ok := byDomain[v]; ok {
			return e, true
		}
	}
	return Existing{}, false
}

func (p *Plan) planCreate(d Desired, want Fields, byDomain map[string]Existing, o Options) {
	// Mastodon refuses a block under a parent block it is not stricter than (GoToSocial has
	// no such check and takes every block).
	if parent, ok := ruleFor(d.Domain, byDomain); ok && o.Caps.Severities {
		child := lists.Block{Severity: want.Severity, RejectMedia: want.RejectMedia, RejectReports: want.RejectReports}
		par := lists.Block{Severity: parent.Severity, RejectMedia: parent.RejectMedia, RejectReports: parent.RejectReports}
		if !child.StricterThan(par) {
			p.skip(d.Domain, SkipCoveredByParent, "the existing "+parent.Severity.String()+" block on "+parent.Domain+" covers it")
			return
		}
	}
	to := o.forCreate(want)
	p.Actions = append(p.Actions, Action{
		Kind: Create, Domain: d.Domain, To: &to, PrivateComment: o.PrivateComment(d.Sources),
		Reason: "listed by " + strings.Join(d.Sources, ", "), FollowCheck: o.Caps.Severities && want.Severity > o.MaxFollowedSeverity,
		Sources: d.Sources,
	})
}

func (p *Plan) planOwned(e Existing, d Desired, want Fields, state map[string]Owned, o Options) {
	if s, ok := state[e.Domain]; ok && s.ID == e.ID && o.diff(s.Applied, e.Fields) != nil {
		p.skip(e.Domain, SkipAdminModified, "changed by an admin since fediops applied it; the admin's version stays")
		return
	}
	changed := o.diff(e.Fields, want)
	if len(changed) == 0 {
		return
	}
	if !o.Caps.Update {
		p.skip(e.Domain, SkipUnsupportedUpd, "the server cannot update a block ("+strings.Join(changed, ", ")+" would change)")
		return
	}
	from, to := e.Fields, o.managedOnly(e.Fields, want)
	p.Actions = append(p.Actions, Action{
		Kind: Update, Domain: e.Domain, ID: e.ID, From: &from, To: &to, Changed: changed,
		Reason:      "the lists changed: " + strings.Join(changed, ", "),
		FollowCheck: o.Caps.Severities && want.Severity > e.Severity && want.Severity > o.MaxFollowedSeverity,
		Sources:     d.Sources,
	})
}

func (p *Plan) planAdopt(e Existing, d Desired, want Fields, o Options) {
	changed := o.diff(e.Fields, want)
	if len(changed) > 0 && !o.Caps.Update {
		p.skip(e.Domain, SkipUnsupportedUpd, "cannot adopt: the server cannot update a block")
		return
	}
	from, to := e.Fields, o.managedOnly(e.Fields, want)
	comment := o.PrivateComment(d.Sources)
	if strings.TrimSpace(e.PrivateComment) != "" {
		comment += " | " + e.PrivateComment // keep what the admin wrote
	}
	p.Actions = append(p.Actions, Action{
		Kind: Update, Domain: e.Domain, ID: e.ID, From: &from, To: &to, Changed: changed,
		PrivateComment: comment, Adopt: true,
		Reason:      "adopting a manual block that " + strings.Join(d.Sources, ", ") + " list",
		FollowCheck: o.Caps.Severities && want.Severity > e.Severity && want.Severity > o.MaxFollowedSeverity,
		Sources:     d.Sources,
	})
}

package blocklist

import (
	"github.com/fediops/fediops/functions/blocklist/lists"
	"github.com/fediops/fediops/functions/blocklist/plan"
)

// Basis says what approved work was planned from.
type Basis string

// Bases of approved work.
const (
	// BasisLists: the merged lists. When the work resumes, a domain that has left the lists
	// meanwhile is no longer created, and one that came back is no longer removed.
	BasisLists Basis = ""
	// BasisRollback: an archived snapshot's state, which the lists do not change.
	BasisRollback Basis = "rollback"
)

// Intent is approved work that a later run (or a redelivered message) carries on: per domain,
// what should hold (the wanted fields and the sources that list it) or that its owned block
// should go, with why. It is never a stored request: resuming it plans these domains again
// against the instance's blocks at that moment, with the same rules as a fresh plan, so an
// owned block that an admin changed meanwhile keeps the admin's version.
type Intent struct {
	Basis  Basis       `json:"basis,omitempty"`
	Want   []wantEntry `json:"want,omitempty"`
	Remove []removal   `json:"remove,omitempty"`
}

// wantEntry is a domain that should be blocked with these fields.
type wantEntry struct {
	Domain  string      `json:"domain"`
	Fields  plan.Fields `json:"fields"`
	Sources []string    `json:"sources,omitempty"`
	Reason  string      `json:"reason,omitempty"`
}

// removal is a domain whose owned block should go.
type removal struct {
	Domain string `json:"domain"`
	Reason string `json:"reason,omitempty"`
}

// Len is the number of domains the intent covers.
func (in Intent) Len() int { return len(in.Want) + len(in.Remove) }

// intentOf turns planned actions into the intent behind them.
func intentOf(actions []plan.Action, basis Basis) Intent {
	in := Intent{Basis: basis}
	for _, a := range actions {
		switch {
		case a.Kind == plan.Remove:
			in.Remove = append(in.Remove, removal{Domain: a.Domain, Reason: a.Reason})
		case a.To != nil:
			in.Want = append(in.Want, wantEntry{Domain: a.Domain, Fields: *a.To, Sources: a.Sources, Reason: a.Reason})
		}
	}
	return in
}

// planIntent plans approved work again against the instance's blocks now (current) and what
// fediops owns (owned). fresh is this run's merged list, if it has one: with BasisLists, the
// domains that left it are no longer created and those that came back are not removed. Only
// the intent's domains can change.
func planIntent(current []plan.Existing, in Intent, fresh *Desired, owned map[string]plan.Owned, o plan.Options) *plan.Plan {
	byLists := in.Basis != BasisRollback && fresh != nil
	only := map[string]bool{}
	var want []plan.Desired
	for _, w := range in.Want {
		if byLists && !fresh.Listed(w.Domain) {
			continue
		}
		only[w.Domain] = true
		f := w.Fields
		want = append(want, plan.Desired{Block: lists.Block{Domain: w.Domain, Severity: f.Severity, RejectMedia: f.RejectMedia,
			RejectReports: f.RejectReports, Obfuscate: f.Obfuscate, PublicComment: f.PublicComment}, Sources: w.Sources})
	}
	for _, r := range in.Remove {
		if byLists && fresh.Listed(r.Domain) {
			continue
		}
		only[r.Domain] = true
	}
	o.Only, o.RemoveRetracted = only, true
	if byLists {
		o.Allowed, o.Unread = fresh.Allowed, fresh.Unread
	}
	return plan.Compute(current, want, owned, o)
}

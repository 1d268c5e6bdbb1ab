// Package approve is registration triage: it decides pending sign-ups by their email domain
// and approves or rejects them, leaving everything else for a human.
package approve

import (
	"fmt"
	"slices"
	"strings"

	"github.com/fediops/fediops/shared/domain"
)

// Decision is what triage does with a pending account.
type Decision string

// The decisions.
const (
	Approve Decision = "approve"
	Reject  Decision = "reject"
	Hold    Decision = "hold" // left pending for a human
)

// Verdict is the outcome of classifying one email address.
type Verdict struct {
	Email    string   `json:"email"`
	Decision Decision `json:"decision"`
	// Rule names the matching entry ("approve_domains: gov") or says why the address is held.
	Rule string `json:"rule"`
	// Domain is the normalised email domain ("" if the address is malformed).
	Domain string `json:"-"`
}

// Rules are the domain suffixes that decide sign-ups, normalised, each with the list it comes
// from (approve_domains, a preset, a list source, the instance's email-domain blocks), and
// the lists that could not be read this run.
type Rules struct {
	entries map[string][]Entry // by suffix
	missing []MissingList
}

// Entry is one suffix of one list: what it decides and the list it comes from.
type Entry struct {
	Decision Decision // Approve, Reject or Hold (an email-domain block that requires approval)
	List     string   // "approve_domains", "reject_domain_sources disposable", "email_domain_block", ...
}

// RuleSet is a list's suffixes and what they decide.
type RuleSet struct {
	Decision Decision
	List     string
	Domains  []string
}

// MissingList is a list that could not be read, with no last good copy: a decision it could
// have overturned is held.
type MissingList struct {
	Decision Decision // what the list's entries would have decided
	List     string
}

// NewRules normalises the suffix lists (trim, lower-case, trailing dot, IDNA to punycode;
// a leading "." or "*." is ignored). An entry in both lists is an error.
func NewRules(approve, reject []string) (*Rules, error) {
	return BuildRules([]RuleSet{{Approve, "approve_domains", approve}, {Reject, "reject_domains", reject}}, nil)
}

// BuildRules normalises the sets' suffixes. An invalid entry is an error, and so is a suffix
// that approve_domains and reject_domains both list (the configuration contradicts itself);
// other lists that disagree on a suffix hold the addresses under it.
func BuildRules(sets []RuleSet, missing []MissingList) (*Rules, error) {
	r := &Rules{entries: map[string][]Entry{}, missing: slices.Clone(missing)}
	for _, set := range sets {
		for _, d := range set.Domains {
			n, err := NormalizeSuffix(d)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", set.List, err)
			}
			r.add(n, Entry{set.Decision, set.List})
		}
	}
	for d, es := range r.entries {
		if hasEntry(es, "approve_domains") && hasEntry(es, "reject_domains") {
			return nil, fmt.Errorf("%q is in both approve_domains and reject_domains", d)
		}
	}
	return r, nil
}

func hasEntry(es []Entry, list string) bool {
	return slices.ContainsFunc(es, func(e Entry) bool { return e.List == list })
}

func (r *Rules) add(suffix string, e Entry) {
	if !slices.Contains(r.entries[suffix], e) {
		r.entries[suffix] = append(r.entries[suffix], e)
	}
}

// With returns a copy of r with more entries (already normalised, e.g. the instance's
// email-domain blocks) and more missing lists.
func (r *Rules) With(sets []RuleSet, missing []MissingList) *Rules {
	out := &Rules{entries: make(map[string][]Entry, len(r.entries)), missing: append(slices.Clone(r.missing), missing...)}
	for d, es := range r.entries {
		out.entries[d] = slices.Clone(es)
	}
	for _, set := range sets {
		for _, d := range set.Domains {
			if n, err := NormalizeSuffix(d); err == nil {
				out.add(n, Entry{set.Decision, set.List})
			}
		}
	}
	return out
}

// Missing returns the lists that could not be read.
func (r *Rules) Missing() []MissingList { return slices.Clone(r.missing) }

// Suffixes returns the suffixes with an entry deciding d, each with the lists of those entries
// (in the order the lists were given).
func (r *Rules) Suffixes(d Decision) map[string][]string {
	out := map[string][]string{}
	for s, es := range r.entries {
		for _, e := range es {
			if e.Decision == d {
				out[s] = append(out[s], e.List)
			}
		}
	}
	return out
}

// Classify decides an email address. The domain is matched against the rule entries on label
// boundaries, the most specific entry first: a reject entry "contractor.agency.gov" beats the
// approve entry "gov" for "x@contractor.agency.gov". A malformed address is held, never
// approved. Lists that disagree on the deciding suffix hold the address, and so does a list
// that could not be read when it could have overturned the decision: a missing reject list
// holds what would be approved, a missing approve list what would be rejected.
func (r *Rules) Classify(email string) Verdict {
	v := Verdict{Email: email, Decision: Hold}
	d, why := EmailDomain(email)
	if why != "" {
		v.Rule = "malformed address: " + why
		return v
	}
	v.Domain = d
	for _, candidate := range domain.Variants(d) {
		es := r.entries[candidate]
		if len(es) == 0 {
			continue
		}
		if other := slices.IndexFunc(es, func(e Entry) bool { return e.Decision != es[0].Decision }); other >= 0 {
			v.Rule = fmt.Sprintf("conflict: %s and %s both list %s", es[0].List, es[other].List, candidate)
			return v
		}
		v.Decision, v.Rule = es[0].Decision, es[0].List+": "+candidate
		r.holdIfMissing(&v)
		return v
	}
	v.Rule = "no rule matches " + d
	if m := r.firstMissing(Approve); m != "" {
		v.Rule = "held: " + m + " unavailable; no other rule matches " + d
	}
	return v
}

// holdIfMissing holds a decision that an unreadable list of the other kind could have
// overturned.
func (r *Rules) holdIfMissing(v *Verdict) {
	var against Decision
	switch v.Decision {
	case Approve:
		against = Reject
	case Reject:
		against = Approve
	default:
		return
	}
	if m := r.firstMissing(against); m != "" {
		v.Rule = fmt.Sprintf("held: %s unavailable (would %s by %s)", m, v.Decision, v.Rule)
		v.Decision = Hold
	}
}

func (r *Rules) firstMissing(d Decision) string {
	for _, m := range r.missing {
		if m.Decision == d {
			return m.List
		}
	}
	return ""
}

// EmailDomain returns the normalised domain of an email address, or why the address is
// malformed: no "@", several "@", an empty or space-containing local part, or an invalid
// domain.
func EmailDomain(email string) (string, string) {
	e := strings.TrimSpace(email)
	switch strings.Count(e, "@") {
	case 0:
		return "", "no @"
	case 1:
	default:
		return "", "several @"
	}
	local, host, _ := strings.Cut(e, "@")
	if local == "" {
		return "", "empty local part"
	}
	if strings.ContainsAny(local, " \t\r\n") {
		return "", "space in local part"
	}
	if strings.HasSuffix(strings.TrimSpace(host), "..") || strings.HasPrefix(host, ".") {
		return "", "invalid domain"
	}
	d, err := domain.Normalize(host)
	if err != nil {
		return "", "invalid domain"
	}
	if !strings.Contains(d, ".") {
		return "", "domain without a dot"
	}
	return d, ""
}

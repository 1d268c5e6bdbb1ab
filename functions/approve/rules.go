// Package approve is registration triage: it decides pending sign-ups by their email domain
// and approves or rejects them, leaving everything else for a human.
package approve

import (
	"fmt"
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

// Rules are the approve and reject domain suffixes, normalised.
type Rules struct {
	approve map[string]bool
	reject  map[string]bool
}

// NewRules normalises the suffix lists (trim, lower-case, trailing dot, IDNA to punycode;
// a leading "." or "*." is ignored). An entry in both lists is an error.
func NewRules(approve, reject []string) (*Rules, error) {
	r := &Rules{approve: map[string]bool{}, reject: map[string]bool{}}
	for _, list := range []struct {
		name string
		in   []string
		set  map[string]bool
	}{{"approve_domains", approve, r.approve}, {"reject_domains", reject, r.reject}} {
		for _, d := range list.in {
			n, err := NormalizeSuffix(d)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", list.name, err)
			}
			list.set[n] = true
		}
	}
	for d := range r.approve {
		if r.reject[d] {
			return nil, fmt.Errorf("%q is in both approve_domains and reject_domains", d)
		}
	}
	return r, nil
}

// Classify decides an email address. The domain is matched against the rule entries on label
// boundaries, the most specific entry first: a reject entry "contractor.agency.gov" beats the
// approve entry "gov" for "x@contractor.agency.gov". A malformed address is held, never
// approved.
func (r *Rules) Classify(email string) Verdict {
	v := Verdict{Email: email, Decision: Hold}
	d, why := EmailDomain(email)
	if why != "" {
		v.Rule = "malformed address: " + why
		return v
	}
	v.Domain = d
	for _, candidate := range domain.Variants(d) {
		switch {
		case r.reject[candidate]:
			v.Decision, v.Rule = Reject, "reject_domains: "+candidate
			return v
		case r.approve[candidate]:
			v.Decision, v.Rule = Approve, "approve_domains: "+candidate
			return v
		}
	}
	v.Rule = "no rule matches " + d
	return v
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

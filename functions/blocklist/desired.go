package blocklist

import (
	"sort"

	"github.com/fediops/fediops/functions/blocklist/lists"
	"github.com/fediops/fediops/functions/blocklist/merge"
	"github.com/fediops/fediops/functions/blocklist/plan"
	"github.com/fediops/fediops/shared/domain"
)

// DesiredFrom turns a merge result into the list to apply, naming for each domain the sources
// that list it (directly, or through an obfuscated entry resolved to it).
func DesiredFrom(res *merge.Result, srcs []*lists.List) []plan.Desired {
	by := map[string]map[string]bool{}
	add := func(d, src string) {
		if by[d] == nil {
			by[d] = map[string]bool{}
		}
		by[d][src] = true
	}
	for _, l := range srcs {
		for _, e := range l.Blocks {
			add(e.Domain, l.Source)
		}
	}
	for _, r := range res.Resolved {
		add(r.Domain, r.Source)
	}
	out := make([]plan.Desired, 0, len(res.Blocks))
	for _, b := range res.Blocks {
		var names []string
		for s := range by[b.Domain] {
			names = append(names, s)
		}
		sort.Strings(names)
		out = append(out, plan.Desired{Block: b, Sources: names})
	}
	return out
}

// Allowlist returns the allowlist check for a sync: a domain is allowed if an allowlist
// names it, or (with subdomains) one of its parents.
func Allowlist(allow []*lists.List, subdomains bool) func(string) bool {
	set := map[string]bool{}
	for _, l := range allow {
		for _, e := range l.Blocks {
			set[e.Domain] = true
		}
	}
	return func(d string) bool {
		if !subdomains {
			return set[d]
		}
		for _, v := range domain.Variants(d) {
			if set[v] {
				return true
			}
		}
		return false
	}
}

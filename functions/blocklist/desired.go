package blocklist

import (
	"sort"

	"github.com/fediops/fediops/functions/blocklist/lists"
	"github.com/fediops/fediops/functions/blocklist/merge"
	"github.com/fediops/fediops/functions/blocklist/plan"
	"github.com/fediops/fediops/shared/domain"
)

// DesiredFrom turns a merge result into the list to apply, naming for each domain the sources
// that list it (directly, or through an obfuscated entry resolved to it), sorted by name.
func DesiredFrom(res *merge.Result) []plan.Desired {
	names := make([]string, len(res.Sources))
	for i, s := range res.Sources {
		names[i] = s.Source
	}
	inOrder := sort.StringsAreSorted(names)
	total := 0
	for _, n := range res.Named {
		total += len(n)
	}
	backing := make([]string, 0, total) // one allocation for every block's names
	out := make([]plan.Desired, len(res.Blocks))
	for i, b := range res.Blocks {
		start := len(backing)
		if i < len(res.Named) {
			for _, k := range res.Named[i] {
				backing = append(backing, names[k])
			}
		}
		srcs := backing[start:len(backing):len(backing)]
		if !inOrder {
			sort.Strings(srcs)
		}
		out[i] = plan.Desired{Block: b, Sources: srcs}
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

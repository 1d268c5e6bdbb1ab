package merge

import (
	"fmt"
	"slices"
	"strings"

	"github.com/fediops/fediops/functions/blocklist/lists"
	"github.com/fediops/fediops/shared/domain"
)

// resolveObfuscated resolves the obfuscated entries of each source against the domains
// the other sources name in clear, folds the resolved ones in (source order) and records
// the others as dropped. Rules:
//   - candidates are the clear, non-canary names of the merge that the masked entry's own
//     source does not name (a Mastodon server has one block per domain, so its masked entry
//     cannot be a domain it also lists in clear);
//   - with a digest (Mastodon's APIs publish the SHA-256 of the real name): the candidate
//     with that digest; no fallback to the pattern, since the digest is authoritative;
//   - without: the only candidate that MatchesObfuscated (same length, each '*' one non-dot
//     character); none is obfuscated_unresolved, several obfuscated_ambiguous;
//   - masking is one-for-one, so only candidates of the pattern's length are considered;
//   - two entries of one source resolving to the same name are both ambiguous.
//
// All entries are matched before any is folded, so the outcome does not depend on order.
func (m *Merger) resolveObfuscated(res *Result) {
	if len(m.masked) == 0 {
		return
	}
	lengths := make(map[int]bool)
	for _, ms := range m.masked {
		for _, o := range ms.list.Obfuscated {
			lengths[len(o.Domain)] = true
		}
	}
	byLen := make(map[int][]int32)
	for k := range m.aggs.n {
		if n := len(m.aggs.at(k).block.Domain); lengths[n] {
			byLen[n] = append(byLen[n], k)
		}
	}
	digests := make(map[int32]string)
	type hit struct {
		ms      *maskedSource
		o       lists.Obfuscated
		by      string
		matches []int32
	}
	var hits []hit
	for mi := range m.masked {
		ms := &m.masked[mi]
		claims := make(map[int32]int)
		first := len(hits)
		for _, o := range ms.list.Obfuscated {
			h := hit{ms: ms, o: o, by: "pattern"}
			if o.Digest != "" {
				h.by = "digest"
			}
			for _, k := range byLen[len(o.Domain)] {
				d := m.aggs.at(k).block.Domain
				if ms.own[d] {
					continue
				}
				if o.Digest != "" {
					dg, ok := digests[k]
					if !ok {
						dg = domain.Digest(d)
						digests[k] = dg
					}
					if dg == o.Digest {
						h.matches = append(h.matches, k)
						break
					}
				} else if lists.MatchesObfuscated(o.Domain, d) {
					h.matches = append(h.matches, k)
				}
			}
			if len(h.matches) == 1 {
				claims[h.matches[0]]++
			}
			hits = append(hits, h)
		}
		for j := first; j < len(hits); j++ {
			if h := &hits[j]; len(h.matches) == 1 && claims[h.matches[0]] > 1 {
				h.matches = append(h.matches, -1) // collision marker
			}
		}
	}
	for _, h := range hits {
		i, source := h.ms.src, h.ms.list.Source
		switch {
		case len(h.matches) == 0 && h.by == "digest":
			m.drop(i, source, h.o.Line, h.o.Domain, lists.ReasonObfuscatedUnresolved, "no other source names a domain with this digest")
		case len(h.matches) == 0:
			m.drop(i, source, h.o.Line, h.o.Domain, lists.ReasonObfuscatedUnresolved, "no other source names a matching domain")
		case len(h.matches) == 2 && h.matches[1] == -1:
			m.drop(i, source, h.o.Line, h.o.Domain, lists.ReasonObfuscatedAmbiguous,
				fmt.Sprintf("several entries of this source resolve to %s", m.aggs.at(h.matches[0]).block.Domain))
		case len(h.matches) > 1:
			names := make([]string, len(h.matches))
			for j, k := range h.matches {
				names[j] = m.aggs.at(k).block.Domain
			}
			m.drop(i, source, h.o.Line, h.o.Domain, lists.ReasonObfuscatedAmbiguous, "matches "+summarize(names))
		default:
			e := h.o.Entry
			e.Domain = m.aggs.at(h.matches[0]).block.Domain
			m.fold(i, source, e, true)
			res.Resolved = append(res.Resolved, Resolution{Source: source, Line: h.o.Line, Pattern: h.o.Domain, Domain: e.Domain, By: h.by})
		}
	}
	m.masked = nil
}

func summarize(ds []string) string {
	ds = slices.Clone(ds)
	slices.Sort(ds)
	if len(ds) > 3 {
		return fmt.Sprintf("%s and %d more", strings.Join(ds[:3], ", "), len(ds)-3)
	}
	return strings.Join(ds, ", ")
}

// Package merge combines parsed blocklists into the list of domain blocks to apply, with
// FediBlockHole's (FBH) merge semantics (mergeplan max/min, merge_comments,
// merge_threshold count/pct, allowlists) plus what FBH lacks: obfuscated entries resolved
// against other sources, canaries dropped, allowlists covering subdomains, and subdomain
// blocks that Mastodon would refuse dropped. It is pure: no I/O, no clock, no randomness.
//
// Order of operations (see Merger.Result): canaries out and clear entries folded per domain
// in source order → obfuscated entries resolved and folded → threshold → allowlists →
// subdomain check → sort.
package merge

import (
	"bufio"
	"fmt"
	"io"
	"math/bits"
	"slices"
	"strconv"
	"strings"

	"github.com/fediops/fediops/functions/blocklist/lists"
)

// Plan is FBH's mergeplan.
type Plan string

// Merge plans.
const (
	PlanMax Plan = "max" // highest severity; a flag is true if any list sets it (the default)
	PlanMin Plan = "min" // lowest severity; a flag is false if any list clears it
)

// ThresholdType is FBH's merge_threshold_type.
type ThresholdType string

// Threshold types.
const (
	ThresholdCount ThresholdType = "count" // number of lists naming the domain
	ThresholdPct   ThresholdType = "pct"   // that number / number of lists × 100
)

// Options are the merge settings, named after FBH's config keys.
type Options struct {
	Plan          Plan          // mergeplan; "" means max
	Threshold     int           // merge_threshold: keep a domain if its level ≥ Threshold; 0 keeps all
	ThresholdType ThresholdType // merge_threshold_type; "" means count
	// AllowSubdomains makes an allowlist entry also remove the blocks on its subdomains
	// (config allowlist_subdomains, default true; FBH matches the exact string only).
	AllowSubdomains bool
	// TotalLists is the pct denominator; 0 means len(lists). FBH divides by the number of
	// lists it read; a caller that isolated a failed source may keep counting it here so
	// that a failure cannot lower the bar.
	TotalLists int
}

// DefaultOptions are FBH's defaults plus fediops' allowlist_subdomains = true.
func DefaultOptions() Options {
	return Options{Plan: PlanMax, ThresholdType: ThresholdCount, AllowSubdomains: true}
}

// Validate checks the options.
func (o Options) Validate() error {
	switch o.Plan {
	case "", PlanMax, PlanMin:
	default:
		return fmt.Errorf("mergeplan %q: want max or min", o.Plan)
	}
	switch o.ThresholdType {
	case "", ThresholdCount, ThresholdPct:
	default:
		return fmt.Errorf("merge_threshold_type %q: want count or pct", o.ThresholdType)
	}
	if o.Threshold < 0 {
		return fmt.Errorf("merge_threshold %d: must not be negative", o.Threshold)
	}
	if o.TotalLists < 0 {
		return fmt.Errorf("total lists %d: must not be negative", o.TotalLists)
	}
	return nil
}

// SourceStats accounts for every row of one source: Rows == Used + the sum of Skipped.
type SourceStats struct {
	Source  string
	Format  lists.Format
	Rows    int            // data rows read
	Used    int            // rows whose domain is in Result.Blocks (incl. resolved obfuscated rows)
	Skipped map[string]int // reason code -> rows, parser's and merge's
}

// AuditRow is one line of FBH's block audit file: how many lists name a domain.
type AuditRow struct {
	Domain  string
	Count   int
	Percent float64 // Count / number of lists × 100
}

// Resolution records an obfuscated entry resolved to a real domain.
type Resolution struct {
	Source  string
	Line    int
	Pattern string
	Domain  string
	By      string // "digest" (SHA-256 match) or "pattern" (the only name that fits)
}

// Result is the outcome of Merge.
type Result struct {
	// Blocks is the merged list, sorted by domain.
	Blocks []lists.Block
	// Dropped lists every entry the merge did not use, one per source row (so a domain
	// named by three lists and below the threshold appears three times), ordered by source
	// then line. Parser skips are in each List.Skipped and counted in Sources.
	Dropped []lists.Skipped
	// Sources and Allowlists account for each input list, in input order.
	Sources    []SourceStats
	Allowlists []SourceStats
	// Audit has one row per domain that took part in the merge (after canaries and
	// obfuscation), sorted by domain, including those below the threshold.
	Audit []AuditRow
	// Resolved lists the obfuscated entries that were resolved.
	Resolved []Resolution
	// Named says which sources name each block: Named[i] holds the indexes into Sources of
	// the sources naming Blocks[i] (directly, or through an obfuscated entry resolved to
	// it), ascending.
	Named [][]int32
}

// DroppedDomains returns the distinct domains (or patterns) dropped for reason, sorted.
func (r *Result) DroppedDomains(reason string) []string {
	var out []string
	for _, d := range r.Dropped {
		if d.Reason == reason {
			out = append(out, d.Value)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// domain-level states
const (
	stateKept uint8 = iota
	stateBelowThreshold
	stateAllowlisted
	stateCovered
)

// agg is the merged state of one domain.
type agg struct {
	block    lists.Block
	count    int32 // lists naming the domain
	lastList int32 // last source folded in
	head     int32 // first contribution (index in Merger.contrib), -1 if none
	tail     int32
	state    uint8
	detail   string
	srcs     uint64 // the sources 0..63 naming the domain (bit i: source i); the rest in Merger.moreSrcs
}

// contribution links an agg to one source row, so that a domain dropped at the end can be
// reported and counted per source row without keeping the lists.
type contribution struct {
	src, line, next int32
}

// Merger merges sources one at a time, so that a caller can drop each parsed list once it
// is added: it keeps one record per distinct domain (its strings copied), 12 bytes per row,
// and the lists that have obfuscated entries until Result resolves them. Sources may be
// parsed concurrently, but Add must be called from one goroutine, in config order.
type Merger struct {
	opts    Options
	idx     map[string]int32
	aggs    chunked[agg]
	contrib chunked[contribution]
	arena   arena
	stats   []SourceStats
	folded  []int // per source: entries folded (not canaries)
	masked  []maskedSource
	drops   []drop
	done    bool
	// comments remembers merged comments: lists repeat the same few comments, and a domain
	// named by many lists meets the same pairs again and again.
	comments map[[2]string]merged
	// moreSrcs holds, per agg, the bits of sources 64 and up (bit i of word w: source 64+64w+i).
	moreSrcs map[int32][]uint64
}

// chunked is an append-only array in 4Ki-element chunks: growing it never copies, so a
// million-row merge does not need twice its memory while a slice doubles.
type chunked[T any] struct {
	chunks [][]T
	n      int32
}

const chunkBits = 12

func (c *chunked[T]) add(v T) int32 {
	if int(c.n)>>chunkBits == len(c.chunks) {
		c.chunks = append(c.chunks, make([]T, 0, 1<<chunkBits))
	}
	last := &c.chunks[len(c.chunks)-1]
	*last = append(*last, v)
	c.n++
	return c.n - 1
}

func (c *chunked[T]) at(i int32) *T { return &c.chunks[i>>chunkBits][i&(1<<chunkBits-1)] }

// maskedSource is a source with obfuscated entries, kept for resolution at the end.
type maskedSource struct {
	src  int
	list *lists.List
	own  map[string]bool // the domains the source names in clear
}

type drop struct {
	src int
	s   lists.Skipped
}

// NewMerger starts a merge.
func NewMerger(opts Options) (*Merger, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	return &Merger{opts: opts, idx: make(map[string]int32)}, nil
}

// Add folds a source into the merge. Sources must be added in config order: FBH folds them
// in that order, which decides how comments concatenate. Canary entries are dropped here.
// Lists are expected to come from lists.Parse (each domain once per list); a domain repeated
// within one list is folded but counted once.
func (m *Merger) Add(l *lists.List) {
	if m.done {
		panic("merge: Add after Result")
	}
	i := len(m.stats)
	m.stats = append(m.stats, newStats(l))
	m.folded = append(m.folded, 0)
	for _, e := range l.Blocks {
		m.fold(i, l.Source, e, false)
	}
	if len(l.Obfuscated) > 0 {
		own := make(map[string]bool, len(l.Blocks))
		for _, e := range l.Blocks {
			own[e.Domain] = true
		}
		m.masked = append(m.masked, maskedSource{src: i, list: l, own: own})
	}
}

func (m *Merger) fold(i int, source string, e lists.Entry, resolved bool) {
	if rule := lists.IsCanary(e.Domain); rule != "" {
		m.drop(i, source, e.Line, m.arena.intern(e.Domain), lists.ReasonCanary, rule)
		return
	}
	m.folded[i]++
	c := m.contrib.add(contribution{src: int32(i), line: int32(e.Line), next: -1})
	k, ok := m.idx[e.Domain]
	if !ok {
		// Copy the strings into the merger's arena: compact (faster lookups) and the
		// parsed list's memory is not kept alive by them.
		b := e.Block
		b.Domain = m.arena.intern(b.Domain)
		b.PublicComment = m.arena.intern(b.PublicComment)
		b.PrivateComment = m.arena.intern(b.PrivateComment)
		k = m.aggs.add(agg{block: b, count: 1, lastList: int32(i), head: c, tail: c})
		m.idx[b.Domain] = k
		m.named(k, m.aggs.at(k), i)
		return
	}
	a := m.aggs.at(k)
	m.named(k, a, i)
	// A comment adopted as is would point into the parsed list's memory: copy it first.
	if a.block.PublicComment == "" && e.PublicComment != "" {
		e.PublicComment = m.arena.intern(e.PublicComment)
	}
	if a.block.PrivateComment == "" && e.PrivateComment != "" {
		e.PrivateComment = m.arena.intern(e.PrivateComment)
	}
	applyTo(&a.block, &e.Block, m.opts.Plan, m.mergeComments)
	m.contrib.at(a.tail).next = c
	a.tail = c
	if a.lastList != int32(i) || resolved {
		a.count++
		a.lastList = int32(i)
	}
}

// merged is a remembered result of mergeComments.
type merged struct {
	comment string
	changed bool
}

// maxRemembered bounds Merger.comments.
const maxRemembered = 1 << 16

// mergeComments is mergeComments, remembering the results of the costly cases.
func (m *Merger) mergeComments(old, nw string) (string, bool) {
	if old == nw || nw == "" {
		return old, false
	}
	if old == "" {
		return nw, true
	}
	if r, ok := m.comments[[2]string{old, nw}]; ok {
		return r.comment, r.changed
	}
	c, changed := mergeComments(old, nw)
	if changed {
		c = m.arena.intern(c)
	}
	if len(m.comments) < maxRemembered {
		if m.comments == nil {
			m.comments = make(map[[2]string]merged)
		}
		// The key is copied: it must not keep the parsed list's memory alive.
		m.comments[[2]string{old, m.arena.intern(nw)}] = merged{c, changed}
	}
	return c, changed
}

// named notes that source i names agg k.
func (m *Merger) named(k int32, a *agg, i int) {
	if i < 64 {
		a.srcs |= 1 << i
		return
	}
	if m.moreSrcs == nil {
		m.moreSrcs = make(map[int32][]uint64)
	}
	w := (i - 64) / 64
	bits := m.moreSrcs[k]
	for len(bits) <= w {
		bits = append(bits, 0)
	}
	bits[w] |= 1 << ((i - 64) % 64)
	m.moreSrcs[k] = bits
}

// appendNamed appends the indexes of the sources naming agg k, ascending.
func (m *Merger) appendNamed(dst []int32, k int32, a *agg) []int32 {
	for b := a.srcs; b != 0; b &= b - 1 {
		dst = append(dst, int32(bits.TrailingZeros64(b)))
	}
	for w, word := range m.moreSrcs[k] {
		for b := word; b != 0; b &= b - 1 {
			dst = append(dst, int32(64+64*w+bits.TrailingZeros64(b)))
		}
	}
	return dst
}

// countNamed is len(appendNamed(nil, k, a)).
func (m *Merger) countNamed(k int32, a *agg) int {
	n := bits.OnesCount64(a.srcs)
	for _, word := range m.moreSrcs[k] {
		n += bits.OnesCount64(word)
	}
	return n
}

// drop records a merge drop of one entry of source i.
func (m *Merger) drop(i int, source string, line int, value, reason, detail string) {
	m.drops = append(m.drops, drop{i, lists.Skipped{Source: source, Line: line, Value: value, Reason: reason, Detail: detail}})
	m.stats[i].Skipped[reason]++
}

// Merge combines sources (in config order) and removes what allowlists name: NewMerger, Add
// for each source, Result. It returns an error only for invalid options.
func Merge(srcs []*lists.List, allowlists []*lists.List, opts Options) (*Result, error) {
	m, err := NewMerger(opts)
	if err != nil {
		return nil, err
	}
	for _, l := range srcs {
		m.Add(l)
	}
	return m.Result(allowlists), nil
}

// Result finishes the merge; call it once, after every Add:
//  1. obfuscated entries are resolved against the clear names of the other sources and
//     folded in, after every clear entry, in source order (so a masked entry never changes
//     how the clear entries' comments concatenate);
//  2. the threshold is applied (and the audit rows computed);
//  3. allowlists remove domains (and their subdomains with AllowSubdomains);
//  4. a block under a kept parent block that is not stricter than it is dropped, parents
//     first, as Mastodon's rule_for/stricter_than? would refuse it;
//  5. blocks are sorted by domain; every source row is accounted for.
func (m *Merger) Result(allowlists []*lists.List) *Result {
	m.done = true
	res := &Result{}
	m.resolveObfuscated(res)

	// One sort by domain serves the audit rows, the subdomain pass and the output.
	order := make([]int32, m.aggs.n)
	for k := range order {
		order[k] = int32(k)
	}
	slices.SortFunc(order, func(x, y int32) int { return strings.Compare(m.aggs.at(x).block.Domain, m.aggs.at(y).block.Domain) })

	// Threshold, and the audit rows FBH writes with -b.
	total := m.opts.TotalLists
	if total == 0 {
		total = len(m.stats)
	}
	res.Audit = make([]AuditRow, 0, len(order))
	for _, k := range order {
		a := m.aggs.at(k)
		pct := float64(a.count) / float64(total) * 100
		res.Audit = append(res.Audit, AuditRow{Domain: a.block.Domain, Count: int(a.count), Percent: pct})
		level := float64(a.count)
		if m.opts.ThresholdType == ThresholdPct {
			level = pct
		}
		if level < float64(m.opts.Threshold) {
			a.state = stateBelowThreshold
			a.detail = fmt.Sprintf("named by %d of %d lists", a.count, total)
		}
	}

	// Allowlists.
	res.Allowlists = make([]SourceStats, len(allowlists))
	allowed := make(map[string]string)
	for i, l := range allowlists {
		res.Allowlists[i] = newStats(l)
		res.Allowlists[i].Used = len(l.Blocks)
		if len(l.Obfuscated) > 0 {
			res.Allowlists[i].Skipped[lists.ReasonObfuscatedUnresolved] += len(l.Obfuscated)
		}
		for _, e := range l.Blocks {
			if _, ok := allowed[e.Domain]; !ok {
				allowed[e.Domain] = l.Source
			}
		}
	}
	if len(allowed) > 0 {
		for k := range m.aggs.n {
			a := m.aggs.at(k)
			if a.state != stateKept {
				continue
			}
			if src, ok := allowed[a.block.Domain]; ok {
				a.state, a.detail = stateAllowlisted, "allowed by "+src
				continue
			}
			if !m.opts.AllowSubdomains {
				continue
			}
			d := a.block.Domain
			for j := 0; j < len(d); j++ {
				if d[j] != '.' {
					continue
				}
				if src, ok := allowed[d[j+1:]]; ok {
					a.state, a.detail = stateAllowlisted, fmt.Sprintf("%s allowed by %s", d[j+1:], src)
					break
				}
			}
		}
	}

	// Subdomains: Mastodon refuses a block under a blocked parent unless it is stricter
	// (DomainBlock.rule_for finds the nearest blocked ancestor; stricter_than? decides).
	// Parents are decided first, so the nearest ancestor that is kept is the one compared.
	var byDepth [][]int32 // kept domains by number of dots, each in domain order
	for _, k := range order {
		if m.aggs.at(k).state != stateKept {
			continue
		}
		n := strings.Count(m.aggs.at(k).block.Domain, ".")
		for len(byDepth) <= n {
			byDepth = append(byDepth, nil)
		}
		byDepth[n] = append(byDepth[n], k)
	}
	kept := slices.Concat(byDepth...)
	for _, k := range kept {
		a := m.aggs.at(k)
		d := a.block.Domain
		for j := 0; j < len(d); j++ {
			if d[j] != '.' {
				continue
			}
			pk, ok := m.idx[d[j+1:]]
			if !ok || m.aggs.at(pk).state != stateKept {
				continue
			}
			p := m.aggs.at(pk)
			if !a.block.StricterThan(p.block) {
				a.state = stateCovered
				a.detail = fmt.Sprintf("%s is not stricter than %s %s", describe(a.block), p.block.Domain, describe(p.block))
			}
			break
		}
	}

	// Output, sorted by domain, with the sources naming each block (one shared backing
	// array); account for the rows of dropped domains.
	res.Blocks = make([]lists.Block, 0, len(kept))
	res.Named = make([][]int32, 0, len(kept))
	named := 0
	for _, k := range kept {
		named += m.countNamed(k, m.aggs.at(k))
	}
	backing := make([]int32, 0, named)
	reason := [...]string{stateBelowThreshold: lists.ReasonBelowThreshold, stateAllowlisted: lists.ReasonAllowlisted, stateCovered: lists.ReasonCoveredByParent}
	dropped := make([]int, len(m.stats))
	for _, k := range order {
		a := m.aggs.at(k)
		if a.state == stateKept {
			res.Blocks = append(res.Blocks, a.block)
			start := len(backing)
			backing = m.appendNamed(backing, k, a)
			res.Named = append(res.Named, backing[start:len(backing):len(backing)])
			continue
		}
		for c := a.head; c >= 0; c = m.contrib.at(c).next {
			ct := *m.contrib.at(c)
			m.drop(int(ct.src), m.stats[ct.src].Source, int(ct.line), a.block.Domain, reason[a.state], a.detail)
			dropped[ct.src]++
		}
	}
	for i := range m.stats {
		m.stats[i].Used = m.folded[i] - dropped[i]
	}
	res.Sources = m.stats
	slices.SortStableFunc(m.drops, func(x, y drop) int {
		if x.src != y.src {
			return x.src - y.src
		}
		return x.s.Line - y.s.Line
	})
	res.Dropped = make([]lists.Skipped, len(m.drops))
	for i, d := range m.drops {
		res.Dropped[i] = d.s
	}
	return res
}

func describe(b lists.Block) string {
	s := b.Severity.String()
	if b.RejectMedia {
		s += "+reject_media"
	}
	if b.RejectReports {
		s += "+reject_reports"
	}
	return s
}

func newStats(l *lists.List) SourceStats {
	return SourceStats{Source: l.Source, Format: l.Format, Rows: l.Rows, Skipped: l.SkippedByReason()}
}

// applyTo is FBH's apply_mergeplan, folding nb into old: comments are merged whatever the
// plan; under max the highest severity wins and a flag is true if either block sets it;
// under min the lowest severity wins and a flag is false if either block clears it.
func applyTo(old, nb *lists.Block, plan Plan, mergeComments func(old, nw string) (string, bool)) {
	if c, changed := mergeComments(old.PublicComment, nb.PublicComment); changed {
		old.PublicComment = c
	}
	if c, changed := mergeComments(old.PrivateComment, nb.PrivateComment); changed {
		old.PrivateComment = c
	}
	if plan == PlanMin {
		old.Severity = min(old.Severity, nb.Severity)
		old.RejectMedia = old.RejectMedia && nb.RejectMedia
		old.RejectReports = old.RejectReports && nb.RejectReports
		old.Obfuscate = old.Obfuscate && nb.Obfuscate
		return
	}
	old.Severity = max(old.Severity, nb.Severity)
	old.RejectMedia = old.RejectMedia || nb.RejectMedia
	old.RejectReports = old.RejectReports || nb.RejectReports
	old.Obfuscate = old.Obfuscate || nb.Obfuscate
}

// arena copies strings into large shared buffers. A strings.Builder never moves bytes it
// has written while it stays within its capacity, so substrings of String() stay valid.
type arena struct {
	b strings.Builder
}

func (a *arena) intern(s string) string {
	if s == "" {
		return ""
	}
	if a.b.Cap()-a.b.Len() < len(s) {
		a.b = strings.Builder{}
		a.b.Grow(max(64<<10, len(s)))
	}
	start := a.b.Len()
	a.b.WriteString(s)
	return a.b.String()[start:]
}

// MergeComments is FBH's merge_comments: if either comment is empty the other one is kept;
// equal comments are kept once; otherwise both are split on ", ", empty tokens dropped,
// each old token removes its first occurrence from the new ones, and the remaining new
// tokens are appended: "a, b" + "b, c" = "a, b, c".
func MergeComments(old, nw string) string {
	merged, _ := mergeComments(old, nw)
	return merged
}

// mergeComments is MergeComments that also says whether the result differs from old.
func mergeComments(old, nw string) (string, bool) {
	if old == nw || nw == "" {
		return old, false
	}
	if old == "" {
		return nw, true
	}
	if covers(old, nw) {
		return old, false // the usual case when lists agree: no allocation
	}
	return mergeCommentsSlow(old, nw), true
}

// mergeCommentsSlow is merge_comments' algorithm as FBH writes it.
func mergeCommentsSlow(old, nw string) string {
	oldT := slices.DeleteFunc(strings.Split(old, ", "), func(s string) bool { return s == "" })
	newT := slices.DeleteFunc(strings.Split(nw, ", "), func(s string) bool { return s == "" })
	for _, t := range oldT {
		if k := slices.Index(newT, t); k >= 0 {
			newT = slices.Delete(newT, k, k+1)
		}
	}
	return strings.Join(append(oldT, newT...), ", ")
}

// covers reports whether merge_comments would return old unchanged: old has no empty token
// and each token of nw is matched by a token of old (with multiplicity).
func covers(old, nw string) bool {
	if strings.HasPrefix(old, ", ") || strings.HasSuffix(old, ", ") || strings.Contains(old, ", , ") {
		return false // an empty token, which FBH would drop
	}
	if !strings.Contains(nw, ", ") {
		return hasToken(old, nw) // one token: the usual case
	}
	for rest, more := old, true; more; {
		var tok string
		tok, rest, more = strings.Cut(rest, ", ")
		if tok == "" {
			return false
		}
	}
	for rest, more := nw, true; more; {
		var tok string
		tok, rest, more = strings.Cut(rest, ", ")
		if tok != "" && countToken(nw, tok) > countToken(old, tok) {
			return false
		}
	}
	return true
}

// hasToken reports whether tok is one of the ", "-separated tokens of s.
func hasToken(s, tok string) bool {
	for i := 0; i+len(tok) <= len(s); {
		j := strings.Index(s[i:], tok)
		if j < 0 {
			return false
		}
		j += i
		end := j + len(tok)
		if (j == 0 || strings.HasSuffix(s[:j], ", ")) && (end == len(s) || strings.HasPrefix(s[end:], ", ")) {
			return true
		}
		i = j + 1
	}
	return false
}

func countToken(s, tok string) int {
	n := 0
	for rest, more := s, true; more; {
		var t string
		t, rest, more = strings.Cut(rest, ", ")
		if t == tok {
			n++
		}
	}
	return n
}

// WriteAuditCSV writes audit rows as FBH's block audit file (-b): header
// "domain,count,percent", CRLF, percent as Python prints a float ("50.0",
// "33.33333333333333"), rows in the given order (Result.Audit is sorted by domain, as FBH's).
func WriteAuditCSV(w io.Writer, rows []AuditRow) error {
	bw := bufio.NewWriter(w)
	bw.WriteString("domain,count,percent\r\n")
	for _, r := range rows {
		d := r.Domain
		if strings.ContainsAny(d, ",\"\r\n") {
			d = `"` + strings.ReplaceAll(d, `"`, `""`) + `"`
		}
		fmt.Fprintf(bw, "%s,%d,%s\r\n", d, r.Count, pyFloat(r.Percent))
	}
	return bw.Flush()
}

// pyFloat formats f as Python's repr does for values in [1e-4, 1e16).
func pyFloat(f float64) string {
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.ContainsAny(s, ".eEnN") {
		s += ".0"
	}
	return s
}

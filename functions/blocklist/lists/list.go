package lists

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/fediops/fediops/shared/domain"
)

// Format names a blocklist format. The first six are FBH's `format` values.
type Format string

// Formats.
const (
	FormatCSV               Format = "csv"                 // header row naming the columns (with or without '#'), or headerless
	FormatMastodonCSV       Format = "mastodon_csv"        // Mastodon's export: #domain,#severity,... (parsed like FormatCSV)
	FormatJSON              Format = "json"                // Mastodon admin API list (GET /api/v1/admin/domain_blocks)
	FormatMastodonAPIPublic Format = "mastodon_api_public" // GET /api/v1/instance/domain_blocks: domain, digest, severity, comment
	FormatRapidBlockCSV     Format = "rapidblock.csv"      // one domain per line, every one a suspend
	FormatRapidBlockJSON    Format = "rapidblock.json"     // RapidBlock v1: {"blocks": {domain: {isBlocked, reason, ...}}}
	FormatText              Format = "text"                // one domain per line, '#' comments, blank lines; every one a suspend
)

// Formats lists every supported format, FBH's first.
var Formats = []Format{FormatCSV, FormatMastodonCSV, FormatJSON, FormatMastodonAPIPublic, FormatRapidBlockCSV, FormatRapidBlockJSON, FormatText}

// ParseFormat checks a format name (case-insensitive). "" is accepted and means "detect".
func ParseFormat(s string) (Format, error) {
	f := Format(strings.ToLower(strings.TrimSpace(s)))
	if f == "" {
		return "", nil
	}
	for _, k := range Formats {
		if f == k {
			return f, nil
		}
	}
	return "", fmt.Errorf("unknown blocklist format %q", s)
}

// Reason codes: stable, short, machine-readable reasons why a row was not used. The parser
// produces the first group; the merge (package merge) the second.
const (
	ReasonInvalidDomain       = "invalid_domain"       // not a hostname after normalisation: "eveningzoo.]club", inner spaces, empty
	ReasonUnsupportedWildcard = "unsupported_wildcard" // a glob Mastodon cannot express: "*kazar.ma", "*ignorelist*"
	ReasonBadSeverity         = "bad_severity"         // severity not noop/silence/suspend (any case)
	ReasonBadBoolean          = "bad_boolean"          // an imported reject_media/reject_reports/obfuscate value that is not a boolean
	ReasonBadRow              = "bad_row"              // a structurally unusable entry: a JSON value of the wrong type, no domain, no isBlocked
	ReasonDuplicate           = "duplicate"            // the same domain appears again later in the same list: the last row wins (FBH)

	ReasonCanary               = "canary"                // a canary domain (IsCanary): never applied
	ReasonObfuscatedUnresolved = "obfuscated_unresolved" // an obfuscated entry no other source names (or whose digest matches nothing)
	ReasonObfuscatedAmbiguous  = "obfuscated_ambiguous"  // an obfuscated entry whose pattern matches several names
	ReasonBelowThreshold       = "below_threshold"       // named by too few lists (merge_threshold)
	ReasonAllowlisted          = "allowlisted"           // removed by an allowlist
	ReasonCoveredByParent      = "covered_by_parent"     // under a merged parent block and not stricter than it: Mastodon would refuse it (422)
)

// Skipped is one row or entry that was not used, and why.
type Skipped struct {
	Source string // the source's name (List.Source)
	Line   int    // 1-based line where the row starts; 0 when unknown
	Value  string // the domain as written (parser) or the normalised domain / pattern (merge)
	Reason string // one of the Reason* codes
	Detail string // human-readable detail (error text, parent domain, allowlist name, ...)
}

func (s Skipped) String() string {
	msg := fmt.Sprintf("%s:%d: %q: %s", s.Source, s.Line, s.Value, s.Reason)
	if s.Detail != "" {
		msg += " (" + s.Detail + ")"
	}
	return msg
}

// List is one parsed source. Every data row ends up in exactly one of Blocks, Obfuscated or
// Skipped, so Rows == len(Blocks)+len(Obfuscated)+len(Skipped). Blocks holds each domain
// once (the last row for it, as in FBH), in order of first appearance.
type List struct {
	Source     string
	Format     Format
	Rows       int
	Blocks     []Entry
	Obfuscated []Obfuscated
	Skipped    []Skipped
}

// Usable is the number of entries that can take part in a merge. A fetched list with rows
// but nothing usable is almost certainly not a blocklist (an error page, a wrong format).
func (l *List) Usable() int { return len(l.Blocks) + len(l.Obfuscated) }

// SkippedByReason counts Skipped by reason code.
func (l *List) SkippedByReason() map[string]int {
	m := make(map[string]int)
	for _, s := range l.Skipped {
		m[s.Reason]++
	}
	return m
}

// Options control how a source is imported; they come from the source's config entry
// (FBH's import_fields and max_severity).
type Options struct {
	// ImportFields names the optional fields to import (FBH import_fields): public_comment,
	// private_comment, reject_media, reject_reports, obfuscate. Domain and severity are always
	// imported; fields not named are left empty/false, and their cells are not even checked.
	ImportFields []string
	// MaxSeverity caps every severity of this source (FBH max_severity). SeverityUnset: no cap.
	MaxSeverity Severity
}

// ErrUnreadable is wrapped by every error Parse returns: the source as a whole is unusable.
var ErrUnreadable = errors.New("unreadable blocklist")

// Parse reads a blocklist. source names it in reports; format "" means Detect(data, source).
// Bad rows are skipped and recorded; an error is returned only when the data cannot be read
// as that format at all. The list's strings share one copy of data (data itself is not
// retained).
func Parse(source string, data []byte, format Format, opts Options) (*List, error) {
	return parse(source, data, format, opts, false)
}

// ParseOwned is Parse for data the caller hands over: the list's strings point into data
// instead of a copy of it, so data must never be changed afterwards. It saves a copy of
// every source on the path of a big merge.
func ParseOwned(source string, data []byte, format Format, opts Options) (*List, error) {
	return parse(source, data, format, opts, true)
}

func parse(source string, data []byte, format Format, opts Options, owned bool) (*List, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if bytes.IndexByte(data, 0) >= 0 {
		return nil, fmt.Errorf("%w: %s: binary data (NUL byte)", ErrUnreadable, source)
	}
	first := firstNonSpace(data)
	if first == '<' {
		return nil, fmt.Errorf("%w: %s: looks like HTML or XML, not a blocklist", ErrUnreadable, source)
	}
	if format == "" {
		format = Detect(data, source)
		if format == "" {
			return nil, fmt.Errorf("%w: %s: cannot tell the format; set it explicitly", ErrUnreadable, source)
		}
	}
	p := &parser{
		list:   &List{Source: source, Format: format},
		fields: fieldsOf(opts.ImportFields),
		max:    opts.MaxSeverity,
	}
	// Line formats have about one entry per line: room for them saves regrowing big lists.
	switch format {
	case FormatCSV, FormatMastodonCSV, FormatText, FormatRapidBlockCSV:
		if n := bytes.Count(data, []byte{'\n'}) + 1; n > 1 {
			p.list.Blocks = make([]Entry, 0, n)
			p.index = make(map[string]int, n)
		}
	}
	var err error
	switch format {
	case FormatCSV, FormatMastodonCSV:
		if first == '[' || first == '{' {
			return nil, fmt.Errorf("%w: %s: format is %s but the content is JSON", ErrUnreadable, source, format)
		}
		text := string(data)
		if owned && len(data) > 0 {
			text = unsafe.String(unsafe.SliceData(data), len(data))
		}
		err = p.parseCSV(text)
	case FormatText, FormatRapidBlockCSV:
		if first == '[' || first == '{' {
			return nil, fmt.Errorf("%w: %s: format is %s but the content is JSON", ErrUnreadable, source, format)
		}
		p.parseText(data)
	case FormatJSON, FormatMastodonAPIPublic:
		err = p.parseJSONList(data)
	case FormatRapidBlockJSON:
		err = p.parseRapidBlockJSON(data)
	default:
		return nil, fmt.Errorf("%w: %s: unknown format %q", ErrUnreadable, source, format)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrUnreadable, source, err)
	}
	p.finish()
	return p.list, nil
}

// FromDomains builds a list from bare domain names, e.g. FBH's `-A/--allow DOMAIN` flags.
// Each name is a suspend entry (the severity is irrelevant for an allowlist); Line is the
// 1-based position in domains.
func FromDomains(source string, domains []string) *List {
	p := &parser{list: &List{Source: source, Format: FormatText}}
	for i, d := range domains {
		p.row(i+1, rawRow{domain: d, severity: "suspend"})
	}
	p.finish()
	return p.list
}

// Row is an entry made in code rather than read from a file (a FIRES dataset's entities).
// Skip, if set, files the row as skipped for that reason (with Detail).
type Row struct {
	Line                                  int
	Domain                                string
	Severity                              Severity
	RejectMedia, RejectReports, Obfuscate bool
	PublicComment, PrivateComment         string
	Skip, Detail                          string
}

// FromRows builds a list of format from rows, as Parse would from a file holding them:
// domains are validated and normalised, opts' import_fields and max_severity apply, a
// domain given twice keeps its last row.
func FromRows(source string, format Format, rows []Row, opts Options) *List {
	p := &parser{list: &List{Source: source, Format: format}, fields: fieldsOf(opts.ImportFields), max: opts.MaxSeverity}
	for _, r := range rows {
		if r.Skip != "" {
			p.list.Rows++
			p.skip(r.Line, r.Domain, r.Skip, r.Detail)
			continue
		}
		p.row(r.Line, rawRow{domain: r.Domain, severity: r.Severity.String(), rejectMedia: strconv.FormatBool(r.RejectMedia),
			rejectReports: strconv.FormatBool(r.RejectReports), obfuscate: strconv.FormatBool(r.Obfuscate),
			publicComment: r.PublicComment, privateComment: r.PrivateComment})
	}
	p.finish()
	return p.list
}

func firstNonSpace(b []byte) byte {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return c
	}
	return 0
}

// parser accumulates one list. Rows go through row(), which validates and normalises them.
type parser struct {
	list   *List
	fields fieldSet
	max    Severity
	index  map[string]int // domain -> position in list.Blocks
	dups   bool           // some entries were superseded by a later row (Line -1), for finish()
}

// rawRow is a row as read, before validation. Strings are taken verbatim from the source.
// noSeverity means the source gives no severity at all (no CSV column, no JSON key, plain
// text): FBH then defaults to suspend. A present but empty severity is noop (FBH parity).
type rawRow struct {
	domain         string
	severity       string
	noSeverity     bool
	rejectMedia    string
	rejectReports  string
	obfuscate      string
	publicComment  string
	privateComment string
	digest         string
}

func (p *parser) skip(line int, value, reason, detail string) {
	p.list.Skipped = append(p.list.Skipped, Skipped{Source: p.list.Source, Line: line, Value: value, Reason: reason, Detail: detail})
}

// row validates one data row and files it in Blocks, Obfuscated or Skipped.
func (p *parser) row(line int, r rawRow) {
	p.list.Rows++
	name, kind, reason, detail := classifyDomain(r.domain)
	if reason != "" {
		p.skip(line, r.domain, reason, detail)
		return
	}
	b := Block{Domain: name}
	if r.noSeverity {
		b.Severity = Suspend
	} else {
		s, err := ParseSeverity(r.severity)
		if err != nil {
			p.skip(line, r.domain, ReasonBadSeverity, err.Error())
			return
		}
		b.Severity = s
	}
	if p.max != SeverityUnset && b.Severity > p.max {
		b.Severity = p.max
	}
	var bad string
	b.RejectMedia, bad = p.boolField(fRejectMedia, r.rejectMedia, bad)
	b.RejectReports, bad = p.boolField(fRejectReports, r.rejectReports, bad)
	b.Obfuscate, bad = p.boolField(fObfuscate, r.obfuscate, bad)
	if bad != "" {
		p.skip(line, r.domain, ReasonBadBoolean, bad)
		return
	}
	if p.fields&fPublicComment != 0 {
		b.PublicComment = r.publicComment
	}
	if p.fields&fPrivateComment != 0 {
		b.PrivateComment = r.privateComment
	}
	if kind == kindObfuscated {
		p.list.Obfuscated = append(p.list.Obfuscated, Obfuscated{Entry: Entry{Block: b, Line: line}, Digest: normalizeDigest(r.digest)})
		return
	}
	if p.index == nil {
		p.index = make(map[string]int)
	}
	if i, ok := p.index[name]; ok {
		// Last row wins (FBH keys its dict by domain); the earlier row is recorded as a duplicate.
		old := p.list.Blocks[i]
		p.skip(old.Line, old.Domain, ReasonDuplicate, fmt.Sprintf("superseded by line %d", line))
		p.dups = true
		p.list.Blocks[i].Line = -1 // tombstone; removed in finish()
		p.index[name] = len(p.list.Blocks)
	} else {
		p.index[name] = len(p.list.Blocks)
	}
	p.list.Blocks = append(p.list.Blocks, Entry{Block: b, Line: line})
}

// boolField reads an imported boolean cell; a field not imported is false and unchecked.
// The first error is kept in bad.
func (p *parser) boolField(bit fieldSet, s, bad string) (bool, string) {
	if p.fields&bit == 0 {
		return false, bad
	}
	v, err := ParseBool(s)
	if err != nil && bad == "" {
		bad = err.Error()
	}
	return v, bad
}

// finish drops the entries superseded by a later row of the same domain.
func (p *parser) finish() {
	if !p.dups {
		return
	}
	out := p.list.Blocks[:0]
	for _, e := range p.list.Blocks {
		if e.Line != -1 {
			out = append(out, e)
		}
	}
	p.list.Blocks = out
}

func normalizeDigest(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	if len(s) != 64 {
		return ""
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return ""
		}
	}
	return s
}

// ParseBool reads a boolean as FBH's str2bool does, in any case and ignoring surrounding
// spaces: true, t, 1, y, yes / "", false, f, 0, n, no.
func ParseBool(s string) (bool, error) {
	switch s { // the usual spellings, without allocating
	case "True", "true", "TRUE":
		return true, nil
	case "False", "false", "FALSE", "":
		return false, nil
	}
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "t", "1", "y", "yes":
		return true, nil
	case "", "false", "f", "0", "n", "no":
		return false, nil
	}
	return false, fmt.Errorf("cannot read %q as a boolean", s)
}

type domainKind uint8

const (
	kindPlain domainKind = iota
	kindObfuscated
)

// classifyDomain turns a domain cell into a normalised domain (kindPlain) or a lower-cased
// obfuscation pattern (kindObfuscated), or returns a reason code and detail why it cannot.
//
//   - "*.example.com" and ".example.com" are wildcards: a block on "example.com", which in
//     Mastodon covers every subdomain (".cf" blocks the whole TLD "cf").
//   - Any other '*' makes an obfuscated pattern, where each '*' stands for exactly one
//     non-dot character (masking is one-for-one). Mastodon's masking never touches the first
//     character, nor the last one of a name of 4 or more characters, so a pattern that starts
//     with '*' (after any "*." prefix) or ends with one is a glob ("*kazar.ma",
//     "*ignorelist*") that Mastodon cannot express: unsupported_wildcard.
func classifyDomain(raw string) (string, domainKind, string, string) {
	s := strings.TrimSpace(raw)
	if strings.HasPrefix(s, "*.") {
		s = s[2:]
	} else if len(s) > 1 && s[0] == '.' && s[1] != '.' {
		s = s[1:]
	}
	if s == "" {
		return "", 0, ReasonInvalidDomain, "empty"
	}
	if strings.IndexByte(s, '*') < 0 {
		d, err := normalizeDomain(s)
		if err != nil {
			return "", 0, ReasonInvalidDomain, err.Error()
		}
		return d, kindPlain, "", ""
	}
	pat := strings.ToLower(strings.TrimSuffix(s, "."))
	if pat == "" || pat[0] == '*' || (len(pat) >= 4 && pat[len(pat)-1] == '*') {
		return "", 0, ReasonUnsupportedWildcard, "a glob, not a one-for-one obfuscation"
	}
	// The pattern must be a valid ASCII name with each '*' replaced by a letter.
	probe := strings.ReplaceAll(pat, "*", "a")
	if d, err := normalizeDomain(probe); err != nil || d != probe {
		detail := "not a valid obfuscated name"
		if err != nil {
			detail = err.Error()
		}
		return "", 0, ReasonInvalidDomain, detail
	}
	return pat, kindObfuscated, "", ""
}

// normalizeDomain is domain.Normalize with a fast path for names that are already in
// canonical form: only a-z, 0-9, '-' and '.', labels of 1..63 bytes that neither start nor
// end with '-', no "--" anywhere (so no punycode "xn--" label and no reserved "ab--" label),
// at most 253 bytes and no trailing dot. For those Normalize returns the input unchanged
// (TestFastPathMatchesNormalize and FuzzNormalizeFastPath check this); it costs about 1µs per
// name, which matters for a million rows.
//
// Outside the fast path the result must also be stable (Normalize's output is ASCII, which it
// keeps as it is); the check below guards that.
func normalizeDomain(s string) (string, error) {
	if isCanonicalASCII(s) {
		return s, nil
	}
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("%w: %q is not valid UTF-8", domain.ErrInvalid, s)
	}
	d, err := domain.Normalize(s)
	if err != nil {
		return "", err
	}
	if !isCanonicalASCII(d) {
		if again, err := domain.Normalize(d); err != nil || again != d {
			return "", fmt.Errorf("%w: %q normalises to %q, which is not a valid name", domain.ErrInvalid, s, d)
		}
	}
	return d, nil
}

func isCanonicalASCII(s string) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			n := i - start
			if n == 0 || n > 63 || s[start] == '-' || s[i-1] == '-' {
				return false
			}
			start = i + 1
			continue
		}
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case c == '-':
			if i == start || s[i-1] == '-' {
				return false
			}
		default:
			return false
		}
	}
	return true
}

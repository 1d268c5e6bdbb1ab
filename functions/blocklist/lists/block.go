// Package lists reads and writes federation blocklists in every format FediBlockHole (FBH)
// understands, plus plain text, and turns them into normalised domain blocks.
//
// Parsing never panics and never aborts on a bad row: each row that cannot be used is
// recorded in List.Skipped with a stable reason code (see the Reason* constants) and the
// line it came from. Only a source that cannot be read at all (unknown format, broken JSON,
// binary or HTML data) makes Parse return an error, so that a caller can isolate it.
//
// Domains are normalised as Mastodon does (shared/domain.Normalize). Obfuscated entries
// such as "ap.***.st" (Mastodon's public_domain) are kept apart in List.Obfuscated so that
// the merge can resolve them against the names other sources publish; "*.example.com" and
// ".example.com" wildcards become blocks on "example.com", because a Mastodon domain block
// covers every subdomain.
package lists

import (
	"fmt"
	"strings"

	"github.com/fediops/fediops/shared/domain"
)

// Severity is the level of a Mastodon domain block. Noop < Silence < Suspend; the zero value
// is "unset" and is never produced by a parser (Options.MaxSeverity uses it for "no cap").
type Severity uint8

// Severities, in increasing order.
const (
	SeverityUnset Severity = iota
	Noop
	Silence
	Suspend
)

// String returns Mastodon's name for the severity ("noop", "silence", "suspend"), or "" when unset.
func (s Severity) String() string {
	switch s {
	case Noop:
		return "noop"
	case Silence:
		return "silence"
	case Suspend:
		return "suspend"
	}
	return ""
}

// ParseSeverity reads a severity in any case, ignoring surrounding spaces. An empty string is
// Noop: FBH maps an empty severity cell (or a JSON null) to noop and fediops keeps that parity.
func ParseSeverity(s string) (Severity, error) {
	switch s { // the usual spellings, without allocating
	case "suspend":
		return Suspend, nil
	case "silence":
		return Silence, nil
	case "noop", "":
		return Noop, nil
	}
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "noop":
		return Noop, nil
	case "silence":
		return Silence, nil
	case "suspend":
		return Suspend, nil
	}
	return SeverityUnset, fmt.Errorf("invalid severity %q (want noop, silence or suspend)", s)
}

// MarshalText implements encoding.TextMarshaler.
func (s Severity) MarshalText() ([]byte, error) {
	if s < Noop || s > Suspend {
		return nil, fmt.Errorf("invalid severity %d", uint8(s))
	}
	return []byte(s.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler (JSON strings, TOML config values).
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Block is one Mastodon domain block: the fields of Mastodon's admin API and of FBH's
// DomainBlock. Domain is normalised (lower case, punycode, no trailing dot).
type Block struct {
	Domain         string
	Severity       Severity
	RejectMedia    bool
	RejectReports  bool
	Obfuscate      bool
	PublicComment  string
	PrivateComment string
}

// StricterThan is Mastodon's DomainBlock#stricter_than?: whether b may be created under an
// existing block parent on a parent domain. Mastodon refuses (HTTP 422) a subdomain block
// that is not stricter than the block its parent domain already has. Note that a suspend is
// always "stricter", even than a suspend, and that equal non-suspend blocks are too.
func (b Block) StricterThan(parent Block) bool {
	if b.Severity == Suspend {
		return true
	}
	if parent.Severity == Suspend && (b.Severity == Silence || b.Severity == Noop) {
		return false
	}
	if parent.Severity == Silence && b.Severity == Noop {
		return false
	}
	return (b.RejectMedia || !parent.RejectMedia) && (b.RejectReports || !parent.RejectReports)
}

// Entry is a Block as read from a source, with the line where its row starts (1-based;
// for JSON, the line where the object starts).
type Entry struct {
	Block
	Line int
}

// Obfuscated is an entry whose domain is masked with '*' (Block.Domain holds the lower-cased
// pattern, e.g. "ap.***.st"). Digest is the SHA-256 hex of the real domain when the source
// published one (Mastodon's public and admin APIs do), else "".
type Obfuscated struct {
	Entry
	Digest string
}

// Field names, as FBH spells them in import_fields/export_fields and CSV headers.
const (
	FieldDomain         = "domain"
	FieldSeverity       = "severity"
	FieldPublicComment  = "public_comment"
	FieldPrivateComment = "private_comment"
	FieldRejectMedia    = "reject_media"
	FieldRejectReports  = "reject_reports"
	FieldObfuscate      = "obfuscate"
)

// OptionalFields are the fields that import_fields/export_fields may name besides domain and
// severity, which are always imported and exported.
var OptionalFields = []string{FieldPublicComment, FieldPrivateComment, FieldRejectMedia, FieldRejectReports, FieldObfuscate}

// CheckFields reports the first name that is not a block field. "domain" and "severity" are
// accepted (they are always included anyway).
func CheckFields(names []string) error {
	for _, n := range names {
		if _, ok := fieldBit(n); !ok && n != FieldDomain && n != FieldSeverity {
			return fmt.Errorf("unknown field %q (want one of domain, severity, %s)", n, strings.Join(OptionalFields, ", "))
		}
	}
	return nil
}

// fieldSet is a bit set of optional fields.
type fieldSet uint8

const (
	fPublicComment fieldSet = 1 << iota
	fPrivateComment
	fRejectMedia
	fRejectReports
	fObfuscate
)

func fieldBit(name string) (fieldSet, bool) {
	switch name {
	case FieldPublicComment:
		return fPublicComment, true
	case FieldPrivateComment:
		return fPrivateComment, true
	case FieldRejectMedia:
		return fRejectMedia, true
	case FieldRejectReports:
		return fRejectReports, true
	case FieldObfuscate:
		return fObfuscate, true
	}
	return 0, false
}

func fieldsOf(names []string) fieldSet {
	var fs fieldSet
	for _, n := range names {
		if b, ok := fieldBit(strings.ToLower(strings.TrimSpace(n))); ok {
			fs |= b
		}
	}
	return fs
}

// IsCanary reports whether a normalised domain is a canary: a name that list publishers put
// in a list to detect people who apply it blindly, which must never be applied. The rules:
//   - anything in the reserved "invalid" TLD (RFC 2606), e.g. "dni.invalid", "aud.invalid";
//   - under example.com, example.org or example.net, a name whose first label is "canary"
//     or starts with "000" (e.g. "canary.tier0.example.com",
//     "000this.is.generated.from.overlap.across.trusted.sources.example.com"); other
//     example.* names are NOT canaries (FBH's own fixtures use them as real entries);
//   - under seirdy.one, a name starting with "000"
//     ("000delete.this.line.if.you.have.read.the.documentation.on.seirdy.one").
//
// It returns the rule that matched, for reports, or "" when d is not a canary.
func IsCanary(d string) string {
	switch d[strings.LastIndexByte(d, '.')+1:] { // only these TLDs can hold a canary
	case "invalid", "com", "org", "net", "one":
	default:
		return ""
	}
	if domain.IsWithin(d, "invalid") {
		return "reserved TLD .invalid"
	}
	for _, p := range [...]string{"example.com", "example.org", "example.net"} {
		if len(d) > len(p) && domain.IsWithin(d, p) {
			if strings.HasPrefix(d, "canary.") {
				return "canary label under " + p
			}
			if strings.HasPrefix(d, "000") {
				return "000 marker under " + p
			}
		}
	}
	if len(d) > len("seirdy.one") && domain.IsWithin(d, "seirdy.one") && strings.HasPrefix(d, "000") {
		return "Seirdy documentation marker"
	}
	return ""
}

// PublicDomain is Mastodon's DomainBlock#public_domain obfuscation: with r = len/4, every
// character at index i with r < i < len-r that is not a dot becomes '*'. It replaces
// characters one for one, so the pattern has the length of the domain.
func PublicDomain(d string) string {
	n := len(d)
	r := n / 4
	b := []byte(d)
	for i := range b {
		if i > r && i < n-r && b[i] != '.' {
			b[i] = '*'
		}
	}
	return string(b)
}

// MatchesObfuscated reports whether domain d could be the name behind pattern p: both have
// the same length, each '*' in p stands for exactly one character of d that is not a dot,
// and every other byte is equal. This is the inverse of one-for-one masking such as
// Mastodon's public_domain; '*' never crosses a label boundary.
func MatchesObfuscated(p, d string) bool {
	if len(p) != len(d) {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] == '*' {
			if d[i] == '.' {
				return false
			}
		} else if p[i] != d[i] {
			return false
		}
	}
	return true
}

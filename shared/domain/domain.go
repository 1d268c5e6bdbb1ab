// Package domain normalises, validates and compares DNS domain names the way Mastodon 4.3 does
// for domain blocks, so that fediops and its Mastodon simulator accept exactly the names Mastodon
// accepts and store them in the same form.
//
// Mastodon's steps (tag v4.3.0), which Host and Normalize follow:
//
//   - app/models/concerns/domain_normalizable.rb: domain.strip, then
//     app/lib/tag_manager.rb #normalize_domain: delete_suffix('/'), Addressable::URI#host= and
//     #normalized_host.
//   - Addressable 2.8.7 (lib/addressable/uri.rb): host= raises InvalidURIError on whitespace and
//     on < > { } / \ ? # @ "; normalized_host strips, downcases, splits on '.', hands every label
//     of 1 to 63 characters to IDN::Idna.toASCII (lib/addressable/idna/native.rb: idn-ruby, that
//     is GNU libidn's IDNA2003 ToASCII with ALLOW_UNASSIGNED and without UseSTD3ASCIIRules), and
//     drops a single trailing dot.
//   - libidn leaves an all-ASCII label as it is: there is no hyphen rule and no check of "xn--"
//     labels, so "-lead", "trail-", "ab--cd" and "xn--zz" pass. A label with other characters
//     goes through nameprep, whose case folding maps "ß" to "ss" (IDNA2003, like UTS #46
//     transitional processing: "straße.example" is stored as "strasse.example", not as
//     IDNA2008's "xn--strae-oqa.example"), and then to punycode.
//   - app/validators/domain_validator.rb: the normalised name must be shorter than 256
//     characters, and each label 1 to 63 characters of a-z, 0-9 and '-'.
//
// Go has no IDNA2003 implementation; non-ASCII labels are mapped with golang.org/x/net/idna's
// UTS #46 transitional processing, which was designed to give IDNA2003's results. Checked
// against Python's IDNA2003 codec on 2,300 random labels of code points assigned in Unicode
// 3.2, the results agree except for the bidi rule's treatment of a trailing digit ("ة0":
// refused by IDNA2003, accepted here). Code points unassigned in Unicode 3.2, which libidn
// passes through (ALLOW_UNASSIGNED), follow today's Unicode here: still unassigned ones are
// refused, later ones are mapped and checked by today's rules.
//
// Normalize refuses two things Mastodon stores verbatim although they name no host: a name
// with an empty label anywhere (Mastodon accepts "example.com.." and "." because Ruby's
// String#split drops trailing empty fields), and percent escapes (Addressable decodes "%41" to
// "A" after lower-casing and stores "A.example").
package domain

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// ErrInvalid is wrapped by every error Host and Normalize return; errors.As finds an *Error.
var ErrInvalid = errors.New("invalid domain")

// Reason says which of Mastodon's steps refuses a name. Mastodon answers differently for each
// (a validation error, or an exception nothing rescues), so the simulator needs to know.
type Reason int

const (
	// Blank: nothing is left once whitespace and a trailing '/' are removed ("can't be blank").
	Blank Reason = iota + 1
	// BadHost: Addressable::URI#host= raises InvalidURIError (whitespace, one of < > { } / \ ? # @ ",
	// or bytes that are not UTF-8).
	BadHost
	// BadIDNA: libidn's ToASCII raises IDN::Idna::IdnaError on a non-ASCII label (a code point
	// nameprep prohibits, a bidi violation, an "xn--" prefix on a non-ASCII label, or more than
	// 63 characters once encoded).
	BadIDNA
	// BadName: DomainValidator refuses the normalised name, or fediops' stricter rules do (see
	// the package comment).
	BadName
)

// Error is a refused name.
type Error struct {
	Input  string
	Reason Reason
	Detail string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%v: %q %s", ErrInvalid, e.Input, e.Detail)
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *Error) Unwrap() error { return ErrInvalid }

// nonASCIILabel maps a label that has non-ASCII characters as libidn's IDNA2003 ToASCII does:
// case folding and NFKC with IDNA2003's mappings (transitional), no STD3 rules and no hyphen
// checks (libidn is called without UseSTD3ASCIIRules), the bidi rule, and 1 to 63 characters
// once encoded.
var nonASCIILabel = idna.New(
	idna.MapForLookup(),
	idna.Transitional(true),
	idna.StrictDomainName(false),
	idna.CheckHyphens(false),
	idna.BidiRule(),
	idna.VerifyDNSLength(true),
)

// hostForbidden are the characters besides whitespace for which Addressable::URI#validate
// raises InvalidURIError on a host.
const hostForbidden = `<>{}/\?#@"`

// Host is Addressable's `uri.host = s; uri.normalized_host` as Mastodon 4.3 runs it (see the
// package comment): s is not stripped, so surrounding whitespace is a BadHost error; labels
// are not validated beyond what libidn checks. It returns "" for "".
func Host(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", &Error{Input: s, Reason: BadHost, Detail: "is not valid UTF-8"}
	}
	for _, r := range s {
		if unicode.IsSpace(r) {
			return "", &Error{Input: s, Reason: BadHost, Detail: "contains whitespace"}
		}
		if strings.ContainsRune(hostForbidden, r) {
			return "", &Error{Input: s, Reason: BadHost, Detail: fmt.Sprintf("contains %q", r)}
		}
	}
	labels := strings.Split(s, ".")
	for i, l := range labels {
		switch {
		case l == "":
		case isASCII(l):
			// libidn's ToASCII skips nameprep and every check but the length for ASCII.
			labels[i] = strings.ToLower(l)
		case utf8.RuneCountInString(l) >= 64:
			// Addressable hands only labels of 1..63 characters to libidn; DomainValidator
			// refuses the others.
			labels[i] = strings.ToLower(l)
		default:
			a, err := nonASCIILabel.ToASCII(l)
			if err != nil {
				return "", &Error{Input: s, Reason: BadIDNA, Detail: err.Error()}
			}
			labels[i] = a
		}
	}
	h := strings.Join(labels, ".")
	if len(h) >= 2 && h[len(h)-1] == '.' && h[len(h)-2] != '.' {
		h = h[:len(h)-1] // a single trailing dot
	}
	return h, nil
}

// Normalize returns the form Mastodon stores for s as a domain block's domain, or an *Error.
// It is DomainNormalizable (strip, drop one trailing '/', Host) followed by DomainValidator,
// plus the two refusals of the package comment.
func Normalize(s string) (string, error) {
	d := strings.TrimSuffix(Strip(s), "/")
	if d == "" {
		return "", &Error{Input: s, Reason: Blank, Detail: "is empty"}
	}
	h, err := Host(d)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.Input = s
		}
		return "", err
	}
	if detail := invalidName(h); detail != "" {
		return "", &Error{Input: s, Reason: BadName, Detail: detail}
	}
	return h, nil
}

// invalidName is DomainValidator#compliant? on a normalised name plus fediops' refusal of
// empty labels; "" means valid.
func invalidName(h string) string {
	if h == "" {
		return "is empty"
	}
	if len(h) >= 256 {
		return "is 256 characters or longer"
	}
	for _, l := range strings.Split(h, ".") {
		if l == "" {
			return "has an empty label"
		}
		if len(l) > 63 {
			return "has a label longer than 63 characters"
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return fmt.Sprintf("has a label with a character other than a-z, 0-9 and '-': %q", l)
			}
		}
	}
	return ""
}

// Strip is DomainNormalizable's domain.strip, Ruby's String#strip: it removes leading and
// trailing ASCII whitespace and NULs, not Unicode spaces (which Host then refuses).
func Strip(s string) string {
	return strings.Trim(s, "\x00\t\n\v\f\r ")
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// Unicode returns the display form of a normalised domain, or d itself if it cannot be decoded.
func Unicode(d string) string {
	u, err := idna.ToUnicode(d)
	if err != nil {
		return d
	}
	return u
}

// IsWithin reports whether d equals parent or is a subdomain of it, on label boundaries.
// Both must already be normalised. "agency.gov" is within "gov"; "notgov" is not.
func IsWithin(d, parent string) bool {
	if parent == "" {
		return false
	}
	return d == parent || strings.HasSuffix(d, "."+parent)
}

// Variants returns d followed by each of its parent domains, most specific first:
// "a.b.example.com" → ["a.b.example.com", "b.example.com", "example.com", "com"].
// This is Mastodon's DomainBlock.domain_variants, used by rule_for.
func Variants(d string) []string {
	out := []string{d}
	for i := 0; i < len(d); i++ {
		if d[i] == '.' {
			out = append(out, d[i+1:])
		}
	}
	return out
}

// Digest returns the lower-case hex SHA-256 of d, as Mastodon publishes in domain block lists.
func Digest(d string) string {
	h := sha256.Sum256([]byte(d))
	return hex.EncodeToString(h[:])
}

// IsLoopback reports whether host names this machine: "localhost" or a loopback address (in
// brackets or not). It is where plain http and unauthenticated test endpoints are accepted.
func IsLoopback(host string) bool {
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// IsLoopbackEndpoint is IsLoopback for an endpoint: a URL, "host:port" or a host.
func IsLoopbackEndpoint(endpoint string) bool {
	host := endpoint
	if u, err := url.Parse(endpoint); err == nil && u.Host != "" {
		host = u.Host
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return IsLoopback(host)
}

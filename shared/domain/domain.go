// Package domain normalises and compares DNS domain names the way Mastodon does
// (TagManager#normalize_domain + Addressable's normalized_host): surrounding whitespace and a
// trailing dot are removed, letters are lower-cased and internationalised names are converted
// to punycode. Names that are not valid hostnames are rejected with an error that says why.
package domain

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// ErrInvalid is wrapped by every error Normalize returns.
var ErrInvalid = errors.New("invalid domain")

// profile maps for lookup (case folding, width mapping) and enforces STD3 host rules:
// only letters, digits and hyphens in labels, no leading or trailing hyphen.
var profile = idna.New(
	idna.MapForLookup(),
	idna.BidiRule(),
	idna.Transitional(false),
	idna.StrictDomainName(true),
	idna.VerifyDNSLength(true),
)

// Normalize returns the canonical ASCII (punycode) form of s, or an error wrapping ErrInvalid.
func Normalize(s string) (string, error) {
	d := strings.TrimSpace(s)
	d = strings.TrimSuffix(d, "/")
	d = strings.TrimSuffix(d, ".")
	if d == "" {
		return "", fmt.Errorf("%w: empty", ErrInvalid)
	}
	if !utf8.ValidString(d) {
		return "", fmt.Errorf("%w: %q is not valid UTF-8", ErrInvalid, s)
	}
	if strings.ContainsAny(d, " \t\r\n") {
		return "", fmt.Errorf("%w: %q contains whitespace", ErrInvalid, s)
	}
	a, err := profile.ToASCII(d)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %v", ErrInvalid, s, err)
	}
	a = strings.ToLower(a)
	for _, label := range strings.Split(a, ".") {
		if label == "" {
			return "", fmt.Errorf("%w: %q has an empty label", ErrInvalid, s)
		}
		if len(label) > 63 {
			return "", fmt.Errorf("%w: %q has a label longer than 63 characters", ErrInvalid, s)
		}
	}
	if len(a) > 253 {
		return "", fmt.Errorf("%w: %q is longer than 253 characters", ErrInvalid, s)
	}
	return a, nil
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

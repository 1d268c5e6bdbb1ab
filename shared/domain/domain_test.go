package domain

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// TestNormalize follows Mastodon 4.3: app/models/concerns/domain_normalizable.rb,
// app/lib/tag_manager.rb, Addressable's normalized_host with libidn, and
// app/validators/domain_validator.rb (see the package comment).
func TestNormalize(t *testing.T) {
	tests := []struct {
		in     string
		want   string
		reason Reason // 0: valid
	}{
		{in: "example.com", want: "example.com"},
		{in: "  Example.COM.  ", want: "example.com"},
		{in: "NoAgenda.social", want: "noagenda.social"},
		{in: "example.com/", want: "example.com"},
		{in: "bücher.example", want: "xn--bcher-kva.example"},
		{in: "BÜCHER.example", want: "xn--bcher-kva.example"},
		{in: "xn--p1abe3d.xn--80asehdb", want: "xn--p1abe3d.xn--80asehdb"},
		{in: "ＥＸＡＭＰＬＥ.com", want: "example.com"},
		{in: "a。b.example", want: "a.b.example"},
		// DomainValidator only asks for 1..63 characters of [a-z0-9-] per label, and libidn leaves
		// ASCII labels as they are: no hyphen rules, no check that "xn--" labels decode.
		{in: "-lead.example", want: "-lead.example"},
		{in: "trail-.example", want: "trail-.example"},
		{in: "ab--cd.example", want: "ab--cd.example"},
		{in: "xn--zz.example", want: "xn--zz.example"},
		{in: "XN--ZZ.example", want: "xn--zz.example"},
		{in: "xn--p1abe3d-xn--80asehdb", want: "xn--p1abe3d-xn--80asehdb"},
		{in: "-", want: "-"},
		// libidn is IDNA2003: nameprep folds ß to ss and final sigma to sigma, as UTS #46
		// transitional processing does (IDNA2008 would give xn--strae-oqa).
		{in: "straße.example", want: "strasse.example"},
		{in: "STRAẞE.example", want: "strasse.example"},
		{in: "ὀδυσσεύς.example", want: "xn--pxac5babi3d8526a.example"},
		{in: "İstanbul.example", want: "xn--istanbul-o0e.example"},
		// Names up to 255 characters (DomainValidator: size < 256).
		{in: strings.Repeat("a.", 127) + "b", want: strings.Repeat("a.", 127) + "b"},
		{in: strings.Repeat("a.", 127) + "bc", reason: BadName},

		{in: "", reason: Blank},
		{in: "   ", reason: Blank},
		{in: "/", reason: Blank},
		{in: "bad domain.com", reason: BadHost},
		{in: "example.com\u00a0", reason: BadHost}, // Ruby's strip leaves Unicode spaces
		{in: "x@y.example", reason: BadHost},
		{in: "a/b.example", reason: BadHost},
		{in: "example.com//", reason: BadHost},
		{in: "\x8b", reason: BadHost},
		{in: "ab\xffc.example", reason: BadHost},
		{in: "xn--bücher.example", reason: BadIDNA},
		{in: strings.Repeat("ü", 60) + ".example", reason: BadIDNA}, // too long once encoded
		{in: "\u00ad.example", reason: BadIDNA},                     // maps to an empty label
		{in: "eveningzoo.]club", reason: BadName},
		{in: "mastodong[.]lol", reason: BadName},
		{in: "ap.***.st", reason: BadName},
		{in: "*.example.com", reason: BadName},
		{in: "under_score.example", reason: BadName},
		{in: "ü_x.example", reason: BadName}, // libidn passes "_" without STD3 rules
		{in: "example.com:443", reason: BadName},
		{in: "%41.example", reason: BadName}, // Mastodon decodes the escape; fediops refuses it
		{in: "a..b", reason: BadName},
		{in: ".example.com", reason: BadName},
		{in: "example.com..", reason: BadName}, // Mastodon stores it; fediops refuses it
		{in: ".", reason: BadName},
		{in: strings.Repeat("a", 64) + ".example", reason: BadName},
		{in: strings.Repeat("ü", 64) + ".example", reason: BadName}, // libidn never sees it
	}
	for _, tt := range tests {
		got, err := Normalize(tt.in)
		if tt.reason != 0 {
			var e *Error
			if !errors.Is(err, ErrInvalid) || !errors.As(err, &e) || e.Reason != tt.reason || e.Input != tt.in {
				t.Errorf("Normalize(%q) = %q, %v; want reason %d", tt.in, got, err, tt.reason)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// TestHost is Addressable's normalized_host without DomainNormalizable's strip and without
// DomainValidator (what DomainBlock.rule_for and conflicts_with_existing_block? see).
func TestHost(t *testing.T) {
	tests := []struct {
		in, want string
		reason   Reason
	}{
		{in: "", want: ""},
		{in: "Bad.Example", want: "bad.example"},
		{in: "bad.example.", want: "bad.example"},
		{in: "bad.example..", want: "bad.example.."},
		{in: "a..b", want: "a..b"},
		{in: "*.x", want: "*.x"},
		{in: " bad.example", reason: BadHost},
		{in: "bad.example ", reason: BadHost},
		{in: "bad.example/", reason: BadHost},
		{in: "xn--ü", reason: BadIDNA},
	}
	for _, tt := range tests {
		got, err := Host(tt.in)
		var e *Error
		if tt.reason != 0 {
			if !errors.As(err, &e) || e.Reason != tt.reason {
				t.Errorf("Host(%q) = %q, %v; want reason %d", tt.in, got, err, tt.reason)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Host(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestStrip(t *testing.T) {
	if got := Strip("\x00\t\n\v\f\r a b \r\n"); got != "a b" {
		t.Errorf("Strip = %q", got)
	}
	if got := Strip("\u00a0a\u00a0"); got != "\u00a0a\u00a0" {
		t.Errorf("Strip removed a Unicode space: %q", got)
	}
}

func TestIsWithin(t *testing.T) {
	tests := []struct {
		d, parent string
		want      bool
	}{
		{"agency.gov", "gov", true},
		{"x.agency.gov", "gov", true},
		{"gov", "gov", true},
		{"agency.gov.evil.com", "gov", false},
		{"notgmail.com", "gmail.com", false},
		{"gov.evil", "gov", false},
		{"gmail.com", "", false},
	}
	for _, tt := range tests {
		if got := IsWithin(tt.d, tt.parent); got != tt.want {
			t.Errorf("IsWithin(%q, %q) = %v, want %v", tt.d, tt.parent, got, tt.want)
		}
	}
}

func TestVariants(t *testing.T) {
	got := Variants("a.b.example.com")
	want := []string{"a.b.example.com", "b.example.com", "example.com", "com"}
	if !slices.Equal(got, want) {
		t.Errorf("Variants = %v, want %v", got, want)
	}
}

func TestDigest(t *testing.T) {
	// sha256("example.com")
	if got := Digest("example.com"); got != "a379a6f6eeafb9a55e378c118034e2751e682fab9f2d30ab13d2125586ce1947" {
		t.Errorf("Digest = %s", got)
	}
}

func TestUnicode(t *testing.T) {
	if got := Unicode("xn--bcher-kva.example"); got != "bücher.example" {
		t.Errorf("Unicode = %q", got)
	}
}

// FuzzNormalize checks that a normalised name normalises to itself.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"example.com", "Bücher.example.", "\x8b", "a..b", "xn--bcher-kva.example", "-a.xn--zz", "straße.example"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := Normalize(s)
		if err != nil {
			return
		}
		again, err := Normalize(n)
		if err != nil || again != n {
			t.Fatalf("Normalize(%q) = %q, but Normalize(%q) = %q, %v", s, n, n, again, err)
		}
	})
}

func TestIsLoopback(t *testing.T) {
	for in, want := range map[string]bool{
		"localhost": true, "LOCALHOST": true, "127.0.0.1": true, "[::1]": true, "::1": true, "127.8.9.10": true,
		"social.example": false, "10.0.0.1": false, "": false,
	} {
		if got := IsLoopback(in); got != want {
			t.Errorf("IsLoopback(%q) = %v", in, got)
		}
	}
	for in, want := range map[string]bool{
		"127.0.0.1:8085": true, "http://localhost:4443/storage/v1/": true, "[::1]:9000": true, "localhost": true,
		"pubsub.googleapis.com:443": false, "https://storage.googleapis.com/": false,
	} {
		if got := IsLoopbackEndpoint(in); got != want {
			t.Errorf("IsLoopbackEndpoint(%q) = %v", in, got)
		}
	}
}

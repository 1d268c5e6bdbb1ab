package domain

import (
	"errors"
	"slices"
	"testing"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{in: "example.com", want: "example.com"},
		{in: "  Example.COM.  ", want: "example.com"},
		{in: "NoAgenda.social", want: "noagenda.social"},
		{in: "example.com/", want: "example.com"},
		{in: "bücher.example", want: "xn--bcher-kva.example"},
		{in: "xn--p1abe3d.xn--80asehdb", want: "xn--p1abe3d.xn--80asehdb"},
		{in: "ＥＸＡＭＰＬＥ.com", want: "example.com"},
		{in: "", wantErr: true},
		{in: "   ", wantErr: true},
		{in: "eveningzoo.]club", wantErr: true},
		{in: "mastodong[.]lol", wantErr: true},
		{in: "bad domain.com", wantErr: true},
		{in: "ap.***.st", wantErr: true},
		{in: "*.example.com", wantErr: true},
		{in: "a..b", wantErr: true},
		{in: "-lead.example", wantErr: true},
		{in: "under_score.example", wantErr: true},
		{in: "x@y.example", wantErr: true},
		{in: "\x8b", wantErr: true},
		{in: "ab\xffc.example", wantErr: true},
		{in: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example", wantErr: true},
	}
	for _, tt := range tests {
		got, err := Normalize(tt.in)
		if tt.wantErr {
			if err == nil || !errors.Is(err, ErrInvalid) {
				t.Errorf("Normalize(%q) = %q, %v; want ErrInvalid", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
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
	for _, s := range []string{"example.com", "Bücher.example.", "\x8b", "a..b", "xn--bcher-kva.example"} {
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

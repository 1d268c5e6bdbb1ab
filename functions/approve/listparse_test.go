package approve

import (
	"os"
	"slices"
	"strings"
	"testing"
)

func TestParseDomainListFormats(t *testing.T) {
	tests := []struct {
		name, format, url, data string
		wantFormat              string
		want                    []string
		skipped                 map[string]int
	}{
		{name: "text with comments and forms", url: "https://lists.example/spam.txt",
			data:       "# spam providers\nmailinator.com\n  @Trash-Mail.COM  # inline comment\n*.tempmail.example\n.guerrilla.example\n// a C-style comment\n\nnot a domain!\ncom\nmailinator.com\n",
			wantFormat: FormatText, want: []string{"mailinator.com", "trash-mail.com", "tempmail.example", "guerrilla.example"},
			skipped: map[string]int{skipInvalid: 1, skipTopLevel: 1, skipDuplicate: 1}},
		{name: "tootctl list output (children indented)", data: "spam.example\n  mx.spam.example\nother.example\n",
			wantFormat: FormatText, want: []string{"spam.example", "mx.spam.example", "other.example"}},
		{name: "csv with header, domain column second", data: "reason,domain,added\ndisposable,Mailinator.com,2025-01-01\n\"spam, lots\",spam.example,2025-02-02\n",
			wantFormat: FormatCSV, want: []string{"mailinator.com", "spam.example"}},
		{name: "csv with a #domain header (Mastodon domain-block export style)", data: "#domain,#severity\nbad.example,suspend\n",
			wantFormat: FormatCSV, want: []string{"bad.example"}},
		{name: "csv without header, domain column third", data: "1,disposable,spam.example\n2,disposable,junk.example\n3,disposable,\n",
			wantFormat: FormatCSV, want: []string{"spam.example", "junk.example"}, skipped: map[string]int{skipInvalid: 1}},
		{name: "csv with comment lines", data: "# exported 2025\ndomain\nspam.example\n",
			wantFormat: FormatCSV, format: FormatCSV, want: []string{"spam.example"}},
		{name: "Mastodon email-domain block export", url: "file:///tmp/blocks.json",
			data: `[{"id":"3","domain":"spam.example","created_at":"2025-01-01T00:00:00.000Z","history":[],"allow_with_approval":false},
			        {"id":"2","domain":"review.example","allow_with_approval":true},
			        {"id":"1","domain":"mx.spam.example"}, {"id":"0"}]`,
			wantFormat: FormatMastodon, want: []string{"spam.example", "mx.spam.example"},
			skipped: map[string]int{skipApprovalOnly: 1, skipInvalid: 1}},
		{name: "explicit format wins over detection", format: FormatText, data: "a.example,b.example\n",
			wantFormat: FormatText, want: nil, skipped: map[string]int{skipInvalid: 1}},
		{name: "byte-order mark", data: "\xef\xbb\xbfspam.example\n", wantFormat: FormatText, want: []string{"spam.example"}},
		{name: "IDN to punycode", data: "bücher.example\n", wantFormat: FormatText, want: []string{"xn--bcher-kva.example"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := ParseDomainList([]byte(tt.data), tt.format, tt.url)
			if err != nil {
				t.Fatal(err)
			}
			if l.Format != tt.wantFormat || !slices.Equal(l.Domains, tt.want) {
				t.Errorf("format %s, domains %v; want %s, %v", l.Format, l.Domains, tt.wantFormat, tt.want)
			}
			for k, n := range tt.skipped {
				if l.Skipped[k] != n {
					t.Errorf("skipped[%s] = %d, want %d (all: %v)", k, l.Skipped[k], n, l.Skipped)
				}
			}
			if used := len(l.Domains); l.Rows < used {
				t.Errorf("rows %d < used %d", l.Rows, used)
			}
		})
	}
}

func TestParseDomainListErrors(t *testing.T) {
	for _, tt := range []struct{ format, data, want string }{
		{FormatMastodon, `{"domain":"x.example"}`, "not a JSON array"},
		{FormatCSV, "a,b\n1,2\n", "no domain column"},
		{"xml", "<x/>", "unknown list format"},
	} {
		if _, err := ParseDomainList([]byte(tt.data), tt.format, ""); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s %q: err = %v, want %q", tt.format, tt.data, err, tt.want)
		}
	}
}

// The disposable preset's real list (a sample in testdata) reads as text, every line a domain.
func TestParseDisposableSample(t *testing.T) {
	data, err := os.ReadFile("testdata/disposable-sample.conf")
	if err != nil {
		t.Fatal(err)
	}
	l, err := ParseDomainList(data, "", DisposableListURL)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Count(strings.TrimSpace(string(data)), "\n") + 1
	if l.Format != FormatText || len(l.Domains) != lines || len(l.Skipped) != 0 {
		t.Errorf("format %s, %d of %d lines used, skipped %v", l.Format, len(l.Domains), lines, l.Skipped)
	}
}

// FuzzParseDomainList: any bytes in any format never panic, and every domain used is
// normalised, has a dot and is listed once.
func FuzzParseDomainList(f *testing.F) {
	for _, s := range []string{"a.example\n", "domain\nx.example", `[{"domain":"y.example"}]`, "1,x.example\n", "\xef\xbb\xbf#x\n@z.example"} {
		f.Add([]byte(s), "")
	}
	f.Fuzz(func(t *testing.T, data []byte, format string) {
		if format != "" && !slices.Contains(ListFormats, format) {
			format = ""
		}
		l, err := ParseDomainList(data, format, "")
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, d := range l.Domains {
			n, nerr := NormalizeSuffix(d)
			if nerr != nil || n != d || !strings.Contains(d, ".") || seen[d] {
				t.Fatalf("domain %q: normalised %q (%v), seen %v", d, n, nerr, seen[d])
			}
			seen[d] = true
		}
	})
}

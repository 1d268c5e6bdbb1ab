package approve

import (
	"net/url"
	"slices"
	"strings"
	"testing"
)

// The public-sector table's shape: every row has a valid suffix, a country or body, a source
// URL and a note on who may register; no suffix twice.
func TestPublicSectorTable(t *testing.T) {
	rows, err := PublicSectorTable()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) < 15 {
		t.Fatalf("only %d rows", len(rows))
	}
	seen := map[string]bool{}
	for _, r := range rows {
		n, err := NormalizeSuffix(r.Suffix)
		if err != nil || n != r.Suffix {
			t.Errorf("%q: not a normalised suffix (%v)", r.Suffix, err)
		}
		if seen[r.Suffix] {
			t.Errorf("%q listed twice", r.Suffix)
		}
		seen[r.Suffix] = true
		u, err := url.Parse(r.Source)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			t.Errorf("%s: source %q is not a web address", r.Suffix, r.Source)
		}
		if strings.TrimSpace(r.Body) == "" || len(strings.Fields(r.Note)) < 5 {
			t.Errorf("%s: country or body %q, note %q: both must say something", r.Suffix, r.Body, r.Note)
		}
	}
	// The suffixes the ops guide started from are all there.
	for _, s := range []string{"gov", "mil", "gov.uk", "gc.ca", "gov.au", "govt.nz", "europa.eu", "gouv.fr", "gov.in", "gob.mx", "gov.br", "go.jp", "gov.za", "canada.ca"} {
		if !seen[s] {
			t.Errorf("public-sector preset lacks %s", s)
		}
	}
}

func TestWebmailAndMailHosts(t *testing.T) {
	rows, err := WebmailTable()
	if err != nil {
		t.Fatal(err)
	}
	var domains []string
	for _, r := range rows {
		if n, err := NormalizeSuffix(r[0]); err != nil || n != r[0] || r[1] == "" {
			t.Errorf("webmail row %v", r)
		}
		domains = append(domains, r[0])
	}
	for _, d := range append([]string{"gmail.com", "yahoo.com", "hotmail.com", "outlook.com"}, DefaultRejectDomains...) {
		if !slices.Contains(domains, d) {
			t.Errorf("webmail preset lacks %s", d)
		}
	}
	public, _ := PublicSectorTable()
	for _, p := range public {
		if slices.Contains(domains, p.Suffix) {
			t.Errorf("%s is in both presets", p.Suffix)
		}
	}
	hosts, err := MailHosts()
	if err != nil || hosts["outlook.com"] == "" {
		t.Errorf("mail hosts %v, %v", hosts, err)
	}
}

func TestPresetExpansion(t *testing.T) {
	sets, srcs, err := presetDomains(Reject, []string{PresetWebmail, PresetDisposable})
	if err != nil {
		t.Fatal(err)
	}
	if len(sets) != 1 || sets[0].List != "reject_presets webmail" || !slices.Contains(sets[0].Domains, "gmail.com") {
		t.Errorf("sets %+v", sets)
	}
	// disposable points at the maintained list: a source, not a copy.
	if len(srcs) != 1 || srcs[0].URL != DisposableListURL || srcs[0].List() != "reject_presets disposable" || srcs[0].Decision != Reject {
		t.Errorf("sources %+v", srcs)
	}
	if _, _, err := presetDomains(Approve, []string{"webmail"}); err == nil {
		t.Error("webmail accepted as an approve preset")
	}
}

// How presets combine with the built-in defaults: a file that sets neither keeps today's
// lists; presets alone replace the default of their kind; with the inline list they add.
func TestPresetsAndDefaults(t *testing.T) {
	classify := func(t *testing.T, cfg, email string) Verdict {
		t.Helper()
		_, s, err := loadSection(t, minimal+cfg)
		if err != nil {
			t.Fatal(err)
		}
		r, err := s.RulesFor(s.For("main"), nil)
		if err != nil {
			t.Fatal(err)
		}
		return r.Classify(email)
	}
	tests := []struct {
		name, cfg, email string
		want             Decision
		rule             string
	}{
		{"neither: defaults", "", "a@agency.gov", Approve, "approve_domains: gov"},
		{"neither: defaults reject", "", "a@gmail.com", Reject, "reject_domains: gmail.com"},
		{"preset alone replaces the default", "[triage]\napprove_presets = [\"public-sector\"]\n", "a@bund.de", Hold, "no rule matches bund.de"},
		{"preset alone approves", "[triage]\napprove_presets = [\"public-sector\"]\n", "a@dst.gov.in", Approve, "approve_presets public-sector: gov.in"},
		{"preset alone keeps the other kind's default", "[triage]\napprove_presets = [\"public-sector\"]\n", "a@gmail.com", Reject, "reject_domains: gmail.com"},
		{"inline and preset add up", "[triage]\napprove_domains = [\"bund.de\"]\napprove_presets = [\"public-sector\"]\n", "a@bund.de", Approve, "approve_domains: bund.de"},
		{"inline entry named first", "[triage]\napprove_domains = [\"gov\"]\napprove_presets = [\"public-sector\"]\n", "a@agency.gov", Approve, "approve_domains: gov"},
		{"webmail preset", "[triage]\nreject_presets = [\"webmail\"]\n", "a@web.de", Reject, "reject_presets webmail: web.de"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if v := classify(t, tt.cfg, tt.email); v.Decision != tt.want || v.Rule != tt.rule {
				t.Errorf("%s = %s (%s), want %s (%s)", tt.email, v.Decision, v.Rule, tt.want, tt.rule)
			}
		})
	}
	if _, _, err := loadSection(t, minimal+"[triage]\napprove_domains = [\"gmail.com\"]\nreject_presets = [\"webmail\"]\n"); err == nil ||
		!strings.Contains(err.Error(), "gmail.com") {
		t.Errorf("overlap between approve_domains and a reject preset: %v", err)
	}
	if _, _, err := loadSection(t, minimal+"[triage]\napprove_presets = [\"webmail\"]\nreject_presets = [\"public-sector\"]\n"); err == nil ||
		!strings.Contains(err.Error(), "approve_presets[0]") || !strings.Contains(err.Error(), "reject_presets[0]") {
		t.Errorf("unknown presets: %v", err)
	}
}

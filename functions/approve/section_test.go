package approve

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fediops/fediops/shared/config"
)

const minimal = `
[[instance]]
name = "main"
url = "https://social.example.gov"
token = "sm://projects/p/secrets/tok/versions/latest"

[archive]
url = "gs://fediops-archive/prod"
`

func loadSection(t *testing.T, data string) (*config.Config, *Section, error) {
	t.Helper()
	c, err := config.Parse("/etc/fediops.toml", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	s, err := LoadSection(c)
	return c, s, err
}

func TestSectionDefaults(t *testing.T) {
	_, s, err := loadSection(t, minimal)
	if err != nil {
		t.Fatal(err)
	}
	r := s.For("main")
	if !r.RequireConfirmedEmail || r.MaxActions != 100 || r.PageSize != 200 || r.LeaseTTL != 10*time.Minute || r.DryRun {
		t.Errorf("defaults = %+v", r)
	}
	if !slices.Contains(r.ApproveDomains, "gov") || !slices.Contains(r.RejectDomains, "gmail.com") {
		t.Errorf("default domain lists missing: %v / %v", r.ApproveDomains, r.RejectDomains)
	}
	if !s.Fanout || s.WebhookMaxAge.Duration != time.Hour {
		t.Errorf("fanout = %v, webhook_max_age = %v; want true, 1h", s.Fanout, s.WebhookMaxAge)
	}
	_, s, err = loadSection(t, minimal+"\n[triage]\nfanout = false\nwebhook_max_age = \"10m\"\n")
	if err != nil || s.Fanout || s.WebhookMaxAge.Duration != 10*time.Minute {
		t.Errorf("fanout = false, webhook_max_age = 10m read as %v, %v (%v)", s.Fanout, s.WebhookMaxAge, err)
	}
}

func TestInstanceOverrides(t *testing.T) {
	c, s, err := loadSection(t, `
[triage]
approve_domains = ["gov"]
reject_domains = []
max_actions = 50

[[instance]]
name = "a"
url = "https://a.example"
token = "env://A_TOKEN"

[[instance]]
name = "b"
url = "https://b.example"
token = "file:///run/b"
[instance.triage]
approve_domains = ["gov.uk"]
require_confirmed_email = false
dry_run = true
max_actions = 5

[archive]
url = "/var/lib/fediops"
`)
	if err != nil {
		t.Fatal(err)
	}
	a, b := s.For("a"), s.For("b")
	if !slices.Equal(a.ApproveDomains, []string{"gov"}) || len(a.RejectDomains) != 0 || a.MaxActions != 50 || !a.RequireConfirmedEmail || a.DryRun {
		t.Errorf("a = %+v", a)
	}
	if !slices.Equal(b.ApproveDomains, []string{"gov.uk"}) || len(b.RejectDomains) != 0 || b.MaxActions != 5 || b.RequireConfirmedEmail || !b.DryRun {
		t.Errorf("b = %+v", b)
	}
	if got := s.InstancesOf(c); len(got) != 2 {
		t.Errorf("InstancesOf = %v", got)
	}
}

func TestSectionProblems(t *testing.T) {
	tests := []struct {
		name string
		toml string
		want []string
	}{
		{"unknown key", minimal + "\n[triage]\napprove_domain = [\"gov\"]\n", []string{"triage.approve_domain: unknown key"}},
		{"bad domain", minimal + "\n[triage]\napprove_domains = [\"gov\", \"bad domain\"]\n", []string{"triage.approve_domains[1]:"}},
		{"overlap", minimal + "\n[triage]\napprove_domains = [\"gov\"]\nreject_domains = [\".gov\"]\n", []string{"triage.reject_domains: \".gov\" is also in approve_domains"}},
		{"max_actions", minimal + "\n[triage]\nmax_actions = 0\n", []string{"triage.max_actions: must be at least 1"}},
		{"page size", minimal + "\n[triage]\npage_size = 500\n", []string{"triage.page_size:"}},
		{"unknown instance", minimal + "\n[triage]\ninstances = [\"other\"]\n", []string{"triage.instances: \"other\" is not an [[instance]] name"}},
		{"wrong type", minimal + "\n[triage]\nmax_actions = \"many\"\n", []string{"triage"}},
		{"bad duration", minimal + "\n[triage]\nlease_ttl = \"soon\"\n", []string{"lease_ttl"}},
		{"webhook_max_age", minimal + "\n[triage]\nwebhook_max_age = \"5s\"\n", []string{"triage.webhook_max_age: must be at least 1m"}},
		{"override", strings.Replace(minimal, "[archive]", "[instance.triage]\nmax_actions = 0\ncolour = 1\n[archive]", 1),
			[]string{"instance[0].triage.max_actions: must be at least 1", "instance.triage.colour: unknown key"}},
		{"a broken [backup] is not triage's business", minimal + "\n[backup]\nmin_retained_backups = \"many\"\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := loadSection(t, tt.toml)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no problem reported")
			}
			msg := err.Error()
			if !strings.Contains(msg, "/etc/fediops.toml") {
				t.Errorf("error does not name the file: %s", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
		})
	}
}

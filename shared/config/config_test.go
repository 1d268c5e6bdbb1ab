package config

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const minimal = `
[[instance]]
name = "main"
url = "https://social.example.gov"
token = "sm://projects/p/secrets/tok/versions/latest"

[archive]
url = "gs://fediops-archive/prod"
`

func TestParseMinimalAppliesDefaults(t *testing.T) {
	c, err := Parse("fediops.toml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Instances) != 1 || c.Instances[0].Name != "main" {
		t.Fatalf("instances = %+v", c.Instances)
	}
	r := c.TriageFor(c.Instances[0])
	if !r.RequireConfirmedEmail || r.MaxActions != 100 || r.PageSize != 200 || r.LeaseTTL != 10*time.Minute || r.DryRun {
		t.Errorf("defaults = %+v", r)
	}
	if !slices.Contains(r.ApproveDomains, "gov") || !slices.Contains(r.RejectDomains, "gmail.com") {
		t.Errorf("default domain lists missing: %v / %v", r.ApproveDomains, r.RejectDomains)
	}
	if c.Instances[0].RequestTimeout.Duration != 30*time.Second {
		t.Errorf("request timeout = %v", c.Instances[0].RequestTimeout)
	}
}

func TestInstanceOverrides(t *testing.T) {
	c, err := Parse("f.toml", []byte(`
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
`))
	if err != nil {
		t.Fatal(err)
	}
	a := c.TriageFor(c.Instances[0])
	b := c.TriageFor(c.Instances[1])
	if !slices.Equal(a.ApproveDomains, []string{"gov"}) || len(a.RejectDomains) != 0 || a.MaxActions != 50 || !a.RequireConfirmedEmail || a.DryRun {
		t.Errorf("a = %+v", a)
	}
	if !slices.Equal(b.ApproveDomains, []string{"gov.uk"}) || len(b.RejectDomains) != 0 || b.MaxActions != 5 || b.RequireConfirmedEmail || !b.DryRun {
		t.Errorf("b = %+v", b)
	}
	if got := c.TriageInstances(); len(got) != 2 {
		t.Errorf("TriageInstances = %v", got)
	}
}

func TestProblemsNameFileAndKey(t *testing.T) {
	tests := []struct {
		name string
		toml string
		want []string // substrings of "key: message" problems
	}{
		{"unknown top-level key", minimal + "\nfoo = 1\n", []string{"foo: unknown key"}},
		{"unknown nested key", minimal + "\n[triage]\napprove_domain = [\"gov\"]\n", []string{"triage.approve_domain: unknown key"}},
		{"literal token", strings.Replace(minimal, "sm://projects/p/secrets/tok/versions/latest", "abcd1234secret", 1), []string{"instance[0].token: must be a secret reference"}},
		{"bad sm ref", strings.Replace(minimal, "sm://projects/p/secrets/tok/versions/latest", "sm://projects/p/tok", 1), []string{"instance[0].token: secret manager reference"}},
		{"http url", strings.Replace(minimal, "https://social.example.gov", "http://social.example.gov", 1), []string{"instance[0].url:", "plain http"}},
		{"http loopback ok", strings.Replace(minimal, "https://social.example.gov", "http://127.0.0.1:8080", 1), nil},
		{"missing url", strings.Replace(minimal, `url = "https://social.example.gov"`, "", 1), []string{"instance[0].url: is required"}},
		{"bad name", strings.Replace(minimal, `name = "main"`, `name = "Main Instance"`, 1), []string{"instance[0].name:"}},
		{"duplicate name", minimal + "\n[[instance]]\nname = \"main\"\nurl = \"https://b.example\"\ntoken = \"env://B\"\n", []string{"instance[1].name: \"main\" is used by another instance"}},
		{"bad domain", minimal + "\n[triage]\napprove_domains = [\"gov\", \"bad domain\"]\n", []string{"triage.approve_domains[1]:"}},
		{"overlap", minimal + "\n[triage]\napprove_domains = [\"gov\"]\nreject_domains = [\".gov\"]\n", []string{"triage.reject_domains: \".gov\" is also in approve_domains"}},
		{"max_actions", minimal + "\n[triage]\nmax_actions = 0\n", []string{"triage.max_actions: must be at least 1"}},
		{"page size", minimal + "\n[triage]\npage_size = 500\n", []string{"triage.page_size:"}},
		{"unknown instance", minimal + "\n[triage]\ninstances = [\"other\"]\n", []string{"triage.instances: \"other\" is not an [[instance]] name"}},
		{"archive missing", strings.Replace(minimal, `url = "gs://fediops-archive/prod"`, "", 1), []string{"archive.url: is required"}},
		{"archive scheme", strings.Replace(minimal, `gs://fediops-archive/prod`, `s3://x`, 1), []string{"archive.url:"}},
		{"wrong type", minimal + "\n[triage]\nmax_actions = \"many\"\n", []string{"line"}},
		{"syntax", "[[instance]\n", []string{"line 2", "delimiter"}},
		{"bad duration", minimal + "\n[triage]\nlease_ttl = \"soon\"\n", []string{"lease_ttl"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("/etc/fediops.toml", []byte(tt.toml))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("want *Error, got %v", err)
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

func TestLoadLocations(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "fediops.toml")
	if err := os.WriteFile(p, []byte(minimal), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, loc := range []string{p, "file://" + p} {
		c, err := Load(ctx, loc, nil)
		if err != nil || c.File != loc {
			t.Errorf("Load(%s) = %v, %v", loc, c, err)
		}
	}
	var asked string
	c, err := Load(ctx, "gs://bucket/fediops.toml", func(_ context.Context, l string) ([]byte, error) {
		asked = l
		return []byte(minimal), nil
	})
	if err != nil || asked != "gs://bucket/fediops.toml" || c.Instances[0].Name != "main" {
		t.Errorf("gs load: %v %q", err, asked)
	}
	if _, err := Load(ctx, "gs://bucket/x", nil); err == nil {
		t.Error("gs without reader accepted")
	}
	if _, err := Load(ctx, "", nil); err == nil || !strings.Contains(err.Error(), "FEDIOPS_CONFIG") {
		t.Errorf("empty location: %v", err)
	}
	if _, err := Load(ctx, filepath.Join(dir, "missing.toml"), nil); err == nil {
		t.Error("missing file accepted")
	}
}

package config

import (
	"context"
	"errors"
	"os"
	"path/filepath"
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

func TestParseMinimal(t *testing.T) {
	c, err := Parse("fediops.toml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Instances) != 1 || c.Instances[0].Name != "main" || c.Archive.URL != "gs://fediops-archive/prod" {
		t.Fatalf("config = %+v", c)
	}
	if c.Instances[0].RequestTimeout.Duration != 30*time.Second {
		t.Errorf("request timeout = %v", c.Instances[0].RequestTimeout)
	}
}

// TestSectionsAreHandedOver: this package validates [[instance]] and [archive] only; a
// function's section is decoded by the function, and its problems stop only that function.
func TestSectionsAreHandedOver(t *testing.T) {
	c, err := Parse("f.toml", []byte(minimal+`
[instance.triage]
max_actions = 5
colour = "red"

[backup]
min_retained_backups = "many"

[triage]
dry_run = true
approve_domain = ["gov"]
`))
	if err != nil {
		t.Fatalf("problems in sections must not fail the shared part: %v", err)
	}
	var tr struct {
		DryRun bool `toml:"dry_run"`
	}
	err = c.Section("triage", &tr)
	if !tr.DryRun || err == nil || !strings.Contains(err.Error(), "triage.approve_domain: unknown key") {
		t.Errorf("triage section: %+v, %v", tr, err)
	}
	var o struct {
		MaxActions *int `toml:"max_actions"`
	}
	ok, err := c.InstanceSection("main", "triage", &o)
	if !ok || o.MaxActions == nil || *o.MaxActions != 5 || err == nil || !strings.Contains(err.Error(), "instance.triage.colour: unknown key") {
		t.Errorf("instance section: %v %+v %v", ok, o, err)
	}
	var b struct {
		MinRetainedBackups int `toml:"min_retained_backups"`
	}
	if err := c.Section("backup", &b); err == nil || !strings.Contains(err.Error(), "backup") {
		t.Errorf("backup type error not reported: %v", err)
	}
	var none struct{}
	if err := c.Section("blocklist", &none); err != nil {
		t.Errorf("absent section: %v", err)
	}
	if ok, err := c.InstanceSection("main", "nope", &none); ok || err == nil {
		t.Errorf("unknown instance section accepted: %v %v", ok, err)
	}
	if err := c.Section("nope", &none); err == nil {
		t.Error("unknown section accepted")
	}
}

func TestProblemsNameFileAndKey(t *testing.T) {
	tests := []struct {
		name string
		toml string
		want []string // substrings of "key: message" problems
	}{
		{"unknown top-level key", minimal + "\nfoo = 1\n", []string{"foo: unknown key"}},
		{"unknown top-level table", minimal + "\n[tirage]\ndry_run = true\n", []string{"tirage.dry_run: unknown key"}},
		{"unknown instance key", strings.Replace(minimal, "[archive]", "colour = 1\n[archive]", 1), []string{"instance.colour: unknown key"}},
		{"literal token", strings.Replace(minimal, "sm://projects/p/secrets/tok/versions/latest", "abcd1234secret", 1), []string{"instance[0].token: must be a secret reference"}},
		{"bad sm ref", strings.Replace(minimal, "sm://projects/p/secrets/tok/versions/latest", "sm://projects/p/tok", 1), []string{"instance[0].token: secret manager reference"}},
		{"literal webhook secret", strings.Replace(minimal, "[archive]", "webhook_secret = \"0123456789abcdef\"\n[archive]", 1), []string{"instance[0].webhook_secret: must be a secret reference"}},
		{"bad webhook secret ref", strings.Replace(minimal, "[archive]", "webhook_secret = \"sm://projects/p/hook\"\n[archive]", 1), []string{"instance[0].webhook_secret: secret manager reference"}},
		{"webhook secret ok", strings.Replace(minimal, "[archive]", "webhook_secret = \"sm://projects/p/secrets/hook\"\n[archive]", 1), nil},
		{"http url", strings.Replace(minimal, "https://social.example.gov", "http://social.example.gov", 1), []string{"instance[0].url:", "plain http"}},
		{"http loopback ok", strings.Replace(minimal, "https://social.example.gov", "http://127.0.0.1:8080", 1), nil},
		{"missing url", strings.Replace(minimal, `url = "https://social.example.gov"`, "", 1), []string{"instance[0].url: is required"}},
		{"bad name", strings.Replace(minimal, `name = "main"`, `name = "Main Instance"`, 1), []string{"instance[0].name:"}},
		{"duplicate name", minimal + "\n[[instance]]\nname = \"main\"\nurl = \"https://b.example\"\ntoken = \"env://B\"\n", []string{"instance[1].name: \"main\" is used by another instance"}},
		{"archive scheme", strings.Replace(minimal, `gs://fediops-archive/prod`, `s3://x`, 1), []string{"archive.url:"}},
		{"wrong type", minimal + "\n[archive]\nurl = 5\n", []string{"archive"}},
		{"syntax", "[[instance]\n", []string{"line 2", "delimiter"}},
		{"bad duration", strings.Replace(minimal, "[archive]", "request_timeout = \"soon\"\n[archive]", 1), []string{"request_timeout"}},
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

// TestArchiveRequiredWhereOpened: a file without [archive] parses (triage classify needs no
// archive); CheckArchive, which whatever opens the archive applies, names the missing key.
func TestArchiveRequiredWhereOpened(t *testing.T) {
	c, err := Parse("/etc/fediops.toml", []byte(strings.Replace(minimal, `url = "gs://fediops-archive/prod"`, "", 1)))
	if err != nil {
		t.Fatalf("a file without an archive url must parse: %v", err)
	}
	var ce *Error
	if err := c.CheckArchive(); !errors.As(err, &ce) || !strings.Contains(err.Error(), "/etc/fediops.toml: archive.url: is required") {
		t.Errorf("CheckArchive = %v", err)
	}
	if c.ArchiveDefaulted {
		t.Error("no default archive for a fediops file")
	}
	full, err := Parse("f.toml", []byte(minimal))
	if err != nil || full.CheckArchive() != nil {
		t.Errorf("archive configured: %v, %v", err, full.CheckArchive())
	}
	fbh, err := Parse("fbh.toml", []byte("blocklist_url_sources = []\n"))
	if err != nil || fbh.CheckArchive() != nil || fbh.Archive.URL != DefaultFBHArchive || !fbh.ArchiveDefaulted {
		t.Errorf("FediBlockHole file: %+v, %v", fbh, err)
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

package blocklist

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fediops/fediops/functions/blocklist/fires"
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

// load parses a configuration and its blocklist section.
func load(t *testing.T, name, data string) (*config.Config, *Section, error) {
	t.Helper()
	c, err := config.Parse(name, []byte(data))
	if err != nil {
		return nil, nil, err
	}
	b, err := LoadSection(c)
	return c, b, err
}

func TestFediBlockHoleConfigsLoadUnchanged(t *testing.T) {
	dir := testdataDir(t)
	files, err := filepath.Glob(filepath.Join(dir, "fediblockhole-config", "*.toml"))
	if err != nil || len(files) != 3 {
		t.Fatalf("config files: %v, %v", files, err)
	}
	expected, _ := filepath.Glob(filepath.Join(dir, "fediblockhole-expected", "*.toml"))
	if len(expected) != 2 {
		t.Fatalf("parity configs: %v", expected)
	}
	files = append(files, filepath.Join(dir, "third_party", "fediblockhole", "sample.fediblockhole.conf.toml"))
	for _, f := range append(files, expected...) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			c, err := config.Load(context.Background(), f, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !c.FediBlockHole || c.Archive.URL != config.DefaultFBHArchive {
				t.Errorf("not read as a FediBlockHole file: %+v", c.Archive)
			}
			b, err := LoadSection(c)
			if err != nil {
				t.Fatal(err)
			}
			if len(b.URLSources)+len(b.InstanceSources) == 0 {
				t.Error("no sources read")
			}
		})
	}
	c, err := config.Load(context.Background(), filepath.Join(dir, "fediblockhole-config", "oliphant-pull.conf.toml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadSection(c)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.InstanceSources) != 2 || b.InstanceSources[0].Domain != "mastodon.social" || len(b.URLSources) != 2 ||
		b.Mergeplan != "max" || !b.NoPushInstance || strings.Join(b.ImportFields, ",") != "public_comment,obfuscate" ||
		b.URLSources[0].SourceName() != "seirdy.one/tier0.csv" {
		t.Errorf("blocklist = %+v", b)
	}
	if d := b.DestinationsOf(c); d != nil {
		t.Errorf("no_push_instance but destinations %v", d)
	}
}

func TestBlocklistNativeConfig(t *testing.T) {
	c, b, err := load(t, "f.toml", minimal+`
[[instance]]
name = "second"
url = "https://second.example"
token = "env://SECOND"

[blocklist]
blocklist_url_sources = [
  { url = "https://lists.example/tier0.csv", format = "csv" },
  { url = "gs://lists/ours.csv", name = "ours", max_severity = "silence" },
]
allowlist_url_sources = [ { url = "file:///etc/fediops/allow.csv" } ]
blocklist_instance_destinations = [ { domain = "legacy.example", token_env_var = "LEGACY_TOKEN", max_followed_severity = "noop" } ]
import_fields = ["public_comment", "reject_media"]
max_removals = 5
adopt_orphans = true
destinations = [
  "main",
  { instance = "second", dry_run = true, max_change_pct = 250, import_fields = ["obfuscate"] },
]
`)
	if err != nil {
		t.Fatal(err)
	}
	ds := b.DestinationsOf(c)
	if len(ds) != 3 {
		t.Fatalf("destinations = %+v", ds)
	}
	main, second, legacy := ds[0], ds[1], ds[2]
	if main.Instance.Name != "main" || main.DryRun || !main.AdoptOrphans || main.MaxRemovals != 5 || main.MaxChangePct != 10 ||
		!main.RemoveRetracted || main.MaxFollowedSeverity != "silence" || main.Marker != "fediops:" || strings.Join(main.ImportFields, ",") != "public_comment,reject_media" {
		t.Errorf("main = %+v", main)
	}
	if !second.DryRun || second.MaxChangePct != 250 || strings.Join(second.ImportFields, ",") != "obfuscate" || second.MaxRemovals != 5 {
		t.Errorf("second = %+v", second)
	}
	if !legacy.FBH || legacy.Instance.URL != "https://legacy.example" || legacy.TokenEnvVar != "LEGACY_TOKEN" || legacy.MaxFollowedSeverity != "noop" || legacy.Instance.Name != "legacy-example" {
		t.Errorf("legacy = %+v", legacy)
	}
	if b.RequestTimeout.Duration == 0 || b.MaxSourceBytes == 0 {
		t.Error("defaults not applied")
	}
	if fbhTokenEnvVar("env-token.com") != "ENV-TOKEN_COM_TOKEN" {
		t.Error("FBH token variable")
	}
}

func TestBlocklistProblems(t *testing.T) {
	tests := []struct {
		toml string
		want string
	}{
		{"[blocklist]\nmergeplan = \"avg\"\n", "blocklist.mergeplan"},
		{"[blocklist]\nmerge_threshold_type = \"ratio\"\n", "blocklist.merge_threshold_type"},
		{"[blocklist]\nblocklist_url_sources = [{ url = \"ftp://x/y\" }]\n", "blocklist.blocklist_url_sources[0].url"},
		{"[blocklist]\nblocklist_url_sources = [{ url = \"http://lists.example/x.csv\" }]\n", "plain http"},
		{"[blocklist]\nblocklist_url_sources = [{ url = \"https://x/y.csv\", format = \"xml\" }]\n", "blocklist.blocklist_url_sources[0].format"},
		{"[blocklist]\nblocklist_url_sources = [{ url = \"https://x/y.csv\", max_severity = \"ban\" }]\n", "max_severity"},
		{"[blocklist]\nblocklist_url_sources = [{ url = \"https://x/y.csv\", colour = \"red\" }]\n", "colour: unknown key"},
		{"[blocklist]\nblocklist_url_sources = [{ url = \"https://a/y.csv\" }, { url = \"https://a/y.csv\" }]\n", "is used by another source"},
		{"[blocklist]\nimport_fields = [\"comment\"]\n", "blocklist.import_fields"},
		{"[blocklist]\ndestinations = [\"nope\"]\n", "blocklist.destinations[0].instance: \"nope\" is not an [[instance]] name"},
		{"[blocklist]\ndestinations = [{ instance = \"main\", colour = 1 }]\n", "blocklist.destinations[0].colour: unknown key"},
		{"[blocklist]\ndestinations = [{ instance = \"main\", max_removals = \"x\" }]\n", "max_removals must be a whole number"},
		{"[blocklist]\nmax_change_pct = -1.0\n", "blocklist.max_change_pct"},
		{"[blocklist]\nmarker = \"f\"\n", "blocklist.marker"},
		{"[blocklist]\nblocklist_instance_sources = [{ domain = \"bad domain\" }]\n", "blocklist.blocklist_instance_sources[0].domain"},
		{"[blocklist]\nblocklist_instance_destinations = [{ domain = \"x.example\", token = \"sm://nope\" }]\n", "token"},
		{"[blocklist]\nmax_source_shrink = -1.0\n", "max_source_shrink"},
		{"[blocklist]\nblocklist_url_sources = [{ url = \"https://x/y.json\", public_key = \"short\" }]\n", "public_key"},
		{"[blocklist]\nallowlist_url_sources = [{ url = \"https://f.example/datasets/1\", format = \"fires\" }]\n", "allowlist_url_sources[0].format: a FIRES dataset goes in blocklist_url_sources"},
		{"[blocklist]\nblocklist_url_sources = [{ url = \"https://x/y.csv\", labels = [\"spam\"] }]\n", "blocklist_url_sources[0].labels: only for format = \"fires\""},
		{"[blocklist]\nblocklist_url_sources = [{ url = \"https://x/y.csv\", policies = { drop = \"suspend\" } }]\n", "blocklist_url_sources[0].policies: only for format = \"fires\""},
		{"[blocklist]\nblocklist_url_sources = [{ url = \"https://f.example/d\", format = \"fires\", policies = { filter = \"limit\" } }]\n", "blocklist_url_sources[0].policies.filter: \"limit\": use suspend, silence, noop, allow, ignore"},
		{"[blocklist]\nblocklist_url_sources = [{ url = \"https://f.example/d\", format = \"fires\", policies = { quarantine = \"suspend\" } }]\n", "quarantine: unknown key"},
		{"[blocklist]\nblocklist_url_sources = [{ url = \"file:///etc/d.json\", format = \"fires\" }]\n", "a FIRES dataset is read over https://"},
		{"[blocklist]\nblocklist_url_sources = [{ url = \"https://f.example/d\", format = \"fires\", labels = [\" \"] }]\n", "an empty label"},
	}
	for _, tt := range tests {
		_, _, err := load(t, "f.toml", minimal+tt.toml)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want %q", tt.toml, err, tt.want)
		}
	}
	// A FediBlockHole file reports its problems at the top level.
	_, _, err := load(t, "fbh.toml", "mergeplan = 'avg'\nblocklist_url_sources = []\n")
	if err == nil || !strings.Contains(err.Error(), "fbh.toml: mergeplan") {
		t.Errorf("FBH problems: %v", err)
	}
}

func TestFIRESSourceConfig(t *testing.T) {
	_, b, err := load(t, "f.toml", minimal+`
[blocklist]
blocklist_url_sources = [
  { url = "https://fires.example/datasets/01936b2e-7a10-7c4d-9e21-3f5a6b7c8d90", format = "fires", name = "community",
    labels = ["Spam", "https://fires.example/labels/0193a001-0000-7000-8000-000000000002"], policies = { filter = "noop", accept = "ignore" } },
  { url = "https://fires.example/datasets/other", format = "fires" },
]
`)
	if err != nil {
		t.Fatal(err)
	}
	srcs, err := SourcesFrom(context.Background(), nil, b)
	if err != nil || len(srcs) != 2 {
		t.Fatalf("sources = %+v, %v", srcs, err)
	}
	c := srcs[0]
	if c.Name != "community" || c.Format != fires.Format || c.FIRES == nil || strings.Join(c.FIRES.Labels, "|") != "Spam|https://fires.example/labels/0193a001-0000-7000-8000-000000000002" ||
		c.FIRES.Policies["filter"] != "noop" || c.FIRES.Policies["accept"] != "ignore" || len(c.FIRES.Policies) != 2 {
		t.Errorf("community = %+v %+v", c, c.FIRES)
	}
	if o := srcs[1]; o.FIRES == nil || len(o.FIRES.Policies) != 0 || o.Name != "fires.example/other" {
		t.Errorf("defaults = %+v %+v", o, o.FIRES)
	}
}

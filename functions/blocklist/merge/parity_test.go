package merge

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/fediops/fediops/functions/blocklist/lists"
	"github.com/fediops/fediops/shared/domain"
)

// testdata returns the repository's real-blocklist directory (testdata/blocklists at the
// root; see its README for provenance and licences); the test fails if it is missing.
func testdata(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs("../../../testdata/blocklists")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "README.md")); err != nil {
		t.Fatalf("blocklist test data missing: %v", err)
	}
	return dir
}

// fbhConfig is the part of an FBH config file the merge needs.
type fbhConfig struct {
	BlocklistURLSources []fbhSource `toml:"blocklist_url_sources"`
	AllowlistURLSources []fbhSource `toml:"allowlist_url_sources"`
	Mergeplan           string      `toml:"mergeplan"`
	MergeThreshold      int         `toml:"merge_threshold"`
	MergeThresholdType  string      `toml:"merge_threshold_type"`
	ImportFields        []string    `toml:"import_fields"`
	ExportFields        []string    `toml:"export_fields"`
}

type fbhSource struct {
	URL          string   `toml:"url"`
	Format       string   `toml:"format"`
	MaxSeverity  string   `toml:"max_severity"`
	ImportFields []string `toml:"import_fields"`
}

// runConfig loads an FBH config, rebases its file:// URLs onto the test data as
// fediblockhole-expected/README.md says, and parses and merges like FBH's fediblock-sync -o.
func runConfig(t *testing.T, confPath string) (*Result, []*lists.List, fbhConfig) {
	t.Helper()
	root := testdata(t)
	var conf fbhConfig
	if _, err := toml.DecodeFile(confPath, &conf); err != nil {
		t.Fatal(err)
	}
	rebase := strings.NewReplacer(
		"file:///opt/fediblockhole/blocklists/", root+"/oliphant/",
		"file:///opt/fediblockhole/fixtures/", root+"/third_party/fediblockhole/",
	)
	load := func(src fbhSource, fields []string) *lists.List {
		path := rebase.Replace(src.URL)
		if !strings.HasPrefix(path, root) {
			t.Fatalf("cannot rebase %s", src.URL)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		format := src.Format
		if format == "" {
			format = "csv" // FBH's default
		}
		f, err := lists.ParseFormat(format)
		if err != nil {
			t.Fatal(err)
		}
		opts := lists.Options{ImportFields: fields}
		if src.MaxSeverity != "" {
			if opts.MaxSeverity, err = lists.ParseSeverity(src.MaxSeverity); err != nil {
				t.Fatal(err)
			}
		}
		if len(src.ImportFields) > 0 {
			opts.ImportFields = src.ImportFields
		}
		l, err := lists.Parse(src.URL, data, f, opts)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	var srcs, allow []*lists.List
	for _, s := range conf.BlocklistURLSources {
		srcs = append(srcs, load(s, conf.ImportFields))
	}
	for _, s := range conf.AllowlistURLSources {
		allow = append(allow, load(s, lists.OptionalFields)) // FBH's ALLOWLIST_IMPORT_FIELDS
	}
	opts := DefaultOptions()
	if conf.Mergeplan != "" {
		opts.Plan = Plan(conf.Mergeplan)
	}
	if conf.MergeThresholdType != "" {
		opts.ThresholdType = ThresholdType(conf.MergeThresholdType)
	}
	opts.Threshold = conf.MergeThreshold
	res, err := Merge(srcs, allow, opts)
	if err != nil {
		t.Fatal(err)
	}
	return res, srcs, conf
}

// readFBHOutput reads an FBH -o file into domain -> row (column -> value).
func readFBHOutput(t *testing.T, data []byte) (map[string]map[string]string, []string) {
	t.Helper()
	recs, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	header := recs[0]
	out := make(map[string]map[string]string)
	for _, r := range recs[1:] {
		row := make(map[string]string)
		for i, h := range header {
			row[h] = r[i]
		}
		out[r[0]] = row
	}
	return out, header
}

// parityDiff compares fediops' merged list with FBH's output and explains each difference
// by kind. A difference no rule explains is reported as "UNEXPLAINED: ...".
func parityDiff(t *testing.T, res *Result, fbh map[string]map[string]string, ours map[string]map[string]string) (map[string]int, []string) {
	kinds := make(map[string]int)
	var details []string
	note := func(kind, msg string) {
		kinds[kind]++
		details = append(details, kind+": "+msg)
	}
	dropped := make(map[string]lists.Skipped)
	for _, d := range res.Dropped {
		dropped[d.Value] = d
	}
	resolved := make(map[string]bool)
	for _, r := range res.Resolved {
		resolved[r.Domain] = true
	}
	for d, row := range fbh {
		if _, ok := ours[d]; ok {
			continue
		}
		if n, err := domain.Normalize(d); err == nil && n != d {
			if _, ok := ours[n]; ok {
				note("normalised", fmt.Sprintf("%s is %s", d, n))
				continue
			}
		}
		if rest, ok := strings.CutPrefix(d, "."); ok {
			if _, ok := ours[rest]; ok {
				note("tld_wildcard", fmt.Sprintf("%s is a block on %s", d, rest))
				continue
			}
		}
		if s, ok := dropped[d]; ok {
			note(s.Reason, fmt.Sprintf("%s (%s %s/%s/%s) %s", d, row["severity"], row["reject_media"], row["reject_reports"], row["obfuscate"], s.Detail))
			continue
		}
		if _, err := domain.Normalize(d); err != nil {
			note("invalid_domain", d)
			continue
		}
		note("UNEXPLAINED", "missing "+d)
	}
	// FBH rows whose domain fediops writes differently: normalised, or a ".tld" row.
	counterpart := make(map[string]string)
	for d := range fbh {
		if n, err := domain.Normalize(strings.TrimPrefix(d, ".")); err == nil && n != d {
			if _, ok := fbh[n]; !ok {
				counterpart[n] = d
			}
		}
	}
	for d, row := range ours {
		frow, ok := fbh[d]
		if !ok && counterpart[d] != "" {
			frow, ok = fbh[counterpart[d]], true
		}
		if !ok {
			if resolved[d] {
				note("resolved_obfuscation", "added "+d)
			} else {
				note("UNEXPLAINED", "extra "+d)
			}
			continue
		}
		for k, v := range row {
			if k == "domain" {
				continue
			}
			if frow[k] != v {
				if resolved[d] {
					note("resolved_obfuscation", fmt.Sprintf("%s %s: fbh %q, fediops %q", d, k, frow[k], v))
				} else {
					note("UNEXPLAINED", fmt.Sprintf("%s %s: fbh %q, fediops %q", d, k, frow[k], v))
				}
			}
		}
	}
	slices.Sort(details)
	return kinds, details
}

func TestParityWithFediBlockHole(t *testing.T) {
	root := testdata(t)
	tests := []struct {
		conf, expected string
		wantKinds      map[string]int
		canaries       int
	}{
		// seirdy-tier0.csv's 000delete...seirdy.one and canary.tier0.example.com, dni.csv's dni.invalid.
		{"fediblockhole-config/oliphant-tier0.conf.toml", "fediblockhole-expected/oliphant-tier0.conf.csv", map[string]int{}, 3},
		{"fediblockhole-expected/fixtures-max.conf.toml", "fediblockhole-expected/fixtures-max.conf.csv", map[string]int{}, 0},
		// 4 noop *.example.org blocks under example.org's suspend (from data-mastodon.json).
		{"fediblockhole-expected/fixtures-min.conf.toml", "fediblockhole-expected/fixtures-min.conf.csv", map[string]int{lists.ReasonCoveredByParent: 4}, 0},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.conf), func(t *testing.T) {
			res, _, conf := runConfig(t, filepath.Join(root, tt.conf))
			want, err := os.ReadFile(filepath.Join(root, tt.expected))
			if err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			if err := lists.WriteFediBlockHoleCSV(&got, res.Blocks, conf.ExportFields); err != nil {
				t.Fatal(err)
			}
			fbh, header := readFBHOutput(t, want)
			ours, oheader := readFBHOutput(t, got.Bytes())
			if !slices.Equal(header, oheader) {
				t.Errorf("header %v, FBH %v", oheader, header)
			}
			kinds, details := parityDiff(t, res, fbh, ours)
			for _, d := range details {
				t.Log(d)
			}
			if fmt.Sprint(kinds) != fmt.Sprint(tt.wantKinds) {
				t.Errorf("difference kinds %v, want %v", kinds, tt.wantKinds)
			}
			// Byte for byte: FBH's file without the rows fediops drops on purpose.
			var kept []string
			for _, line := range strings.SplitAfter(string(want), "\r\n") {
				d, _, _ := strings.Cut(line, ",")
				if _, ok := ours[d]; ok || d == "domain" || line == "" {
					kept = append(kept, line)
				}
			}
			if strings.Join(kept, "") != got.String() {
				t.Errorf("output differs from FBH's beyond the explained rows:\n%s", got.String())
			}
			// Canaries: fediops drops them before merging; FBH keeps them unless an allowlist
			// removes them. Here the allowlist does, so the output is the same.
			for _, d := range res.DroppedDomains(lists.ReasonCanary) {
				if _, ok := fbh[d]; ok {
					t.Errorf("canary %s is in FBH's output", d)
				}
			}
			if got := len(res.DroppedDomains(lists.ReasonCanary)); got != tt.canaries {
				t.Errorf("%d canaries dropped, want %d", got, tt.canaries)
			}
			t.Logf("fbh %d rows, fediops %d rows, kinds %v, dropped %d", len(fbh), len(ours), kinds, len(res.Dropped))
		})
	}
}

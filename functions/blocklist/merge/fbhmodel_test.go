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
)

// fbhModel is a small, independent re-implementation of what FBH 0.4.6 does with CSV
// sources (BlocklistParserCSV / MastodonCSV, merge_blocklists, apply_mergeplan,
// apply_allowlists, save_blocklist_to_file), written from its source and used where no real
// FBH output exists. Domains are opaque strings; '*' rows are dropped; allowlists match
// exact strings. It reuses MergeComments, which is checked against FBH's own tests.
type fbhModelSource struct {
	path   string
	format string // csv or mastodon_csv
}

type fbhBlock struct {
	domain, severity string
	fields           map[string]string // imported optional fields, as FBH would print them
}

var fbhSeverity = map[string]int{"noop": 0, "silence": 1, "suspend": 2}

func fbhParse(t *testing.T, src fbhModelSource, importFields []string) map[string]*fbhBlock {
	t.Helper()
	data, err := os.ReadFile(src.path)
	if err != nil {
		t.Fatal(err)
	}
	// FBH splits on "\n" first; none of the model's inputs has a multi-line field.
	recs, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	header := recs[0]
	if src.format == "mastodon_csv" {
		for i := range header {
			header[i] = strings.TrimLeft(header[i], "#")
		}
	}
	out := make(map[string]*fbhBlock)
	for _, r := range recs[1:] {
		row := make(map[string]string)
		for i, h := range header {
			row[h] = r[i]
		}
		b := &fbhBlock{domain: row["domain"], severity: "suspend", fields: map[string]string{}}
		if sev, ok := row["severity"]; ok {
			if sev == "" {
				sev = "noop"
			}
			if _, ok := fbhSeverity[sev]; !ok {
				t.Fatalf("FBH would crash on severity %q", sev)
			}
			b.severity = sev
		}
		for _, f := range lists.OptionalFields {
			v := ""
			if slices.Contains(importFields, f) {
				v = row[f]
			}
			switch f {
			case "reject_media", "reject_reports", "obfuscate":
				switch strings.ToLower(v) {
				case "true", "t", "1", "y", "yes":
					v = "True"
				case "", "false", "f", "0", "n", "no":
					v = "False"
				default:
					t.Fatalf("FBH would crash on boolean %q", v)
				}
			}
			b.fields[f] = v
		}
		out[b.domain] = b
	}
	return out
}

func fbhMerge(t *testing.T, srcs []fbhModelSource, allow []fbhModelSource, importFields []string, plan string) map[string]*fbhBlock {
	merged := make(map[string]*fbhBlock)
	for _, src := range srcs {
		for d, nb := range fbhParse(t, src, importFields) {
			if strings.Contains(d, "*") {
				continue
			}
			old, ok := merged[d]
			if !ok {
				merged[d] = nb
				continue
			}
			for _, c := range []string{"public_comment", "private_comment"} {
				old.fields[c] = MergeComments(old.fields[c], nb.fields[c])
			}
			if (plan == "max" && fbhSeverity[nb.severity] > fbhSeverity[old.severity]) || (plan == "min" && fbhSeverity[nb.severity] < fbhSeverity[old.severity]) {
				old.severity = nb.severity
			}
			for _, f := range []string{"reject_media", "reject_reports", "obfuscate"} {
				if plan == "max" && nb.fields[f] == "True" {
					old.fields[f] = "True"
				}
				if plan == "min" && nb.fields[f] == "False" {
					old.fields[f] = "False"
				}
			}
		}
	}
	for _, a := range allow {
		for d := range fbhParse(t, a, lists.OptionalFields) {
			delete(merged, d)
		}
	}
	return merged
}

// fbhRows renders the model's result as readFBHOutput does for a real FBH file.
func fbhRows(m map[string]*fbhBlock, exportFields []string) map[string]map[string]string {
	out := make(map[string]map[string]string)
	for d, b := range m {
		row := map[string]string{"domain": d, "severity": b.severity}
		for _, f := range exportFields {
			row[f] = b.fields[f]
		}
		out[d] = row
	}
	return out
}

// The model reproduces FBH's real outputs exactly, so its verdict on other inputs counts.
func TestFBHModelMatchesRealOutput(t *testing.T) {
	root := testdata(t)
	for _, tc := range []struct{ conf, expected string }{
		{"fediblockhole-config/oliphant-tier0.conf.toml", "fediblockhole-expected/oliphant-tier0.conf.csv"},
	} {
		conf, srcs, allow := modelSources(t, filepath.Join(root, tc.conf), nil)
		want, err := os.ReadFile(filepath.Join(root, tc.expected))
		if err != nil {
			t.Fatal(err)
		}
		fbh, _ := readFBHOutput(t, want)
		got := fbhRows(fbhMerge(t, srcs, allow, conf.ImportFields, conf.Mergeplan), conf.ExportFields)
		if fmt.Sprint(got) != fmt.Sprint(fbh) {
			t.Errorf("%s: the model does not reproduce FBH's output", tc.conf)
		}
	}
}

// modelSources reads an FBH config and maps its sources to local files: file:// URLs are
// rebased; other URLs and instance sources go through remote (URL or domain -> file under
// oliphant/, FBH's intermediate copy of that source).
func modelSources(t *testing.T, confPath string, remote map[string]string) (fbhConfig, []fbhModelSource, []fbhModelSource) {
	t.Helper()
	root := testdata(t)
	var conf struct {
		fbhConfig
		Instances []struct {
			Domain string `toml:"domain"`
		} `toml:"blocklist_instance_sources"`
	}
	if _, err := toml.DecodeFile(confPath, &conf); err != nil {
		t.Fatal(err)
	}
	if conf.Mergeplan == "" {
		conf.Mergeplan = "max"
	}
	local := func(u string) string {
		if p, ok := strings.CutPrefix(u, "file:///opt/fediblockhole/blocklists/"); ok {
			return filepath.Join(root, "oliphant", p)
		}
		if p, ok := remote[u]; ok {
			return filepath.Join(root, p)
		}
		t.Fatalf("no local copy of %s", u)
		return ""
	}
	var srcs, allow []fbhModelSource
	for _, s := range conf.BlocklistURLSources { // FBH: URL sources first, then instances
		f := s.Format
		if f == "" {
			f = "csv"
		}
		srcs = append(srcs, fbhModelSource{local(s.URL), f})
	}
	for _, s := range conf.Instances {
		srcs = append(srcs, fbhModelSource{local(s.Domain), "csv"})
	}
	for _, s := range conf.AllowlistURLSources {
		allow = append(allow, fbhModelSource{local(s.URL), s.Format})
	}
	return conf.fbhConfig, srcs, allow
}

// Oliphant's pull config (seirdy tier0 + gardenfence + mastodon.social's and
// mastodon.online's public lists), on the copies FBH saved of those sources: fediops against
// the FBH model. Here the differences FBH's real outputs do not show appear: obfuscated
// entries resolved, subdomain blocks Mastodon would refuse.
func TestParityModelOliphantPull(t *testing.T) {
	root := testdata(t)
	conf, srcs, allow := modelSources(t, filepath.Join(root, "fediblockhole-config/oliphant-pull.conf.toml"), map[string]string{
		"https://seirdy.one/pb/tier0.csv": "oliphant/seirdy-tier0.csv",
		"https://raw.githubusercontent.com/gardenfence/blocklist/main/gardenfence-fediblocksync.csv": "oliphant/gardenfence.csv",
		"mastodon.social": "oliphant/mastodon.social.csv",
		"mastodon.online": "oliphant/mastodon.online.csv",
	})
	fbh := fbhRows(fbhMerge(t, srcs, allow, conf.ImportFields, conf.Mergeplan), conf.ExportFields)

	var ls, as []*lists.List
	for _, s := range srcs {
		ls = append(ls, loadAbs(t, s, conf.ImportFields))
	}
	for _, s := range allow {
		as = append(as, loadAbs(t, s, lists.OptionalFields))
	}
	res := mustMerge(t, ls, as, DefaultOptions())
	var buf bytes.Buffer
	if err := lists.WriteFediBlockHoleCSV(&buf, res.Blocks, conf.ExportFields); err != nil {
		t.Fatal(err)
	}
	ours, _ := readFBHOutput(t, buf.Bytes())
	kinds, details := parityDiff(t, res, fbh, ours)
	for _, d := range details {
		t.Log(d)
	}
	// resolved_obfuscation counts differing fields (a domain can differ in several).
	want := map[string]int{"covered_by_parent": 2, "resolved_obfuscation": 40}
	if fmt.Sprint(kinds) != fmt.Sprint(want) {
		t.Errorf("difference kinds %v, want %v", kinds, want)
	}
	changed := make(map[string]bool)
	for _, d := range details {
		if rest, ok := strings.CutPrefix(d, "resolved_obfuscation: "); ok {
			dom, _, _ := strings.Cut(rest, " ")
			changed[dom] = true
		}
	}
	t.Logf("fbh %d rows, fediops %d, %d resolved entries changed %d domains; kinds %v", len(fbh), len(ours), len(res.Resolved), len(changed), kinds)
	if len(changed) != 40 || len(res.Resolved) != 75 {
		t.Errorf("%d resolved entries changed %d domains, want 75 and 40", len(res.Resolved), len(changed))
	}
}

func loadAbs(t *testing.T, s fbhModelSource, fields []string) *lists.List {
	data, err := os.ReadFile(s.path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := lists.ParseFormat(s.format)
	if err != nil {
		t.Fatal(err)
	}
	l, err := lists.Parse(s.path, data, f, lists.Options{ImportFields: fields})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// Oliphant's 2023 max list alone (one source, its allowlist), fediops against the FBH model:
// the list's dirt (a ".cf" TLD row) and its subdomain rows. Its invalid punycode name
// xn--p1abe3d-xn--80asehdb is kept by both, as Mastodon's DomainValidator accepts it.
func TestParityModelMaxList(t *testing.T) {
	root := testdata(t)
	src := fbhModelSource{filepath.Join(root, "oliphant/_unified_max_blocklist.csv"), "csv"}
	allow := fbhModelSource{filepath.Join(root, "oliphant/__allowlist.csv"), "csv"}
	fields := []string{"public_comment", "reject_media", "reject_reports", "obfuscate"}
	fbh := fbhRows(fbhMerge(t, []fbhModelSource{src}, []fbhModelSource{allow}, fields, "max"), fields)
	res := mustMerge(t, []*lists.List{loadAbs(t, src, fields)}, []*lists.List{loadAbs(t, allow, lists.OptionalFields)}, DefaultOptions())
	var buf bytes.Buffer
	if err := lists.WriteFediBlockHoleCSV(&buf, res.Blocks, fields); err != nil {
		t.Fatal(err)
	}
	ours, _ := readFBHOutput(t, buf.Bytes())
	kinds, details := parityDiff(t, res, fbh, ours)
	for _, d := range details {
		t.Log(d)
	}
	want := map[string]int{"covered_by_parent": 4, "tld_wildcard": 2}
	if fmt.Sprint(kinds) != fmt.Sprint(want) {
		t.Errorf("difference kinds %v, want %v", kinds, want)
	}
	t.Logf("fbh %d rows, fediops %d; kinds %v", len(fbh), len(ours), kinds)
}

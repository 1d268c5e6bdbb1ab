package lists

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
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

// realFile is what a real file must parse to. Row counts come from the test data README and
// from Python's csv module (counted independently of this package); obfuscated = rows whose
// domain has a '*'; skips are the rows seen to be wrong, listed one by one.
type realFile struct {
	format     Format
	rows       int
	silence    int // silences among Blocks (not obfuscated rows)
	obfuscated int
	skips      []string // "line:value:reason"
}

var realFiles = map[string]realFile{
	"oliphant/__allowlist.csv":              {FormatCSV, 8, 0, 0, nil}, // "domain," header: empty severity = noop
	"oliphant/_unified_tier0_blocklist.csv": {FormatCSV, 449, 5, 0, nil},
	// Line 3020's xn--p1abe3d-xn--80asehdb ('-' typed for '.') is not valid punycode, but
	// Mastodon's DomainValidator accepts it (an ASCII label of a-z, 0-9 and '-'), so it is used.
	"oliphant/_unified_max_blocklist.csv": {FormatCSV, 3075, 62, 0, []string{
		"2:cf:duplicate", // ".cf" on line 2 and "cf" on line 484: the same TLD block
	}},
	"oliphant/_unified_min_blocklist.csv": {FormatCSV, 458, 9, 0, nil},
	"oliphant/pleroma.envs.net.csv":       {FormatCSV, 1402, 0, 0, nil},
	"oliphant/mastodon.art.csv":           {FormatCSV, 1174, 40, 3, nil},
	"oliphant/mastodon.social.csv":        {FormatCSV, 396, 30, 130, nil},
	"oliphant/mastodon.online.csv":        {FormatCSV, 325, 28, 108, nil},
	"oliphant/seirdy-tier0.csv":           {FormatCSV, 375, 0, 0, nil},
	"oliphant/gardenfence.csv":            {FormatCSV, 147, 0, 0, nil},
	"oliphant/dni.csv":                    {FormatMastodonCSV, 87, 0, 0, nil},
	"oliphant/iftas-aud.csv":              {FormatMastodonCSV, 37, 6, 0, nil},
	"oliphant/mastodon/_unified_max_blocklist.csv": {FormatMastodonCSV, 2679, 72, 0, []string{
		"2:cf:duplicate", // line 2633's xn--p1abe3d-xn--80asehdb is used, as above
	}},
	"oliphant/mastodon/_unified_tier0_blocklist.csv": {FormatMastodonCSV, 449, 5, 0, nil},
	"oliphant/mastodon/dni.csv":                      {FormatMastodonCSV, 87, 0, 0, nil},
	"third_party/fediblockhole/data-suspends-01.csv": {FormatCSV, 13, 0, 0, nil},
	"third_party/fediblockhole/data-silences-01.csv": {FormatCSV, 13, 13, 0, nil},
	"third_party/fediblockhole/data-noop-01.csv":     {FormatCSV, 13, 0, 0, nil},
	"third_party/fediblockhole/data-mastodon.json":   {FormatJSON, 10, 2, 0, nil},
	"third_party/fediblockhole/data-rapidblock.json": {FormatRapidBlockJSON, 168, 0, 0, nil},
}

// history/oliphant-tier0: rows and silences per version (Python csv); none is skipped.
var historyFiles = map[string][2]int{
	"2023-01-13": {167, 13}, "2023-02-02": {309, 0}, "2023-03-04": {344, 1}, "2023-04-02": {357, 1},
	"2023-05-01": {367, 1}, "2023-06-04": {388, 1}, "2023-07-03": {399, 1}, "2023-08-01": {416, 5},
	"2023-09-01": {423, 1}, "2023-10-02": {415, 3}, "2023-11-04": {436, 7}, "2023-12-10": {437, 8},
	"2024-01-03": {440, 9}, "2024-02-01": {448, 9}, "2024-03-02": {453, 9}, "2024-04-06": {414, 0},
	"2024-05-11": {414, 0}, "2024-06-01": {415, 0}, "2024-07-07": {419, 0}, "2024-08-02": {419, 0},
	"2024-09-08": {397, 0}, "2024-10-13": {400, 0}, "2024-11-10": {407, 0}, "2024-12-08": {408, 0},
	"2025-01-18": {402, 0}, "2025-02-13": {403, 0}, "2025-03-19": {401, 0}, "2025-04-06": {401, 0},
	"2025-05-08": {400, 0}, "2025-06-08": {402, 0}, "2025-07-02": {407, 0}, "2025-08-03": {408, 0},
	"2025-10-08": {412, 0}, "2025-11-16": {413, 0}, "2025-12-03": {414, 0}, "2026-01-04": {414, 0},
	"2026-02-01": {415, 0}, "2026-03-01": {447, 5},
}

func TestRealFiles(t *testing.T) {
	root := testdata(t)
	want := make(map[string]realFile)
	for k, v := range realFiles {
		want[k] = v
	}
	for date, c := range historyFiles {
		want["history/oliphant-tier0/"+date+".csv"] = realFile{FormatCSV, c[0], c[1], 0, nil}
	}
	// Every file of the directory must be in the table, so a new file cannot go untested.
	seen := 0
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() || strings.HasPrefix(rel, "fediblockhole-expected/") || strings.HasPrefix(rel, "fediblockhole-config/") ||
			!(strings.HasSuffix(p, ".csv") || strings.HasSuffix(p, ".json")) {
			return nil
		}
		seen++
		w, ok := want[rel]
		if !ok {
			t.Errorf("%s: no expectation", rel)
			return nil
		}
		t.Run(rel, func(t *testing.T) { checkRealFile(t, p, rel, w) })
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen != len(want) || len(historyFiles) != 38 {
		t.Errorf("walked %d files, expected %d (history: %d)", seen, len(want), len(historyFiles))
	}
}

func checkRealFile(t *testing.T, path, rel string, w realFile) {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Detection must find the format FBH's configs declare; parsing with the declared
	// format and with detection must agree.
	if got := Detect(data, rel); got != w.format {
		t.Errorf("Detect = %s, want %s", got, w.format)
	}
	l, err := Parse(rel, data, w.format, allFields)
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, l, string(data))
	if l.Rows != w.rows {
		t.Errorf("rows %d, want %d", l.Rows, w.rows)
	}
	if len(l.Obfuscated) != w.obfuscated {
		t.Errorf("obfuscated %d, want %d", len(l.Obfuscated), w.obfuscated)
	}
	var skips []string
	for _, s := range l.Skipped {
		skips = append(skips, fmt.Sprintf("%d:%s:%s", s.Line, s.Value, s.Reason))
	}
	if strings.Join(skips, " ") != strings.Join(w.skips, " ") {
		t.Errorf("skips %v, want %v", skips, w.skips)
	}
	if used := len(l.Blocks) + len(l.Obfuscated); used != w.rows-len(w.skips) {
		t.Errorf("used %d, want %d", used, w.rows-len(w.skips))
	}
	silence := 0
	for _, e := range l.Blocks {
		if e.Severity == Silence {
			silence++
		}
	}
	if silence != w.silence {
		t.Errorf("silences %d, want %d", silence, w.silence)
	}
	detected, err := Parse(rel, data, "", allFields)
	if err != nil || detected.Format != w.format || len(detected.Blocks) != len(l.Blocks) {
		t.Errorf("detected parse differs: %v", err)
	}
	for _, e := range l.Blocks {
		checkFastPath(t, e.Domain)
	}
}

// The fixtures' own details FBH's tests assert (test_parser_json.py, test_parser_rapidblockjson.py).
func TestFBHFixtures(t *testing.T) {
	root := testdata(t)
	data, err := os.ReadFile(filepath.Join(root, "third_party/fediblockhole/data-mastodon.json"))
	if err != nil {
		t.Fatal(err)
	}
	l := mustParse(t, string(data), FormatJSON, Options{})
	if len(l.Blocks) != 10 {
		t.Fatalf("%d blocks", len(l.Blocks))
	}
	for d, s := range map[string]Severity{"example.org": Suspend, "example2.org": Silence, "example4.org": Noop, "example9.org": Silence} {
		if got := find(t, l, d); got.Severity != s || got.PublicComment != "" || got.RejectMedia {
			t.Errorf("%s: %+v", d, got)
		}
	}
	l = mustParse(t, string(data), FormatJSON, allFields)
	if got := find(t, l, "example.org").Block; got != (Block{Domain: "example.org", Severity: Suspend, RejectMedia: true, RejectReports: true, Obfuscate: true, PublicComment: "A public comment", PrivateComment: "A private comment"}) {
		t.Errorf("%+v", got)
	}

	data, err = os.ReadFile(filepath.Join(root, "third_party/fediblockhole/data-rapidblock.json"))
	if err != nil {
		t.Fatal(err)
	}
	l = mustParse(t, string(data), FormatRapidBlockJSON, Options{})
	noop := 0
	for _, e := range l.Blocks {
		if e.Severity == Noop {
			noop++
		}
		if e.PublicComment != "" {
			t.Errorf("%s: comment imported", e.Domain)
		}
	}
	if noop != 2 || len(l.Blocks) != 168 {
		t.Errorf("%d blocks, %d noop", len(l.Blocks), noop)
	}
	for _, d := range []string{"101010.pl", "berserker.town"} {
		if find(t, l, d).Severity != Suspend {
			t.Errorf("%s not suspended", d)
		}
	}
	l = mustParse(t, string(data), FormatRapidBlockJSON, Options{ImportFields: []string{"public_comment"}})
	if got := find(t, l, "101010.pl").PublicComment; got != "cryptomining javascript, white supremacy" {
		t.Errorf("reason: %q", got)
	}
}

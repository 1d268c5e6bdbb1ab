package merge

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fediops/fediops/functions/blocklist/lists"
	"github.com/fediops/fediops/shared/domain"
)

var allFields = lists.Options{ImportFields: lists.OptionalFields}

func parse(t testing.TB, source, data string) *lists.List {
	t.Helper()
	l, err := lists.Parse(source, []byte(data), "", allFields)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func load(t testing.TB, rel string, opts lists.Options) *lists.List {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testdata(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	l, err := lists.Parse(rel, data, "", opts)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func mustMerge(t testing.TB, srcs, allow []*lists.List, opts Options) *Result {
	t.Helper()
	res, err := Merge(srcs, allow, opts)
	if err != nil {
		t.Fatal(err)
	}
	checkAccounting(t, srcs, res)
	return res
}

// checkAccounting: every row of every source is used or skipped exactly once, and the
// output is sorted and unique.
func checkAccounting(t testing.TB, srcs []*lists.List, res *Result) {
	t.Helper()
	for i, st := range res.Sources {
		sum := st.Used
		for _, n := range st.Skipped {
			sum += n
		}
		if sum != st.Rows || st.Rows != srcs[i].Rows {
			t.Errorf("%s: rows %d, used %d + skipped %v = %d", st.Source, st.Rows, st.Used, st.Skipped, sum)
		}
	}
	if !slices.IsSortedFunc(res.Blocks, func(a, b lists.Block) int { return strings.Compare(a.Domain, b.Domain) }) {
		t.Error("blocks not sorted")
	}
	for i := 1; i < len(res.Blocks); i++ {
		if res.Blocks[i].Domain == res.Blocks[i-1].Domain {
			t.Errorf("duplicate %s", res.Blocks[i].Domain)
		}
	}
}

func byDomain(res *Result) map[string]lists.Block {
	m := make(map[string]lists.Block)
	for _, b := range res.Blocks {
		m[b.Domain] = b
	}
	return m
}

// FBH tests/test_merge_comments.py and the merge_comments cases of test_mergeplan.py.
func TestMergeComments(t *testing.T) {
	for _, tc := range []struct{ old, nw, want string }{
		{"", "", ""},
		{"fred, bibble", "", "fred, bibble"},
		{"", "fred, bibble", "fred, bibble"},
		{"happy, medium, spinning", "fred, bibble", "happy, medium, spinning, fred, bibble"},
		{"happy, medium, spinning", "fred, medium, bibble, spinning", "happy, medium, spinning, fred, bibble"},
		{"comment to merge", "", "comment to merge"},
		{"", "comment to merge", "comment to merge"},
		{"comment to merge", "comment to merge", "comment to merge"},
		{"comment A", "comment B", "comment A, comment B"},
		{"boring, nazis, lack of moderation, flagged, special", "spoon, nazis, flagged, lack of moderation, happy, fork",
			"boring, nazis, lack of moderation, flagged, special, spoon, happy, fork"},
		// FBH quirks kept: tokens split on ", " only; duplicates inside the old comment stay;
		// each old token removes one occurrence from the new ones.
		{"a,b", "a, b", "a,b, a, b"},
		{"x, x", "x, y", "x, x, y"},
		{"x", "x, x", "x, x"},
		{"a, , b", "c", "a, b, c"},
	} {
		if got := MergeComments(tc.old, tc.nw); got != tc.want {
			t.Errorf("MergeComments(%q, %q) = %q, want %q", tc.old, tc.nw, got, tc.want)
		}
	}
}

// FBH tests/test_mergeplan.py over its fixture files.
func TestMergeplanFixtures(t *testing.T) {
	suspends := load(t, "third_party/fediblockhole/data-suspends-01.csv", allFields)
	silences := load(t, "third_party/fediblockhole/data-silences-01.csv", allFields)
	noops := load(t, "third_party/fediblockhole/data-noop-01.csv", allFields)
	for _, tc := range []struct {
		name string
		srcs []*lists.List
		plan Plan
		want lists.Severity
		flag bool
	}{
		{"max", []*lists.List{suspends, silences}, PlanMax, lists.Suspend, true},
		{"min", []*lists.List{suspends, silences}, PlanMin, lists.Silence, false},
		{"default", []*lists.List{suspends, silences}, "", lists.Suspend, true},
		{"3 max", []*lists.List{suspends, silences, noops}, PlanMax, lists.Suspend, true},
		{"3 min", []*lists.List{suspends, silences, noops}, PlanMin, lists.Noop, false},
		{"noop v silence max", []*lists.List{silences, noops}, PlanMax, lists.Silence, false},
		{"noop v silence min", []*lists.List{silences, noops}, PlanMin, lists.Noop, false},
	} {
		opts := DefaultOptions()
		opts.Plan = tc.plan
		res := mustMerge(t, tc.srcs, nil, opts)
		if len(res.Blocks) != 13 {
			t.Errorf("%s: %d blocks", tc.name, len(res.Blocks))
		}
		for _, b := range res.Blocks {
			if b.Severity != tc.want || b.RejectMedia != tc.flag || b.RejectReports != tc.flag || b.Obfuscate != tc.flag {
				t.Errorf("%s: %+v", tc.name, b)
			}
		}
	}
	opts := DefaultOptions()
	opts.Plan = PlanMin
	m := byDomain(mustMerge(t, []*lists.List{suspends, silences, noops}, nil, opts))
	for d, want := range map[string][2]string{
		"public-comment.example.org":  {"This is a public comment", "This is a private comment"},
		"private-comment.example.org": {"", "This is a private comment"},
		"diff-comment.example.org":    {"Suspend public comment, Silence public comment, Noop public comment", "Suspend private comment, Silence private comment, Noop private comment"},
		// test_merge_duplicate_comments is disabled in FBH ("this breaks"); its output file shows:
		"2diff-comment.example.org": {"Suspend comment 1, Public duplicate", "Suspend private 1, Private duplicate"},
	} {
		if b := m[d]; b.PublicComment != want[0] || b.PrivateComment != want[1] {
			t.Errorf("%s: %q / %q", d, b.PublicComment, b.PrivateComment)
		}
	}
}

// FBH tests/test_merge_thresholds.py.
func TestThresholds(t *testing.T) {
	mk := func(name string, ds ...string) *lists.List {
		return parse(t, name, "domain,severity,reject_media,reject_reports,obfuscate\n"+strings.Join(ds, ",suspend,True,True,True\n")+",suspend,True,True,True\n")
	}
	three := []*lists.List{
		mk("test01", "onemention.example.org", "twomention.example.org", "threemention.example.org"),
		mk("test2", "twomention.example.org", "threemention.example.org"),
		mk("test3", "threemention.example.org", "threemention.example.org"),
	}
	four := []*lists.List{
		mk("test01", "onemention.example.org", "twomention.example.org", "fourmention.example.org"),
		mk("test2", "twomention.example.org", "threemention.example.org", "fourmention.example.org"),
		mk("test3", "threemention.example.org", "fourmention.example.org"),
		mk("test4", "threemention.example.org", "fourmention.example.org"),
	}
	for _, tc := range []struct {
		srcs []*lists.List
		typ  ThresholdType
		n    int
		want []string
	}{
		{three, ThresholdCount, 2, []string{"threemention.example.org", "twomention.example.org"}},
		{three, ThresholdCount, 3, []string{"threemention.example.org"}},
		{four, ThresholdPct, 30, []string{"fourmention.example.org", "threemention.example.org", "twomention.example.org"}},
		{four, ThresholdPct, 55, []string{"fourmention.example.org", "threemention.example.org"}},
		{four, ThresholdPct, 0, []string{"fourmention.example.org", "onemention.example.org", "threemention.example.org", "twomention.example.org"}},
	} {
		opts := DefaultOptions()
		opts.ThresholdType, opts.Threshold = tc.typ, tc.n
		res := mustMerge(t, tc.srcs, nil, opts)
		var got []string
		for _, b := range res.Blocks {
			got = append(got, b.Domain)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s %d: %v, want %v", tc.typ, tc.n, got, tc.want)
		}
	}
	// pct denominator: TotalLists counts sources that failed, as a caller may ask.
	opts := DefaultOptions()
	opts.ThresholdType, opts.Threshold, opts.TotalLists = ThresholdPct, 50, 8
	res := mustMerge(t, four, nil, opts)
	if len(res.Blocks) != 1 || res.Blocks[0].Domain != "fourmention.example.org" {
		t.Errorf("TotalLists: %v", res.Blocks)
	}
	// Audit rows and the drop records for below_threshold.
	if got := res.DroppedDomains(lists.ReasonBelowThreshold); !slices.Equal(got, []string{"onemention.example.org", "threemention.example.org", "twomention.example.org"}) {
		t.Errorf("dropped %v", got)
	}
	var buf bytes.Buffer
	if err := WriteAuditCSV(&buf, res.Audit); err != nil {
		t.Fatal(err)
	}
	want := "domain,count,percent\r\nfourmention.example.org,4,50.0\r\nonemention.example.org,1,12.5\r\nthreemention.example.org,3,37.5\r\ntwomention.example.org,2,25.0\r\n"
	if buf.String() != want {
		t.Errorf("audit:\n%q\nwant\n%q", buf.String(), want)
	}
	n1, n3 := 1, 3 // at run time, as FBH computes it (a Go constant expression would be exact)
	if got := pyFloat(float64(n1) / float64(n3) * 100); got != "33.33333333333333" {
		t.Errorf("pyFloat = %s", got)
	}
}

func TestAllowlists(t *testing.T) {
	src := parse(t, "src", "domain,severity\nexample.org,suspend\nsub.example.org,suspend\nother.example,silence\ncf,suspend\nx.tk,suspend\n")
	allow := parse(t, "allow", "domain\nexample.org\ncf\n")
	opts := DefaultOptions()
	res := mustMerge(t, []*lists.List{src}, []*lists.List{allow}, opts)
	if got := fmt.Sprint(keys(byDomain(res))); got != "[other.example x.tk]" {
		t.Errorf("subdomains covered: %s", got)
	}
	if got := res.DroppedDomains(lists.ReasonAllowlisted); !slices.Equal(got, []string{"cf", "example.org", "sub.example.org"}) {
		t.Errorf("allowlisted %v", got)
	}
	opts.AllowSubdomains = false // FBH: exact strings only
	res = mustMerge(t, []*lists.List{src}, []*lists.List{allow}, opts)
	if got := fmt.Sprint(keys(byDomain(res))); got != "[other.example sub.example.org x.tk]" {
		t.Errorf("exact only: %s", got)
	}
	// FBH -A flags as a list; FBH test_allowlist.py: TLD entries removed by an allowlist.
	res = mustMerge(t, []*lists.List{src}, []*lists.List{lists.FromDomains("-A", []string{".tk", "other.example"})}, DefaultOptions())
	if got := fmt.Sprint(keys(byDomain(res))); got != "[cf example.org sub.example.org]" {
		t.Errorf("-A: %s", got)
	}
}

func keys(m map[string]lists.Block) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestSubdomainsAsMastodonSeesThem(t *testing.T) {
	src := parse(t, "src", strings.Join([]string{
		"domain,severity,reject_media,reject_reports",
		"parent.example,suspend,false,false",
		"a.parent.example,suspend,true,true",     // suspend is always stricter: kept
		"b.parent.example,silence,true,true",     // silence under suspend: dropped
		"c.b.parent.example,suspend,false,false", // its nearest kept ancestor is parent.example: kept
		"silenced.example,silence,true,false",
		"a.silenced.example,silence,true,false",  // equal: kept (Mastodon's stricter_than? is "at least as strict")
		"b.silenced.example,silence,false,false", // drops reject_media: dropped
		"c.silenced.example,noop,true,true",      // noop under silence: dropped
		"d.silenced.example,silence,true,true",   // adds reject_reports: kept
		"x.d.silenced.example,noop,true,true",    // noop under its nearest ancestor d (silence): dropped
		"noop.example,noop,false,true",
		"a.noop.example,silence,false,false", // loses reject_reports: dropped
		"b.noop.example,silence,false,true",  // kept
	}, "\n"))
	res := mustMerge(t, []*lists.List{src}, nil, DefaultOptions())
	want := []string{"a.parent.example", "a.silenced.example", "b.noop.example", "c.b.parent.example", "d.silenced.example", "noop.example", "parent.example", "silenced.example"}
	if got := keys(byDomain(res)); !slices.Equal(got, want) {
		t.Errorf("kept %v\nwant %v", got, want)
	}
	if got := res.DroppedDomains(lists.ReasonCoveredByParent); !slices.Equal(got, []string{"a.noop.example", "b.parent.example", "b.silenced.example", "c.silenced.example", "x.d.silenced.example"}) {
		t.Errorf("covered %v", got)
	}
	for _, d := range res.Dropped {
		if d.Value == "x.d.silenced.example" && d.Detail != "noop+reject_media+reject_reports is not stricter than d.silenced.example silence+reject_media+reject_reports" {
			t.Errorf("detail %q", d.Detail)
		}
	}
}

func TestCanariesNeverApplied(t *testing.T) {
	seirdy := load(t, "oliphant/seirdy-tier0.csv", allFields)
	dni := load(t, "oliphant/dni.csv", allFields)
	aud := load(t, "oliphant/iftas-aud.csv", allFields)
	res := mustMerge(t, []*lists.List{seirdy, dni, aud}, nil, DefaultOptions())
	got := res.DroppedDomains(lists.ReasonCanary)
	want := []string{"000delete.this.line.if.you.have.read.the.documentation.on.seirdy.one", "aud.invalid", "canary.tier0.example.com", "dni.invalid"}
	if !slices.Equal(got, want) {
		t.Errorf("canaries %v", got)
	}
	for _, st := range res.Sources {
		t.Logf("%s: rows %d used %d skipped %v", st.Source, st.Rows, st.Used, st.Skipped)
	}
	if res.Sources[0].Skipped[lists.ReasonCanary] != 2 || res.Sources[1].Skipped[lists.ReasonCanary] != 1 || res.Sources[2].Skipped[lists.ReasonCanary] != 1 {
		t.Errorf("per source canary counts: %+v", res.Sources)
	}
}

// Every version of the Oliphant tier-0 list, merged on its own: the canaries it carries are
// exactly the rows naming a domain of Oliphant's own __allowlist.csv (counted independently
// of lists.IsCanary), and all other rows are used.
func TestHistoryCanaries(t *testing.T) {
	root := testdata(t)
	allow := load(t, "oliphant/__allowlist.csv", allFields)
	canaries := make(map[string]bool)
	for _, e := range allow.Blocks {
		canaries[e.Domain] = true
	}
	files, err := filepath.Glob(filepath.Join(root, "history/oliphant-tier0/*.csv"))
	if err != nil || len(files) != 38 {
		t.Fatalf("%d history files, %v", len(files), err)
	}
	total := 0
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		l := load(t, rel, allFields)
		want := 0
		for _, e := range l.Blocks {
			if canaries[e.Domain] {
				want++
			}
		}
		res := mustMerge(t, []*lists.List{l}, []*lists.List{allow}, DefaultOptions())
		st := res.Sources[0]
		if st.Skipped[lists.ReasonCanary] != want || st.Used != l.Rows-want || len(res.Blocks) != l.Rows-want {
			t.Errorf("%s: %d rows, %d canaries expected, got used %d skipped %v", rel, l.Rows, want, st.Used, st.Skipped)
		}
		total += want
	}
	if total != 14 { // ap.invalid in the 12 versions 2024-12 .. 2025-12, dni.invalid in 2026-01 and 2026-02
		t.Errorf("%d canary rows in the history, want 14", total)
	}
}

func TestObfuscationByDigest(t *testing.T) {
	real := "mastodon.social"
	pattern := lists.PublicDomain(real)
	public := parse(t, "https://a.example/api/v1/instance/domain_blocks", `[
{"domain":"`+pattern+`","digest":"`+domain.Digest(real)+`","severity":"silence","comment":"Spam"},
{"domain":"`+lists.PublicDomain("unknown.example")+`","digest":"`+domain.Digest("unknown.example")+`","severity":"suspend","comment":""},
{"domain":"`+lists.PublicDomain("mastodon.online")+`","digest":"`+domain.Digest("mastodon.online")+`","severity":"suspend"}
]`)
	// mastodon.online's mask "mast****.***ine" also fits the decoy below, but the digest decides.
	other := parse(t, "other", "domain,severity,public_comment\nmastxxxx.yyyine,suspend,decoy\nmastodon.social,suspend,Harassment\nmastodon.online,silence,\n")
	res := mustMerge(t, []*lists.List{public, other}, nil, DefaultOptions())
	m := byDomain(res)
	// Resolved entries are folded after the clear ones.
	if b := m["mastodon.social"]; b.Severity != lists.Suspend || b.PublicComment != "Harassment, Spam" {
		t.Errorf("mastodon.social: %+v", b)
	}
	if got := fmt.Sprint(res.Resolved); !strings.Contains(got, "mastodon.social digest") || !strings.Contains(got, "mastodon.online digest") {
		t.Errorf("resolved %v", res.Resolved)
	}
	if got := res.DroppedDomains(lists.ReasonObfuscatedUnresolved); !slices.Equal(got, []string{lists.PublicDomain("unknown.example")}) {
		t.Errorf("unresolved %v", got)
	}
	if m["mastodon.online"].Severity != lists.Suspend {
		t.Errorf("mastodon.online: %+v", m["mastodon.online"])
	}
	if res.Sources[0].Used != 2 || res.Sources[0].Skipped[lists.ReasonObfuscatedUnresolved] != 1 {
		t.Errorf("stats %+v", res.Sources[0])
	}
}

func TestObfuscationByPattern(t *testing.T) {
	masked := parse(t, "masked", "domain,severity,public_comment\nap.***.st,suspend,Spam\nb***.example,silence,\nzz*.example,suspend,\nself.**.example,suspend,\nown.example,suspend,\no*n.example,suspend,\n")
	named := parse(t, "named", "domain,severity\nap.foo.st,silence\nbaaa.example,suspend\nbbbb.example,suspend\nself.ab.example,suspend\nown.example,suspend\noxn.example,suspend\n")
	res := mustMerge(t, []*lists.List{masked, named}, nil, DefaultOptions())
	var got []string
	for _, r := range res.Resolved {
		got = append(got, r.Pattern+"="+r.Domain+"/"+r.By)
	}
	// o*n.example: own.example is named by "named" but also by "masked" itself, so it cannot be
	// the masked name (one block per domain per server); oxn.example is the only other fit.
	if want := []string{"ap.***.st=ap.foo.st/pattern", "self.**.example=self.ab.example/pattern", "o*n.example=oxn.example/pattern"}; !slices.Equal(got, want) {
		t.Errorf("resolved %v, want %v", got, want)
	}
	if got := res.DroppedDomains(lists.ReasonObfuscatedAmbiguous); !slices.Equal(got, []string{"b***.example"}) {
		t.Errorf("ambiguous %v", got)
	}
	if got := res.DroppedDomains(lists.ReasonObfuscatedUnresolved); !slices.Equal(got, []string{"zz*.example"}) {
		t.Errorf("unresolved %v", got)
	}
	if b := byDomain(res)["ap.foo.st"]; b.Severity != lists.Suspend {
		t.Errorf("ap.foo.st: %+v", b)
	}
	// Two masked entries of one source resolving to one name: both ambiguous.
	masked = parse(t, "masked", "domain\nab*.example\na*c.example\n")
	named = parse(t, "named", "domain\nabc.example\n")
	res = mustMerge(t, []*lists.List{masked, named}, nil, DefaultOptions())
	if len(res.Resolved) != 0 || len(res.DroppedDomains(lists.ReasonObfuscatedAmbiguous)) != 2 {
		t.Errorf("collision: %v %v", res.Resolved, res.Dropped)
	}
}

// mastodon.social's and mastodon.online's public lists (read through FBH) resolved against
// the other Oliphant sources.
func TestObfuscationRealLists(t *testing.T) {
	social := load(t, "oliphant/mastodon.social.csv", allFields)
	online := load(t, "oliphant/mastodon.online.csv", allFields)
	art := load(t, "oliphant/mastodon.art.csv", allFields)
	var others []*lists.List
	for _, f := range []string{"oliphant/_unified_max_blocklist.csv", "oliphant/pleroma.envs.net.csv", "oliphant/seirdy-tier0.csv", "oliphant/gardenfence.csv", "oliphant/dni.csv", "oliphant/iftas-aud.csv"} {
		others = append(others, load(t, f, allFields))
	}
	res := mustMerge(t, append([]*lists.List{social, online, art}, others...), nil, DefaultOptions())
	per := make(map[string]int)
	for _, r := range res.Resolved {
		per[r.Source]++
		if !lists.MatchesObfuscated(r.Pattern, r.Domain) || r.By != "pattern" {
			t.Errorf("bad resolution %+v", r)
		}
	}
	for i, l := range []*lists.List{social, online, art} {
		st := res.Sources[i]
		unresolved := st.Skipped[lists.ReasonObfuscatedUnresolved] + st.Skipped[lists.ReasonObfuscatedAmbiguous]
		if per[l.Source]+unresolved != len(l.Obfuscated) {
			t.Errorf("%s: %d resolved + %d not != %d obfuscated", l.Source, per[l.Source], unresolved, len(l.Obfuscated))
		}
		if st.Skipped[lists.ReasonObfuscatedAmbiguous] != 0 || per[l.Source]+st.Skipped[lists.ReasonObfuscatedUnresolved] != len(l.Obfuscated) {
			t.Errorf("%s: skipped %v", l.Source, st.Skipped)
		}
	}
	// Computed independently (a Python script over the raw files: candidates = names in the
	// other files minus the masked file's own names, '*' = one non-dot character): 79 of 130,
	// 60 of 108 and 3 of 3 resolve, none is ambiguous, the rest match nothing.
	want := map[string]int{"oliphant/mastodon.social.csv": 79, "oliphant/mastodon.online.csv": 60, "oliphant/mastodon.art.csv": 3}
	if fmt.Sprint(per) != fmt.Sprint(want) {
		t.Errorf("resolved per source %v, want %v", per, want)
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, o := range []Options{{Plan: "median"}, {ThresholdType: "ratio"}, {Threshold: -1}, {TotalLists: -2}} {
		if _, err := Merge(nil, nil, o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	res, err := Merge(nil, nil, Options{})
	if err != nil || len(res.Blocks) != 0 {
		t.Errorf("empty merge: %+v %v", res, err)
	}
}

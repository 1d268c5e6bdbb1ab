package merge

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"

	"github.com/fediops/fediops/functions/blocklist/lists"
	"github.com/fediops/fediops/shared/testsupport/synthlists"
)

// BenchmarkMerge50x20000 parses 50 CSV sources of 20,000 rows each (from bytes) and merges
// them (max plan, an allowlist of 100 names, subdomain check), as a big sync run would:
// sources are parsed concurrently (a run fetches them concurrently anyway), at most
// GOMAXPROCS+1 parsed lists wait at a time, and each is added to the Merger in config order
// and then dropped. BenchmarkMerge50x20000Sequential does the same on one goroutine.
//
// Figures are in the README (Performance). peak-RSS-MB is the process's VmHWM from just
// before the timed loop; it includes the 46 MB of generated input.
func BenchmarkMerge50x20000(b *testing.B) { benchmarkMerge(b, true) }

// BenchmarkMerge50x20000Sequential is BenchmarkMerge50x20000 without concurrent parsing.
func BenchmarkMerge50x20000Sequential(b *testing.B) { benchmarkMerge(b, false) }

func benchmarkMerge(b *testing.B, concurrent bool) {
	const n, rows = 50, 20000
	data := synthlists.Sources(n, rows, 42)
	total := 0
	for _, d := range data {
		total += len(d)
	}
	allowNames := make([]string, 0, 100)
	for _, line := range strings.Split(string(data[0]), "\r\n")[1:101] {
		d, _, _ := strings.Cut(line, ",")
		allowNames = append(allowNames, d)
	}
	allow := lists.FromDomains("allow", allowNames)
	parseOpts := lists.Options{ImportFields: lists.OptionalFields}
	// Start the peak-RSS count from here: the generator's garbage is not the merge's.
	runtime.GC()
	debug.FreeOSMemory()
	synthlists.ResetPeakRSS()
	b.SetBytes(int64(total))
	b.ReportAllocs()
	b.ResetTimer()
	var res *Result
	for b.Loop() {
		m, err := NewMerger(DefaultOptions())
		if err != nil {
			b.Fatal(err)
		}
		if !concurrent {
			for i, d := range data {
				l, err := lists.Parse(fmt.Sprintf("source-%02d", i), d, "", parseOpts)
				if err != nil {
					b.Fatal(err)
				}
				m.Add(l)
			}
		} else {
			parsed := make([]chan *lists.List, n)
			for i := range parsed {
				parsed[i] = make(chan *lists.List, 1)
			}
			slots := make(chan struct{}, runtime.GOMAXPROCS(0)+1)
			go func() {
				for i, d := range data {
					slots <- struct{}{}
					go func() {
						l, err := lists.Parse(fmt.Sprintf("source-%02d", i), d, "", parseOpts)
						if err != nil {
							b.Error(err)
						}
						parsed[i] <- l
					}()
				}
			}()
			for i := range parsed {
				l := <-parsed[i]
				if l != nil {
					m.Add(l)
				}
				<-slots
			}
		}
		res = m.Result([]*lists.List{allow})
	}
	b.StopTimer()
	reasons := make(map[string]int)
	for _, d := range res.Dropped {
		reasons[d.Reason]++
	}
	b.ReportMetric(float64(len(res.Blocks)), "blocks")
	if peak := synthlists.PeakRSS(); peak > 0 {
		b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MB")
	}
	b.Logf("%d input bytes; %d merged blocks; dropped %v", total, len(res.Blocks), reasons)
}

// The synthetic sources are what the benchmark claims: realistic overlap, some subdomains
// and invalid rows, and every row accounted for.
func TestSyntheticSources(t *testing.T) {
	data := synthlists.Sources(5, 2000, 7)
	var srcs []*lists.List
	for i, d := range data {
		l, err := lists.Parse(fmt.Sprint(i), d, "", allFields)
		if err != nil {
			t.Fatal(err)
		}
		if l.Rows != 2000 || l.Format != []lists.Format{lists.FormatCSV, lists.FormatMastodonCSV}[i%2] {
			t.Errorf("source %d: %d rows, %s", i, l.Rows, l.Format)
		}
		srcs = append(srcs, l)
	}
	res := mustMerge(t, srcs, nil, DefaultOptions())
	invalid := 0
	for _, st := range res.Sources {
		invalid += st.Skipped[lists.ReasonInvalidDomain]
	}
	covered := len(res.DroppedDomains(lists.ReasonCoveredByParent))
	if invalid == 0 || covered == 0 || len(res.Blocks) >= 5*2000 || len(res.Blocks) < 2000 {
		t.Errorf("invalid %d, covered %d, blocks %d", invalid, covered, len(res.Blocks))
	}
	t.Logf("invalid %d, covered %d, blocks %d of %d rows", invalid, covered, len(res.Blocks), 5*2000)
}

// Result.Named names, for every block, exactly the sources that list its domain in clear or
// through an obfuscated entry resolved to it.
func TestNamedSources(t *testing.T) {
	data := synthlists.Sources(6, 1500, 11)
	var srcs []*lists.List
	for i, d := range data {
		l, err := lists.Parse(fmt.Sprint("s", i), d, "", allFields)
		if err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, l)
	}
	// An obfuscated entry in the last source, resolvable by digest against the others.
	masked, err := lists.Parse("masked", []byte("domain,severity\nb***.example,suspend\n"), "", allFields)
	if err != nil {
		t.Fatal(err)
	}
	clear, err := lists.Parse("clear", []byte("domain,severity\nbeta.example,suspend\n"), "", allFields)
	if err != nil {
		t.Fatal(err)
	}
	srcs = append(srcs, clear, masked)
	res := mustMerge(t, srcs, nil, DefaultOptions())
	if len(res.Resolved) != 1 {
		t.Fatalf("resolved %+v", res.Resolved)
	}
	checkNamed(t, srcs, res)

	// More sources than one word of bits.
	srcs = nil
	for i, d := range synthlists.Sources(150, 200, 5) {
		l, err := lists.Parse(fmt.Sprint("s", i), d, "", allFields)
		if err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, l)
	}
	res = mustMerge(t, srcs, nil, DefaultOptions())
	checkNamed(t, srcs, res)
}

func checkNamed(t *testing.T, srcs []*lists.List, res *Result) {
	t.Helper()
	want := map[string]map[int32]bool{}
	for i, l := range srcs {
		for _, e := range l.Blocks {
			if want[e.Domain] == nil {
				want[e.Domain] = map[int32]bool{}
			}
			want[e.Domain][int32(i)] = true
		}
	}
	for _, r := range res.Resolved {
		for i, l := range srcs {
			if l.Source == r.Source {
				want[r.Domain][int32(i)] = true
			}
		}
	}
	if len(res.Named) != len(res.Blocks) {
		t.Fatalf("%d names for %d blocks", len(res.Named), len(res.Blocks))
	}
	high := false
	for i, b := range res.Blocks {
		got := res.Named[i]
		if len(got) != len(want[b.Domain]) || !slices.IsSorted(got) {
			t.Fatalf("%s: named by %v, want %v", b.Domain, got, want[b.Domain])
		}
		for _, k := range got {
			high = high || k >= 64
			if !want[b.Domain][k] {
				t.Fatalf("%s: named by %v, want %v", b.Domain, got, want[b.Domain])
			}
		}
	}
	if len(srcs) > 64 && !high {
		t.Error("no block named by a source beyond the 64th")
	}
}

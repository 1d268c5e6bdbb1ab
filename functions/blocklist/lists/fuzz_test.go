package lists

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fediops/fediops/shared/domain"
)

func normalizeSlow(s string) (string, error) { return domain.Normalize(s) }

// Run one with e.g. `go test -run XXX -fuzz '^FuzzParseCSV$' -fuzztime 60s -fuzzminimizetime 5s`:
// the default minimisation budget (60s per new input) makes runs look stalled.

// maxFuzzInput caps fuzz inputs: the parsers are linear, so bigger inputs only slow the
// fuzzer down. Fetching (phase 2) caps real sources.
const maxFuzzInput = 64 << 10

// fuzzParse checks, for any input: no panic; on success every row is accounted for, rows ≤
// lines, domains normalised and unique; memory stays proportional to the input (entries
// never outnumber lines, and their strings come from the input).
func fuzzParse(t *testing.T, data []byte, f Format) {
	if len(data) > maxFuzzInput {
		t.Skip()
	}
	l, err := Parse("fuzz", data, f, allFields)
	if err != nil {
		return
	}
	checkInvariants(t, l, string(data))
	if n, bound := len(l.Blocks)+len(l.Obfuscated), maxRows(string(data), l.Format); n > bound {
		t.Fatalf("%d entries, more than the %d the input can hold", n, bound)
	}
	// Whatever was read must survive a round trip through each writer.
	var buf bytes.Buffer
	blocks := make([]Block, len(l.Blocks))
	for i, e := range l.Blocks {
		blocks[i] = e.Block
	}
	for name, write := range map[Format]func() error{
		FormatMastodonCSV: func() error { return WriteMastodonCSV(&buf, blocks) },
		FormatCSV:         func() error { return WriteFediBlockHoleCSV(&buf, blocks, OptionalFields) },
		FormatJSON:        func() error { return WriteJSON(&buf, blocks) },
	} {
		buf.Reset()
		if err := write(); err != nil {
			t.Fatalf("write %s: %v", name, err)
		}
		back, err := Parse("back", buf.Bytes(), name, allFields)
		if err != nil {
			t.Fatalf("re-read %s: %v\n%s", name, err, buf.Bytes())
		}
		if len(back.Blocks) != len(blocks) || len(back.Skipped) != 0 {
			t.Fatalf("%s round trip: %d blocks -> %d, skipped %v\n%s", name, len(blocks), len(back.Blocks), back.Skipped, buf.Bytes())
		}
	}
}

func addSeeds(f *testing.F, names ...string) {
	root := testdata(f)
	for _, n := range names {
		data, err := os.ReadFile(filepath.Join(root, n))
		if err != nil {
			f.Fatal(err)
		}
		if len(data) > 2<<10 { // small seeds keep minimisation fast
			data = data[:2<<10]
		}
		f.Add(data)
	}
}

func FuzzParseCSV(f *testing.F) {
	addSeeds(f, "oliphant/gardenfence.csv", "oliphant/dni.csv", "oliphant/seirdy-tier0.csv", "oliphant/mastodon.social.csv", "third_party/fediblockhole/data-noop-01.csv")
	for _, s := range []string{"a.example\n", "*.x.example,Suspend\neveningzoo.]club,suspend\n", "domain,severity\n\"a\nb\",silence\n", "\ufeff#domain\r\nx.y\r\n", "a,\"b"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzParse(t, data, FormatCSV)
		// ParseOwned reads the same, without a copy.
		want, errWant := Parse("fuzz", data, FormatCSV, allFields)
		got, err := ParseOwned("fuzz", bytes.Clone(data), FormatCSV, allFields)
		if (err == nil) != (errWant == nil) || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("ParseOwned = %+v, %v; Parse = %+v, %v", got, err, want, errWant)
		}
	})
}

func FuzzParseText(f *testing.F) {
	for _, s := range []string{"# c\na.example\n\n*.b.example # x\nbad domain\n", "domain\r\nx.y\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { fuzzParse(t, data, FormatText) })
}

func FuzzParseJSON(f *testing.F) {
	addSeeds(f, "third_party/fediblockhole/data-mastodon.json")
	for _, s := range []string{`[{"domain":"a.example","severity":"silence","reject_media":"yes"}]`, `[{"domain":"ap.***.st","digest":"00","comment":"x"},"b.example",1,null]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzParse(t, data, FormatJSON)
		fuzzParse(t, data, FormatMastodonAPIPublic)
	})
}

func FuzzParseRapidBlockJSON(f *testing.F) {
	addSeeds(f, "third_party/fediblockhole/data-rapidblock.json")
	f.Add([]byte(`{"blocks":{"a.example":{"isBlocked":true,"reason":"x"},"b":{"isBlocked":"no"}},"x":[1]}`))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzParse(t, data, FormatRapidBlockJSON) })
}

func FuzzDetectAndParse(f *testing.F) {
	addSeeds(f, "oliphant/iftas-aud.csv", "third_party/fediblockhole/data-rapidblock.json", "third_party/fediblockhole/data-mastodon.json")
	f.Add([]byte("a.example\nb.example\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > maxFuzzInput {
			t.Skip()
		}
		_ = Detect(data, "")
		fuzzParse(t, data, "")
	})
}

// FuzzNormalizeFastPath checks that the fast path never disagrees with domain.Normalize.
func FuzzNormalizeFastPath(f *testing.F) {
	for _, s := range []string{"a.example", "ab--c.example", "xn--bcher-kva.example", "1.2.3.4", "-a.b", "a-.b", "a..b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkFastPath(t, s) })
}

// FuzzCSVScanner checks csvScanner against encoding/csv (LazyQuotes, variable field counts):
// the same records, starting on the same lines.
func FuzzCSVScanner(f *testing.F) {
	for _, s := range []string{"a,b\r\nc\n", "\"a\"\"b\",c\n\"x\ny\r\nz\",w", "a\"b,\"c\"d,\"e\n\n\r\n,\r", "\"\"\"\n\"a\",\n", "x\r\r\n\"", "\"a\r\nb\"\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r := csv.NewReader(strings.NewReader(s))
		r.LazyQuotes = true
		r.FieldsPerRecord = -1
		sc := csvScanner{s: s}
		for n := 0; ; n++ {
			want, err := r.Read()
			got, line, ok := sc.read()
			if err == io.EOF {
				if ok {
					t.Fatalf("record %d: scanner has %q, encoding/csv is done", n, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("encoding/csv: %v", err)
			}
			if !ok || !slices.Equal(got, want) {
				t.Fatalf("record %d: scanner %q (ok=%v), encoding/csv %q", n, got, ok, want)
			}
			if wl, _ := r.FieldPos(0); wl != line {
				t.Fatalf("record %d: scanner line %d, encoding/csv line %d", n, line, wl)
			}
		}
	})
}

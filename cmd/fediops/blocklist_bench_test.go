package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/fediops/fediops/shared/testsupport/synthlists"
)

// BenchmarkMergeCommand50x20000 runs `fediops blocklist merge --config F --format json -o
// out.json` as a user would, in-process: 50 file:// sources of 20,000 rows each (the merge
// benchmark's synthetic lists, written to disk first), read, parsed, merged, archived in a
// local archive directory and the merged list written as JSON. "first" starts each run
// from an empty archive (every source is new); "unchanged" runs again over an archive that
// already holds the same sources (the hourly case).
//
// Figures are in the README (Performance). Peak RSS is the process's VmHWM over the timed
// runs (the benchmark's own input is on disk, not in memory).
func BenchmarkMergeCommand50x20000(b *testing.B) {
	dir := b.TempDir()
	if _, err := synthlists.WriteFiles(dir, 50, 20000, 42); err != nil {
		b.Fatal(err)
	}
	env := func(string) string { return "" }
	for _, mode := range []string{"first", "unchanged"} {
		b.Run(mode, func(b *testing.B) {
			work := b.TempDir()
			out := filepath.Join(work, "out.json")
			args := func(i int) []string {
				cfg := filepath.Join(work, "fediops.toml")
				if mode == "first" {
					cfg = filepath.Join(work, fmt.Sprintf("fediops-%d.toml", i))
				}
				if _, err := os.Stat(cfg); err != nil {
					mergeBenchConfig(b, cfg, dir, 50, filepath.Join(work, fmt.Sprint("archive-", i)))
				}
				return []string{"blocklist", "merge", "--config", cfg, "--format", "json", "-o", out}
			}
			if mode == "unchanged" {
				if code := execute(context.Background(), args(0), io.Discard, io.Discard, env); code != 0 {
					b.Fatalf("exit %d", code)
				}
			}
			runtime.GC()
			debug.FreeOSMemory()
			synthlists.ResetPeakRSS()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				var stderr strings.Builder
				if code := execute(context.Background(), args(i), io.Discard, &stderr, env); code != 0 {
					b.Fatalf("exit %d\n%s", code, stderr.String())
				}
				if !strings.Contains(stderr.String(), "0 source(s) failed") {
					b.Fatalf("sources failed:\n%s", stderr.String())
				}
			}
			b.StopTimer()
			if peak := synthlists.PeakRSS(); peak > 0 {
				b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MB")
			}
			st, err := os.Stat(out)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(st.Size())/(1<<20), "output-MB")
		})
	}
}

// mergeBenchConfig writes to path a configuration naming n synthetic sources in dir and
// archiving to archive.
func mergeBenchConfig(b *testing.B, path, dir string, n int, archive string) {
	var sb strings.Builder
	fmt.Fprintf(&sb, "[archive]\nurl = %q\n\n", archive)
	sb.WriteString("[blocklist]\nimport_fields = [\"public_comment\", \"reject_media\", \"reject_reports\", \"obfuscate\"]\nblocklist_url_sources = [\n")
	for i := range n {
		fmt.Fprintf(&sb, "  { url = \"file://%s\", name = \"s%02d\" },\n", filepath.Join(dir, fmt.Sprintf("source-%02d.csv", i)), i)
	}
	sb.WriteString("]\n")
	if err := os.WriteFile(path, []byte(sb.String()), 0o600); err != nil {
		b.Fatal(err)
	}
}

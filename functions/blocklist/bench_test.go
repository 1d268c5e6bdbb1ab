package blocklist

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/fediops/fediops/shared/setup"
	"github.com/fediops/fediops/shared/testsupport/synthlists"
)

// TestMain serves fake-gcs-server when the benchmark starts this binary for it (see
// startFakeGCSProcess); otherwise it runs the tests.
func TestMain(m *testing.M) {
	if os.Getenv("FEDIOPS_BENCH_FAKEGCS") == "serve" {
		serveFakeGCS()
		return
	}
	os.Exit(m.Run())
}

// serveFakeGCS runs fake-gcs-server with an "archive" bucket, prints its JSON API endpoint
// and serves until stdin closes.
func serveFakeGCS() {
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{Scheme: "http", Host: "127.0.0.1", Port: 0, Writer: io.Discard})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: "archive", VersioningEnabled: true})
	fmt.Println(srv.URL() + "/storage/v1/")
	_, _ = io.Copy(io.Discard, os.Stdin)
	srv.Stop()
}

// startFakeGCSProcess starts fake-gcs-server in a child process (this test binary), so that
// the objects it keeps in memory do not count in the benchmark's peak RSS, and returns its
// endpoint. The child ends when the benchmark closes its stdin.
func startFakeGCSProcess(b *testing.B) string {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "FEDIOPS_BENCH_FAKEGCS=serve")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "http://") {
		b.Fatalf("fake-gcs-server: %q %v", line, err)
	}
	return strings.TrimSpace(line)
}

// BenchmarkCollect50x20000GCS is the BlocklistSync function's collect path as deployed:
// setup.Open with the configuration's archive in Cloud Storage (fake-gcs-server, reached
// through the real client library), then the merge stage of RunSection — 50 file:// sources
// of 20,000 rows each read, parsed, archived (content-addressed, one object per new
// source), merged, the list to apply built, the snapshot's manifest, merged list and report
// written. "first" starts each run with an empty archive; "unchanged" runs again over the
// same sources (the hourly case: no source object is written).
//
// Figures are in the README (Performance). peak-RSS-MB is this process's VmHWM over the
// timed runs; fake-gcs-server runs in a child process and is not counted.
func BenchmarkCollect50x20000GCS(b *testing.B) {
	dir := b.TempDir()
	if _, err := synthlists.WriteFiles(dir, 50, 20000, 42); err != nil {
		b.Fatal(err)
	}
	endpoint := startFakeGCSProcess(b)
	for _, mode := range []string{"first", "unchanged"} {
		b.Run(mode, func(b *testing.B) {
			ctx := context.Background()
			open := func(i int) (*setup.Env, *Section) {
				b.Helper()
				cfg := filepath.Join(b.TempDir(), "fediops.toml")
				var sb strings.Builder
				fmt.Fprintf(&sb, "[archive]\nurl = \"gs://archive/%s-%d\"\n\n[blocklist]\n", mode, i)
				sb.WriteString("import_fields = [\"public_comment\", \"reject_media\", \"reject_reports\", \"obfuscate\"]\nblocklist_url_sources = [\n")
				for k := range 50 {
					fmt.Fprintf(&sb, "  { url = \"file://%s\", name = \"s%02d\" },\n", filepath.Join(dir, fmt.Sprintf("source-%02d.csv", k)), k)
				}
				sb.WriteString("]\n")
				if err := os.WriteFile(cfg, []byte(sb.String()), 0o600); err != nil {
					b.Fatal(err)
				}
				env, err := setup.Open(ctx, setup.Params{ConfigLocation: cfg, StorageEndpoint: endpoint, LogOutput: io.Discard, Getenv: func(string) string { return "" }})
				if err != nil {
					b.Fatal(err)
				}
				sec, err := LoadSection(env.Config)
				if err != nil {
					b.Fatal(err)
				}
				return env, sec
			}
			collect := func(env *setup.Env, sec *Section) *Report {
				rep, err := RunSection(ctx, env, sec, Message{}, RunOptions{})
				if err != nil || rep.Merge.Failed != 0 || rep.Merge.Merged == 0 || len(rep.Run.Desired.Blocks) != rep.Merge.Merged {
					b.Fatalf("run: %+v, %v", rep.Merge, err)
				}
				return rep
			}
			if mode == "unchanged" {
				env, sec := open(0)
				collect(env, sec)
				env.Close()
			}
			runtime.GC()
			debug.FreeOSMemory()
			synthlists.ResetPeakRSS()
			stored := 0
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				n := 0
				if mode == "first" {
					n = i + 1
				}
				env, sec := open(n)
				rep := collect(env, sec)
				stored += rep.Merge.StoredBytes
				env.Close()
			}
			b.StopTimer()
			if peak := synthlists.PeakRSS(); peak > 0 {
				b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MB")
			}
			b.ReportMetric(float64(stored)/float64(b.N)/(1<<20), "stored-MB/op")
		})
	}
}

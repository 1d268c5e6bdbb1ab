package e2e

// Benchmarks of the Pub/Sub spine (README, "Performance"). Run them one at a time:
//
//	go test ./e2e -run '^$' -bench BenchmarkSignUpToDecision -benchtime=20x
//	go test ./e2e -run '^$' -bench BenchmarkFanOut -benchtime=1x -timeout=60m
//
// FEDIOPS_BENCH_INSTANCES sets the number of instances of BenchmarkFanOut (default 200).

import (
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fediops/fediops/shared/testsupport/mastosim"
)

// BenchmarkSignUpToDecision measures a sign-up's way to its decision as deployed: the
// simulator's account.created webhook → TriageWebhook on the Functions Framework (config from
// fake-gcs-server, secret from the Secret Manager fake) → Pub/Sub (pstest) → pushed to Approve
// → GET the account → POST …/approve. Each iteration is one sign-up; the metrics are the
// median and worst time from the sign-up to the approve request reaching the server.
func BenchmarkSignUpToDecision(b *testing.B) {
	f := deployFleet(b, "", "main")
	b.Setenv("FEDIOPS_LOG_LEVEL", "warning")
	sim := f.sims["main"]
	sim.AddWebhook(mastosim.Webhook{URL: baseURL + "/TriageWebhook/main", Secret: webhookSecret, Events: []string{"account.created"}})
	var took []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		id := sim.AddAccount(mastosim.Account{Username: fmt.Sprintf("u%d", i), Email: fmt.Sprintf("u%d@health.gov", i), Confirmed: true})
		for {
			if at, ok := approvedAt(sim, id); ok {
				took = append(took, at.Sub(start))
				break
			}
			if time.Since(start) > 30*time.Second {
				b.Fatalf("sign-up %d not decided after 30s; deliveries %+v", i, sim.Deliveries())
			}
			time.Sleep(time.Millisecond)
		}
	}
	b.StopTimer()
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "median-ms")
	b.ReportMetric(float64(took[len(took)-1].Microseconds())/1000, "worst-ms")
}

// approvedAt returns when the approve request for id reached the server.
func approvedAt(sim *mastosim.Server, id string) (time.Time, bool) {
	for _, r := range sim.Requests() {
		if r.Method == http.MethodPost && r.Path == "/api/v1/admin/accounts/"+id+"/approve" && r.Status == http.StatusOK {
			return r.Time, true
		}
	}
	return time.Time{}, false
}

// BenchmarkFanOut runs one scheduled triage tick and one scheduled blocklist tick over many
// instances (each with five sign-ups and a 500-entry merged list to import), once fanned out
// with 10 invocations at a time (max_instance_count) and once with fanout = false (every
// instance one after the other in one invocation), with servers answering as fast as they can
// and after a fixed latency per request (FEDIOPS_BENCH_LATENCY, default "0s,2ms"): every
// function and server shares this machine's cores, so without latency the work is CPU-bound
// and parallel invocations cannot finish sooner; a real server's answer takes tens of
// milliseconds, which is what the parallel invocations overlap. It reports the wall time from the tick to
// the last acknowledgement, the requests per instance, and checks that no instance is run,
// and no account or block written, twice. The simulators' rate limits are off: at Mastodon's
// 300 requests per 5 minutes per token, a 500-block import waits out rate-limit windows either
// way, which would measure the limit, not the spine.
func BenchmarkFanOut(b *testing.B) {
	n := 200
	if v, err := strconv.Atoi(os.Getenv("FEDIOPS_BENCH_INSTANCES")); err == nil && v > 0 {
		n = v
	}
	latencies := []time.Duration{0, 2 * time.Millisecond}
	if v := os.Getenv("FEDIOPS_BENCH_LATENCY"); v != "" {
		latencies = nil
		for _, s := range strings.Split(v, ",") {
			d, err := time.ParseDuration(strings.TrimSpace(s))
			if err != nil {
				b.Fatalf("FEDIOPS_BENCH_LATENCY: %v", err)
			}
			latencies = append(latencies, d)
		}
	}
	for _, latency := range latencies {
		for _, job := range []string{"triage", "blocklist"} {
			for _, mode := range []string{"fanout", "sequential"} {
				b.Run(fmt.Sprintf("latency=%s/%s/%s", latency, job, mode), func(b *testing.B) {
					for i := 0; i < b.N; i++ {
						fanOutOnce(b, job, mode == "fanout", n, latency)
					}
				})
			}
		}
	}
}

// fanOutOnce runs one tick of job over n instances whose servers answer each request after
// latency (0: as fast as the simulator goes on this machine).
func fanOutOnce(b *testing.B, job string, fanout bool, n int, latency time.Duration) {
	b.StopTimer()
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("i%03d", i)
	}
	extra := fmt.Sprintf(`
[triage]
fanout = %v

[blocklist]
fanout = %v
blocklist_url_sources = [ { url = "gs://fediops-config/lists/big.csv", name = "big" } ]
import_fields = ["public_comment"]
initial_import = true
destinations = [%s]
`, fanout, fanout, `"`+strings.Join(names, `", "`)+`"`)
	f := deployFleetWith(b, extra, mastosim.Options{RateLimit: -1, PagingLimit: -1}, 10, latency, names...)
	b.Setenv("FEDIOPS_LOG_LEVEL", "warning")
	b.Setenv("FEDIOPS_TIMEOUT", "540s")
	var list strings.Builder
	list.WriteString("domain,severity,public_comment\n")
	for i := range 500 {
		sev := "silence"
		if i%5 == 0 {
			sev = "suspend"
		}
		fmt.Fprintf(&list, "spam%03d.example,%s,bench\n", i, sev)
	}
	f.gcs.Put("fediops-config", "lists/big.csv", []byte(list.String()))
	for _, s := range f.sims {
		for j, email := range []string{"a@agency.gov", "b@gov.uk", "c@ec.europa.eu", "d@gmail.com", "e@example.org"} {
			s.AddAccount(mastosim.Account{Username: fmt.Sprintf("u%d", j), Email: email, Confirmed: true})
		}
		s.ResetRequests()
	}
	topic := map[string]string{"triage": "projects/test/topics/fediops-triage", "blocklist": "projects/test/topics/fediops-blocklist"}[job]
	b.StartTimer()
	start := time.Now()
	f.ps.Publish(topic, []byte(`{}`))
	if err := f.ps.WaitIdle(20 * time.Minute); err != nil {
		b.Fatal(err)
	}
	wall := time.Since(start)
	b.StopTimer()

	requests, runs := 0, 0
	maxRequests := 0
	for name, s := range f.sims {
		reqs := s.Requests()
		requests += len(reqs)
		maxRequests = max(maxRequests, len(reqs))
		writes := map[string]int{}
		starts := 0
		for _, r := range reqs {
			switch {
			case job == "triage" && r.Method == http.MethodGet && r.Path == "/api/v2/admin/accounts" && !strings.Contains(r.RawQuery, "max_id"):
				starts++ // a run lists the pending accounts once
			case job == "blocklist" && r.Method == http.MethodGet && r.Path == "/api/v2/instance":
				starts++ // a sync detects the server once
			case r.Method == http.MethodPost && r.Status == http.StatusOK && !strings.HasSuffix(r.Path, "/measures"):
				writes[r.Path+" "+r.Body]++
			}
		}
		runs += starts
		if starts != 1 {
			b.Errorf("%s was run %d times", name, starts)
		}
		for w, k := range writes {
			if k != 1 {
				b.Errorf("%s: %s written %d times", name, w, k)
			}
		}
		switch {
		case job == "triage" && len(writes) != 4:
			b.Errorf("%s: %d decisions, want 4 (3 approvals, 1 rejection)", name, len(writes))
		case job == "blocklist" && len(s.DomainBlocks()) != 500:
			b.Errorf("%s: %d blocks, want 500", name, len(s.DomainBlocks()))
		}
	}
	b.ReportMetric(wall.Seconds(), "wall-s")
	b.ReportMetric(float64(requests)/float64(n), "requests/instance")
	b.ReportMetric(float64(maxRequests), "max-requests/instance")
	b.ReportMetric(float64(runs-n), "extra-runs")
	b.ReportMetric(float64(len(f.ps.Deliveries())), "invocations")
}

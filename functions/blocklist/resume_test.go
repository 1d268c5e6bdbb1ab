package blocklist

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fediops/fediops/shared/clock"
	"github.com/fediops/fediops/shared/testsupport/mastosim"
)

// TestResumeFirstImportOverSeveralInvocations imports the 3,075 entries of a real list into
// the simulator with its real 300 requests / 5 min limit, each invocation getting the 9-minute
// event-function deadline, on a fake clock. It completes over several invocations with no
// 429 and no repeated request: total requests = pages read + entries created + measures calls.
func TestResumeFirstImportOverSeveralInvocations(t *testing.T) {
	h := newSim(t, mastosim.Options{})
	want := mergeFiles(t, filepath.Join(testdataDir(t), "oliphant", "_unified_max_blocklist.csv"))
	if len(want.Blocks) < 3000 {
		t.Fatalf("merged %d entries", len(want.Blocks))
	}
	invocations := 0
	for {
		invocations++
		if invocations > 40 {
			t.Fatal("import did not complete")
		}
		start := h.clock.Now()
		ctx := clock.WithDeadline(context.Background(), start.Add(9*time.Minute))
		out := h.sync(t, ctx, dest("main", nil), want)
		if h.clock.Now().After(start.Add(9 * time.Minute)) {
			t.Fatalf("invocation %d ran past its deadline: %v", invocations, h.clock.Now().Sub(start))
		}
		if out.Failed != 0 {
			t.Fatalf("invocation %d: %+v", invocations, out)
		}
		if out.Stopped == "" && out.Deferred == 0 {
			break
		}
		h.clock.Advance(time.Minute) // the next scheduled invocation
	}
	if invocations < 3 {
		t.Errorf("completed in %d invocations; the budget should have forced several", invocations)
	}
	if d := diffMaps(h.blocks(), render(want)); d != "" {
		t.Fatalf("instance differs from the list:\n%s", d)
	}

	var pages, creates, measures, other, throttled int
	seen := map[string]bool{}
	for _, r := range h.sim.Requests() {
		switch {
		case r.Status == http.StatusTooManyRequests:
			throttled++
			t.Logf("429 on %s %s at %v", r.Method, r.Path, r.Time)
		case r.Method == http.MethodGet && r.Path == "/api/v1/admin/domain_blocks":
			pages++
		case r.Method == http.MethodPost && r.Path == "/api/v1/admin/domain_blocks":
			creates++
			if seen["create "+r.Body] {
				t.Errorf("repeated create %s", r.Body)
			}
			seen["create "+r.Body] = true
		case r.Method == http.MethodPost && r.Path == "/api/v1/admin/measures":
			measures++
			if seen["measures "+r.Body] {
				t.Errorf("repeated measures %s", r.Body)
			}
			seen["measures "+r.Body] = true
		case r.Path == "/api/v2/instance":
			// server detection, once per invocation's client
		default:
			other++
			t.Errorf("unexpected request %s %s", r.Method, r.Path)
		}
	}
	if throttled != 0 {
		t.Errorf("%d requests were answered 429", throttled)
	}
	suspends := 0
	for _, b := range want.Blocks {
		if b.Severity.String() == "suspend" {
			suspends++
		}
	}
	if creates != len(want.Blocks) || measures != suspends {
		t.Errorf("creates = %d (entries %d), measures = %d (suspensions %d)", creates, len(want.Blocks), measures, suspends)
	}
	t.Logf("%d entries in %d invocations: %d page reads, %d creates, %d measures calls, %d other", len(want.Blocks), invocations, pages, creates, measures, other)
	if !strings.Contains(h.logs.String(), "left for the next run") {
		t.Error("checkpointing not logged")
	}
}

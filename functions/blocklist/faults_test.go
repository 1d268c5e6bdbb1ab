package blocklist

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fediops/fediops/shared/testsupport/mastosim"
)

// faultScenario seeds an instance where a sync must create (with and without a follow
// check), update and remove, next to a manual block.
func faultScenario(t *testing.T) (*simHarness, Desired) {
	h := newSim(t, mastosim.Options{})
	h.sim.AddDomainBlock(mastosim.DomainBlock{Domain: "manual.example", Severity: "suspend", PrivateComment: "ours"})
	h.sync(t, context.Background(), dest("main", nil), desiredOf("keep.example:suspend", "change.example:silence", "gone.example:suspend"))
	return h, desiredOf("keep.example:suspend", "change.example:suspend", "new-suspend.example:suspend", "new-silence.example:silence", "manual.example:silence")
}

// TestFaultAtEveryRequest injects each kind of fault at each request position of a sync.
// Whatever happens to that run, the next run converges to the same state; no effect is
// applied twice and nothing is lost.
func TestFaultAtEveryRequest(t *testing.T) {
	ref, want := faultScenario(t)
	ref.sim.ResetRequests()
	ref.sync(t, context.Background(), dest("main", nil), want)
	expected := ref.blocks()
	positions := len(ref.sim.Requests())
	if positions < 6 {
		t.Fatalf("reference sync made only %d requests", positions)
	}
	kinds := []struct {
		name  string
		fault mastosim.Fault
	}{
		{"429", mastosim.Fault{Kind: mastosim.FaultTooManyRequests}},
		{"500", mastosim.Fault{Kind: mastosim.FaultServerError}},
		{"503 x5", mastosim.Fault{Kind: mastosim.FaultServerError, Status: 503, Times: 5}},
		{"timeout", mastosim.Fault{Kind: mastosim.FaultTimeout}},
		{"dropped connection", mastosim.Fault{Kind: mastosim.FaultDrop}},
		{"answer lost after the effect (drop)", mastosim.Fault{Kind: mastosim.FaultDrop, AfterApply: true}},
		{"answer lost after the effect (timeout)", mastosim.Fault{Kind: mastosim.FaultTimeout, AfterApply: true}},
	}
	for _, k := range kinds {
		for pos := 0; pos < positions; pos++ {
			t.Run(fmt.Sprintf("%s at request %d", k.name, pos), func(t *testing.T) {
				h, want := faultScenario(t)
				h.sim.ResetRequests()
				f := k.fault
				f.Skip = pos
				h.sim.InjectFault(f)
				d := dest("main", nil)
				d.Client = h.client(t)
				h.run++
				// The faulted run may fail; it must not corrupt anything.
				_, _ = Sync(context.Background(), h.deps(), d, want, NewSnapshot(h.store, h.clock.Now(), fmt.Sprintf("f%d", h.run)), fmt.Sprintf("f-%d", h.run))
				h.sim.ClearFaults()
				h.clock.Advance(time.Hour)
				h.sync(t, context.Background(), dest("main", nil), want)
				if d := diffMaps(h.blocks(), expected); d != "" {
					t.Fatalf("did not converge:\n%s\nlogs:\n%s", d, tail(h.logs.String(), 20))
				}
				// Nothing done twice: each domain was successfully created or removed at most once.
				effects := map[string]int{}
				for _, r := range h.sim.Requests() {
					if r.Status != http.StatusOK {
						continue
					}
					switch {
					case r.Method == http.MethodPost && r.Path == "/api/v1/admin/domain_blocks":
						effects["create "+domainOf(r.Body)]++
					case r.Method == http.MethodDelete:
						effects["delete "+r.Path]++
					}
				}
				for e, n := range effects {
					if n > 1 {
						t.Errorf("%s happened %d times", e, n)
					}
				}
				// A second clean run has nothing left to do.
				h.sim.ResetRequests()
				again := h.sync(t, context.Background(), dest("main", nil), want)
				if writes(h.sim.Requests()) != 0 {
					t.Errorf("not converged: a further run wrote: %+v", again)
				}
			})
		}
	}
}

func domainOf(body string) string {
	i := strings.Index(body, `"domain":"`)
	if i < 0 {
		return body
	}
	rest := body[i+len(`"domain":"`):]
	return rest[:strings.IndexByte(rest, '"')]
}

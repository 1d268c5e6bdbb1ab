package localpubsub

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/fediops/fediops/shared/pubsubmsg"
)

// TestPushDeliversCloudEvents: each message reaches the function as a messagePublished
// CloudEvent the functions' decoder reads; a failure is delivered again; no more deliveries
// run at once than the concurrency allows.
func TestPushDeliversCloudEvents(t *testing.T) {
	s, err := Start("test")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	topic, err := s.Topic("fediops-triage")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	got := map[string]int{}
	var inFlight, maxInFlight atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			m := maxInFlight.Load()
			if n <= m || maxInFlight.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		e, err := cehttp.NewEventFromHTTPRequest(r)
		if err != nil || e.Type() != pubsubmsg.MessagePublishedType || e.Source() != "//pubsub.googleapis.com/"+topic {
			t.Errorf("not a messagePublished event: %v %v", e, err)
			w.WriteHeader(400)
			return
		}
		var body struct {
			Instances []string `json:"instances"`
		}
		if _, err := pubsubmsg.Decode(*e, &body); err != nil || len(body.Instances) != 1 {
			t.Errorf("decode: %v", err)
		}
		mu.Lock()
		got[body.Instances[0]]++
		first := got[body.Instances[0]] == 1
		mu.Unlock()
		if body.Instances[0] == "flaky" && first {
			w.WriteHeader(500)
			return
		}
		w.WriteHeader(200)
	}))
	defer srv.Close()
	if err := s.Push(topic, srv.URL, PushOptions{Concurrency: 2, Backoff: 10 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a", "b", "c", "d", "flaky"} {
		s.Publish(topic, []byte(`{"instances":["`+n+`"]}`))
	}
	if err := s.WaitIdle(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, n := range []string{"a", "b", "c", "d"} {
		if got[n] != 1 {
			t.Errorf("%s delivered %d times", n, got[n])
		}
	}
	if got["flaky"] != 2 {
		t.Errorf("flaky delivered %d times, want 2 (a failure is delivered again)", got["flaky"])
	}
	if m := maxInFlight.Load(); m > 2 {
		t.Errorf("%d deliveries at once, concurrency 2", m)
	}
	var retried bool
	for _, d := range s.Deliveries() {
		if d.Data == `{"instances":["flaky"]}` && d.Attempt == 1 && d.Status == 200 {
			retried = true
		}
	}
	if !retried {
		t.Errorf("deliveries = %+v", s.Deliveries())
	}
}

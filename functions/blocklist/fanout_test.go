package blocklist

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"

	"github.com/fediops/fediops/shared/archive"
	"github.com/fediops/fediops/shared/pubsubmsg"
	"github.com/fediops/fediops/shared/run"
	"github.com/fediops/fediops/shared/setup"
	"github.com/fediops/fediops/shared/testsupport/mastosim"
)

const blocklistTopic = "projects/test/topics/fediops-blocklist"

// fanoutDeployment is a deployed BlocklistSync: destinations on simulators, a list served
// over HTTP (its fetches counted), an allowlist, a local archive and pstest.
type fanoutDeployment struct {
	sims    map[string]*mastosim.Server
	env     map[string]string
	ps      *pstest.Server
	logs    *bytes.Buffer
	archive string
	fetches atomic.Int32
}

func newFanoutDeployment(t *testing.T, extra string, names ...string) *fanoutDeployment {
	t.Helper()
	d := &fanoutDeployment{sims: map[string]*mastosim.Server{}, logs: &bytes.Buffer{}}
	dir := t.TempDir()
	d.archive = filepath.Join(dir, "archive")
	d.ps = pstest.NewServer()
	t.Cleanup(func() { _ = d.ps.Close() })
	if _, err := d.ps.GServer.CreateTopic(context.Background(), &pubsubpb.Topic{Name: blocklistTopic}); err != nil {
		t.Fatal(err)
	}
	list := "#domain,#severity,#public_comment\nspam.example,suspend,spam\nbad.example,silence,\npartner.example,suspend,\n"
	lists := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.fetches.Add(1)
		_, _ = w.Write([]byte(list))
	}))
	t.Cleanup(lists.Close)
	allow := filepath.Join(dir, "allow.csv")
	if err := os.WriteFile(allow, []byte("partner.example\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var cfg strings.Builder
	var dests []string
	for _, n := range names {
		sim := mastosim.New(mastosim.Options{})
		sim.AddToken(simToken, "admin:read admin:write:domain_blocks")
		srv := httptest.NewServer(sim)
		t.Cleanup(srv.Close)
		d.sims[n] = sim
		fmt.Fprintf(&cfg, "[[instance]]\nname = %q\nurl = %q\ntoken = \"env://FEDIOPS_TOKEN\"\n\n", n, srv.URL)
		dests = append(dests, fmt.Sprintf("%q", n))
	}
	fmt.Fprintf(&cfg, "[archive]\nurl = %q\n\n[blocklist]\nblocklist_url_sources = [{ url = %q, name = \"list\" }]\n"+
		"allowlist_url_sources = [{ url = \"file://%s\", name = \"partners\" }]\nimport_fields = [\"public_comment\"]\n"+
		"destinations = [%s]\ninitial_import = true\n%s\n", d.archive, lists.URL+"/list.csv", allow, strings.Join(dests, ", "), extra)
	config := filepath.Join(dir, "fediops.toml")
	if err := os.WriteFile(config, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	d.env = map[string]string{"FEDIOPS_CONFIG": config, "FEDIOPS_TIMEOUT": "240s", "FEDIOPS_TOKEN": simToken,
		"FEDIOPS_PUBSUB_ENDPOINT": d.ps.Addr, TopicVar: blocklistTopic}
	return d
}

func (d *fanoutDeployment) handle(t *testing.T, body []byte) error {
	t.Helper()
	h := Handler{Invocation: setup.Invocation{Getenv: func(k string) string { return d.env[k] }, LogOutput: d.logs}}
	return h.Handle(context.Background(), pubsubmsg.NewEvent("e", "fediops-blocklist", body, time.Now()))
}

func blockedDomains(s *mastosim.Server) []string {
	var out []string
	for _, b := range s.DomainBlocks() {
		out = append(out, b.Domain)
	}
	return out
}

// TestScheduledSyncFansOutWithOneMerge: a tick merges once, shares the merged list in its
// snapshot and publishes one message per destination naming it; each destination's run then
// applies that list without fetching the sources again, and writes into the same snapshot.
func TestScheduledSyncFansOutWithOneMerge(t *testing.T) {
	d := newFanoutDeployment(t, "", "a", "b", "c")
	if err := d.handle(t, []byte(`{}`)); err != nil {
		t.Fatalf("%v\n%s", err, d.logs)
	}
	msgs := d.ps.Messages()
	if len(msgs) != 3 || d.fetches.Load() != 1 {
		t.Fatalf("%d messages, %d fetches; want 3 and 1", len(msgs), d.fetches.Load())
	}
	var snapshot string
	var got []string
	for _, m := range msgs {
		var msg Message
		if _, err := pubsubmsg.Decode(pubsubmsg.NewEvent("x", "t", m.Data, time.Now()), &msg); err != nil {
			t.Fatal(err)
		}
		if snapshot == "" {
			snapshot = msg.Snapshot
		}
		if msg.Snapshot == "" || msg.Snapshot != snapshot || len(msg.Instances) != 1 {
			t.Errorf("message %s", m.Data)
		}
		got = append(got, msg.Instances[0])
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("instances %v", got)
	}
	for n, s := range d.sims {
		if len(s.Requests()) != 0 {
			t.Errorf("the fanning invocation talked to %s", n)
		}
	}
	// Pub/Sub delivers each message to its own invocation.
	for _, m := range msgs {
		if err := d.handle(t, m.Data); err != nil {
			t.Fatalf("%s: %v\n%s", m.Data, err, d.logs)
		}
	}
	if n := d.fetches.Load(); n != 1 {
		t.Errorf("the sources were fetched %d times; the destinations must use the shared list", n)
	}
	for n, s := range d.sims {
		if got := blockedDomains(s); !slices.Equal(got, []string{"bad.example", "spam.example"}) {
			t.Errorf("%s blocks %v (the allowlisted partner.example must stay out)", n, got)
		}
	}
	store, err := archive.NewLocal(d.archive)
	if err != nil {
		t.Fatal(err)
	}
	snaps, err := ListSnapshots(context.Background(), store, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 1 || snaps[0].ID != snapshot || !slices.Equal(snaps[0].Instances, []string{"a", "b", "c"}) {
		t.Errorf("snapshots = %+v, want one (%s) holding a, b and c", snaps, snapshot)
	}
	// A message delivered twice: the second run finds nothing to do.
	if err := d.handle(t, msgs[0].Data); err != nil {
		t.Fatal(err)
	}
	for n, s := range d.sims {
		if len(s.DomainBlocks()) != 2 {
			t.Errorf("%s: %v after a redelivery", n, blockedDomains(s))
		}
	}
}

func TestSyncWithoutFanOut(t *testing.T) {
	for name, tt := range map[string]struct {
		extra string
		env   map[string]string
		body  string
	}{
		"fanout = false":         {extra: "fanout = false"},
		"no topic":               {env: map[string]string{TopicVar: ""}},
		"a message naming hosts": {body: `{"instances":["a","b"]}`},
	} {
		t.Run(name, func(t *testing.T) {
			d := newFanoutDeployment(t, tt.extra, "a", "b")
			for k, v := range tt.env {
				d.env[k] = v
			}
			body := tt.body
			if body == "" {
				body = `{}`
			}
			if err := d.handle(t, []byte(body)); err != nil {
				t.Fatal(err)
			}
			if len(d.ps.Messages()) != 0 {
				t.Errorf("published %d messages", len(d.ps.Messages()))
			}
			for n, s := range d.sims {
				if len(s.DomainBlocks()) != 2 {
					t.Errorf("%s not synced in this invocation: %v", n, blockedDomains(s))
				}
			}
		})
	}
}

// TestSharedSnapshotMessages: a message naming a snapshot that shares nothing, or no
// snapshot id at all, is acknowledged with an ERROR; nothing is applied.
func TestSharedSnapshotMessages(t *testing.T) {
	d := newFanoutDeployment(t, "", "a", "b")
	for _, body := range []string{`{"instances":["a"],"snapshot":"20260101T000000.000000Z-000000-deadbeef"}`, `{"instances":["a"],"snapshot":"../../etc"}`} {
		d.logs.Reset()
		if err := d.handle(t, []byte(body)); err != nil {
			t.Errorf("%s: %v, want acknowledged", body, err)
		}
		if !strings.Contains(d.logs.String(), `"severity":"ERROR"`) {
			t.Errorf("%s: no ERROR:\n%s", body, d.logs)
		}
	}
	if len(d.sims["a"].DomainBlocks()) != 0 {
		t.Error("applied without a shared list")
	}
	store, _ := archive.NewLocal(d.archive)
	if _, err := LoadShared(context.Background(), store, "nope"); !run.IsPermanent(err) {
		t.Errorf("missing snapshot: %v, want permanent", err)
	}
	// The shared list keeps the sources of each domain.
	if err := d.handle(t, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	var msg Message
	_ = json.Unmarshal(d.ps.Messages()[0].Data, &msg)
	mr, err := LoadShared(context.Background(), store, msg.Snapshot)
	if err != nil {
		t.Fatal(err)
	}
	if len(mr.Desired.Blocks) != 2 || !slices.Equal(mr.Desired.Blocks[0].Sources, []string{"list"}) || !mr.Desired.Allowed("www.partner.example") {
		t.Errorf("shared list = %+v", mr.Desired)
	}
}

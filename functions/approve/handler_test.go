package approve

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"google.golang.org/grpc/codes"

	"github.com/fediops/fediops/shared/archive"
	"github.com/fediops/fediops/shared/clock"
	"github.com/fediops/fediops/shared/pubsubmsg"
	"github.com/fediops/fediops/shared/run"
	"github.com/fediops/fediops/shared/setup"
	"github.com/fediops/fediops/shared/testsupport/mastosim"
)

const triageTopic = "projects/test/topics/fediops-triage"

// deployment is what a deployed Approve finds: a configuration naming some simulated
// instances, a local archive, tokens in the environment and a Pub/Sub server (pstest).
type deployment struct {
	sims   map[string]*mastosim.Server
	env    map[string]string
	ps     *pstest.Server
	logs   *bytes.Buffer
	dir    string
	config string
}

func newDeployment(t *testing.T, triage string, names ...string) *deployment {
	t.Helper()
	d := &deployment{sims: map[string]*mastosim.Server{}, logs: &bytes.Buffer{}, dir: t.TempDir()}
	d.ps = pstest.NewServer()
	t.Cleanup(func() { _ = d.ps.Close() })
	if _, err := d.ps.GServer.CreateTopic(context.Background(), &pubsubpb.Topic{Name: triageTopic}); err != nil {
		t.Fatal(err)
	}
	d.env = map[string]string{"FEDIOPS_TIMEOUT": "240s", "FEDIOPS_PUBSUB_ENDPOINT": d.ps.Addr, TopicVar: triageTopic,
		"FEDIOPS_TOKEN": simToken}
	var cfg strings.Builder
	for _, n := range names {
		sim := mastosim.New(mastosim.Options{})
		sim.AddToken(simToken, "admin:read:accounts admin:write:accounts admin:read:email_domain_blocks")
		srv := httptest.NewServer(sim)
		t.Cleanup(srv.Close)
		d.sims[n] = sim
		fmt.Fprintf(&cfg, "[[instance]]\nname = %q\nurl = %q\ntoken = \"env://FEDIOPS_TOKEN\"\n\n", n, srv.URL)
	}
	fmt.Fprintf(&cfg, "[archive]\nurl = %q\n\n%s\n", filepath.Join(d.dir, "archive"), triage)
	d.config = filepath.Join(d.dir, "fediops.toml")
	if err := os.WriteFile(d.config, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	d.env["FEDIOPS_CONFIG"] = d.config
	return d
}

func (d *deployment) handler() Handler {
	return Handler{Invocation: setup.Invocation{Getenv: func(k string) string { return d.env[k] }, LogOutput: d.logs}}
}

func (d *deployment) handle(t *testing.T, body string) error {
	t.Helper()
	return d.handler().Handle(context.Background(), pubsubmsg.NewEvent("e1", "fediops-triage", []byte(body), time.Now()))
}

// published returns the bodies published to the triage topic.
func (d *deployment) published() []string {
	var out []string
	for _, m := range d.ps.Messages() {
		out = append(out, string(m.Data))
	}
	slices.Sort(out)
	return out
}

func (d *deployment) requests() int {
	n := 0
	for _, s := range d.sims {
		n += len(s.Requests())
	}
	return n
}

func TestScheduledRunFansOut(t *testing.T) {
	d := newDeployment(t, "", "alpha", "beta", "gamma")
	if err := d.handle(t, `{}`); err != nil {
		t.Fatal(err)
	}
	want := []string{`{"instances":["alpha"]}`, `{"instances":["beta"]}`, `{"instances":["gamma"]}`}
	if got := d.published(); !slices.Equal(got, want) {
		t.Errorf("published %v, want %v", got, want)
	}
	if n := d.requests(); n != 0 {
		t.Errorf("the fanning invocation sent %d requests to the instances; it only publishes", n)
	}
	if !strings.Contains(d.logs.String(), "triage fanned out") {
		t.Errorf("no log line says so:\n%s", d.logs)
	}
	// Each published message is a valid Approve message naming one instance.
	for _, m := range d.ps.Messages() {
		var msg Message
		if _, err := pubsubmsg.Decode(pubsubmsg.NewEvent("x", "t", m.Data, time.Now()), &msg); err != nil || len(msg.Instances) != 1 {
			t.Errorf("%s: %v", m.Data, err)
		}
	}

	// A dry run stays a dry run in every instance's message.
	d.ps.ClearMessages()
	if err := d.handle(t, `{"dry_run": true}`); err != nil {
		t.Fatal(err)
	}
	if got := d.published(); len(got) != 3 || !strings.Contains(got[0], `"dry_run":true`) {
		t.Errorf("published %v", got)
	}
}

func TestNoFanOut(t *testing.T) {
	tests := []struct {
		name   string
		triage string
		names  []string
		body   string
		env    map[string]string
		log    string
	}{
		{"fanout = false", "[triage]\nfanout = false\n", []string{"a", "b"}, `{}`, nil, ""},
		{"one instance", "", []string{"a"}, `{}`, nil, ""},
		{"a message naming instances", "", []string{"a", "b"}, `{"instances": ["a", "b"]}`, nil, ""},
		{"no topic", "", []string{"a", "b"}, `{}`, map[string]string{TopicVar: ""}, "FEDIOPS_TRIAGE_TOPIC is not set"},
		{"[triage] instances narrows to one", "[triage]\ninstances = [\"b\"]\n", []string{"a", "b"}, `{}`, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDeployment(t, tt.triage, tt.names...)
			for k, v := range tt.env {
				d.env[k] = v
			}
			ids := map[string]string{}
			for n, s := range d.sims {
				ids[n] = s.AddAccount(mastosim.Account{Username: "u", Email: "u@agency.gov", Confirmed: true})
			}
			if err := d.handle(t, tt.body); err != nil {
				t.Fatal(err)
			}
			if got := d.published(); len(got) != 0 {
				t.Errorf("published %v", got)
			}
			for n, s := range d.sims {
				a, _ := s.Account(ids[n])
				inScope := !strings.Contains(tt.triage, "instances") || n == "b"
				if a.Approved != inScope {
					t.Errorf("%s: approved = %v, want %v", n, a.Approved, inScope)
				}
			}
			if tt.log != "" && !strings.Contains(d.logs.String(), tt.log) {
				t.Errorf("log lacks %q:\n%s", tt.log, d.logs)
			}
		})
	}
}

// TestFanOutPublishFailures: an outage is returned (Pub/Sub redelivers the tick); a topic
// that does not exist needs a person: logged at ERROR and acknowledged.
func TestFanOutPublishFailures(t *testing.T) {
	t.Run("outage", func(t *testing.T) {
		d := newDeployment(t, "", "a", "b")
		_ = d.ps.Close()
		d.ps = pstest.NewServer(pstest.WithErrorInjection("Publish", codes.Unavailable, "down"))
		t.Cleanup(func() { _ = d.ps.Close() })
		d.env["FEDIOPS_PUBSUB_ENDPOINT"] = d.ps.Addr
		err := d.handle(t, `{}`)
		if err == nil || run.IsPermanent(err) {
			t.Fatalf("err = %v, want a transient error", err)
		}
		if d.requests() != 0 {
			t.Error("the instances were run after the fan-out failed")
		}
	})
	t.Run("missing topic", func(t *testing.T) {
		d := newDeployment(t, "", "a", "b")
		d.env[TopicVar] = "projects/test/topics/nope"
		if err := d.handle(t, `{}`); err != nil {
			t.Fatalf("err = %v, want acknowledged", err)
		}
		if !strings.Contains(d.logs.String(), `"severity":"ERROR"`) || !strings.Contains(d.logs.String(), "a retry cannot fix this") {
			t.Errorf("no ERROR line:\n%s", d.logs)
		}
	})
	t.Run("malformed topic", func(t *testing.T) {
		d := newDeployment(t, "", "a", "b")
		d.env[TopicVar] = "fediops-triage"
		if err := d.handle(t, `{}`); err != nil {
			t.Fatalf("err = %v, want acknowledged", err)
		}
		if !strings.Contains(d.logs.String(), "not a Pub/Sub topic name") {
			t.Errorf("log:\n%s", d.logs)
		}
	})
}

// TestAccountsMessage: the webhook's message decides its account on the named instance; a
// second delivery finds it decided.
func TestAccountsMessage(t *testing.T) {
	d := newDeployment(t, "", "a", "b")
	id := d.sims["a"].AddAccount(mastosim.Account{Username: "maria", Email: "maria@health.gov", Confirmed: true})
	other := d.sims["a"].AddAccount(mastosim.Account{Username: "tom", Email: "tom@agency.gov", Confirmed: true})
	body := fmt.Sprintf(`{"instances":["a"],"accounts":[%q]}`, id)
	for range 2 {
		if err := d.handle(t, body); err != nil {
			t.Fatal(err)
		}
	}
	if a, _ := d.sims["a"].Account(id); !a.Approved {
		t.Error("maria not approved")
	}
	if a, _ := d.sims["a"].Account(other); a.Approved {
		t.Error("tom was not named, yet approved")
	}
	approvals := 0
	for _, r := range d.sims["a"].Requests() {
		if strings.HasSuffix(r.Path, "/approve") {
			approvals++
		}
	}
	if approvals != 1 {
		t.Errorf("%d approve requests for two deliveries, want 1", approvals)
	}
	if len(d.sims["b"].Requests()) != 0 || len(d.published()) != 0 {
		t.Error("an accounts message touched another instance or fanned out")
	}
}

func TestInvalidAccountsMessagesAreAcknowledged(t *testing.T) {
	for _, body := range []string{
		`{"accounts":["1"]}`,
		`{"instances":["a","b"],"accounts":["1"]}`,
		`{"instances":["a"],"accounts":["../../x"]}`,
		`{"instances":["a"],"accounts":"1"}`,
	} {
		d := newDeployment(t, "", "a", "b")
		if err := d.handle(t, body); err != nil {
			t.Errorf("%s: err = %v, want acknowledged", body, err)
		}
		if !strings.Contains(d.logs.String(), `"severity":"ERROR"`) || d.requests() != 0 {
			t.Errorf("%s: no ERROR line, or requests sent:\n%s", body, d.logs)
		}
	}
}

// TestAccountsMessageWhileLeaseHeld: while another run holds the instance's lease, the
// accounts message is returned for a redelivery (logged as a WARNING, nothing failed); the
// redelivery decides.
func TestAccountsMessageWhileLeaseHeld(t *testing.T) {
	d := newDeployment(t, "", "a")
	id := d.sims["a"].AddAccount(mastosim.Account{Username: "maria", Email: "maria@health.gov", Confirmed: true})
	store, err := archive.NewLocal(filepath.Join(d.dir, "archive"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := run.Start(context.Background(), run.Options{Store: store, Clock: clock.Real{}, Lease: "triage/a", Holder: "scheduled", TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf(`{"instances":["a"],"accounts":[%q]}`, id)
	err = d.handle(t, body)
	if reason, _ := run.ReasonOf(err); err == nil || run.IsPermanent(err) || reason != run.LeaseHeld {
		t.Fatalf("err = %v, want a transient lease-held error", err)
	}
	if strings.Contains(d.logs.String(), `"severity":"ERROR"`) || !strings.Contains(d.logs.String(), "redeliver") {
		t.Errorf("want a WARNING, no ERROR:\n%s", d.logs)
	}
	if err := r.End(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := d.handle(t, body); err != nil {
		t.Fatal(err)
	}
	if a, _ := d.sims["a"].Account(id); !a.Approved {
		t.Error("not approved on redelivery")
	}
}

package e2e

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fediops/fediops/shared/testsupport/fires"
	"github.com/fediops/fediops/shared/testsupport/mastosim"
)

func TestBlocklistSyncDeployedPath(t *testing.T) {
	d := deploy(t, `
[blocklist]
blocklist_url_sources = [ { url = "gs://fediops-config/lists/tier0.csv", name = "tier0" } ]
allowlist_url_sources = [ { url = "gs://fediops-config/lists/allow.csv", name = "allow" } ]
import_fields = ["public_comment"]
initial_import = true
destinations = ["main"]
`)
	d.gcs.Put("fediops-config", "lists/tier0.csv", []byte("domain,severity,public_comment\nbad.example,suspend,spam\nmeh.example,silence,\nfriend.example,suspend,\n"))
	d.gcs.Put("fediops-config", "lists/allow.csv", []byte("domain\nfriend.example\n"))
	d.sim.AddDomainBlock(mastosim.DomainBlock{Domain: "manual.example", Severity: "suspend"})

	if code := publish(t, "BlocklistSync", []byte(`{"dry_run": true}`), time.Now()); code != 200 {
		t.Fatalf("dry run: status %d", code)
	}
	if n := len(d.sim.DomainBlocks()); n != 1 {
		t.Fatalf("dry run changed the instance: %d blocks", n)
	}
	if code := publish(t, "BlocklistSync", []byte(`{}`), time.Now()); code != 200 {
		t.Fatalf("status %d", code)
	}
	got := map[string]string{}
	for _, b := range d.sim.DomainBlocks() {
		got[b.Domain] = b.Severity + " " + b.PrivateComment
	}
	if got["bad.example"] != "suspend fediops: tier0" || got["meh.example"] != "silence fediops: tier0" || got["manual.example"] != "suspend " || len(got) != 3 {
		t.Errorf("blocks = %v", got)
	}
	objs := d.gcs.Objects(t, "fediops-archive", "prod/blocklist/")
	var names []string
	for n, b := range objs {
		names = append(names, n)
		if strings.Contains(string(b), triageToken) {
			t.Errorf("token archived in %s", n)
		}
	}
	for _, want := range []string{"/sources.json", "blocklist/objects/", "/report.json", "/main/before.json", "/main/plan.json", "/main/results.json", "/main/state.json", "blocklist/state/main.json"} {
		found := false
		for _, n := range names {
			found = found || strings.Contains(n, want)
		}
		if !found {
			t.Errorf("nothing archived like %s: %v", want, names)
		}
	}
	if !hasLog(logLines(t), "INFO", "blocklist main: 2 created") {
		t.Errorf("no summary line:\n%s", stdout.String())
	}
	// Two runs (the dry run and this one) over the same two sources: each source and the
	// merged list stored once.
	objects := func() int { return len(d.gcs.Objects(t, "fediops-archive", "prod/blocklist/objects/")) }
	if n := objects(); n != 3 {
		t.Errorf("%d objects after two runs over two unchanged sources, want 3", n)
	}

	// A change of two thirds of the instance's blocks is held back (max_change_pct = 10);
	// the ERROR line names the plan; a message applies it.
	d.gcs.Put("fediops-config", "lists/tier0.csv", []byte("domain,severity,public_comment\nbad.example,suspend,spam\nother.example,suspend,\nfriend.example,suspend,\n"))
	resetLogs(t)
	if code := publish(t, "BlocklistSync", nil, time.Now()); code != 200 {
		t.Fatalf("status %d", code)
	}
	var planID string
	for _, l := range logLines(t) {
		if id, ok := l["held_plan"].(string); ok && id != "" && l["severity"] == "ERROR" {
			planID = id
		}
	}
	if planID == "" || len(d.sim.DomainBlocks()) != 3 {
		t.Fatalf("plan not held (%q):\n%s", planID, stdout.String())
	}
	if n := objects(); n != 5 {
		t.Errorf("%d objects after one source changed, want 5 (its new copy, a new merged list)", n)
	}
	if code := publish(t, "BlocklistSync", []byte(fmt.Sprintf(`{"apply_plan": %q}`, planID)), time.Now()); code != 200 {
		t.Fatalf("apply: status %d", code)
	}
	got = map[string]string{}
	for _, b := range d.sim.DomainBlocks() {
		got[b.Domain] = b.Severity
	}
	if got["other.example"] != "suspend" || got["bad.example"] != "suspend" || got["manual.example"] != "suspend" || len(got) != 3 {
		t.Errorf("after applying the held plan: %v", got)
	}
	if strings.Contains(stdout.String(), triageToken) {
		t.Error("token in the logs")
	}
}

// A FIRES dataset as the deployed function's source: the first tick reads the snapshot,
// the next only the changes (a retraction), the state kept in the archive between them.
func TestBlocklistFIRESDeployedPath(t *testing.T) {
	fs := fires.New(fires.Options{})
	srv := httptest.NewServer(fs)
	t.Cleanup(srv.Close)
	fs.Base = srv.URL
	ds := fs.AddDataset("Community")
	spam := fs.AddLabel("Spam")
	ds.Recommend("spam.example", "drop", spam)
	ds.Recommend("meh.example", "filter")
	d := deploy(t, fmt.Sprintf(`
[blocklist]
blocklist_url_sources = [ { url = %q, format = "fires", name = "community" } ]
import_fields = ["public_comment"]
initial_import = true
max_removals = 5
max_change_pct = 100
destinations = ["main"]
`, ds.URL()))
	blocks := func() map[string]string {
		got := map[string]string{}
		for _, b := range d.sim.DomainBlocks() {
			got[b.Domain] = b.Severity + " " + b.PublicComment + " | " + b.PrivateComment
		}
		return got
	}
	if code := publish(t, "BlocklistSync", []byte(`{}`), time.Now()); code != 200 {
		t.Fatalf("status %d", code)
	}
	if got := blocks(); got["spam.example"] != "suspend Spam | fediops: community" || got["meh.example"] != "silence  | fediops: community" || len(got) != 2 {
		t.Fatalf("blocks = %v", got)
	}
	ds.Retract("meh.example")
	before := len(fs.Requests())
	if code := publish(t, "BlocklistSync", []byte(`{}`), time.Now()); code != 200 {
		t.Fatalf("status %d", code)
	}
	if got := blocks(); len(got) != 1 || got["spam.example"] == "" {
		t.Fatalf("after the retraction: %v", got)
	}
	for _, r := range fs.Requests()[before:] {
		if strings.Contains(r, "/snapshot") {
			t.Errorf("the second tick read the snapshot: %v", fs.Requests()[before:])
		}
	}
}

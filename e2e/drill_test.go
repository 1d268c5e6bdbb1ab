package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/fediops/fediops/shared/testsupport/backupfake"
	"github.com/fediops/fediops/shared/testsupport/pgserver"
)

// TestDrillDeployedPath: the scheduled drill messages through the Functions Framework, in real
// time: an advance with no drill in progress returns at once; the monthly start clones; later
// advances verify the data on a real PostgreSQL (standing in for the clone), delete the clone
// and archive the report.
func TestDrillDeployedPath(t *testing.T) {
	now := time.Now()
	db := pgserver.StartT(t)
	ctx := context.Background()
	if err := db.CreateDatabase(ctx, "mastodon_production"); err != nil {
		t.Fatal(err)
	}
	if err := db.SeedMastodon(ctx, "mastodon_production", pgserver.DefaultSample(now.Add(-12*time.Minute))); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateReader(ctx, "fediops_drill", "e2e-drill-password-8c1f"); err != nil {
		t.Fatal(err)
	}
	env := backupfake.Healthy(now)
	env.SQL[0].Drill = backupfake.Quick()
	apis := backupfake.Start(env)
	t.Cleanup(apis.Close)
	cfg := apis.Config()
	cfg["cloudsql"] = []map[string]any{{
		"project": backupfake.HealthyProject, "instance": backupfake.SampleInstance,
		"drill": true, "drill_user": "fediops_drill", "drill_address": db.Addr,
		"drill_password": "sm://projects/test/secrets/drill-password/versions/latest",
	}}
	var b bytes.Buffer
	if err := toml.NewEncoder(&b).Encode(struct {
		Backup map[string]any `toml:"backup"`
	}{cfg}); err != nil {
		t.Fatal(err)
	}
	d := deploy(t, b.String())
	d.sm.Set("projects/test/secrets/drill-password", []byte("e2e-drill-password-8c1f"))
	// A short deployed timeout: an invocation cannot wait 30 s for the clone, so the drill
	// moves on over several invocations, as it does with real clones of several minutes.
	t.Setenv("FEDIOPS_TIMEOUT", "30s")

	if code := publish(t, "BackupAudit", []byte(`{"drill": "advance"}`), time.Now()); code != 200 {
		t.Fatalf("idle advance: status %d", code)
	}
	if n := len(apis.Requests()); n != 0 {
		t.Errorf("an idle advance sent %d API requests", n)
	}
	if code := publish(t, "BackupAudit", []byte(`{"drill": "start"}`), time.Now()); code != 200 {
		t.Fatalf("start: status %d", code)
	}
	if len(apis.Clones()) != 1 {
		t.Fatalf("clones: %+v", apis.Clones())
	}
	var report map[string][]byte
	for i := 0; i < 10 && len(report) == 0; i++ {
		time.Sleep(time.Second)
		if code := publish(t, "BackupAudit", []byte(`{"drill": "advance"}`), time.Now()); code != 200 {
			t.Fatalf("advance %d: status %d", i, code)
		}
		report = d.gcs.Objects(t, "fediops-archive", "prod/backup/drill/reports/")
	}
	if len(report) != 1 {
		t.Fatalf("reports archived: %d\nlogs: %v", len(report), logLines(t))
	}
	var rep struct {
		Checks  []struct{ ID, Status, Observed string }
		Summary struct{ Pass, Warn, Fail int }
		Drill   struct{ Phase, Clone string }
	}
	for name, data := range report {
		if err := json.Unmarshal(data, &rep); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), "e2e-drill-password-8c1f") {
			t.Errorf("the database password is in %s", name)
		}
	}
	if rep.Summary.Pass != 5 || rep.Drill.Phase != "done" {
		t.Errorf("report: %+v", rep)
	}
	for _, n := range apis.Instances(backupfake.HealthyProject) {
		if strings.HasPrefix(n, "fediops-drill-") {
			t.Errorf("clone %s left behind", n)
		}
	}
	state := d.gcs.Objects(t, "fediops-archive", "prod/backup/drill/state/")
	if len(state) != 1 {
		t.Errorf("state objects: %d", len(state))
	}
	lines := logLines(t)
	if !hasLog(lines, "INFO", "restore drill of fediops-healthy/mastodon-db") {
		t.Errorf("no drill summary in the logs")
	}
	for _, l := range lines {
		if strings.Contains(l["message"].(string), "e2e-drill-password-8c1f") {
			t.Errorf("password logged: %v", l)
		}
	}
	// A bogus action is refused, logged and acknowledged.
	resetLogs(t)
	if code := publish(t, "BackupAudit", []byte(`{"drill": "now"}`), time.Now()); code != 200 || !hasLog(logLines(t), "ERROR", `unknown drill action "now"`) {
		t.Errorf("bogus action: status %d", code)
	}
}

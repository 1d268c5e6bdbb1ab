package backupaudit_test

import (
	"context"
	"encoding/json"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/fediops/fediops/functions/backupaudit"
	"github.com/fediops/fediops/shared/clock"
	"github.com/fediops/fediops/shared/testsupport/backupfake"
)

func keys(m map[string]any) []string {
	var k []string
	for key := range m {
		k = append(k, key)
	}
	sort.Strings(k)
	return k
}

func TestJSONShape(t *testing.T) {
	rep, _ := audit(t, backupfake.Broken(now), backupaudit.Thresholds{})
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if got := keys(doc); !reflect.DeepEqual(got, []string{"checks", "summary"}) {
		t.Errorf("top-level keys %v", got)
	}
	checks := doc["checks"].([]any)
	if len(checks) == 0 {
		t.Fatal("no checks")
	}
	for _, c := range checks {
		if got := keys(c.(map[string]any)); !reflect.DeepEqual(got, []string{"expected", "hint", "id", "observed", "status", "target"}) {
			t.Errorf("check keys %v", got)
		}
	}
	sum := doc["summary"].(map[string]any)
	if got := keys(sum); !reflect.DeepEqual(got, []string{"fail", "pass", "warn"}) {
		t.Errorf("summary keys %v", got)
	}
	if int(sum["pass"].(float64)) != rep.Summary.Pass || int(sum["fail"].(float64)) != rep.Summary.Fail || int(sum["warn"].(float64)) != rep.Summary.Warn {
		t.Errorf("summary %v vs %+v", sum, rep.Summary)
	}

	// Round trip.
	var back backupaudit.Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, rep) {
		t.Errorf("round trip changed the report")
	}

	// An empty report has an empty list, not null.
	b, _ = json.Marshal(backupaudit.NewReport(nil))
	if string(b) != `{"checks":[],"summary":{"pass":0,"warn":0,"fail":0}}` {
		t.Errorf("empty report = %s", b)
	}
}

func TestTable(t *testing.T) {
	rep := backupaudit.NewReport([]backupaudit.Check{
		{ID: "cloudsql.pitr_enabled", Target: "p/db", Status: backupaudit.Fail, Observed: "point-in-time\trecovery\ndisabled",
			Expected: "point-in-time recovery enabled", Hint: "gcloud sql instances patch db --project=p --enable-point-in-time-recovery"},
		{ID: "gcs.versioning", Target: "gs://media", Status: backupaudit.Warn, Observed: "object versioning disabled", Expected: "object versioning enabled", Hint: "gcloud storage buckets update gs://media --versioning"},
		{ID: "gke.retention", Target: "p/l/plan", Status: backupaudit.Pass, Observed: "backups kept 7 days", Expected: "backups kept at least 7 days"},
	})
	header, rows := backupaudit.Table(rep)
	if !reflect.DeepEqual(header, []string{"CHECK", "TARGET", "STATUS", "OBSERVED", "EXPECTED", "HINT"}) {
		t.Errorf("header %q", header)
	}
	if len(rows) != 3 {
		t.Fatalf("rows = %q", rows)
	}
	for i, want := range []string{"FAIL", "WARN", "PASS"} {
		if len(rows[i]) != len(header) || rows[i][2] != want {
			t.Errorf("row %d = %q, want status %s", i, rows[i], want)
		}
	}
	if rows[0][3] != "point-in-time recovery disabled" {
		t.Errorf("tabs/newlines not flattened: %q", rows[0][3])
	}
	if rows[2][5] != "-" || rows[0][5] != rep.Checks[0].Hint {
		t.Errorf("hints: %q, %q", rows[0][5], rows[2][5])
	}
	if got := backupaudit.SummaryLine(rep); got != "FAIL: 1 pass, 1 warn, 1 fail" {
		t.Errorf("summary line %q", got)
	}
}

// TestSampleEnvironments: the demo's healthy environment passes everything; the broken one
// shows each typical problem.
func TestSampleEnvironments(t *testing.T) {
	rep, _ := audit(t, backupfake.Healthy(now), backupaudit.Thresholds{})
	if rep.Status() != backupaudit.Pass || rep.Summary.Pass != len(backupaudit.CheckIDs()) {
		t.Errorf("healthy sample: %+v", rep.Summary)
		for _, c := range rep.Checks {
			if c.Status != backupaudit.Pass {
				t.Logf("%s %s %s", c.ID, c.Status, c.Observed)
			}
		}
	}

	rep, _ = audit(t, backupfake.Broken(now), backupaudit.Thresholds{})
	_, rows := backupaudit.Table(rep)
	t.Logf("broken sample:\n%q", rows)
	sql, media, forbidden, gke := "fediops-broken/mastodon-db", "gs://broken-mastodon-media", "gs://broken-mastodon-backups", "fediops-broken/europe-west1/mastodon-nightly"
	want := []struct {
		id, target string
		status     backupaudit.Status
	}{
		{backupaudit.SQLBackupsEnabled, sql, backupaudit.Pass},
		{backupaudit.SQLRetainedBackups, sql, backupaudit.Fail},
		{backupaudit.SQLPITREnabled, sql, backupaudit.Fail},
		{backupaudit.SQLLogRetention, sql, backupaudit.Fail},
		{backupaudit.SQLLastBackupFresh, sql, backupaudit.Fail},
		{backupaudit.SQLNoFailedBackups, sql, backupaudit.Warn},
		{backupaudit.SQLRecoveryPointFresh, sql, backupaudit.Fail},
		{backupaudit.GCSGeoRedundant, media, backupaudit.Fail},
		{backupaudit.GCSSoftDelete, media, backupaudit.Fail},
		{backupaudit.GCSVersioning, media, backupaudit.Warn},
		{backupaudit.GCSGeoRedundant, forbidden, backupaudit.Fail},
		{backupaudit.GCSSoftDelete, forbidden, backupaudit.Fail},
		{backupaudit.GCSVersioning, forbidden, backupaudit.Fail},
		{backupaudit.GKEPlanActive, gke, backupaudit.Fail},
		{backupaudit.GKERetention, gke, backupaudit.Fail},
		{backupaudit.GKERPORisk, gke, backupaudit.Warn},
		{backupaudit.GKELeftoverPods, gke, backupaudit.Warn},
		{backupaudit.GKELastBackupFresh, gke, backupaudit.Fail},
		{backupaudit.GKENoFailedBackups, gke, backupaudit.Warn},
		{backupaudit.GKEBackupGrowth, gke, backupaudit.Warn},
	}
	if len(rep.Checks) != len(want) {
		t.Errorf("broken sample has %d checks, want %d", len(rep.Checks), len(want))
	}
	for _, w := range want {
		c, ok := rep.Find(w.id, w.target)
		if !ok {
			t.Errorf("missing %s on %s", w.id, w.target)
			continue
		}
		if c.Status != w.status {
			t.Errorf("%s on %s = %s (%s), want %s", w.id, w.target, c.Status, c.Observed, w.status)
		}
	}
	if c, _ := rep.Find(backupaudit.GCSGeoRedundant, forbidden); !strings.Contains(c.Observed, backupaudit.RoleLegacyBucketReader) {
		t.Errorf("forbidden bucket does not name the role: %q", c.Observed)
	}
	if rep.Status() != backupaudit.Fail {
		t.Errorf("broken sample status %s", rep.Status())
	}
}

// TestRunFromConfig: the handler/CLI entry point, from a [backup] table.
func TestRunFromConfig(t *testing.T) {
	s := backupfake.Start(backupfake.Merge(backupfake.Healthy(now), backupfake.Broken(now)))
	t.Cleanup(s.Close)
	cfg := section(t, s)
	rep := backupaudit.Run(context.Background(), clock.NewFake(now), cfg)
	if n := len(rep.Checks); n != len(backupaudit.CheckIDs())+20 {
		t.Errorf("%d checks", n)
	}
	if c, _ := rep.Find(backupaudit.SQLPITREnabled, "fediops-healthy/mastodon-db"); c.Status != backupaudit.Pass {
		t.Errorf("healthy PITR: %+v", c)
	}
	if c, _ := rep.Find(backupaudit.SQLPITREnabled, "fediops-broken/mastodon-db"); c.Status != backupaudit.Fail {
		t.Errorf("broken PITR: %+v", c)
	}
	for _, r := range s.Requests() {
		if r.Auth {
			t.Errorf("credentials sent to loopback endpoint: %+v", r)
		}
	}
}

func TestThresholdDefaults(t *testing.T) {
	got := backupaudit.Thresholds{}.WithDefaults()
	if got != backupaudit.DefaultThresholds() {
		t.Errorf("zero thresholds → %+v", got)
	}
	d := backupaudit.DefaultThresholds()
	if d.MinRetainedBackups != 7 || d.MinLogRetentionDays != 7 || d.MaxBackupAge.Hours() != 26 ||
		d.FailedWindow.Hours() != 168 || d.MaxRecoveryPointAge.Minutes() != 15 || d.MinSoftDeleteDays != 7 ||
		d.MinGKERetentionDays != 7 || d.MaxGrowthPct != 50 || d.GrowthWindow != 7 {
		t.Errorf("defaults %+v", d)
	}
	custom := backupaudit.Thresholds{MinRetainedBackups: 14, MaxGrowthPct: 25}.WithDefaults()
	if custom.MinRetainedBackups != 14 || custom.MaxGrowthPct != 25 || custom.GrowthWindow != 7 {
		t.Errorf("custom %+v", custom)
	}
}

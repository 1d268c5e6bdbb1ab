package e2e

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/fediops/fediops/shared/testsupport/backupfake"
)

func TestBackupAuditDeployedPath(t *testing.T) {
	now := time.Now()
	apis := backupfake.Start(backupfake.Merge(backupfake.Healthy(now), backupfake.Broken(now)))
	t.Cleanup(apis.Close)
	var b bytes.Buffer
	if err := toml.NewEncoder(&b).Encode(struct {
		Backup map[string]any `toml:"backup"`
	}{apis.Config()}); err != nil {
		t.Fatal(err)
	}
	d := deploy(t, b.String())
	if code := publish(t, "BackupAudit", []byte(`{}`), now); code != 200 {
		t.Fatalf("status %d", code)
	}
	objs := d.gcs.Objects(t, "fediops-archive", "prod/backup/")
	if len(objs) != 1 {
		t.Fatalf("reports archived: %d", len(objs))
	}
	var report struct {
		Checks  []struct{ ID, Target, Status string }
		Summary struct{ Pass, Warn, Fail int }
	}
	for _, data := range objs {
		if err := json.Unmarshal(data, &report); err != nil {
			t.Fatal(err)
		}
	}
	if report.Summary.Pass == 0 || report.Summary.Fail == 0 || report.Summary.Warn == 0 {
		t.Errorf("summary = %+v", report.Summary)
	}
	lines := logLines(t)
	fails, warns := 0, 0
	for _, l := range lines {
		if l["function"] != "backupaudit" || l["check"] == nil {
			continue
		}
		switch l["severity"] {
		case "ERROR":
			fails++
		case "WARNING":
			warns++
		}
	}
	if fails != report.Summary.Fail || warns != report.Summary.Warn {
		t.Errorf("logged %d ERROR and %d WARNING check lines, report has %d fail and %d warn", fails, warns, report.Summary.Fail, report.Summary.Warn)
	}
	if !hasLog(lines, "ERROR", "backup audit:") {
		t.Error("no summary line at ERROR")
	}
	// An unknown option is refused, like for every function.
	if code := publish(t, "BackupAudit", []byte(`{"dry_run": true}`), now); code != 200 || !hasLog(logLines(t), "ERROR", "invalid Pub/Sub message") {
		t.Errorf("unknown option: status %d", code)
	}
}

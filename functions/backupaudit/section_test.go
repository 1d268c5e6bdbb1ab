package backupaudit_test

import (
	"strings"
	"testing"
	"time"

	"github.com/fediops/fediops/functions/backupaudit"
	"github.com/fediops/fediops/shared/config"
)

func loadBackup(t *testing.T, body string) (*backupaudit.Section, error) {
	t.Helper()
	c, err := config.Parse("fediops.toml", []byte("[archive]\nurl = \"/tmp/unused\"\n"+body))
	if err != nil {
		return nil, err
	}
	return backupaudit.LoadSection(c)
}

func TestDrillAndCleanupKeys(t *testing.T) {
	b, err := loadBackup(t, `
[[backup.cloudsql]]
project = "my-project"
instance = "mastodon-db"
drill = true
drill_user = "fediops-backupaudit@my-project.iam"

[[backup.cloudsql]]
project = "my-project"
instance = "other-db"

[[backup.gke]]
project = "my-project"
location = "europe-west1"
plan = "mastodon-nightly"
delete_leftover_pods_older_than = "72h"
include_succeeded = true
`)
	if err != nil {
		t.Fatal(err)
	}
	drills := backupaudit.DrillTargetsFrom(b)
	if len(drills) != 1 {
		t.Fatalf("drill targets: %+v", drills)
	}
	d := drills[0]
	if d.MaxHours != 3 || d.Database != "mastodon_production" || d.MaxDataAge != 24*time.Hour || d.PasswordRef != "" || d.Tier != "" {
		t.Errorf("defaults: %+v", d)
	}
	g := backupaudit.TargetsFrom(b).GKE[0].Cleanup
	if g.OlderThan != 72*time.Hour || !g.IncludeSucceeded || g.DryRun {
		t.Errorf("cleanup: %+v", g)
	}

	for _, tt := range []struct{ body, want string }{
		{"drill = true", "drill_user: is required with drill = true"},
		{"drill_tier = \"db-g1-small\"", "drill_tier: is set but drill is not true"},
		{"drill = true\ndrill_user = \"x@p.iam.gserviceaccount.com\"", `use "x@p.iam"`},
		{"drill = true\ndrill_user = \"u\"\ndrill_max_hours = 48", "drill_max_hours: is 48"},
		{"drill = true\ndrill_user = \"u\"\ndrill_max_hours = -1", "drill_max_hours: must not be negative"},
		{"drill = true\ndrill_user = \"u\"\ndrill_tier = \"n1-standard-1\"", "is not a Cloud SQL machine type"},
		{"drill = true\ndrill_user = \"u\"\ndrill_password = \"hunter2\"", "drill_password: must be a secret reference"},
		{"drill = true\ndrill_user = \"u\"\ndrill_ip_type = \"ipv6\"", "use public, private or psc"},
		{"drill = true\ndrill_user = \"u\"\ndrill_schema_version = \"2025_12_17_091936\"", "14 digits"},
		{"drill = true\ndrill_user = \"u\"\ndrill_address = \"10.0.0.5:5432\"", "only a loopback address"},
		{"drill = true\ndrill_user = \"u\"\ndrill_database = \"mastodon production\"", "is not a PostgreSQL database name"},
		{"drill = true\ndrill_user = \"u\"\ndrill_max_data_age = \"-1h\"", "drill_max_data_age: must not be negative"},
	} {
		_, err := loadBackup(t, "[[backup.cloudsql]]\nproject = \"my-project\"\ninstance = \"mastodon-db\"\n"+tt.body+"\n")
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.body, err, tt.want)
		}
	}
	long := strings.Repeat("a", 75)
	if _, err := loadBackup(t, "[[backup.cloudsql]]\nproject = \"my-project\"\ninstance = \""+long+"\"\ndrill = true\ndrill_user = \"u\"\n"); err == nil ||
		!strings.Contains(err.Error(), "too long for a drill") {
		t.Errorf("long instance name: %v", err)
	}
	for _, tt := range []struct{ body, want string }{
		{`delete_leftover_pods_older_than = "10m"`, "use at least 1h0m0s"},
		{`delete_leftover_pods_older_than = "-72h"`, "must not be negative"},
		{`include_succeeded = true`, "has no effect without delete_leftover_pods_older_than"},
	} {
		_, err := loadBackup(t, "[[backup.gke]]\nproject = \"my-project\"\nlocation = \"europe-west1\"\nplan = \"p\"\n"+tt.body+"\n")
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.body, err, tt.want)
		}
	}
	if _, err := loadBackup(t, "[backup]\ncontainer_endpoint = \"http://10.1.2.3\"\nleftover_pods_min_age = \"-1s\"\n"); err == nil ||
		!strings.Contains(err.Error(), "container_endpoint") || !strings.Contains(err.Error(), "leftover_pods_min_age") {
		t.Errorf("endpoint and min age: %v", err)
	}
}

package infra

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/fediops/fediops/functions/backupaudit"
	"github.com/fediops/fediops/shared/gcpbackup"
)

// Roles that carry a permission which changes, opens or removes a Cloud SQL instance.
// Predefined roles are listed by what the Cloud SQL IAM roles page says they hold (admin,
// editor and owner include delete; client includes connect; instanceUser includes login).
var sqlChanging = map[string][]string{
	"cloudsql.instances.delete":  {"roles/cloudsql.admin", "roles/owner", "roles/editor"},
	"cloudsql.instances.update":  {"roles/cloudsql.admin", "roles/cloudsql.editor", "roles/owner", "roles/editor"},
	"cloudsql.instances.connect": {"roles/cloudsql.client", "roles/cloudsql.admin", "roles/cloudsql.editor", "roles/owner", "roles/editor"},
	"cloudsql.instances.login":   {"roles/cloudsql.instanceUser", "roles/cloudsql.admin", "roles/owner"},
}

// TestDrillDeletesOnlyItsClones: every grant that may delete, change, connect to or log in
// to a Cloud SQL instance carries an IAM condition that limits it to instances whose name
// starts with the drill's prefix — the same prefix the code refuses to leave
// (gcpbackup.DrillPrefix) — and nothing in the condition widens it again.
func TestDrillDeletesOnlyItsClones(t *testing.T) {
	e := newEvaluator(loadModule(t), symbolicVar)
	want := `resource.type == "sqladmin.googleapis.com/Instance" && resource.name.startsWith("projects/var.project_id/instances/` + gcpbackup.DrillPrefix + `")`
	seen := map[string]bool{}
	for _, g := range grants(t, e) {
		for perm, predefined := range sqlChanging {
			if !strings.Contains(g.Role, perm) && !slices.Contains(predefined, g.Role) {
				continue
			}
			seen[perm] = true
			if g.Cond != want {
				t.Errorf("%s grants %s (%s) under condition %q, want exactly %q", g.Where, perm, g.Role, g.Cond, want)
			}
			if g.Account != "backupaudit" {
				t.Errorf("%s grants %s to %s", g.Where, perm, g.Account)
			}
		}
	}
	for perm := range sqlChanging {
		if !seen[perm] {
			t.Errorf("no grant of %s: the drill needs it (under the prefix condition)", perm)
		}
	}
	if !strings.HasPrefix(gcpbackup.DrillPrefix, "fediops-drill-") || !strings.HasSuffix(gcpbackup.DrillPrefix, "-") {
		t.Errorf("DrillPrefix %q must end the word: a prefix like fediops-drill would match fediops-drillbit-db", gcpbackup.DrillPrefix)
	}
	// The clone permission is granted on the listed source instances by exact name, never
	// on a prefix or the whole project.
	clone := regexp.MustCompile(`^resource\.type == "sqladmin\.googleapis\.com/Instance" && resource\.name == "projects/var\.project_id/instances/\*"$`)
	for _, g := range grants(t, e) {
		if strings.Contains(g.Role, "cloudsql.instances.clone") && !clone.MatchString(g.Cond) {
			t.Errorf("%s grants clone under %q", g.Where, g.Cond)
		}
	}
}

// TestDrillSchedules: with drill_instances set, two scheduler jobs publish the drill's
// messages to the backup audit's topic, messages the function accepts; without, none exist.
func TestDrillSchedules(t *testing.T) {
	m := loadModule(t)
	on := newEvaluator(m, defaultsVar(map[string]cty.Value{
		"project_id": cty.StringVal("fediops-prod"), "drill_instances": cty.SetVal([]cty.Value{cty.StringVal("mastodon-db")}),
		"functions_deployed": cty.True,
	}))
	job := m.resources["google_cloud_scheduler_job.drill"]
	if job == nil {
		t.Fatal("no google_cloud_scheduler_job.drill")
	}
	got := map[string]string{}
	for _, in := range on.instances["google_cloud_scheduler_job.drill"] {
		ctx := on.in(in)
		target := child(job, "pubsub_target")
		if topic := mustStr(t, on, ctx, target, "topic_name"); topic != "google_pubsub_topic.function[backupaudit]" {
			t.Errorf("%s publishes to %s", in.key, topic)
		}
		data, err := base64.StdEncoding.DecodeString(mustStr(t, on, ctx, target, "data"))
		if err != nil {
			t.Fatal(err)
		}
		var msg backupaudit.Message
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&msg); err != nil || msg.Drill != in.key {
			t.Errorf("%s publishes %s (%v)", in.key, data, err)
		}
		got[in.key] = mustStr(t, on, ctx, job, "schedule")
		if paused, ok := on.value(ctx, attr(job, "paused").Expr); !ok || paused.True() {
			t.Errorf("%s paused with functions_deployed = true", in.key)
		}
	}
	if got["advance"] != "*/10 * * * *" || got["start"] != "5 4 1 * *" || len(got) != 2 {
		t.Errorf("drill jobs %v, want advance every 10 minutes and a monthly start", got)
	}
	off := newEvaluator(m, defaultsVar(map[string]cty.Value{"project_id": cty.StringVal("fediops-prod")}))
	for _, addr := range []string{"google_cloud_scheduler_job.drill", "google_project_iam_member.drill_cleanup", "google_project_iam_member.drill_connect",
		"google_project_iam_member.drill_login", "google_project_iam_member.drill_clone", "google_project_iam_member.pod_cleanup"} {
		if n := len(off.instances[addr]); n != 0 {
			t.Errorf("%s exists %d time(s) with the defaults; it must wait for drill_instances / leftover_pod_cleanup", addr, n)
		}
	}
	for _, in := range on.instances["google_project_iam_member.drill_clone"] {
		cond := mustStr(t, on, on.in(in), child(m.resources["google_project_iam_member.drill_clone"], "condition"), "expression")
		if cond != `resource.type == "sqladmin.googleapis.com/Instance" && resource.name == "projects/fediops-prod/instances/mastodon-db"` {
			t.Errorf("clone grant for %s: %s", in.key, cond)
		}
	}
}

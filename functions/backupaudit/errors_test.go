package backupaudit_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fediops/fediops/functions/backupaudit"
	"github.com/fediops/fediops/shared/clock"
	"github.com/fediops/fediops/shared/gcpbackup"
	"github.com/fediops/fediops/shared/testsupport/backupfake"
)

// apiCall is one API request of the audit and the checks that depend on it.
type apiCall struct {
	name     string
	set      func(*backupfake.Env, backupfake.Fault)
	ids      []string
	role     string // named on 403
	resource string // named on 404
}

func apiCalls() []apiCall {
	sqlRes := "Cloud SQL instance fediops-healthy/mastodon-db"
	plan := "backup plan projects/fediops-healthy/locations/europe-west1/backupPlans/mastodon-nightly"
	return []apiCall{
		{"sqladmin instances.get",
			func(e *backupfake.Env, f backupfake.Fault) { e.SQL[0].InstanceFault = f },
			[]string{backupaudit.SQLBackupsEnabled, backupaudit.SQLRetainedBackups, backupaudit.SQLPITREnabled, backupaudit.SQLLogRetention},
			backupaudit.RoleCloudSQLViewer, sqlRes},
		{"sqladmin backupRuns.list",
			func(e *backupfake.Env, f backupfake.Fault) { e.SQL[0].RunsFault = f },
			[]string{backupaudit.SQLLastBackupFresh, backupaudit.SQLNoFailedBackups},
			backupaudit.RoleCloudSQLViewer, sqlRes},
		{"sqladmin getLatestRecoveryTime",
			func(e *backupfake.Env, f backupfake.Fault) { e.SQL[0].RecoveryFault = f },
			[]string{backupaudit.SQLRecoveryPointFresh},
			backupaudit.RoleCloudSQLViewer, sqlRes},
		{"storage buckets.get",
			func(e *backupfake.Env, f backupfake.Fault) { e.Buckets[0].Fault = f },
			[]string{backupaudit.GCSGeoRedundant, backupaudit.GCSSoftDelete, backupaudit.GCSVersioning},
			backupaudit.RoleLegacyBucketReader, "bucket gs://healthy-mastodon-media"},
		{"gkebackup backupPlans.get",
			func(e *backupfake.Env, f backupfake.Fault) { e.GKE[0].PlanFault = f },
			// Without the plan there is no scope or cluster for the leftover pods either.
			[]string{backupaudit.GKEPlanActive, backupaudit.GKERetention, backupaudit.GKERPORisk, backupaudit.GKELeftoverPods},
			backupaudit.RoleGKEBackupViewer, plan},
		{"gkebackup backups.list",
			func(e *backupfake.Env, f backupfake.Fault) { e.GKE[0].BackupsFault = f },
			[]string{backupaudit.GKELastBackupFresh, backupaudit.GKENoFailedBackups, backupaudit.GKEBackupGrowth},
			backupaudit.RoleGKEBackupViewer, plan},
		{"container clusters.get",
			func(e *backupfake.Env, f backupfake.Fault) { e.Clusters[0].ClusterFault = f },
			[]string{backupaudit.GKELeftoverPods},
			backupaudit.RoleContainerViewer, "cluster projects/fediops-healthy/locations/europe-west1/clusters/mastodon"},
	}
}

// TestAPIFailuresFailOnlyTheirChecks: 403, 404, 500, 503, malformed JSON and a hanging
// server on each API call fail exactly the checks that needed the answer, say why, and let
// every other check run.
func TestAPIFailuresFailOnlyTheirChecks(t *testing.T) {
	for _, call := range apiCalls() {
		for _, f := range backupfake.Faults() {
			t.Run(call.name+"/"+f.String(), func(t *testing.T) {
				env := backupfake.Healthy(now)
				call.set(&env, f)
				begin := time.Now()
				rep, _ := audit(t, env, backupaudit.Thresholds{})
				if took := time.Since(begin); took > 3*time.Second {
					t.Errorf("audit took %s", took)
				}
				checks := byID(t, rep)
				failing := map[string]bool{}
				for _, id := range call.ids {
					failing[id] = true
				}
				for _, id := range backupaudit.CheckIDs() {
					c := checks[id]
					if !failing[id] {
						if c.Status != backupaudit.Pass {
							t.Errorf("%s = %s (%s), want pass: other checks must still run", id, c.Status, c.Observed)
						}
						continue
					}
					if c.Status != backupaudit.Fail {
						t.Errorf("%s = %s, want fail", id, c.Status)
					}
					if c.Hint == "" || c.Expected == "" {
						t.Errorf("%s lacks hint or expected: %+v", id, c)
					}
					var want []string
					switch f {
					case backupfake.Forbidden:
						want = []string{"permission denied", "HTTP 403", call.role, call.resource}
					case backupfake.NotFound:
						want = []string{call.resource + " not found", "HTTP 404"}
					case backupfake.Internal:
						want = []string{"could not read", "HTTP 500"}
					case backupfake.Unavailable:
						want = []string{"could not read", "HTTP 503"}
					case backupfake.Malformed:
						want = []string{"could not read", "malformed"}
					case backupfake.Hang:
						want = []string{"could not read", "timeout", requestTimeout.String()}
					}
					for _, w := range want {
						if !strings.Contains(c.Observed, w) {
							t.Errorf("%s observed %q, want it to contain %q", id, c.Observed, w)
						}
					}
					if f == backupfake.Forbidden && !strings.Contains(c.Hint, "--role="+call.role) {
						t.Errorf("%s hint %q does not grant %s", id, c.Hint, call.role)
					}
				}
				if rep.Summary.Fail != len(call.ids) || rep.Summary.Pass != len(backupaudit.CheckIDs())-len(call.ids) {
					t.Errorf("summary %+v", rep.Summary)
				}
			})
		}
	}
}

// TestEverythingBroken: every API call fails at once; the audit still reports every check.
func TestEverythingBroken(t *testing.T) {
	for _, f := range backupfake.Faults() {
		t.Run(f.String(), func(t *testing.T) {
			env := backupfake.Healthy(now)
			for _, call := range apiCalls() {
				call.set(&env, f)
			}
			rep, _ := audit(t, env, backupaudit.Thresholds{})
			checks := byID(t, rep)
			for id, c := range checks {
				if c.Status != backupaudit.Fail {
					t.Errorf("%s = %s (%s)", id, c.Status, c.Observed)
				}
			}
		})
	}
}

func TestUnknownTargetsAre404(t *testing.T) {
	s := backupfake.Start(backupfake.Env{})
	t.Cleanup(s.Close)
	c := gcpbackup.New(gcpbackup.Config{
		SQLAdminEndpoint: s.SQLAdmin.URL, StorageEndpoint: s.Storage.URL, GKEBackupEndpoint: s.GKEBackup.URL, ContainerEndpoint: s.Container.URL,
		Timeout: requestTimeout, Attempts: 1,
	})
	defer c.Close()
	tg := backupaudit.Targets{
		CloudSQL: []backupaudit.SQLTarget{{Project: "typo-project", Instance: "db"}},
		Buckets:  []string{"no-such-bucket"},
		GKE:      []backupaudit.GKETarget{{Project: "typo-project", Location: "us-east1", Plan: "nope"}},
	}
	rep := backupaudit.Audit(context.Background(), clock.NewFake(now), backupaudit.SourcesFrom(c), tg, backupaudit.Thresholds{})
	if len(rep.Checks) != len(backupaudit.CheckIDs()) || rep.Summary.Fail != len(rep.Checks) {
		t.Fatalf("summary %+v", rep.Summary)
	}
	for _, ch := range rep.Checks {
		if !strings.Contains(ch.Observed, "not found") {
			t.Errorf("%s observed %q", ch.ID, ch.Observed)
		}
	}
	c1, _ := rep.Find(backupaudit.SQLBackupsEnabled, "typo-project/db")
	if !strings.Contains(c1.Hint, "gcloud sql instances list --project=typo-project") {
		t.Errorf("hint %q", c1.Hint)
	}
	c2, _ := rep.Find(backupaudit.GKEPlanActive, "typo-project/us-east1/nope")
	if !strings.Contains(c2.Hint, "gcloud beta container backup-restore backup-plans list --project=typo-project --location=us-east1") {
		t.Errorf("hint %q", c2.Hint)
	}
}

// --- sources without HTTP, for what no server answer can cause ---------------------------

type panicky struct{}

func (panicky) Instance(context.Context, string, string) (gcpbackup.SQLInstance, error) {
	panic("boom")
}
func (panicky) BackupRuns(context.Context, string, string) ([]gcpbackup.SQLBackupRun, error) {
	return nil, nil
}
func (panicky) LatestRecoveryTime(context.Context, string, string) (time.Time, error) {
	return time.Time{}, nil
}

type plainErrors struct{}

func (plainErrors) Bucket(context.Context, string) (gcpbackup.Bucket, error) {
	return gcpbackup.Bucket{}, errors.New("something odd")
}

func (plainErrors) Plan(context.Context, string) (gcpbackup.GKEPlan, error) {
	return gcpbackup.GKEPlan{}, fmt.Errorf("wrapped: %w", context.DeadlineExceeded)
}

func (plainErrors) Backups(context.Context, string) ([]gcpbackup.GKEBackup, error) {
	return nil, &gcpbackup.Error{API: gcpbackup.APIGKEBackup, Kind: gcpbackup.KindUnauthenticated, Code: 401, Message: "Request had invalid authentication credentials."}
}

func TestSourcesThatMisbehave(t *testing.T) {
	tg := backupaudit.Targets{
		CloudSQL: []backupaudit.SQLTarget{{Project: "p-123456", Instance: "db"}},
		Buckets:  []string{"b"},
		GKE:      []backupaudit.GKETarget{{Project: "p-123456", Location: "l", Plan: "x"}},
	}
	rep := backupaudit.Audit(context.Background(), clock.NewFake(now),
		backupaudit.Sources{CloudSQL: panicky{}, Buckets: plainErrors{}, GKE: plainErrors{}}, tg, backupaudit.Thresholds{})
	if len(rep.Checks) != len(backupaudit.CheckIDs()) || rep.Summary.Fail != len(rep.Checks) {
		t.Fatalf("summary %+v: %+v", rep.Summary, rep.Checks)
	}
	for _, c := range rep.Checks {
		switch {
		case strings.HasPrefix(c.ID, "cloudsql."):
			if !strings.Contains(c.Observed, "internal error: boom") {
				t.Errorf("%s: %q", c.ID, c.Observed)
			}
		case strings.HasPrefix(c.ID, "gcs."):
			if !strings.Contains(c.Observed, "could not read bucket gs://b") || !strings.Contains(c.Observed, "something odd") {
				t.Errorf("%s: %q", c.ID, c.Observed)
			}
		case c.ID == backupaudit.GKEPlanActive || c.ID == backupaudit.GKERetention || c.ID == backupaudit.GKERPORisk || c.ID == backupaudit.GKELeftoverPods:
			if !strings.Contains(c.Observed, "timeout") {
				t.Errorf("%s: %q", c.ID, c.Observed)
			}
		default:
			if !strings.Contains(c.Observed, "credentials refused (HTTP 401)") {
				t.Errorf("%s: %q", c.ID, c.Observed)
			}
		}
	}

	// No sources at all.
	rep = backupaudit.Audit(context.Background(), clock.NewFake(now), backupaudit.Sources{}, tg, backupaudit.Thresholds{})
	if rep.Summary.Fail != len(backupaudit.CheckIDs()) {
		t.Errorf("nil sources: %+v", rep.Summary)
	}
	for _, c := range rep.Checks {
		if !strings.Contains(c.Observed, "no ") || !strings.Contains(c.Observed, "client configured") {
			t.Errorf("%s: %q", c.ID, c.Observed)
		}
	}
}

func TestCanceledContext(t *testing.T) {
	s := backupfake.Start(backupfake.Healthy(now))
	t.Cleanup(s.Close)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rep := backupaudit.Run(ctx, clock.NewFake(now), section(t, s))
	if rep.Summary.Fail != len(rep.Checks) || len(rep.Checks) != len(backupaudit.CheckIDs()) {
		t.Fatalf("summary %+v", rep.Summary)
	}
}

package backupaudit_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/gkebackup/apiv1/gkebackuppb"
	"github.com/BurntSushi/toml"
	sqladmin "google.golang.org/api/sqladmin/v1"
	rawstorage "google.golang.org/api/storage/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
	corev1 "k8s.io/api/core/v1"

	"github.com/fediops/fediops/functions/backupaudit"
	"github.com/fediops/fediops/shared/clock"
	"github.com/fediops/fediops/shared/config"
	"github.com/fediops/fediops/shared/gcpbackup"
	"github.com/fediops/fediops/shared/testsupport/backupfake"
)

// now is 12:00 UTC: the healthy sample's newest nightly backups are from 03:00 today.
var now = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

const requestTimeout = 150 * time.Millisecond

// audit serves env on fake APIs and audits every resource of it through the real clients.
func audit(t *testing.T, env backupfake.Env, th backupaudit.Thresholds) (backupaudit.Report, *backupfake.Server) {
	t.Helper()
	s := backupfake.Start(env)
	t.Cleanup(s.Close)
	cfg := section(t, s)
	c := gcpbackup.New(gcpbackup.Config{
		SQLAdminEndpoint:  cfg.SQLAdminEndpoint,
		StorageEndpoint:   cfg.StorageEndpoint,
		GKEBackupEndpoint: cfg.GKEBackupEndpoint,
		ContainerEndpoint: cfg.ContainerEndpoint,
		Timeout:           requestTimeout,
		Attempts:          1,
	})
	t.Cleanup(func() { _ = c.Close() })
	rep := backupaudit.Audit(context.Background(), clock.NewFake(now), backupaudit.SourcesFrom(c), backupaudit.TargetsFrom(cfg), th)
	return rep, s
}

// section returns the [backup] section that lists what s serves, as the function reads it.
func section(t *testing.T, s *backupfake.Server) *backupaudit.Section {
	t.Helper()
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(map[string]any{"backup": s.Config()}); err != nil {
		t.Fatal(err)
	}
	c, err := config.Parse("backup.toml", []byte("[archive]\nurl = \"/tmp/unused\"\n"+buf.String()))
	if err != nil {
		t.Fatal(err)
	}
	b, err := backupaudit.LoadSection(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// byID indexes a report of the Healthy environment (one target per kind) by check ID.
func byID(t *testing.T, r backupaudit.Report) map[string]backupaudit.Check {
	t.Helper()
	m := map[string]backupaudit.Check{}
	for _, c := range r.Checks {
		if _, dup := m[c.ID]; dup {
			t.Fatalf("check %s reported twice", c.ID)
		}
		m[c.ID] = c
	}
	if len(m) != len(backupaudit.CheckIDs()) {
		t.Fatalf("got %d checks, want %d: %+v", len(m), len(backupaudit.CheckIDs()), r.Checks)
	}
	return m
}

func sqlBC(e *backupfake.Env) *sqladmin.BackupConfiguration {
	return e.SQL[0].Resource.Settings.BackupConfiguration
}

func night() time.Time { return time.Date(2026, 11, 20, 3, 0, 0, 0, time.UTC) }

func run(id int64, typ, status string, window time.Time, took time.Duration) *sqladmin.BackupRun {
	return backupfake.SQLRun(backupfake.HealthyProject, backupfake.SampleInstance, id, typ, status, window, window.Add(took))
}

func gkeBackup(e *backupfake.Env, created time.Time, state gkebackuppb.Backup_State, pods int32, size int64) *gkebackuppb.Backup {
	p := e.GKE[0]
	return backupfake.GKEBackup(p.Name(), p.Resource.Cluster, created, created.Add(12*time.Minute), state, pods, size)
}

// checkCase is a change to the Healthy environment and what the checks say about it.
type checkCase struct {
	name   string
	mutate func(e *backupfake.Env)
	th     backupaudit.Thresholds
	want   map[string]backupaudit.Status // checks not listed must pass
	// observed: substrings expected in the Observed text of a check.
	observed map[string]string
	// hint: substrings expected in the Hint of a check; noHint: substrings it must not hold.
	hint, noHint map[string]string
}

// checkCases make every check pass, warn and fail on realistic answers (TestChecks), and so
// give every hint a check can print (TestHintsParseWithGcloud).
func checkCases() []checkCase {
	const gib = int64(1) << 30
	return []checkCase{
		{name: "healthy", mutate: func(*backupfake.Env) {},
			observed: map[string]string{
				backupaudit.SQLLastBackupFresh:    "2026-11-20 03:09 UTC, 8h51m ago",
				backupaudit.SQLRecoveryPointFresh: "1m ago",
				backupaudit.GCSGeoRedundant:       "multi-region EU",
				backupaudit.GKEPlanActive:         `READY, cron "0 3 * * *"`,
				backupaudit.GKEBackupGrowth:       "pods 42 vs median 43",
			}},

		// cloudsql.backups_enabled
		{name: "sql backups disabled (enabled absent)",
			mutate: func(e *backupfake.Env) { sqlBC(e).Enabled = false },
			want:   map[string]backupaudit.Status{backupaudit.SQLBackupsEnabled: backupaudit.Fail},
			hint:   map[string]string{backupaudit.SQLBackupsEnabled: "gcloud sql instances patch mastodon-db --project=fediops-healthy --backup-start-time="}},
		{name: "sql no backup configuration at all",
			mutate: func(e *backupfake.Env) { e.SQL[0].Resource.Settings.BackupConfiguration = nil },
			want: map[string]backupaudit.Status{
				backupaudit.SQLBackupsEnabled: backupaudit.Fail, backupaudit.SQLRetainedBackups: backupaudit.Fail,
				backupaudit.SQLPITREnabled: backupaudit.Fail, backupaudit.SQLLogRetention: backupaudit.Fail,
				backupaudit.SQLRecoveryPointFresh: backupaudit.Fail,
			}},

		// cloudsql.retained_backups
		{name: "sql 3 retained backups",
			mutate:   func(e *backupfake.Env) { sqlBC(e).BackupRetentionSettings.RetainedBackups = 3 },
			want:     map[string]backupaudit.Status{backupaudit.SQLRetainedBackups: backupaudit.Fail},
			observed: map[string]string{backupaudit.SQLRetainedBackups: "3 backups retained"},
			hint:     map[string]string{backupaudit.SQLRetainedBackups: "--retained-backups-count=7"}},
		{name: "sql retention in an unknown unit",
			mutate: func(e *backupfake.Env) { sqlBC(e).BackupRetentionSettings.RetentionUnit = "DAYS" },
			want:   map[string]backupaudit.Status{backupaudit.SQLRetainedBackups: backupaudit.Warn}},
		{name: "sql retention settings absent",
			mutate: func(e *backupfake.Env) { sqlBC(e).BackupRetentionSettings = nil },
			want:   map[string]backupaudit.Status{backupaudit.SQLRetainedBackups: backupaudit.Fail}},
		{name: "sql 10 retained required by config",
			mutate: func(*backupfake.Env) {},
			th:     backupaudit.ThresholdsFrom(&backupaudit.Section{MinRetainedBackups: 10}),
			want:   map[string]backupaudit.Status{backupaudit.SQLRetainedBackups: backupaudit.Fail}},

		// cloudsql.pitr_enabled (and no recovery point without it)
		{name: "sql PITR off (field absent)",
			mutate: func(e *backupfake.Env) { sqlBC(e).PointInTimeRecoveryEnabled = false },
			want: map[string]backupaudit.Status{
				backupaudit.SQLPITREnabled: backupaudit.Fail, backupaudit.SQLRecoveryPointFresh: backupaudit.Fail,
			},
			observed: map[string]string{backupaudit.SQLRecoveryPointFresh: "point-in-time recovery is off"},
			hint: map[string]string{
				backupaudit.SQLPITREnabled:        "gcloud sql instances patch mastodon-db --project=fediops-healthy --enable-point-in-time-recovery --retained-transaction-log-days=7",
				backupaudit.SQLRecoveryPointFresh: "--enable-point-in-time-recovery",
			},
			noHint: map[string]string{backupaudit.SQLPITREnabled: "--enable-bin-log", backupaudit.SQLRecoveryPointFresh: "--enable-bin-log"}},
		{name: "mysql PITR is binaryLogEnabled",
			mutate: func(e *backupfake.Env) {
				e.SQL[0].Resource.DatabaseVersion = "MYSQL_8_0"
				sqlBC(e).PointInTimeRecoveryEnabled = false
				sqlBC(e).BinaryLogEnabled = true
			}},
		{name: "mysql PITR off: the hint turns on binary logging",
			mutate: func(e *backupfake.Env) {
				e.SQL[0].Resource.DatabaseVersion = "MYSQL_8_4"
				sqlBC(e).PointInTimeRecoveryEnabled = true // ignored on MySQL
				sqlBC(e).BinaryLogEnabled = false
				sqlBC(e).TransactionLogRetentionDays = 3
			},
			want: map[string]backupaudit.Status{
				backupaudit.SQLPITREnabled: backupaudit.Fail, backupaudit.SQLLogRetention: backupaudit.Fail,
				backupaudit.SQLRecoveryPointFresh: backupaudit.Fail,
			},
			hint: map[string]string{
				backupaudit.SQLPITREnabled:        "gcloud sql instances patch mastodon-db --project=fediops-healthy --enable-bin-log --retained-transaction-log-days=7",
				backupaudit.SQLLogRetention:       "--enable-bin-log --retained-transaction-log-days=7",
				backupaudit.SQLRecoveryPointFresh: "--enable-bin-log",
			},
			noHint: map[string]string{
				backupaudit.SQLPITREnabled: "--enable-point-in-time-recovery", backupaudit.SQLLogRetention: "--enable-point-in-time-recovery",
				backupaudit.SQLRecoveryPointFresh: "--enable-point-in-time-recovery",
			}},
		{name: "sql server PITR off",
			mutate: func(e *backupfake.Env) {
				e.SQL[0].Resource.DatabaseVersion = "SQLSERVER_2022_STANDARD"
				sqlBC(e).PointInTimeRecoveryEnabled = false
			},
			want: map[string]backupaudit.Status{
				backupaudit.SQLPITREnabled: backupaudit.Fail, backupaudit.SQLRecoveryPointFresh: backupaudit.Fail,
			},
			hint:   map[string]string{backupaudit.SQLPITREnabled: "--enable-point-in-time-recovery --retained-transaction-log-days=7"},
			noHint: map[string]string{backupaudit.SQLPITREnabled: "--enable-bin-log"}},
		{name: "unknown engine PITR off: both flags named",
			mutate: func(e *backupfake.Env) {
				e.SQL[0].Resource.DatabaseVersion = ""
				sqlBC(e).PointInTimeRecoveryEnabled = false
			},
			want: map[string]backupaudit.Status{
				backupaudit.SQLPITREnabled: backupaudit.Fail, backupaudit.SQLRecoveryPointFresh: backupaudit.Fail,
			},
			hint: map[string]string{backupaudit.SQLPITREnabled: "--enable-point-in-time-recovery --retained-transaction-log-days=7 (on MySQL: --enable-bin-log instead"}},

		// cloudsql.log_retention
		{name: "sql logs kept 3 days",
			mutate:   func(e *backupfake.Env) { sqlBC(e).TransactionLogRetentionDays = 3 },
			want:     map[string]backupaudit.Status{backupaudit.SQLLogRetention: backupaudit.Fail},
			observed: map[string]string{backupaudit.SQLLogRetention: "3 days"},
			hint:     map[string]string{backupaudit.SQLLogRetention: "--retained-transaction-log-days=7"}},
		{name: "sql log retention absent",
			mutate:   func(e *backupfake.Env) { sqlBC(e).TransactionLogRetentionDays = 0 },
			want:     map[string]backupaudit.Status{backupaudit.SQLLogRetention: backupaudit.Fail},
			observed: map[string]string{backupaudit.SQLLogRetention: "not set"}},

		// cloudsql.last_backup_fresh
		{name: "sql newest automated backup 2 days old",
			mutate: func(e *backupfake.Env) { e.SQL[0].Runs = e.SQL[0].Runs[2:] },
			want:   map[string]backupaudit.Status{backupaudit.SQLLastBackupFresh: backupaudit.Fail},
			observed: map[string]string{
				backupaudit.SQLLastBackupFresh: "2026-11-18 03:09 UTC, 2d8h ago",
			}},
		{name: "sql automated backup 25h59m old passes",
			mutate: func(e *backupfake.Env) {
				e.SQL[0].Runs = []*sqladmin.BackupRun{run(1, "AUTOMATED", "SUCCESSFUL", now.Add(-26*time.Hour), time.Minute)}
			}},
		{name: "sql automated backup 26h01m old fails",
			mutate: func(e *backupfake.Env) {
				e.SQL[0].Runs = []*sqladmin.BackupRun{run(1, "AUTOMATED", "SUCCESSFUL", now.Add(-26*time.Hour-2*time.Minute), time.Minute)}
			},
			want: map[string]backupaudit.Status{backupaudit.SQLLastBackupFresh: backupaudit.Fail}},
		{name: "sql only an on-demand backup is recent",
			mutate: func(e *backupfake.Env) {
				e.SQL[0].Runs = []*sqladmin.BackupRun{
					run(2, "ON_DEMAND", "SUCCESSFUL", now.Add(-time.Hour), 5*time.Minute),
					run(1, "AUTOMATED", "SUCCESSFUL", now.Add(-5*24*time.Hour), 5*time.Minute),
				}
			},
			want: map[string]backupaudit.Status{backupaudit.SQLLastBackupFresh: backupaudit.Fail}},
		{name: "sql no backup runs at all",
			mutate:   func(e *backupfake.Env) { e.SQL[0].Runs = nil },
			want:     map[string]backupaudit.Status{backupaudit.SQLLastBackupFresh: backupaudit.Fail},
			observed: map[string]string{backupaudit.SQLLastBackupFresh: "no successful automated backup found (0 runs listed)"}},

		// cloudsql.no_failed_backups
		{name: "sql failed run yesterday",
			mutate: func(e *backupfake.Env) {
				e.SQL[0].Runs = append(e.SQL[0].Runs, run(42, "AUTOMATED", "FAILED", night().Add(-24*time.Hour+time.Hour), 20*time.Minute))
			},
			want:     map[string]backupaudit.Status{backupaudit.SQLNoFailedBackups: backupaudit.Warn},
			observed: map[string]string{backupaudit.SQLNoFailedBackups: "FAILED automated run 42 at 2026-11-19 04:00 UTC (INTERNAL_ERROR"},
			hint:     map[string]string{backupaudit.SQLNoFailedBackups: "gcloud sql backups describe 42 --instance=mastodon-db"}},
		{name: "sql overdue run today",
			mutate: func(e *backupfake.Env) {
				e.SQL[0].Runs = append(e.SQL[0].Runs, run(43, "AUTOMATED", "OVERDUE", now.Add(-2*time.Hour), 0))
			},
			want: map[string]backupaudit.Status{backupaudit.SQLNoFailedBackups: backupaudit.Warn}},
		{name: "sql failed run 8 days ago is forgotten",
			mutate: func(e *backupfake.Env) {
				e.SQL[0].Runs = append(e.SQL[0].Runs, run(44, "AUTOMATED", "FAILED", now.Add(-8*24*time.Hour), 20*time.Minute))
			}},

		// cloudsql.recovery_point_fresh
		{name: "sql recovery point 20 minutes old",
			mutate: func(e *backupfake.Env) {
				e.SQL[0].Recovery.LatestRecoveryTime = now.Add(-20 * time.Minute).Format(time.RFC3339)
			},
			want:     map[string]backupaudit.Status{backupaudit.SQLRecoveryPointFresh: backupaudit.Fail},
			observed: map[string]string{backupaudit.SQLRecoveryPointFresh: "20m ago"}},
		{name: "sql recovery point 14 minutes old",
			mutate: func(e *backupfake.Env) {
				e.SQL[0].Recovery.LatestRecoveryTime = now.Add(-14 * time.Minute).Format(time.RFC3339Nano)
			}},
		{name: "sql no recovery time reported",
			mutate: func(e *backupfake.Env) { e.SQL[0].Recovery = nil },
			want:   map[string]backupaudit.Status{backupaudit.SQLRecoveryPointFresh: backupaudit.Fail}},
		{name: "sql stopped instance: recovery hint says so",
			mutate: func(e *backupfake.Env) {
				e.SQL[0].Resource.State = "SUSPENDED"
				e.SQL[0].Recovery.LatestRecoveryTime = now.Add(-3 * time.Hour).Format(time.RFC3339)
			},
			want: map[string]backupaudit.Status{backupaudit.SQLRecoveryPointFresh: backupaudit.Fail},
			hint: map[string]string{backupaudit.SQLRecoveryPointFresh: "SUSPENDED"}},

		// gcs.geo_redundant
		{name: "bucket regional",
			mutate: func(e *backupfake.Env) {
				e.Buckets[0].Resource.LocationType = "region"
				e.Buckets[0].Resource.Location = "EUROPE-WEST1"
			},
			want:     map[string]backupaudit.Status{backupaudit.GCSGeoRedundant: backupaudit.Fail},
			observed: map[string]string{backupaudit.GCSGeoRedundant: "region EUROPE-WEST1"}},
		{name: "bucket configurable dual-region",
			mutate: func(e *backupfake.Env) {
				b := e.Buckets[0].Resource
				b.LocationType, b.Location = "dual-region", "EU"
				b.CustomPlacementConfig = &rawstorage.BucketCustomPlacementConfig{DataLocations: []string{"EUROPE-WEST1", "EUROPE-WEST4"}}
			},
			observed: map[string]string{backupaudit.GCSGeoRedundant: "dual-region EU (EUROPE-WEST1, EUROPE-WEST4)"}},

		// gcs.soft_delete
		{name: "bucket soft delete 3 days",
			mutate:   func(e *backupfake.Env) { e.Buckets[0].Resource.SoftDeletePolicy.RetentionDurationSeconds = 3 * 86400 },
			want:     map[string]backupaudit.Status{backupaudit.GCSSoftDelete: backupaudit.Fail},
			observed: map[string]string{backupaudit.GCSSoftDelete: "3 days"},
			hint:     map[string]string{backupaudit.GCSSoftDelete: "gcloud storage buckets update gs://healthy-mastodon-media --soft-delete-duration=7d"}},
		{name: "bucket soft delete disabled (retention 0)",
			mutate: func(e *backupfake.Env) {
				e.Buckets[0].Resource.SoftDeletePolicy = &rawstorage.BucketSoftDeletePolicy{
					RetentionDurationSeconds: 0, EffectiveTime: "2025-01-01T00:00:00Z",
					ForceSendFields: []string{"RetentionDurationSeconds"},
				}
			},
			want:     map[string]backupaudit.Status{backupaudit.GCSSoftDelete: backupaudit.Fail},
			observed: map[string]string{backupaudit.GCSSoftDelete: "disabled"}},
		{name: "bucket without soft delete policy",
			mutate: func(e *backupfake.Env) { e.Buckets[0].Resource.SoftDeletePolicy = nil },
			want:   map[string]backupaudit.Status{backupaudit.GCSSoftDelete: backupaudit.Fail}},
		{name: "bucket soft delete 90 days",
			mutate: func(e *backupfake.Env) { e.Buckets[0].Resource.SoftDeletePolicy.RetentionDurationSeconds = 90 * 86400 }},

		// gcs.versioning
		{name: "bucket without versioning (field absent)",
			mutate:   func(e *backupfake.Env) { e.Buckets[0].Resource.Versioning = nil },
			want:     map[string]backupaudit.Status{backupaudit.GCSVersioning: backupaudit.Warn},
			hint:     map[string]string{backupaudit.GCSVersioning: "--versioning"},
			observed: map[string]string{backupaudit.GCSVersioning: "disabled"}},

		// gke.plan_active
		{name: "gke schedule paused",
			mutate:   func(e *backupfake.Env) { e.GKE[0].Resource.BackupSchedule.Paused = true },
			want:     map[string]backupaudit.Status{backupaudit.GKEPlanActive: backupaudit.Fail},
			observed: map[string]string{backupaudit.GKEPlanActive: "schedule paused"},
			hint:     map[string]string{backupaudit.GKEPlanActive: "gcloud beta container backup-restore backup-plans update mastodon-nightly --project=fediops-healthy --location=europe-west1 --no-paused"}},
		{name: "gke plan deactivated",
			mutate: func(e *backupfake.Env) {
				e.GKE[0].Resource.Deactivated = true
				e.GKE[0].Resource.State = gkebackuppb.BackupPlan_DEACTIVATED
			},
			want:     map[string]backupaudit.Status{backupaudit.GKEPlanActive: backupaudit.Fail},
			observed: map[string]string{backupaudit.GKEPlanActive: "state DEACTIVATED; deactivated"},
			hint: map[string]string{backupaudit.GKEPlanActive: "gcloud beta container backup-restore backup-plans create mastodon-nightly-2 --project=fediops-healthy --location=europe-west1 " +
				"--cluster=projects/fediops-healthy/locations/europe-west1/clusters/mastodon --all-namespaces"}},
		{name: "gke plan still provisioning",
			mutate: func(e *backupfake.Env) {
				e.GKE[0].Resource.State = gkebackuppb.BackupPlan_PROVISIONING
				e.GKE[0].Resource.StateReason = "Waiting for the Backup for GKE agent"
			},
			want:     map[string]backupaudit.Status{backupaudit.GKEPlanActive: backupaudit.Fail},
			observed: map[string]string{backupaudit.GKEPlanActive: "state PROVISIONING (Waiting for the Backup for GKE agent)"},
			hint:     map[string]string{backupaudit.GKEPlanActive: "see why: gcloud beta container backup-restore backup-plans describe mastodon-nightly --project=fediops-healthy --location=europe-west1"}},
		{name: "gke plan without schedule",
			mutate:   func(e *backupfake.Env) { e.GKE[0].Resource.BackupSchedule = nil },
			want:     map[string]backupaudit.Status{backupaudit.GKEPlanActive: backupaudit.Fail},
			observed: map[string]string{backupaudit.GKEPlanActive: "no backup schedule"},
			hint:     map[string]string{backupaudit.GKEPlanActive: `--cron-schedule="0 3 * * *"`}},
		{name: "gke plan with an RPO schedule",
			mutate: func(e *backupfake.Env) {
				e.GKE[0].Resource.BackupSchedule = &gkebackuppb.BackupPlan_Schedule{RpoConfig: &gkebackuppb.RpoConfig{TargetRpoMinutes: 1440}}
			},
			observed: map[string]string{backupaudit.GKEPlanActive: "RPO target 24h"}},

		// gke.retention
		{name: "gke backups kept 3 days",
			mutate:   func(e *backupfake.Env) { e.GKE[0].Resource.RetentionPolicy.BackupRetainDays = 3 },
			want:     map[string]backupaudit.Status{backupaudit.GKERetention: backupaudit.Fail},
			observed: map[string]string{backupaudit.GKERetention: "3 days"},
			hint:     map[string]string{backupaudit.GKERetention: "--backup-retain-days=7"}},
		{name: "gke backups kept 3 days, policy locked",
			mutate: func(e *backupfake.Env) {
				e.GKE[0].Resource.RetentionPolicy.BackupRetainDays = 3
				e.GKE[0].Resource.RetentionPolicy.Locked = true
			},
			want: map[string]backupaudit.Status{backupaudit.GKERetention: backupaudit.Fail},
			hint: map[string]string{backupaudit.GKERetention: "locked and cannot be changed: create a new plan (same scope as the old one), e.g. gcloud beta container backup-restore backup-plans create mastodon-nightly-2"}},
		{name: "gke backups never deleted",
			mutate:   func(e *backupfake.Env) { e.GKE[0].Resource.RetentionPolicy = nil },
			observed: map[string]string{backupaudit.GKERetention: "never deleted automatically"}},

		// gke.last_backup_fresh
		{name: "gke newest succeeded backup 3 days old",
			mutate: func(e *backupfake.Env) { e.GKE[0].Backups = e.GKE[0].Backups[3:] },
			want:   map[string]backupaudit.Status{backupaudit.GKELastBackupFresh: backupaudit.Fail},
			observed: map[string]string{
				backupaudit.GKELastBackupFresh: "nightly-20261117-0300 completed 2026-11-17 03:12 UTC, 3d8h ago",
			}},
		{name: "gke no backups at all",
			mutate:   func(e *backupfake.Env) { e.GKE[0].Backups = nil },
			want:     map[string]backupaudit.Status{backupaudit.GKELastBackupFresh: backupaudit.Fail},
			observed: map[string]string{backupaudit.GKEBackupGrowth: "not enough"},
			hint: map[string]string{backupaudit.GKELastBackupFresh: "gcloud beta container backup-restore backups list --backup-plan=mastodon-nightly --project=fediops-healthy --location=europe-west1; " +
				"take one now: gcloud beta container backup-restore backups create manual-$(date +%Y%m%d) --backup-plan=mastodon-nightly"}},
		{name: "gke newest backup still in progress, previous one fresh enough",
			mutate: func(e *backupfake.Env) {
				b := gkeBackup(e, now.Add(-10*time.Minute), gkebackuppb.Backup_IN_PROGRESS, 0, 0)
				e.GKE[0].Backups = append([]*gkebackuppb.Backup{b}, e.GKE[0].Backups...)
			}},

		// gke.no_failed_backups
		{name: "gke failed backup yesterday",
			mutate: func(e *backupfake.Env) {
				e.GKE[0].Backups = append(e.GKE[0].Backups, gkeBackup(e, night().Add(-24*time.Hour+time.Hour), gkebackuppb.Backup_FAILED, 0, 0))
			},
			want:     map[string]backupaudit.Status{backupaudit.GKENoFailedBackups: backupaudit.Warn},
			observed: map[string]string{backupaudit.GKENoFailedBackups: "VolumeSnapshot creation timed out"},
			hint:     map[string]string{backupaudit.GKENoFailedBackups: "gcloud beta container backup-restore backups describe nightly-20261119-0400 --backup-plan=mastodon-nightly"}},
		{name: "gke failed backup 10 days ago is forgotten",
			mutate: func(e *backupfake.Env) {
				e.GKE[0].Backups = append(e.GKE[0].Backups, gkeBackup(e, now.Add(-10*24*time.Hour), gkebackuppb.Backup_FAILED, 0, 0))
			}},

		// gke.backup_growth
		{name: "gke newest backup holds 3x the pods",
			mutate: func(e *backupfake.Env) {
				e.GKE[0].Backups[0] = gkeBackup(e, night(), gkebackuppb.Backup_SUCCEEDED, 131, 2*gib)
			},
			want:     map[string]backupaudit.Status{backupaudit.GKEBackupGrowth: backupaudit.Warn},
			observed: map[string]string{backupaudit.GKEBackupGrowth: "pods 131 vs median 43 (+205%)"},
			hint:     map[string]string{backupaudit.GKEBackupGrowth: "status.phase==Succeeded"}},
		{name: "gke newest backup 60% bigger",
			mutate: func(e *backupfake.Env) {
				e.GKE[0].Backups[0] = gkeBackup(e, night(), gkebackuppb.Backup_SUCCEEDED, 42, 2*gib*16/10+(100<<20))
			},
			want: map[string]backupaudit.Status{backupaudit.GKEBackupGrowth: backupaudit.Warn}},
		{name: "gke newest backup 40% bigger is fine",
			mutate: func(e *backupfake.Env) {
				e.GKE[0].Backups[0] = gkeBackup(e, night(), gkebackuppb.Backup_SUCCEEDED, 42, 2*gib*14/10)
			}},
		{name: "gke growth threshold lowered to 20%",
			mutate: func(e *backupfake.Env) {
				e.GKE[0].Backups[0] = gkeBackup(e, night(), gkebackuppb.Backup_SUCCEEDED, 42, 2*gib*14/10)
			},
			th:   backupaudit.Thresholds{MaxGrowthPct: 20},
			want: map[string]backupaudit.Status{backupaudit.GKEBackupGrowth: backupaudit.Warn}},
		{name: "gke growth window: a big backup 9 nights ago is outside the 7 compared",
			mutate: func(e *backupfake.Env) {
				// Backups 1..7 are the window; an old outlier must not move the median.
				e.GKE[0].Backups = append(e.GKE[0].Backups, gkeBackup(e, night().Add(-9*24*time.Hour), gkebackuppb.Backup_SUCCEEDED, 900, 90*gib))
			},
			observed: map[string]string{backupaudit.GKEBackupGrowth: "over the previous 7 backups"}},

		// gke.rpo_risk
		{name: "gke service reports no RPO risk level",
			mutate:   func(e *backupfake.Env) { e.GKE[0].Resource.RpoRiskLevel = 0 },
			observed: map[string]string{backupaudit.GKERPORisk: "no RPO risk level"}},
		{name: "gke service says the RPO is at risk",
			mutate: func(e *backupfake.Env) {
				e.GKE[0].Resource.RpoRiskLevel = 3
				e.GKE[0].Resource.RpoRiskReason = "The last backup took longer than the target RPO of 60 minutes."
			},
			want:     map[string]backupaudit.Status{backupaudit.GKERPORisk: backupaudit.Warn},
			observed: map[string]string{backupaudit.GKERPORisk: "risk level 3 of 5: The last backup took longer"},
			hint:     map[string]string{backupaudit.GKERPORisk: "backup-plans describe mastodon-nightly"}},

		// gke.leftover_pods
		{name: "gke healthy cluster: a failed pod outside the plan's namespaces is not reported",
			mutate:   func(*backupfake.Env) {},
			observed: map[string]string{backupaudit.GKELeftoverPods: "no Failed or Succeeded pods in namespaces mastodon; the last backup protected 42 pods"}},
		{name: "gke finished pods in the plan's namespace",
			mutate: func(e *backupfake.Env) {
				c := &e.Clusters[0]
				c.Pods = append(c.Pods,
					backupfake.Pod("mastodon", "mastodon-db-migrate-1-abcde", corev1.PodSucceeded, now.Add(-50*time.Hour), time.Minute, "mastodon-db-migrate-1"),
					backupfake.Pod("mastodon", "mastodon-db-migrate-2-fghij", corev1.PodSucceeded, now.Add(-26*time.Hour), time.Minute, "mastodon-db-migrate-2"),
					backupfake.EvictedPod("mastodon", "mastodon-sidekiq-5b8c-xk2lp", now.Add(-80*time.Hour)),
					backupfake.Pod("other", "job-x", corev1.PodFailed, now.Add(-90*time.Hour), time.Minute, ""))
			},
			want:     map[string]backupaudit.Status{backupaudit.GKELeftoverPods: backupaudit.Warn},
			observed: map[string]string{backupaudit.GKELeftoverPods: "3 finished pods (mastodon: 1 Failed, mastodon: 2 Succeeded); oldest Failed mastodon/mastodon-sidekiq-5b8c-xk2lp (Evicted), finished 3d8h ago in namespaces mastodon"},
			hint:     map[string]string{backupaudit.GKELeftoverPods: "kubectl delete pods --field-selector status.phase=Failed -n mastodon; kubectl delete pods --field-selector status.phase=Succeeded -n mastodon"},
			noHint:   map[string]string{backupaudit.GKELeftoverPods: "-n other"}},
		{name: "gke leftover_pods_min_age ignores recent ones",
			mutate: func(e *backupfake.Env) {
				e.Clusters[0].Pods = append(e.Clusters[0].Pods,
					backupfake.Pod("mastodon", "mastodon-media-remove-1-abcde", corev1.PodSucceeded, now.Add(-2*time.Hour), time.Minute, "mastodon-media-remove-1"))
			},
			th: backupaudit.Thresholds{LeftoverPodsMinAge: 24 * time.Hour}},
		{name: "gke plan over all namespaces sees kube-system",
			mutate: func(e *backupfake.Env) {
				e.GKE[0].Resource.BackupConfig.BackupScope = &gkebackuppb.BackupPlan_BackupConfig_AllNamespaces{AllNamespaces: true}
			},
			want:     map[string]backupaudit.Status{backupaudit.GKELeftoverPods: backupaudit.Warn},
			observed: map[string]string{backupaudit.GKELeftoverPods: "1 finished pod (kube-system: 1 Failed)"},
			hint:     map[string]string{backupaudit.GKELeftoverPods: "-n kube-system"}},
		{name: "gke plan of selected applications looks at their namespaces",
			mutate: func(e *backupfake.Env) {
				e.GKE[0].Resource.BackupConfig.BackupScope = &gkebackuppb.BackupPlan_BackupConfig_SelectedApplications{SelectedApplications: &gkebackuppb.NamespacedNames{
					NamespacedNames: []*gkebackuppb.NamespacedName{{Namespace: "kube-system", Name: "fluentbit"}, {Namespace: "mastodon", Name: "web"}}}}
			},
			want:     map[string]backupaudit.Status{backupaudit.GKELeftoverPods: backupaudit.Warn},
			observed: map[string]string{backupaudit.GKELeftoverPods: "in namespaces kube-system, mastodon"}},
		{name: "gke cluster gone",
			mutate: func(e *backupfake.Env) { e.Clusters = nil },
			want:   map[string]backupaudit.Status{backupaudit.GKELeftoverPods: backupaudit.Fail},
			hint:   map[string]string{backupaudit.GKELeftoverPods: "gcloud container clusters list --project=fediops-healthy"}},
		{name: "gke pods may not be listed (403 naming the role)",
			mutate:   func(e *backupfake.Env) { e.Clusters[0].ForbiddenList = []string{"mastodon"} },
			want:     map[string]backupaudit.Status{backupaudit.GKELeftoverPods: backupaudit.Fail},
			observed: map[string]string{backupaudit.GKELeftoverPods: "permission denied (HTTP 403) listing pods in namespace mastodon of projects/fediops-healthy/locations/europe-west1/clusters/mastodon: the audit's service account lacks roles/container.viewer (it needs container.pods.list"},
			hint:     map[string]string{backupaudit.GKELeftoverPods: "--role=roles/container.viewer"}},
	}
}

// TestChecks runs every check to pass, warn and fail on realistic answers.
func TestChecks(t *testing.T) {
	for _, tt := range checkCases() {
		t.Run(tt.name, func(t *testing.T) {
			env := backupfake.Healthy(now)
			tt.mutate(&env)
			rep, _ := audit(t, env, tt.th)
			checks := byID(t, rep)
			for _, id := range backupaudit.CheckIDs() {
				want, ok := tt.want[id]
				if !ok {
					want = backupaudit.Pass
				}
				c := checks[id]
				if c.Status != want {
					t.Errorf("%s = %s, want %s\n  observed: %s\n  hint: %s", id, c.Status, want, c.Observed, c.Hint)
				}
				if c.Expected == "" || c.Observed == "" || c.Target == "" {
					t.Errorf("%s has empty fields: %+v", id, c)
				}
				if (c.Status == backupaudit.Pass) != (c.Hint == "") {
					t.Errorf("%s: status %s with hint %q", id, c.Status, c.Hint)
				}
			}
			for id, sub := range tt.observed {
				if !strings.Contains(checks[id].Observed, sub) {
					t.Errorf("%s observed %q, want it to contain %q", id, checks[id].Observed, sub)
				}
			}
			for id, sub := range tt.hint {
				if !strings.Contains(checks[id].Hint, sub) {
					t.Errorf("%s hint %q, want it to contain %q", id, checks[id].Hint, sub)
				}
			}
			for id, sub := range tt.noHint {
				if strings.Contains(checks[id].Hint, sub) {
					t.Errorf("%s hint %q must not contain %q", id, checks[id].Hint, sub)
				}
			}
			s := rep.Summary
			if s.Pass+s.Warn+s.Fail != len(rep.Checks) {
				t.Errorf("summary %+v does not add up to %d checks", s, len(rep.Checks))
			}
		})
	}
}

func TestPITROffSkipsRecoveryTimeCall(t *testing.T) {
	env := backupfake.Healthy(now)
	sqlBC(&env).PointInTimeRecoveryEnabled = false
	_, s := audit(t, env, backupaudit.Thresholds{})
	for _, r := range s.Requests() {
		if strings.HasSuffix(r.Path, "/getLatestRecoveryTime") {
			t.Errorf("getLatestRecoveryTime called although PITR is off")
		}
	}
}

func TestExpectedTextFollowsThresholds(t *testing.T) {
	th := backupaudit.ThresholdsFrom(&backupaudit.Section{
		MaxBackupAge:        config.Duration{Duration: 30 * time.Hour},
		MaxRecoveryPointAge: config.Duration{Duration: 5 * time.Minute},
		FailedWindow:        config.Duration{Duration: 72 * time.Hour},
		MinSoftDeleteDays:   14,
	})
	rep, _ := audit(t, backupfake.Healthy(now), th)
	checks := byID(t, rep)
	for id, want := range map[string]string{
		backupaudit.SQLLastBackupFresh:    "less than 30h ago",
		backupaudit.SQLRecoveryPointFresh: "less than 5m old",
		backupaudit.SQLNoFailedBackups:    "in the last 3d",
		backupaudit.GCSSoftDelete:         "at least 14 days",
		backupaudit.GKERetention:          "at least 7 days",
	} {
		if !strings.Contains(checks[id].Expected, want) {
			t.Errorf("%s expected %q, want it to contain %q", id, checks[id].Expected, want)
		}
	}
	if checks[backupaudit.GCSSoftDelete].Status != backupaudit.Fail {
		t.Errorf("7-day soft delete passes a 14-day minimum")
	}
}

// TestMultipleTargetsInConfigOrder audits both sample environments at once.
func TestMultipleTargetsInConfigOrder(t *testing.T) {
	rep, _ := audit(t, backupfake.Merge(backupfake.Healthy(now), backupfake.Broken(now)), backupaudit.Thresholds{})
	var targets []string
	for _, c := range rep.Checks {
		if len(targets) == 0 || targets[len(targets)-1] != c.Target {
			targets = append(targets, c.Target)
		}
	}
	want := []string{
		"fediops-healthy/mastodon-db", "fediops-broken/mastodon-db",
		"gs://healthy-mastodon-media", "gs://broken-mastodon-media", "gs://broken-mastodon-backups",
		"fediops-healthy/europe-west1/mastodon-nightly", "fediops-broken/europe-west1/mastodon-nightly",
	}
	if strings.Join(targets, ",") != strings.Join(want, ",") {
		t.Errorf("targets in order %v\nwant %v", targets, want)
	}
}

func TestGKEEnumsAsStrings(t *testing.T) {
	// A server that ignores "$alt=json;enum-encoding=int" and answers enum names must work too.
	env := backupfake.Healthy(now)
	env.GKE[0].PlanJSON = `{"name":"projects/fediops-healthy/locations/europe-west1/backupPlans/mastodon-nightly",
 "state":"READY","backupSchedule":{"cronSchedule":"0 3 * * *","paused":true},"retentionPolicy":{"backupRetainDays":7}}`
	rep, _ := audit(t, env, backupaudit.Thresholds{})
	c, _ := rep.Find(backupaudit.GKEPlanActive, "fediops-healthy/europe-west1/mastodon-nightly")
	if c.Status != backupaudit.Fail || !strings.Contains(c.Observed, "schedule paused") || strings.Contains(c.Observed, "state") {
		t.Errorf("plan_active = %+v", c)
	}
}

func TestTimestampsInTheFuture(t *testing.T) {
	env := backupfake.Healthy(now)
	env.SQL[0].Recovery.LatestRecoveryTime = now.Add(30 * time.Second).Format(time.RFC3339)
	env.GKE[0].Backups[0].CompleteTime = timestamppb.New(now.Add(time.Minute))
	rep, _ := audit(t, env, backupaudit.Thresholds{})
	for _, c := range rep.Checks {
		if c.Status != backupaudit.Pass {
			t.Errorf("%s = %s (%s)", c.ID, c.Status, c.Observed)
		}
	}
	c, _ := rep.Find(backupaudit.SQLRecoveryPointFresh, "fediops-healthy/mastodon-db")
	if !strings.Contains(c.Observed, "clock skew") {
		t.Errorf("observed %q does not mention clock skew", c.Observed)
	}
}

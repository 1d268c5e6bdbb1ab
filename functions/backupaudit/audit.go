package backupaudit

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/fediops/fediops/shared/clock"
	"github.com/fediops/fediops/shared/gcpbackup"
)

// CloudSQL reads Cloud SQL instances (implemented by *gcpbackup.Client).
type CloudSQL interface {
	Instance(ctx context.Context, project, instance string) (gcpbackup.SQLInstance, error)
	BackupRuns(ctx context.Context, project, instance string) ([]gcpbackup.SQLBackupRun, error)
	LatestRecoveryTime(ctx context.Context, project, instance string) (time.Time, error)
}

// Buckets reads Cloud Storage bucket metadata (implemented by *gcpbackup.Client).
type Buckets interface {
	Bucket(ctx context.Context, name string) (gcpbackup.Bucket, error)
}

// GKEBackup reads Backup for GKE plans and backups (implemented by *gcpbackup.Client).
// plan and name are resource names, projects/P/locations/L/backupPlans/X.
type GKEBackup interface {
	Plan(ctx context.Context, name string) (gcpbackup.GKEPlan, error)
	Backups(ctx context.Context, plan string) ([]gcpbackup.GKEBackup, error)
}

// Sources are the APIs the audit reads. A nil source fails the checks that need it.
type Sources struct {
	CloudSQL CloudSQL
	Buckets  Buckets
	GKE      GKEBackup
	Pods     Pods
}

// SourcesFrom returns Sources that read every API through c.
func SourcesFrom(c *gcpbackup.Client) Sources {
	return Sources{CloudSQL: c, Buckets: c, GKE: c, Pods: PodsFrom(c, 0)}
}

// Audit runs every check on every target and returns the report. It never fails: API
// errors and unexpected answers become failed checks. Targets are audited concurrently;
// the report lists them in the order of tg (Cloud SQL, then buckets, then GKE plans), each
// with its checks in a fixed order. "Now" is read once from clk.
func Audit(ctx context.Context, clk clock.Clock, src Sources, tg Targets, th Thresholds) Report {
	th = th.WithDefaults()
	now := clk.Now()

	type job struct {
		target string
		ids    []string
		run    func() []Check
	}
	var jobs []job
	for _, t := range tg.CloudSQL {
		jobs = append(jobs, job{t.String(), sqlIDs(), func() []Check { return auditSQL(ctx, src.CloudSQL, t, now, th) }})
	}
	for _, name := range tg.Buckets {
		jobs = append(jobs, job{bucketTarget(name), bucketIDs(), func() []Check { return auditBucket(ctx, src.Buckets, name, th) }})
	}
	for _, t := range tg.GKE {
		jobs = append(jobs, job{t.String(), gkeIDs(), func() []Check { return auditGKE(ctx, src.GKE, src.Pods, t, now, th) }})
	}

	results := make([][]Check, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if p := recover(); p != nil {
					results[i] = internalError(j.ids, j.target, p)
				}
			}()
			results[i] = j.run()
		}()
	}
	wg.Wait()

	var checks []Check
	for _, r := range results {
		checks = append(checks, r...)
	}
	return NewReport(checks)
}

func sqlIDs() []string {
	return []string{SQLBackupsEnabled, SQLRetainedBackups, SQLPITREnabled, SQLLogRetention,
		SQLLastBackupFresh, SQLNoFailedBackups, SQLRecoveryPointFresh}
}

func bucketIDs() []string { return []string{GCSGeoRedundant, GCSSoftDelete, GCSVersioning} }

func gkeIDs() []string {
	return []string{GKEPlanActive, GKERetention, GKERPORisk, GKELastBackupFresh, GKENoFailedBackups, GKEBackupGrowth, GKELeftoverPods}
}

// internalError turns a panic while auditing a target into failed checks.
func internalError(ids []string, target string, p any) []Check {
	out := make([]Check, 0, len(ids))
	for _, id := range ids {
		out = append(out, Check{
			ID: id, Target: target, Status: Fail,
			Observed: fmt.Sprintf("internal error: %v", p),
			Expected: "the audit to complete",
			Hint:     "this is a bug in fediops; please report it with the audit log",
		})
	}
	return out
}

// missingSource fails every check of a target whose API client was not configured.
func missingSource(ids []string, target, api string) []Check {
	out := make([]Check, 0, len(ids))
	for _, id := range ids {
		out = append(out, Check{
			ID: id, Target: target, Status: Fail,
			Observed: "could not read: no " + api + " client configured",
			Expected: "a " + api + " client",
			Hint:     "wire the " + api + " source into backupaudit.Sources (this is a deployment bug)",
		})
	}
	return out
}

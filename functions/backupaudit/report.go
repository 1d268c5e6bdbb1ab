// Package backupaudit proves that a Mastodon instance's backups on Google Cloud exist, are
// fresh and cover what they should: the Cloud SQL PostgreSQL database (automated backups and
// point-in-time recovery), the Cloud Storage media buckets (geo-redundancy, soft delete,
// versioning) and the Kubernetes namespace (Backup for GKE).
//
// Audit is the job: a plain function over the small CloudSQL, Buckets and GKEBackup
// interfaces, implemented by *gcpbackup.Client. Every check has a stable ID, a target, a
// status (pass, warn, fail), what it observed, what it expected and a remediation hint. API
// failures (403, 404, 5xx, timeouts, malformed answers) fail the checks that needed the
// answer and never stop the audit.
package backupaudit

import (
	"log/slog"
	"time"
)

// Status is the outcome of a check.
type Status string

// Statuses, from best to worst.
const (
	Pass Status = "pass"
	Warn Status = "warn"
	Fail Status = "fail"
)

// Check IDs. They are stable: alerting and dashboards may key on them.
const (
	SQLBackupsEnabled     = "cloudsql.backups_enabled"
	SQLRetainedBackups    = "cloudsql.retained_backups"
	SQLPITREnabled        = "cloudsql.pitr_enabled"
	SQLLogRetention       = "cloudsql.log_retention"
	SQLLastBackupFresh    = "cloudsql.last_backup_fresh"
	SQLNoFailedBackups    = "cloudsql.no_failed_backups"
	SQLRecoveryPointFresh = "cloudsql.recovery_point_fresh"

	GCSGeoRedundant = "gcs.geo_redundant"
	GCSSoftDelete   = "gcs.soft_delete"
	GCSVersioning   = "gcs.versioning"

	GKEPlanActive      = "gke.plan_active"
	GKERetention       = "gke.retention"
	GKERPORisk         = "gke.rpo_risk"
	GKELastBackupFresh = "gke.last_backup_fresh"
	GKENoFailedBackups = "gke.no_failed_backups"
	GKEBackupGrowth    = "gke.backup_growth"
	GKELeftoverPods    = "gke.leftover_pods"
)

// CheckIDs lists every check ID in the order the audit reports them for one target of
// each kind.
func CheckIDs() []string {
	return []string{
		SQLBackupsEnabled, SQLRetainedBackups, SQLPITREnabled, SQLLogRetention,
		SQLLastBackupFresh, SQLNoFailedBackups, SQLRecoveryPointFresh,
		GCSGeoRedundant, GCSSoftDelete, GCSVersioning,
		GKEPlanActive, GKERetention, GKERPORisk, GKELastBackupFresh, GKENoFailedBackups, GKEBackupGrowth, GKELeftoverPods,
	}
}

// Check is the result of one check on one target.
type Check struct {
	ID       string `json:"id"`
	Target   string `json:"target"`
	Status   Status `json:"status"`
	Observed string `json:"observed"`
	Expected string `json:"expected"`
	Hint     string `json:"hint"` // how to fix it; empty when the check passed
}

// Summary counts checks by status.
type Summary struct {
	Pass int `json:"pass"`
	Warn int `json:"warn"`
	Fail int `json:"fail"`
}

// Report is the outcome of an audit.
type Report struct {
	Checks  []Check `json:"checks"`
	Summary Summary `json:"summary"`
}

// NewReport builds a report (with its summary) from checks.
func NewReport(checks []Check) Report {
	r := Report{Checks: checks}
	if r.Checks == nil {
		r.Checks = []Check{}
	}
	for _, c := range r.Checks {
		switch c.Status {
		case Pass:
			r.Summary.Pass++
		case Warn:
			r.Summary.Warn++
		default:
			r.Summary.Fail++
		}
	}
	return r
}

// Status is the worst status of the report: fail if any check failed, else warn if any
// warned, else pass.
func (r Report) Status() Status {
	switch {
	case r.Summary.Fail > 0:
		return Fail
	case r.Summary.Warn > 0:
		return Warn
	}
	return Pass
}

// level is the log level of a check or report with this status: ERROR for fail, WARNING
// for warn, else INFO.
func (s Status) level() slog.Level {
	switch s {
	case Fail:
		return slog.LevelError
	case Warn:
		return slog.LevelWarn
	}
	return slog.LevelInfo
}

// Find returns the check with id on target.
func (r Report) Find(id, target string) (Check, bool) {
	for _, c := range r.Checks {
		if c.ID == id && c.Target == target {
			return c, true
		}
	}
	return Check{}, false
}

// Thresholds are the limits the checks apply. Zero fields take the defaults
// (see DefaultThresholds).
type Thresholds struct {
	MinRetainedBackups  int           // cloudsql.retained_backups: 7
	MinLogRetentionDays int           // cloudsql.log_retention: 7
	MaxBackupAge        time.Duration // cloudsql/gke.last_backup_fresh: 26h
	FailedWindow        time.Duration // cloudsql/gke.no_failed_backups: 7 days
	MaxRecoveryPointAge time.Duration // cloudsql.recovery_point_fresh: 15m
	MinSoftDeleteDays   int           // gcs.soft_delete: 7
	MinGKERetentionDays int           // gke.retention: 7
	MaxGrowthPct        float64       // gke.backup_growth: 50 (%)
	GrowthWindow        int           // gke.backup_growth: the 7 previous backups
	// LeftoverPodsMinAge: gke.leftover_pods reports pods that finished at least this long
	// ago (default 0: every finished pod).
	LeftoverPodsMinAge time.Duration
}

// DefaultThresholds returns the defaults: nightly backups kept a week, PITR logs for a week
// and flowing within 15 minutes.
func DefaultThresholds() Thresholds {
	return Thresholds{
		MinRetainedBackups:  7,
		MinLogRetentionDays: 7,
		MaxBackupAge:        26 * time.Hour,
		FailedWindow:        7 * 24 * time.Hour,
		MaxRecoveryPointAge: 15 * time.Minute,
		MinSoftDeleteDays:   7,
		MinGKERetentionDays: 7,
		MaxGrowthPct:        50,
		GrowthWindow:        7,
	}
}

// WithDefaults returns t with every zero (or negative) field set to its default.
func (t Thresholds) WithDefaults() Thresholds {
	d := DefaultThresholds()
	if t.MinRetainedBackups <= 0 {
		t.MinRetainedBackups = d.MinRetainedBackups
	}
	if t.MinLogRetentionDays <= 0 {
		t.MinLogRetentionDays = d.MinLogRetentionDays
	}
	if t.MaxBackupAge <= 0 {
		t.MaxBackupAge = d.MaxBackupAge
	}
	if t.FailedWindow <= 0 {
		t.FailedWindow = d.FailedWindow
	}
	if t.MaxRecoveryPointAge <= 0 {
		t.MaxRecoveryPointAge = d.MaxRecoveryPointAge
	}
	if t.MinSoftDeleteDays <= 0 {
		t.MinSoftDeleteDays = d.MinSoftDeleteDays
	}
	if t.MinGKERetentionDays <= 0 {
		t.MinGKERetentionDays = d.MinGKERetentionDays
	}
	if t.MaxGrowthPct <= 0 {
		t.MaxGrowthPct = d.MaxGrowthPct
	}
	if t.GrowthWindow <= 0 {
		t.GrowthWindow = d.GrowthWindow
	}
	return t
}

// Targets is what to audit.
type Targets struct {
	CloudSQL []SQLTarget
	Buckets  []string // bucket names
	GKE      []GKETarget
}

// SQLTarget is a Cloud SQL instance.
type SQLTarget struct {
	Project  string
	Instance string
}

// String is the check target: "project/instance".
func (t SQLTarget) String() string { return t.Project + "/" + t.Instance }

// GKETarget is a Backup for GKE backup plan.
type GKETarget struct {
	Project  string
	Location string
	Plan     string
	// Cleanup is the optional removal of old finished pods in the plan's namespaces.
	Cleanup PodCleanup
}

// Name is the plan's resource name, projects/P/locations/L/backupPlans/X.
func (t GKETarget) Name() string {
	return "projects/" + t.Project + "/locations/" + t.Location + "/backupPlans/" + t.Plan
}

// String is the check target: "project/location/plan".
func (t GKETarget) String() string { return t.Project + "/" + t.Location + "/" + t.Plan }

// bucketTarget is the check target of a bucket: "gs://name".
func bucketTarget(name string) string { return "gs://" + name }

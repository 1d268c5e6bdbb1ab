package backupaudit

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/fediops/fediops/shared/gcpbackup"
)

// auditSQL runs the cloudsql.* checks on one instance.
func auditSQL(ctx context.Context, src CloudSQL, t SQLTarget, now time.Time, th Thresholds) []Check {
	target := t.String()
	if src == nil {
		return missingSource(sqlIDs(), target, "Cloud SQL Admin")
	}
	res := sqlResource(t)
	var out []Check

	inst, instErr := src.Instance(ctx, t.Project, t.Instance)
	if instErr != nil {
		out = append(out, errorChecks([]string{SQLBackupsEnabled, SQLRetainedBackups, SQLPITREnabled, SQLLogRetention}, target, res, instErr, th)...)
	} else {
		out = append(out,
			sqlBackupsEnabled(t, inst, th),
			sqlRetainedBackups(t, inst, th),
			sqlPITREnabled(t, inst, th),
			sqlLogRetention(t, inst, th),
		)
	}

	runs, runsErr := src.BackupRuns(ctx, t.Project, t.Instance)
	if runsErr != nil {
		out = append(out, errorChecks([]string{SQLLastBackupFresh, SQLNoFailedBackups}, target, res, runsErr, th)...)
	} else {
		var enabled *bool
		if instErr == nil {
			enabled = &inst.BackupEnabled
		}
		out = append(out,
			sqlLastBackupFresh(t, runs, enabled, now, th),
			sqlNoFailedBackups(t, runs, now, th),
		)
	}

	if instErr == nil && !inst.PointInTimeRecovery {
		// Without PITR there are no transaction logs and no recovery point to ask for.
		out = append(out, Check{
			ID: SQLRecoveryPointFresh, Target: target, Status: Fail,
			Observed: "no recovery point: point-in-time recovery is off",
			Expected: expectation(SQLRecoveryPointFresh, th),
			Hint:     pitrHint(t, inst.Engine(), th),
		})
		return out
	}
	rt, rtErr := src.LatestRecoveryTime(ctx, t.Project, t.Instance)
	if rtErr != nil {
		out = append(out, errorChecks([]string{SQLRecoveryPointFresh}, target, res, rtErr, th)...)
	} else {
		out = append(out, sqlRecoveryPointFresh(t, inst, instErr == nil, rt, now, th))
	}
	return out
}

func sqlPatch(t SQLTarget, flags string) string {
	return fmt.Sprintf("gcloud sql instances patch %s --project=%s %s", t.Instance, t.Project, flags)
}

// pitrHint turns point-in-time recovery on: binary logging on MySQL, the PITR setting on
// PostgreSQL and SQL Server (gcloud sql instances patch refuses the other engine's flag).
func pitrHint(t SQLTarget, engine gcpbackup.Engine, th Thresholds) string {
	logs := fmt.Sprintf("--retained-transaction-log-days=%d", th.MinLogRetentionDays)
	switch engine {
	case gcpbackup.EngineMySQL:
		return sqlPatch(t, "--enable-bin-log "+logs)
	case gcpbackup.EnginePostgres, gcpbackup.EngineSQLServer:
		return sqlPatch(t, "--enable-point-in-time-recovery "+logs)
	}
	return sqlPatch(t, "--enable-point-in-time-recovery "+logs) + " (on MySQL: --enable-bin-log instead of --enable-point-in-time-recovery)"
}

func sqlBackupsEnabled(t SQLTarget, inst gcpbackup.SQLInstance, th Thresholds) Check {
	c := Check{ID: SQLBackupsEnabled, Target: t.String(), Expected: expectation(SQLBackupsEnabled, th)}
	if inst.BackupEnabled {
		c.Status = Pass
		c.Observed = "automated backups enabled"
		if inst.BackupStartTime != "" {
			c.Observed += ", window starts " + inst.BackupStartTime + " UTC"
		}
		if inst.BackupTier == "ENHANCED" {
			c.Observed += " (enhanced backups: managed by Backup and DR, backup runs may be incomplete)"
		}
		return c
	}
	c.Status = Fail
	c.Observed = "automated backups disabled"
	c.Hint = sqlPatch(t, "--backup-start-time=03:00")
	return c
}

func sqlRetainedBackups(t SQLTarget, inst gcpbackup.SQLInstance, th Thresholds) Check {
	c := Check{ID: SQLRetainedBackups, Target: t.String(), Expected: expectation(SQLRetainedBackups, th)}
	hint := sqlPatch(t, fmt.Sprintf("--retained-backups-count=%d", th.MinRetainedBackups))
	switch {
	case !inst.RetentionSettings:
		c.Status, c.Observed, c.Hint = Fail, "no backup retention settings reported", hint
	case inst.RetentionUnit != "" && inst.RetentionUnit != "COUNT" && inst.RetentionUnit != "RETENTION_UNIT_UNSPECIFIED":
		c.Status = Warn
		c.Observed = fmt.Sprintf("%d retained, in unknown retention unit %q", inst.RetainedBackups, inst.RetentionUnit)
		c.Hint = hint
	case inst.RetainedBackups >= int64(th.MinRetainedBackups):
		c.Status, c.Observed = Pass, plural(int(inst.RetainedBackups), "backup")+" retained"
	default:
		c.Status, c.Observed, c.Hint = Fail, plural(int(inst.RetainedBackups), "backup")+" retained", hint
	}
	return c
}

func sqlPITREnabled(t SQLTarget, inst gcpbackup.SQLInstance, th Thresholds) Check {
	c := Check{ID: SQLPITREnabled, Target: t.String(), Expected: expectation(SQLPITREnabled, th)}
	if inst.PointInTimeRecovery {
		c.Status, c.Observed = Pass, "point-in-time recovery enabled"
		return c
	}
	c.Status, c.Observed, c.Hint = Fail, "point-in-time recovery disabled", pitrHint(t, inst.Engine(), th)
	return c
}

func sqlLogRetention(t SQLTarget, inst gcpbackup.SQLInstance, th Thresholds) Check {
	c := Check{ID: SQLLogRetention, Target: t.String(), Expected: expectation(SQLLogRetention, th)}
	n := inst.LogRetentionDays
	switch {
	case n >= int64(th.MinLogRetentionDays):
		c.Status, c.Observed = Pass, "transaction logs kept "+days(int(n))
	case n == 0:
		c.Status, c.Observed = Fail, "transaction log retention not set"
	default:
		c.Status, c.Observed = Fail, "transaction logs kept "+days(int(n))
	}
	if c.Status == Fail {
		if inst.PointInTimeRecovery {
			c.Hint = sqlPatch(t, fmt.Sprintf("--retained-transaction-log-days=%d", th.MinLogRetentionDays))
		} else {
			c.Hint = pitrHint(t, inst.Engine(), th)
		}
	}
	return c
}

// sqlLastBackupFresh looks at the newest SUCCESSFUL AUTOMATED run. enabled is the
// instance's backup setting when it is known, to choose the hint.
func sqlLastBackupFresh(t SQLTarget, runs []gcpbackup.SQLBackupRun, enabled *bool, now time.Time, th Thresholds) Check {
	c := Check{ID: SQLLastBackupFresh, Target: t.String(), Expected: expectation(SQLLastBackupFresh, th)}
	var newest time.Time
	for _, r := range runs {
		if r.Type == "AUTOMATED" && r.Status == "SUCCESSFUL" && r.End.After(newest) {
			newest = r.End
		}
	}
	hint := fmt.Sprintf("see why the nightly backup did not run: gcloud sql operations list --instance=%s --project=%s --limit=20; take one now: gcloud sql backups create --instance=%s --project=%s",
		t.Instance, t.Project, t.Instance, t.Project)
	if enabled != nil && !*enabled {
		hint = sqlPatch(t, "--backup-start-time=03:00") + " (automated backups are disabled)"
	}
	if newest.IsZero() {
		c.Status = Fail
		c.Observed = fmt.Sprintf("no successful automated backup found (%s listed)", plural(len(runs), "run"))
		c.Hint = hint
		return c
	}
	c.Observed = "newest ended " + since(newest, now)
	if now.Sub(newest) < th.MaxBackupAge {
		c.Status = Pass
		return c
	}
	c.Status, c.Hint = Fail, hint
	return c
}

func sqlNoFailedBackups(t SQLTarget, runs []gcpbackup.SQLBackupRun, now time.Time, th Thresholds) Check {
	c := Check{ID: SQLNoFailedBackups, Target: t.String(), Expected: expectation(SQLNoFailedBackups, th)}
	var bad []gcpbackup.SQLBackupRun
	for _, r := range runs {
		if r.Status != "FAILED" && r.Status != "OVERDUE" {
			continue
		}
		w := r.When()
		if w.IsZero() || now.Sub(w) < th.FailedWindow {
			bad = append(bad, r)
		}
	}
	if len(bad) == 0 {
		c.Status = Pass
		c.Observed = fmt.Sprintf("none in the last %s (%s listed)", limit(th.FailedWindow), plural(len(runs), "run"))
		return c
	}
	sort.SliceStable(bad, func(i, j int) bool { return bad[i].When().After(bad[j].When()) })
	var parts []string
	for i, r := range bad {
		if i == 3 {
			parts = append(parts, fmt.Sprintf("and %d more", len(bad)-3))
			break
		}
		p := fmt.Sprintf("%s %s run %d", r.Status, strings.ToLower(r.Type), r.ID)
		if w := r.When(); !w.IsZero() {
			p += " at " + stamp(w)
		}
		if r.Error != "" {
			p += " (" + r.Error + ")"
		}
		parts = append(parts, p)
	}
	c.Status = Warn
	c.Observed = plural(len(bad), "problem run") + ": " + strings.Join(parts, "; ")
	c.Hint = fmt.Sprintf("see what happened: gcloud sql operations list --instance=%s --project=%s --limit=20", t.Instance, t.Project)
	for _, r := range bad {
		if r.Status == "FAILED" {
			c.Hint = fmt.Sprintf("read the error: gcloud sql backups describe %d --instance=%s --project=%s; ", r.ID, t.Instance, t.Project) + c.Hint
			break
		}
	}
	return c
}

func sqlRecoveryPointFresh(t SQLTarget, inst gcpbackup.SQLInstance, instKnown bool, rt, now time.Time, th Thresholds) Check {
	c := Check{ID: SQLRecoveryPointFresh, Target: t.String(), Expected: expectation(SQLRecoveryPointFresh, th)}
	hint := fmt.Sprintf("transaction logs are not flowing: check the instance is RUNNABLE and PITR is on: gcloud sql instances describe %s --project=%s --format='value(state,settings.backupConfiguration)'",
		t.Instance, t.Project)
	if instKnown && inst.State != "" && inst.State != "RUNNABLE" {
		hint = fmt.Sprintf("the instance is %s, not RUNNABLE: no logs are archived while it is stopped or failing (gcloud sql instances describe %s --project=%s)",
			inst.State, t.Instance, t.Project)
	}
	if rt.IsZero() {
		c.Status, c.Observed, c.Hint = Fail, "no latest recovery time reported", hint
		return c
	}
	c.Observed = "latest recovery time " + since(rt, now)
	if now.Sub(rt) < th.MaxRecoveryPointAge {
		c.Status = Pass
		return c
	}
	c.Status, c.Hint = Fail, hint
	return c
}

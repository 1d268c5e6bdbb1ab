package backupaudit

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/fediops/fediops/shared/gcpbackup"
)

// auditGKE runs the gke.* checks on one backup plan.
func auditGKE(ctx context.Context, src GKEBackup, pods Pods, t GKETarget, now time.Time, th Thresholds) []Check {
	target := t.String()
	if src == nil {
		return missingSource(gkeIDs(), target, "Backup for GKE")
	}
	res := gkeResource(t)
	var out []Check
	plan, planErr := src.Plan(ctx, t.Name())
	if planErr != nil {
		out = append(out, errorChecks([]string{GKEPlanActive, GKERetention, GKERPORisk}, target, res, planErr, th)...)
	} else {
		out = append(out, gkePlanActive(t, plan, th), gkeRetention(t, plan, th), gkeRPORisk(t, plan, th))
	}
	backups, err := src.Backups(ctx, t.Name())
	if err != nil {
		out = append(out, errorChecks([]string{GKELastBackupFresh, GKENoFailedBackups, GKEBackupGrowth}, target, res, err, th)...)
	} else {
		succeeded := succeededNewestFirst(backups)
		out = append(out,
			gkeLastBackupFresh(t, succeeded, len(backups), now, th),
			gkeNoFailedBackups(t, backups, now, th),
			gkeBackupGrowth(t, succeeded, th),
		)
	}
	if planErr != nil {
		// Without the plan there is no scope and no cluster to look at.
		return append(out, errorChecks([]string{GKELeftoverPods}, target, res, planErr, th)...)
	}
	return append(out, gkeLeftoverPods(ctx, pods, t, plan, now, th))
}

// The Backup for GKE commands are in gcloud's beta (and alpha) release track only: there is no
// GA `gcloud container backup-restore`. They are spelt out in each hint so that the gcloud
// check (gcloud_test.go) sees every one.

func planUpdate(t GKETarget, flags string) string {
	return fmt.Sprintf("gcloud beta container backup-restore backup-plans update %s --project=%s --location=%s %s", t.Plan, t.Project, t.Location, flags)
}

// planCreate is a command creating a replacement for plan p (which cannot be fixed in place)
// with a nightly schedule and retention of at least th.MinGKERetentionDays.
func planCreate(t GKETarget, p gcpbackup.GKEPlan, th Thresholds) string {
	cluster := p.Cluster
	if cluster == "" {
		cluster = fmt.Sprintf("projects/%s/locations/%s/clusters/CLUSTER", t.Project, t.Location)
	}
	return fmt.Sprintf(`gcloud beta container backup-restore backup-plans create %s-2 --project=%s --location=%s --cluster=%s --all-namespaces --include-volume-data --include-secrets --cron-schedule="0 3 * * *" --backup-retain-days=%d; then set plan = "%s-2" in [[backup.gke]]`,
		t.Plan, t.Project, t.Location, cluster, th.MinGKERetentionDays, t.Plan)
}

func gkePlanActive(t GKETarget, p gcpbackup.GKEPlan, th Thresholds) Check {
	c := Check{ID: GKEPlanActive, Target: t.String(), Expected: expectation(GKEPlanActive, th)}
	var problems, hints []string
	state := orDefault(p.State, "STATE_UNSPECIFIED")
	if state != "READY" {
		s := "state " + state
		if p.StateReason != "" {
			s += " (" + p.StateReason + ")"
		}
		problems = append(problems, s)
		hints = append(hints, fmt.Sprintf("see why: gcloud beta container backup-restore backup-plans describe %s --project=%s --location=%s", t.Plan, t.Project, t.Location))
	}
	if p.Deactivated {
		problems = append(problems, "deactivated")
		hints = append(hints, "a deactivated plan cannot be reactivated: create a new one (same scope as the old one), e.g. "+planCreate(t, p, th))
	}
	schedule := ""
	switch {
	case p.CronSchedule != "":
		schedule = fmt.Sprintf("cron %q", p.CronSchedule)
	case p.TargetRPOMinutes > 0:
		schedule = fmt.Sprintf("RPO target %s", limit(time.Duration(p.TargetRPOMinutes)*time.Minute))
	default:
		problems = append(problems, "no backup schedule")
		hints = append(hints, planUpdate(t, `--cron-schedule="0 3 * * *"`))
	}
	if p.Paused {
		problems = append(problems, "schedule paused")
		hints = append(hints, planUpdate(t, "--no-paused"))
	}
	if len(problems) == 0 {
		c.Status = Pass
		c.Observed = "READY, " + schedule
		return c
	}
	c.Status = Fail
	c.Observed = strings.Join(problems, "; ")
	if schedule != "" {
		c.Observed += "; " + schedule
	}
	c.Hint = strings.Join(hints, "; ")
	return c
}

func gkeRetention(t GKETarget, p gcpbackup.GKEPlan, th Thresholds) Check {
	c := Check{ID: GKERetention, Target: t.String(), Expected: expectation(GKERetention, th)}
	n := int(p.RetainDays)
	switch {
	case n == 0:
		// backup_retain_days 0 (or no policy): backups are never deleted automatically.
		c.Status, c.Observed = Pass, "backups are never deleted automatically (backupRetainDays 0)"
	case n >= th.MinGKERetentionDays:
		c.Status, c.Observed = Pass, "backups kept "+days(n)
	default:
		c.Status, c.Observed = Fail, "backups kept "+days(n)
		c.Hint = planUpdate(t, fmt.Sprintf("--backup-retain-days=%d", th.MinGKERetentionDays))
		if p.RetentionLocked {
			c.Hint = "the retention policy is locked and cannot be changed: create a new plan (same scope as the old one), e.g. " + planCreate(t, p, th)
		}
	}
	return c
}

// doneAt is when a backup finished, or when it was created if that is unknown.
func doneAt(b gcpbackup.GKEBackup) time.Time {
	if !b.Completed.IsZero() {
		return b.Completed
	}
	return b.Created
}

func succeededNewestFirst(backups []gcpbackup.GKEBackup) []gcpbackup.GKEBackup {
	var out []gcpbackup.GKEBackup
	for _, b := range backups {
		if b.State == "SUCCEEDED" {
			out = append(out, b)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return doneAt(out[i]).After(doneAt(out[j])) })
	return out
}

func gkeLastBackupFresh(t GKETarget, succeeded []gcpbackup.GKEBackup, listed int, now time.Time, th Thresholds) Check {
	c := Check{ID: GKELastBackupFresh, Target: t.String(), Expected: expectation(GKELastBackupFresh, th)}
	hint := fmt.Sprintf("check the plan's schedule and recent backups: gcloud beta container backup-restore backups list --backup-plan=%s --project=%s --location=%s; take one now: gcloud beta container backup-restore backups create manual-$(date +%%Y%%m%%d) --backup-plan=%s --project=%s --location=%s",
		t.Plan, t.Project, t.Location, t.Plan, t.Project, t.Location)
	if len(succeeded) == 0 {
		c.Status = Fail
		c.Observed = fmt.Sprintf("no SUCCEEDED backup found (%s listed)", plural(listed, "backup"))
		c.Hint = hint
		return c
	}
	newest := succeeded[0]
	c.Observed = fmt.Sprintf("newest %s completed %s", path.Base(newest.Name), since(doneAt(newest), now))
	if now.Sub(doneAt(newest)) < th.MaxBackupAge {
		c.Status = Pass
		return c
	}
	c.Status, c.Hint = Fail, hint
	return c
}

func gkeNoFailedBackups(t GKETarget, backups []gcpbackup.GKEBackup, now time.Time, th Thresholds) Check {
	c := Check{ID: GKENoFailedBackups, Target: t.String(), Expected: expectation(GKENoFailedBackups, th)}
	var failed []gcpbackup.GKEBackup
	for _, b := range backups {
		if b.State != "FAILED" {
			continue
		}
		w := b.Created
		if w.IsZero() {
			w = b.Completed
		}
		if w.IsZero() || now.Sub(w) < th.FailedWindow {
			failed = append(failed, b)
		}
	}
	if len(failed) == 0 {
		c.Status = Pass
		c.Observed = fmt.Sprintf("none in the last %s (%s listed)", limit(th.FailedWindow), plural(len(backups), "backup"))
		return c
	}
	sort.SliceStable(failed, func(i, j int) bool { return failed[i].Created.After(failed[j].Created) })
	var parts []string
	for i, b := range failed {
		if i == 3 {
			parts = append(parts, fmt.Sprintf("and %d more", len(failed)-3))
			break
		}
		p := path.Base(b.Name)
		if !b.Created.IsZero() {
			p += " at " + stamp(b.Created)
		}
		if b.StateReason != "" {
			p += " (" + b.StateReason + ")"
		}
		parts = append(parts, p)
	}
	c.Status = Warn
	c.Observed = plural(len(failed), "failed backup") + ": " + strings.Join(parts, "; ")
	c.Hint = fmt.Sprintf("read the reason: gcloud beta container backup-restore backups describe %s --backup-plan=%s --project=%s --location=%s",
		path.Base(failed[0].Name), t.Plan, t.Project, t.Location)
	return c
}

// gkeBackupGrowth compares the newest succeeded backup with the median of the previous
// GrowthWindow succeeded ones. Finished (Succeeded) and Failed pods left in the namespace
// are backed up too, so a jump in pods or size usually means leftover Job pods.
func gkeBackupGrowth(t GKETarget, succeeded []gcpbackup.GKEBackup, th Thresholds) Check {
	c := Check{ID: GKEBackupGrowth, Target: t.String(), Expected: expectation(GKEBackupGrowth, th)}
	if len(succeeded) < 2 {
		c.Status = Pass
		c.Observed = fmt.Sprintf("not enough succeeded backups to compare (%d)", len(succeeded))
		return c
	}
	newest := succeeded[0]
	prev := succeeded[1:]
	if len(prev) > th.GrowthWindow {
		prev = prev[:th.GrowthWindow]
	}
	pods := make([]float64, len(prev))
	sizes := make([]float64, len(prev))
	for i, b := range prev {
		pods[i] = float64(b.PodCount)
		sizes[i] = float64(b.SizeBytes)
	}
	medPods, medSize := median(pods), median(sizes)

	var parts []string
	grew := false
	compare := func(label string, v, med float64, format func(float64) string) {
		if med <= 0 {
			parts = append(parts, fmt.Sprintf("%s %s (no baseline)", label, format(v)))
			return
		}
		g := (v - med) / med * 100
		parts = append(parts, fmt.Sprintf("%s %s vs median %s (%+.0f%%)", label, format(v), format(med), g))
		if g > th.MaxGrowthPct {
			grew = true
		}
	}
	compare("pods", float64(newest.PodCount), medPods, func(f float64) string { return fmt.Sprintf("%.0f", f) })
	compare("size", float64(newest.SizeBytes), medSize, func(f float64) string { return bytes(int64(f)) })
	c.Observed = strings.Join(parts, ", ") + fmt.Sprintf(" over the previous %s", plural(len(prev), "backup"))
	if !grew {
		c.Status = Pass
		return c
	}
	c.Status = Warn
	c.Hint = "finished and failed pods are backed up too (gke.leftover_pods lists them): delete them (kubectl delete pods -n NAMESPACE --field-selector=status.phase==Succeeded; same with ==Failed) and limit Job leftovers (ttlSecondsAfterFinished, successfulJobsHistoryLimit, failedJobsHistoryLimit)"
	return c
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

package backupaudit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/fediops/fediops/shared/archive"
	"github.com/fediops/fediops/shared/gcpbackup"
	"github.com/fediops/fediops/shared/mastodondb"
	"github.com/fediops/fediops/shared/run"
)

// permanent reports whether a failed request cannot succeed by trying again.
func permanent(err error) bool {
	switch gcpbackup.KindOf(err) {
	case gcpbackup.KindRefused, gcpbackup.KindPermissionDenied, gcpbackup.KindUnauthenticated, gcpbackup.KindSetup:
		return true
	case gcpbackup.KindTimeout, gcpbackup.KindUnavailable:
		return false
	}
	return run.IsPermanent(err)
}

// retry decides what a failed request means: a transient failure is tried again after a
// poll (up to maxAttempts), anything else, or too many attempts, fails the phase through fail.
func (ss *session) retry(err error, what string, fail func(observed, hint string)) error {
	ss.s.Retries++
	if !permanent(err) && ss.s.Retries < maxAttempts {
		ss.s.Note = fmt.Sprintf("could not %s (attempt %d of %d, retrying): %v", what, ss.s.Retries, maxAttempts, err)
		ss.log.Warn(fmt.Sprintf("drill of %s: %s", ss.t, ss.s.Note))
		return errWait
	}
	fail(fmt.Sprintf("could not %s: %v", what, err), ss.hintFor(err))
	ss.toDeleting("could not " + what)
	return nil
}

// hintFor is the remediation of a failed Cloud SQL Admin request of the drill.
func (ss *session) hintFor(err error) string {
	switch gcpbackup.KindOf(err) {
	case gcpbackup.KindPermissionDenied:
		return "the drill's service account needs cloudsql.instances.clone on the source and cloudsql.instances.get/update/delete on fediops-drill-* instances: list the instance in drill_instances in infra/terraform.tfvars and apply (docs/deployment.md, \"Restore drill\")"
	case gcpbackup.KindRefused:
		return "this is a bug in fediops (it only ever changes fediops-drill-* instances); please report it"
	}
	return fmt.Sprintf("check the source instance and its point-in-time recovery: gcloud sql instances describe %s --project=%s", ss.t.Instance, ss.t.Project)
}

// failClone fails drill.clone, and the checks that needed the clone.
func (ss *session) failClone(observed, hint string) {
	ss.s.set(Check{ID: DrillClone, Target: ss.t.String(), Status: Fail, Observed: observed,
		Expected: "a clone of the instance at the point in time that becomes RUNNABLE", Hint: hint})
	ss.notMeasured("the clone failed")
}

// failData fails drill.data (and what it would have measured).
func (ss *session) failData(observed, hint string) {
	ss.s.set(Check{ID: DrillData, Target: ss.t.String(), Status: Fail, Observed: observed, Expected: ss.dataExpected(), Hint: hint})
	ss.notMeasured("the data was not verified")
}

// notMeasured fails the undecided data, RTO and RPO checks.
func (ss *session) notMeasured(why string) {
	for _, c := range []Check{
		{ID: DrillData, Expected: ss.dataExpected()},
		{ID: DrillRTO, Expected: "measured: minutes from the clone request to verified data"},
		{ID: DrillRPO, Expected: ss.rpoExpected()},
	} {
		if _, ok := ss.s.check(c.ID); ok {
			continue
		}
		c.Target, c.Status = ss.t.String(), Fail
		c.Observed = "not measured: " + why
		c.Hint = "see drill.clone and drill.data"
		ss.s.set(c)
	}
}

func (ss *session) dataExpected() string {
	e := "accounts, users and statuses not empty"
	if ss.t.SchemaVersion != "" {
		e = "newest schema_migrations.version " + ss.t.SchemaVersion + "; " + e
	}
	return e
}

func (ss *session) rpoExpected() string {
	return fmt.Sprintf("newest statuses and accounts rows at most %s before the point in time", limit(ss.t.MaxDataAge))
}

// stepStart chooses the point in time and requests the clone. The state is saved before the
// request: if this invocation dies after sending it, the next one finds the clone.
func (ss *session) stepStart(ctx context.Context) error {
	s, t := &ss.s, ss.t
	now := ss.d.Clock.Now()
	if s.CloneAttempts > 0 {
		// An earlier attempt sent the request; its answer may have been lost.
		_, err := ss.d.SQL.Instance(ctx, t.Project, s.Clone)
		if err == nil {
			s.Phase, s.Note = PhaseCloning, "found the clone that an earlier invocation requested"
			return nil
		}
		if gcpbackup.KindOf(err) != gcpbackup.KindNotFound {
			return ss.retry(err, "look for the clone "+s.Clone, ss.failClone)
		}
		if s.CloneAttempts >= maxAttempts {
			ss.failClone(fmt.Sprintf("the clone was requested %d times and does not exist", s.CloneAttempts), ss.hintFor(nil))
			ss.toDeleting("no clone")
			return nil
		}
	}
	if s.PointInTime.IsZero() {
		latest, err := ss.d.SQL.LatestRecoveryTime(ctx, t.Project, t.Instance)
		if err != nil {
			return ss.retry(err, "read the latest recovery time of "+t.String(), ss.failClone)
		}
		pit := now.Add(-PointInTimeLag)
		if !latest.IsZero() && latest.Before(pit) {
			pit = latest
		}
		s.PointInTime = pit.UTC().Truncate(time.Second)
	}
	s.CloneAttempts++
	s.Requested = now
	s.Note = "requesting the clone at " + stamp(s.PointInTime)
	if err := ss.save(ctx); err != nil {
		return err
	}
	op, err := ss.d.SQL.Clone(ctx, t.Project, t.Instance, s.Clone, s.PointInTime)
	switch {
	case err == nil:
		s.CloneOperation = op.Name
		s.Phase, s.Note = PhaseCloning, "clone requested (operation "+op.Name+")"
	case gcpbackup.KindOf(err) == gcpbackup.KindConflict:
		s.Phase, s.Note = PhaseCloning, "the clone already exists: an earlier request went through"
	default:
		return ss.retry(err, "clone "+t.String()+" into "+s.Clone, ss.failClone)
	}
	return nil
}

// stepCloning waits for the clone operation and for the clone to be RUNNABLE, then turns off
// deletion protection and sets the drill's tier if needed (a patch of the clone only).
func (ss *session) stepCloning(ctx context.Context) error {
	s, t := &ss.s, ss.t
	now := ss.d.Clock.Now()
	if s.CloneOperation != "" && s.CloneReady.IsZero() {
		op, err := ss.d.SQL.Operation(ctx, t.Project, s.CloneOperation)
		if err != nil {
			return ss.retry(err, "read the clone operation "+s.CloneOperation, ss.failClone)
		}
		if op.Failed() {
			ss.failClone("the clone operation failed: "+op.Error,
				fmt.Sprintf("see the operation: gcloud sql operations describe %s --project=%s", op.Name, t.Project))
			ss.toDeleting("the clone failed")
			return nil
		}
		if !op.Done() {
			s.Note = fmt.Sprintf("clone operation %s is %s, %s after the request", op.Name, op.Status, age(now.Sub(s.Requested)))
			return errWait
		}
		s.CloneReady = op.Ended
		if s.CloneReady.IsZero() {
			s.CloneReady = now
		}
	}
	inst, err := ss.d.SQL.Instance(ctx, t.Project, s.Clone)
	if gcpbackup.KindOf(err) == gcpbackup.KindNotFound {
		s.Note = "the clone does not exist yet"
		return errWait
	}
	if err != nil {
		return ss.retry(err, "read the clone "+s.Clone, ss.failClone)
	}
	switch inst.State {
	case "RUNNABLE":
	case "FAILED", "SUSPENDED":
		ss.failClone(fmt.Sprintf("the clone %s is %s", s.Clone, inst.State),
			fmt.Sprintf("see what happened: gcloud sql operations list --instance=%s --project=%s", s.Clone, t.Project))
		ss.toDeleting("the clone failed")
		return nil
	default:
		s.Note = fmt.Sprintf("the clone is %s, %s after the request", orDefault(inst.State, "in an unknown state"), age(now.Sub(s.Requested)))
		return errWait
	}
	if s.CloneReady.IsZero() {
		s.CloneReady = now
	}
	if s.PatchOperation != "" {
		op, err := ss.d.SQL.Operation(ctx, t.Project, s.PatchOperation)
		if err == nil && !op.Done() {
			s.Note = "waiting for the clone's settings to change"
			return errWait
		}
		if err == nil && op.Failed() {
			ss.log.Warn(fmt.Sprintf("drill of %s: changing the clone's settings failed: %s; verifying anyway", t, op.Error))
		}
		s.PatchOperation = ""
	}
	needTier := t.Tier != "" && inst.Tier != t.Tier
	if !s.Patched && (needTier || inst.DeletionProtection) {
		p := gcpbackup.DrillPatch{DisableDeletionProtection: inst.DeletionProtection}
		if needTier {
			p.Tier = t.Tier
		}
		op, err := ss.d.SQL.PatchDrillInstance(ctx, t.Project, s.Clone, p)
		if err != nil {
			return ss.retry(err, "change the clone's settings", ss.failClone)
		}
		s.Patched, s.PatchOperation = true, op.Name
		s.Note = fmt.Sprintf("changing the clone's settings (tier %q, deletion protection off: %v)", p.Tier, p.DisableDeletionProtection)
		return errWait
	}
	ss.s.set(Check{ID: DrillClone, Target: t.String(), Status: Pass,
		Observed: fmt.Sprintf("%s cloned at %s, RUNNABLE %s after the request", s.Clone, stamp(s.PointInTime), age(s.CloneReady.Sub(s.Requested))),
		Expected: "a clone of the instance at the point in time that becomes RUNNABLE"})
	s.Phase, s.Note = PhaseVerifying, "the clone is RUNNABLE"
	return nil
}

// stepVerify connects to the clone read-only and checks what it holds.
func (ss *session) stepVerify(ctx context.Context) error {
	s, t := &ss.s, ss.t
	inst, err := ss.d.SQL.Instance(ctx, t.Project, s.Clone)
	if err != nil {
		return ss.retry(err, "read the clone "+s.Clone, ss.failData)
	}
	facts, err := ss.facts(ctx, inst)
	if err != nil {
		return ss.retry(run.MarkTransient(err), "read the clone's data", func(observed, _ string) { ss.failData(observed, ss.connectHint()) })
	}
	s.Verified = ss.d.Clock.Now()
	ss.judge(facts)
	ss.toDeleting("data verified")
	return nil
}

func (ss *session) facts(ctx context.Context, inst gcpbackup.SQLInstance) (mastodondb.Facts, error) {
	db, err := ss.d.Open(ctx, ss.t, inst)
	if err != nil {
		return mastodondb.Facts{}, err
	}
	defer db.Close(ctx)
	return db.Facts(ctx, ss.s.PointInTime)
}

func (ss *session) connectHint() string {
	t := ss.t
	if t.PasswordRef != "" {
		return fmt.Sprintf("check drill_user, drill_password and drill_database; the user must exist on the source (a clone copies it) and may read Mastodon's tables (GRANT pg_read_all_data TO %s)", t.User)
	}
	return fmt.Sprintf("the drill signs in with IAM database authentication as %s: create that user on the source (a clone copies it): gcloud sql users create %s --instance=%s --type=cloud_iam_service_account --project=%s; let it read: GRANT pg_read_all_data TO \"%s\"; and check drill_ip_type (%s)",
		t.User, t.User+".gserviceaccount.com", t.Instance, t.Project, t.User, orDefault(t.IPType, "public"))
}

// judge turns the clone's facts into drill.data, drill.rto and drill.rpo.
func (ss *session) judge(f mastodondb.Facts) {
	s, t := &ss.s, ss.t
	var problems []string
	if t.SchemaVersion != "" && f.SchemaVersion != t.SchemaVersion {
		problems = append(problems, fmt.Sprintf("newest schema_migrations.version is %q, expected %q", f.SchemaVersion, t.SchemaVersion))
	}
	var sizes []string
	for _, tb := range []mastodondb.Table{f.Accounts, f.Users, f.Statuses} {
		if !tb.NonEmpty {
			problems = append(problems, "table "+tb.Name+" is empty")
		}
		est := "?"
		if tb.Estimate >= 0 {
			est = fmt.Sprintf("~%d", tb.Estimate)
		}
		sizes = append(sizes, tb.Name+" "+est)
	}
	facts := fmt.Sprintf("schema %s; %s rows; PostgreSQL %s", orDefault(f.SchemaVersion, "(no migrations)"), strings.Join(sizes, ", "), f.ServerVersion)
	data := Check{ID: DrillData, Target: t.String(), Expected: ss.dataExpected()}
	if len(problems) == 0 {
		data.Status, data.Observed = Pass, facts
	} else {
		data.Status = Fail
		data.Observed = strings.Join(problems, "; ") + " (" + facts + ")"
		data.Hint = fmt.Sprintf("the clone does not hold a working Mastodon database: check drill_database (%s) and drill_schema_version against the running Mastodon (bin/rails db:version)", t.Database)
	}
	s.set(data)

	rto := s.Verified.Sub(s.Requested)
	s.set(Check{ID: DrillRTO, Target: t.String(), Status: Pass,
		Observed: fmt.Sprintf("%s from the clone request to verified data (RTO); the clone was RUNNABLE after %s", age(rto), age(s.CloneReady.Sub(s.Requested))),
		Expected: "measured: minutes from the clone request to verified data"})

	rpo := Check{ID: DrillRPO, Target: t.String(), Expected: ss.rpoExpected()}
	var parts, old []string
	var newest time.Time
	for _, tb := range []mastodondb.Table{f.Statuses, f.Accounts} {
		if tb.Newest.IsZero() {
			old = append(old, "no "+tb.Name+" row at or before the point in time")
			continue
		}
		lag := s.PointInTime.Sub(tb.Newest)
		parts = append(parts, fmt.Sprintf("newest %s %s before the point in time", map[string]string{"statuses": "status", "accounts": "account"}[tb.Name], age(lag)))
		if lag > t.MaxDataAge {
			old = append(old, fmt.Sprintf("%s: newest row %s old", tb.Name, age(lag)))
		}
		if tb.Newest.After(newest) {
			newest = tb.Newest
		}
		s.NewestRow = newest
	}
	rpo.Observed = strings.Join(parts, ", ")
	if !newest.IsZero() {
		rpo.Observed = fmt.Sprintf("RPO %s at %s: %s", age(s.PointInTime.Sub(newest)), stamp(s.PointInTime), rpo.Observed)
	}
	if n := f.Statuses.After + f.Accounts.After; n > 0 {
		rpo.Observed += fmt.Sprintf("; %s dated after the point in time (a remote server's clock ahead?)", plural(int(n), "row"))
	}
	if len(old) == 0 {
		rpo.Status = Pass
	} else {
		rpo.Status = Fail
		rpo.Observed = "data too old: " + strings.Join(old, "; ") + "; " + rpo.Observed
		rpo.Hint = "the restored data is older than drill_max_data_age: check that point-in-time recovery reaches the recent past (cloudsql.recovery_point_fresh), that Mastodon writes to this database, and drill_database"
	}
	s.set(rpo)
}

// stepDelete deletes the clone and confirms it is gone.
func (ss *session) stepDelete(ctx context.Context) error {
	s, t := &ss.s, ss.t
	now := ss.d.Clock.Now()
	if s.CloneAttempts == 0 {
		ss.cleanup(Pass, "no clone was requested", "")
		return ss.finish(ctx)
	}
	if s.DeletingSince.IsZero() {
		s.DeletingSince = now
	}
	giveUp := now.After(s.DeletingSince.Add(deleteGrace))
	deleteHint := fmt.Sprintf("delete it by hand: gcloud sql instances delete %s --project=%s (the sweeper also retries every hour)", s.Clone, t.Project)
	if s.DeleteOperation != "" {
		op, err := ss.d.SQL.Operation(ctx, t.Project, s.DeleteOperation)
		switch {
		case err != nil:
			s.Note = "could not read the delete operation: " + err.Error()
		case !op.Done():
			s.Note = fmt.Sprintf("delete operation %s is %s", op.Name, op.Status)
			if !giveUp {
				return errWait
			}
		case op.Failed():
			s.Note = "the delete operation failed: " + op.Error
			ss.log.Warn(fmt.Sprintf("drill of %s: %s; trying again", t, s.Note))
			s.DeleteOperation = ""
		}
	}
	inst, err := ss.d.SQL.Instance(ctx, t.Project, s.Clone)
	switch {
	case gcpbackup.KindOf(err) == gcpbackup.KindNotFound:
		s.Deleted = now
		what := "the clone was deleted"
		if s.DeleteAttempts == 0 {
			what = "no clone exists (it was never created)"
		}
		ss.cleanup(Pass, fmt.Sprintf("%s; %s is gone", what, s.Clone), "")
		return ss.finish(ctx)
	case err != nil:
		if giveUp {
			ss.cleanup(Fail, "could not confirm the clone is gone: "+err.Error(), deleteHint)
			return ss.finish(ctx)
		}
		s.Note = "could not read the clone: " + err.Error()
		return errWait
	case giveUp:
		ss.cleanup(Fail, fmt.Sprintf("%s still exists (%s) %s after the drill started deleting it", s.Clone, inst.State, limit(deleteGrace)), deleteHint)
		return ss.finish(ctx)
	case inst.State == "PENDING_DELETE" || s.DeleteOperation != "":
		s.Note = "the clone is being deleted"
		return errWait
	case inst.DeletionProtection:
		if _, err := ss.d.SQL.PatchDrillInstance(ctx, t.Project, s.Clone, gcpbackup.DrillPatch{DisableDeletionProtection: true}); err != nil && permanent(err) {
			ss.cleanup(Fail, "could not turn off the clone's deletion protection: "+err.Error(), deleteHint)
			return ss.finish(ctx)
		}
		s.Note = "turning off the clone's deletion protection"
		return errWait
	}
	op, err := ss.d.SQL.DeleteDrillInstance(ctx, t.Project, s.Clone)
	switch {
	case err == nil:
		s.DeleteOperation = op.Name
		s.DeleteAttempts++
		s.Note = "delete requested (operation " + op.Name + ")"
		return errWait
	case gcpbackup.KindOf(err) == gcpbackup.KindNotFound:
		s.Deleted = now
		ss.cleanup(Pass, fmt.Sprintf("the clone was deleted; %s is gone", s.Clone), "")
		return ss.finish(ctx)
	case permanent(err):
		ss.cleanup(Fail, "could not delete the clone: "+err.Error(), ss.hintFor(err)+"; "+deleteHint)
		return ss.finish(ctx)
	}
	s.DeleteAttempts++
	s.Note = "could not delete the clone (retrying): " + err.Error()
	return errWait
}

func (ss *session) cleanup(st Status, observed, hint string) {
	ss.s.set(Check{ID: DrillCleanup, Target: ss.t.String(), Status: st, Observed: observed,
		Expected: "the clone deleted, and no fediops-drill-* instance older than drill_max_hours", Hint: hint})
}

// finish archives the report and marks the drill done.
func (ss *session) finish(ctx context.Context) error {
	s := &ss.s
	for _, id := range DrillCheckIDs() {
		if _, ok := s.check(id); !ok {
			s.set(Check{ID: id, Target: ss.t.String(), Status: Fail, Observed: "not run", Expected: "the drill to run it",
				Hint: "this is a bug in fediops; please report it with the drill's state"})
		}
	}
	ordered := make([]Check, 0, len(s.Checks))
	for _, id := range DrillCheckIDs() {
		c, _ := s.check(id)
		ordered = append(ordered, c)
	}
	s.Checks = ordered
	s.Phase = PhaseDone
	s.Note = "drill finished"
	rep := DrillReport{Report: NewReport(ordered), Drill: *s}
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	key := DrillReportKey(*s)
	if err := ss.d.Store.Create(context.WithoutCancel(ctx), key, append(data, '\n')); err != nil && !errors.Is(err, archive.ErrExists) {
		s.Phase = PhaseDeleting
		return fmt.Errorf("drill %s: archive the report: %w", ss.t, err)
	}
	s.Report = ss.d.Store.Location(key)
	rep.Drill.Report = s.Report
	LogDrillReport(ss.log, rep)
	return nil
}

// sweep deletes every fediops-drill-* instance of the project older than drill_max_hours,
// except current (the clone this drill still works on). Problems are logged, never fatal.
func (ss *session) sweep(ctx context.Context, current string) error {
	now := ss.d.Clock.Now()
	insts, err := ss.d.SQL.DrillInstances(ctx, ss.t.Project)
	if err != nil {
		ss.log.Warn(fmt.Sprintf("drill sweeper: could not list the instances of %s: %v", ss.t.Project, err))
		return nil
	}
	ss.s.LastSweep = now
	for _, inst := range insts {
		if inst.Name == current || !gcpbackup.IsDrillInstance(inst.Name) || inst.State == "PENDING_DELETE" {
			continue
		}
		if inst.Created.IsZero() || now.Sub(inst.Created) <= ss.t.MaxDuration() {
			continue
		}
		_, err := ss.d.SQL.DeleteDrillInstance(ctx, ss.t.Project, inst.Name)
		if err != nil && gcpbackup.KindOf(err) != gcpbackup.KindNotFound {
			ss.log.Error(fmt.Sprintf("drill sweeper: could not delete the leftover drill instance %s of %s (created %s): %v; delete it by hand: gcloud sql instances delete %s --project=%s",
				inst.Name, ss.t.Project, stamp(inst.Created), err, inst.Name, ss.t.Project), "instance", inst.Name)
			continue
		}
		ss.log.Warn(fmt.Sprintf("drill sweeper: deleted the leftover drill instance %s of %s, created %s, older than drill_max_hours (%s)",
			inst.Name, ss.t.Project, stamp(inst.Created), limit(ss.t.MaxDuration())), "instance", inst.Name)
		ss.s.Swept = append(ss.s.Swept, inst.Name)
		if len(ss.s.Swept) > 20 {
			ss.s.Swept = ss.s.Swept[len(ss.s.Swept)-20:]
		}
	}
	return nil
}

// LogDrillReport logs a finished drill like the audit: a line per failed (ERROR) or warning
// check and a summary with the measured RTO and RPO.
func LogDrillReport(log *slog.Logger, r DrillReport) {
	LogChecks(log, r.Checks)
	log.Log(context.Background(), r.Status().level(), fmt.Sprintf("restore drill of %s/%s (%s): %d pass, %d warn, %d fail; %s",
		r.Drill.Project, r.Drill.Instance, r.Drill.Clone, r.Summary.Pass, r.Summary.Warn, r.Summary.Fail, r.Drill.Measures()),
		"pass", r.Summary.Pass, "warn", r.Summary.Warn, "fail", r.Summary.Fail, "clone", r.Drill.Clone, "report", r.Drill.Report)
}

// Measures says RTO and RPO in a few words ("RTO 12m, RPO 2m").
func (s DrillState) Measures() string {
	var parts []string
	if !s.Verified.IsZero() {
		parts = append(parts, "RTO "+age(s.Verified.Sub(s.Requested)))
	} else {
		parts = append(parts, "RTO not measured")
	}
	if !s.NewestRow.IsZero() {
		parts = append(parts, "RPO "+age(s.PointInTime.Sub(s.NewestRow)))
	} else {
		parts = append(parts, "RPO not measured")
	}
	if c, ok := s.check(DrillCleanup); ok {
		if c.Status == Pass {
			parts = append(parts, "clone deleted")
		} else {
			parts = append(parts, "clone NOT deleted")
		}
	}
	return strings.Join(parts, ", ")
}

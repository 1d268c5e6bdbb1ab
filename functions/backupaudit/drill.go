package backupaudit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/fediops/fediops/shared/archive"
	"github.com/fediops/fediops/shared/clock"
	"github.com/fediops/fediops/shared/gcpbackup"
	"github.com/fediops/fediops/shared/mastodondb"
	"github.com/fediops/fediops/shared/run"
)

// The restore drill proves that a Cloud SQL instance can be restored: it clones the instance
// at a point in time into fediops-drill-<instance>-<yyyymmddhhmm>, waits for the clone,
// connects to it read-only, runs Mastodon sanity queries, measures RTO and RPO, and deletes
// the clone. A clone takes minutes, longer than one function invocation may wait, so a drill
// is a small state machine kept in the archive (DrillState) and advanced by each invocation:
//
//	started → clone running → verifying → deleting → done
//
// Every path ends in deleting: a failed check, a clone that failed or never became
// RUNNABLE, a drill past drill_max_hours in any phase. The next invocation resumes what a
// dead one left (the state says what was decided; the API says what exists now), and a
// sweeper deletes any fediops-drill-* instance older than drill_max_hours.

// Drill check IDs, reported for each drilled instance.
const (
	DrillClone   = "drill.clone"
	DrillData    = "drill.data"
	DrillRTO     = "drill.rto"
	DrillRPO     = "drill.rpo"
	DrillCleanup = "drill.cleanup"
)

// DrillCheckIDs lists the drill's checks in report order.
func DrillCheckIDs() []string {
	return []string{DrillClone, DrillData, DrillRTO, DrillRPO, DrillCleanup}
}

// Phase is where a drill is.
type Phase string

// The phases of a drill.
const (
	PhaseStarted   Phase = "started"       // name and point in time chosen; the clone is not known to exist
	PhaseCloning   Phase = "clone running" // the clone was requested; waiting for it to be RUNNABLE
	PhaseVerifying Phase = "verifying"     // the clone is RUNNABLE; the sanity queries run
	PhaseDeleting  Phase = "deleting"      // the clone is being deleted (every drill ends here)
	PhaseDone      Phase = "done"          // the clone is gone (or could not be deleted: see drill.cleanup) and the report archived
)

// Drill timing.
const (
	// DefaultDrillPoll is how long a drill waits between two looks at a clone or an operation
	// (Google suggests re-checking a clone every 30 seconds).
	DefaultDrillPoll = 30 * time.Second
	// PointInTimeLag is how far behind now a drill restores by default.
	PointInTimeLag = 10 * time.Minute
	// drillLeaseTTL is shorter than the 10 minutes between scheduled advances: a lease left by
	// a dead invocation has expired when the next one comes.
	drillLeaseTTL = 9 * time.Minute
	// sweepEvery is how often an idle advance looks for leftover drill instances.
	sweepEvery = time.Hour
	// maxAttempts is how often a step that fails transiently is tried before the drill gives up
	// on it (each attempt is one poll or one invocation apart).
	maxAttempts = 3
	// deleteGrace is how long past its deadline a drill keeps retrying the delete before it
	// reports drill.cleanup failed and leaves the clone to the sweeper.
	deleteGrace = time.Hour
)

// DrillName returns the clone's name for a drill of instance started at t (UTC minutes).
func DrillName(instance string, t time.Time) string {
	return gcpbackup.DrillPrefix + instance + "-" + t.UTC().Format("200601021504")
}

// DrillTarget is one instance to drill, with its [[backup.cloudsql]] drill settings (defaults
// filled in).
type DrillTarget struct {
	Project, Instance string
	Tier              string        // "" keeps the source's tier
	MaxHours          int           // drill_max_hours
	Database          string        // drill_database
	User              string        // drill_user
	PasswordRef       string        // drill_password (a secret reference), "" for IAM authentication
	IPType            string        // drill_ip_type
	SchemaVersion     string        // drill_schema_version
	MaxDataAge        time.Duration // drill_max_data_age
	Address           string        // drill_address
}

// String is the check target: "project/instance".
func (t DrillTarget) String() string { return t.Project + "/" + t.Instance }

// MaxDuration is drill_max_hours as a duration.
func (t DrillTarget) MaxDuration() time.Duration { return time.Duration(t.MaxHours) * time.Hour }

// DrillState is a drill as the archive keeps it.
type DrillState struct {
	Project  string `json:"project"`
	Instance string `json:"instance"`
	Clone    string `json:"clone"`
	Phase    Phase  `json:"phase"`

	Started     time.Time `json:"started"`
	Deadline    time.Time `json:"deadline"`
	PointInTime time.Time `json:"point_in_time,omitzero"`

	// Requested is when the clone was (last) requested: where RTO starts.
	Requested      time.Time `json:"requested,omitzero"`
	CloneAttempts  int       `json:"clone_attempts,omitempty"`
	CloneOperation string    `json:"clone_operation,omitempty"`
	// CloneReady is when the clone operation ended (or the clone was first seen RUNNABLE).
	CloneReady     time.Time `json:"clone_ready,omitzero"`
	PatchOperation string    `json:"patch_operation,omitempty"`
	Patched        bool      `json:"patched,omitempty"`
	Verified       time.Time `json:"verified,omitzero"`
	// NewestRow is the created_at of the clone's newest statuses or accounts row at or
	// before the point in time: RPO is PointInTime − NewestRow.
	NewestRow time.Time `json:"newest_row,omitzero"`
	// Retries counts transient failures of the current phase's step.
	Retries int `json:"retries,omitempty"`

	// DeletingSince is when the drill started deleting the clone.
	DeletingSince   time.Time `json:"deleting_since,omitzero"`
	DeleteOperation string    `json:"delete_operation,omitempty"`
	DeleteAttempts  int       `json:"delete_attempts,omitempty"`
	Deleted         time.Time `json:"deleted,omitzero"`

	// Checks holds the drill's checks as they are decided.
	Checks []Check `json:"checks"`
	// Swept lists leftover drill instances the sweeper deleted.
	Swept []string `json:"swept,omitempty"`

	Advances  int       `json:"advances"`
	Updated   time.Time `json:"updated"`
	LastSweep time.Time `json:"last_sweep,omitzero"`
	// Note is the last thing the drill did or waits for, for people.
	Note string `json:"note"`
	// Report is where the finished drill's report is archived.
	Report string `json:"report,omitempty"`
}

// InProgress reports whether the drill has not finished.
func (s DrillState) InProgress() bool { return s.Phase != "" && s.Phase != PhaseDone }

// check returns the check with id, if decided.
func (s DrillState) check(id string) (Check, bool) {
	for _, c := range s.Checks {
		if c.ID == id {
			return c, true
		}
	}
	return Check{}, false
}

// set records (or replaces) a check.
func (s *DrillState) set(c Check) {
	for i := range s.Checks {
		if s.Checks[i].ID == c.ID {
			s.Checks[i] = c
			return
		}
	}
	s.Checks = append(s.Checks, c)
}

// DrillReport is a finished drill: its checks, in the audit's shape, and the drill itself.
type DrillReport struct {
	Report
	Drill DrillState `json:"drill"`
}

// DrillSQL is what a drill asks of the Cloud SQL Admin API (implemented by *gcpbackup.Client).
type DrillSQL interface {
	Instance(ctx context.Context, project, instance string) (gcpbackup.SQLInstance, error)
	LatestRecoveryTime(ctx context.Context, project, instance string) (time.Time, error)
	Clone(ctx context.Context, project, source, dest string, pointInTime time.Time) (gcpbackup.SQLOperation, error)
	Operation(ctx context.Context, project, name string) (gcpbackup.SQLOperation, error)
	PatchDrillInstance(ctx context.Context, project, name string, p gcpbackup.DrillPatch) (gcpbackup.SQLOperation, error)
	DeleteDrillInstance(ctx context.Context, project, name string) (gcpbackup.SQLOperation, error)
	DrillInstances(ctx context.Context, project string) ([]gcpbackup.SQLInstance, error)
}

// Database is a read-only session on a clone (implemented by *mastodondb.DB).
type Database interface {
	Facts(ctx context.Context, pointInTime time.Time) (mastodondb.Facts, error)
	Close(ctx context.Context)
}

// OpenDatabase connects to a drill's clone.
type OpenDatabase func(ctx context.Context, t DrillTarget, clone gcpbackup.SQLInstance) (Database, error)

// Driller runs drills: it starts them and advances them, one lease per instance.
type Driller struct {
	SQL   DrillSQL
	Open  OpenDatabase
	Store archive.Store
	Clock clock.Clock
	Log   *slog.Logger
	// Holder identifies this invocation in leases (its run id).
	Holder string
	// Poll is the pause between two looks at a clone (DefaultDrillPoll).
	Poll time.Duration
}

// StateKey is the archive key of an instance's drill state (a control object).
func StateKey(project, instance string) string {
	return "backup/drill/state/" + project + "/" + instance + ".json"
}

// DrillReportKey is the archive key of a finished drill's report.
func DrillReportKey(s DrillState) string {
	return fmt.Sprintf("backup/drill/reports/%s/%s/%s.json", s.Project, s.Started.UTC().Format("2006/01"), s.Clone)
}

func leaseName(t DrillTarget) string { return "backup/drill-" + t.Project + "-" + t.Instance }

// Status returns the instance's last or current drill, and whether there is one. It reads the
// archive only.
func (d *Driller) Status(ctx context.Context, t DrillTarget) (DrillState, bool, error) {
	s, _, err := d.load(ctx, t)
	if errors.Is(err, archive.ErrNotFound) {
		return DrillState{}, false, nil
	}
	return s, err == nil, err
}

func (d *Driller) load(ctx context.Context, t DrillTarget) (DrillState, int64, error) {
	data, gen, err := d.Store.ReadVersion(ctx, StateKey(t.Project, t.Instance))
	if err != nil {
		return DrillState{}, 0, err
	}
	var s DrillState
	if err := json.Unmarshal(data, &s); err != nil {
		// An unreadable state must not stop drills forever, nor hide a clone: start over
		// (the sweeper deletes what the lost state knew about).
		d.Log.Error(fmt.Sprintf("drill state %s is unreadable (%v); treating the drill as finished", StateKey(t.Project, t.Instance), err))
		return DrillState{Phase: PhaseDone}, gen, nil
	}
	return s, gen, nil
}

// session is one invocation's work on one drill: the lease, the state and its generation.
type session struct {
	d   *Driller
	t   DrillTarget
	r   *run.Run
	s   DrillState
	gen int64
	log *slog.Logger
}

func (ss *session) save(ctx context.Context) error {
	if err := ss.r.Fence(ctx); err != nil {
		return err
	}
	ss.s.Updated = ss.d.Clock.Now()
	data, err := json.MarshalIndent(ss.s, "", "  ")
	if err != nil {
		return err
	}
	gen, err := ss.d.Store.WriteIf(context.WithoutCancel(ctx), StateKey(ss.t.Project, ss.t.Instance), append(data, '\n'), ss.gen)
	if err != nil {
		return fmt.Errorf("drill %s: save the state: %w", ss.t, err)
	}
	ss.gen = gen
	return nil
}

// open takes the instance's drill lease and reads its state.
func (d *Driller) open(ctx context.Context, t DrillTarget) (*session, error) {
	if d.Poll <= 0 {
		d.Poll = DefaultDrillPoll
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	r, err := run.Start(ctx, run.Options{Store: d.Store, Clock: d.Clock, Log: d.Log, Lease: leaseName(t), Holder: d.Holder, TTL: drillLeaseTTL})
	if err != nil {
		return nil, err
	}
	ss := &session{d: d, t: t, r: r, log: d.Log.With("drill_instance", t.String())}
	s, gen, err := d.load(ctx, t)
	switch {
	case errors.Is(err, archive.ErrNotFound):
	case err != nil:
		_ = r.End(ctx)
		return nil, fmt.Errorf("drill %s: read the state: %w", t, err)
	default:
		ss.s, ss.gen = s, gen
	}
	return ss, nil
}

// Start begins a drill of t unless one is in progress (which it advances instead), and
// advances it as far as the invocation's deadline allows.
func (d *Driller) Start(ctx context.Context, t DrillTarget) (DrillState, error) {
	ss, err := d.open(ctx, t)
	if err != nil {
		return DrillState{}, err
	}
	defer func() { _ = ss.r.End(ctx) }()
	if ss.s.InProgress() {
		ss.log.Info(fmt.Sprintf("drill of %s: %s started %s is still in progress (%s); advancing it instead of starting another",
			t, ss.s.Clone, stamp(ss.s.Started), ss.s.Phase))
	} else {
		if err := ss.sweep(ctx, ""); err != nil {
			return ss.s, err
		}
		now := d.Clock.Now()
		lastSweep, swept := ss.s.LastSweep, ss.s.Swept
		ss.s = DrillState{
			Project: t.Project, Instance: t.Instance, Clone: DrillName(t.Instance, now), Phase: PhaseStarted,
			Started: now, Deadline: now.Add(t.MaxDuration()), Checks: []Check{}, LastSweep: lastSweep, Swept: swept,
			Note: "drill started",
		}
		if err := ss.save(ctx); err != nil {
			return ss.s, err
		}
		ss.log.Info(fmt.Sprintf("drill of %s started: clone %s, at most %s", t, ss.s.Clone, limit(t.MaxDuration())),
			"clone", ss.s.Clone, "phase", string(ss.s.Phase))
	}
	return ss.s, ss.advance(ctx)
}

// Advance moves t's drill on as far as the invocation's deadline allows. With no drill in
// progress it returns at once (after an hourly sweep for leftover clones).
func (d *Driller) Advance(ctx context.Context, t DrillTarget) (DrillState, error) {
	s, _, err := d.load(ctx, t)
	if errors.Is(err, archive.ErrNotFound) {
		return DrillState{}, nil
	}
	if err != nil {
		return DrillState{}, fmt.Errorf("drill %s: read the state: %w", t, err)
	}
	if !s.InProgress() && d.Clock.Now().Sub(s.LastSweep) < sweepEvery {
		return s, nil
	}
	ss, err := d.open(ctx, t)
	if err != nil {
		return s, err
	}
	defer func() { _ = ss.r.End(ctx) }()
	if !ss.s.InProgress() {
		if err := ss.sweep(ctx, ""); err != nil {
			return ss.s, err
		}
		return ss.s, ss.save(ctx)
	}
	return ss.s, ss.advance(ctx)
}

// errWait says that the drill waits for Google: the step is to be tried again after a poll.
var errWait = errors.New("waiting")

// advance runs steps until the drill is done or must wait past the deadline.
func (ss *session) advance(ctx context.Context) error {
	ss.s.Advances++
	swept := false
	for ss.s.InProgress() {
		if err := ss.r.Check(ctx); err != nil {
			return ss.stopped(ctx, err)
		}
		now := ss.d.Clock.Now()
		if now.After(ss.s.Deadline) && ss.s.Phase != PhaseDeleting {
			ss.overdue(now)
			if err := ss.save(ctx); err != nil {
				return err
			}
			continue
		}
		if !swept && ss.s.Phase != PhaseStarted {
			swept = true
			if err := ss.sweep(ctx, ss.s.Clone); err != nil {
				return err
			}
		}
		before := ss.s.Phase
		err := ss.step(ctx)
		if errors.Is(err, errWait) {
			if serr := ss.save(ctx); serr != nil {
				return serr
			}
			if !ss.canWait(ctx) {
				ss.log.Info(fmt.Sprintf("drill of %s: %s; the next advance continues", ss.t, ss.s.Note), "phase", string(ss.s.Phase))
				return nil
			}
			if err := ss.d.Clock.Sleep(ctx, ss.d.Poll); err != nil {
				return ss.stopped(ctx, run.Stop(run.Cancelled, err))
			}
			continue
		}
		if err != nil {
			return err
		}
		if serr := ss.save(ctx); serr != nil {
			return serr
		}
		if ss.s.Phase != before {
			ss.s.Retries = 0
			ss.log.Info(fmt.Sprintf("drill of %s: %s → %s: %s", ss.t, before, ss.s.Phase, ss.s.Note), "phase", string(ss.s.Phase), "clone", ss.s.Clone)
		}
	}
	return nil
}

// stopped turns a run stop into the invocation's outcome: near the deadline the next advance
// continues, which is no failure.
func (ss *session) stopped(ctx context.Context, err error) error {
	if reason, ok := run.ReasonOf(err); ok && (reason == run.DeadlineNear || reason == run.BudgetSpent) {
		ss.log.Info(fmt.Sprintf("drill of %s: %s; the next advance continues", ss.t, reason.Explain()))
		return nil
	}
	return err
}

// canWait reports whether the invocation has time for one more poll.
func (ss *session) canWait(ctx context.Context) bool {
	left, ok := clock.Remaining(ctx, ss.d.Clock)
	return !ok || left > ss.d.Poll+run.DefaultStopBefore
}

// overdue ends a drill that went past drill_max_hours: the check of its phase fails and the
// clone is deleted, whatever state it is in.
func (ss *session) overdue(now time.Time) {
	why := fmt.Sprintf("the drill went past drill_max_hours (%s) while %s", limit(ss.t.MaxDuration()), ss.s.Phase)
	hint := "if clones of this instance take longer, raise drill_max_hours in [[backup.cloudsql]]; the clone was deleted"
	switch ss.s.Phase {
	case PhaseStarted, PhaseCloning:
		ss.failClone(why, hint)
	case PhaseVerifying:
		ss.failData(why, hint)
	}
	ss.toDeleting(why)
}

func (ss *session) toDeleting(note string) {
	ss.s.Phase = PhaseDeleting
	ss.s.Note = note + "; deleting the clone"
}

// step does the next thing the phase asks for. It returns errWait when Google is not done.
func (ss *session) step(ctx context.Context) error {
	switch ss.s.Phase {
	case PhaseStarted:
		return ss.stepStart(ctx)
	case PhaseCloning:
		return ss.stepCloning(ctx)
	case PhaseVerifying:
		return ss.stepVerify(ctx)
	case PhaseDeleting:
		return ss.stepDelete(ctx)
	}
	return fmt.Errorf("drill %s: unknown phase %q", ss.t, ss.s.Phase)
}

package backupaudit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/cloudsqlconn"
	"github.com/BurntSushi/toml"

	"github.com/fediops/fediops/functions/backupaudit"
	"github.com/fediops/fediops/shared/archive"
	"github.com/fediops/fediops/shared/clock"
	"github.com/fediops/fediops/shared/gcpbackup"
	"github.com/fediops/fediops/shared/logging"
	"github.com/fediops/fediops/shared/mastodondb"
	frun "github.com/fediops/fediops/shared/run"
	"github.com/fediops/fediops/shared/setup"
	"github.com/fediops/fediops/shared/testsupport/backupfake"
	"github.com/fediops/fediops/shared/testsupport/pgserver"
)

// drillStart is when the drills of these tests start: 02:00 UTC, off-peak.
var drillStart = time.Date(2026, 11, 20, 2, 0, 0, 0, time.UTC)

// invocation is the deadline one advance gets: the deployed timeout (300s) minus its margin.
const invocation = 300*time.Second - 30*time.Second

// drillDB is the throw-away PostgreSQL that stands in for every clone of a test.
type drillDB struct {
	srv *pgserver.Server
}

// startDrillDB starts a server and seeds database mastodon_production as sample says.
func startDrillDB(t *testing.T, sample pgserver.Sample) *drillDB {
	t.Helper()
	srv := pgserver.StartT(t)
	ctx := context.Background()
	if err := srv.CreateDatabase(ctx, "mastodon_production"); err != nil {
		t.Fatal(err)
	}
	if err := srv.SeedMastodon(ctx, "mastodon_production", sample); err != nil {
		t.Fatal(err)
	}
	if err := srv.CreateReader(ctx, "fediops_drill", "drill-secret"); err != nil {
		t.Fatal(err)
	}
	return &drillDB{srv: srv}
}

// drillEnv is a drill's world: the Cloud SQL Admin fake on a fake clock, an archive, and
// (optionally) the PostgreSQL server the clones "are".
type drillEnv struct {
	fake   *backupfake.Server
	clk    *clock.Fake
	store  archive.Store
	client *gcpbackup.Client
	target backupaudit.DrillTarget
	db     *drillDB
	open   backupaudit.OpenDatabase
	logs   *syncBuf
	n      int
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newDrillEnv(t *testing.T, db *drillDB, mutate func(*backupfake.Env)) *drillEnv {
	t.Helper()
	env := backupfake.Healthy(drillStart)
	if mutate != nil {
		mutate(&env)
	}
	e := &drillEnv{fake: backupfake.Start(env), clk: clock.NewFake(drillStart), db: db, logs: &syncBuf{}}
	t.Cleanup(e.fake.Close)
	e.fake.SetClock(e.clk.Now)
	store, err := archive.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e.store = store
	e.client = gcpbackup.New(gcpbackup.Config{SQLAdminEndpoint: e.fake.SQLAdmin.URL, Timeout: 2 * time.Second, Attempts: 1})
	t.Cleanup(func() { _ = e.client.Close() })
	e.target = backupaudit.DrillTarget{
		Project: backupfake.HealthyProject, Instance: backupfake.SampleInstance, MaxHours: 3,
		Database: "mastodon_production", User: "fediops_drill", PasswordRef: "env://DRILL_PW",
		MaxDataAge: 24 * time.Hour, SchemaVersion: "20251217091936",
	}
	e.open = func(ctx context.Context, tg backupaudit.DrillTarget, clone gcpbackup.SQLInstance) (backupaudit.Database, error) {
		if e.db == nil {
			return nil, errors.New("dial tcp 10.20.0.5:5432: connect: connection timed out")
		}
		if clone.State != "RUNNABLE" || !gcpbackup.IsDrillInstance(clone.Name) {
			return nil, fmt.Errorf("connecting to %s in state %s", clone.Name, clone.State)
		}
		return mastodondb.Open(ctx, mastodondb.Config{Address: e.db.srv.Addr, Database: tg.Database, User: tg.User, Password: "drill-secret"})
	}
	return e
}

func (e *drillEnv) driller(store archive.Store) *backupaudit.Driller {
	e.n++
	return &backupaudit.Driller{
		SQL: e.client, Open: e.open, Store: store, Clock: e.clk,
		Log:    logging.New(e.logs, slog.LevelInfo, nil),
		Holder: fmt.Sprintf("invocation-%d", e.n),
	}
}

// invoke runs one invocation (start or advance) with the deployed deadline.
func (e *drillEnv) invoke(t *testing.T, store archive.Store, start bool) (backupaudit.DrillState, error) {
	t.Helper()
	ctx := clock.WithDeadline(context.Background(), e.clk.Now().Add(invocation))
	d := e.driller(store)
	if start {
		return d.Start(ctx, e.target)
	}
	return d.Advance(ctx, e.target)
}

// untilDone advances every 10 minutes (the schedule) until the drill is done.
func (e *drillEnv) untilDone(t *testing.T, from time.Time) backupaudit.DrillState {
	t.Helper()
	next := from
	for i := 0; i < 40; i++ {
		next = next.Add(10 * time.Minute)
		if e.clk.Now().Before(next) {
			e.clk.Set(next)
		}
		s, err := e.invoke(t, e.store, false)
		if reason, _ := frun.ReasonOf(err); reason == frun.LeaseHeld {
			continue // a dead invocation's lease has not expired yet: this advance does nothing
		}
		if err != nil {
			t.Fatalf("advance %d: %v", i, err)
		}
		if !s.InProgress() {
			return s
		}
	}
	t.Fatal("the drill never finished")
	return backupaudit.DrillState{}
}

// run starts a drill and advances it to the end.
func (e *drillEnv) run(t *testing.T) (backupaudit.DrillState, backupaudit.DrillReport) {
	t.Helper()
	s, err := e.invoke(t, e.store, true)
	if err != nil {
		t.Fatal(err)
	}
	if s.InProgress() {
		s = e.untilDone(t, drillStart)
	}
	return s, e.report(t, s)
}

func (e *drillEnv) report(t *testing.T, s backupaudit.DrillState) backupaudit.DrillReport {
	t.Helper()
	data, err := e.store.Read(context.Background(), backupaudit.DrillReportKey(s))
	if err != nil {
		t.Fatalf("no archived report: %v", err)
	}
	var r backupaudit.DrillReport
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// assertCleanedUp: no drill instance is left, the source was never changed, and nothing but
// drill instances was ever deleted or patched.
func (e *drillEnv) assertCleanedUp(t *testing.T) {
	t.Helper()
	for _, name := range e.fake.Instances(backupfake.HealthyProject) {
		if gcpbackup.IsDrillInstance(name) {
			t.Errorf("drill instance %s left behind", name)
		}
	}
	for _, r := range e.fake.Requests() {
		if r.API != "sqladmin" || r.Method == "GET" {
			continue
		}
		parts := strings.Split(r.Path, "/")
		if len(parts) < 6 || parts[4] != "instances" {
			t.Errorf("unexpected %s %s", r.Method, r.Path)
			continue
		}
		name := parts[5]
		switch {
		case r.Method == "POST" && name == backupfake.SampleInstance && strings.HasSuffix(r.Path, "/clone"):
			// The clone request reads the source; it is the only request naming it that is not a GET.
		case gcpbackup.IsDrillInstance(name) && (r.Method == "DELETE" || r.Method == "PATCH"):
		default:
			t.Errorf("a write that is not to a drill instance: %s %s", r.Method, r.Path)
		}
	}
}

func statusOf(r backupaudit.DrillReport) map[string]backupaudit.Check {
	m := map[string]backupaudit.Check{}
	for _, c := range r.Checks {
		m[c.ID] = c
	}
	return m
}

func wantStatuses(t *testing.T, r backupaudit.DrillReport, want map[string]backupaudit.Status) {
	t.Helper()
	got := statusOf(r)
	if len(got) != len(backupaudit.DrillCheckIDs()) {
		t.Errorf("report has %d checks: %+v", len(got), r.Checks)
	}
	for _, id := range backupaudit.DrillCheckIDs() {
		w, ok := want[id]
		if !ok {
			w = backupaudit.Pass
		}
		c := got[id]
		if c.Status != w {
			t.Errorf("%s = %s (%s), want %s", id, c.Status, c.Observed, w)
		}
		if c.Observed == "" || c.Expected == "" || (c.Status != backupaudit.Pass && c.Hint == "") {
			t.Errorf("%s incomplete: %+v", id, c)
		}
	}
}

// TestDrillEndToEnd: a drill through the real Cloud SQL Admin client and a real PostgreSQL:
// clone at now − 10 min, RUNNABLE after 6 minutes, verified on the next advance, deleted;
// RTO and RPO measured and archived.
func TestDrillEndToEnd(t *testing.T) {
	pit := drillStart.Add(-backupaudit.PointInTimeLag)
	db := startDrillDB(t, pgserver.DefaultSample(pit.Add(-2*time.Minute)))
	e := newDrillEnv(t, db, nil)
	begin := time.Now()
	first, err := e.invoke(t, e.store, true)
	if err != nil {
		t.Fatal(err)
	}
	if first.Phase != backupaudit.PhaseCloning || first.Clone != "fediops-drill-mastodon-db-202611200200" {
		t.Fatalf("after the first invocation: %s %s (%s)", first.Phase, first.Clone, first.Note)
	}
	if left := drillStart.Add(invocation).Sub(e.clk.Now()); left < 0 {
		t.Errorf("the invocation ran %s past its deadline", -left)
	}
	s := e.untilDone(t, drillStart)
	r := e.report(t, s)
	wantStatuses(t, r, nil)
	e.assertCleanedUp(t)

	rto := s.Verified.Sub(s.Requested)
	rpo := s.PointInTime.Sub(s.NewestRow)
	t.Logf("measured RTO %s (clone RUNNABLE after %s), RPO %s; %d advances; wall time %s", rto, s.CloneReady.Sub(s.Requested), rpo, s.Advances, time.Since(begin).Round(time.Millisecond))
	if rto < 6*time.Minute || rto > 11*time.Minute {
		t.Errorf("RTO %s, want between the 6-minute clone and the next advance", rto)
	}
	if rpo != 2*time.Minute {
		t.Errorf("RPO %s, want 2m (newest status 2 minutes before the point in time)", rpo)
	}
	if !s.PointInTime.Equal(pit) {
		t.Errorf("point in time %s, want now − 10 min %s", s.PointInTime, pit)
	}
	clones := e.fake.Clones()
	if len(clones) != 1 || !clones[0].PointInTime.Equal(pit) || clones[0].Source != backupfake.SampleInstance {
		t.Errorf("clone requests: %+v", clones)
	}
	c := statusOf(r)
	if !strings.Contains(c[backupaudit.DrillData].Observed, "schema 20251217091936") ||
		!strings.Contains(c[backupaudit.DrillRPO].Observed, "RPO 2m") ||
		!strings.Contains(c[backupaudit.DrillRTO].Observed, "from the clone request to verified data") {
		t.Errorf("observations: %+v", r.Checks)
	}
	if !strings.Contains(e.logs.String(), "restore drill of fediops-healthy/mastodon-db (fediops-drill-mastodon-db-202611200200): 5 pass, 0 warn, 0 fail; RTO") {
		t.Errorf("no summary log line:\n%s", e.logs.String())
	}
	// The scheduled advance on a finished drill returns at once, without a request.
	before := len(e.fake.Requests())
	if s2, err := e.invoke(t, e.store, false); err != nil || s2.Phase != backupaudit.PhaseDone {
		t.Errorf("advance after done: %v %s", err, s2.Phase)
	}
	if n := len(e.fake.Requests()) - before; n != 0 {
		t.Errorf("an idle advance sent %d requests", n)
	}
}

// TestDrillLatestRecoveryTime: when the recovery point is older than now − 10 min, the drill
// clones at the latest recovery time.
func TestDrillLatestRecoveryTime(t *testing.T) {
	latest := drillStart.Add(-47 * time.Minute)
	e := newDrillEnv(t, nil, func(env *backupfake.Env) {
		env.SQL[0].Recovery.LatestRecoveryTime = latest.Format(time.RFC3339Nano)
	})
	s, _ := e.run(t)
	if !s.PointInTime.Equal(latest) {
		t.Errorf("point in time %s, want the latest recovery time %s", s.PointInTime, latest)
	}
	e.assertCleanedUp(t)
}

func TestDrillFailures(t *testing.T) {
	pit := drillStart.Add(-backupaudit.PointInTimeLag)
	fresh := startDrillDB(t, pgserver.DefaultSample(pit.Add(-time.Minute)))
	for _, tt := range []struct {
		name   string
		db     *drillDB
		mutate func(*backupfake.Env)
		target func(*backupaudit.DrillTarget)
		want   map[string]backupaudit.Status
		// observed: substrings of a check's observation
		observed map[string]string
	}{
		{name: "clone operation fails",
			mutate: func(env *backupfake.Env) {
				env.SQL[0].Drill.CloneError = "The point in time is not available: transaction log missing."
			},
			want: map[string]backupaudit.Status{backupaudit.DrillClone: backupaudit.Fail, backupaudit.DrillData: backupaudit.Fail,
				backupaudit.DrillRTO: backupaudit.Fail, backupaudit.DrillRPO: backupaudit.Fail},
			observed: map[string]string{backupaudit.DrillClone: "the clone operation failed: INTERNAL_ERROR: The point in time is not available",
				backupaudit.DrillCleanup: "the clone was deleted"}},
		{name: "clone request forbidden",
			mutate: func(env *backupfake.Env) { env.SQL[0].Drill.CloneFault = backupfake.Forbidden },
			want: map[string]backupaudit.Status{backupaudit.DrillClone: backupaudit.Fail, backupaudit.DrillData: backupaudit.Fail,
				backupaudit.DrillRTO: backupaudit.Fail, backupaudit.DrillRPO: backupaudit.Fail},
			observed: map[string]string{backupaudit.DrillClone: "permission denied", backupaudit.DrillCleanup: "never created"}},
		{name: "clone stuck past drill_max_hours",
			mutate: func(env *backupfake.Env) { env.SQL[0].Drill.CloneStuck = true },
			target: func(t *backupaudit.DrillTarget) { t.MaxHours = 1 },
			want: map[string]backupaudit.Status{backupaudit.DrillClone: backupaudit.Fail, backupaudit.DrillData: backupaudit.Fail,
				backupaudit.DrillRTO: backupaudit.Fail, backupaudit.DrillRPO: backupaudit.Fail},
			observed: map[string]string{backupaudit.DrillClone: "went past drill_max_hours (1h) while clone running"}},
		{name: "data too old",
			db: func() *drillDB {
				return startDrillDB(t, pgserver.DefaultSample(pit.Add(-80*time.Hour)))
			}(),
			want:     map[string]backupaudit.Status{backupaudit.DrillRPO: backupaudit.Fail},
			observed: map[string]string{backupaudit.DrillRPO: "data too old: statuses: newest row 3d8h old"}},
		{name: "schema version differs",
			db:       fresh,
			target:   func(t *backupaudit.DrillTarget) { t.SchemaVersion = "20260101000000" },
			want:     map[string]backupaudit.Status{backupaudit.DrillData: backupaudit.Fail},
			observed: map[string]string{backupaudit.DrillData: `newest schema_migrations.version is "20251217091936", expected "20260101000000"`}},
		{name: "database unreachable",
			want:     map[string]backupaudit.Status{backupaudit.DrillData: backupaudit.Fail, backupaudit.DrillRTO: backupaudit.Fail, backupaudit.DrillRPO: backupaudit.Fail},
			observed: map[string]string{backupaudit.DrillData: "connection timed out"}},
		{name: "clone inherits deletion protection",
			db:       fresh,
			mutate:   func(env *backupfake.Env) { env.SQL[0].Drill.DeletionProtection = true },
			observed: map[string]string{backupaudit.DrillCleanup: "the clone was deleted"}},
		{name: "drill tier",
			db:     fresh,
			target: func(t *backupaudit.DrillTarget) { t.Tier = "db-custom-1-3840" },
		},
		{name: "delete forbidden",
			db:       fresh,
			mutate:   func(env *backupfake.Env) { env.SQL[0].Drill.DeleteFault = backupfake.Forbidden },
			want:     map[string]backupaudit.Status{backupaudit.DrillCleanup: backupaudit.Fail},
			observed: map[string]string{backupaudit.DrillCleanup: "could not delete the clone"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newDrillEnv(t, tt.db, tt.mutate)
			if tt.target != nil {
				tt.target(&e.target)
			}
			_, r := e.run(t)
			wantStatuses(t, r, tt.want)
			got := statusOf(r)
			for id, sub := range tt.observed {
				if !strings.Contains(got[id].Observed, sub) {
					t.Errorf("%s observed %q, want %q", id, got[id].Observed, sub)
				}
			}
			if tt.name == "delete forbidden" {
				// The clone stays (the API refused); the hint says how to delete it.
				if !strings.Contains(got[backupaudit.DrillCleanup].Hint, "gcloud sql instances delete fediops-drill-mastodon-db-202611200200 --project=fediops-healthy") {
					t.Errorf("hint %q", got[backupaudit.DrillCleanup].Hint)
				}
				return
			}
			e.assertCleanedUp(t)
			if tt.name == "drill tier" {
				var patched bool
				for _, r := range e.fake.Requests() {
					patched = patched || (r.Method == "PATCH" && strings.HasSuffix(r.Path, "/fediops-drill-mastodon-db-202611200200"))
				}
				if !patched {
					t.Error("the clone's tier was not changed")
				}
			}
		})
	}
}

// crashStore fails every write once crashAt writes have been made: the invocation "dies"
// (its state, its report and the release of its lease are lost).
type crashStore struct {
	archive.Store
	mu      sync.Mutex
	writes  int
	crashAt int
}

var errCrash = errors.New("the function instance died")

func (c *crashStore) dead() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes++
	return c.writes > c.crashAt
}

func (c *crashStore) WriteIf(ctx context.Context, key string, data []byte, gen int64) (int64, error) {
	if c.dead() {
		return 0, errCrash
	}
	return c.Store.WriteIf(ctx, key, data, gen)
}

func (c *crashStore) Create(ctx context.Context, key string, data []byte) error {
	if c.dead() {
		return errCrash
	}
	return c.Store.Create(ctx, key, data)
}

// TestDrillSurvivesDeath: the function dies after every possible write of a drill (state,
// lease, report); the next scheduled advance resumes or cleans up. Every time the drill
// ends with one clone request, verified data and the clone deleted.
func TestDrillSurvivesDeath(t *testing.T) {
	pit := drillStart.Add(-backupaudit.PointInTimeLag)
	db := startDrillDB(t, pgserver.DefaultSample(pit.Add(-3*time.Minute)))
	// A drill without crashes makes this many writes; crash after each of them.
	count := &crashStore{crashAt: 1 << 30}
	{
		e := newDrillEnv(t, db, nil)
		count.Store = e.store
		s, err := e.invoke(t, count, true)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; s.InProgress() && i < 20; i++ {
			e.clk.Advance(10 * time.Minute)
			if s, err = e.invoke(t, count, false); err != nil {
				t.Fatal(err)
			}
		}
	}
	total := count.writes
	t.Logf("a drill makes %d archive writes", total)
	for k := 0; k < total; k++ {
		t.Run(fmt.Sprintf("dies after write %d", k), func(t *testing.T) {
			e := newDrillEnv(t, db, nil)
			cs := &crashStore{Store: e.store, crashAt: k}
			began := e.clk.Now()
			s, err := e.invoke(t, cs, true)
			for i := 0; err == nil && s.InProgress() && i < 20; i++ {
				began = began.Add(10 * time.Minute)
				e.clk.Set(began)
				s, err = e.invoke(t, cs, false)
			}
			if err != nil {
				if _, exists, _ := e.driller(e.store).Status(context.Background(), e.target); !exists {
					// It died before the drill's state was saved: nothing was started, and the
					// failed start is redelivered by Pub/Sub (here: once the dead lease expired).
					began = began.Add(10 * time.Minute)
					e.clk.Set(began)
					if s, err = e.invoke(t, e.store, true); err != nil {
						t.Fatal(err)
					}
				}
				// The next scheduled advances, with a working archive, finish the drill.
				if s.InProgress() || err != nil {
					s = e.untilDone(t, began)
				}
			}
			// (Dying at the last write, the lease's release, loses nothing.)
			r := e.report(t, s)
			wantStatuses(t, r, nil)
			e.assertCleanedUp(t)
			if n := len(e.fake.Clones()); n != 1 {
				t.Errorf("%d clone requests, want 1", n)
			}
		})
	}
}

// TestDrillMaxHoursWhateverThePhase: a drill whose invocations stop coming (the scheduler was
// paused) is cleaned up by the first advance after drill_max_hours, whatever its phase.
func TestDrillMaxHoursWhateverThePhase(t *testing.T) {
	pit := drillStart.Add(-backupaudit.PointInTimeLag)
	db := startDrillDB(t, pgserver.DefaultSample(pit.Add(-3*time.Minute)))
	e := newDrillEnv(t, db, nil)
	s, err := e.invoke(t, e.store, true)
	if err != nil || s.Phase != backupaudit.PhaseCloning {
		t.Fatalf("%v %s", err, s.Phase)
	}
	e.clk.Advance(4 * time.Hour)
	s = e.untilDone(t, e.clk.Now().Add(-10*time.Minute))
	r := e.report(t, s)
	wantStatuses(t, r, map[string]backupaudit.Status{backupaudit.DrillClone: backupaudit.Fail, backupaudit.DrillData: backupaudit.Fail,
		backupaudit.DrillRTO: backupaudit.Fail, backupaudit.DrillRPO: backupaudit.Fail})
	if c := statusOf(r)[backupaudit.DrillClone]; !strings.Contains(c.Observed, "went past drill_max_hours (3h)") {
		t.Errorf("clone check: %q", c.Observed)
	}
	e.assertCleanedUp(t)
}

// TestDrillRefusesOtherNames: whatever the archive says, nothing but a fediops-drill-*
// instance is ever deleted or patched, and a clone is never made into another name.
func TestDrillRefusesOtherNames(t *testing.T) {
	e := newDrillEnv(t, nil, nil)
	ctx := context.Background()
	for _, name := range []string{"mastodon-db", "fediops-drill-", "prod-fediops-drill-x", ""} {
		if _, err := e.client.DeleteDrillInstance(ctx, backupfake.HealthyProject, name); gcpbackup.KindOf(err) != gcpbackup.KindRefused {
			t.Errorf("delete %q: %v, want refused", name, err)
		}
		if _, err := e.client.PatchDrillInstance(ctx, backupfake.HealthyProject, name, gcpbackup.DrillPatch{Tier: "db-f1-micro"}); gcpbackup.KindOf(err) != gcpbackup.KindRefused {
			t.Errorf("patch %q: %v, want refused", name, err)
		}
		if _, err := e.client.Clone(ctx, backupfake.HealthyProject, backupfake.SampleInstance, name, time.Time{}); gcpbackup.KindOf(err) != gcpbackup.KindRefused {
			t.Errorf("clone into %q: %v, want refused", name, err)
		}
	}
	if n := len(e.fake.Requests()); n != 0 {
		t.Errorf("%d requests were sent for refused names", n)
	}

	// An archive whose drill state names the source (tampered or corrupted) as the clone.
	state := backupaudit.DrillState{
		Project: backupfake.HealthyProject, Instance: backupfake.SampleInstance, Clone: backupfake.SampleInstance,
		Phase: backupaudit.PhaseDeleting, Started: drillStart.Add(-time.Hour), Deadline: drillStart.Add(2 * time.Hour),
		CloneAttempts: 1, Checks: []backupaudit.Check{},
	}
	data, _ := json.Marshal(state)
	if _, err := e.store.WriteIf(ctx, backupaudit.StateKey(state.Project, state.Instance), data, 0); err != nil {
		t.Fatal(err)
	}
	s := e.untilDone(t, drillStart)
	c := statusOf(e.report(t, s))[backupaudit.DrillCleanup]
	if c.Status != backupaudit.Fail || !strings.Contains(c.Observed, "refusing to change instance \"mastodon-db\"") {
		t.Errorf("cleanup: %+v", c)
	}
	if names := e.fake.Instances(backupfake.HealthyProject); len(names) != 1 || names[0] != backupfake.SampleInstance {
		t.Errorf("instances after the drill: %v", names)
	}
	e.assertCleanedUp(t)
}

// TestDrillSweeper: leftover drill instances older than drill_max_hours are deleted when a
// drill starts (and by idle advances, hourly); younger ones and other instances are kept.
func TestDrillSweeper(t *testing.T) {
	leftover := func(name string, created time.Time) backupfake.SQLInstance {
		i := backupfake.HealthySQL(drillStart, backupfake.HealthyProject, name)
		i.Resource.CreateTime = created.UTC().Format(time.RFC3339Nano)
		return i
	}
	e := newDrillEnv(t, nil, func(env *backupfake.Env) {
		env.SQL = append(env.SQL,
			leftover("fediops-drill-mastodon-db-202610010200", drillStart.Add(-50*24*time.Hour)),
			leftover("fediops-drill-other-db-202611192330", drillStart.Add(-150*time.Minute)),
			leftover("old-staging-db", drillStart.Add(-400*24*time.Hour)))
	})
	if _, err := e.invoke(t, e.store, true); err != nil {
		t.Fatal(err)
	}
	deleted := e.fake.Deleted()
	if len(deleted) != 1 || deleted[0] != "fediops-healthy/fediops-drill-mastodon-db-202610010200" {
		t.Errorf("deleted at start: %v", deleted)
	}
	if !strings.Contains(e.logs.String(), "drill sweeper: deleted the leftover drill instance fediops-drill-mastodon-db-202610010200") {
		t.Errorf("the sweep was not logged:\n%s", e.logs.String())
	}
	s := e.untilDone(t, drillStart)
	if s.Phase != backupaudit.PhaseDone {
		t.Fatal(s.Phase)
	}
	// Later, idle advances sweep the 150-minute-old one once it is past 3 hours.
	e.clk.Set(drillStart.Add(5 * time.Hour))
	if _, err := e.invoke(t, e.store, false); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(5 * time.Minute) // deletes take a while
	names := e.fake.Instances(backupfake.HealthyProject)
	if strings.Join(names, ",") != "mastodon-db,old-staging-db" {
		t.Errorf("instances left: %v", names)
	}
	e.assertCleanedUp(t)
}

// TestDrillLease: an invocation holding the drill's lease keeps a second one out; the
// second does nothing and says so.
func TestDrillLease(t *testing.T) {
	e := newDrillEnv(t, nil, nil)
	ctx := context.Background()
	if _, err := archive.AcquireLease(ctx, e.store, "backup/drill-fediops-healthy-mastodon-db", "other-invocation", drillStart, 9*time.Minute); err != nil {
		t.Fatal(err)
	}
	_, err := e.invoke(t, e.store, true)
	if reason, _ := frun.ReasonOf(err); reason != frun.LeaseHeld {
		t.Fatalf("start while held: %v", err)
	}
	if n := len(e.fake.Clones()); n != 0 {
		t.Errorf("%d clones requested while another invocation held the lease", n)
	}
	// Advance with nothing in progress returns at once, lease or not, sending nothing.
	if s, err := e.invoke(t, e.store, false); err != nil || s.Phase != "" {
		t.Errorf("idle advance: %v %+v", err, s)
	}
	if n := len(e.fake.Requests()); n != 0 {
		t.Errorf("%d requests", n)
	}
}

// drillHintReports runs drills that fail in each way a hint with a gcloud command covers.
func drillHintReports(t *testing.T) []backupaudit.Report {
	t.Helper()
	var out []backupaudit.Report
	for _, mutate := range []func(*backupfake.Env){
		func(env *backupfake.Env) { env.SQL[0].Drill.CloneError = "boom" },
		func(env *backupfake.Env) { env.SQL[0].Drill.CloneFault = backupfake.Internal },
		func(env *backupfake.Env) { env.SQL[0].Drill.DeleteFault = backupfake.Forbidden },
		func(env *backupfake.Env) { env.SQL[0].Drill.CloneStuck = true },
		nil, // database unreachable (IAM authentication)
	} {
		e := newDrillEnv(t, nil, mutate)
		if mutate == nil {
			e.target.PasswordRef, e.target.User = "", "fediops-backupaudit@fediops-healthy.iam"
		}
		_, r := e.run(t)
		out = append(out, r.Report)
	}
	return out
}

// TestRunDrillThroughTheConnector: the configured path (RunDrill, as the handler and the CLI
// call it), connecting to the clone through the Cloud SQL Go connector — connectSettings and
// an ephemeral certificate from the Cloud SQL Admin fake, TLS to the clone's server-side
// proxy — with the password from a secret reference, on the fake clock and without a deadline
// (the CLI): one call runs the drill to its end.
func TestRunDrillThroughTheConnector(t *testing.T) {
	pit := drillStart.Add(-backupaudit.PointInTimeLag)
	db := startDrillDB(t, pgserver.DefaultSample(pit.Add(-4*time.Minute)))
	fake := backupfake.Start(backupfake.Healthy(drillStart))
	t.Cleanup(fake.Close)
	clk := clock.NewFake(drillStart)
	fake.SetClock(clk.Now)
	fake.ServeDatabase(backupfake.HealthyProject, backupfake.SampleInstance, db.srv.Addr)
	cfg := fake.Config()
	cfg["cloudsql"] = []map[string]any{{"project": backupfake.HealthyProject, "instance": backupfake.SampleInstance,
		"drill": true, "drill_user": "fediops_drill", "drill_password": "env://FEDIOPS_TEST_DRILL_PW"}}
	var buf bytes.Buffer
	buf.WriteString("[archive]\nurl = \"" + t.TempDir() + "\"\n")
	if err := toml.NewEncoder(&buf).Encode(map[string]any{"backup": cfg}); err != nil {
		t.Fatal(err)
	}
	path := t.TempDir() + "/fediops.toml"
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs syncBuf
	env, err := setup.Open(context.Background(), setup.Params{ConfigLocation: path, LogOutput: &logs, Clock: clk,
		Getenv: func(k string) string {
			if k == "FEDIOPS_TEST_DRILL_PW" {
				return "drill-secret"
			}
			return ""
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	// A start that finds another invocation holding the lease is not lost: it fails
	// transiently, so Pub/Sub redelivers it.
	if _, err := archive.AcquireLease(context.Background(), env.Store, "backup/drill-fediops-healthy-mastodon-db", "other", clk.Now(), 9*time.Minute); err != nil {
		t.Fatal(err)
	}
	held, err := backupaudit.RunDrill(context.Background(), env, backupaudit.DrillStart, backupaudit.DrillOptions{})
	if err == nil || frun.IsPermanent(err) || len(held) != 1 || !held[0].Held || len(fake.Clones()) != 0 {
		t.Fatalf("start while held: %v %+v", err, held)
	}
	clk.Advance(10 * time.Minute) // the redelivery comes after the other invocation
	out, err := backupaudit.RunDrill(context.Background(), env, backupaudit.DrillStart, backupaudit.DrillOptions{
		ConnectorOptions: []cloudsqlconn.Option{cloudsqlconn.WithDialFunc(fake.DialConnector)},
	})
	if err != nil || len(out) != 1 {
		t.Fatalf("%v %+v", err, out)
	}
	s := out[0].State
	if s.Phase != backupaudit.PhaseDone || failedChecks(s.Checks) != 0 {
		t.Fatalf("drill: %s %+v\n%s", s.Phase, s.Checks, logs.String())
	}
	t.Logf("through the connector: %s", s.Measures())
	if rpo := s.PointInTime.Sub(s.NewestRow); rpo != s.PointInTime.Sub(pit.Add(-4*time.Minute)) {
		t.Errorf("RPO %s", rpo)
	}
	var certs int
	for _, r := range fake.Requests() {
		if strings.HasSuffix(r.Path, ":generateEphemeralCert") && strings.Contains(r.Path, "/instances/fediops-drill-") {
			certs++
		}
	}
	if certs == 0 {
		t.Error("the connector never asked for a certificate for the clone")
	}
	if strings.Contains(logs.String(), "drill-secret") {
		t.Error("the password was logged")
	}
	// Status reads the archive only.
	before := len(fake.Requests())
	st, err := backupaudit.RunDrill(context.Background(), env, backupaudit.DrillStatus, backupaudit.DrillOptions{})
	if err != nil || len(st) != 1 || st[0].State.Phase != backupaudit.PhaseDone || len(fake.Requests()) != before {
		t.Errorf("status: %v %+v", err, st)
	}
}

func failedChecks(cs []backupaudit.Check) int {
	n := 0
	for _, c := range cs {
		if c.Status != backupaudit.Pass {
			n++
		}
	}
	return n
}

package gcpbackup_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fediops/fediops/shared/gcpbackup"
	"github.com/fediops/fediops/shared/testsupport/backupfake"
)

var now = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

func start(t *testing.T, env backupfake.Env) *backupfake.Server {
	t.Helper()
	s := backupfake.Start(env)
	t.Cleanup(s.Close)
	return s
}

func client(t *testing.T, s *backupfake.Server, mod ...func(*gcpbackup.Config)) *gcpbackup.Client {
	t.Helper()
	cfg := gcpbackup.Config{
		SQLAdminEndpoint:  s.SQLAdmin.URL,
		StorageEndpoint:   s.Storage.URL,
		GKEBackupEndpoint: s.GKEBackup.URL,
		Timeout:           2 * time.Second,
		Attempts:          1,
		Backoff:           time.Millisecond,
	}
	for _, m := range mod {
		m(&cfg)
	}
	c := gcpbackup.New(cfg)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestReadsHealthyEnvironment(t *testing.T) {
	s := start(t, backupfake.Healthy(now))
	c := client(t, s)
	ctx := context.Background()
	p, i := backupfake.HealthyProject, backupfake.SampleInstance

	inst, err := c.Instance(ctx, p, i)
	if err != nil {
		t.Fatal(err)
	}
	want := gcpbackup.SQLInstance{
		Project: p, Name: i, DatabaseVersion: "POSTGRES_16", State: "RUNNABLE",
		BackupEnabled: true, BackupStartTime: "03:00", PointInTimeRecovery: true,
		RetentionSettings: true, RetainedBackups: 7, RetentionUnit: "COUNT",
		LogRetentionDays: 7, BackupTier: "STANDARD",
		ConnectionName: p + ":europe-west1:" + i, Tier: "db-custom-2-8192", Created: now.AddDate(-1, 0, 0),
	}
	if inst != want {
		t.Errorf("Instance = %+v\nwant %+v", inst, want)
	}

	runs, err := c.BackupRuns(ctx, p, i)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 9 {
		t.Fatalf("BackupRuns returned %d runs, want 9 (all pages)", len(runs))
	}
	first := runs[0]
	if first.Type != "AUTOMATED" || first.Status != "SUCCESSFUL" || first.End.IsZero() || first.Enqueued.IsZero() {
		t.Errorf("newest run = %+v", first)
	}
	for k := 1; k < len(runs); k++ {
		if runs[k].Enqueued.After(runs[k-1].Enqueued) {
			t.Errorf("runs not newest first at %d", k)
		}
	}

	rt, err := c.LatestRecoveryTime(ctx, p, i)
	if err != nil {
		t.Fatal(err)
	}
	if got := now.Sub(rt); got != 90*time.Second {
		t.Errorf("LatestRecoveryTime is %s before now, want 90s", got)
	}

	b, err := c.Bucket(ctx, backupfake.HealthyBucket)
	if err != nil {
		t.Fatal(err)
	}
	if b.LocationType != "multi-region" || b.Location != "EU" || !b.Versioning || !b.SoftDelete ||
		b.SoftDeleteRetention != 7*24*time.Hour || b.RPO != "DEFAULT" {
		t.Errorf("Bucket = %+v", b)
	}

	name := backupfake.PlanName(p, backupfake.SampleLocation, backupfake.SamplePlan)
	plan, err := c.Plan(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Name != name || plan.State != "READY" || plan.CronSchedule != "0 3 * * *" || plan.Paused ||
		plan.Deactivated || plan.RetainDays != 7 || !plan.HasSchedule || !plan.HasRetentionPolicy ||
		plan.LastSuccessfulBackup.IsZero() || plan.ProtectedPodCount != 42 {
		t.Errorf("Plan = %+v", plan)
	}

	backups, err := c.Backups(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if len(backups) != 8 {
		t.Fatalf("Backups returned %d, want 8 (all pages)", len(backups))
	}
	for _, bk := range backups {
		if bk.State != "SUCCEEDED" || bk.PodCount == 0 || bk.SizeBytes == 0 || bk.Completed.IsZero() || bk.Created.IsZero() {
			t.Errorf("backup = %+v", bk)
		}
	}

	// Pagination really happened, enums were asked as numbers, and no credentials were sent
	// to the loopback endpoints.
	var runPages, backupPages int
	for _, r := range s.Requests() {
		if r.Auth {
			t.Errorf("request %s %s carried an Authorization header", r.API, r.Path)
		}
		if strings.HasSuffix(r.Path, "/backupRuns") {
			runPages++
		}
		if strings.HasSuffix(r.Path, "/backups") {
			backupPages++
			if !strings.Contains(r.Query, "enum-encoding") {
				t.Errorf("backups.list without enum encoding: %s", r.Query)
			}
		}
	}
	if runPages != 3 || backupPages != 3 {
		t.Errorf("fetched %d backupRuns pages and %d backups pages, want 3 and 3", runPages, backupPages)
	}
}

// Fixtures written by hand the way the APIs answer: false booleans are simply absent.
func TestAbsentBooleansAreFalse(t *testing.T) {
	const instJSON = `{
  "kind": "sql#instance",
  "name": "db",
  "project": "my-project-1",
  "databaseVersion": "POSTGRES_15",
  "state": "RUNNABLE",
  "settings": {
    "kind": "sql#settings",
    "tier": "db-f1-micro",
    "backupConfiguration": {
      "kind": "sql#backupConfiguration",
      "startTime": "02:00",
      "backupRetentionSettings": {"retentionUnit": "COUNT", "retainedBackups": 7},
      "transactionLogRetentionDays": 7
    }
  }
}`
	const bucketJSON = `{
  "kind": "storage#bucket",
  "id": "media",
  "name": "media",
  "location": "EUROPE-WEST1",
  "locationType": "region",
  "storageClass": "STANDARD",
  "retentionPolicy": {"retentionPeriod": "86400", "effectiveTime": "2025-01-01T00:00:00Z"}
}`
	const planJSON = `{
  "name": "projects/my-project-1/locations/europe-west1/backupPlans/p",
  "cluster": "projects/my-project-1/locations/europe-west1/clusters/c",
  "state": "READY",
  "backupSchedule": {"cronSchedule": "0 3 * * *"},
  "retentionPolicy": {"backupRetainDays": 7}
}`
	env := backupfake.Env{
		SQL:     []backupfake.SQLInstance{{Project: "my-project-1", Instance: "db", InstanceJSON: instJSON}},
		Buckets: []backupfake.Bucket{{Name: "media", JSON: bucketJSON}},
		GKE:     []backupfake.GKEPlan{{Project: "my-project-1", Location: "europe-west1", Plan: "p", PlanJSON: planJSON}},
	}
	c := client(t, start(t, env))
	ctx := context.Background()

	inst, err := c.Instance(ctx, "my-project-1", "db")
	if err != nil {
		t.Fatal(err)
	}
	if inst.BackupEnabled || inst.PointInTimeRecovery {
		t.Errorf("absent enabled/pointInTimeRecoveryEnabled decoded as true: %+v", inst)
	}
	if inst.RetainedBackups != 7 || inst.LogRetentionDays != 7 || inst.BackupStartTime != "02:00" {
		t.Errorf("Instance = %+v", inst)
	}

	b, err := c.Bucket(ctx, "media")
	if err != nil {
		t.Fatal(err)
	}
	if b.Versioning || b.SoftDelete || b.LocationType != "region" || b.RetentionPeriod != 24*time.Hour {
		t.Errorf("Bucket = %+v", b)
	}

	plan, err := c.Plan(ctx, "projects/my-project-1/locations/europe-west1/backupPlans/p")
	if err != nil {
		t.Fatal(err)
	}
	if plan.Paused || plan.Deactivated || plan.State != "READY" || plan.RetainDays != 7 {
		t.Errorf("Plan = %+v", plan)
	}
}

type call struct {
	name string
	do   func(*gcpbackup.Client) error
	set  func(*backupfake.Env, backupfake.Fault)
	api  gcpbackup.API
}

func calls() []call {
	p, i := backupfake.HealthyProject, backupfake.SampleInstance
	plan := backupfake.PlanName(p, backupfake.SampleLocation, backupfake.SamplePlan)
	ctx := context.Background()
	return []call{
		{"instances.get", func(c *gcpbackup.Client) error { _, err := c.Instance(ctx, p, i); return err },
			func(e *backupfake.Env, f backupfake.Fault) { e.SQL[0].InstanceFault = f }, gcpbackup.APISQLAdmin},
		{"backupRuns.list", func(c *gcpbackup.Client) error { _, err := c.BackupRuns(ctx, p, i); return err },
			func(e *backupfake.Env, f backupfake.Fault) { e.SQL[0].RunsFault = f }, gcpbackup.APISQLAdmin},
		{"getLatestRecoveryTime", func(c *gcpbackup.Client) error { _, err := c.LatestRecoveryTime(ctx, p, i); return err },
			func(e *backupfake.Env, f backupfake.Fault) { e.SQL[0].RecoveryFault = f }, gcpbackup.APISQLAdmin},
		{"buckets.get", func(c *gcpbackup.Client) error { _, err := c.Bucket(ctx, backupfake.HealthyBucket); return err },
			func(e *backupfake.Env, f backupfake.Fault) { e.Buckets[0].Fault = f }, gcpbackup.APIStorage},
		{"backupPlans.get", func(c *gcpbackup.Client) error { _, err := c.Plan(ctx, plan); return err },
			func(e *backupfake.Env, f backupfake.Fault) { e.GKE[0].PlanFault = f }, gcpbackup.APIGKEBackup},
		{"backups.list", func(c *gcpbackup.Client) error { _, err := c.Backups(ctx, plan); return err },
			func(e *backupfake.Env, f backupfake.Fault) { e.GKE[0].BackupsFault = f }, gcpbackup.APIGKEBackup},
	}
}

func TestErrorsAreClassified(t *testing.T) {
	kinds := map[backupfake.Fault]gcpbackup.Kind{
		backupfake.Forbidden:   gcpbackup.KindPermissionDenied,
		backupfake.NotFound:    gcpbackup.KindNotFound,
		backupfake.Internal:    gcpbackup.KindUnavailable,
		backupfake.Unavailable: gcpbackup.KindUnavailable,
		backupfake.Malformed:   gcpbackup.KindMalformed,
		backupfake.Hang:        gcpbackup.KindTimeout,
	}
	codes := map[backupfake.Fault]int{
		backupfake.Forbidden: 403, backupfake.NotFound: 404, backupfake.Internal: 500, backupfake.Unavailable: 503,
	}
	for _, cl := range calls() {
		for _, f := range backupfake.Faults() {
			t.Run(cl.name+"/"+f.String(), func(t *testing.T) {
				env := backupfake.Healthy(now)
				cl.set(&env, f)
				c := client(t, start(t, env), func(cfg *gcpbackup.Config) { cfg.Timeout = 150 * time.Millisecond })
				begin := time.Now()
				err := cl.do(c)
				if took := time.Since(begin); took > 2*time.Second {
					t.Errorf("took %s", took)
				}
				var e *gcpbackup.Error
				if !errors.As(err, &e) {
					t.Fatalf("error %v (%T) is not a *gcpbackup.Error", err, err)
				}
				if e.Kind != kinds[f] || gcpbackup.KindOf(err) != kinds[f] {
					t.Errorf("kind = %v, want %v (%v)", e.Kind, kinds[f], err)
				}
				if e.Code != codes[f] {
					t.Errorf("code = %d, want %d (%v)", e.Code, codes[f], err)
				}
				if e.API != cl.api || e.Resource == "" || e.Op == "" {
					t.Errorf("error does not name API/op/resource: %+v", e)
				}
			})
		}
	}
}

func TestRetriesUnavailable(t *testing.T) {
	env := backupfake.Healthy(now)
	env.Buckets[0].Fault = backupfake.Unavailable
	env.SQL[0].InstanceFault = backupfake.Internal
	s := start(t, env)
	c := client(t, s, func(cfg *gcpbackup.Config) { cfg.Attempts = 3 })
	_, err := c.Bucket(context.Background(), backupfake.HealthyBucket)
	var e *gcpbackup.Error
	if !errors.As(err, &e) || e.Attempts != 3 || !strings.Contains(e.Error(), "after 3 attempts") {
		t.Fatalf("err = %v, want 3 attempts", err)
	}
	// 500 is not retried.
	_, err = c.Instance(context.Background(), backupfake.HealthyProject, backupfake.SampleInstance)
	if !errors.As(err, &e) || e.Attempts != 1 {
		t.Fatalf("err = %v, want 1 attempt", err)
	}
	var bucketGets, instanceGets int
	for _, r := range s.Requests() {
		switch {
		case r.API == "storage":
			bucketGets++
		case r.API == "sqladmin":
			instanceGets++
		}
	}
	if bucketGets != 3 || instanceGets != 1 {
		t.Errorf("requests: %d bucket, %d instance; want 3 and 1", bucketGets, instanceGets)
	}
}

func TestMalformedAnswers(t *testing.T) {
	p, i := backupfake.HealthyProject, backupfake.SampleInstance
	plan := backupfake.PlanName(p, backupfake.SampleLocation, backupfake.SamplePlan)
	tests := []struct {
		name string
		set  func(*backupfake.Env)
		do   func(*gcpbackup.Client) error
		want string
	}{
		{"bad run timestamp",
			func(e *backupfake.Env) {
				e.SQL[0].RunsJSON = `{"kind":"sql#backupRunsList","items":[{"id":"1","status":"SUCCESSFUL","type":"AUTOMATED","endTime":"yesterday"}]}`
			},
			func(c *gcpbackup.Client) error { _, err := c.BackupRuns(context.Background(), p, i); return err },
			"endTime"},
		{"endless pagination",
			func(e *backupfake.Env) {
				e.SQL[0].RunsJSON = `{"kind":"sql#backupRunsList","items":[],"nextPageToken":"again"}`
			},
			func(c *gcpbackup.Client) error { _, err := c.BackupRuns(context.Background(), p, i); return err },
			"repeated"},
		{"wrong JSON type",
			func(e *backupfake.Env) {
				e.SQL[0].InstanceJSON = `{"settings":{"backupConfiguration":{"enabled":"yes"}}}`
			},
			func(c *gcpbackup.Client) error { _, err := c.Instance(context.Background(), p, i); return err },
			""},
		{"bad recovery time",
			func(e *backupfake.Env) { e.SQL[0].RecoveryJSON = `{"latestRecoveryTime":"soon"}` },
			func(c *gcpbackup.Client) error {
				_, err := c.LatestRecoveryTime(context.Background(), p, i)
				return err
			},
			"latestRecoveryTime"},
		{"bucket retention policy with bad effectiveTime",
			func(e *backupfake.Env) {
				e.Buckets[0].JSON = `{"name":"x","retentionPolicy":{"retentionPeriod":"60","effectiveTime":"not a time"}}`
			},
			func(c *gcpbackup.Client) error {
				_, err := c.Bucket(context.Background(), backupfake.HealthyBucket)
				return err
			},
			""},
		{"plan enum out of JSON type",
			func(e *backupfake.Env) { e.GKE[0].PlanJSON = `{"name":"x","state":{"oops":1}}` },
			func(c *gcpbackup.Client) error { _, err := c.Plan(context.Background(), plan); return err },
			""},
		{"backups HTML page",
			func(e *backupfake.Env) { e.GKE[0].BackupsJSON = `<html><body>Sign in</body></html>` },
			func(c *gcpbackup.Client) error { _, err := c.Backups(context.Background(), plan); return err },
			""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := backupfake.Healthy(now)
			tt.set(&env)
			c := client(t, start(t, env))
			err := tt.do(c)
			if gcpbackup.KindOf(err) != gcpbackup.KindMalformed {
				t.Fatalf("err = %v (kind %v), want malformed", err, gcpbackup.KindOf(err))
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestEndpoints(t *testing.T) {
	s := start(t, backupfake.Healthy(now))
	ctx := context.Background()

	// Trailing slashes and an explicit /storage/v1 path are accepted.
	c := client(t, s, func(cfg *gcpbackup.Config) {
		cfg.SQLAdminEndpoint += "/"
		cfg.StorageEndpoint += "/storage/v1/"
		cfg.GKEBackupEndpoint += "/"
	})
	if _, err := c.Instance(ctx, backupfake.HealthyProject, backupfake.SampleInstance); err != nil {
		t.Error(err)
	}
	if _, err := c.Bucket(ctx, backupfake.HealthyBucket); err != nil {
		t.Error(err)
	}
	if _, err := c.Plan(ctx, backupfake.PlanName(backupfake.HealthyProject, backupfake.SampleLocation, backupfake.SamplePlan)); err != nil {
		t.Error(err)
	}

	// Plain http to a non-loopback host would send credentials in clear: refused.
	bad := gcpbackup.New(gcpbackup.Config{SQLAdminEndpoint: "http://sqladmin.example.com", StorageEndpoint: "ftp://x", GKEBackupEndpoint: "http://10.0.0.1:8080"})
	defer bad.Close()
	_, err := bad.Instance(ctx, "p", "i")
	if gcpbackup.KindOf(err) != gcpbackup.KindSetup || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("http non-loopback: %v", err)
	}
	_, err = bad.Bucket(ctx, "b")
	if gcpbackup.KindOf(err) != gcpbackup.KindSetup {
		t.Errorf("ftp: %v", err)
	}
	_, err = bad.Backups(ctx, "projects/p/locations/l/backupPlans/x")
	if gcpbackup.KindOf(err) != gcpbackup.KindSetup {
		t.Errorf("http private IP: %v", err)
	}
}

func TestUnreachableAndCanceled(t *testing.T) {
	s := backupfake.Start(backupfake.Healthy(now))
	url := s.SQLAdmin.URL
	s.Close() // nothing listens any more
	c := gcpbackup.New(gcpbackup.Config{SQLAdminEndpoint: url, Timeout: time.Second, Attempts: 1})
	defer c.Close()
	_, err := c.Instance(context.Background(), "p", "i")
	if k := gcpbackup.KindOf(err); k != gcpbackup.KindUnavailable {
		t.Errorf("connection refused: kind %v (%v)", k, err)
	}

	s2 := start(t, backupfake.Healthy(now))
	c2 := client(t, s2)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = c2.Instance(ctx, backupfake.HealthyProject, backupfake.SampleInstance)
	if err == nil || !strings.Contains(err.Error(), "canceled") {
		t.Errorf("canceled context: %v", err)
	}
}

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1": true, "127.3.2.1": true, "::1": true, "localhost": true, "LOCALHOST": true,
		"10.0.0.1": false, "example.com": false, "": false, "0.0.0.0": false,
	} {
		if got := gcpbackup.IsLoopback(host); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}

// Without an endpoint the clients use Application Default Credentials; when those are
// broken every call fails with a setup error instead of crashing.
func TestBrokenCredentials(t *testing.T) {
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", t.TempDir()+"/missing.json")
	c := gcpbackup.New(gcpbackup.Config{Timeout: time.Second, Attempts: 1})
	defer c.Close()
	ctx := context.Background()
	checks := map[string]error{}
	_, checks["instance"] = c.Instance(ctx, "p", "i")
	_, checks["bucket"] = c.Bucket(ctx, "b")
	_, checks["plan"] = c.Plan(ctx, "projects/p/locations/l/backupPlans/x")
	_, checks["backups"] = c.Backups(ctx, "projects/p/locations/l/backupPlans/x")
	for name, err := range checks {
		if gcpbackup.KindOf(err) != gcpbackup.KindSetup {
			t.Errorf("%s: %v (kind %v), want setup error", name, err, gcpbackup.KindOf(err))
		}
	}
}

// TestEngineDecidesPITR: point-in-time recovery is binaryLogEnabled on MySQL and
// pointInTimeRecoveryEnabled on PostgreSQL and SQL Server; the engine comes from
// databaseVersion.
func TestEngineDecidesPITR(t *testing.T) {
	tests := []struct {
		version        string
		pitr, binLog   bool
		engine         gcpbackup.Engine
		wantRecoveryOn bool
	}{
		{"POSTGRES_16", true, false, gcpbackup.EnginePostgres, true},
		{"POSTGRES_16", false, true, gcpbackup.EnginePostgres, false},
		{"MYSQL_8_0", false, true, gcpbackup.EngineMySQL, true},
		{"MYSQL_8_4", true, false, gcpbackup.EngineMySQL, false},
		{"SQLSERVER_2022_STANDARD", true, false, gcpbackup.EngineSQLServer, true},
		{"", true, false, gcpbackup.EngineUnknown, true},
		{"ORACLE_23", true, false, gcpbackup.EngineUnknown, true},
	}
	for _, tt := range tests {
		t.Run(tt.version, func(t *testing.T) {
			env := backupfake.Healthy(now)
			env.SQL[0].Resource.DatabaseVersion = tt.version
			bc := env.SQL[0].Resource.Settings.BackupConfiguration
			bc.PointInTimeRecoveryEnabled, bc.BinaryLogEnabled = tt.pitr, tt.binLog
			inst, err := client(t, start(t, env)).Instance(context.Background(), backupfake.HealthyProject, backupfake.SampleInstance)
			if err != nil {
				t.Fatal(err)
			}
			if got := inst.Engine(); got != tt.engine {
				t.Errorf("Engine() = %q, want %q", got, tt.engine)
			}
			if got := gcpbackup.EngineOf(tt.version); got != tt.engine {
				t.Errorf("EngineOf(%q) = %q, want %q", tt.version, got, tt.engine)
			}
			if inst.PointInTimeRecovery != tt.wantRecoveryOn {
				t.Errorf("PointInTimeRecovery = %v, want %v", inst.PointInTimeRecovery, tt.wantRecoveryOn)
			}
		})
	}
}

package gcpbackup

import (
	"context"
	"fmt"
	"strings"
	"time"

	sqladmin "google.golang.org/api/sqladmin/v1"
)

// SQLInstance is the backup configuration of a Cloud SQL instance
// (settings.backupConfiguration). Absent booleans are false.
type SQLInstance struct {
	Project         string
	Name            string
	DatabaseVersion string // e.g. "POSTGRES_16"
	State           string // e.g. "RUNNABLE"

	BackupEnabled   bool   // backupConfiguration.enabled
	BackupStartTime string // backupConfiguration.startTime, "HH:MM" UTC
	// PointInTimeRecovery is pointInTimeRecoveryEnabled (PostgreSQL, SQL Server) or, for
	// MySQL, binaryLogEnabled (Engine tells which).
	PointInTimeRecovery bool
	// RetentionSettings tells whether backupRetentionSettings was present at all.
	RetentionSettings bool
	RetainedBackups   int64  // backupRetentionSettings.retainedBackups
	RetentionUnit     string // backupRetentionSettings.retentionUnit ("COUNT")
	LogRetentionDays  int64  // backupConfiguration.transactionLogRetentionDays
	BackupTier        string // backupConfiguration.backupTier ("STANDARD", "ENHANCED")

	// For the restore drill.
	ConnectionName     string    // project:region:instance, for the Cloud SQL connector
	Tier               string    // settings.tier, e.g. "db-custom-2-8192"
	Created            time.Time // createTime
	DeletionProtection bool      // settings.deletionProtectionEnabled
}

// Engine is the database engine of a Cloud SQL instance: it decides which setting is
// point-in-time recovery.
type Engine string

// The engines, as the prefixes of databaseVersion name them.
const (
	EngineUnknown   Engine = ""
	EngineMySQL     Engine = "MYSQL"
	EnginePostgres  Engine = "POSTGRES"
	EngineSQLServer Engine = "SQLSERVER"
)

// EngineOf returns the engine of a databaseVersion such as "POSTGRES_16" or "MYSQL_8_0".
func EngineOf(databaseVersion string) Engine {
	prefix, _, _ := strings.Cut(databaseVersion, "_")
	switch e := Engine(prefix); e {
	case EngineMySQL, EnginePostgres, EngineSQLServer:
		return e
	}
	return EngineUnknown
}

// Engine returns the instance's database engine (EngineUnknown when the API did not say).
func (i SQLInstance) Engine() Engine { return EngineOf(i.DatabaseVersion) }

// SQLBackupRun is one entry of backupRuns.list.
type SQLBackupRun struct {
	ID          int64
	Type        string // AUTOMATED, ON_DEMAND, FINAL
	Status      string // SUCCESSFUL, FAILED, OVERDUE, RUNNING, ENQUEUED, SKIPPED, ...
	Enqueued    time.Time
	Start       time.Time
	End         time.Time
	WindowStart time.Time
	Error       string // error.code and error.message of a failed run
}

// When returns the best known time at which the run happened: its enqueue time (the order
// the API lists runs in), else its start, backup window start or end.
func (r SQLBackupRun) When() time.Time {
	for _, t := range []time.Time{r.Enqueued, r.Start, r.WindowStart, r.End} {
		if !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}

func sqlResource(project, instance string) string {
	return "projects/" + project + "/instances/" + instance
}

// Instance reads the backup configuration of a Cloud SQL instance (instances.get).
func (c *Client) Instance(ctx context.Context, project, instance string) (SQLInstance, error) {
	res := sqlResource(project, instance)
	svc, err := c.sqlService(ctx)
	if err != nil {
		return SQLInstance{}, setupError(APISQLAdmin, "instances.get", res, err)
	}
	var di *sqladmin.DatabaseInstance
	err = c.do(ctx, APISQLAdmin, "instances.get", res, func(ctx context.Context) error {
		var err error
		di, err = svc.Instances.Get(project, instance).Context(ctx).Do()
		return err
	})
	if err != nil {
		return SQLInstance{}, err
	}
	out, err := convertInstance(project, instance, di)
	if err != nil {
		return out, classify(APISQLAdmin, "instances.get", res, err)
	}
	return out, nil
}

// convertInstance turns an instances.get (or list) answer into an SQLInstance.
func convertInstance(project, instance string, di *sqladmin.DatabaseInstance) (SQLInstance, error) {
	out := SQLInstance{Project: project, Name: instance}
	if di == nil {
		return out, nil
	}
	if di.Name != "" {
		out.Name = di.Name
	}
	out.DatabaseVersion = di.DatabaseVersion
	out.State = di.State
	out.ConnectionName = di.ConnectionName
	var err error
	if out.Created, err = parseTime("createTime", di.CreateTime); err != nil {
		return out, err
	}
	if di.Settings == nil {
		return out, nil
	}
	out.Tier = di.Settings.Tier
	out.DeletionProtection = di.Settings.DeletionProtectionEnabled
	if di.Settings.BackupConfiguration == nil {
		return out, nil
	}
	bc := di.Settings.BackupConfiguration
	out.BackupEnabled = bc.Enabled
	out.BackupStartTime = bc.StartTime
	out.PointInTimeRecovery = bc.PointInTimeRecoveryEnabled
	if out.Engine() == EngineMySQL {
		out.PointInTimeRecovery = bc.BinaryLogEnabled
	}
	if rs := bc.BackupRetentionSettings; rs != nil {
		out.RetentionSettings = true
		out.RetainedBackups = rs.RetainedBackups
		out.RetentionUnit = rs.RetentionUnit
	}
	out.LogRetentionDays = bc.TransactionLogRetentionDays
	out.BackupTier = bc.BackupTier
	return out, nil
}

// backupRunsPageSize is the maxResults asked for per page of backupRuns.list.
const backupRunsPageSize = 100

// BackupRuns lists every backup run of an instance (backupRuns.list, all pages), newest
// enqueued first as the API returns them.
func (c *Client) BackupRuns(ctx context.Context, project, instance string) ([]SQLBackupRun, error) {
	res := sqlResource(project, instance)
	const op = "backupRuns.list"
	svc, err := c.sqlService(ctx)
	if err != nil {
		return nil, setupError(APISQLAdmin, op, res, err)
	}
	var out []SQLBackupRun
	err = listPages(ctx, c, APISQLAdmin, op, res, func(ctx context.Context, token string) (*sqladmin.BackupRunsListResponse, error) {
		call := svc.BackupRuns.List(project, instance).MaxResults(backupRunsPageSize).Context(ctx)
		if token != "" {
			call = call.PageToken(token)
		}
		return call.Do()
	}, func(page *sqladmin.BackupRunsListResponse) (string, error) {
		if page == nil {
			return "", nil
		}
		for _, r := range page.Items {
			if r == nil {
				continue
			}
			run, err := convertRun(r)
			if err != nil {
				return "", err
			}
			out = append(out, run)
		}
		return page.NextPageToken, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func convertRun(r *sqladmin.BackupRun) (SQLBackupRun, error) {
	run := SQLBackupRun{ID: r.Id, Type: r.Type, Status: r.Status}
	var err error
	if run.Enqueued, err = parseTime("enqueuedTime", r.EnqueuedTime); err != nil {
		return run, fmt.Errorf("backup run %d: %w", r.Id, err)
	}
	if run.Start, err = parseTime("startTime", r.StartTime); err != nil {
		return run, fmt.Errorf("backup run %d: %w", r.Id, err)
	}
	if run.End, err = parseTime("endTime", r.EndTime); err != nil {
		return run, fmt.Errorf("backup run %d: %w", r.Id, err)
	}
	if run.WindowStart, err = parseTime("windowStartTime", r.WindowStartTime); err != nil {
		return run, fmt.Errorf("backup run %d: %w", r.Id, err)
	}
	if r.Error != nil {
		run.Error = strings.TrimSpace(strings.Trim(r.Error.Code+": "+r.Error.Message, ": "))
	}
	return run, nil
}

// LatestRecoveryTime returns the latest point in time the instance can be restored to
// (instances.getLatestRecoveryTime); the zero time when the API reported none.
func (c *Client) LatestRecoveryTime(ctx context.Context, project, instance string) (time.Time, error) {
	res := sqlResource(project, instance)
	const op = "instances.getLatestRecoveryTime"
	svc, err := c.sqlService(ctx)
	if err != nil {
		return time.Time{}, setupError(APISQLAdmin, op, res, err)
	}
	var resp *sqladmin.SqlInstancesGetLatestRecoveryTimeResponse
	err = c.do(ctx, APISQLAdmin, op, res, func(ctx context.Context) error {
		var err error
		resp, err = svc.Projects.Instances.GetLatestRecoveryTime(project, instance).Context(ctx).Do()
		return err
	})
	if err != nil {
		return time.Time{}, err
	}
	if resp == nil {
		return time.Time{}, nil
	}
	t, err := parseTime("latestRecoveryTime", resp.LatestRecoveryTime)
	if err != nil {
		return time.Time{}, classify(APISQLAdmin, op, res, err)
	}
	return t, nil
}

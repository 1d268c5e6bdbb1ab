package gcpbackup

import (
	"context"
	"errors"
	"sort"
	"time"

	"cloud.google.com/go/gkebackup/apiv1/gkebackuppb"
	gax "github.com/googleapis/gax-go/v2"
	"google.golang.org/api/iterator"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// GKEPlan is a Backup for GKE backup plan.
type GKEPlan struct {
	Name        string // projects/*/locations/*/backupPlans/*
	Cluster     string
	State       string // READY, CLUSTER_PENDING, PROVISIONING, FAILED, DEACTIVATED, DELETING, STATE_UNSPECIFIED
	StateReason string
	Deactivated bool

	// HasSchedule tells whether backupSchedule was present.
	HasSchedule      bool
	CronSchedule     string // backupSchedule.cronSchedule
	TargetRPOMinutes int32  // backupSchedule.rpoConfig.targetRpoMinutes (an RPO-based schedule)
	Paused           bool   // backupSchedule.paused

	// HasRetentionPolicy tells whether retentionPolicy was present; RetainDays is its
	// backupRetainDays (0 means backups are never deleted automatically).
	HasRetentionPolicy bool
	RetainDays         int32
	DeleteLockDays     int32
	RetentionLocked    bool

	LastSuccessfulBackup time.Time
	ProtectedPodCount    int32 // pods in the last successful backup

	// RPORiskLevel is the service's own view of the RPO: 1 (no risk) to 5 (highest); 0 when
	// it said nothing. RPORiskReason explains it, with action items.
	RPORiskLevel  int32
	RPORiskReason string

	// Scope is what the plan backs up (backupConfig).
	Scope GKEScope
}

// GKEScope is a backup plan's scope: exactly one of all namespaces, selected namespaces or
// selected applications (whose namespaces are listed).
type GKEScope struct {
	AllNamespaces bool
	// Namespaces are the selected namespaces, or the distinct namespaces of the selected
	// applications, sorted.
	Namespaces []string
	// Applications tells that Namespaces come from selectedApplications.
	Applications bool
}

// GKEBackup is one backup of a plan.
type GKEBackup struct {
	Name          string
	State         string // CREATING, IN_PROGRESS, SUCCEEDED, FAILED, DELETING, STATE_UNSPECIFIED
	StateReason   string
	Manual        bool
	Created       time.Time
	Completed     time.Time
	PodCount      int32
	ResourceCount int32
	VolumeCount   int32
	SizeBytes     int64
}

// noRetry disables the library's own retries: Client.do retries with one policy for all APIs.
func noRetry() gax.CallOption {
	return gax.WithRetry(func() gax.Retryer { return nil })
}

// Plan reads a backup plan (backupPlans.get). name is projects/P/locations/L/backupPlans/X.
func (c *Client) Plan(ctx context.Context, name string) (GKEPlan, error) {
	const op = "backupPlans.get"
	gc, err := c.gkeClient(ctx)
	if err != nil {
		return GKEPlan{}, setupError(APIGKEBackup, op, name, err)
	}
	var p *gkebackuppb.BackupPlan
	err = c.do(ctx, APIGKEBackup, op, name, func(ctx context.Context) error {
		var err error
		p, err = gc.GetBackupPlan(ctx, &gkebackuppb.GetBackupPlanRequest{Name: name}, noRetry())
		return err
	})
	if err != nil {
		return GKEPlan{}, err
	}
	out := GKEPlan{
		Name:                 p.GetName(),
		Cluster:              p.GetCluster(),
		State:                p.GetState().String(),
		StateReason:          p.GetStateReason(),
		Deactivated:          p.GetDeactivated(),
		ProtectedPodCount:    p.GetProtectedPodCount(),
		LastSuccessfulBackup: tsTime(p.GetLastSuccessfulBackupTime()),
	}
	if out.Name == "" {
		out.Name = name
	}
	out.RPORiskLevel = p.GetRpoRiskLevel()
	out.RPORiskReason = p.GetRpoRiskReason()
	if bc := p.GetBackupConfig(); bc != nil {
		out.Scope.AllNamespaces = bc.GetAllNamespaces()
		seen := map[string]bool{}
		add := func(ns string) {
			if ns != "" && !seen[ns] {
				seen[ns] = true
				out.Scope.Namespaces = append(out.Scope.Namespaces, ns)
			}
		}
		for _, ns := range bc.GetSelectedNamespaces().GetNamespaces() {
			add(ns)
		}
		if apps := bc.GetSelectedApplications(); apps != nil {
			out.Scope.Applications = true
			for _, a := range apps.GetNamespacedNames() {
				add(a.GetNamespace())
			}
		}
		sort.Strings(out.Scope.Namespaces)
	}
	if s := p.GetBackupSchedule(); s != nil {
		out.HasSchedule = true
		out.CronSchedule = s.GetCronSchedule()
		out.TargetRPOMinutes = s.GetRpoConfig().GetTargetRpoMinutes()
		out.Paused = s.GetPaused()
	}
	if r := p.GetRetentionPolicy(); r != nil {
		out.HasRetentionPolicy = true
		out.RetainDays = r.GetBackupRetainDays()
		out.DeleteLockDays = r.GetBackupDeleteLockDays()
		out.RetentionLocked = r.GetLocked()
	}
	return out, nil
}

// backupsPageSize is the pageSize asked for per page of backups.list.
const backupsPageSize = 100

// Backups lists every backup of a plan (backups.list, all pages).
func (c *Client) Backups(ctx context.Context, plan string) ([]GKEBackup, error) {
	const op = "backups.list"
	gc, err := c.gkeClient(ctx)
	if err != nil {
		return nil, setupError(APIGKEBackup, op, plan, err)
	}
	var out []GKEBackup
	err = listPages(ctx, c, APIGKEBackup, op, plan, func(ctx context.Context, token string) (*gkebackuppb.ListBackupsResponse, error) {
		// One request per call: the iterator fetches one page on the first Next and exposes
		// it as Response. (Empty intermediate pages are skipped by Next; their items are
		// none, and Response then holds the last page fetched.)
		it := gc.ListBackups(ctx, &gkebackuppb.ListBackupsRequest{
			Parent:    plan,
			PageSize:  backupsPageSize,
			PageToken: token,
		}, noRetry())
		if _, err := it.Next(); err != nil && !errors.Is(err, iterator.Done) {
			return nil, err
		}
		page, _ := it.Response.(*gkebackuppb.ListBackupsResponse)
		return page, nil
	}, func(page *gkebackuppb.ListBackupsResponse) (string, error) {
		for _, b := range page.GetBackups() {
			if b == nil {
				continue
			}
			out = append(out, GKEBackup{
				Name:          b.GetName(),
				State:         b.GetState().String(),
				StateReason:   b.GetStateReason(),
				Manual:        b.GetManual(),
				Created:       tsTime(b.GetCreateTime()),
				Completed:     tsTime(b.GetCompleteTime()),
				PodCount:      b.GetPodCount(),
				ResourceCount: b.GetResourceCount(),
				VolumeCount:   b.GetVolumeCount(),
				SizeBytes:     b.GetSizeBytes(),
			})
		}
		return page.GetNextPageToken(), nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func tsTime(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime()
}

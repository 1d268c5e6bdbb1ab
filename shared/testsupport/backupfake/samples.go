package backupfake

import (
	"fmt"
	"time"

	"cloud.google.com/go/gkebackup/apiv1/gkebackuppb"
	sqladmin "google.golang.org/api/sqladmin/v1"
	rawstorage "google.golang.org/api/storage/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
	corev1 "k8s.io/api/core/v1"
)

// Names used by the sample environments.
const (
	HealthyProject = "fediops-healthy"
	BrokenProject  = "fediops-broken"
	SampleInstance = "mastodon-db"
	SampleLocation = "europe-west1"
	SamplePlan     = "mastodon-nightly"
	HealthyBucket  = "healthy-mastodon-media"
	BrokenBucket   = "broken-mastodon-media"
	// ForbiddenBucket is a bucket of the Broken environment that the audit may not read.
	ForbiddenBucket = "broken-mastodon-backups"
)

// ts formats t the way the discovery APIs do (RFC 3339, milliseconds, UTC).
func ts(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// lastNightly returns the most recent 03:00 UTC at or before now.
func lastNightly(now time.Time) time.Time {
	n := now.UTC()
	t := time.Date(n.Year(), n.Month(), n.Day(), 3, 0, 0, 0, time.UTC)
	if t.After(n) {
		t = t.AddDate(0, 0, -1)
	}
	return t
}

// HealthySQL returns a Cloud SQL for PostgreSQL instance configured as recommended:
// nightly automated backups at 03:00 UTC, 7 kept, point-in-time recovery with 7 days of
// transaction logs, eight successful nightly runs (one of them from yesterday or today),
// an on-demand backup, and a recovery point 90 seconds old. Backup runs come 4 per page.
func HealthySQL(now time.Time, project, instance string) SQLInstance {
	created := now.AddDate(-1, 0, 0)
	res := &sqladmin.DatabaseInstance{
		Kind:            "sql#instance",
		Name:            instance,
		Project:         project,
		ConnectionName:  project + ":" + SampleLocation + ":" + instance,
		DatabaseVersion: "POSTGRES_16",
		State:           "RUNNABLE",
		Region:          SampleLocation,
		GceZone:         SampleLocation + "-b",
		BackendType:     "SECOND_GEN",
		InstanceType:    "CLOUD_SQL_INSTANCE",
		CreateTime:      ts(created),
		SelfLink:        "https://sqladmin.googleapis.com/v1/projects/" + project + "/instances/" + instance,
		Etag:            "4d8f1c0c7e7b3a2f",
		Settings: &sqladmin.Settings{
			Kind:             "sql#settings",
			Tier:             "db-custom-2-8192",
			Edition:          "ENTERPRISE",
			AvailabilityType: "ZONAL",
			ActivationPolicy: "ALWAYS",
			PricingPlan:      "PER_USE",
			DataDiskSizeGb:   50,
			DataDiskType:     "PD_SSD",
			SettingsVersion:  17,
			BackupConfiguration: &sqladmin.BackupConfiguration{
				Kind:                         "sql#backupConfiguration",
				Enabled:                      true,
				StartTime:                    "03:00",
				Location:                     "eu",
				PointInTimeRecoveryEnabled:   true,
				TransactionLogRetentionDays:  7,
				TransactionalLogStorageState: "CLOUD_STORAGE",
				BackupTier:                   "STANDARD",
				BackupRetentionSettings: &sqladmin.BackupRetentionSettings{
					RetentionUnit:   "COUNT",
					RetainedBackups: 7,
				},
			},
		},
	}
	var runs []*sqladmin.BackupRun
	night := lastNightly(now)
	for d := 0; d < 8; d++ {
		w := night.AddDate(0, 0, -d)
		runs = append(runs, SQLRun(project, instance, int64(1700000000000+d), "AUTOMATED", "SUCCESSFUL", w, w.Add(9*time.Minute)))
	}
	od := night.AddDate(0, 0, -3).Add(11 * time.Hour)
	runs = append(runs, SQLRun(project, instance, 1700000000100, "ON_DEMAND", "SUCCESSFUL", od, od.Add(6*time.Minute)))
	return SQLInstance{
		Project:  project,
		Instance: instance,
		Resource: res,
		Runs:     runs,
		Recovery: &sqladmin.SqlInstancesGetLatestRecoveryTimeResponse{
			Kind:                 "sql#getLatestRecoveryTime",
			LatestRecoveryTime:   ts(now.Add(-90 * time.Second)),
			EarliestRecoveryTime: ts(now.AddDate(0, 0, -7)),
		},
		PageSize: 4,
	}
}

// SQLRun returns a backup run shaped like the API's: enqueued at window, started a minute
// later and, unless it is still going, ended at end (FAILED runs get an error).
func SQLRun(project, instance string, id int64, typ, status string, window, end time.Time) *sqladmin.BackupRun {
	r := &sqladmin.BackupRun{
		Kind:            "sql#backupRun",
		Id:              id,
		Instance:        instance,
		SelfLink:        fmt.Sprintf("https://sqladmin.googleapis.com/v1/projects/%s/instances/%s/backupRuns/%d", project, instance, id),
		Type:            typ,
		Status:          status,
		BackupKind:      "SNAPSHOT",
		Location:        "eu",
		EnqueuedTime:    ts(window.Add(30 * time.Second)),
		WindowStartTime: ts(window),
	}
	switch status {
	case "ENQUEUED", "OVERDUE":
	case "RUNNING":
		r.StartTime = ts(window.Add(time.Minute))
	default:
		r.StartTime = ts(window.Add(time.Minute))
		r.EndTime = ts(end)
	}
	if status == "FAILED" {
		r.Error = &sqladmin.OperationError{
			Kind:    "sql#operationError",
			Code:    "INTERNAL_ERROR",
			Message: "An internal error occurred while creating the backup. Please retry.",
		}
	}
	return r
}

// HealthyBucketResource returns a geo-redundant (multi-region EU) bucket with object
// versioning and the default 7-day soft delete.
func HealthyBucketResource(name string) *rawstorage.Bucket {
	return &rawstorage.Bucket{
		Kind:           "storage#bucket",
		Id:             name,
		SelfLink:       "https://www.googleapis.com/storage/v1/b/" + name,
		ProjectNumber:  123456789012,
		Name:           name,
		TimeCreated:    "2024-03-01T10:00:00.000Z",
		Updated:        "2025-06-12T08:30:00.000Z",
		Metageneration: 4,
		Location:       "EU",
		LocationType:   "multi-region",
		StorageClass:   "STANDARD",
		Rpo:            "DEFAULT",
		Etag:           "CAQ=",
		Versioning:     &rawstorage.BucketVersioning{Enabled: true},
		SoftDeletePolicy: &rawstorage.BucketSoftDeletePolicy{
			RetentionDurationSeconds: 604800,
			EffectiveTime:            "2024-03-01T10:00:00.000Z",
		},
		IamConfiguration: &rawstorage.BucketIamConfiguration{
			BucketPolicyOnly:         &rawstorage.BucketIamConfigurationBucketPolicyOnly{Enabled: true, LockedTime: "2024-05-30T10:00:00.000Z"},
			UniformBucketLevelAccess: &rawstorage.BucketIamConfigurationUniformBucketLevelAccess{Enabled: true, LockedTime: "2024-05-30T10:00:00.000Z"},
			PublicAccessPrevention:   "inherited",
		},
		Lifecycle: &rawstorage.BucketLifecycle{Rule: []*rawstorage.BucketLifecycleRule{{
			Action:    &rawstorage.BucketLifecycleRuleAction{Type: "Delete"},
			Condition: &rawstorage.BucketLifecycleRuleCondition{DaysSinceNoncurrentTime: 30},
		}}},
	}
}

// HealthyGKE returns a READY backup plan protecting the "mastodon" namespace every night at
// 03:00 UTC, keeping backups 7 days, with eight succeeded nightly backups of about 42 pods
// and 2 GiB. Backups come 3 per page.
func HealthyGKE(now time.Time, project, location, plan string) GKEPlan {
	name := PlanName(project, location, plan)
	cluster := ClusterName(project, location, SampleCluster)
	night := lastNightly(now)
	var backups []*gkebackuppb.Backup
	for d := 0; d < 8; d++ {
		start := night.AddDate(0, 0, -d)
		pods := int32(42 + d%2)
		size := int64(2<<30) + int64(d%3)*37<<20
		backups = append(backups, GKEBackup(name, cluster, start, start.Add(12*time.Minute), gkebackuppb.Backup_SUCCEEDED, pods, size))
	}
	res := &gkebackuppb.BackupPlan{
		Name:        name,
		Uid:         "2f0c6a52-4b8e-4f3a-9d1e-6c1f7e0b9a11",
		CreateTime:  timestamppb.New(now.AddDate(-1, 0, 0)),
		UpdateTime:  timestamppb.New(now.AddDate(0, -2, 0)),
		Description: "Nightly backup of the Mastodon namespace",
		Cluster:     cluster,
		RetentionPolicy: &gkebackuppb.BackupPlan_RetentionPolicy{
			BackupRetainDays: 7,
		},
		BackupSchedule: &gkebackuppb.BackupPlan_Schedule{
			CronSchedule:            "0 3 * * *",
			NextScheduledBackupTime: timestamppb.New(night.AddDate(0, 0, 1)),
		},
		Etag: "3",
		BackupConfig: &gkebackuppb.BackupPlan_BackupConfig{
			BackupScope:       &gkebackuppb.BackupPlan_BackupConfig_SelectedNamespaces{SelectedNamespaces: &gkebackuppb.Namespaces{Namespaces: []string{"mastodon"}}},
			IncludeVolumeData: true,
			IncludeSecrets:    true,
		},
		ProtectedPodCount:        42,
		State:                    gkebackuppb.BackupPlan_READY,
		RpoRiskLevel:             1,
		LastSuccessfulBackupTime: timestamppb.New(night.Add(12 * time.Minute)),
	}
	return GKEPlan{
		Project: project, Location: location, Plan: plan,
		Resource: res,
		Backups:  backups,
		PageSize: 3,
	}
}

// GKEBackup returns a scheduled backup of plan shaped like the API's.
func GKEBackup(plan, cluster string, created, completed time.Time, state gkebackuppb.Backup_State, pods int32, size int64) *gkebackuppb.Backup {
	b := &gkebackuppb.Backup{
		Name:             plan + "/backups/" + created.UTC().Format("nightly-20060102-1504"),
		Uid:              fmt.Sprintf("b-%d", created.Unix()),
		CreateTime:       timestamppb.New(created),
		UpdateTime:       timestamppb.New(completed),
		RetainDays:       7,
		RetainExpireTime: timestamppb.New(created.AddDate(0, 0, 7)),
		BackupScope:      &gkebackuppb.Backup_SelectedNamespaces{SelectedNamespaces: &gkebackuppb.Namespaces{Namespaces: []string{"mastodon"}}},
		ClusterMetadata: &gkebackuppb.Backup_ClusterMetadata{
			Cluster:         cluster,
			K8SVersion:      "1.33.5-gke.1201000",
			PlatformVersion: &gkebackuppb.Backup_ClusterMetadata_GkeVersion{GkeVersion: "1.33.5-gke.1201000"},
		},
		State: state,
		Etag:  "2",
	}
	switch state {
	case gkebackuppb.Backup_SUCCEEDED:
		b.CompleteTime = timestamppb.New(completed)
		b.ContainsVolumeData = true
		b.ContainsSecrets = true
		b.PodCount = pods
		b.ResourceCount = 7*pods + 15
		b.VolumeCount = 3
		b.SizeBytes = size
		b.ConfigBackupSizeBytes = int64(pods) * 24 << 10
	case gkebackuppb.Backup_FAILED:
		b.CompleteTime = timestamppb.New(completed)
		b.StateReason = "Failed to back up volume mastodon/postgres-data: VolumeSnapshot creation timed out"
	}
	return b
}

// Healthy is a sample environment where every check passes: project fediops-healthy with
// Cloud SQL instance mastodon-db, bucket healthy-mastodon-media and Backup for GKE plan
// europe-west1/mastodon-nightly.
func Healthy(now time.Time) Env {
	b := Bucket{Name: HealthyBucket, Resource: HealthyBucketResource(HealthyBucket)}
	return Env{
		SQL:      []SQLInstance{HealthySQL(now, HealthyProject, SampleInstance)},
		Buckets:  []Bucket{b},
		GKE:      []GKEPlan{HealthyGKE(now, HealthyProject, SampleLocation, SamplePlan)},
		Clusters: []Cluster{HealthyCluster(now, HealthyProject, SampleLocation)},
	}
}

// SampleCluster is the name of the sample environments' GKE cluster.
const SampleCluster = "mastodon"

// HealthyCluster returns the cluster the sample plans back up: Mastodon's web, streaming and
// Sidekiq pods running in namespace "mastodon", and, outside the plan's scope, a failed pod
// in kube-system that the leftover-pods check must not report.
func HealthyCluster(now time.Time, project, location string) Cluster {
	c := Cluster{Project: project, Location: location, Name: SampleCluster}
	started := now.Add(-72 * time.Hour)
	for _, name := range []string{"mastodon-web-6d9f7c9b8-2xk7p", "mastodon-web-6d9f7c9b8-h4m2q", "mastodon-streaming-7c5b4d8f6-9tq3w",
		"mastodon-sidekiq-default-5f7d9c8b4-kx2lp", "mastodon-sidekiq-default-5f7d9c8b4-r8n4v"} {
		c.Pods = append(c.Pods, Pod("mastodon", name, corev1.PodRunning, started, 0, ""))
	}
	c.Pods = append(c.Pods, EvictedPod("kube-system", "fluentbit-gke-8xk2p", now.Add(-10*24*time.Hour)))
	return c
}

// BrokenCluster is HealthyCluster with what the nightly Jobs left in namespace "mastodon":
// 60 Succeeded media-cleanup pods (one a day) and 29 Failed ones (evicted db-migrate pods
// and failed Job runs), the oldest 60 days old — the 89 extra pods of the Broken plan's
// newest backup.
func BrokenCluster(now time.Time, project, location string) Cluster {
	c := HealthyCluster(now, project, location)
	night := lastNightly(now)
	for d := 0; d < 60; d++ {
		at := night.AddDate(0, 0, -d).Add(-time.Hour)
		job := "mastodon-media-remove-" + at.Format("20060102")
		c.Pods = append(c.Pods, Pod("mastodon", job+"-x7k2p", corev1.PodSucceeded, at, 4*time.Minute, job))
	}
	for d := 0; d < 29; d++ {
		at := night.AddDate(0, 0, -2*d).Add(-2 * time.Hour)
		if d%2 == 0 {
			job := "mastodon-db-migrate-" + at.Format("200601021504")
			c.Pods = append(c.Pods, Pod("mastodon", job+"-q9z4m", corev1.PodFailed, at, 90*time.Second, job))
			continue
		}
		c.Pods = append(c.Pods, EvictedPod("mastodon", fmt.Sprintf("mastodon-sidekiq-scheduler-5b8c-%05d", d), at))
	}
	return c
}

// Broken is a sample environment with a typical set of problems, in project fediops-broken:
//   - Cloud SQL: 3 retained backups, point-in-time recovery off (the field is absent),
//     1 day of logs, newest successful backup 2 days old, a failed run yesterday;
//   - bucket broken-mastodon-media: regional, soft delete disabled, no versioning;
//   - bucket broken-mastodon-backups: the audit's service account may not read it (403);
//   - GKE plan: schedule paused, backups kept 3 days, newest succeeded backup 3 days old,
//     a failed manual backup yesterday, and the newest backup holds three times the usual pods
//     (finished Job pods left in the namespace).
func Broken(now time.Time) Env {
	sql := HealthySQL(now, BrokenProject, SampleInstance)
	bc := sql.Resource.Settings.BackupConfiguration
	bc.BackupRetentionSettings.RetainedBackups = 3
	bc.PointInTimeRecoveryEnabled = false
	bc.TransactionLogRetentionDays = 1
	night := lastNightly(now)
	sql.Runs = nil
	for d := 2; d < 5; d++ {
		w := night.AddDate(0, 0, -d)
		sql.Runs = append(sql.Runs, SQLRun(BrokenProject, SampleInstance, int64(1800000000000+d), "AUTOMATED", "SUCCESSFUL", w, w.Add(9*time.Minute)))
	}
	w := night.AddDate(0, 0, -1)
	sql.Runs = append(sql.Runs, SQLRun(BrokenProject, SampleInstance, 1800000000001, "AUTOMATED", "FAILED", w, w.Add(40*time.Minute)))
	sql.Runs = append(sql.Runs, SQLRun(BrokenProject, SampleInstance, 1800000000000, "AUTOMATED", "OVERDUE", night, time.Time{}))
	sql.Recovery = nil

	media := HealthyBucketResource(BrokenBucket)
	media.Location = "EUROPE-WEST1"
	media.LocationType = "region"
	media.Rpo = ""
	media.Versioning = nil
	media.SoftDeletePolicy = &rawstorage.BucketSoftDeletePolicy{
		RetentionDurationSeconds: 0,
		EffectiveTime:            "2025-02-10T09:00:00.000Z",
		ForceSendFields:          []string{"RetentionDurationSeconds"},
	}

	gke := HealthyGKE(now, BrokenProject, SampleLocation, SamplePlan)
	gke.Resource.BackupSchedule.Paused = true
	gke.Resource.BackupSchedule.NextScheduledBackupTime = nil
	gke.Resource.RetentionPolicy.BackupRetainDays = 3
	gke.Resource.RpoRiskLevel = 5
	gke.Resource.RpoRiskReason = "No successful backup in the last 72 hours"
	name := gke.Name()
	cluster := gke.Resource.Cluster
	gke.Backups = nil
	for d := 3; d < 10; d++ {
		start := night.AddDate(0, 0, -d)
		pods, size := int32(42), int64(2<<30)
		if d == 3 {
			pods, size = 131, int64(2<<30)+int64(89)*1<<20
		}
		gke.Backups = append(gke.Backups, GKEBackup(name, cluster, start, start.Add(12*time.Minute), gkebackuppb.Backup_SUCCEEDED, pods, size))
	}
	f := night.AddDate(0, 0, -1)
	failed := GKEBackup(name, cluster, f, f.Add(55*time.Minute), gkebackuppb.Backup_FAILED, 0, 0)
	failed.Name = name + "/backups/manual-" + f.UTC().Format("20060102-1504")
	failed.Manual = true
	gke.Backups = append(gke.Backups, failed)
	gke.Resource.LastSuccessfulBackupTime = timestamppb.New(night.AddDate(0, 0, -3).Add(12 * time.Minute))

	return Env{
		SQL: []SQLInstance{sql},
		Buckets: []Bucket{
			{Name: BrokenBucket, Resource: media},
			{Name: ForbiddenBucket, Resource: HealthyBucketResource(ForbiddenBucket), Fault: Forbidden},
		},
		GKE:      []GKEPlan{gke},
		Clusters: []Cluster{BrokenCluster(now, BrokenProject, SampleLocation)},
	}
}

package backupaudit

import (
	"context"

	"github.com/fediops/fediops/shared/clock"
	"github.com/fediops/fediops/shared/gcpbackup"
)

// TargetsFrom returns the targets listed in a [backup] table.
func TargetsFrom(b *Section) Targets {
	var t Targets
	for _, c := range b.CloudSQL {
		t.CloudSQL = append(t.CloudSQL, SQLTarget{Project: c.Project, Instance: c.Instance})
	}
	for _, bk := range b.Buckets {
		t.Buckets = append(t.Buckets, bk.Name)
	}
	for _, g := range b.GKE {
		t.GKE = append(t.GKE, GKETarget{Project: g.Project, Location: g.Location, Plan: g.Plan})
	}
	return t
}

// ThresholdsFrom returns the thresholds of a [backup] table, defaults filled in.
func ThresholdsFrom(b *Section) Thresholds {
	return Thresholds{
		MinRetainedBackups:  b.MinRetainedBackups,
		MinLogRetentionDays: b.MinLogRetentionDays,
		MaxBackupAge:        b.MaxBackupAge.Duration,
		FailedWindow:        b.FailedWindow.Duration,
		MaxRecoveryPointAge: b.MaxRecoveryPointAge.Duration,
		MinSoftDeleteDays:   b.MinSoftDeleteDays,
		MinGKERetentionDays: b.MinGKERetentionDays,
		MaxGrowthPct:        b.MaxGrowthPct,
		GrowthWindow:        b.GrowthWindow,
	}.WithDefaults()
}

// ClientConfig returns the gcpbackup adapter configuration of a [backup] table.
func ClientConfig(b *Section) gcpbackup.Config {
	return gcpbackup.Config{
		SQLAdminEndpoint:  b.SQLAdminEndpoint,
		StorageEndpoint:   b.StorageEndpoint,
		GKEBackupEndpoint: b.GKEBackupEndpoint,
		Timeout:           b.RequestTimeout.Duration,
	}
}

// Run audits what a [backup] table lists, through the real Google APIs (or the endpoints
// it configures). It is the whole job for the CloudEvent handler and the CLI:
//
//	report := backupaudit.Run(ctx, clock.Real{}, section)
func Run(ctx context.Context, clk clock.Clock, b *Section) Report {
	c := gcpbackup.New(ClientConfig(b))
	defer c.Close()
	return Audit(ctx, clk, SourcesFrom(c), TargetsFrom(b), ThresholdsFrom(b))
}

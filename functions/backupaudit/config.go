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
		t.GKE = append(t.GKE, GKETarget{Project: g.Project, Location: g.Location, Plan: g.Plan,
			Cleanup: PodCleanup{OlderThan: g.DeleteLeftoverPodsOlderThan.Duration, IncludeSucceeded: g.IncludeSucceeded}})
	}
	return t
}

// DrillTargetsFrom returns the [[backup.cloudsql]] entries with drill = true, defaults filled in.
func DrillTargetsFrom(b *Section) []DrillTarget {
	var out []DrillTarget
	for _, c := range b.CloudSQL {
		if !c.Drill {
			continue
		}
		t := DrillTarget{
			Project: c.Project, Instance: c.Instance, Tier: c.DrillTier, MaxHours: c.DrillMaxHours,
			Database: c.DrillDatabase, User: c.DrillUser, PasswordRef: c.DrillPassword, IPType: c.DrillIPType,
			SchemaVersion: c.DrillSchemaVersion, MaxDataAge: c.DrillMaxDataAge.Duration, Address: c.DrillAddress,
		}
		if t.MaxHours <= 0 {
			t.MaxHours = DefaultDrillMaxHours
		}
		if t.Database == "" {
			t.Database = DefaultDrillDatabase
		}
		if t.MaxDataAge <= 0 {
			t.MaxDataAge = DefaultDrillMaxDataAge
		}
		out = append(out, t)
	}
	return out
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
		LeftoverPodsMinAge:  b.LeftoverPodsMinAge.Duration,
	}.WithDefaults()
}

// ClientConfig returns the gcpbackup adapter configuration of a [backup] table.
func ClientConfig(b *Section) gcpbackup.Config {
	return gcpbackup.Config{
		SQLAdminEndpoint:  b.SQLAdminEndpoint,
		StorageEndpoint:   b.StorageEndpoint,
		GKEBackupEndpoint: b.GKEBackupEndpoint,
		ContainerEndpoint: b.ContainerEndpoint,
		Timeout:           b.RequestTimeout.Duration,
	}
}

// Run audits what a [backup] table lists, through the real Google APIs (or the endpoints
// it configures). It is the whole job for the CloudEvent handler and the CLI:
//
//	report := backupaudit.Run(ctx, clock.Real{}, section)
func Run(ctx context.Context, clk clock.Clock, b *Section) Report {
	return RunWith(ctx, clk, b, AuditOptions{})
}

// AuditOptions adjust a configured audit.
type AuditOptions struct {
	// DryRun reports what the leftover-pods cleanup would delete and deletes nothing.
	DryRun bool
}

// RunWith is Run with options.
func RunWith(ctx context.Context, clk clock.Clock, b *Section, o AuditOptions) Report {
	c := gcpbackup.New(ClientConfig(b))
	defer c.Close()
	tg := TargetsFrom(b)
	for i := range tg.GKE {
		tg.GKE[i].Cleanup.DryRun = o.DryRun
	}
	src := SourcesFrom(c)
	src.Pods = PodsFrom(c, b.RequestTimeout.Duration)
	return Audit(ctx, clk, src, tg, ThresholdsFrom(b))
}

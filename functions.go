// Package fediops registers the fediops Cloud Functions. It is the module-root package that
// the Cloud Functions Go buildpack deploys; it does nothing but register: each deployment
// selects one function with --entry-point (Approve, BlocklistSync or BackupAudit).
package fediops

import (
	"github.com/GoogleCloudPlatform/functions-framework-go/functions"

	"github.com/fediops/fediops/functions/approve"
	"github.com/fediops/fediops/functions/backupaudit"
	"github.com/fediops/fediops/functions/blocklist"
	"github.com/fediops/fediops/shared/setup"
)

func init() {
	// Each function validates its own section strictly and warns about the others'.
	sections := map[string]setup.SectionCheck{
		"triage":    approve.CheckConfig,
		"blocklist": blocklist.CheckConfig,
		"backup":    backupaudit.CheckConfig,
	}
	functions.CloudEvent("Approve", approve.Handler{Invocation: setup.Process(sections)}.Handle)
	functions.CloudEvent("BlocklistSync", blocklist.Handler{Invocation: setup.Process(sections)}.Handle)
	functions.CloudEvent("BackupAudit", backupaudit.Handler{Invocation: setup.Process(sections)}.Handle)
}

// Package fediops registers the fediops Cloud Functions. It is the module-root package that
// the Cloud Functions Go buildpack deploys; it does nothing but register: each deployment
// selects one function with --entry-point (Approve, BlocklistSync, BackupAudit or
// TriageWebhook).
//
// TriageWebhook is an HTTP function. Deployed (FUNCTION_TARGET=TriageWebhook) the framework
// serves it at "/", so every path reaches it and Mastodon posts to <function URL>/<instance>.
// A local framework without FUNCTION_TARGET serves it at exactly /TriageWebhook; fediops serve
// and the e2e tests add approve.WebhookLocalPath for /TriageWebhook/<instance>.
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
	functions.HTTP("TriageWebhook", approve.Webhook{Invocation: setup.Process(sections)}.ServeHTTP)
}

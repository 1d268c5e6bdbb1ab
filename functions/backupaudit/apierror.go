package backupaudit

import (
	"errors"
	"fmt"

	"github.com/fediops/fediops/shared/gcpbackup"
)

// IAM roles the audit's service account needs, named in the checks that fail with 403.
const (
	RoleCloudSQLViewer     = "roles/cloudsql.viewer"
	RoleGKEBackupViewer    = "roles/gkebackup.viewer"
	RoleLegacyBucketReader = "roles/storage.legacyBucketReader"
)

// saPlaceholder stands for the audit's service account in gcloud hints.
const saPlaceholder = "serviceAccount:AUDIT_SA_EMAIL"

// resource describes what a failed request was about, to name it in the check.
type resource struct {
	api      gcpbackup.API
	what     string // "Cloud SQL instance p/i", "bucket gs://b", "backup plan ..."
	role     string // IAM role that grants read access
	grant    string // gcloud command granting role
	notFound string // hint when it does not exist
}

func sqlResource(t SQLTarget) resource {
	return resource{
		api:  gcpbackup.APISQLAdmin,
		what: "Cloud SQL instance " + t.String(),
		role: RoleCloudSQLViewer,
		grant: fmt.Sprintf("grant %s on the project: gcloud projects add-iam-policy-binding %s --member=%s --role=%s",
			RoleCloudSQLViewer, t.Project, saPlaceholder, RoleCloudSQLViewer),
		notFound: fmt.Sprintf("check project and instance in [[backup.cloudsql]]; list the instances with: gcloud sql instances list --project=%s", t.Project),
	}
}

func bucketResource(name string) resource {
	return resource{
		api:  gcpbackup.APIStorage,
		what: "bucket gs://" + name,
		role: RoleLegacyBucketReader,
		grant: fmt.Sprintf("grant %s on the bucket: gcloud storage buckets add-iam-policy-binding gs://%s --member=%s --role=%s",
			RoleLegacyBucketReader, name, saPlaceholder, RoleLegacyBucketReader),
		notFound: "check the name in [[backup.bucket]]; list the buckets with: gcloud storage buckets list (add --project=ID for another project)",
	}
}

func gkeResource(t GKETarget) resource {
	return resource{
		api:  gcpbackup.APIGKEBackup,
		what: "backup plan " + t.Name(),
		role: RoleGKEBackupViewer,
		grant: fmt.Sprintf("grant %s on the project: gcloud projects add-iam-policy-binding %s --member=%s --role=%s",
			RoleGKEBackupViewer, t.Project, saPlaceholder, RoleGKEBackupViewer),
		notFound: fmt.Sprintf("check project, location and plan in [[backup.gke]]; list the plans with: gcloud beta container backup-restore backup-plans list --project=%s --location=%s", t.Project, t.Location),
	}
}

// errorChecks fails each of ids on target because err prevented reading res.
func errorChecks(ids []string, target string, res resource, err error, th Thresholds) []Check {
	observed, hint := explain(res, err)
	out := make([]Check, 0, len(ids))
	for _, id := range ids {
		out = append(out, Check{
			ID: id, Target: target, Status: Fail,
			Observed: observed, Expected: expectation(id, th), Hint: hint,
		})
	}
	return out
}

// explain turns an API error into the observed text and the remediation hint of a check.
func explain(res resource, err error) (observed, hint string) {
	var e *gcpbackup.Error
	if !errors.As(err, &e) {
		e = &gcpbackup.Error{Kind: gcpbackup.KindOf(err), Message: err.Error()}
	}
	detail := e.Message
	switch e.Kind {
	case gcpbackup.KindPermissionDenied:
		observed = fmt.Sprintf("permission denied (HTTP 403) reading %s: the audit's service account lacks %s", res.what, res.role)
		if detail != "" {
			observed += " (" + detail + ")"
		}
		return observed, res.grant
	case gcpbackup.KindUnauthenticated:
		observed = fmt.Sprintf("credentials refused (HTTP 401) reading %s", res.what)
		if detail != "" {
			observed += ": " + detail
		}
		return observed, "check the credentials of the audit's service account (Application Default Credentials; locally: gcloud auth application-default login)"
	case gcpbackup.KindNotFound:
		observed = fmt.Sprintf("%s not found (HTTP 404)", res.what)
		if detail != "" {
			observed += ": " + detail
		}
		return observed, res.notFound
	case gcpbackup.KindSetup:
		return fmt.Sprintf("could not read %s: %s client not created: %s", res.what, res.api, detail),
			fmt.Sprintf("check [backup] %s_endpoint and the credentials of the audit's service account", res.api)
	case gcpbackup.KindTimeout:
		return fmt.Sprintf("could not read %s: timeout: %s", res.what, orDefault(detail, "no answer in time")),
			"re-run the audit; if it keeps timing out, check network access to the " + string(res.api) + " API (VPC egress, private endpoint) and [backup] request_timeout"
	case gcpbackup.KindMalformed:
		return fmt.Sprintf("could not read %s: malformed answer from the %s API: %s", res.what, res.api, detail),
			"re-run the audit; if it persists, check [backup] " + string(res.api) + "_endpoint points at the real API (not a proxy or captive page)"
	case gcpbackup.KindUnavailable:
		code := ""
		if e.Code != 0 {
			code = fmt.Sprintf(" (HTTP %d)", e.Code)
		}
		return fmt.Sprintf("could not read %s: %s API error%s: %s", res.what, res.api, code, orDefault(detail, "service unavailable")),
			"transient Google API failure: re-run the audit; if it persists, check https://status.cloud.google.com"
	default:
		code := ""
		if e.Code != 0 {
			code = fmt.Sprintf(" (HTTP %d)", e.Code)
		}
		return fmt.Sprintf("could not read %s%s: %s", res.what, code, orDefault(detail, err.Error())),
			"re-run the audit; if it persists, check the [backup] settings for this target"
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// expectation returns what check id expects under th.
func expectation(id string, th Thresholds) string {
	switch id {
	case SQLBackupsEnabled:
		return "automated backups enabled"
	case SQLRetainedBackups:
		return fmt.Sprintf("at least %d automated backups retained", th.MinRetainedBackups)
	case SQLPITREnabled:
		return "point-in-time recovery enabled"
	case SQLLogRetention:
		return fmt.Sprintf("transaction logs kept at least %s", days(th.MinLogRetentionDays))
	case SQLLastBackupFresh:
		return fmt.Sprintf("newest SUCCESSFUL automated backup ended less than %s ago", limit(th.MaxBackupAge))
	case SQLNoFailedBackups:
		return fmt.Sprintf("no FAILED or OVERDUE backup run in the last %s", limit(th.FailedWindow))
	case SQLRecoveryPointFresh:
		return fmt.Sprintf("latest recovery time less than %s old", limit(th.MaxRecoveryPointAge))
	case GCSGeoRedundant:
		return "location type multi-region or dual-region"
	case GCSSoftDelete:
		return fmt.Sprintf("soft delete keeps deleted objects at least %s", days(th.MinSoftDeleteDays))
	case GCSVersioning:
		return "object versioning enabled"
	case GKEPlanActive:
		return "plan READY, not deactivated, schedule not paused, with a cron schedule"
	case GKERetention:
		return fmt.Sprintf("backups kept at least %s", days(th.MinGKERetentionDays))
	case GKELastBackupFresh:
		return fmt.Sprintf("newest SUCCEEDED backup completed less than %s ago", limit(th.MaxBackupAge))
	case GKENoFailedBackups:
		return fmt.Sprintf("no FAILED backup in the last %s", limit(th.FailedWindow))
	case GKERPORisk:
		return "Backup for GKE reports no RPO risk (rpoRiskLevel 1 of 5)"
	case GKELeftoverPods:
		if th.LeftoverPodsMinAge > 0 {
			return fmt.Sprintf("no Failed or Succeeded pods that finished more than %s ago in the plan's namespaces", limit(th.LeftoverPodsMinAge))
		}
		return "no Failed or Succeeded pods in the plan's namespaces"
	case GKEBackupGrowth:
		return fmt.Sprintf("pods and size of the newest backup at most +%s over the median of the previous %d", pct(th.MaxGrowthPct), th.GrowthWindow)
	}
	return ""
}

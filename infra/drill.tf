# The backup audit's restore drill and its leftover-pods check (README, "Restore drill" and
# "Leftover pods"; docs/deployment.md). Nothing here exists until drill_instances lists an
# instance (drills) or leftover_pod_cleanup is true (the optional cleanup).
#
# The custom roles always exist (a role grants nothing until it is bound); the bindings exist
# only when enabled.
#
# The drill clones a Cloud SQL instance into fediops-drill-<instance>-<yyyymmddhhmm>, connects
# to the clone with IAM database authentication, and deletes it. Every grant below is limited
# by an IAM condition: clone on the listed source instances only; everything that changes,
# connects to or deletes an instance on names starting with fediops-drill- only (the same
# prefix the code refuses to leave, gcpbackup.DrillPrefix; infra_test.go checks both). The
# source instance is never patched, deleted or connected to. Reading (instances.get/list,
# operations.get, getLatestRecoveryTime) is roles/cloudsql.viewer, granted for the audit.

locals {
  drill_enabled = length(var.drill_instances) > 0
  # for_each of the grants that exist once for all drills.
  drill_projects = local.drill_enabled ? toset([var.project_id]) : toset([])

  # The drill's clones, as IAM conditions see instance names.
  drill_clones = join(" && ", [
    "resource.type == \"sqladmin.googleapis.com/Instance\"",
    "resource.name.startsWith(\"projects/${var.project_id}/instances/fediops-drill-\")",
  ])

  # The drill's two scheduler jobs on the backup audit's topic: the monthly start and the
  # advance every 10 minutes (it returns at once when no drill is in progress).
  drill_jobs = local.drill_enabled ? {
    start   = { schedule = var.drill_schedule, data = "{\"drill\":\"start\"}", description = "Starts the monthly restore drill of the backup audit." }
    advance = { schedule = "*/10 * * * *", data = "{\"drill\":\"advance\"}", description = "Advances a restore drill in progress (returns at once when there is none)." }
  } : {}
}

# instances.clone, checked on the source. (Whether Cloud SQL also checks a permission on the
# new instance is not documented; if a first drill fails with 403 on the clone, add
# cloudsql.instances.create to this role.)
resource "google_project_iam_custom_role" "drill_clone" {
  role_id     = "fediopsDrillClone"
  title       = "fediops drill clone"
  description = "Clone a Cloud SQL instance (granted only on the instances with restore drills)."
  permissions = ["cloudsql.instances.clone"]

  depends_on = [google_project_service.this]
}

# Change and delete drill clones: the clone's tier and deletion protection, and the cleanup.
resource "google_project_iam_custom_role" "drill_cleanup" {
  role_id     = "fediopsDrillCleanup"
  title       = "fediops drill cleanup"
  description = "Patch and delete Cloud SQL instances; only ever granted on fediops-drill-* instances."
  permissions = ["cloudsql.instances.delete", "cloudsql.instances.update"]

  depends_on = [google_project_service.this]
}

resource "google_project_iam_member" "drill_clone" {
  for_each = var.drill_instances

  project = var.project_id
  role    = google_project_iam_custom_role.drill_clone.id
  member  = google_service_account.runtime["backupaudit"].member

  condition {
    title       = "fediops-drill-source-${each.key}"
    description = "Clone only this instance (the restore drill's source)."
    expression  = "resource.type == \"sqladmin.googleapis.com/Instance\" && resource.name == \"projects/${var.project_id}/instances/${each.key}\""
  }
}

resource "google_project_iam_member" "drill_cleanup" {
  for_each = local.drill_projects

  project = each.key
  role    = google_project_iam_custom_role.drill_cleanup.id
  member  = google_service_account.runtime["backupaudit"].member

  condition {
    title       = "fediops-drill-clones"
    description = "Only the restore drill's clones (fediops-drill-*); never the source or any other instance."
    expression  = local.drill_clones
  }
}

# Connect (Cloud SQL connector) and sign in (IAM database authentication) to the clones only.
resource "google_project_iam_member" "drill_connect" {
  for_each = local.drill_projects

  project = each.key
  role    = "roles/cloudsql.client"
  member  = google_service_account.runtime["backupaudit"].member

  condition {
    title       = "fediops-drill-connect"
    description = "Connect to the restore drill's clones only."
    expression  = local.drill_clones
  }
}

resource "google_project_iam_member" "drill_login" {
  for_each = local.drill_projects

  project = each.key
  role    = "roles/cloudsql.instanceUser"
  member  = google_service_account.runtime["backupaudit"].member

  condition {
    title       = "fediops-drill-login"
    description = "IAM database login on the restore drill's clones only."
    expression  = local.drill_clones
  }
}

resource "google_cloud_scheduler_job" "drill" {
  for_each = local.drill_jobs

  name        = "fediops-backupaudit-drill-${each.key}"
  description = each.value.description
  region      = local.scheduler_region
  schedule    = each.value.schedule
  time_zone   = var.schedule_time_zone

  paused = !var.functions_deployed

  pubsub_target {
    topic_name = google_pubsub_topic.function["backupaudit"].id
    data       = base64encode(each.value.data)
  }

  depends_on = [google_project_service.this]
}

# --- leftover pods -----------------------------------------------------------------------

# Read clusters (clusters.get: endpoint and CA) and list the pods in them, in every project
# whose Backup for GKE plans the audit reads. GKE has no per-cluster or per-namespace IAM
# grant for reading pods; a namespaced Kubernetes RBAC Role bound to the service account is
# the narrower alternative (docs/deployment.md).
resource "google_project_iam_member" "backupaudit_container" {
  for_each = local.backup_audit_projects

  project = each.key
  role    = "roles/container.viewer"
  member  = google_service_account.runtime["backupaudit"].member
}

# The optional cleanup (delete_leftover_pods_older_than in [[backup.gke]]): delete pods, and
# nothing else. Off by default; project_id only (a project's custom role cannot be granted
# in another project: there, or for a narrower grant, bind a namespaced Kubernetes Role,
# docs/deployment.md).
resource "google_project_iam_custom_role" "pod_cleanup" {
  role_id     = "fediopsPodCleanup"
  title       = "fediops pod cleanup"
  description = "Delete pods (finished ones: the backup audit checks the phase and age before each delete)."
  permissions = ["container.pods.delete"]

  depends_on = [google_project_service.this]
}

resource "google_project_iam_member" "pod_cleanup" {
  for_each = var.leftover_pod_cleanup ? toset([var.project_id]) : toset([])

  project = each.key
  role    = google_project_iam_custom_role.pod_cleanup.id
  member  = google_service_account.runtime["backupaudit"].member
}

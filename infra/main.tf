# fediops on Google Cloud: what the four Cloud Functions need, and who may do what.
#
# Ownership: Terraform owns everything in this directory. It does NOT manage the Cloud
# Functions themselves: cloudbuild.yaml deploys them with `gcloud functions deploy` (which
# honours ../.gcloudignore when it uploads the module root), using the service accounts,
# topics, buckets and Artifact Registry repository defined here. Terraform never reads or
# writes a function, so the two tools cannot fight over one. See ../docs/deployment.md.

locals {
  # Every function registered in ../functions.go, keyed by the short name that names its
  # Cloud Function (fediops-<key>), scheduler job and runtime service account; its Pub/Sub
  # topic is named for the chore (fediops-triage, the name the docs publish to). cloudbuild.yaml deploys the same set; infra_test.go checks the registrations,
  # this map and cloudbuild.yaml against one another.
  #
  # fanout: a scheduled run with several instances publishes one message per instance to the
  # function's own topic (its account may publish there, iam.tf; cloudbuild.yaml passes the
  # topic as FEDIOPS_<TOPIC>_TOPIC and lets var.max_instance_count invocations run at once).
  functions = {
    approve = {
      entry_point = "Approve"
      topic       = "fediops-triage"
      description = "registration triage"
      schedule    = var.triage_schedule
      fanout      = true
    }
    blocklist = {
      entry_point = "BlocklistSync"
      topic       = "fediops-blocklist"
      description = "federation blocklist sync"
      schedule    = var.blocklist_schedule
      fanout      = true
    }
    backupaudit = {
      entry_point = "BackupAudit"
      topic       = "fediops-backupaudit"
      description = "backup audit"
      schedule    = var.backup_audit_schedule
      fanout      = false
    }
  }

  fanout_functions = toset([for key, fn in local.functions : key if fn.fanout])

  # HTTP functions registered in ../functions.go: called by a server, not by a topic or a
  # schedule. Each hands its work to a function of local.functions by publishing to that
  # function's topic (publishes_to), and has its own account (iam.tf).
  http_functions = {
    webhook = {
      entry_point  = "TriageWebhook"
      description  = "Mastodon admin webhook receiver (instant registration triage)"
      publishes_to = "approve"
    }
  }

  apis = [
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "cloudscheduler.googleapis.com",
    "eventarc.googleapis.com",
    "gkebackup.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "sqladmin.googleapis.com",
    "storage.googleapis.com",
  ]

  scheduler_region = coalesce(var.scheduler_region, var.region)
  storage_location = upper(coalesce(var.storage_location, var.region))

  archive_bucket = coalesce(var.archive_bucket_name, "${var.project_id}-fediops-archive")
  config_bucket  = coalesce(var.config_bucket_name, "${var.project_id}-fediops-config")
  config_object  = "fediops.toml"

  # [archive] url in fediops.toml, and FEDIOPS_CONFIG of every function.
  archive_prefix = var.archive_prefix == "" ? "" : "${var.archive_prefix}/"
  archive_url    = var.archive_prefix == "" ? "gs://${local.archive_bucket}" : "gs://${local.archive_bucket}/${var.archive_prefix}"
  fediops_config = "gs://${local.config_bucket}/${local.config_object}"

  # Object names as IAM conditions see them (resource.name), under the archive prefix.
  archive_objects = "projects/_/buckets/${google_storage_bucket.archive.name}/objects/${local.archive_prefix}"

  # Token references for fediops.toml: name => sm://projects/P/secrets/S/versions/latest.
  tokens = {
    for name, secret in google_secret_manager_secret.token :
    name => "sm://projects/${var.project_id}/secrets/${secret.secret_id}/versions/latest"
  }

  # Webhook secret references for fediops.toml ([[instance]] webhook_secret): instance name =>
  # sm://projects/P/secrets/fediops-webhook-<name>/versions/latest.
  webhook_secrets = {
    for name, secret in google_secret_manager_secret.webhook :
    name => "sm://projects/${var.project_id}/secrets/${secret.secret_id}/versions/latest"
  }

  backup_audit_projects = var.backup_audit_projects == null ? toset([var.project_id]) : var.backup_audit_projects
}

data "google_project" "this" {
  project_id = var.project_id

  depends_on = [google_project_service.this]
}

resource "google_project_service" "this" {
  for_each = toset(local.apis)

  project            = var.project_id
  service            = each.key
  disable_on_destroy = false
}

# Where the function builds push their images (gcloud functions deploy --docker-repository),
# so that the build account needs write access to this repository only.
resource "google_artifact_registry_repository" "functions" {
  location      = var.region
  repository_id = "fediops-functions"
  format        = "DOCKER"
  description   = "Images of the fediops Cloud Functions, built by Cloud Build from cloudbuild.yaml."

  cleanup_policy_dry_run = false
  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 5
    }
  }
  cleanup_policies {
    id     = "delete-old"
    action = "DELETE"
    condition {
      tag_state  = "ANY"
      older_than = "2592000s" # 30 days; the five newest versions of each image are kept
    }
  }

  depends_on = [google_project_service.this]
}

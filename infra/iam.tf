# Identities and every permission fediops holds. Least privilege, resource by resource:
#
#   account          grants (scope)
#   fediops-approve     archive bucket: create, get; overwrite only leases/triage/*, the
#                       list sources' last good copy pointers (triage-lists/sources/*) and
#                       the email-domain block state (triage-email-blocks/state/*)
#                       config bucket: get;  its token secrets: secretAccessor
#                       triage topic: roles/pubsub.publisher (fan-out to itself)
#   fediops-blocklist   archive bucket: create, get, list; overwrite only leases/blocklist/*
#                       and blocklist/* outside blocklist/snapshots/ and blocklist/objects/
#                       config bucket: get;  its token secrets: secretAccessor
#                       blocklist topic: roles/pubsub.publisher (fan-out to itself)
#   fediops-backupaudit archive bucket: create, get; overwrite only leases/backup/* and
#                       backup/drill/state/* (the restore drill's state)
#                       config bucket: get
#                       audited buckets: roles/storage.legacyBucketReader (each bucket)
#                       audited projects: roles/cloudsql.viewer, roles/gkebackup.viewer,
#                       roles/container.viewer (leftover pods)
#                       restore drill (drill.tf, when drill_instances is set): clone the
#                       listed instances; patch, delete, connect and log in to fediops-drill-*
#                       instances only; optional pod cleanup: container.pods.delete
#   fediops-webhook     config bucket: get;  the webhook secrets: secretAccessor
#                       triage topic: roles/pubsub.publisher. Nothing else: no archive, no token
#   fediops-trigger     roles/run.invoker on the three event functions' Cloud Run services
#   fediops-build       deploys and builds the functions (see the end of this file)
#   allUsers            roles/run.invoker on the fediops-webhook service ONLY (see there)
#
# Archive writes. Audit trails and snapshots are written create-only (ifGenerationMatch=0);
# leases, blocklist state, checkpoints and source pointers are control objects, overwritten
# with generation preconditions and read back. roles/storage.objectCreator cannot do the
# latter: it cannot read, and overwriting an existing object also needs
# storage.objects.delete. roles/storage.objectUser could, but it grants delete (and update,
# restore, ...) on every object, so a function could rewrite its own audit trail. Instead
# four one-permission custom roles are granted on the bucket, and the one holding
# storage.objects.delete only with an IAM condition on the object names a function
# overwrites. A function can therefore replace its control objects but never an audit
# object; bucket versioning keeps every overwritten generation anyway.
#
# No primitive role (owner, editor, viewer) anywhere, and nothing project-wide that a
# bucket-, secret-, topic-, service- or repository-level grant can do. One public grant: anyone
# may invoke the webhook's service, because Mastodon cannot present a Google identity; the
# webhook authenticates each delivery by its HMAC signature instead. infra_test.go asserts
# this exact list, and that no other service is public.

resource "google_service_account" "runtime" {
  for_each = local.functions

  account_id   = "fediops-${each.key}"
  display_name = "fediops ${each.value.entry_point}"
  description  = "Runtime identity of the ${each.value.entry_point} Cloud Function (${each.value.description})."

  depends_on = [google_project_service.this]
}

resource "google_service_account" "webhook" {
  account_id   = "fediops-webhook"
  display_name = "fediops ${local.http_functions.webhook.entry_point}"
  description  = "Runtime identity of the TriageWebhook Cloud Function: reads fediops.toml and the webhook secrets, publishes to the triage topic; nothing else."

  depends_on = [google_project_service.this]
}

resource "google_service_account" "trigger" {
  account_id   = "fediops-trigger"
  display_name = "fediops trigger"
  description  = "Identity of the Eventarc Pub/Sub triggers: may only invoke the fediops functions."

  depends_on = [google_project_service.this]
}

resource "google_service_account" "build" {
  account_id   = "fediops-build"
  display_name = "fediops build"
  description  = "Runs cloudbuild.yaml (tests, gcloud functions deploy) and the function builds."

  depends_on = [google_project_service.this]
}

# --- custom roles: one permission each, granted on buckets only -------------------------
#
# Custom roles are created through the IAM API, which this same apply enables: without the
# depends_on they would race its enablement on an empty project.

resource "google_project_iam_custom_role" "object_create" {
  role_id     = "fediopsObjectCreate"
  title       = "fediops object create"
  description = "Create new objects. Overwriting an existing one also needs storage.objects.delete."
  permissions = ["storage.objects.create"]

  depends_on = [google_project_service.this]
}

resource "google_project_iam_custom_role" "object_read" {
  role_id     = "fediopsObjectRead"
  title       = "fediops object read"
  description = "Read objects and their metadata."
  permissions = ["storage.objects.get"]

  depends_on = [google_project_service.this]
}

resource "google_project_iam_custom_role" "object_list" {
  role_id     = "fediopsObjectList"
  title       = "fediops object list"
  description = "List object names."
  permissions = ["storage.objects.list"]

  depends_on = [google_project_service.this]
}

resource "google_project_iam_custom_role" "object_replace" {
  role_id     = "fediopsObjectReplace"
  title       = "fediops object replace"
  description = "Overwrite (or delete) objects. Only ever granted with a condition on the object name."
  permissions = ["storage.objects.delete"]

  depends_on = [google_project_service.this]
}

locals {
  # The control objects each function overwrites, as IAM condition expressions.
  control_objects = {
    approve = join(" ", [
      "resource.name.startsWith(\"${local.archive_objects}leases/triage/\") ||",
      "resource.name.startsWith(\"${local.archive_objects}triage-lists/sources/\") ||",
      "resource.name.startsWith(\"${local.archive_objects}triage-email-blocks/state/\")",
    ])
    backupaudit = join(" ", [
      "resource.name.startsWith(\"${local.archive_objects}leases/backup/\") ||",
      "resource.name.startsWith(\"${local.archive_objects}backup/drill/state/\")",
    ])
    blocklist = join(" ", [
      "resource.name.startsWith(\"${local.archive_objects}leases/blocklist/\") ||",
      "(resource.name.startsWith(\"${local.archive_objects}blocklist/\") &&",
      "!resource.name.startsWith(\"${local.archive_objects}blocklist/snapshots/\") &&",
      "!resource.name.startsWith(\"${local.archive_objects}blocklist/objects/\"))",
    ])
  }
}

# --- archive bucket ----------------------------------------------------------------------

resource "google_storage_bucket_iam_member" "archive_create" {
  for_each = local.functions

  bucket = google_storage_bucket.archive.name
  role   = google_project_iam_custom_role.object_create.id
  member = google_service_account.runtime[each.key].member
}

resource "google_storage_bucket_iam_member" "archive_read" {
  for_each = toset(["approve", "backupaudit", "blocklist"])

  bucket = google_storage_bucket.archive.name
  role   = google_project_iam_custom_role.object_read.id
  member = google_service_account.runtime[each.key].member
}

resource "google_storage_bucket_iam_member" "archive_list" {
  bucket = google_storage_bucket.archive.name
  role   = google_project_iam_custom_role.object_list.id
  member = google_service_account.runtime["blocklist"].member
}

resource "google_storage_bucket_iam_member" "archive_replace" {
  for_each = local.control_objects

  bucket = google_storage_bucket.archive.name
  role   = google_project_iam_custom_role.object_replace.id
  member = google_service_account.runtime[each.key].member

  condition {
    title       = "fediops-${each.key}-control-objects"
    description = "Only the control objects (leases, state, checkpoints) of ${each.key}; never an audit object."
    expression  = each.value
  }
}

# --- configuration (fediops.toml): read by every function, written only by Terraform -----

resource "google_storage_bucket_iam_member" "config_read" {
  for_each = local.functions

  bucket = google_storage_bucket.config.name
  role   = google_project_iam_custom_role.object_read.id
  member = google_service_account.runtime[each.key].member
}

resource "google_storage_bucket_iam_member" "webhook_config_read" {
  bucket = google_storage_bucket.config.name
  role   = google_project_iam_custom_role.object_read.id
  member = google_service_account.webhook.member
}

# --- tokens: each secret readable only by the functions listed in instance_tokens --------

resource "google_secret_manager_secret_iam_member" "token_approve" {
  for_each = { for name, token in var.instance_tokens : name => token if contains(token.readers, "approve") }

  project   = var.project_id
  secret_id = google_secret_manager_secret.token[each.key].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.runtime["approve"].member
}

resource "google_secret_manager_secret_iam_member" "token_blocklist" {
  for_each = { for name, token in var.instance_tokens : name => token if contains(token.readers, "blocklist") }

  project   = var.project_id
  secret_id = google_secret_manager_secret.token[each.key].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.runtime["blocklist"].member
}

# --- the webhook: its secrets, and the triage topic ---------------------------------------

resource "google_secret_manager_secret_iam_member" "webhook_secret" {
  for_each = var.webhook_secrets

  project   = var.project_id
  secret_id = google_secret_manager_secret.webhook[each.key].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.webhook.member
}

# It decides nothing: it publishes the sign-up for Approve.
resource "google_pubsub_topic_iam_member" "webhook_publish" {
  project = var.project_id
  topic   = google_pubsub_topic.function[local.http_functions.webhook.publishes_to].name
  role    = "roles/pubsub.publisher"
  member  = google_service_account.webhook.member
}

# --- fan-out: a scheduled run publishes one message per instance to its own topic --------

resource "google_pubsub_topic_iam_member" "fanout_publish" {
  for_each = local.fanout_functions

  project = var.project_id
  topic   = google_pubsub_topic.function[each.key].name
  role    = "roles/pubsub.publisher"
  member  = google_service_account.runtime[each.key].member
}

# --- backup audit: read-only views of what it audits -------------------------------------

# Cloud SQL has no instance-level IAM and Backup for GKE plans are listed per location, so
# these two read-only roles are project-level: the only project-level roles of a function.
resource "google_project_iam_member" "backupaudit_cloudsql" {
  for_each = local.backup_audit_projects

  project = each.key
  role    = "roles/cloudsql.viewer"
  member  = google_service_account.runtime["backupaudit"].member
}

resource "google_project_iam_member" "backupaudit_gkebackup" {
  for_each = local.backup_audit_projects

  project = each.key
  role    = "roles/gkebackup.viewer"
  member  = google_service_account.runtime["backupaudit"].member
}

# storage.buckets.get (plus storage.objects.list) on each audited bucket. A predefined role,
# because a project custom role cannot be granted on a bucket in another project.
resource "google_storage_bucket_iam_member" "backupaudit_bucket" {
  for_each = var.audited_buckets

  bucket = each.key
  role   = "roles/storage.legacyBucketReader"
  member = google_service_account.runtime["backupaudit"].member
}

# --- trigger: invoke the three event functions' services and nothing else -----------------

# The services exist once cloudbuild.yaml has deployed the functions: set
# functions_deployed = true and apply again (docs/deployment.md).
resource "google_cloud_run_v2_service_iam_member" "trigger_invoke" {
  for_each = var.functions_deployed ? local.functions : {}

  project  = var.project_id
  location = var.region
  name     = "fediops-${each.key}"
  role     = "roles/run.invoker"
  member   = google_service_account.trigger.member
}

# --- the webhook is public: the one exception -------------------------------------------
#
# Mastodon delivers its admin webhooks as anonymous HTTPS POSTs: it cannot present a Google
# identity token. So anyone may invoke the fediops-webhook service (cloudbuild.yaml deploys it
# with --allow-unauthenticated and --ingress-settings=all), and TriageWebhook itself
# authenticates every delivery by its X-Hub-Signature (HMAC-SHA256 with the instance's secret)
# before reading it. Its account can publish to the triage topic and read its secrets, no
# more. No other service is public; infra_test.go checks both.
resource "google_cloud_run_v2_service_iam_member" "webhook_public" {
  count = var.functions_deployed ? 1 : 0

  project  = var.project_id
  location = var.region
  name     = "fediops-webhook"
  role     = "roles/run.invoker"
  member   = "allUsers"

  depends_on = [google_project_service.this]
}

# --- build: runs cloudbuild.yaml and the function builds ----------------------------------
#
# One account for both: the function build compiles the same code the pipeline's `go test`
# already runs, so splitting them would not narrow what that code can reach.

# Creating and updating functions is only grantable on the project.
resource "google_project_iam_member" "build_deploy" {
  project = var.project_id
  role    = "roles/cloudfunctions.developer"
  member  = google_service_account.build.member
}

# Build logs (cloudbuild.yaml uses logging: CLOUD_LOGGING_ONLY).
resource "google_project_iam_member" "build_logs" {
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = google_service_account.build.member
}

# The function builds read the uploaded source from gcf-v2-sources-<project number>-<region>,
# the bucket Cloud Functions stages every deploy in, and a `gcloud builds submit` stages its
# upload in the staging bucket (--gcs-source-staging-dir). Both buckets are created by this
# configuration (storage.tf), so the build account's grants are on them alone: no storage
# role at project level, where it could overwrite or delete the media or the archive.
resource "google_storage_bucket_iam_member" "build_function_sources" {
  bucket = google_storage_bucket.function_sources.name
  role   = "roles/storage.objectAdmin"
  member = google_service_account.build.member
}

resource "google_storage_bucket_iam_member" "build_staging" {
  bucket = google_storage_bucket.build_staging.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.build.member
}

resource "google_artifact_registry_repository_iam_member" "build_images" {
  project    = var.project_id
  location   = google_artifact_registry_repository.functions.location
  repository = google_artifact_registry_repository.functions.name
  role       = "roles/artifactregistry.writer"
  member     = google_service_account.build.member
}

# gcloud functions deploy --service-account / --trigger-service-account /
# --build-service-account: the deployer must be allowed to act as each of them.
resource "google_service_account_iam_member" "build_act_as_runtime" {
  for_each = local.functions

  service_account_id = google_service_account.runtime[each.key].name
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.build.member
}

resource "google_service_account_iam_member" "build_act_as_webhook" {
  service_account_id = google_service_account.webhook.name
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.build.member
}

resource "google_service_account_iam_member" "build_act_as_trigger" {
  service_account_id = google_service_account.trigger.name
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.build.member
}

resource "google_service_account_iam_member" "build_act_as_build" {
  service_account_id = google_service_account.build.name
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.build.member
}

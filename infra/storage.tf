# The archive (audit trails, snapshots, leases and state) and the configuration bucket.
# Both: uniform bucket-level access (IAM only, no ACLs), public access prevention enforced,
# versioning and soft delete.

resource "google_storage_bucket" "archive" {
  name                        = local.archive_bucket
  location                    = local.storage_location
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  # Every overwrite of a control object leaves the previous generation behind.
  versioning {
    enabled = true
  }

  soft_delete_policy {
    retention_duration_seconds = var.soft_delete_days * 86400
  }

  # No rule deletes a live object. Snapshots refer to raw blocklist sources stored once,
  # by content, under blocklist/objects/<sha256> (an object may be years old and still in
  # today's snapshot): an age-based Delete there would break the snapshots that are kept.
  # Pruning old snapshots and the objects only they refer to is described in docs/runbook.md.

  # Leases, state and checkpoints are overwritten on every run: drop old generations.
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.archive_noncurrent_days
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      num_newer_versions = var.archive_noncurrent_versions
      with_state         = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  dynamic "lifecycle_rule" {
    for_each = var.archive_nearline_after_days > 0 ? [var.archive_nearline_after_days] : []
    content {
      condition {
        age                   = lifecycle_rule.value
        matches_storage_class = ["STANDARD"]
      }
      action {
        type          = "SetStorageClass"
        storage_class = "NEARLINE"
      }
    }
  }

  lifecycle_rule {
    condition {
      age = 1
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }

  # The audit trail outlives any `terraform destroy`.
  lifecycle {
    prevent_destroy = true
  }

  depends_on = [google_project_service.this]
}

resource "google_storage_bucket" "config" {
  name                        = local.config_bucket
  location                    = local.storage_location
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  versioning {
    enabled = true
  }

  soft_delete_policy {
    retention_duration_seconds = var.soft_delete_days * 86400
  }

  lifecycle_rule {
    condition {
      num_newer_versions = 20
      with_state         = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.this]
}

# fediops.toml, rendered from the admin's template (config_template). It holds no secret:
# tokens are sm:// references (the template gets them as tokens["<name>"]), and so are the
# webhook secrets (webhook_secrets["<name>"]). With
# config_template = null the object is left to you (gcloud storage cp).
locals {
  config_content = var.config_template == null ? "" : templatefile(var.config_template, {
    archive_url     = local.archive_url
    tokens          = local.tokens
    webhook_secrets = local.webhook_secrets
    project_id      = var.project_id
  })

  # [project, secret] of every sm:// reference in the rendered configuration.
  config_secret_refs = regexall("sm://projects/([^/\"'\\s]+)/secrets/([^/\"'\\s]+)", local.config_content)
}

resource "google_storage_bucket_object" "config" {
  count = var.config_template == null ? 0 : 1

  bucket       = google_storage_bucket.config.name
  name         = local.config_object
  content_type = "application/toml"
  content      = local.config_content

  lifecycle {
    precondition {
      condition     = strcontains(local.config_content, "\"${local.archive_url}\"")
      error_message = "The configuration must set [archive] url = \"${local.archive_url}\" (use url = \"$${archive_url}\" in the template): the functions' write permissions are granted there."
    }
    precondition {
      condition = alltrue([
        for ref in local.config_secret_refs :
        ref[0] == var.project_id && contains([for s in concat(values(google_secret_manager_secret.token), values(google_secret_manager_secret.webhook)) : s.secret_id], ref[1])
      ])
      error_message = "Every sm:// reference in the configuration must name a secret of instance_tokens or webhook_secrets in this project (use $${tokens[\"<name>\"]} and $${webhook_secrets[\"<name>\"]} in the template)."
    }
  }
}

# The bucket Cloud Functions (2nd gen) stages function sources in. Cloud Functions creates it on
# the first deploy when it does not exist; created here first, the build account can be
# granted read access on it alone (iam.tf) instead of a storage role on the whole project.
resource "google_storage_bucket" "function_sources" {
  name                        = "gcf-v2-sources-${data.google_project.this.number}-${var.region}"
  location                    = var.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  versioning {
    enabled = true
  }

  soft_delete_policy {
    retention_duration_seconds = 7 * 86400
  }

  # A deploy's source is read once, by its build.
  lifecycle_rule {
    condition {
      age = 30
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.this]
}

# Where `gcloud builds submit --gcs-source-staging-dir=gs://<this bucket>/source` stages the
# source archive of a deploy by hand (docs/deployment.md); build triggers need none.
resource "google_storage_bucket" "build_staging" {
  name                        = "${var.project_id}-fediops-build"
  location                    = var.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  versioning {
    enabled = true
  }

  soft_delete_policy {
    retention_duration_seconds = 7 * 86400
  }

  lifecycle_rule {
    condition {
      age = 30
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.this]
}

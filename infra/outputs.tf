output "topics" {
  description = "Pub/Sub topic of each function (gcloud functions deploy --trigger-topic)."
  value       = { for key, topic in google_pubsub_topic.function : key => topic.name }
}

output "scheduler_jobs" {
  description = "Cloud Scheduler job of each function (gcloud scheduler jobs run <name> --location=<scheduler region> to start one now)."
  value = merge(
    { for key, job in google_cloud_scheduler_job.function : key => job.name },
    { for key, job in google_cloud_scheduler_job.drill : "backupaudit-drill-${key}" => job.name },
  )
}

output "archive_bucket" {
  description = "Archive bucket."
  value       = google_storage_bucket.archive.name
}

output "archive_url" {
  description = "[archive] url of fediops.toml."
  value       = local.archive_url
}

output "config_bucket" {
  description = "Bucket holding fediops.toml."
  value       = google_storage_bucket.config.name
}

output "fediops_config" {
  description = "FEDIOPS_CONFIG of the functions: _FEDIOPS_CONFIG in cloudbuild.yaml."
  value       = local.fediops_config
}

output "service_accounts" {
  description = "Service account emails: one runtime account per function (webhook for TriageWebhook), plus trigger and build."
  value = merge(
    { for key, sa in google_service_account.runtime : key => sa.email },
    {
      webhook = google_service_account.webhook.email
      trigger = google_service_account.trigger.email
      build   = google_service_account.build.email
    },
  )
}

output "tokens" {
  description = "Token secret references for fediops.toml (name => sm://...); add the values with gcloud secrets versions add."
  value       = local.tokens
}

output "webhook_secrets" {
  description = "Webhook secret references for fediops.toml ([[instance]] webhook_secret = sm://...); add the values with gcloud secrets versions add fediops-webhook-<name>."
  value       = local.webhook_secrets
}

output "docker_repository" {
  description = "Artifact Registry repository of the function images (gcloud functions deploy --docker-repository)."
  value       = google_artifact_registry_repository.functions.id
}

output "cloudbuild_substitutions" {
  description = "Substitutions for cloudbuild.yaml matching this configuration."
  value       = "_REGION=${var.region},_FEDIOPS_CONFIG=${local.fediops_config},_MAX_INSTANCES=${var.max_instance_count}"
}

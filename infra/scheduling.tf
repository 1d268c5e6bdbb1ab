# One Pub/Sub topic and one Cloud Scheduler job per function. The job publishes an empty JSON
# object ({}: the configuration's defaults); the function's Eventarc trigger (created by
# `gcloud functions deploy --trigger-topic --retry` in cloudbuild.yaml) delivers it.

resource "google_pubsub_topic" "function" {
  for_each = local.functions

  name = each.value.topic

  depends_on = [google_project_service.this]
}

resource "google_cloud_scheduler_job" "function" {
  for_each = local.functions

  name        = "fediops-${each.key}"
  description = "Starts the fediops ${each.value.description} (${each.value.entry_point})."
  region      = local.scheduler_region
  schedule    = each.value.schedule
  time_zone   = var.schedule_time_zone

  # Paused until the functions exist and the trigger account may invoke them.
  paused = !var.functions_deployed

  pubsub_target {
    topic_name = google_pubsub_topic.function[each.key].id
    data       = base64encode("{}")
  }

  depends_on = [google_project_service.this]
}

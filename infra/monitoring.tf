# Alerting on ERROR lines. The functions log JSON lines whose "severity" Cloud Logging lifts
# (shared/logging); this counts those at ERROR or above in the four functions' own output
# (not the request log) and alerts as soon as one appears.

locals {
  function_services = join(" OR ", [for key, _ in merge(local.functions, local.http_functions) : "\"fediops-${key}\""])
}

resource "google_logging_metric" "errors" {
  name        = "fediops-errors"
  description = "ERROR (and worse) log lines written by the fediops functions."
  filter = join("\n", [
    "resource.type=\"cloud_run_revision\"",
    "resource.labels.service_name=(${local.function_services})",
    "(log_id(\"run.googleapis.com/stderr\") OR log_id(\"run.googleapis.com/stdout\"))",
    "severity>=ERROR",
  ])

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "fediops ERROR lines"
    labels {
      key         = "function"
      value_type  = "STRING"
      description = "Cloud Run service of the function (fediops-<name>)."
    }
  }

  label_extractors = {
    function = "EXTRACT(resource.labels.service_name)"
  }

  depends_on = [google_project_service.this]
}

# Cloud Monitoring does not know a log-based metric for a while after Logging created it:
# creating the alert policy right away fails with 404 "Cannot find metric(s) ... it could
# take up to 10 minutes to become available" (hashicorp/terraform-provider-google#11102).
# So the policy waits those 10 minutes after the metric is created (or replaced), and only
# then; later applies do not wait. The policy reads the metric's name through this resource,
# which makes the order explicit.
resource "time_sleep" "errors_metric" {
  create_duration = "600s"

  triggers = {
    metric = google_logging_metric.errors.name
  }
}

resource "google_monitoring_alert_policy" "errors" {
  display_name = "fediops: ERROR log lines"
  combiner     = "OR"
  severity     = "ERROR"

  conditions {
    display_name = "a fediops function logged at ERROR"
    condition_threshold {
      filter          = "resource.type = \"cloud_run_revision\" AND metric.type = \"logging.googleapis.com/user/${time_sleep.errors_metric.triggers["metric"]}\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.function"]
      }
      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "86400s"
  }

  notification_channels = var.notification_channels

  documentation {
    mime_type = "text/markdown"
    content   = <<-EOT
      A fediops function (label `function`) logged at ERROR. Find the lines in Logs Explorer:

          resource.type="cloud_run_revision"
          resource.labels.service_name="<function>"
          severity>=ERROR

      Permanent failures (bad configuration, 4xx answers) are logged and acknowledged; transient
      ones are also returned as errors, so Pub/Sub redelivers them for up to a day.
    EOT
  }
}

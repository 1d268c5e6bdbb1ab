variable "project_id" {
  description = "ID of the Google Cloud project that runs fediops (not its number)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a project ID: 6 to 30 lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "region" {
  description = "Region of the functions, their triggers and the Artifact Registry repository; also the default for the buckets and the scheduler jobs. Must equal _REGION in cloudbuild.yaml."
  type        = string
  default     = "europe-west1"

  validation {
    condition     = can(regex("^[a-z]+(-[a-z]+)+[0-9]+$", var.region))
    error_message = "region must be a Google Cloud region such as europe-west1 or us-central1."
  }
}

variable "scheduler_region" {
  description = "Region of the Cloud Scheduler jobs (null: region). They only publish to Pub/Sub, which is global."
  type        = string
  default     = null

  validation {
    condition     = var.scheduler_region == null || can(regex("^[a-z]+(-[a-z]+)+[0-9]+$", var.scheduler_region))
    error_message = "scheduler_region must be null or a Google Cloud region such as europe-west1."
  }
}

variable "storage_location" {
  description = "Location of the archive and config buckets: a region, a dual-region (EUR4) or a multi-region (EU, US). null: region."
  type        = string
  default     = null

  validation {
    condition     = var.storage_location == null || can(regex("^[A-Za-z]+[A-Za-z0-9-]*[A-Za-z0-9]$", var.storage_location))
    error_message = "storage_location must be null or a Cloud Storage location such as europe-west1, EUR4 or EU."
  }
}

variable "triage_schedule" {
  description = "Cron schedule of registration triage (Approve), in schedule_time_zone. Default: every 5 minutes."
  type        = string
  default     = "*/5 * * * *"

  validation {
    condition     = can(regex("^[0-9A-Za-z*/,-]+( +[0-9A-Za-z*/,-]+){4}$", var.triage_schedule))
    error_message = "triage_schedule must be a five-field cron expression such as \"*/5 * * * *\"."
  }
}

variable "blocklist_schedule" {
  description = "Cron schedule of blocklist sync (BlocklistSync), in schedule_time_zone. Default: hourly."
  type        = string
  default     = "17 * * * *"

  validation {
    condition     = can(regex("^[0-9A-Za-z*/,-]+( +[0-9A-Za-z*/,-]+){4}$", var.blocklist_schedule))
    error_message = "blocklist_schedule must be a five-field cron expression such as \"17 * * * *\"."
  }
}

variable "backup_audit_schedule" {
  description = "Cron schedule of the backup audit (BackupAudit), in schedule_time_zone. Default: daily at 07:30, after the nightly backups."
  type        = string
  default     = "30 7 * * *"

  validation {
    condition     = can(regex("^[0-9A-Za-z*/,-]+( +[0-9A-Za-z*/,-]+){4}$", var.backup_audit_schedule))
    error_message = "backup_audit_schedule must be a five-field cron expression such as \"30 7 * * *\"."
  }
}

variable "schedule_time_zone" {
  description = "IANA time zone of the three schedules, e.g. Etc/UTC or Europe/Berlin."
  type        = string
  default     = "Etc/UTC"

  validation {
    condition     = can(regex("^[A-Za-z_]+(/[A-Za-z0-9_+-]+)*$", var.schedule_time_zone))
    error_message = "schedule_time_zone must be an IANA time zone name such as Etc/UTC or Europe/Berlin."
  }
}

variable "functions_deployed" {
  description = "false until cloudbuild.yaml has deployed the functions once. true lets the trigger account invoke them and resumes the scheduler jobs, which stay paused until then."
  type        = bool
  default     = false

  validation {
    condition     = var.functions_deployed != null
    error_message = "functions_deployed must be true or false."
  }
}

variable "archive_bucket_name" {
  description = "Name of the archive bucket (audit trails, snapshots, leases, state). null: <project_id>-fediops-archive."
  type        = string
  default     = null

  validation {
    condition     = var.archive_bucket_name == null || can(regex("^[a-z0-9][a-z0-9_-]{1,61}[a-z0-9]$", var.archive_bucket_name))
    error_message = "archive_bucket_name must be null or a bucket name of 3 to 63 lower-case letters, digits, '-' and '_'."
  }
}

variable "archive_prefix" {
  description = "Prefix of every archive object: [archive] url = gs://<archive bucket>/<archive_prefix>. \"\" for none."
  type        = string
  default     = "prod"

  validation {
    condition     = can(regex("^([a-z0-9][a-z0-9_-]*)?$", var.archive_prefix))
    error_message = "archive_prefix must be empty or one path segment of lower-case letters, digits, '-' and '_' (no slashes)."
  }
}

variable "config_bucket_name" {
  description = "Name of the bucket holding fediops.toml (FEDIOPS_CONFIG). null: <project_id>-fediops-config. Must match _FEDIOPS_CONFIG in cloudbuild.yaml."
  type        = string
  default     = null

  validation {
    condition     = var.config_bucket_name == null || can(regex("^[a-z0-9][a-z0-9_-]{1,61}[a-z0-9]$", var.config_bucket_name))
    error_message = "config_bucket_name must be null or a bucket name of 3 to 63 lower-case letters, digits, '-' and '_'."
  }
}

variable "config_template" {
  description = "Path of the fediops.toml template that Terraform renders with templatefile() and uploads as gs://<config bucket>/fediops.toml. The template sees archive_url, tokens (name => sm:// reference) and project_id. null: Terraform leaves the object alone and you upload it yourself."
  type        = string
  default     = null

  validation {
    condition     = var.config_template == null || try(fileexists(var.config_template), false)
    error_message = "config_template must be null or the path of an existing file (relative to the directory terraform runs in)."
  }
}

variable "instance_tokens" {
  description = "Secret Manager secrets for access tokens, one per key (secret fediops-token-<key>), with the functions that may read it: \"approve\" (triage) and/or \"blocklist\" (blocklist sync). Terraform creates the secrets, never their values: add a version with gcloud."
  type = map(object({
    readers     = set(string)
    description = optional(string, "")
  }))
  default = {}

  validation {
    condition     = alltrue([for name in keys(var.instance_tokens) : can(regex("^[a-z0-9][a-z0-9_-]{0,40}$", name))])
    error_message = "instance_tokens keys must be 1 to 41 lower-case letters, digits, '-' and '_' (the secret is fediops-token-<key>)."
  }
  validation {
    condition = alltrue([
      for token in values(var.instance_tokens) :
      length(token.readers) > 0 && length(setsubtract(token.readers, ["approve", "blocklist"])) == 0
    ])
    error_message = "instance_tokens readers must be a non-empty subset of [\"approve\", \"blocklist\"]: the backup audit reads no token."
  }
}

variable "webhook_secrets" {
  description = "Instances (their [[instance]] names) whose Mastodon admin webhook TriageWebhook receives: one Secret Manager secret each (fediops-webhook-<name>) for the webhook's secret, readable only by the webhook's account. Terraform creates the secrets, never their values. Default: none (no instant triage; the schedule still decides)."
  type        = set(string)
  default     = []

  validation {
    condition     = alltrue([for name in var.webhook_secrets : can(regex("^[a-z0-9][a-z0-9_-]{0,40}$", name))])
    error_message = "webhook_secrets must be instance names: 1 to 41 lower-case letters, digits, '-' and '_' (the secret is fediops-webhook-<name>)."
  }
}

variable "max_instance_count" {
  description = "Most invocations of Approve and of BlocklistSync that run at once (their --max-instances, _MAX_INSTANCES in cloudbuild.yaml): after a scheduled run fans out into one message per instance, that many instances are worked on in parallel. The runs of one instance are kept apart by its lease."
  type        = number
  default     = 10

  validation {
    condition     = var.max_instance_count >= 1 && var.max_instance_count <= 100 && var.max_instance_count == floor(var.max_instance_count)
    error_message = "max_instance_count must be a whole number between 1 and 100."
  }
}

variable "audited_buckets" {
  description = "Cloud Storage buckets (e.g. Mastodon media) whose backup settings the backup audit checks: it gets roles/storage.legacyBucketReader on each. Each bucket must exist before terraform apply (the grant fails on a missing bucket). Default: none."
  type        = set(string)
  default     = []

  validation {
    condition     = alltrue([for b in var.audited_buckets : can(regex("^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$", b))])
    error_message = "audited_buckets must be bucket names (no gs:// prefix)."
  }
}

variable "backup_audit_projects" {
  description = "Projects whose Cloud SQL instances and Backup for GKE plans the backup audit reads (roles/cloudsql.viewer and roles/gkebackup.viewer in each). null: project_id only."
  type        = set(string)
  default     = null

  validation {
    condition     = var.backup_audit_projects == null || try(alltrue([for p in var.backup_audit_projects : can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", p))]), false)
    error_message = "backup_audit_projects must be null or a set of project IDs."
  }
}

variable "notification_channels" {
  description = "Cloud Monitoring notification channels of the ERROR alert (projects/<p>/notificationChannels/<id>), created beforehand, e.g. with gcloud beta monitoring channels create."
  type        = list(string)

  validation {
    condition     = length(var.notification_channels) > 0 && alltrue([for c in var.notification_channels : can(regex("^projects/[^/]+/notificationChannels/[0-9]+$", c))])
    error_message = "notification_channels must hold at least one channel name of the form projects/<project>/notificationChannels/<id>."
  }
}

variable "archive_noncurrent_days" {
  description = "Days an overwritten (noncurrent) archive object version is kept: leases, state and checkpoints are overwritten on every run."
  type        = number
  default     = 30

  validation {
    condition     = var.archive_noncurrent_days >= 1 && var.archive_noncurrent_days <= 3650
    error_message = "archive_noncurrent_days must be between 1 and 3650."
  }
}

variable "archive_noncurrent_versions" {
  description = "Noncurrent versions kept per archive object, whatever their age."
  type        = number
  default     = 50

  validation {
    condition     = var.archive_noncurrent_versions >= 1 && var.archive_noncurrent_versions <= 1000
    error_message = "archive_noncurrent_versions must be between 1 and 1000."
  }
}

variable "archive_nearline_after_days" {
  description = "Age in days after which archive objects move to the Nearline storage class (0: never)."
  type        = number
  default     = 90

  validation {
    condition     = var.archive_nearline_after_days == 0 || (var.archive_nearline_after_days >= 30 && var.archive_nearline_after_days <= 3650)
    error_message = "archive_nearline_after_days must be 0 or between 30 and 3650 (Nearline bills at least 30 days)."
  }
}

variable "soft_delete_days" {
  description = "Soft-delete retention of the archive and config buckets, in days (0 or 7 to 90)."
  type        = number
  default     = 7

  validation {
    condition     = var.soft_delete_days == 0 || (var.soft_delete_days >= 7 && var.soft_delete_days <= 90)
    error_message = "soft_delete_days must be 0 or between 7 and 90."
  }
}

variable "labels" {
  description = "Labels added to every resource that takes labels (app = \"fediops\" is always set)."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k, v in var.labels : can(regex("^[a-z][a-z0-9_-]{0,62}$", k)) && can(regex("^[a-z0-9_-]{0,63}$", v))])
    error_message = "labels keys must start with a lower-case letter; keys and values may hold lower-case letters, digits, '-' and '_' (at most 63)."
  }
}

variable "drill_instances" {
  description = "Cloud SQL instances of project_id with restore drills (drill = true in [[backup.cloudsql]]): the backup audit may clone these, and change, connect to and delete instances named fediops-drill-* (IAM conditions). Also creates the drill's two scheduler jobs. Default: none."
  type        = set(string)
  default     = []

  validation {
    condition     = alltrue([for i in var.drill_instances : can(regex("^[a-z][a-z0-9-]{0,70}$", i)) && !startswith(i, "fediops-drill-")])
    error_message = "drill_instances must be Cloud SQL instance IDs (at most 71 characters, so that the clone's name fits), never a fediops-drill-* clone."
  }
}

variable "drill_schedule" {
  description = "Cron schedule of the monthly restore drill start ({\"drill\": \"start\"}), in schedule_time_zone. Default: the 1st of the month at 04:05, off-peak, between two advances (a clone may restart the source, says the API reference)."
  type        = string
  default     = "5 4 1 * *"

  validation {
    condition     = can(regex("^[0-9A-Za-z*/,-]+( +[0-9A-Za-z*/,-]+){4}$", var.drill_schedule))
    error_message = "drill_schedule must be a five-field cron expression such as \"0 4 1 * *\"."
  }
}

variable "leftover_pod_cleanup" {
  description = "Grant the backup audit container.pods.delete in project_id (the fediopsPodCleanup role) for delete_leftover_pods_older_than. Default false: the audit only reports leftover pods."
  type        = bool
  default     = false

  validation {
    condition     = var.leftover_pod_cleanup == true || var.leftover_pod_cleanup == false
    error_message = "leftover_pod_cleanup must be true or false."
  }
}

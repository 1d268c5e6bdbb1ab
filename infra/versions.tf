terraform {
  # 1.9+: variable validations may refer to other variables; `terraform fmt` of any 1.x works.
  required_version = ">= 1.9"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.0, < 8.0"
    }
    # time_sleep: the alert policy waits for its new log-based metric (monitoring.tf).
    time = {
      source  = "hashicorp/time"
      version = ">= 0.9, < 1.0"
    }
  }

  # State is local by default. To keep it in Cloud Storage instead, create a bucket and add
  #   backend "gcs" { bucket = "<project>-tfstate", prefix = "fediops" }
  # (docs/deployment.md). The state holds no secret values: tokens are added to Secret
  # Manager out of band.
}

provider "google" {
  project = var.project_id
  region  = var.region

  default_labels = merge({ app = "fediops" }, var.labels)
}

# Access tokens of the Mastodon/GoToSocial instances. Terraform creates each secret and its
# access policy (iam.tf), never a version: the token itself is added out of band,
#
#   printf %s "$TOKEN" | gcloud secrets versions add fediops-token-<name> --data-file=-
#
# so it never enters the Terraform state. fediops.toml refers to it as
# sm://projects/<project>/secrets/fediops-token-<name>/versions/latest (output tokens).

resource "google_secret_manager_secret" "token" {
  for_each = var.instance_tokens

  project   = var.project_id
  secret_id = "fediops-token-${each.key}"

  annotations = merge(
    { readers = join(",", sort(tolist(each.value.readers))) },
    each.value.description == "" ? {} : { description = each.value.description },
  )

  replication {
    auto {}
  }

  depends_on = [google_project_service.this]
}

# The secrets of the instances' admin webhooks (TriageWebhook checks each delivery's
# X-Hub-Signature with it), one per instance in webhook_secrets: fediops-webhook-<name>.
# Only the webhook's account may read them (iam.tf). The value is what Mastodon shows in
# Administration → Webhooks, added out of band like the tokens:
#
#   printf %s "$WEBHOOK_SECRET" | gcloud secrets versions add fediops-webhook-main --data-file=-
resource "google_secret_manager_secret" "webhook" {
  for_each = var.webhook_secrets

  project   = var.project_id
  secret_id = "fediops-webhook-${each.key}"

  annotations = { readers = "webhook" }

  replication {
    auto {}
  }

  depends_on = [google_project_service.this]
}

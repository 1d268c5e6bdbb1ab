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

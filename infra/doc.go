// Package infra holds fediops' Terraform configuration (*.tf) and the tests that check it
// without a provider or a Google Cloud project:
//
//   - infra_test.go parses the HCL with github.com/hashicorp/hcl/v2 and proves that every
//     function registered in the module root has its topic, scheduler job, service account
//     and deploy step (cloudbuild.yaml), and that the IAM grants are exactly the
//     least-privilege set documented in iam.tf;
//   - ordering_test.go proves that a first apply on an empty project runs in an order that
//     works: every Google resource waits for its API, the alert policy for its new metric;
//   - commands_test.go proves that every gcloud command documented in README.md, docs/,
//     infra/ and cloudbuild.yaml parses with the installed gcloud (skipped without it);
//   - deploy_test.go proves that the source gcloud uploads (the module root filtered by
//     .gcloudignore) is what the Cloud Functions Go buildpack can build.
//
// The package has no code of its own.
package infra

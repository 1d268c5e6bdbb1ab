// Package e2e holds the deployed-path tests: real Pub/Sub CloudEvents POSTed to the Functions
// Framework serving the module-root registrations, with the configuration and the archive in
// fake-gcs-server, tokens in the Secret Manager fake and Mastodon played by the simulator.
package e2e

// Package gotosocial starts a real GoToSocial v0.17.3 server for integration tests.
//
// GoToSocial implements the Mastodon client API, including the admin endpoints fediops uses for
// registration triage (GET /api/v2/admin/accounts, POST /api/v1/admin/accounts/:id/approve|reject)
// and blocklist sync (GET/POST/DELETE /api/v1/admin/domain_blocks). Where it differs from
// Mastodon (403/422 semantics, domain-block severities, measures, rate-limit headers), tests use
// the Mastodon simulator (package mastosim) instead.
//
// # Binary
//
// The binary is built by scripts/build-gotosocial.sh and cached under
// ${FEDIOPS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fediops}/gotosocial-v0.17.3/ together with the
// web templates it needs at run time. When it is missing, [Start] runs the script itself (about 7
// minutes on 2 cores; the script takes a file lock, so concurrent test binaries build it once).
// That is close to go test's default 10 minute -timeout: on CI, run the script as its own cached
// step before go test, or pass -timeout 30m. FEDIOPS_GOTOSOCIAL_BIN overrides the binary path
// (the templates are then looked up next to it, in the cache dir and in the Go module cache).
// A binary that cannot be built or found is a test failure (t.Fatal), never a skip.
//
// # Cost, sharing, and hard limits
//
// Every [Start] gets its own temp dir and sqlite database, a free loopback port and its own SMTP
// sink. On a 2-core machine a start costs about 7 s with a warm WebAssembly compilation cache
// (kept next to the binary; filled by the first start) and about 25 s without one; most of it is
// CPU (compiling SQLite's WebAssembly in each of the three processes: admin create, admin
// promote, server). Start one server per top-level test and share it between subtests, without
// a TestMain:
//
//	func TestTriage(t *testing.T) {
//		gts := gotosocial.Start(t, gotosocial.Options{})
//		t.Run("approves", func(t *testing.T) { ... gts.URL, gts.AdminToken ... })
//		t.Run("rejects", func(t *testing.T) { ... })
//	} // the server stops when TestTriage's cleanups run
//
// GoToSocial v0.17.3 hard-codes two sign-up limits per database: at most 20 pending (unhandled)
// sign-ups, and at most 10 approved sign-ups per 24 hours, the admin created by Start included.
// So one server allows 20 pending sign-ups and 9 approvals; subtests sharing a server must
// stay below that (and use distinct usernames and emails), or call Start again.
//
// # Email confirmation
//
// GoToSocial is configured to send mail to a small SMTP sink in this package (plain SMTP on
// loopback, no TLS, no auth). [Server.ConfirmEmail] waits for the confirmation mail sent after
// sign-up, takes the token from its link and POSTs /confirm_email?token=…, as a user's browser
// would. Every mail the server sends (confirmations, "new sign-up" notices to the admin,
// approved/rejected notices) is available through [Server.Mails] and [Server.WaitMail].
package gotosocial

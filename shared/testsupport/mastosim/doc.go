// Package mastosim is an in-process simulator of the parts of a Mastodon server that fediops
// talks to: the admin accounts API (registration triage), the admin domain-block API (blocklist
// sync), the admin measures API, the instance endpoints and the app/token probes. It is an
// http.Handler, so tests mount it on httptest.NewServer and the `fediops demo` command can serve
// it as a sandbox instance.
//
// Behaviour follows Mastodon's own source (github.com/mastodon/mastodon); every handler cites the
// controller, model or initializer it imitates. All time (rate-limit windows, created_at,
// measure dates) comes from the injected clock.Clock.
//
// # Modelled
//
//   - GET /api/v2/admin/accounts and GET /api/v1/admin/accounts: AccountFilter semantics
//     (origin, status, username/email/display_name prefix LIKE, by_domain, ip, permissions,
//     v1 boolean flags and its local+active default), 400 "Unknown origin/status" errors,
//     limit_param clamping, Paginable max_id/since_id/min_id, Link headers built like
//     Api::Pagination + Rails to_query (including the limit=0 crash, answered with a 500).
//   - GET /api/v1/admin/accounts/:id, POST …/approve and …/reject with require_local_account!
//     (403 "Forbidden" for a remote account) and UserPolicy (403 "This action is not allowed"
//     when already approved), reject as a hard delete answering {}.
//   - Admin domain blocks: index (id DESC, MAX_LIMIT 200 below 4.3.0, 500 from 4.3.0), show,
//     create (DomainBlock.rule_for, conflicts_with_existing_block?, stricter_than?; the pre-4.2.9
//     rule "any covering block conflicts" for older Version values; validation errors in the
//     order Rails reports them; the 500s of a covered domain sent with surrounding whitespace
//     and of a name libidn refuses), update via PUT and PATCH (permitted fields only), destroy.
//     `digest` is serialised from 4.2.9 on. Domains are normalised and validated by
//     shared/domain, the same code fediops' parsers use (DomainNormalizable, Addressable with
//     libidn, DomainValidator).
//   - Admin email-domain blocks (4.0+): index (id DESC, every row including the MX-host
//     children the admin UI adds, limit up to 200, Link headers), show (4.1+), create
//     (422 "Validation failed: Domain has already been taken" on a duplicate, blank and
//     invalid domains too; allow_with_approval from 4.3.0) and destroy (children with their
//     parent); AddEmailDomainBlock seeds blocks as the admin UI makes them, MX children
//     included.
//   - GET /api/v1/instance/domain_blocks (with_user_facing_limitations, by_severity,
//     public_domain obfuscation, digest of the real domain, show_domain_blocks settings).
//   - POST /api/v1/admin/measures: instance_follows, instance_followers, instance_accounts, with
//     include_subdomains tested for Ruby truthiness and params.require semantics; start_at and
//     end_at required only from 4.6.4 to before 4.6.6 (otherwise, without them, 200 with empty
//     data); data dates plain ("2026-08-01") from 4.3.0, timestamps before.
//   - GET /api/v1/instance, GET /api/v2/instance, POST /api/v1/apps,
//     GET /api/v1/apps/verify_credentials, GET /api/v1/accounts/verify_credentials.
//   - Doorkeeper scopes (authorize_if_got_token! vs doorkeeper_authorize!) and the exact 401/403
//     bodies of §5.3.
//   - Rack::Attack (config/initializers/rack_attack.rb): throttle_authenticated_api (per user),
//     throttle_per_token_api, throttle_unauthenticated_api (per IP, IPv6 /64),
//     throttle_authenticated_paging / throttle_unauthenticated_paging, and the
//     oauth application registration throttle; fixed epoch-aligned windows; X-RateLimit-*
//     headers for the most limited throttle; the throttled_responder's 429.
//   - Fault injection (429, 5xx, timeout, dropped connection), optionally after the request's
//     effect has been applied.
//   - Admin webhooks (webhooks.go): AddWebhook with Webhook::EVENTS and its secret rules;
//     account.created for every local AddAccount (a sign-up), account.approved when a
//     confirmed account is approved; the REST::Admin::WebhookEventSerializer body, the
//     X-Hub-Signature HMAC, Request's headers and timeouts, and Webhooks::DeliveryWorker's
//     16 retries with Sidekiq's backoff (configurable: Options.Webhooks) until a response is
//     successful or unsalvageable.
//
// # Not modelled
//
//   - OAuth flows (/oauth/authorize, /oauth/token, /oauth/revoke): tokens are seeded with
//     AddToken. Every token belongs to one administrator (account id "1", username "admin") whose
//     role has all permissions, so Pundit denials only happen without a known token. The admin is
//     not listed by the admin accounts API. client_credentials (app-only) tokens do not exist.
//   - Side effects of domain blocks (suspending accounts, severing follows), audit logs,
//     webhook payload templates and events other than account.created and account.approved,
//     emails, statuses, media, reports, domain allows, IP blocks, roles.
//   - Rack::Attack's localhost safelist (real Mastodon does not throttle 127.0.0.1; the simulator
//     does, which is what tests want), X-Forwarded-For handling, and the measures result cache.
//   - Version differences other than: domain-block MAX_LIMIT (4.3.0), digest and the
//     stricter-subdomain rule (4.2.9), api_versions / apps response fields / apps
//     verify_credentials without `read` / measures date format (4.3.0), role collection_limit
//     (4.6.0), measures dates required (4.6.4 to 4.6.5). Severity is always validated (422) as in
//     4.4+, whatever Version says.
//   - Domain names shared/domain refuses although Mastodon stores them as they are: names with
//     a trailing empty label ("example.com..", "."), percent escapes, and code points unassigned
//     in Unicode 3.2 that libidn passes through (see shared/domain's package comment). The
//     simulator refuses them: 422, or 500 where golang.org/x/net/idna refuses the label.
//   - Email-domain blocks at sign-up: sign-ups are not modelled, so blocks match nothing and
//     their history counts are always "0"; the API never adds MX children (as in Mastodon).
//   - Measures: only instance_follows, instance_followers and instance_accounts (other keys are
//     skipped like unknown ones); per-day data values are always "0" since follows carry no dates.
//     The 4.6.4 rules besides the dates (keys required, start_at capped to two years before
//     end_at) are not modelled.
//
// Differences from Mastodon that are deliberate are marked "Simulator:" in the code.
package mastosim

package mastodon

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// OOBRedirectURI is the out-of-band redirect URI: the server shows the authorization code to
// the user instead of redirecting (GoToSocial: a page at /oauth/oob).
const OOBRedirectURI = "urn:ietf:wg:oauth:2.0:oob"

// AppRegistration is what POST /api/v1/apps registers.
type AppRegistration struct {
	ClientName   string
	RedirectURIs []string // e.g. http://127.0.0.1:PORT/callback or OOBRedirectURI
	Scopes       []string
	Website      string
}

// App is a registered OAuth application with its client credentials
// (REST::CredentialApplicationSerializer). ClientSecret is a secret: never log it.
type App struct {
	ID           string   `json:"id"`
	Name         string   `json:"name"`
	Website      string   `json:"website"`
	ClientID     string   `json:"client_id"`
	ClientSecret string   `json:"client_secret"`
	Scopes       []string `json:"scopes"`        // Mastodon 4.3+ only
	RedirectURIs []string `json:"redirect_uris"` // Mastodon 4.3+ only
	RedirectURI  string   `json:"redirect_uri"`  // newline-separated
}

// RegisterApp registers an application (POST /api/v1/apps; no token needed). Mastodon throttles
// registrations to 5 per 10 minutes per IP and answers 422 for scopes it does not know.
// The redirect URIs are sent as one newline-separated string, the form both Mastodon and
// GoToSocial (which takes only a string) accept.
func (c *Client) RegisterApp(ctx context.Context, r AppRegistration) (App, error) {
	body := map[string]string{
		"client_name":   r.ClientName,
		"redirect_uris": strings.Join(r.RedirectURIs, "\n"),
		"scopes":        strings.Join(r.Scopes, " "),
	}
	if r.Website != "" {
		body["website"] = r.Website
	}
	var a App
	if _, err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/apps", body: body}, &a); err != nil {
		return App{}, fmt.Errorf("register app: %w", err)
	}
	if a.ClientID == "" || a.ClientSecret == "" {
		return App{}, errors.New("register app: the answer has no client_id or client_secret")
	}
	return a, nil
}

// AppCredentials is what GET /api/v1/apps/verify_credentials says about the token's application.
type AppCredentials struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Website string `json:"website"`
	// Scopes are the token's scopes (Mastodon 4.3+). HasScopes is false when the server did
	// not say (older servers), which is not the same as a token without scopes.
	Scopes    []string `json:"scopes"`
	HasScopes bool     `json:"-"`
}

// VerifyAppCredentials asks the server about the token (GET /api/v1/apps/verify_credentials).
// From Mastodon 4.3.0 any valid token may ask and the answer lists the token's scopes; before,
// the token needs the read scope (an admin-only token gets a *APIError 403 "This action is
// outside the authorized scopes"). An invalid or revoked token gets a 401 (see IsInvalidToken).
// GoToSocial before 0.19 has no such endpoint: ErrUnsupported.
func (c *Client) VerifyAppCredentials(ctx context.Context) (AppCredentials, error) {
	var raw struct {
		AppCredentials
		Scopes *[]string `json:"scopes"`
	}
	_, err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/apps/verify_credentials"}, &raw)
	if s := StatusOf(err); s == http.StatusNotFound || s == http.StatusMethodNotAllowed || s == http.StatusNotImplemented {
		return AppCredentials{}, fmt.Errorf("verify app credentials: %w", ErrUnsupported)
	}
	if err != nil {
		return AppCredentials{}, err
	}
	out := raw.AppCredentials
	if raw.Scopes != nil {
		out.Scopes, out.HasScopes = *raw.Scopes, true
	}
	return out, nil
}

// CredentialAccount is the token's own account (REST::CredentialAccountSerializer, abridged).
type CredentialAccount struct {
	ID          string `json:"id"`
	Username    string `json:"username"`
	Acct        string `json:"acct"`
	DisplayName string `json:"display_name"`
	URL         string `json:"url"`
	// Role is the user's role (Mastodon 4.0+; GoToSocial gives at least its name).
	Role *struct {
		Name string `json:"name"`
	} `json:"role"`
}

// VerifyAccountCredentials returns the account the token acts for
// (GET /api/v1/accounts/verify_credentials). Mastodon requires the profile, read or
// read:accounts scope (else 403 "This action is outside the authorized scopes") and answers an
// invalid token with 401. GoToSocial v0.17.3 checks no scope.
func (c *Client) VerifyAccountCredentials(ctx context.Context) (CredentialAccount, error) {
	var a CredentialAccount
	_, err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/accounts/verify_credentials"}, &a)
	return a, err
}

// Probe is a read-only request that shows whether the token may use part of the admin API.
type Probe struct {
	Path  string // GET path with its query
	Scope string // the granular scope the endpoint accepts (its coarse parent works too)
	// Permission is the role permission the endpoint needs (Mastodon's name for it).
	Permission string
}

// Probes of the admin endpoints fediops' functions read.
var (
	// ProbeAdminAccounts is registration triage's read: the v2 admin accounts list.
	ProbeAdminAccounts = Probe{Path: "/api/v2/admin/accounts?limit=1", Scope: "admin:read:accounts", Permission: "Manage Users"}
	// ProbeDomainBlocks is blocklist sync's read: the admin domain blocks list.
	ProbeDomainBlocks = Probe{Path: "/api/v1/admin/domain_blocks?limit=1", Scope: "admin:read:domain_blocks", Permission: "Manage Federation"}
)

// Probe sends p (GET, the answer is discarded). A missing scope comes back as *ScopeError, an
// invalid token (401) as an error for which IsInvalidToken holds; other refusals as *APIError.
// Mastodon answers an admin endpoint with an unknown token like a role denial: 403 "This action
// is not allowed"; verify the token first (VerifyAppCredentials) to tell the two apart.
func (c *Client) Probe(ctx context.Context, p Probe) error {
	_, err := c.do(ctx, request{method: http.MethodGet, path: p.Path}, nil)
	if IsOutsideScopes(err) {
		var ae *APIError
		errors.As(err, &ae)
		return &ScopeError{Scope: p.Scope, Err: ae}
	}
	return err
}

// ScopeError says the token lacks the scope an endpoint needs.
type ScopeError struct {
	Scope string
	Err   *APIError
}

func (e *ScopeError) Error() string {
	return fmt.Sprintf("missing scope %s (%s %s answered %d: %s)", e.Scope, e.Err.Method, e.Err.Path, e.Err.Status, e.Err.Message)
}

func (e *ScopeError) Unwrap() error { return e.Err }

// outsideScopes is Mastodon's (Doorkeeper's) message for a valid token without the scope.
const outsideScopes = "outside the authorized scopes"

// IsOutsideScopes reports a 403 "This action is outside the authorized scopes".
func IsOutsideScopes(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == http.StatusForbidden && strings.Contains(ae.Message, outsideScopes)
}

// IsInvalidToken reports a 401: the token is unknown, revoked or expired (Mastodon: "The access
// token is invalid" / "was revoked"; GoToSocial: "Unauthorized: …").
func IsInvalidToken(err error) bool {
	return StatusOf(err) == http.StatusUnauthorized
}

// ScopeCovers reports whether the granted scopes include need, following Mastodon's scope
// families: admin:read covers admin:read:*, admin:write covers admin:write:*, read covers
// read:* and write covers write:* (Mastodon's controllers accept the coarse scope next to the
// granular one). read never covers admin scopes. profile is covered by read and read:accounts,
// which GET /api/v1/accounts/verify_credentials accepts as well.
func ScopeCovers(granted []string, need string) bool {
	if slices.Contains(granted, need) {
		return true
	}
	if need == "profile" {
		return slices.Contains(granted, "read") || slices.Contains(granted, "read:accounts")
	}
	if i := strings.LastIndexByte(need, ':'); i > 0 {
		parent := need[:i]
		if parent == "read" || parent == "write" || parent == "admin:read" || parent == "admin:write" {
			return slices.Contains(granted, parent)
		}
	}
	return false
}

// MissingScopes returns the scopes of need that granted does not cover, in need's order.
func MissingScopes(granted, need []string) []string {
	var out []string
	for _, s := range need {
		if !ScopeCovers(granted, s) && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

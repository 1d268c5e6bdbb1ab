package mastosim

import (
	"net/http"
	"strconv"
	"strings"
)

// token is a Doorkeeper access token owned by the administrator.
type token struct {
	token  string
	scopes []string
	appID  int64
	userID string
}

func (t *token) has(s string) bool {
	for _, x := range t.scopes {
		if x == s {
			return true
		}
	}
	return false
}

// acceptable is Doorkeeper::AccessToken#acceptable?(scopes): the token has at least one of
// the listed scopes. There is no scope hierarchy in Doorkeeper: controllers list both the coarse
// and the granular scope (e.g. admin:read and admin:read:accounts), and `read` never covers
// admin scopes.
func (t *token) acceptable(scopes ...string) bool {
	for _, s := range scopes {
		if t.has(s) {
			return true
		}
	}
	return false
}

// app is an OAuth application (Doorkeeper::Application).
type app struct {
	id           int64
	name         string
	website      string
	redirectURIs []string
	scopes       []string
	clientID     string
	clientSecret string
}

// AddToken adds (or replaces) a user access token of the administrator, whose role has all
// permissions, with the given space-separated OAuth scopes. Each token gets its own application
// whose scopes equal the token's.
func (s *Server) AddToken(tok string, scopes string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sc := strings.Fields(scopes)
	a := s.newApp("mastosim token "+strconv.Itoa(len(s.tokens)+1), "", []string{"urn:ietf:wg:oauth:2.0:oob"}, sc)
	s.tokens[tok] = &token{token: tok, scopes: sc, appID: a.id, userID: s.admin.id}
}

// RemoveToken revokes a token; later requests with it are treated as carrying an unknown token.
func (s *Server) RemoveToken(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tokens, tok)
}

func (s *Server) newApp(name, website string, redirects, scopes []string) *app {
	s.lastAppID++
	id := s.lastAppID
	a := &app{
		id: id, name: name, website: website, redirectURIs: redirects, scopes: scopes,
		clientID:     "mastosim-client-" + strconv.FormatInt(id, 10),
		clientSecret: "mastosim-secret-" + strconv.FormatInt(id, 10),
	}
	s.apps[id] = a
	return a
}

// authorizeIfGotToken is Api::BaseController#authorize_if_got_token!: scopes are only checked
// when Doorkeeper found a token; without one (or with an unknown one) the request proceeds
// and Pundit denies it later (see authorizePolicy).
func (c *call) authorizeIfGotToken(scopes ...string) *response {
	if c.token == nil {
		return nil
	}
	if !c.token.acceptable(scopes...) {
		return errorResponse(http.StatusForbidden, "This action is outside the authorized scopes")
	}
	return nil
}

// authorizePolicy is Pundit's `authorize` (app/policies/application_policy.rb): the simulated
// administrator's role can do everything, so only a request without a user is denied, with
// Mastodon::NotPermittedError → 403 (app/controllers/concerns/api/error_handling.rb).
func (c *call) authorizePolicy() *response {
	if c.token == nil || c.token.userID == "" {
		return forbidden()
	}
	return nil
}

// doorkeeperAuthorize is Doorkeeper's doorkeeper_authorize!(*scopes) as rendered by
// Api::BaseController: 401 for a missing or unknown token, 403 for a token without any of the
// scopes (no scopes = any valid token).
func (c *call) doorkeeperAuthorize(scopes ...string) *response {
	if c.token == nil {
		return errorResponse(http.StatusUnauthorized, "The access token is invalid")
	}
	if len(scopes) > 0 && !c.token.acceptable(scopes...) {
		return errorResponse(http.StatusForbidden, "This action is outside the authorized scopes")
	}
	return nil
}

func forbidden() *response {
	return errorResponse(http.StatusForbidden, "This action is not allowed")
}

func notFound() *response {
	return errorResponse(http.StatusNotFound, "Record not found")
}

// knownScopes is Doorkeeper's default_scopes + optional_scopes (config/initializers/doorkeeper.rb).
var knownScopes = map[string]bool{}

func init() {
	for _, s := range strings.Fields(`read write follow push profile
		read:accounts read:blocks read:bookmarks read:favourites read:filters read:follows
		read:lists read:mutes read:notifications read:search read:statuses
		write:accounts write:blocks write:bookmarks write:conversations write:favourites
		write:filters write:follows write:lists write:media write:mutes write:notifications
		write:reports write:statuses
		admin:read admin:read:accounts admin:read:reports admin:read:domain_allows
		admin:read:domain_blocks admin:read:ip_blocks admin:read:email_domain_blocks
		admin:read:canonical_email_blocks
		admin:write admin:write:accounts admin:write:reports admin:write:domain_allows
		admin:write:domain_blocks admin:write:ip_blocks admin:write:email_domain_blocks
		admin:write:canonical_email_blocks`) {
		knownScopes[s] = true
	}
}

// version is a parsed Mastodon version ("4.3.0", "4.8.0-alpha.1", "4.2.9+glitch").
type version struct{ major, minor, patch int }

func parseVersion(s string) version {
	var v version
	parts := strings.SplitN(s, ".", 3)
	nums := []*int{&v.major, &v.minor, &v.patch}
	for i, p := range parts {
		n := 0
		for _, ch := range p {
			if ch < '0' || ch > '9' {
				break
			}
			n = n*10 + int(ch-'0')
		}
		*nums[i] = n
	}
	return v
}

func (v version) atLeast(major, minor, patch int) bool {
	if v.major != major {
		return v.major > major
	}
	if v.minor != minor {
		return v.minor > minor
	}
	return v.patch >= patch
}

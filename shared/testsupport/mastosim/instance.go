package mastosim

import (
	"net/http"
	"strconv"
	"strings"
)

// apiVersion approximates api_versions.mastodon (lib/mastodon/version.rb), reported since 4.3.
func (s *Server) apiVersion() int {
	v := s.ver
	switch {
	case v.atLeast(4, 8, 0):
		return 11
	case v.atLeast(4, 7, 0):
		return 9
	case v.atLeast(4, 6, 0):
		return 8
	case v.atLeast(4, 5, 0):
		return 7
	case v.atLeast(4, 4, 0):
		return 6
	default:
		return 2
	}
}

func (s *Server) userCount() int {
	n := 1 // the administrator
	for _, a := range s.accounts {
		if a.Domain == "" {
			n++
		}
	}
	return n
}

// instanceV1 is Api::V1::InstancesController#show with REST::V1::InstanceSerializer (abridged).
func (s *Server) instanceV1(c *call) *response {
	d := s.localDomain(c)
	return jsonResponse(http.StatusOK, map[string]any{
		"uri":               d,
		"title":             s.opts.Title,
		"short_description": "",
		"description":       "",
		"email":             "admin@" + d,
		"version":           s.opts.Version,
		"urls":              map[string]any{"streaming_api": "wss://" + d},
		"stats":             map[string]any{"user_count": s.userCount(), "status_count": 0, "domain_count": s.knownDomainCount()},
		"thumbnail":         nil,
		"languages":         []string{"en"},
		"registrations":     true,
		"approval_required": true,
		"invites_enabled":   false,
		"configuration": map[string]any{
			"accounts": map[string]any{"max_featured_tags": 10},
			"statuses": map[string]any{"max_characters": 500, "max_media_attachments": 4, "characters_reserved_per_url": 23},
		},
		"contact_account": nil,
		"rules":           []any{},
	})
}

func (s *Server) knownDomainCount() int {
	seen := map[string]bool{}
	for _, a := range s.accounts {
		if a.Domain != "" {
			seen[a.Domain] = true
		}
	}
	return len(seen)
}

// instanceV2 is Api::V2::InstancesController#show with REST::InstanceSerializer (abridged):
// registrations.approval_required is registrations_mode == 'approved' (always here);
// api_versions exists since 4.3.0.
func (s *Server) instanceV2(c *call) *response {
	d := s.localDomain(c)
	out := map[string]any{
		"domain":      d,
		"title":       s.opts.Title,
		"version":     s.opts.Version,
		"source_url":  "https://github.com/mastodon/mastodon",
		"description": "",
		"usage":       map[string]any{"users": map[string]any{"active_month": s.userCount()}},
		"thumbnail":   map[string]any{"url": "https://" + d + "/packs/media/images/preview.png"},
		"languages":   []string{"en"},
		"configuration": map[string]any{
			"urls":     map[string]any{"streaming": "wss://" + d},
			"accounts": map[string]any{"max_featured_tags": 10},
			"statuses": map[string]any{"max_characters": 500, "max_media_attachments": 4, "characters_reserved_per_url": 23},
		},
		"registrations": map[string]any{
			"enabled": true, "approval_required": true, "message": nil, "url": nil,
		},
		"contact": map[string]any{"email": "admin@" + d, "account": nil},
		"rules":   []any{},
	}
	if s.ver.atLeast(4, 3, 0) {
		out["api_versions"] = map[string]any{"mastodon": s.apiVersion()}
	}
	return jsonResponse(http.StatusOK, out)
}

// createApp is Api::V1::AppsController#create: Doorkeeper::Application.create! (422 on
// validation errors), then REST::CredentialApplicationSerializer.
func (s *Server) createApp(c *call) *response {
	name := strings.TrimSpace(c.params.str("client_name"))
	var redirects []string
	if v, ok := c.params.get("redirect_uris"); ok {
		switch x := v.(type) {
		case []any:
			for _, e := range x {
				if isScalar(e) && toS(e) != "" {
					redirects = append(redirects, toS(e))
				}
			}
		default:
			if isScalar(x) {
				redirects = strings.Fields(toS(x))
			}
		}
	}
	scopes := strings.Fields(c.params.str("scopes"))
	if len(scopes) == 0 {
		scopes = []string{"read"} // Doorkeeper default_scopes
	}
	var errs []string
	if name == "" {
		errs = append(errs, "Application name can't be blank")
	}
	if len(redirects) == 0 {
		errs = append(errs, "Redirect URI can't be blank")
	}
	for _, sc := range scopes {
		if !knownScopes[sc] { // enforce_configured_scopes
			errs = append(errs, "Scopes doesn't match configured on the server.")
			break
		}
	}
	if len(errs) > 0 {
		return validationFailed(errs)
	}
	a := s.newApp(name, c.params.str("website"), redirects, scopes)
	out := map[string]any{
		"id":            strconv.FormatInt(a.id, 10),
		"name":          a.name,
		"website":       nonEmpty(a.website),
		"redirect_uri":  strings.Join(a.redirectURIs, "\n"),
		"client_id":     a.clientID,
		"client_secret": a.clientSecret,
		"vapid_key":     "BMastosimVapidKeyNotARealKey=",
	}
	if s.ver.atLeast(4, 3, 0) {
		out["scopes"] = a.scopes
		out["redirect_uris"] = a.redirectURIs
		out["client_secret_expires_at"] = 0
	}
	return jsonResponse(http.StatusOK, out)
}

// verifyAppCredentials is Api::V1::Apps::CredentialsController#show: doorkeeper_authorize!
// with no scope since 4.3.0 (#27142), with :read before. Simulator: scopes are the token's.
func (s *Server) verifyAppCredentials(c *call) *response {
	var r *response
	if s.ver.atLeast(4, 3, 0) {
		r = c.doorkeeperAuthorize()
	} else {
		r = c.doorkeeperAuthorize("read")
	}
	if r != nil {
		return r
	}
	a := s.apps[c.token.appID]
	out := map[string]any{
		"id":            strconv.FormatInt(a.id, 10),
		"name":          a.name,
		"website":       nonEmpty(a.website),
		"scopes":        c.token.scopes,
		"redirect_uris": a.redirectURIs,
		"redirect_uri":  strings.Join(a.redirectURIs, "\n"),
		"vapid_key":     "BMastosimVapidKeyNotARealKey=",
	}
	return jsonResponse(http.StatusOK, out)
}

// verifyAccountCredentials is Api::V1::Accounts::CredentialsController#show:
// doorkeeper_authorize! :profile, :read, :'read:accounts' and require_user!, rendering
// REST::CredentialAccountSerializer (abridged) for the administrator.
func (s *Server) verifyAccountCredentials(c *call) *response {
	if r := c.doorkeeperAuthorize("profile", "read", "read:accounts"); r != nil {
		return r
	}
	j := s.accountJSON(c, s.admin.id, s.admin.username, "", "", s.admin.createdAt)
	out := map[string]any{
		"id": j.ID, "username": j.Username, "acct": j.Acct, "display_name": j.DisplayName,
		"locked": false, "bot": false, "discoverable": nil, "indexable": false, "group": false,
		"created_at": j.CreatedAt, "note": "", "url": j.URL, "uri": j.URI,
		"avatar": j.Avatar, "avatar_static": j.AvatarStatic, "header": j.Header, "header_static": j.HeaderStatic,
		"followers_count": 0, "following_count": 0, "statuses_count": 0, "last_status_at": nil,
		"emojis": []any{}, "fields": []any{},
		"source": map[string]any{
			"privacy": "public", "sensitive": false, "language": nil, "note": "", "fields": []any{},
			"follow_requests_count": 0,
		},
		"role": map[string]any{"id": "3", "name": "Owner", "permissions": "1", "color": "", "highlighted": true},
	}
	return jsonResponse(http.StatusOK, out)
}

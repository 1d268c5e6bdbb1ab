package gotosocial

import (
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
)

// Authorize plays the admin's browser on an authorization URL that an OAuth client printed
// (e.g. `fediops auth login`): it opens the URL, is sent to the sign-in page, signs in as the
// admin, gets the authorize page and approves it, as a person would by clicking. It returns
// where GoToSocial then redirects the browser, without following it: the client's redirect_uri
// with ?code=…&state=…, or, for the out-of-band redirect_uri, GoToSocial's /oauth/oob?code=…
// page (whose code the admin would copy). The URL must be on this server (s.URL), since the
// session cookie is bound to its host.
func (s *Server) Authorize(t testing.TB, authorizeURL string) *url.URL {
	t.Helper()
	loc, err := s.authorize(authorizeURL)
	if err != nil {
		t.Fatalf("gotosocial: authorize as %s: %v", s.AdminEmail, err)
	}
	return loc
}

// AuthorizeAndFollow is Authorize followed by the browser's visit of the redirect, e.g. to an
// OAuth client's loopback listener. It returns that answer's status and body.
func (s *Server) AuthorizeAndFollow(t testing.TB, authorizeURL string) (int, string) {
	t.Helper()
	loc := s.Authorize(t, authorizeURL)
	if loc.Scheme != "http" && loc.Scheme != "https" {
		t.Fatalf("gotosocial: authorize redirected to %q, which a browser cannot visit", loc)
	}
	resp, body, err := s.call(newHTTPClient(nil), http.MethodGet, loc.String(), "", nil)
	if err != nil {
		t.Fatalf("gotosocial: following the authorize redirect to %s://%s%s: %v", loc.Scheme, loc.Host, loc.Path, err)
	}
	return resp.StatusCode, string(body)
}

// OOBCode runs Authorize on an out-of-band authorization URL and returns the code GoToSocial
// shows on its /oauth/oob page: what the admin pastes into the client.
func (s *Server) OOBCode(t testing.TB, authorizeURL string) string {
	t.Helper()
	loc := s.Authorize(t, authorizeURL)
	code := loc.Query().Get("code")
	if loc.Path != "/oauth/oob" || code == "" {
		t.Fatalf("gotosocial: authorize redirected to %s, want /oauth/oob?code=…", loc.Path)
	}
	return code
}

func (s *Server) authorize(authorizeURL string) (*url.URL, error) {
	u, err := url.Parse(authorizeURL)
	if err != nil {
		return nil, err
	}
	base, _ := url.Parse(s.URL)
	if u.Host != base.Host || u.Path != "/oauth/authorize" {
		return nil, fmt.Errorf("%s://%s%s is not this server's /oauth/authorize (%s)", u.Scheme, u.Host, u.Path, s.URL)
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, err
	}
	c := newHTTPClient(jar)

	// 1. Not signed in yet: 303 to /auth/sign_in; the request's values are kept in the session.
	resp, b, err := s.call(c, http.MethodGet, authorizeURL, "", nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusSeeOther && resp.StatusCode != http.StatusFound {
		return nil, fmt.Errorf("GET /oauth/authorize: %s (want a redirect to sign in): %s", resp.Status, truncate(b, 300))
	}
	if loc := resp.Header.Get("Location"); !strings.Contains(loc, "/auth/sign_in") {
		return nil, fmt.Errorf("GET /oauth/authorize: redirected to %q, want the sign-in page", loc)
	}
	// 2. Sign in; the form field "username" takes the email.
	resp, b, err = s.call(c, http.MethodPost, "/auth/sign_in", "", url.Values{
		"username": {s.AdminEmail},
		"password": {s.AdminPassword},
	})
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
		return nil, fmt.Errorf("POST /auth/sign_in: %s (want 302): %s", resp.Status, truncate(b, 300))
	}
	// 3. The authorize page, now signed in (the values still come from the session).
	resp, b, err = s.call(c, http.MethodGet, authorizeURL, "", nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /oauth/authorize after sign in: %s (want 200): %s", resp.Status, truncate(b, 300))
	}
	// 4. Approve: the form's values come from the session.
	resp, b, err = s.call(c, http.MethodPost, "/oauth/authorize", "", url.Values{})
	if err != nil {
		return nil, err
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if (resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther) || err != nil || resp.Header.Get("Location") == "" {
		return nil, fmt.Errorf("POST /oauth/authorize: %s (want a redirect): %s", resp.Status, truncate(b, 300))
	}
	return base.ResolveReference(loc), nil
}

package gotosocial

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

const oob = "urn:ietf:wg:oauth:2.0:oob"

// signUpPassword passes GoToSocial's password check (≥ 60 bits of entropy).
const signUpPassword = "Pending-Signup-Passw0rd-for-Tests!"

// httpClient does not follow redirects, so OAuth codes can be read from Location headers.
func newHTTPClient(jar http.CookieJar) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Jar:     jar,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// call sends a request to the server. A non-nil form is sent as
// application/x-www-form-urlencoded. It returns the response with its body read.
func (s *Server) call(c *http.Client, method, path, token string, form url.Values) (*http.Response, []byte, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	target := path
	if !strings.HasPrefix(path, "http://") && !strings.HasPrefix(path, "https://") {
		target = s.URL + path
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		return nil, nil, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp, nil, fmt.Errorf("%s %s: reading body: %w", method, path, err)
	}
	return resp, b, nil
}

// callJSON is call that expects the status want and decodes a JSON body into out (if non-nil).
func (s *Server) callJSON(c *http.Client, method, path, token string, form url.Values, want int, out any) error {
	resp, b, err := s.call(c, method, path, token, form)
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %s (want %d): %s", method, path, resp.Status, want, truncate(b, 500))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decoding %s: %w", method, path, truncate(b, 200), err)
		}
	}
	return nil
}

type app struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}

func (s *Server) createApp(c *http.Client, name, scopes string) (app, error) {
	var a app
	err := s.callJSON(c, http.MethodPost, "/api/v1/apps", "", url.Values{
		"client_name":   {name},
		"redirect_uris": {oob},
		"scopes":        {scopes},
	}, http.StatusOK, &a)
	if err == nil && (a.ClientID == "" || a.ClientSecret == "") {
		err = fmt.Errorf("POST /api/v1/apps: no client_id/client_secret")
	}
	return a, err
}

type token struct {
	AccessToken string `json:"access_token"`
}

func (s *Server) exchange(c *http.Client, form url.Values) (string, error) {
	var tok token
	if err := s.callJSON(c, http.MethodPost, "/oauth/token", "", form, http.StatusOK, &tok); err != nil {
		return "", err
	}
	if tok.AccessToken == "" {
		return "", fmt.Errorf("POST /oauth/token: no access_token")
	}
	return tok.AccessToken, nil
}

// Token runs the OAuth out-of-band authorization-code flow for the admin (as a browser would:
// authorize, sign in, authorize again, approve) with the given scopes (e.g. "read write admin")
// and returns a new user token. GoToSocial v0.17.3 does not enforce scopes.
func (s *Server) Token(t testing.TB, scopes string) string {
	t.Helper()
	tok, err := s.token(scopes)
	if err != nil {
		t.Fatalf("gotosocial: admin token (scopes %q): %v", scopes, err)
	}
	return tok
}

func (s *Server) token(scopes string) (string, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return "", err
	}
	c := newHTTPClient(jar)
	a, err := s.createApp(c, "fediops-tests", scopes)
	if err != nil {
		return "", err
	}
	authorize := "/oauth/authorize?" + url.Values{
		"client_id":     {a.ClientID},
		"redirect_uri":  {oob},
		"response_type": {"code"},
		"scope":         {scopes},
	}.Encode()

	// 1. Not signed in yet: 303 to /auth/sign_in, with the session cookie.
	resp, b, err := s.call(c, http.MethodGet, authorize, "", nil)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusSeeOther && resp.StatusCode != http.StatusFound {
		return "", fmt.Errorf("GET /oauth/authorize: %s (want a redirect to sign in): %s", resp.Status, truncate(b, 300))
	}
	// 2. Sign in; the form field "username" takes the email.
	resp, b, err = s.call(c, http.MethodPost, "/auth/sign_in", "", url.Values{
		"username": {s.AdminEmail},
		"password": {s.AdminPassword},
	})
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
		return "", fmt.Errorf("POST /auth/sign_in: %s (want 302): %s", resp.Status, truncate(b, 300))
	}
	// 3. The authorize page, now signed in.
	resp, b, err = s.call(c, http.MethodGet, authorize, "", nil)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET /oauth/authorize after sign in: %s (want 200): %s", resp.Status, truncate(b, 300))
	}
	// 4. Approve (the values come from the session): 302 to /oauth/oob?code=….
	resp, b, err = s.call(c, http.MethodPost, "/oauth/authorize", "", url.Values{})
	if err != nil {
		return "", err
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || loc == nil || loc.Query().Get("code") == "" {
		return "", fmt.Errorf("POST /oauth/authorize: %s, Location %q (want 302 with a code): %s",
			resp.Status, resp.Header.Get("Location"), truncate(b, 300))
	}
	// 5. Exchange the code.
	return s.exchange(c, url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {loc.Query().Get("code")},
		"client_id":     {a.ClientID},
		"client_secret": {a.ClientSecret},
		"redirect_uri":  {oob},
	})
}

// AppToken returns an app token (client_credentials grant, scopes "read write"), as used for
// POST /api/v1/accounts. It is created once per server.
func (s *Server) AppToken(t testing.TB) string {
	t.Helper()
	tok, err := s.appTokenOnce()
	if err != nil {
		t.Fatalf("gotosocial: app token: %v", err)
	}
	return tok
}

func (s *Server) appTokenOnce() (string, error) {
	s.appMu.Lock()
	defer s.appMu.Unlock()
	if s.appToken != "" {
		return s.appToken, nil
	}
	c := newHTTPClient(nil)
	a, err := s.createApp(c, "fediops-signup", "read write")
	if err != nil {
		return "", err
	}
	tok, err := s.exchange(c, url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {a.ClientID},
		"client_secret": {a.ClientSecret},
		"redirect_uri":  {oob},
		"scope":         {"read write"},
	})
	if err != nil {
		return "", err
	}
	s.appToken = tok
	return tok, nil
}

// SignUp creates a pending, unconfirmed local account through POST /api/v1/accounts (with an
// app token, like a sign-up form would), waits for its confirmation mail and returns its
// account id. The reason given is
// "fediops integration test sign-up for USERNAME, please approve me." Usernames must match
// ^[a-z0-9_]{1,64}$; emails must be unique. See the package doc for GoToSocial's sign-up limits.
func (s *Server) SignUp(t testing.TB, username, email string) string {
	t.Helper()
	return s.SignUpWithReason(t, username, email, "fediops integration test sign-up for "+username+", please approve me.")
}

// SignUpWithReason is SignUp with the sign-up reason given (40 to 500 characters).
func (s *Server) SignUpWithReason(t testing.TB, username, email, reason string) string {
	t.Helper()
	id, err := s.signUp(username, email, reason)
	if err != nil {
		t.Fatalf("gotosocial: sign up %s <%s>: %v", username, email, err)
	}
	return id
}

func (s *Server) signUp(username, email, reason string) (string, error) {
	appToken, err := s.appTokenOnce()
	if err != nil {
		return "", fmt.Errorf("app token: %w", err)
	}
	c := newHTTPClient(nil)
	err = s.callJSON(c, http.MethodPost, "/api/v1/accounts", appToken, url.Values{
		"username":  {username},
		"email":     {email},
		"password":  {signUpPassword},
		"agreement": {"true"},
		"locale":    {"en"},
		"reason":    {reason},
	}, http.StatusOK, nil)
	if err != nil {
		return "", err
	}
	// GoToSocial mails the confirmation link in a background worker and then stores the
	// token, writing its whole cached user. An approval or confirmation racing that worker
	// can be lost from the cache (the admin API then shows the account unapproved for good),
	// so a sign-up is done when its mail is out.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.mail.Wait(ctx, func(m Mail) bool { return m.HasRecipient(email) && confirmLinkRE.MatchString(m.Body) }); err != nil {
		return "", fmt.Errorf("no confirmation mail to %s: %w", email, err)
	}
	return s.accountID(c, username)
}

// AccountID returns the id of the local account with the given username, through the admin API.
func (s *Server) AccountID(t testing.TB, username string) string {
	t.Helper()
	id, err := s.accountID(newHTTPClient(nil), username)
	if err != nil {
		t.Fatalf("gotosocial: %v", err)
	}
	return id
}

func (s *Server) accountID(c *http.Client, username string) (string, error) {
	var accounts []struct {
		ID       string  `json:"id"`
		Username string  `json:"username"`
		Domain   *string `json:"domain"`
	}
	path := "/api/v2/admin/accounts?" + url.Values{"origin": {"local"}, "username": {username}}.Encode()
	if err := s.callJSON(c, http.MethodGet, path, s.AdminToken, nil, http.StatusOK, &accounts); err != nil {
		return "", err
	}
	for _, a := range accounts {
		if a.Username == username && (a.Domain == nil || *a.Domain == "") {
			return a.ID, nil
		}
	}
	return "", fmt.Errorf("no local account %q in GET %s", username, path)
}

var confirmLinkRE = regexp.MustCompile(`/confirm_email\?token=([A-Za-z0-9-]+)`)

// ConfirmEmail confirms a signed-up account's email while the server runs, as the user would:
// it waits for GoToSocial's confirmation mail to email, takes the token from its link and POSTs
// /confirm_email?token=…. The admin API then reports "confirmed": true for the account.
func (s *Server) ConfirmEmail(t testing.TB, email string) {
	t.Helper()
	s.WaitMail(t, func(m Mail) bool {
		return m.HasRecipient(email) && confirmLinkRE.MatchString(m.Body)
	})
	// GoToSocial stores the token only after the mail has been sent, so retry; and it stores
	// the token of the last mail it sent, so try every token sent to this address, newest first.
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	c := newHTTPClient(nil)
	var err error
	var tokens []string
	for {
		tokens = s.confirmTokens(email)
		for _, tok := range tokens {
			if err = s.confirm(ctx, c, tok); err == nil {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("gotosocial: POST /confirm_email for %s (%d confirmation mails): %v", email, len(tokens), err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// confirmTokens returns the confirmation tokens mailed to email, newest first.
func (s *Server) confirmTokens(email string) []string {
	var out []string
	mails := s.Mails()
	for i := len(mails) - 1; i >= 0; i-- {
		if m := confirmLinkRE.FindStringSubmatch(mails[i].Body); m != nil && mails[i].HasRecipient(email) {
			out = append(out, m[1])
		}
	}
	return out
}

func (s *Server) confirm(ctx context.Context, c *http.Client, tok string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/confirm_email?token="+url.QueryEscape(tok), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/html")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Status, truncate(b, 300))
	}
	return nil
}

func truncate(b []byte, n int) string {
	s := strings.TrimSpace(string(b))
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fediops/fediops/shared/config"
	"github.com/fediops/fediops/shared/mastodon"
	"github.com/fediops/fediops/shared/testsupport/gcpfake"
	"github.com/fediops/fediops/shared/testsupport/gotosocial"
	"github.com/fediops/fediops/shared/testsupport/mastosim"
)

// syncBuffer is a bytes.Buffer safe for a CLI goroutine writing while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// cliRun is a CLI run in the background, for commands that wait for a person (auth login).
type cliRun struct {
	stdout, stderr syncBuffer
	done           chan int
	code           int
}

func startCLI(t *testing.T, env map[string]string, args ...string) *cliRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &cliRun{done: make(chan int, 1)}
	go func() {
		r.done <- execute(ctx, args, &r.stdout, &r.stderr, func(k string) string { return env[k] })
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			t.Errorf("the CLI did not stop")
		}
	})
	return r
}

// waitStderr waits until stderr matches re and returns the match.
func (r *cliRun) waitStderr(t *testing.T, re *regexp.Regexp) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m := re.FindString(r.stderr.String()); m != "" {
			return m
		}
		select {
		case code := <-r.done:
			r.done <- code
			t.Fatalf("the CLI exited (%d) before printing %s\nstdout:\n%s\nstderr:\n%s", code, re, r.stdout.String(), r.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("no %s on stderr:\n%s", re, r.stderr.String())
	return ""
}

// wait waits for the exit code.
func (r *cliRun) wait(t *testing.T) int {
	t.Helper()
	select {
	case code := <-r.done:
		r.done <- code
		return code
	case <-time.After(60 * time.Second):
		t.Fatalf("the CLI did not finish\nstdout:\n%s\nstderr:\n%s", r.stdout.String(), r.stderr.String())
		return -1
	}
}

var authURLRe = regexp.MustCompile(`https?://\S+/oauth/authorize\?\S+`)

// authorizeParams parses the authorization URL the CLI printed and checks the PKCE parameters.
func authorizeParams(t *testing.T, authURL string) url.Values {
	t.Helper()
	u, err := url.Parse(authURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if q.Get("response_type") != "code" || q.Get("client_id") == "" || len(q.Get("state")) < 20 ||
		q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43 {
		t.Errorf("authorization URL parameters: %v", q)
	}
	return q
}

// setAuthStdin makes auth login --oob read from r for the rest of the test.
func setAuthStdin(t *testing.T, r io.Reader) {
	t.Helper()
	authStdin = r
	t.Cleanup(func() { authStdin = nil })
}

// lastLine returns the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// TestAuthLoginGoToSocial gets tokens from a real GoToSocial, the test playing the admin's
// browser: through the loopback redirect into the Secret Manager fake, and out of band with
// the code pasted on stdin, printed.
func TestAuthLoginGoToSocial(t *testing.T) {
	gts := gotosocial.Start(t, gotosocial.Options{})
	ctx := context.Background()
	verify := func(t *testing.T, token string) {
		t.Helper()
		mc, err := mastodon.New(gts.URL, token)
		if err != nil {
			t.Fatal(err)
		}
		acct, err := mc.VerifyAccountCredentials(ctx)
		if err != nil || acct.Username != gts.AdminUsername {
			t.Fatalf("GET /api/v1/accounts/verify_credentials with the new token: %+v, %v", acct, err)
		}
		if err := mc.Probe(ctx, mastodon.ProbeAdminAccounts); err != nil {
			t.Errorf("the new token cannot list accounts: %v", err)
		}
	}

	t.Run("loopback redirect, stored in Secret Manager", func(t *testing.T) {
		sm := gcpfake.StartSecretManager(t)
		const secret = "projects/fediops-test/secrets/gts-token"
		sm.NewSecret(secret)
		r := startCLI(t, map[string]string{"FEDIOPS_SECRETMANAGER_ENDPOINT": sm.Addr},
			"auth", "login", "--instance", gts.URL, "--store", "sm://"+secret)
		authURL := r.waitStderr(t, authURLRe)
		q := authorizeParams(t, authURL)
		redirect := q.Get("redirect_uri")
		if !regexp.MustCompile(`^http://127\.0\.0\.1:\d+/callback$`).MatchString(redirect) {
			t.Fatalf("redirect_uri = %q", redirect)
		}
		if got := strings.Fields(q.Get("scope")); !slices.Equal(got, []string{"admin:read:accounts", "admin:write:accounts",
			"admin:read:email_domain_blocks", "admin:write:email_domain_blocks",
			"admin:read:domain_blocks", "admin:write:domain_blocks", "admin:read", "profile"}) {
			t.Errorf("scope = %q", got)
		}

		// A request with another state (a forged redirect) is refused and does not end the wait.
		resp, err := http.Get(redirect + "?" + url.Values{"code": {"forged"}, "state": {"not-the-state"}}.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("forged callback: %s, want 400", resp.Status)
		}

		status, body := gts.AuthorizeAndFollow(t, authURL)
		if status != http.StatusOK || !strings.Contains(body, "authorization received") {
			t.Errorf("the browser got %d: %s", status, body)
		}
		if code := r.wait(t); code != 0 {
			t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, r.stdout.String(), r.stderr.String())
		}
		versions := sm.Versions(secret)
		if len(versions) != 1 || len(versions[0]) < 20 {
			t.Fatalf("secret versions: %q", versions)
		}
		token := string(versions[0])
		verify(t, token)
		out, errOut := r.stdout.String(), r.stderr.String()
		if strings.Contains(out, token) || strings.Contains(errOut, token) {
			t.Errorf("the token was printed although --store was given:\n%s\n%s", out, errOut)
		}
		for _, want := range []string{
			"token: ok: @" + gts.AdminUsername,
			"scopes: not checked: gotosocial",
			"triage read: ok: GET /api/v2/admin/accounts",
			"blocklist read: ok: GET /api/v1/admin/domain_blocks",
			"stored: " + secret + "/versions/1",
			`configuration: token = "sm://` + secret + `"`,
		} {
			if !strings.Contains(out, want) {
				t.Errorf("stdout lacks %q:\n%s", want, out)
			}
		}
		if !strings.Contains(errOut, "ignored a request to the callback") {
			t.Errorf("stderr does not mention the forged callback:\n%s", errOut)
		}

		// The stored token works through the configuration too: auth check resolves it from
		// Secret Manager.
		cfg := writeConfig(t, fmt.Sprintf("[[instance]]\nname = \"gts\"\nurl = %q\ntoken = \"sm://%s\"\n", gts.URL, secret))
		code, out, errOut := runCLI(t, map[string]string{"FEDIOPS_SECRETMANAGER_ENDPOINT": sm.Addr}, "auth", "check", "--config", cfg, "--for", "all")
		if code != 0 || !strings.Contains(out, "gts: triage read: ok") || !strings.Contains(out, "gts: blocklist read: ok") {
			t.Errorf("auth check: exit %d\n%s\n%s", code, out, errOut)
		}
		if strings.Contains(out, token) || strings.Contains(errOut, token) {
			t.Error("auth check printed the token")
		}
	})

	t.Run("out of band, code pasted, token printed", func(t *testing.T) {
		pr, pw := io.Pipe()
		t.Cleanup(func() { pw.Close() })
		setAuthStdin(t, pr)
		r := startCLI(t, nil, "auth", "login", "--instance", gts.URL, "--oob", "--for", "triage")
		authURL := r.waitStderr(t, authURLRe)
		q := authorizeParams(t, authURL)
		if q.Get("redirect_uri") != mastodon.OOBRedirectURI || q.Get("scope") != "admin:read:accounts admin:write:accounts admin:read:email_domain_blocks admin:write:email_domain_blocks profile" {
			t.Errorf("redirect_uri %q, scope %q", q.Get("redirect_uri"), q.Get("scope"))
		}
		r.waitStderr(t, regexp.MustCompile(`paste the authorization code`))
		code := gts.OOBCode(t, authURL)
		if _, err := fmt.Fprintf(pw, "\n  %s  \n", code); err != nil {
			t.Fatal(err)
		}
		if exit := r.wait(t); exit != 0 {
			t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", exit, r.stdout.String(), r.stderr.String())
		}
		out := r.stdout.String()
		token := lastLine(out)
		verify(t, token)
		if !strings.Contains(out, "access token (a secret") {
			t.Errorf("stdout does not say the token is a secret:\n%s", out)
		}
		if strings.Contains(r.stderr.String(), token) {
			t.Errorf("the token is on stderr:\n%s", r.stderr.String())
		}
		if strings.Contains(out, "blocklist read") {
			t.Errorf("--for triage checked blocklist:\n%s", out)
		}
	})

	t.Run("refused in the browser", func(t *testing.T) {
		r := startCLI(t, nil, "auth", "login", "--instance", gts.URL, "--for", "triage")
		q := authorizeParams(t, r.waitStderr(t, authURLRe))
		resp, err := http.Get(q.Get("redirect_uri") + "?" + url.Values{"error": {"access_denied"}, "state": {q.Get("state")}}.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if code := r.wait(t); code != 1 || !strings.Contains(r.stderr.String(), "refused the authorization: access_denied") {
			t.Errorf("exit %d\n%s", code, r.stderr.String())
		}
		if strings.Contains(r.stdout.String(), "access token") {
			t.Errorf("stdout: %s", r.stdout.String())
		}
	})
}

// oauthFront puts a Doorkeeper-like /oauth/authorize and /oauth/token, with PKCE (S256), in
// front of the simulator, which has no OAuth flow. grant lists the scopes the token gets ("" =
// those asked for).
type oauthFront struct {
	sim   *mastosim.Server
	grant string

	mu       sync.Mutex
	pending  map[string]url.Values // code → the authorization request
	verifier string                // the code_verifier of the last exchange
}

func (f *oauthFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/oauth/authorize":
		q := r.URL.Query()
		code := fmt.Sprintf("code-%d", time.Now().UnixNano())
		f.mu.Lock()
		f.pending[code] = q
		f.mu.Unlock()
		to := q.Get("redirect_uri") + "?" + url.Values{"code": {code}, "state": {q.Get("state")}}.Encode()
		http.Redirect(w, r, to, http.StatusFound)
	case "/oauth/token":
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		f.mu.Lock()
		req, ok := f.pending[r.PostForm.Get("code")]
		delete(f.pending, r.PostForm.Get("code"))
		f.verifier = r.PostForm.Get("code_verifier")
		f.mu.Unlock()
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		clientID := r.PostForm.Get("client_id")
		switch {
		case !ok || r.PostForm.Get("grant_type") != "authorization_code" || r.PostForm.Get("redirect_uri") != req.Get("redirect_uri"):
			w.WriteHeader(400)
			fmt.Fprint(w, `{"error":"invalid_grant"}`)
			return
		case clientID != req.Get("client_id") || r.PostForm.Get("client_secret") != strings.Replace(clientID, "-client-", "-secret-", 1):
			w.WriteHeader(401)
			fmt.Fprint(w, `{"error":"invalid_client"}`)
			return
		case base64.RawURLEncoding.EncodeToString(sum[:]) != req.Get("code_challenge"):
			w.WriteHeader(400)
			fmt.Fprint(w, `{"error":"invalid_grant","error_description":"PKCE verification failed"}`)
			return
		}
		scope := req.Get("scope")
		if f.grant != "" {
			scope = f.grant
		}
		tok := "issued-" + r.PostForm.Get("code")
		f.sim.AddToken(tok, scope)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "scope": scope, "created_at": time.Now().Unix()})
	default:
		f.sim.ServeHTTP(w, r)
	}
}

// TestAuthLoginMastodon runs auth login against the simulator behind a PKCE-checking OAuth
// front: the code verifier must match the challenge, and the granted scopes are read back
// through GET /api/v1/apps/verify_credentials.
func TestAuthLoginMastodon(t *testing.T) {
	front := &oauthFront{sim: mastosim.New(mastosim.Options{}), pending: map[string]url.Values{}}
	srv := httptest.NewServer(front)
	t.Cleanup(srv.Close)
	browse := func(t *testing.T, authURL string) {
		t.Helper()
		resp, err := http.Get(authURL) // follows the redirect to the loopback listener
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("browser: %s: %s", resp.Status, b)
		}
	}

	t.Run("granted", func(t *testing.T) {
		r := startCLI(t, nil, "auth", "login", "--instance", srv.URL, "--for", "triage")
		browse(t, r.waitStderr(t, authURLRe))
		if code := r.wait(t); code != 0 {
			t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, r.stdout.String(), r.stderr.String())
		}
		out := r.stdout.String()
		for _, want := range []string{"token: ok: @admin", "scopes: ok: admin:read:accounts admin:write:accounts admin:read:email_domain_blocks admin:write:email_domain_blocks (for triage)", "triage read: ok"} {
			if !strings.Contains(out, want) {
				t.Errorf("stdout lacks %q:\n%s", want, out)
			}
		}
		if tok := lastLine(out); !strings.HasPrefix(tok, "issued-") {
			t.Errorf("last line %q is not the token", tok)
		}
		if len(front.verifier) < 43 {
			t.Errorf("code_verifier %q", front.verifier)
		}
	})

	t.Run("fewer scopes granted than asked", func(t *testing.T) {
		front.grant = "admin:read:accounts profile"
		t.Cleanup(func() { front.grant = "" })
		sm := gcpfake.StartSecretManager(t)
		sm.NewSecret("projects/p/secrets/s")
		r := startCLI(t, map[string]string{"FEDIOPS_SECRETMANAGER_ENDPOINT": sm.Addr},
			"auth", "login", "--instance", srv.URL, "--for", "triage", "--store", "sm://projects/p/secrets/s")
		browse(t, r.waitStderr(t, authURLRe))
		if code := r.wait(t); code != 1 {
			t.Fatalf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, r.stdout.String(), r.stderr.String())
		}
		if !strings.Contains(r.stdout.String(), "scopes: missing scope admin:write:accounts") ||
			!strings.Contains(r.stderr.String(), "it was not stored") {
			t.Errorf("stdout:\n%s\nstderr:\n%s", r.stdout.String(), r.stderr.String())
		}
		if v := sm.Versions("projects/p/secrets/s"); len(v) != 0 {
			t.Errorf("a token lacking a scope was stored: %d versions", len(v))
		}
	})
}

// TestAuthLoginOldMastodon: before 4.3 there is no profile scope (read:accounts instead) and a
// token's scopes cannot be read back; the probes still run.
func TestAuthLoginOldMastodon(t *testing.T) {
	front := &oauthFront{sim: mastosim.New(mastosim.Options{Version: "4.2.10"}), pending: map[string]url.Values{}}
	srv := httptest.NewServer(front)
	t.Cleanup(srv.Close)
	r := startCLI(t, nil, "auth", "login", "--instance", srv.URL, "--for", "triage")
	authURL := r.waitStderr(t, authURLRe)
	if q := authorizeParams(t, authURL); q.Get("scope") != "admin:read:accounts admin:write:accounts admin:read:email_domain_blocks admin:write:email_domain_blocks read:accounts" {
		t.Errorf("scope = %q", q.Get("scope"))
	}
	resp, err := http.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if code := r.wait(t); code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, r.stdout.String(), r.stderr.String())
	}
	out := r.stdout.String()
	for _, want := range []string{"token: ok: @admin", "scopes: not readable on mastodon 4.2.10", "triage read: ok"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
}

func TestAuthLoginUsage(t *testing.T) {
	tests := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"auth", "login"}, 2, "--instance is required"},
		{[]string{"auth", "login", "--instance", "http://social.example"}, 2, "only allowed on loopback"},
		{[]string{"auth", "login", "--instance", "https://social.example", "--for", "everything"}, 2, `--for "everything"`},
		{[]string{"auth", "login", "--instance", "https://social.example", "--store", "sm://projects/p/secrets/s/versions/3"}, 2, "name a Secret Manager secret"},
		{[]string{"auth", "login", "--instance", "https://social.example", "--store", "env://TOKEN"}, 2, "name a Secret Manager secret"},
		{[]string{"auth", "login", "--instance", "http://127.0.0.1:1"}, 1, "127.0.0.1:1"},
		{[]string{"auth", "check", "--for", "x"}, 2, `--for "x"`},
		{[]string{"auth", "check"}, 2, "FEDIOPS_CONFIG"},
	}
	for _, tt := range tests {
		code, out, errOut := runCLI(t, nil, tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.msg) {
			t.Errorf("%v: exit %d, stderr %q; want %d containing %q", tt.args, code, errOut, tt.code, tt.msg)
		}
		if strings.Contains(out, "oauth/authorize") || strings.Contains(errOut, "oauth/authorize") {
			t.Errorf("%v: started the flow", tt.args)
		}
	}
}

// writeConfig writes a configuration with the given [[instance]]s (and more) and an archive.
func writeConfig(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "fediops.toml")
	cfg := body + fmt.Sprintf("\n[archive]\nurl = %q\n", filepath.Join(dir, "archive"))
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// tokenFile writes a token to a file and returns its file:// reference.
func tokenFile(t *testing.T, tok string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return "file://" + p
}

// problemLines returns the lines of a check's output that are not ok (or informational).
func problemLines(out string) []string {
	var bad []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		_, rest, _ := strings.Cut(l, ": ")
		_, res, _ := strings.Cut(rest, ": ")
		if !strings.HasPrefix(res, "ok") && !strings.HasPrefix(res, "not checked") && !strings.HasPrefix(res, "not readable") && !strings.HasPrefix(res, "nothing to check") {
			bad = append(bad, l)
		}
	}
	return bad
}

func TestAuthCheck(t *testing.T) {
	sim := mastosim.New(mastosim.Options{})
	tokens := map[string]string{
		"full":    "admin:read:accounts admin:write:accounts admin:read:email_domain_blocks admin:write:email_domain_blocks profile",
		"nowrite": "admin:read:accounts admin:read:email_domain_blocks admin:write:email_domain_blocks profile",
		"coarse":  "admin:read admin:write",
		"blk":     "admin:read:domain_blocks admin:write:domain_blocks admin:read profile",
	}
	for name, scopes := range tokens {
		sim.AddToken("secret-token-of-"+name, scopes)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	inst := func(name, tok string) string {
		return fmt.Sprintf("[[instance]]\nname = %q\nurl = %q\ntoken = %q\n\n", name, srv.URL, tokenFile(t, tok))
	}
	all := inst("full", "secret-token-of-full") + inst("nowrite", "secret-token-of-nowrite") +
		inst("bad", "secret-token-unknown") + inst("coarse", "secret-token-of-coarse") + inst("blk", "secret-token-of-blk") +
		"[triage]\ninstances = [\"full\", \"nowrite\", \"bad\", \"coarse\"]\n\n[blocklist]\ndestinations = [\"blk\"]\n"
	cfg := writeConfig(t, all)

	t.Run("every instance", func(t *testing.T) {
		code, out, errOut := runCLI(t, nil, "auth", "check", "--config", cfg)
		if code != 1 {
			t.Errorf("exit %d, want 1\n%s\n%s", code, out, errOut)
		}
		for _, want := range []string{
			"full: token: ok: @admin",
			"full: scopes: ok: admin:read:accounts admin:write:accounts admin:read:email_domain_blocks admin:write:email_domain_blocks (for triage)",
			"full: triage read: ok: GET /api/v2/admin/accounts?limit=1",
			"nowrite: scopes: missing scope admin:write:accounts (needed by triage",
			"nowrite: triage read: ok",
			"bad: token: token invalid",
			"coarse: token: ok: valid",
			"coarse: scopes: ok",
			"coarse: triage read: ok",
			"blk: scopes: ok: admin:read:domain_blocks admin:write:domain_blocks admin:read (for blocklist)",
			"blk: blocklist read: ok: GET /api/v1/admin/domain_blocks?limit=1",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("stdout lacks %q:\n%s", want, out)
			}
		}
		bad := problemLines(out)
		if len(bad) != 2 || !strings.HasPrefix(bad[0], "nowrite: scopes: missing scope admin:write:accounts") || !strings.HasPrefix(bad[1], "bad: token: token invalid") {
			t.Errorf("problems:\n%s", strings.Join(bad, "\n"))
		}
		if !strings.Contains(errOut, "2 problem(s) with the tokens of 2 of 5 instance(s)") {
			t.Errorf("stderr: %s", errOut)
		}
		for name := range tokens {
			if strings.Contains(out+errOut, "secret-token-of-"+name) {
				t.Errorf("the token of %s was printed", name)
			}
		}
		for _, r := range sim.Requests() {
			if r.Method != http.MethodGet {
				t.Errorf("auth check sent %s %s", r.Method, r.Path)
			}
		}
	})

	t.Run("all fine", func(t *testing.T) {
		code, out, errOut := runCLI(t, map[string]string{"FEDIOPS_CONFIG": cfg}, "auth", "check", "--instance", "full", "--instance", "coarse,blk")
		if code != 0 || strings.Contains(out, "nowrite") || !strings.Contains(out, "blk: blocklist read: ok") {
			t.Errorf("exit %d\n%s\n%s", code, out, errOut)
		}
	})

	t.Run("--for blocklist on a triage token", func(t *testing.T) {
		code, out, _ := runCLI(t, nil, "auth", "check", "--config", cfg, "--instance", "full", "--for", "blocklist")
		if code != 1 {
			t.Errorf("exit %d", code)
		}
		for _, want := range []string{
			"full: scopes: missing scope admin:read:domain_blocks",
			"full: scopes: missing scope admin:write:domain_blocks",
			"full: scopes: missing scope admin:read (",
			"full: blocklist read: missing scope admin:read:domain_blocks (GET /api/v1/admin/domain_blocks?limit=1 answered 403: This action is outside the authorized scopes)",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("stdout lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, "triage") {
			t.Errorf("--for blocklist checked triage:\n%s", out)
		}
	})

	t.Run("--for all on the coarse token", func(t *testing.T) {
		code, out, errOut := runCLI(t, nil, "auth", "check", "--config", cfg, "--instance", "coarse", "--for", "all")
		if code != 0 || !strings.Contains(out, "coarse: blocklist read: ok") {
			t.Errorf("exit %d\n%s\n%s", code, out, errOut)
		}
	})

	t.Run("unknown instance", func(t *testing.T) {
		code, _, errOut := runCLI(t, nil, "auth", "check", "--config", cfg, "--instance", "nosuch")
		if code != 2 || !strings.Contains(errOut, `"nosuch"`) {
			t.Errorf("exit %d: %s", code, errOut)
		}
	})

	t.Run("unreadable token", func(t *testing.T) {
		cfg := writeConfig(t, fmt.Sprintf("[[instance]]\nname = \"gone\"\nurl = %q\ntoken = \"file:///nonexistent/token\"\n", srv.URL))
		code, out, _ := runCLI(t, nil, "auth", "check", "--config", cfg)
		if code != 1 || !strings.Contains(out, "gone: token: cannot read the token") {
			t.Errorf("exit %d\n%s", code, out)
		}
	})

	t.Run("Mastodon before 4.3", func(t *testing.T) {
		old := mastosim.New(mastosim.Options{Version: "4.2.10"})
		old.AddToken("old-token", "admin:read:accounts admin:write:accounts read:accounts")
		old.AddToken("admin-only", "admin:read admin:write")
		osrv := httptest.NewServer(old)
		t.Cleanup(osrv.Close)
		cfg := writeConfig(t, fmt.Sprintf("[[instance]]\nname = \"old\"\nurl = %q\ntoken = %q\n\n[[instance]]\nname = \"adm\"\nurl = %q\ntoken = %q\n",
			osrv.URL, tokenFile(t, "old-token"), osrv.URL, tokenFile(t, "admin-only")))
		code, out, errOut := runCLI(t, nil, "auth", "check", "--config", cfg)
		for _, want := range []string{"old: token: ok: @admin", "old: scopes: not readable", "old: triage read: ok",
			"adm: token: ok: valid", "adm: scopes: not readable", "adm: triage read: ok"} {
			if !strings.Contains(out, want) {
				t.Errorf("stdout lacks %q", want)
			}
		}
		if code != 0 {
			t.Errorf("exit %d\n%s\n%s", code, out, errOut)
		}
	})
}

func TestNeededScopes(t *testing.T) {
	cfg, err := config.Parse("t.toml", []byte(`
[[instance]]
name = "a"
url = "https://a.example"
token = "env://A"

[[instance]]
name = "b"
url = "https://b.example"
token = "env://B"

[[instance]]
name = "c"
url = "https://c.example"
token = "env://C"

[triage]
instances = ["a", "b"]

[blocklist]
destinations = ["b", "c"]

[archive]
url = "/tmp/x"
`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"a": {"admin:read:accounts", "admin:write:accounts", "admin:read:email_domain_blocks", "admin:write:email_domain_blocks"},
		"b": {"admin:read:accounts", "admin:write:accounts", "admin:read:email_domain_blocks", "admin:write:email_domain_blocks", "admin:read:domain_blocks", "admin:write:domain_blocks", "admin:read"},
		"c": {"admin:read:domain_blocks", "admin:write:domain_blocks", "admin:read"},
	}
	for _, inst := range cfg.Instances {
		if got := neededScopes(cfg, inst); !slices.Equal(got, want[inst.Name]) {
			t.Errorf("neededScopes(%s) = %v, want %v", inst.Name, got, want[inst.Name])
		}
	}
}

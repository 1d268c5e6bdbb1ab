package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/oauth2"

	"github.com/fediops/fediops/functions/approve"
	"github.com/fediops/fediops/functions/blocklist"
	"github.com/fediops/fediops/shared/config"
	"github.com/fediops/fediops/shared/mastodon"
	"github.com/fediops/fediops/shared/secrets"
)

// Token setup and checks:
//
//	fediops auth login --instance URL [--for triage|blocklist|all] [--store sm://projects/P/secrets/S] [--oob]
//	fediops auth check [--config F] [--for triage|blocklist|all] [--instance N]
//
// login registers an app with the minimum scopes for the chosen functions, runs the OAuth
// authorization-code flow with PKCE (a loopback redirect, or an out-of-band code the admin
// pastes), verifies the token, and stores it as a new Secret Manager version or prints it.
// check verifies every configured instance's token with read-only calls.

// Names of the functions that act on an instance with its token.
const (
	fnTriage    = "triage"
	fnBlocklist = "blocklist"
)

// authFunction is a fediops function that acts on instances with their tokens: the scopes its
// token needs and a read-only request its work starts with.
type authFunction struct {
	name   string
	scopes []string
	probe  mastodon.Probe
}

// authFunctions are the functions that use an instance's token, in the order they are reported.
var authFunctions = []authFunction{
	// Triage reads the instance's email-domain blocks as reject entries and, with
	// sync_email_domain_blocks, creates and removes its own.
	{name: fnTriage, scopes: []string{"admin:read:accounts", "admin:write:accounts", "admin:read:email_domain_blocks", "admin:write:email_domain_blocks"}, probe: mastodon.ProbeAdminAccounts},
	// admin:read is for the measures (POST /api/v1/admin/measures) behind the follow checks:
	// it has no granular scope.
	{name: fnBlocklist, scopes: []string{"admin:read:domain_blocks", "admin:write:domain_blocks", "admin:read"}, probe: mastodon.ProbeDomainBlocks},
}

// accountScope is the scope a login adds to what the functions need, so that
// GET /api/v1/accounts/verify_credentials can say whose token it is: profile (Mastodon 4.3.0+,
// GoToSocial), or on older Mastodon, which has no profile scope, read:accounts.
func accountScope(srv mastodon.Server) string {
	if srv.Software == mastodon.Mastodon && !srv.AtLeast(4, 3, 0) {
		return "read:accounts"
	}
	return "profile"
}

func authFunctionNamed(name string) authFunction {
	for _, f := range authFunctions {
		if f.name == name {
			return f
		}
	}
	panic("no function " + name)
}

// parseForFlag reads a --for value: triage, blocklist or all.
func parseForFlag(s string) ([]authFunction, error) {
	switch s {
	case "all":
		return authFunctions, nil
	case fnTriage, fnBlocklist:
		return []authFunction{authFunctionNamed(s)}, nil
	}
	return nil, fail(exitConfig, fmt.Errorf("--for %q: use triage, blocklist or all", s))
}

// scopesOf is the union of the functions' scopes, in order.
func scopesOf(fs []authFunction) []string {
	var out []string
	for _, f := range fs {
		for _, s := range f.scopes {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}

// functionsOn returns the functions the configuration runs against inst: triage when inst is
// in the triage set, blocklist when inst is a blocklist destination. A function that comes to
// use instances' tokens adds its test here; auth check then checks its scopes and its probe.
// (FediBlockHole-style blocklist_instance_destinations are not [[instance]]s: their tokens
// are not checked.)
func functionsOn(cfg *config.Config, inst config.Instance) []authFunction {
	var out []authFunction
	if tr, err := approve.LoadSection(cfg); err == nil && slices.ContainsFunc(tr.InstancesOf(cfg), func(i config.Instance) bool { return i.Name == inst.Name }) {
		out = append(out, authFunctionNamed(fnTriage))
	}
	if bl, err := blocklist.LoadSection(cfg); err == nil &&
		slices.ContainsFunc(bl.DestinationsOf(cfg), func(d blocklist.EffectiveSync) bool { return !d.FBH && d.Instance.Name == inst.Name }) {
		out = append(out, authFunctionNamed(fnBlocklist))
	}
	return out
}

// neededScopes returns the OAuth scopes inst's token needs for what the configuration runs on it.
func neededScopes(cfg *config.Config, inst config.Instance) []string {
	return scopesOf(functionsOn(cfg, inst))
}

// authStdin is where `auth login --oob` reads the code the admin pastes; nil means the command's
// input (os.Stdin). Tests set it.
var authStdin io.Reader

func (c *cli) authCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "auth",
		Short: "Set up and check the instances' access tokens",
	}
	cmd.AddCommand(c.authLoginCmd(), c.authCheckCmd())
	return cmd
}

// loginOptions are the flags of auth login.
type loginOptions struct {
	instance      string
	forFlag       string
	store         string
	clientName    string
	oob           bool
	noBrowser     bool
	openInBrowser bool
	timeout       time.Duration
}

func (c *cli) authLoginCmd() *cobra.Command {
	var o loginOptions
	cmd := &cobra.Command{
		Use:   "login --instance URL",
		Short: "Get an admin access token through OAuth and store it in Secret Manager (or print it)",
		Long: `Registers an application on the instance with the minimum scopes for the chosen functions
(triage: admin:read:accounts admin:write:accounts admin:read:email_domain_blocks
admin:write:email_domain_blocks; blocklist: admin:read:domain_blocks admin:write:domain_blocks
admin:read; plus profile, or read:accounts before Mastodon 4.3, to verify the token), runs the OAuth
authorization-code flow with PKCE, verifies the token, and stores it as a new version of the
Secret Manager secret named by --store (endpoint: $FEDIOPS_SECRETMANAGER_ENDPOINT, else Google's
with Application Default Credentials). Without --store the token is printed on stdout.

The authorization URL is printed on stderr: open it in a browser signed in as an administrator.
By default the server redirects back to a one-off listener on http://127.0.0.1:PORT/callback,
so the browser must run on this machine. With --oob (or --no-browser) the server shows a code
instead, to paste here: use it when the browser is elsewhere.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in := authStdin
			if in == nil {
				in = cmd.InOrStdin()
			}
			return c.login(cmd.Context(), o, in)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.instance, "instance", "", "the instance's base URL, e.g. https://social.example.gov (required)")
	f.StringVar(&o.forFlag, "for", "all", "the functions the token is for: triage, blocklist or all")
	f.StringVar(&o.store, "store", "", "add the token as a new version of this secret: sm://projects/P/secrets/S")
	f.StringVar(&o.clientName, "client-name", "fediops", "the application name the instance shows")
	f.BoolVar(&o.oob, "oob", false, "out-of-band flow: the server shows a code to paste here (no loopback listener)")
	f.BoolVar(&o.noBrowser, "no-browser", false, "same as --oob")
	f.BoolVar(&o.openInBrowser, "open-browser", false, "also try to open the authorization URL in this machine's browser")
	f.DurationVar(&o.timeout, "timeout", 10*time.Minute, "how long to wait for the authorization")
	return cmd
}

// parseStoreSecret reads --store: sm://projects/P/secrets/S, the secret to add a version to.
func parseStoreSecret(s string) (string, error) {
	rest, ok := strings.CutPrefix(s, "sm://")
	parts := strings.Split(rest, "/")
	if !ok || len(parts) != 4 || parts[0] != "projects" || parts[1] == "" || parts[2] != "secrets" || parts[3] == "" {
		return "", fail(exitConfig, fmt.Errorf("--store %q: name a Secret Manager secret, sm://projects/P/secrets/S (a new version is added to it)", s))
	}
	return rest, nil
}

func (c *cli) login(ctx context.Context, o loginOptions, stdin io.Reader) error {
	if o.instance == "" {
		return fail(exitConfig, errors.New("--instance is required: the instance's base URL, e.g. https://social.example.gov"))
	}
	if err := config.CheckServerURL(o.instance); err != nil {
		return fail(exitConfig, fmt.Errorf("--instance: %w", err))
	}
	fns, err := parseForFlag(o.forFlag)
	if err != nil {
		return err
	}
	if o.timeout <= 0 {
		return fail(exitConfig, errors.New("--timeout must be positive"))
	}
	oob := o.oob || o.noBrowser

	// Open Secret Manager first: a missing credential should stop us before the admin signs in.
	var sm *secrets.SecretManagerClient
	var secret string
	if o.store != "" {
		if secret, err = parseStoreSecret(o.store); err != nil {
			return err
		}
		sm, err = secrets.NewSecretManager(ctx, c.getenv("FEDIOPS_SECRETMANAGER_ENDPOINT"))
		if err != nil {
			return fail(exitConfig, err)
		}
		defer sm.Close()
	}

	hc := &http.Client{Timeout: 30 * time.Second}
	clientOpts := []mastodon.Option{mastodon.WithHTTPClient(hc), mastodon.WithRetries(2), mastodon.WithBackoff(500*time.Millisecond, 5*time.Second)}
	anon, err := mastodon.New(o.instance, "", clientOpts...)
	if err != nil {
		return fail(exitConfig, err)
	}
	srv, err := anon.Server(ctx)
	if err != nil {
		return fail(exitFailed, fmt.Errorf("%s: %w", o.instance, err))
	}

	redirectURI := mastodon.OOBRedirectURI
	var ln net.Listener
	if !oob {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fail(exitFailed, fmt.Errorf("loopback listener for the OAuth redirect: %w (use --oob)", err))
		}
		defer ln.Close()
		redirectURI = "http://" + ln.Addr().String() + "/callback"
	}

	acctScope := accountScope(srv)
	scopes := append(scopesOf(fns), acctScope)
	app, err := anon.RegisterApp(ctx, mastodon.AppRegistration{
		ClientName:   o.clientName,
		RedirectURIs: []string{redirectURI},
		Scopes:       scopes,
		Website:      "https://github.com/fediops/fediops",
	})
	if err != nil {
		return fail(exitFailed, err)
	}
	base := anon.BaseURL()
	conf := &oauth2.Config{
		ClientID:     app.ClientID,
		ClientSecret: app.ClientSecret,
		Endpoint: oauth2.Endpoint{
			AuthURL:  base + "/oauth/authorize",
			TokenURL: base + "/oauth/token",
			// Mastodon (Doorkeeper) takes the client credentials either way; GoToSocial only
			// in the form.
			AuthStyle: oauth2.AuthStyleInParams,
		},
		RedirectURL: redirectURI,
		Scopes:      scopes,
	}
	verifier := oauth2.GenerateVerifier()
	state := newOAuthState()
	authURL := conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier))

	fmt.Fprintf(c.stderr, "Registered the application %q on %s (%s) with the scopes: %s\n", app.Name, base, srv, strings.Join(scopes, " "))
	fmt.Fprintf(c.stderr, "Open this URL in a browser signed in as an administrator of %s, and authorize it:\n\n    %s\n\n", authHost(base), authURL)
	if o.openInBrowser {
		if err := openInBrowser(authURL); err != nil {
			fmt.Fprintf(c.stderr, "(could not open a browser: %v; open the URL yourself)\n", err)
		}
	}

	wctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	var code string
	if oob {
		fmt.Fprint(c.stderr, "Then paste the authorization code the server shows, and press Enter: ")
		code, err = readPastedCode(wctx, stdin)
	} else {
		fmt.Fprintf(c.stderr, "Waiting up to %s for the browser to come back to %s …\n", o.timeout, redirectURI)
		code, err = c.awaitCallback(wctx, ln, state)
	}
	if err != nil {
		return fail(exitFailed, err)
	}

	tok, err := conf.Exchange(context.WithValue(ctx, oauth2.HTTPClient, hc), code, oauth2.VerifierOption(verifier))
	if err != nil {
		return fail(exitFailed, fmt.Errorf("exchanging the authorization code at %s: %w", conf.Endpoint.TokenURL, err))
	}
	token := tok.AccessToken
	if token == "" {
		return fail(exitFailed, fmt.Errorf("%s answered without an access_token", conf.Endpoint.TokenURL))
	}
	fmt.Fprintln(c.stderr, "Received an access token; verifying it.")

	mc, err := mastodon.New(o.instance, token, clientOpts...)
	if err != nil {
		return fail(exitFailed, err)
	}
	rep := checkToken(ctx, mc, fns, acctScope)
	for _, ch := range rep.checks {
		fmt.Fprintf(c.stdout, "%s: %s\n", ch.name, ch.msg)
	}
	if n := rep.problems(); n > 0 {
		what := "printed"
		if sm != nil {
			what = "stored"
		}
		return fail(exitFailed, fmt.Errorf("the new token failed %d check(s); it was not %s", n, what))
	}

	if sm != nil {
		version, err := sm.AddVersion(ctx, secret, []byte(token))
		if err != nil {
			return fail(exitFailed, fmt.Errorf("the token was not stored (run auth login again): %w", err))
		}
		fmt.Fprintf(c.stdout, "stored: %s\n", version)
		fmt.Fprintf(c.stdout, "configuration: token = %q\n", "sm://"+secret)
		return nil
	}
	fmt.Fprintln(c.stdout, "access token (a secret: keep it out of logs, chat and shell history; store it in Secret Manager and reference it as sm://projects/P/secrets/S, not in the configuration):")
	fmt.Fprintln(c.stdout, token)
	return nil
}

func newOAuthState() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func authHost(base string) string {
	_, h, _ := strings.Cut(base, "://")
	return h
}

// readPastedCode reads the pasted authorization code: the first non-empty line.
func readPastedCode(ctx context.Context, in io.Reader) (string, error) {
	type result struct {
		code string
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		sc := bufio.NewScanner(in)
		for sc.Scan() {
			if code := strings.TrimSpace(sc.Text()); code != "" {
				ch <- result{code: code}
				return
			}
		}
		err := sc.Err()
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		ch <- result{err: fmt.Errorf("reading the authorization code: %w", err)}
	}()
	select {
	case r := <-ch:
		return r.code, r.err
	case <-ctx.Done():
		return "", fmt.Errorf("no authorization code pasted: %w", ctx.Err())
	}
}

// awaitCallback serves the OAuth redirect on ln until a request with the right state brings a
// code (or an error), or ctx ends. Requests with another state are answered 400 and ignored.
func (c *cli) awaitCallback(ctx context.Context, ln net.Listener, state string) (string, error) {
	type result struct {
		code string
		err  error
	}
	ch := make(chan result, 1)
	deliver := func(r result) bool {
		select {
		case ch <- r:
			return true
		default:
			return false // an answer was already taken
		}
	}
	page := func(w http.ResponseWriter, status int, msg string) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(status)
		fmt.Fprintf(w, "<!doctype html><title>fediops</title><p>%s</p>\n", html.EscapeString(msg))
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /callback", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(state)) != 1 {
			fmt.Fprintln(c.stderr, "(ignored a request to the callback without the right state)")
			page(w, http.StatusBadRequest, "fediops: this authorization does not belong to the running fediops auth login (wrong state).")
			return
		}
		if e := q.Get("error"); e != "" {
			msg := e
			if d := q.Get("error_description"); d != "" {
				msg += ": " + d
			}
			deliver(result{err: fmt.Errorf("the instance refused the authorization: %s", msg)})
			page(w, http.StatusOK, "fediops: the authorization was refused ("+msg+"). You can close this window.")
			return
		}
		code := q.Get("code")
		if code == "" {
			page(w, http.StatusBadRequest, "fediops: the redirect has no code.")
			return
		}
		if !deliver(result{code: code}) {
			page(w, http.StatusConflict, "fediops: an authorization was already received.")
			return
		}
		page(w, http.StatusOK, "fediops: authorization received. You can close this window and go back to the terminal.")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	select {
	case r := <-ch:
		return r.code, r.err
	case <-ctx.Done():
		return "", fmt.Errorf("no authorization came back to the loopback listener: %w", ctx.Err())
	}
}

func openInBrowser(u string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", u)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", u)
	default:
		cmd = exec.Command("xdg-open", u)
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { _ = cmd.Wait() }()
	return nil
}

func (c *cli) authCheckCmd() *cobra.Command {
	var forFlag string
	var only []string
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check that every configured instance's token works and has the scopes its functions need",
		Long: `For every [[instance]] of the configuration (--config or $FEDIOPS_CONFIG), resolves its token and
checks with read-only calls that it is valid (GET /api/v1/apps/verify_credentials and
/api/v1/accounts/verify_credentials), that it carries the scopes of the functions that use the
instance (triage: the instances in [triage] instances), and that the functions' first reads
answer (triage: GET /api/v2/admin/accounts; blocklist: GET /api/v1/admin/domain_blocks).
--for checks every instance for the named functions instead.

One line per instance and check. Exit status: 0 all fine, 1 a problem, 2 a configuration error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.authCheck(cmd.Context(), forFlag, only)
		},
	}
	cmd.Flags().StringVar(&forFlag, "for", "", "check every instance for these functions: triage, blocklist or all (default: the functions the configuration runs on it)")
	cmd.Flags().StringSliceVar(&only, "instance", nil, "only these instances (default: all configured)")
	return cmd
}

func (c *cli) authCheck(ctx context.Context, forFlag string, only []string) error {
	var forced []authFunction
	if forFlag != "" {
		fs, err := parseForFlag(forFlag)
		if err != nil {
			return err
		}
		forced = fs
	}
	env, err := c.envWithoutArchive(ctx)
	if err != nil {
		return err
	}
	defer env.Close()
	cfg := env.Config
	for _, n := range only {
		if _, ok := cfg.Instance(n); !ok {
			return fail(exitConfig, fmt.Errorf("--instance %q is not an [[instance]] of %s", n, cfg.File))
		}
	}
	// A check should answer quickly: one retry, short backoff.
	env.ClientOptions = append(env.ClientOptions, mastodon.WithRetries(1), mastodon.WithBackoff(500*time.Millisecond, 2*time.Second))

	problems, failing, checked := 0, 0, 0
	for _, inst := range cfg.Instances {
		if len(only) > 0 && !slices.Contains(only, inst.Name) {
			continue
		}
		checked++
		fns := forced
		if fns == nil {
			fns = functionsOn(cfg, inst)
		}
		var rep tokenReport
		mc, err := env.Mastodon(ctx, inst)
		if err != nil {
			rep.add("token", true, "cannot read the token: %v", err)
		} else {
			rep = checkToken(ctx, mc, fns, "")
		}
		for _, ch := range rep.checks {
			fmt.Fprintf(c.stdout, "%s: %s: %s\n", inst.Name, ch.name, ch.msg)
		}
		if n := rep.problems(); n > 0 {
			problems += n
			failing++
		}
	}
	if problems > 0 {
		return fail(exitFailed, fmt.Errorf("%d problem(s) with the tokens of %d of %d instance(s)", problems, failing, checked))
	}
	return nil
}

// tokenCheck is one line of a tokenReport.
type tokenCheck struct {
	name    string
	problem bool
	msg     string
}

type tokenReport struct{ checks []tokenCheck }

func (r *tokenReport) add(name string, problem bool, format string, args ...any) {
	r.checks = append(r.checks, tokenCheck{name: name, problem: problem, msg: fmt.Sprintf(format, args...)})
}

func (r *tokenReport) problems() int {
	n := 0
	for _, c := range r.checks {
		if c.problem {
			n++
		}
	}
	return n
}

// checkToken verifies mc's token with read-only calls: that it is valid and whose it is, that
// it carries the scopes fns need (where the server says which scopes a token has), and that
// each function's probe answers. acctScope is the scope a token just issued by auth login was
// given to show its account ("" for configured tokens, which may lack it).
func checkToken(ctx context.Context, mc *mastodon.Client, fns []authFunction, acctScope string) tokenReport {
	var r tokenReport
	srv, err := mc.Server(ctx)
	if err != nil {
		r.add("server", true, "unreachable: %v", err)
		return r
	}

	// Validity and scopes: GET /api/v1/apps/verify_credentials takes any valid token from
	// Mastodon 4.3.0 and lists its scopes.
	app, appErr := mc.VerifyAppCredentials(ctx)
	if mastodon.IsInvalidToken(appErr) {
		r.add("token", true, "token invalid: %v", appErr)
		return r
	}
	acct, acctErr := mc.VerifyAccountCredentials(ctx)
	switch {
	case mastodon.IsInvalidToken(acctErr):
		r.add("token", true, "token invalid: %v", acctErr)
		return r
	case acctErr == nil:
		role := ""
		if acct.Role != nil && acct.Role.Name != "" {
			role = " (role " + acct.Role.Name + ")"
		}
		r.add("token", false, "ok: @%s%s on %s", acct.Acct, role, srv)
	case mastodon.IsOutsideScopes(acctErr) && acctScope == "":
		// Doorkeeper says "outside the authorized scopes" only for a token it knows.
		r.add("token", false, "ok: valid on %s (its account is not shown: the token has no profile scope)", srv)
	case mastodon.IsOutsideScopes(acctErr):
		r.add("token", true, "missing scope %s: %v", acctScope, acctErr)
	default:
		r.add("token", true, "cannot verify: %v", acctErr)
		return r
	}

	need := scopesOf(fns)
	names := make([]string, len(fns))
	for i, f := range fns {
		names[i] = f.name
	}
	switch {
	case len(fns) == 0:
		r.add("scopes", false, "nothing to check: no function uses this instance (--for names some)")
	case appErr == nil && app.HasScopes:
		missing := mastodon.MissingScopes(app.Scopes, need)
		for _, s := range missing {
			r.add("scopes", true, "missing scope %s (needed by %s; the token has: %s)", s, scopeUsers(fns, s), strings.Join(app.Scopes, " "))
		}
		if len(missing) == 0 {
			r.add("scopes", false, "ok: %s (for %s)", strings.Join(need, " "), strings.Join(names, ", "))
		}
	case errors.Is(appErr, mastodon.ErrUnsupported) && srv.Software == mastodon.GoToSocial:
		r.add("scopes", false, "not checked: %s has no GET /api/v1/apps/verify_credentials and does not enforce OAuth scopes (before 0.19); the token can do whatever its account can", srv)
	case appErr == nil || mastodon.IsOutsideScopes(appErr) || errors.Is(appErr, mastodon.ErrUnsupported):
		// Mastodon before 4.3 lists no scopes, and shows the app only to tokens with read.
		r.add("scopes", false, "not readable on %s (it lists a token's scopes from 4.3.0); the probes below check the read scopes only", srv)
	default:
		r.add("scopes", true, "cannot read the token's scopes: %v", appErr)
	}

	for _, f := range fns {
		name := f.name + " read"
		err := mc.Probe(ctx, f.probe)
		var se *mastodon.ScopeError
		switch {
		case err == nil:
			r.add(name, false, "ok: GET %s", f.probe.Path)
		case errors.As(err, &se):
			r.add(name, true, "missing scope %s (GET %s answered 403: %s)", se.Scope, f.probe.Path, se.Err.Message)
		case mastodon.IsInvalidToken(err):
			r.add(name, true, "token invalid: %v", err)
		case mastodon.StatusOf(err) == http.StatusForbidden:
			r.add(name, true, "not allowed: the account's role lacks the %s permission, or it is not an admin (%v)", f.probe.Permission, err)
		default:
			r.add(name, true, "failed: %v", err)
		}
	}
	return r
}

// scopeUsers names the functions among fns that need scope s.
func scopeUsers(fns []authFunction, s string) string {
	var out []string
	for _, f := range fns {
		if slices.Contains(f.scopes, s) {
			out = append(out, f.name)
		}
	}
	return strings.Join(out, ", ")
}

package gotosocial

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Options configures a server started by [Start].
type Options struct {
	// RateLimit keeps GoToSocial's per-IP rate limiter on: 300 requests per 5 minutes per router
	// group, with X-RateLimit-Limit/-Remaining/-Reset headers, then 429. Off by default
	// (advanced-rate-limit-requests: 0, and no X-RateLimit-* headers). Start's own requests
	// (about 10: readiness, OAuth flow) count against the limit.
	RateLimit bool
	// Throttling keeps GoToSocial's CPU-based request throttler on (8 × CPUs concurrent requests,
	// then 429 with Retry-After). Off by default (advanced-throttling-multiplier: 0).
	Throttling bool
	// LogLevel is GoToSocial's log-level (trace, debug, info, warn, error); default "info".
	LogLevel string
}

// Server is a running GoToSocial.
type Server struct {
	URL        string // e.g. http://localhost:PORT (the host GoToSocial knows itself by)
	Host       string // e.g. localhost:PORT (GoToSocial's `host` setting; local accounts' domain)
	AdminToken string // user token of the admin, scopes "read write admin"
	Dir        string // the temp dir (config.yaml, sqlite.db, storage/, gotosocial.log)
	LogFile    string // the server's stdout and stderr

	AdminUsername string
	AdminEmail    string
	AdminPassword string

	install Install
	mail    *mailSink
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the process has exited
	waitErr error         // valid after exited is closed

	appMu    sync.Mutex
	appToken string // client_credentials token for sign-ups
}

const (
	readyTimeout = 3 * time.Minute
	cliTimeout   = 2 * time.Minute
)

// Start builds (if needed) and starts a fresh GoToSocial in its own temp dir on a free loopback
// port, creates and promotes an admin before the server starts, waits until it is ready, obtains
// an admin user token through the OAuth out-of-band flow, and registers t.Cleanup to stop it.
// If the binary cannot be built or found it calls t.Fatal (never t.Skip: these tests must run
// in CI). If the test fails, the cleanup logs the last 50 lines of the server's log.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	begin := time.Now()
	in := Binary(t)
	built := time.Since(begin)

	s := &Server{
		Dir:           t.TempDir(),
		install:       in,
		AdminUsername: "admin",
		AdminEmail:    "admin@example.org",
		AdminPassword: "Adm1n-" + randomHex(12) + "-Pass!",
	}
	s.LogFile = filepath.Join(s.Dir, "gotosocial.log")

	mail, err := newMailSink()
	if err != nil {
		t.Fatalf("gotosocial: %v", err)
	}
	s.mail = mail
	t.Cleanup(mail.Close)

	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("gotosocial: last lines of %s:\n%s", s.LogFile, s.LogTail(50))
		}
	})

	// The free port is found by listening on :0 and closing; another process may grab it before
	// GoToSocial binds it. Then the whole setup is redone (the port is baked into the db).
	const attempts = 3
	for attempt := 1; ; attempt++ {
		err := s.launch(opts)
		if err == nil {
			break
		}
		if attempt < attempts && strings.Contains(s.LogTail(20), "address already in use") {
			t.Logf("gotosocial: port %s taken, retrying: %v", s.Host, err)
			s.stop()
			if err := s.reset(); err != nil {
				t.Fatalf("gotosocial: %v", err)
			}
			continue
		}
		t.Fatalf("gotosocial: starting %s in %s: %v (its log follows)", in.Binary, s.Dir, err)
	}
	ready := time.Since(begin)

	s.AdminToken = s.Token(t, "read write admin")
	t.Logf("gotosocial: %s ready at %s (binary %s, server up %s, admin token %s; dir %s)",
		Version, s.URL, built.Round(time.Millisecond), (ready - built).Round(time.Millisecond),
		(time.Since(begin) - ready).Round(time.Millisecond), s.Dir)
	return s
}

// launch writes the config, creates the admin and starts the server, waiting until it is ready.
func (s *Server) launch(opts Options) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	s.Host = "localhost:" + strconv.Itoa(port)
	s.URL = "http://" + s.Host
	cfg := filepath.Join(s.Dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte(s.config(port, opts)), 0o600); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(s.Dir, "storage"), 0o700); err != nil {
		return err
	}
	logf, err := os.OpenFile(s.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close() // the child keeps its own descriptor

	// Admin accounts must be created and promoted before the server starts: the CLI writes the
	// database behind a running server's caches. `create` makes a confirmed, approved user.
	for _, args := range [][]string{
		{"admin", "account", "create", "--username", s.AdminUsername, "--email", s.AdminEmail, "--password", s.AdminPassword},
		{"admin", "account", "promote", "--username", s.AdminUsername},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
		cmd := s.command(ctx, cfg, args...)
		cmd.Stdout, cmd.Stderr = logf, logf
		fmt.Fprintf(logf, "### gotosocial %s\n", strings.Join(args[:3], " "))
		err := cmd.Run()
		cancel()
		if err != nil {
			return fmt.Errorf("gotosocial %s: %w", strings.Join(args[:3], " "), err)
		}
	}

	fmt.Fprintf(logf, "### gotosocial server start\n")
	cmd := s.command(context.Background(), cfg, "server", "start")
	cmd.Stdout, cmd.Stderr = logf, logf
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		return err
	}
	s.cmd = cmd
	s.exited = make(chan struct{})
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()

	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	ctx, stop := contextUntil(ctx, s.exited)
	defer stop()
	if err := WaitReady(ctx, s.URL); err != nil {
		select {
		case <-s.exited:
			return fmt.Errorf("server exited before it was ready: %v", s.waitErr)
		default:
			return err
		}
	}
	return nil
}

func (s *Server) command(ctx context.Context, cfg string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, s.install.Binary, append([]string{"--config-path", cfg}, args...)...)
	cmd.Dir = s.Dir
	cmd.Env = childEnv(filepath.Join(s.install.CacheDir, "wazero"))
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// childEnv is the environment without GTS_* settings (they would override config.yaml), plus a
// persistent WebAssembly compilation cache, which takes most of the start-up time off later runs.
func childEnv(wazeroCache string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "GTS_") && !strings.HasPrefix(kv, "GTS_WAZERO_COMPILATION_CACHE=") {
			continue
		}
		env = append(env, kv)
	}
	if os.Getenv("GTS_WAZERO_COMPILATION_CACHE") == "" && os.MkdirAll(wazeroCache, 0o755) == nil {
		env = append(env, "GTS_WAZERO_COMPILATION_CACHE="+wazeroCache)
	}
	return env
}

func (s *Server) config(port int, opts Options) string {
	q := strconv.Quote
	rateLimit := 0
	if opts.RateLimit {
		rateLimit = 300
	}
	throttling := 0
	if opts.Throttling {
		throttling = 8
	}
	logLevel := opts.LogLevel
	if logLevel == "" {
		logLevel = "info"
	}
	mail := s.mail.Addr()
	lines := []string{
		"# written by github.com/fediops/fediops/shared/testsupport/gotosocial",
		"host: " + q(s.Host),
		"protocol: \"http\"",
		"bind-address: \"127.0.0.1\"",
		"port: " + strconv.Itoa(port),
		"db-type: \"sqlite\"",
		"db-address: " + q(filepath.Join(s.Dir, "sqlite.db")),
		"storage-backend: \"local\"",
		"storage-local-base-path: " + q(filepath.Join(s.Dir, "storage")),
		"web-template-base-dir: " + q(s.install.TemplateDir+string(filepath.Separator)),
		"web-asset-base-dir: " + q(s.install.AssetDir+string(filepath.Separator)),
		"letsencrypt-enabled: false",
		"accounts-registration-open: true",
		"accounts-reason-required: true",
		"advanced-rate-limit-requests: " + strconv.Itoa(rateLimit),
		"advanced-throttling-multiplier: " + strconv.Itoa(throttling),
		"media-ffmpeg-pool-size: 1",
		"log-level: " + q(logLevel),
		"log-client-ip: true",
		"smtp-host: " + q(mail.IP.String()),
		"smtp-port: " + strconv.Itoa(mail.Port),
		"smtp-from: \"gotosocial@localhost\"",
		"smtp-disclose-recipients: true",
	}
	return strings.Join(lines, "\n") + "\n"
}

// reset empties Dir for another launch attempt.
func (s *Server) reset() error {
	entries, err := os.ReadDir(s.Dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Name() == filepath.Base(s.LogFile) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(s.Dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// stop terminates the server: SIGTERM, then SIGKILL after 15 s.
func (s *Server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.exited:
	default:
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(15 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
	}
	s.cmd = nil
}

// Running reports whether the server process is still running.
func (s *Server) Running() bool {
	if s.cmd == nil {
		return false
	}
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// LogTail returns the last n lines of the server's log (stdout and stderr, plus the admin CLI
// runs before it).
func (s *Server) LogTail(n int) string {
	b, err := os.ReadFile(s.LogFile)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return lastLines(string(b), n)
}

// Mails returns every message GoToSocial has sent so far, oldest first.
func (s *Server) Mails() []Mail { return s.mail.Mails() }

// WaitMail waits up to 30 s for a message that match accepts (already received ones included)
// and returns it; it calls t.Fatal on timeout.
func (s *Server) WaitMail(t testing.TB, match func(Mail) bool) Mail {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := s.mail.Wait(ctx, match)
	if err != nil {
		t.Fatalf("gotosocial: waiting for mail: %v", err)
	}
	return m
}

// WaitReady polls baseURL's GET /readyz, then GET /api/v1/instance, until both answer 200 or
// ctx is done. It needs no *http.Client from the caller.
func WaitReady(ctx context.Context, baseURL string) error {
	client := &http.Client{Timeout: 5 * time.Second}
	baseURL = strings.TrimRight(baseURL, "/")
	var last error
	for _, path := range []string{"/readyz", "/api/v1/instance"} {
		for {
			last = get200(ctx, client, baseURL+path)
			if last == nil {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s not ready: %w (last error: %v)", baseURL, ctx.Err(), last)
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	return nil
}

func get200(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// contextUntil returns a context that is also cancelled when done is closed.
func contextUntil(parent context.Context, done <-chan struct{}) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	go func() {
		select {
		case <-done:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

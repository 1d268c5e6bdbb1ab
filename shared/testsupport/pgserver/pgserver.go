// Package pgserver starts throw-away PostgreSQL servers from the machine's own PostgreSQL
// installation (Debian's postgresql package: /usr/lib/postgresql/<major>/bin), for tests
// and for `fediops demo`: initdb into a fresh temporary directory, a server on a free loopback
// port with no Unix socket and no fsync, stopped and removed by Stop.
//
// PostgreSQL refuses to run as root. When the caller is root (CI runs as root), the server
// runs as the "postgres" system user that the Debian package creates (or the user named by
// FEDIOPS_POSTGRES_USER).
//
// Environment:
//
//	FEDIOPS_POSTGRES_BIN       directory holding initdb and postgres (default: the newest
//	                           /usr/lib/postgresql/*/bin, then $PATH)
//	FEDIOPS_POSTGRES_USER      the user to run as when root (default postgres)
//	FEDIOPS_REQUIRE_POSTGRES   when set (scripts/test.sh sets it), StartT fails instead of
//	                           skipping when no server can be started
package pgserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// AdminUser is the bootstrap superuser of every server.
const AdminUser = "fediops_admin"

// Server is a running throw-away PostgreSQL.
type Server struct {
	Addr          string // 127.0.0.1:PORT
	AdminPassword string
	Dir           string // data directory's parent; removed by Stop
	Version       string // e.g. "15.18"

	cmd      *exec.Cmd
	exited   chan struct{}
	logFile  string
	stopOnce sync.Once
}

// ErrUnavailable says that no PostgreSQL server can be started here.
var ErrUnavailable = errors.New("no PostgreSQL server binaries found")

// Find returns the directory holding initdb and postgres.
func Find() (string, error) {
	if d := os.Getenv("FEDIOPS_POSTGRES_BIN"); d != "" {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err != nil {
			return "", fmt.Errorf("FEDIOPS_POSTGRES_BIN=%s: %w", d, err)
		}
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return majorOf(dirs[i]) > majorOf(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
				return d, nil
			}
		}
	}
	if p, err := exec.LookPath("postgres"); err == nil {
		if _, err := exec.LookPath("initdb"); err == nil {
			return filepath.Dir(p), nil
		}
	}
	return "", fmt.Errorf("%w (install Debian's postgresql package: apt-get install postgresql)", ErrUnavailable)
}

func majorOf(bindir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(bindir)))
	return n
}

// runAs returns the uid and gid to run PostgreSQL as: -1 when not root.
func runAs() (int, int, string, error) {
	if os.Geteuid() != 0 {
		return -1, -1, "", nil
	}
	name := os.Getenv("FEDIOPS_POSTGRES_USER")
	if name == "" {
		name = "postgres"
	}
	u, err := user.Lookup(name)
	if err != nil {
		return 0, 0, "", fmt.Errorf("running as root, PostgreSQL must run as another user, and user %q does not exist (it comes with Debian's postgresql package; or set FEDIOPS_POSTGRES_USER): %w", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return uid, gid, name, nil
}

// Start initialises and starts a server in a new temporary directory.
func Start(ctx context.Context) (*Server, error) {
	bin, err := Find()
	if err != nil {
		return nil, err
	}
	uid, gid, _, err := runAs()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "fediops-pg-")
	if err != nil {
		return nil, err
	}
	s := &Server{Dir: dir, AdminPassword: randomHex(12), exited: make(chan struct{})}
	fail := func(err error) (*Server, error) {
		s.Stop()
		return nil, err
	}
	// The server's user must reach its directory (MkdirTemp makes it 0700 for us).
	if err := os.Chmod(dir, 0o755); err != nil {
		return fail(err)
	}
	data := filepath.Join(dir, "data")
	pwfile := filepath.Join(dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(s.AdminPassword+"\n"), 0o600); err != nil {
		return fail(err)
	}
	if uid >= 0 {
		for _, p := range []string{dir, pwfile} {
			if err := os.Chown(p, uid, gid); err != nil {
				return fail(fmt.Errorf("give %s to the postgres user: %w", p, err))
			}
		}
	}
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", AdminUser,
		"--pwfile="+pwfile, "-A", "scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync")
	initdb.Dir = dir
	setProcAttr(initdb, uid, gid)
	if out, err := initdb.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("initdb: %w\n%s", err, out))
	}
	if out, err := exec.CommandContext(ctx, filepath.Join(bin, "postgres"), "--version").Output(); err == nil {
		f := strings.Fields(string(out))
		if len(f) > 0 {
			s.Version = f[len(f)-1]
		}
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			return fail(err)
		}
		if err := s.launch(ctx, bin, data, port, uid, gid); err != nil {
			lastErr = err
			continue
		}
		return s, nil
	}
	return fail(lastErr)
}

func (s *Server) launch(ctx context.Context, bin, data string, port, uid, gid int) error {
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	s.logFile = filepath.Join(s.Dir, "postgres.log")
	logf, err := os.OpenFile(s.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", data,
		"-c", "listen_addresses=127.0.0.1", "-c", "port="+strconv.Itoa(port),
		"-c", "unix_socket_directories=", "-c", "fsync=off", "-c", "max_connections=30",
		"-c", "shared_buffers=16MB", "-c", "log_min_messages=warning")
	cmd.Dir = s.Dir
	cmd.Stdout, cmd.Stderr = logf, logf
	setProcAttr(cmd, uid, gid)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	s.cmd = cmd
	s.exited = make(chan struct{})
	go func() { _ = cmd.Wait(); close(s.exited) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := s.Admin(ctx, "postgres")
		if err == nil {
			_ = conn.Close(ctx)
			return nil
		}
		select {
		case <-s.exited:
			s.cmd = nil
			return fmt.Errorf("postgres exited: %s", s.Log())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres did not accept connections within 30s: %v\n%s", err, s.Log())
		}
	}
}

// Log returns the tail of the server's log.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.logFile)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return strings.Join(lines, "\n")
}

// Stop shuts the server down (fast shutdown) and removes its directory.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		if s.cmd != nil && s.cmd.Process != nil {
			_ = s.cmd.Process.Signal(syscall.SIGINT)
			select {
			case <-s.exited:
			case <-time.After(15 * time.Second):
				_ = s.cmd.Process.Kill()
				<-s.exited
			}
		}
		if s.Dir != "" {
			_ = os.RemoveAll(s.Dir)
		}
	})
}

// Admin connects to database as the superuser.
func (s *Server) Admin(ctx context.Context, database string) (*pgx.Conn, error) {
	host, port, _ := net.SplitHostPort(s.Addr)
	cfg, err := pgx.ParseConfig("")
	if err != nil {
		return nil, err
	}
	p, _ := strconv.Atoi(port)
	cfg.Host, cfg.Port = host, uint16(p)
	cfg.User, cfg.Password, cfg.Database = AdminUser, s.AdminPassword, database
	cfg.TLSConfig, cfg.Fallbacks = nil, nil
	cfg.ConnectTimeout = 5 * time.Second
	return pgx.ConnectConfig(ctx, cfg)
}

// CreateDatabase creates database.
func (s *Server) CreateDatabase(ctx context.Context, database string) error {
	conn, err := s.Admin(ctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{database}.Sanitize())
	return err
}

// CreateReader creates a login role that may read every table (pg_read_all_data, PostgreSQL
// 14 and later) and write nothing, the grant the runbook gives the drill's IAM user.
func (s *Server) CreateReader(ctx context.Context, role, password string) error {
	conn, err := s.Admin(ctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	id := pgx.Identifier{role}.Sanitize()
	if _, err := conn.Exec(ctx, "CREATE ROLE "+id+" LOGIN PASSWORD "+quoteLiteral(password)); err != nil {
		return err
	}
	_, err = conn.Exec(ctx, "GRANT pg_read_all_data TO "+id)
	return err
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// StartT starts a server for a test and stops it when the test ends. When no server can be
// started it skips the test, with the reason, unless FEDIOPS_REQUIRE_POSTGRES is set (as
// scripts/test.sh does after installing PostgreSQL): then it fails.
func StartT(t testing.TB) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := Start(ctx)
	if err != nil {
		if os.Getenv("FEDIOPS_REQUIRE_POSTGRES") == "" {
			t.Skipf("SKIPPED: cannot start a throw-away PostgreSQL server: %v (scripts/test.sh installs it and requires it)", err)
		}
		t.Fatalf("cannot start a throw-away PostgreSQL server: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("postgres log:\n%s", s.Log())
		}
		s.Stop()
	})
	return s
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

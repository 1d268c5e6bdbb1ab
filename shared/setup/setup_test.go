package setup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"github.com/creack/pty"
	"google.golang.org/api/googleapi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fediops/fediops/shared/clock"
	"github.com/fediops/fediops/shared/config"
	"github.com/fediops/fediops/shared/pubsubmsg"
	"github.com/fediops/fediops/shared/run"
)

func TestNewLoggerLevels(t *testing.T) {
	for _, lvl := range []string{"", "info", "debug", "warning", "warn", "error", "ERROR"} {
		if _, err := NewLogger(Params{LogOutput: &bytes.Buffer{}, LogLevel: lvl}, nil); err != nil {
			t.Errorf("%q: %v", lvl, err)
		}
	}
	if _, err := NewLogger(Params{LogOutput: &bytes.Buffer{}, LogLevel: "loud"}, nil); err == nil {
		t.Error("unknown level accepted")
	}
	if _, err := NewLogger(Params{LogOutput: &bytes.Buffer{}, LogFormat: "yaml"}, nil); err == nil {
		t.Error("unknown format accepted")
	}
}

// TestLogFormat: FEDIOPS_LOG_FORMAT chooses the format for the CLI; the deployed functions
// write JSON lines whatever it says, even to a terminal.
func TestLogFormat(t *testing.T) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer ptmx.Close()
	defer tty.Close()
	go io.Copy(io.Discard, ptmx)
	tests := []struct {
		name     string
		p        Params
		wantJSON bool
	}{
		{"CLI, pipe", Params{}, true},
		{"CLI, text", Params{LogFormat: "text"}, false},
		{"deployed, text asked", Params{LogFormat: "text", Deployed: true}, true},
		{"CLI, terminal", Params{LogOutput: tty}, false},
		{"CLI, terminal, json", Params{LogOutput: tty, LogFormat: "json"}, true},
		{"deployed, terminal", Params{LogOutput: tty, Deployed: true}, true},
	}
	for _, tt := range tests {
		var b bytes.Buffer
		if tt.p.LogOutput == nil {
			tt.p.LogOutput = &b
		}
		log, err := NewLogger(tt.p, nil)
		if err != nil {
			t.Fatal(err)
		}
		h := log.Handler()
		if _, isJSON := h.(*slog.JSONHandler); isJSON != tt.wantJSON {
			t.Errorf("%s: handler %T, want JSON %v", tt.name, h, tt.wantJSON)
		}
	}
	p := ParamsFromEnv(func(k string) string { return map[string]string{"FEDIOPS_LOG_FORMAT": "json", "NO_COLOR": "1"}[k] }, nil)
	if p.LogFormat != "json" || !p.NoColor {
		t.Errorf("params = %+v", p)
	}
}

// TestOpenArchive: [archive] is required where the archive is opened, not by commands that
// do without it; FediBlockHole's default directory is named in a WARNING.
func TestOpenArchive(t *testing.T) {
	dir := t.TempDir()
	noArchive := filepath.Join(dir, "no-archive.toml")
	if err := os.WriteFile(noArchive, []byte("[triage]\ndry_run = true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	_, err := Open(context.Background(), Params{ConfigLocation: noArchive, LogOutput: &logs})
	var ce *config.Error
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "archive.url: is required") || !run.IsPermanent(err) {
		t.Errorf("archive missing: %v", err)
	}
	env, err := Open(context.Background(), Params{ConfigLocation: noArchive, LogOutput: &logs, NoArchive: true})
	if err != nil || env.Store != nil || env.Config == nil {
		t.Errorf("NoArchive: %v", err)
	}
	fbh := filepath.Join(dir, "fbh.toml")
	if err := os.WriteFile(fbh, []byte("blocklist_url_sources = []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cwd, _ := os.Getwd()
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	defer os.Chdir(cwd)
	logs.Reset()
	env, err = Open(context.Background(), Params{ConfigLocation: fbh, LogOutput: &logs})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	want := filepath.Join(dir, config.DefaultFBHArchive)
	if !strings.Contains(logs.String(), "archiving in the local directory "+want) || strings.Count(logs.String(), "\n") != 1 {
		t.Errorf("the default archive is not named once:\n%s", logs.String())
	}
	if got := env.Store.Location("x"); !strings.Contains(got, config.DefaultFBHArchive) {
		t.Errorf("store at %s", got)
	}
}

func TestTimeout(t *testing.T) {
	tests := []struct {
		env  string
		want time.Duration
		warn bool
	}{
		{"240s", 240 * time.Second, false},
		{"540", 540 * time.Second, false},
		{"1m30s", 90 * time.Second, false},
		{"", DefaultTimeout, true},
		{"soon", DefaultTimeout, true},
		{"-5s", DefaultTimeout, true},
	}
	for _, tt := range tests {
		got, err := Timeout(func(string) string { return tt.env })
		if got != tt.want || (err != nil) != tt.warn {
			t.Errorf("FEDIOPS_TIMEOUT=%q: %v, %v; want %v (warning %v)", tt.env, got, err, tt.want, tt.warn)
		}
	}
}

// TestInvoke covers how an event's outcome maps to the Pub/Sub acknowledgement.
func TestInvoke(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "fediops.toml")
	if err := os.WriteFile(cfg, []byte("[archive]\nurl = \""+filepath.Join(dir, "archive")+"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("[archive]\nurl = \"s3://x\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"FEDIOPS_CONFIG": cfg, "FEDIOPS_TIMEOUT": "240s"}
	type opts struct {
		DryRun bool `json:"dry_run"`
	}
	tests := []struct {
		name    string
		body    string
		age     time.Duration
		env     map[string]string
		runErr  error
		wantErr bool
		wantRun bool
		log     string
	}{
		{name: "ok", body: `{"dry_run":true}`, wantRun: true},
		{name: "transient error is returned", runErr: errors.New("503"), wantErr: true, wantRun: true, log: "Pub/Sub will redeliver"},
		{name: "permanent error is acknowledged", runErr: run.MarkPermanent(errors.New("bad instance")), wantRun: true, log: "bad instance"},
		{name: "a held lease is redelivered, logged as a WARNING", runErr: run.Stop(run.LeaseHeld, errors.New("another run holds the triage lease")), wantErr: true, wantRun: true, log: `"severity":"WARNING","message":"run postponed`},
		{name: "secret manager unavailable is redelivered", runErr: fmt.Errorf("token: %w", status.Error(codes.Unavailable, "connection refused")), wantErr: true, wantRun: true, log: "Pub/Sub will redeliver"},
		{name: "secret not found is acknowledged", runErr: fmt.Errorf("token: %w", status.Error(codes.NotFound, "secret version not found")), wantRun: true, log: "a retry cannot fix this"},
		{name: "invalid message is acknowledged", body: `{"dryrun":true}`, log: "invalid Pub/Sub message"},
		{name: "stale event is dropped", age: 2 * time.Hour, log: "stale event"},
		{name: "missing configuration is acknowledged", env: map[string]string{"FEDIOPS_CONFIG": filepath.Join(dir, "missing.toml")}, log: "cannot start"},
		{name: "invalid configuration is acknowledged", env: map[string]string{"FEDIOPS_CONFIG": bad}, log: "cannot start"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			e := env
			if tt.env != nil {
				e = tt.env
			}
			inv := Invocation{Getenv: func(k string) string { return e[k] }, LogOutput: &logs}
			ran := false
			var o opts
			err := inv.Invoke(context.Background(), pubsubmsg.NewEvent("1", "t", []byte(tt.body), time.Now().Add(-tt.age)), "test", "triage", &o,
				func(ctx context.Context, env *Env) error {
					ran = true
					// FEDIOPS_TIMEOUT=240s less its margin (24s).
					if left, ok := clock.Remaining(ctx, env.Clock); !ok || left > 216*time.Second || left < 200*time.Second {
						t.Errorf("deadline from FEDIOPS_TIMEOUT not applied: %v", left)
					}
					if !env.Deployed {
						t.Error("a function's environment is not marked deployed")
					}
					return tt.runErr
				})
			if (err != nil) != tt.wantErr || ran != tt.wantRun {
				t.Errorf("err = %v, ran = %v", err, ran)
			}
			if tt.log != "" && (!strings.Contains(logs.String(), tt.log) || !strings.Contains(logs.String(), `"severity"`)) {
				t.Errorf("log lacks %q:\n%s", tt.log, logs.String())
			}
			if tt.name == "ok" && !o.DryRun {
				t.Error("options not decoded")
			}
		})
	}
}

// TestInvokeWarnsAboutOtherSections: a function runs with problems in a section it does not
// use, logging one WARNING that names it; its own section's problems are its job's business.
func TestInvokeWarnsAboutOtherSections(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "fediops.toml")
	if err := os.WriteFile(cfg, []byte("[archive]\nurl = \""+filepath.Join(dir, "archive")+"\"\n[backup]\ncolour = 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	check := func(name string) SectionCheck {
		return func(c *config.Config) error {
			var v struct{}
			return c.Section(name, &v)
		}
	}
	inv := Invocation{Getenv: func(k string) string { return map[string]string{"FEDIOPS_CONFIG": cfg, "FEDIOPS_TIMEOUT": "60s"}[k] },
		LogOutput: &logs, Sections: map[string]SectionCheck{"triage": check("triage"), "backup": check("backup")}}
	ran := false
	err := inv.Invoke(context.Background(), pubsubmsg.NewEvent("1", "t", nil, time.Now()), "approve", "triage", &struct{}{},
		func(context.Context, *Env) error { ran = true; return nil })
	if err != nil || !ran {
		t.Fatalf("err = %v, ran = %v", err, ran)
	}
	if n := strings.Count(logs.String(), `"severity":"WARNING"`); n != 1 || !strings.Contains(logs.String(), "[backup] has problems") ||
		!strings.Contains(logs.String(), "backup.colour: unknown key") {
		t.Errorf("want one WARNING naming [backup]:\n%s", logs.String())
	}
}

// TestClassifyLoad: a configuration that is missing or invalid needs a person; one that
// could not be read because of an outage is worth a retry.
func TestClassifyLoad(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want run.Class
	}{
		{"missing file", &config.ReadError{Location: "/x", Err: os.ErrNotExist}, run.Permanent},
		{"missing object", &config.ReadError{Location: "gs://b/x", Err: storage.ErrObjectNotExist}, run.Permanent},
		{"storage 503", &config.ReadError{Location: "gs://b/x", Err: &googleapi.Error{Code: 503}}, run.Transient},
		{"storage 403", &config.ReadError{Location: "gs://b/x", Err: &googleapi.Error{Code: 403}}, run.Permanent},
		{"timeout", &config.ReadError{Location: "gs://b/x", Err: context.DeadlineExceeded}, run.Transient},
		{"invalid", &config.Error{Problems: []config.Problem{{Msg: "bad"}}}, run.Permanent},
	}
	for _, tt := range tests {
		if got := run.ClassOf(classifyLoad(tt.err)); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

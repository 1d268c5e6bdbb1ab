package setup

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fediops/fediops/shared/clock"
	"github.com/fediops/fediops/shared/pubsubmsg"
)

func TestNewLoggerLevels(t *testing.T) {
	for _, lvl := range []string{"", "info", "debug", "warning", "warn", "error", "ERROR"} {
		if _, err := NewLogger(&bytes.Buffer{}, lvl, nil); err != nil {
			t.Errorf("%q: %v", lvl, err)
		}
	}
	if _, err := NewLogger(&bytes.Buffer{}, "loud", nil); err == nil {
		t.Error("unknown level accepted")
	}
}

func TestDeadline(t *testing.T) {
	fc := clock.NewFake(time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC))
	ctx := Deadline(context.Background(), fc, 9*time.Minute)
	if left, ok := clock.Remaining(ctx, fc); !ok || left != 9*time.Minute {
		t.Errorf("logical deadline: %v %v", left, ok)
	}
	real, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	if Deadline(real, fc, time.Minute) != real {
		t.Error("an existing deadline was replaced")
	}
}

// TestInvoke covers how an event's outcome maps to the Pub/Sub acknowledgement.
func TestInvoke(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "fediops.toml")
	if err := os.WriteFile(cfg, []byte("[archive]\nurl = \""+filepath.Join(dir, "archive")+"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"FEDIOPS_CONFIG": cfg, "CLOUD_RUN_TIMEOUT_SECONDS": "60"}
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
		{name: "permanent error is acknowledged", runErr: Permanent(errors.New("bad instance")), wantRun: true, log: "bad instance"},
		{name: "invalid message is acknowledged", body: `{"dryrun":true}`, log: "invalid Pub/Sub message"},
		{name: "stale event is dropped", age: 2 * time.Hour, log: "stale event"},
		{name: "bad configuration is acknowledged", env: map[string]string{"FEDIOPS_CONFIG": filepath.Join(dir, "missing.toml")}, log: "cannot start"},
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
			err := inv.Invoke(context.Background(), pubsubmsg.NewEvent("1", "t", []byte(tt.body), time.Now().Add(-tt.age)), "test", &o,
				func(ctx context.Context, env *Env) error {
					ran = true
					if left, ok := clock.Remaining(ctx, env.Clock); !ok || left > time.Minute {
						t.Errorf("deadline from CLOUD_RUN_TIMEOUT_SECONDS not applied: %v", left)
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

package backupaudit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/fediops/fediops/shared/archive"
	"github.com/fediops/fediops/shared/run"
	"github.com/fediops/fediops/shared/setup"
)

// Message is what a Pub/Sub message to BackupAudit may carry: an empty body or {} runs the
// audit of the configuration; {"drill": "start"} starts a restore drill of every
// [[backup.cloudsql]] entry with drill = true (the monthly schedule), {"drill": "advance"}
// moves drills in progress on (every 10 minutes; it returns at once when none is). Unknown
// options are refused like everywhere.
type Message struct {
	Drill string `json:"drill,omitempty"`
}

// Handler is the BackupAudit CloudEvent function.
type Handler struct {
	Invocation setup.Invocation
}

// Handle runs the backup audit for a Pub/Sub messagePublished event.
func (h Handler) Handle(ctx context.Context, e event.Event) error {
	var msg Message
	return h.Invocation.Invoke(ctx, e, "backupaudit", "backup", &msg, func(ctx context.Context, env *setup.Env) error {
		switch msg.Drill {
		case "":
			_, _, err := RunConfigured(ctx, env)
			return err
		case DrillStart, DrillAdvance:
			_, err := RunDrill(ctx, env, msg.Drill, DrillOptions{})
			return err
		}
		return run.MarkPermanent(fmt.Errorf(`backup audit: unknown drill action %q in the message (use "start" or "advance")`, msg.Drill))
	})
}

// ReportKey is the archive key of an audit report.
func ReportKey(t time.Time, runID string) string {
	t = t.UTC()
	return fmt.Sprintf("backup/%s/%s-%s.json", t.Format("2006/01/02"), t.Format("20060102T150405.000000Z"), runID)
}

// RunConfigured audits what env's configuration lists, archives the report (one object per
// run) and logs one line per failing check at ERROR, per warning at WARNING, and a summary.
// Failing checks are findings, not errors: only a report that cannot be archived is an error
// (worth a retry).
func RunConfigured(ctx context.Context, env *setup.Env) (Report, string, error) {
	return RunConfiguredWith(ctx, env, AuditOptions{})
}

// RunConfiguredWith is RunConfigured with options (the CLI's --dry-run).
func RunConfiguredWith(ctx context.Context, env *setup.Env, o AuditOptions) (Report, string, error) {
	b, err := LoadSection(env.Config)
	if err != nil {
		return Report{}, "", run.MarkPermanent(err)
	}
	if len(b.CloudSQL)+len(b.Buckets)+len(b.GKE) == 0 {
		return Report{}, "", run.MarkPermanent(errors.New("backup audit: [backup] lists nothing to audit (add [[backup.cloudsql]], [[backup.bucket]] or [[backup.gke]])"))
	}
	r := RunWith(ctx, env.Clock, b, o)
	LogReport(env.Log, r)
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return r, "", err
	}
	key := ReportKey(env.Clock.Now(), setup.RunID(env.Clock.Now()))
	if err := env.Store.Create(context.WithoutCancel(ctx), key, append(data, '\n')); err != nil && !errors.Is(err, archive.ErrExists) {
		return r, "", fmt.Errorf("backup audit: archive the report: %w", err)
	}
	return r, env.Store.Location(key), nil
}

// LogReport writes one line per failing (ERROR) or warning (WARNING) check and a summary.
func LogReport(log *slog.Logger, r Report) {
	LogChecks(log, r.Checks)
	log.Log(context.Background(), r.Status().level(), fmt.Sprintf("backup audit: %d pass, %d warn, %d fail", r.Summary.Pass, r.Summary.Warn, r.Summary.Fail),
		"pass", r.Summary.Pass, "warn", r.Summary.Warn, "fail", r.Summary.Fail)
}

// LogChecks writes one line per failing (ERROR) or warning (WARNING) check.
func LogChecks(log *slog.Logger, checks []Check) {
	for _, c := range checks {
		if c.Status != Fail && c.Status != Warn {
			continue
		}
		log.Log(context.Background(), c.Status.level(), fmt.Sprintf("backup check %s on %s: %s: observed %s, expected %s. Fix: %s",
			c.ID, c.Target, c.Status, c.Observed, c.Expected, c.Hint),
			"check", c.ID, "target", c.Target, "status", string(c.Status), "observed", c.Observed, "expected", c.Expected, "hint", c.Hint)
	}
}

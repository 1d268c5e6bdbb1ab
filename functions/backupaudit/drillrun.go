package backupaudit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"cloud.google.com/go/cloudsqlconn"
	"golang.org/x/oauth2"

	"github.com/fediops/fediops/shared/gcpbackup"
	"github.com/fediops/fediops/shared/mastodondb"
	"github.com/fediops/fediops/shared/run"
	"github.com/fediops/fediops/shared/setup"
)

// Drill actions, as a Pub/Sub message or the CLI ask for them.
const (
	DrillStart   = "start"   // start a drill of every drill-enabled instance (monthly)
	DrillAdvance = "advance" // advance drills in progress (every 10 minutes); at once when none
	DrillStatus  = "status"  // report the drills' state, from the archive only
)

// DrillOptions adjust RunDrill (the demo and tests).
type DrillOptions struct {
	// Poll is the pause between two looks at a clone (DefaultDrillPoll).
	Poll time.Duration
	// ConnectorOptions are added to the Cloud SQL connector's (tests and the demo: where the
	// fake instances' proxies are).
	ConnectorOptions []cloudsqlconn.Option
}

// DrillOutcome is what one drill-enabled instance's drill did in this run.
type DrillOutcome struct {
	Target DrillTarget
	State  DrillState
	Exists bool  // a drill was ever started
	Held   bool  // another invocation holds the drill's lease: nothing was done
	Err    error // what went wrong, if anything
}

// RunDrill performs action on the drill of every [[backup.cloudsql]] entry with drill = true.
// A drill in progress is advanced by start too; status reads the archive only. Failures
// inside a drill are its checks; the returned error is for the archive or the lease (a
// transient failure: the next advance continues) or the configuration (permanent).
func RunDrill(ctx context.Context, env *setup.Env, action string, o DrillOptions) ([]DrillOutcome, error) {
	b, err := LoadSection(env.Config)
	if err != nil {
		return nil, run.MarkPermanent(err)
	}
	targets := DrillTargetsFrom(b)
	if len(targets) == 0 {
		if action == DrillAdvance {
			env.Log.Debug("restore drill: no [[backup.cloudsql]] entry has drill = true")
			return nil, nil
		}
		return nil, run.MarkPermanent(errors.New("restore drill: no [[backup.cloudsql]] entry has drill = true"))
	}
	c := gcpbackup.New(ClientConfig(b))
	defer c.Close()
	d := &Driller{
		SQL:    c,
		Open:   openDatabase(env, b, o),
		Store:  env.Store,
		Clock:  env.Clock,
		Log:    env.Log,
		Holder: setup.RunID(env.Clock.Now()),
		Poll:   o.Poll,
	}
	var out []DrillOutcome
	var errs []error
	for _, t := range targets {
		oc := DrillOutcome{Target: t}
		switch action {
		case DrillStatus:
			oc.State, oc.Exists, oc.Err = d.Status(ctx, t)
		case DrillStart:
			oc.State, oc.Err = d.Start(ctx, t)
			oc.Exists = true
		case DrillAdvance:
			oc.State, oc.Err = d.Advance(ctx, t)
			oc.Exists = oc.State.Phase != ""
		default:
			return nil, run.MarkPermanent(fmt.Errorf("restore drill: unknown action %q (use start, advance or status)", action))
		}
		if reason, ok := run.ReasonOf(oc.Err); ok && reason == run.LeaseHeld {
			env.Log.Info(fmt.Sprintf("restore drill of %s: %s; nothing done", t, reason.Explain()), "drill_instance", t.String())
			oc.Held, oc.Err = true, nil
			if action == DrillStart {
				// The next advance comes by itself; a start must not be lost: Pub/Sub
				// redelivers it once the other invocation is done.
				oc.Err = run.MarkTransient(fmt.Errorf("another invocation holds the drill's lease; the start is redelivered: %s", reason.Explain()))
			}
		}
		if oc.Err != nil {
			errs = append(errs, fmt.Errorf("restore drill of %s: %w", t, oc.Err))
		}
		out = append(out, oc)
	}
	return out, errors.Join(errs...)
}

// openDatabase connects to a clone the way its [[backup.cloudsql]] entry says.
func openDatabase(env *setup.Env, b *Section, o DrillOptions) OpenDatabase {
	return func(ctx context.Context, t DrillTarget, clone gcpbackup.SQLInstance) (Database, error) {
		cfg := mastodondb.Config{
			ConnectionName: clone.ConnectionName,
			IPType:         t.IPType,
			Address:        t.Address,
			Database:       t.Database,
			User:           t.User,
		}
		// The connector asks the Cloud SQL Admin API for the clone's address and a client
		// certificate: the same endpoint as the drill's other requests. A loopback http://
		// endpoint (tests, the demo) is used without credentials, like everywhere.
		if ep := b.SQLAdminEndpoint; ep != "" {
			cfg.ConnectorOptions = append(cfg.ConnectorOptions, cloudsqlconn.WithAdminAPIEndpoint(strings.TrimRight(ep, "/")+"/"))
			if strings.HasPrefix(ep, "http://") {
				cfg.ConnectorOptions = append(cfg.ConnectorOptions, cloudsqlconn.WithTokenSource(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "unauthenticated-loopback"})))
			}
		}
		cfg.ConnectorOptions = append(cfg.ConnectorOptions, o.ConnectorOptions...)
		if t.PasswordRef != "" {
			pw, err := env.Secrets.Resolve(ctx, t.PasswordRef)
			if err != nil {
				return nil, fmt.Errorf("drill_password: %w", err)
			}
			cfg.Password = pw
		}
		if cfg.Address == "" && cfg.ConnectionName == "" {
			return nil, fmt.Errorf("the clone %s has no connection name", clone.Name)
		}
		db, err := mastodondb.Open(ctx, cfg)
		if err != nil {
			return nil, err
		}
		return db, nil
	}
}

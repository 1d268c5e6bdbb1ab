package approve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/fediops/fediops/shared/config"
	"github.com/fediops/fediops/shared/run"
	"github.com/fediops/fediops/shared/setup"
)

// Message is what a Pub/Sub message to the Approve function may carry. An empty body means
// the defaults of the configuration.
type Message struct {
	// DryRun, if set, overrides [triage] dry_run for every instance of this run.
	DryRun *bool `json:"dry_run,omitempty"`
	// Instances limits the run to these instance names.
	Instances []string `json:"instances,omitempty"`
}

// Handler is the Approve CloudEvent function.
type Handler struct {
	Invocation setup.Invocation
}

// Handle runs triage for a Pub/Sub messagePublished event.
func (h Handler) Handle(ctx context.Context, e event.Event) error {
	var msg Message
	return h.Invocation.Invoke(ctx, e, "approve", "triage", &msg, func(ctx context.Context, env *setup.Env) error {
		_, err := RunConfigured(ctx, env, msg)
		return err
	})
}

// RunConfigured runs triage on every selected instance of env's configuration, one after
// the other: a failing instance does not stop the others. The error joins the failures
// worth retrying; configuration problems are permanent.
func RunConfigured(ctx context.Context, env *setup.Env, msg Message) ([]*Result, error) {
	sec, err := LoadSection(env.Config)
	if err != nil {
		return nil, run.MarkPermanent(err)
	}
	insts, err := selectInstances(env.Config, sec, msg.Instances)
	if err != nil {
		return nil, run.MarkPermanent(err)
	}
	runID := setup.RunID(env.Clock.Now())
	lists, err := ReadLists(ctx, env, sec)
	if err != nil {
		return nil, run.MarkPermanent(err)
	}
	var results []*Result
	var errs []error
	for _, inst := range insts {
		res, err := runInstance(ctx, env, sec, lists, inst, msg, runID)
		if res != nil {
			results = append(results, res)
			if err == nil {
				logSummary(env.Log, res)
			}
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return results, errors.Join(errs...)
}

func selectInstances(cfg *config.Config, sec *Section, names []string) ([]config.Instance, error) {
	if len(names) == 0 {
		return sec.InstancesOf(cfg), nil
	}
	var out []config.Instance
	for _, n := range names {
		inst, ok := cfg.Instance(n)
		if !ok {
			return nil, fmt.Errorf("unknown instance %q in the message (configured: %v)", n, cfg.InstanceNames())
		}
		out = append(out, inst)
	}
	return out, nil
}

func runInstance(ctx context.Context, env *setup.Env, sec *Section, lists *Lists, inst config.Instance, msg Message, runID string) (*Result, error) {
	tr := sec.For(inst.Name)
	if msg.DryRun != nil {
		tr.DryRun = *msg.DryRun
	}
	rules, err := sec.RulesFor(tr, lists)
	if err != nil {
		return nil, run.MarkPermanent(fmt.Errorf("instance %s: %w", inst.Name, err))
	}
	client, err := env.Mastodon(ctx, inst)
	if err != nil {
		return nil, err // a missing secret is permanent, an unreachable Secret Manager is not
	}
	return Run(ctx, Deps{Accounts: client, EmailBlocks: client, Store: env.Store, Clock: env.Clock, Log: env.Log}, Options{
		Instance:         inst.Name,
		Rules:            rules,
		RequireConfirmed: tr.RequireConfirmedEmail,
		MaxActions:       tr.MaxActions,
		PageSize:         tr.PageSize,
		DryRun:           tr.DryRun,
		LeaseTTL:         tr.LeaseTTL,
		RunID:            runID,
		EmailBlocks:      tr.EmailBlocks,
	})
}

func logSummary(log *slog.Logger, r *Result) {
	level := slog.LevelInfo
	if r.Failed > 0 {
		level = slog.LevelError
	}
	verb := "triage done"
	if r.DryRun {
		verb = "triage dry run done (nothing changed)"
	}
	msg := fmt.Sprintf("%s on %s: %d pending, %d approved, %d rejected, %d held, %d skipped, %d failed, %d deferred",
		verb, r.Instance, r.Pending, r.Approved, r.Rejected, r.Held, r.Skipped, r.Failed, r.Deferred)
	if r.Stopped != "" {
		msg += " (stopped early: " + r.Stopped.Explain() + ")"
	}
	log.Log(context.Background(), level, msg, "instance", r.Instance, "dry_run", r.DryRun, "pending", r.Pending,
		"approved", r.Approved, "rejected", r.Rejected, "held", r.Held, "skipped", r.Skipped, "failed", r.Failed,
		"deferred", r.Deferred, "stopped", r.Stopped, "audit", r.Audit)
}

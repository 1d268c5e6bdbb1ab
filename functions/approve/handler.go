package approve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"

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
	// Accounts limits the run to these account ids of the one instance Instances names (what
	// TriageWebhook publishes): each is read and decided if it is still pending.
	Accounts []string `json:"accounts,omitempty"`
}

// TopicVar names the environment variable holding the triage topic (projects/P/topics/T):
// the webhook and the fan-out publish there.
const TopicVar = "FEDIOPS_TRIAGE_TOPIC"

// maxAccounts bounds the accounts one message may name.
const maxAccounts = 100

var accountID = regexp.MustCompile(`^[0-9A-Za-z_-]{1,64}$`)

// Handler is the Approve CloudEvent function.
type Handler struct {
	Invocation setup.Invocation
}

// Handle runs triage for a Pub/Sub messagePublished event: a scheduled tick for several
// instances fans out into one message per instance (FanOut); any other message runs.
func (h Handler) Handle(ctx context.Context, e event.Event) error {
	var msg Message
	return h.Invocation.Invoke(ctx, e, "approve", "triage", &msg, func(ctx context.Context, env *setup.Env) error {
		sec, err := LoadSection(env.Config)
		if err != nil {
			return run.MarkPermanent(err)
		}
		if done, err := FanOut(ctx, env, sec, msg); done || err != nil {
			return err
		}
		_, err = RunSection(ctx, env, sec, msg)
		return err
	})
}

// FanOut hands a scheduled run (a message naming no instance) of a configuration with more
// than one triage instance to one invocation per instance: it publishes
// {"instances": ["<name>"]} (with the message's dry_run) per instance to the triage topic and
// reports done. It does nothing with [triage] fanout = false, for a message naming instances
// or accounts, or for a single instance. Without a topic (FEDIOPS_TRIAGE_TOPIC unset) it
// warns and leaves the run to this invocation. A failed publish is returned (Pub/Sub
// redelivers the tick; a message published twice only finds decided accounts).
func FanOut(ctx context.Context, env *setup.Env, sec *Section, msg Message) (bool, error) {
	insts := sec.InstancesOf(env.Config)
	if !sec.Fanout || len(msg.Instances) > 0 || len(msg.Accounts) > 0 || len(insts) < 2 {
		return false, nil
	}
	topic, err := env.Topic(TopicVar)
	if err != nil {
		return false, err
	}
	if topic == "" {
		env.Log.Warn(fmt.Sprintf("[triage] fanout is on but %s is not set: triage runs the %d instances one after the other in this invocation", TopicVar, len(insts)))
		return false, nil
	}
	var bodies [][]byte
	var names []string
	for _, inst := range insts {
		b, err := json.Marshal(Message{DryRun: msg.DryRun, Instances: []string{inst.Name}})
		if err != nil {
			return false, err
		}
		bodies, names = append(bodies, b), append(names, inst.Name)
	}
	if _, err := env.Publisher().Publish(ctx, topic, bodies...); err != nil {
		return false, fmt.Errorf("triage fan-out: %w", err)
	}
	env.Log.Info(fmt.Sprintf("triage fanned out: one message per instance to %s (%d instances)", topic, len(names)),
		"instances", names, "topic", topic)
	return true, nil
}

// RunConfigured runs triage on every selected instance of env's configuration, one after
// the other: a failing instance does not stop the others. The error joins the failures
// worth retrying; configuration problems are permanent.
func RunConfigured(ctx context.Context, env *setup.Env, msg Message) ([]*Result, error) {
	sec, err := LoadSection(env.Config)
	if err != nil {
		return nil, run.MarkPermanent(err)
	}
	return RunSection(ctx, env, sec, msg)
}

// RunSection is RunConfigured with the section loaded.
func RunSection(ctx context.Context, env *setup.Env, sec *Section, msg Message) ([]*Result, error) {
	insts, err := selectInstances(env.Config, sec, msg)
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

func selectInstances(cfg *config.Config, sec *Section, msg Message) ([]config.Instance, error) {
	names := msg.Instances
	if len(msg.Accounts) > 0 {
		if len(names) != 1 {
			return nil, fmt.Errorf("a message with accounts must name exactly one instance (account ids are per server); it names %v", names)
		}
		if len(msg.Accounts) > maxAccounts {
			return nil, fmt.Errorf("a message may name at most %d accounts, not %d", maxAccounts, len(msg.Accounts))
		}
		for _, id := range msg.Accounts {
			if !accountID.MatchString(id) {
				return nil, fmt.Errorf("%q is not an account id", id)
			}
		}
	}
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
	res, err := Run(ctx, Deps{Accounts: client, EmailBlocks: client, Store: env.Store, Clock: env.Clock, Log: env.Log}, Options{
		Instance:         inst.Name,
		Rules:            rules,
		RequireConfirmed: tr.RequireConfirmedEmail,
		MaxActions:       tr.MaxActions,
		PageSize:         tr.PageSize,
		DryRun:           tr.DryRun,
		LeaseTTL:         tr.LeaseTTL,
		RunID:            runID,
		EmailBlocks:      tr.EmailBlocks,
		Accounts:         msg.Accounts,
	})
	if err == nil && len(msg.Accounts) > 0 && res.Stopped == run.LeaseHeld {
		// The run holding the lease may have listed the pending accounts before these signed
		// up: have Pub/Sub bring the message back rather than wait for the schedule.
		return res, run.Stop(run.LeaseHeld, fmt.Errorf("instance %s: another run holds the triage lease; account(s) %v are decided when Pub/Sub redelivers this message", inst.Name, msg.Accounts))
	}
	return res, err
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

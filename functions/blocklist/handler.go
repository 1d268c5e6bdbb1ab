package blocklist

import (
	"context"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/fediops/fediops/shared/run"
	"github.com/fediops/fediops/shared/setup"
)

// Handler is the BlocklistSync CloudEvent function.
type Handler struct {
	Invocation setup.Invocation
}

// Handle runs a blocklist sync (or applies a held plan) for a Pub/Sub messagePublished event;
// a scheduled tick for several destinations merges once and fans out into one message per
// destination (FanOut).
func (h Handler) Handle(ctx context.Context, e event.Event) error {
	var msg Message
	return h.Invocation.Invoke(ctx, e, "blocklist", "blocklist", &msg, func(ctx context.Context, env *setup.Env) error {
		b, err := LoadSection(env.Config)
		if err != nil {
			return run.MarkPermanent(err)
		}
		if done, err := FanOut(ctx, env, b, msg); done || err != nil {
			return err
		}
		_, err = RunSection(ctx, env, b, msg, RunOptions{})
		return err
	})
}

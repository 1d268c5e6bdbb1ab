package blocklist

import (
	"context"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/fediops/fediops/shared/setup"
)

// Handler is the BlocklistSync CloudEvent function.
type Handler struct {
	Invocation setup.Invocation
}

// Handle runs a blocklist sync (or applies a held plan) for a Pub/Sub messagePublished event.
func (h Handler) Handle(ctx context.Context, e event.Event) error {
	var msg Message
	return h.Invocation.Invoke(ctx, e, "blocklist", "blocklist", &msg, func(ctx context.Context, env *setup.Env) error {
		_, err := RunConfigured(ctx, env, msg, RunOptions{})
		return err
	})
}

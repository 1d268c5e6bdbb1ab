// Package publish is the Pub/Sub publishing adapter (cloud.google.com/go/pubsub/v2): the
// functions use it to hand work to a function (the webhook to Approve) or to themselves (a
// scheduled run fanning out into one message per instance).
//
// Topics are full resource names, projects/P/topics/T, as the deployment passes them in
// FEDIOPS_TRIAGE_TOPIC and FEDIOPS_BLOCKLIST_TOPIC. Every publish is bounded by a timeout;
// its failure is returned with the gRPC status intact, so shared/run classifies it (an
// outage is transient, a missing topic or permission permanent).
package publish

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/fediops/fediops/shared/domain"
	"github.com/fediops/fediops/shared/run"
)

// DefaultTimeout bounds one Publish (all its messages) unless WithTimeout says otherwise.
const DefaultTimeout = 10 * time.Second

// Publisher publishes messages; *Client implements it.
type Publisher interface {
	Publish(ctx context.Context, topic string, msgs ...[]byte) ([]string, error)
}

// Client publishes to Pub/Sub topics with the process's credentials (Application Default
// Credentials), or to an emulator endpoint.
type Client struct {
	endpoint string
	timeout  time.Duration

	mu     sync.Mutex
	client *pubsub.Client
}

// Option configures a Client.
type Option func(*Client)

// WithTimeout bounds each Publish.
func WithTimeout(d time.Duration) Option { return func(c *Client) { c.timeout = d } }

// New returns a client. endpoint "" is Pub/Sub itself; "host:port" is an emulator or the
// in-process pstest server (FEDIOPS_PUBSUB_ENDPOINT), reached without TLS or credentials.
// The connection is made on the first Publish.
func New(endpoint string, opts ...Option) *Client {
	c := &Client{endpoint: endpoint, timeout: DefaultTimeout}
	for _, o := range opts {
		o(c)
	}
	return c
}

var topicName = regexp.MustCompile(`^projects/([a-z0-9][a-z0-9.:-]{0,62}[a-z0-9]|[a-z][a-z0-9-]*)/topics/([A-Za-z][A-Za-z0-9._~%+-]{2,254})$`)

// ParseTopic checks a full topic name and returns its project.
func ParseTopic(name string) (project string, err error) {
	m := topicName.FindStringSubmatch(name)
	if m == nil {
		return "", fmt.Errorf("%q is not a Pub/Sub topic name (projects/PROJECT/topics/TOPIC)", name)
	}
	return m[1], nil
}

// ErrInvalidTopic marks a topic name that can never work (a permanent failure).
var ErrInvalidTopic = errors.New("invalid topic")

// Publish publishes msgs to topic and waits until the service has stored every one, at most
// the client's timeout or until ctx's deadline, whichever comes first; it returns their
// message ids. On error some messages may have been published: publish only what is harmless
// to publish twice. Nothing is left running when it returns.
func (c *Client) Publish(ctx context.Context, topic string, msgs ...[]byte) ([]string, error) {
	project, err := ParseTopic(topic)
	if err != nil {
		return nil, run.MarkPermanent(fmt.Errorf("%w: %v", ErrInvalidTopic, err))
	}
	cl, err := c.connect(ctx, project)
	if err != nil {
		return nil, err
	}
	timeout := c.timeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = time.Until(dl)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// A publisher per call, bounded by this call's timeout: Stop then returns within it.
	pub := cl.Publisher(topic)
	pub.PublishSettings.Timeout = timeout
	// A handful of messages per call: send them at once instead of waiting to batch more.
	pub.PublishSettings.DelayThreshold = time.Millisecond
	defer pub.Stop()
	results := make([]*pubsub.PublishResult, len(msgs))
	for i, m := range msgs {
		results[i] = pub.Publish(ctx, &pubsub.Message{Data: m})
	}
	ids := make([]string, 0, len(msgs))
	var errs []error
	for _, r := range results {
		id, err := r.Get(ctx)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ids = append(ids, id)
	}
	if len(errs) > 0 {
		return ids, fmt.Errorf("publish to %s: %d of %d message(s) failed: %w", topic, len(errs), len(msgs), errs[0])
	}
	return ids, nil
}

// connect returns the client, connecting on first use.
func (c *Client) connect(ctx context.Context, project string) (*pubsub.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.client == nil {
		cl, err := pubsub.NewClient(ctx, project, c.clientOptions()...)
		if err != nil {
			return nil, fmt.Errorf("pubsub client: %w", err)
		}
		c.client = cl
	}
	return c.client, nil
}

// clientOptions points the client at the endpoint; a loopback endpoint (pstest, an
// emulator) is used without TLS or credentials.
func (c *Client) clientOptions() []option.ClientOption {
	if c.endpoint == "" {
		return nil
	}
	opts := []option.ClientOption{option.WithEndpoint(c.endpoint)}
	if domain.IsLoopbackEndpoint(c.endpoint) {
		opts = append(opts, option.WithoutAuthentication(),
			option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	}
	return opts
}

// Close closes the connection.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.client == nil {
		return nil
	}
	err := c.client.Close()
	c.client = nil
	return err
}

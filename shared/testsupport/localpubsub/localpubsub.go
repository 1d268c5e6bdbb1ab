// Package localpubsub is an in-process Pub/Sub for running the functions together on one
// machine (fediops serve, fediops demo, the e2e tests and benchmarks): the pubsub/v2 library's
// pstest server, which the functions publish to through FEDIOPS_PUBSUB_ENDPOINT, and for each
// topic a push loop that delivers every message to a CloudEvent function's URL the way an
// Eventarc Pub/Sub trigger does: a binary-mode google.cloud.pubsub.topic.v1.messagePublished
// CloudEvent; a 2xx answer acknowledges the message, anything else has it delivered again after
// a backoff (Eventarc: 10 s growing to 600 s; here PushOptions.Backoff).
package localpubsub

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Server is the in-process Pub/Sub with its push loops.
type Server struct {
	// Addr is the gRPC endpoint (FEDIOPS_PUBSUB_ENDPOINT).
	Addr string
	// Project is the project of the topics it creates.
	Project string

	srv    *pstest.Server
	client *pubsub.Client
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu         sync.Mutex
	pushed     map[string]bool // topics with a push loop
	acked      map[string]bool // message ids
	deliveries []Delivery
	subs       int
}

// Delivery is one push of a message.
type Delivery struct {
	Topic     string
	MessageID string
	Attempt   int // 0 for the first delivery
	Status    int // 0 when the request failed
	Err       string
	Start     time.Time
	Duration  time.Duration
	Data      string
}

// Start starts a server for project ("local" when empty).
func Start(project string) (*Server, error) {
	if project == "" {
		project = "local"
	}
	srv := pstest.NewServer()
	ctx, cancel := context.WithCancel(context.Background())
	client, err := pubsub.NewClient(ctx, project, option.WithEndpoint(srv.Addr), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		cancel()
		_ = srv.Close()
		return nil, err
	}
	return &Server{Addr: srv.Addr, Project: project, srv: srv, client: client, ctx: ctx, cancel: cancel,
		pushed: map[string]bool{}, acked: map[string]bool{}}, nil
}

// Topic creates the topic id and returns its full name (projects/<project>/topics/<id>).
func (s *Server) Topic(id string) (string, error) {
	name := "projects/" + s.Project + "/topics/" + id
	if _, err := s.client.TopicAdminClient.CreateTopic(s.ctx, &pubsubpb.Topic{Name: name}); err != nil {
		return "", fmt.Errorf("create topic %s: %w", name, err)
	}
	return name, nil
}

// PushOptions configure a push loop.
type PushOptions struct {
	// Concurrency is how many deliveries run at once: the function's max instance count
	// (each instance takes one request at a time). Default 1.
	Concurrency int
	// Backoff is how long a failed delivery waits before it is delivered again. Default 1 s.
	Backoff time.Duration
	// Client sends the deliveries (default: no timeout, as the function's own deadline bounds
	// it).
	Client *http.Client
}

// Push delivers every message published to topic (a full name) from now on to url, until
// Close.
func (s *Server) Push(topic, url string, o PushOptions) error {
	if o.Concurrency <= 0 {
		o.Concurrency = 1
	}
	if o.Backoff <= 0 {
		o.Backoff = time.Second
	}
	if o.Client == nil {
		o.Client = &http.Client{}
	}
	s.mu.Lock()
	s.subs++
	sub := fmt.Sprintf("projects/%s/subscriptions/eventarc-%d", s.Project, s.subs)
	s.pushed[topic] = true
	s.mu.Unlock()
	if _, err := s.client.SubscriptionAdminClient.CreateSubscription(s.ctx, &pubsubpb.Subscription{
		Name: sub, Topic: topic, AckDeadlineSeconds: 600,
	}); err != nil {
		return fmt.Errorf("create subscription on %s: %w", topic, err)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.pushLoop(topic, sub, url, o)
	}()
	return nil
}

// pushLoop pulls one message at a time while fewer than o.Concurrency deliveries run, and
// delivers each in its own goroutine, holding it (the subscription's 600 s acknowledgement
// deadline, like Eventarc's push subscription) until the function answers. Synchronous pulls
// rather than a streaming pull: a streaming subscriber buffers messages beyond its limit, and
// pstest then delivers those again when their deadline passes, which Eventarc never does.
func (s *Server) pushLoop(topic, sub, url string, o PushOptions) {
	slots := make(chan struct{}, o.Concurrency)
	idle := time.Millisecond
	var running sync.WaitGroup
	defer running.Wait()
	for {
		select {
		case <-s.ctx.Done():
			return
		case slots <- struct{}{}:
		}
		resp, err := s.client.SubscriptionAdminClient.Pull(s.ctx, &pubsubpb.PullRequest{Subscription: sub, MaxMessages: 1, ReturnImmediately: true})
		if err != nil || len(resp.GetReceivedMessages()) == 0 {
			<-slots
			select {
			case <-s.ctx.Done():
				return
			case <-time.After(idle):
			}
			idle = min(2*idle, 10*time.Millisecond)
			continue
		}
		idle = time.Millisecond
		rm := resp.GetReceivedMessages()[0]
		running.Add(1)
		go func() {
			defer running.Done()
			defer func() { <-slots }()
			ack := []string{rm.GetAckId()}
			if s.deliver(s.ctx, topic, sub, url, o.Client, rm.GetMessage()) {
				_ = s.client.SubscriptionAdminClient.Acknowledge(s.ctx, &pubsubpb.AcknowledgeRequest{Subscription: sub, AckIds: ack})
				return
			}
			select {
			case <-s.ctx.Done():
				return
			case <-time.After(o.Backoff):
			}
			// A nack: the message is delivered again.
			_ = s.client.SubscriptionAdminClient.ModifyAckDeadline(s.ctx, &pubsubpb.ModifyAckDeadlineRequest{Subscription: sub, AckIds: ack, AckDeadlineSeconds: 0})
		}()
	}
}

// deliver posts one message as a CloudEvent and reports whether it was acknowledged.
func (s *Server) deliver(ctx context.Context, topic, sub, url string, c *http.Client, m *pubsubpb.PubsubMessage) bool {
	d := Delivery{Topic: topic, MessageID: m.GetMessageId(), Attempt: s.attempt(m.GetMessageId()), Start: time.Now(), Data: string(m.GetData())}
	status, err := post(ctx, c, url, topic, sub, m)
	d.Status, d.Duration = status, time.Since(d.Start)
	if err != nil {
		d.Err = err.Error()
	}
	ok := status >= 200 && status < 300
	s.mu.Lock()
	s.deliveries = append(s.deliveries, d)
	if ok {
		s.acked[m.GetMessageId()] = true
	}
	s.mu.Unlock()
	return ok
}

// attempt counts the earlier deliveries of a message.
func (s *Server) attempt(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, d := range s.deliveries {
		if d.MessageID == id {
			n++
		}
	}
	return n
}

// post sends m as Eventarc does (binary content mode, MessagePublishedData body).
func post(ctx context.Context, c *http.Client, url, topic, sub string, m *pubsubpb.PubsubMessage) (int, error) {
	publish := m.GetPublishTime().AsTime().UTC()
	id := m.GetMessageId()
	body, err := json.Marshal(map[string]any{
		"message": map[string]any{
			"data": m.GetData(), "attributes": m.GetAttributes(), "messageId": id, "message_id": id,
			"publishTime": publish.Format(time.RFC3339Nano), "publish_time": publish.Format(time.RFC3339Nano),
		},
		"subscription": sub,
	})
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("ce-specversion", "1.0")
	req.Header.Set("ce-id", id)
	req.Header.Set("ce-type", "google.cloud.pubsub.topic.v1.messagePublished")
	req.Header.Set("ce-source", "//pubsub.googleapis.com/"+topic)
	req.Header.Set("ce-time", publish.Format(time.RFC3339Nano))
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// Publish publishes data to topic directly (a Cloud Scheduler tick, a manual message).
func (s *Server) Publish(topic string, data []byte) string {
	return s.srv.Publish(topic, data, nil)
}

// Messages returns the messages published to topic (every topic when "").
func (s *Server) Messages(topic string) []*pstest.Message {
	var out []*pstest.Message
	for _, m := range s.srv.Messages() {
		if topic == "" || m.Topic == topic {
			out = append(out, m)
		}
	}
	return out
}

// Deliveries returns every push so far.
func (s *Server) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Delivery(nil), s.deliveries...)
}

// WaitIdle waits until every message published to a pushed topic has been acknowledged, at
// most timeout.
func (s *Server) WaitIdle(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var open []string
		s.mu.Lock()
		for _, m := range s.srv.Messages() {
			if s.pushed[m.Topic] && !s.acked[m.ID] {
				open = append(open, m.ID)
			}
		}
		s.mu.Unlock()
		if len(open) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d message(s) not acknowledged after %s: %s", len(open), timeout, strings.Join(open, ", "))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Close stops the push loops and the server.
func (s *Server) Close() error {
	s.cancel()
	s.wg.Wait()
	return errors.Join(s.client.Close(), s.srv.Close())
}

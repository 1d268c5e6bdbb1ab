package publish

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"google.golang.org/grpc/codes"

	"github.com/fediops/fediops/shared/run"
)

const topic = "projects/local/topics/fediops-triage"

func startServer(t *testing.T, opts ...pstest.ServerReactorOption) *pstest.Server {
	t.Helper()
	srv := pstest.NewServer(opts...)
	t.Cleanup(func() { _ = srv.Close() })
	if _, err := srv.GServer.CreateTopic(context.Background(), &pubsubpb.Topic{Name: topic}); err != nil {
		t.Fatal(err)
	}
	return srv
}

func TestPublishStoresEveryMessage(t *testing.T) {
	srv := startServer(t)
	c := New(srv.Addr)
	defer c.Close()
	ids, err := c.Publish(context.Background(), topic, []byte(`{"instances":["a"]}`), []byte(`{"instances":["b"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 2 {
		t.Fatalf("ids = %v", ids)
	}
	got := map[string]bool{}
	for _, m := range srv.Messages() {
		if m.Topic != topic {
			t.Errorf("message on %s", m.Topic)
		}
		got[string(m.Data)] = true
	}
	if !got[`{"instances":["a"]}`] || !got[`{"instances":["b"]}`] || len(got) != 2 {
		t.Errorf("messages = %v", got)
	}
	// The publisher is reused: a second call works on the same connection.
	if _, err := c.Publish(context.Background(), topic, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.Messages()); n != 3 {
		t.Errorf("%d messages, want 3", n)
	}
}

func TestPublishFailuresAreClassified(t *testing.T) {
	tests := []struct {
		name  string
		opts  []pstest.ServerReactorOption
		topic string
		want  run.Class
	}{
		{"missing topic", nil, "projects/local/topics/nope", run.Permanent},
		{"not a topic name", nil, "fediops-triage", run.Permanent},
		{"permission denied", []pstest.ServerReactorOption{pstest.WithErrorInjection("Publish", codes.PermissionDenied, "no")}, topic, run.Permanent},
		{"outage", []pstest.ServerReactorOption{pstest.WithErrorInjection("Publish", codes.Unavailable, "down")}, topic, run.Transient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startServer(t, tt.opts...)
			c := New(srv.Addr, WithTimeout(3*time.Second))
			defer c.Close()
			_, err := c.Publish(context.Background(), tt.topic, []byte(`{}`))
			if err == nil {
				t.Fatal("published")
			}
			if got := run.ClassOf(err); got != tt.want {
				t.Errorf("class of %v = %s, want %s", err, got, tt.want)
			}
		})
	}
}

// TestPublishIsBounded: a server that never answers costs at most the timeout, and the
// failure is worth a retry.
func TestPublishIsBounded(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			defer conn.Close() // accept and say nothing
		}
	}()
	c := New(l.Addr().String(), WithTimeout(300*time.Millisecond))
	defer c.Close()
	start := time.Now()
	_, err = c.Publish(context.Background(), topic, []byte(`{}`))
	if err == nil {
		t.Fatal("published to a silent server")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("publish took %s with a 300ms timeout", d)
	}
	if run.ClassOf(err) != run.Transient {
		t.Errorf("class of %v = %s, want transient", err, run.ClassOf(err))
	}
}

func TestParseTopic(t *testing.T) {
	for name, want := range map[string]string{
		"projects/my-project/topics/fediops-triage": "my-project",
		"projects/local/topics/fediops-blocklist":   "local",
		"fediops-triage":             "",
		"projects/p/subscriptions/s": "",
		"projects//topics/t":         "",
	} {
		got, err := ParseTopic(name)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("ParseTopic(%q) = %q, %v; want %q", name, got, err, want)
		}
		if err != nil && errors.Is(err, ErrInvalidTopic) {
			t.Errorf("ParseTopic returns the plain error; Publish marks it")
		}
	}
}

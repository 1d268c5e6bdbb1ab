// Package pubsubmsg decodes the options a Pub/Sub message carries to a fediops function. The
// function receives the message as a CloudEvent of type
// google.cloud.pubsub.topic.v1.messagePublished; its data field holds the message body, which
// is empty (defaults) or a JSON object of options. Unknown option names are errors, because a
// misspelt "dry_run" must not become a live run.
package pubsubmsg

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

// MessagePublishedType is the CloudEvent type of a Pub/Sub message.
const MessagePublishedType = "google.cloud.pubsub.topic.v1.messagePublished"

// MessagePublishedData is the CloudEvent data of a Pub/Sub message.
type MessagePublishedData struct {
	Message struct {
		Data        []byte            `json:"data"`
		Attributes  map[string]string `json:"attributes"`
		MessageID   string            `json:"messageId"`
		PublishTime time.Time         `json:"publishTime"`
	} `json:"message"`
	Subscription string `json:"subscription"`
}

// ErrInvalid marks messages that can never succeed: acknowledge them, do not retry.
var ErrInvalid = errors.New("invalid message")

// Decode reads the Pub/Sub message in e and decodes its body into opts (a pointer to a struct
// with json tags). An empty body leaves opts untouched. Every error wraps ErrInvalid.
func Decode(e event.Event, opts any) (MessagePublishedData, error) {
	var m MessagePublishedData
	if len(e.Data()) > 0 {
		if err := json.Unmarshal(e.Data(), &m); err != nil {
			return m, fmt.Errorf("%w: event data is not a Pub/Sub message: %v", ErrInvalid, err)
		}
	}
	body := bytes.TrimSpace(m.Message.Data)
	if len(body) == 0 {
		return m, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(opts); err != nil {
		return m, fmt.Errorf("%w: message body %q: %v", ErrInvalid, truncate(body, 200), err)
	}
	if dec.More() {
		return m, fmt.Errorf("%w: message body has data after the JSON object", ErrInvalid)
	}
	return m, nil
}

func truncate(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + "…"
}

// NewEvent builds a Pub/Sub messagePublished CloudEvent carrying body, as Eventarc delivers
// it (for the CLI, the local server and tests).
func NewEvent(id, topic string, body []byte, now time.Time) event.Event {
	var m MessagePublishedData
	m.Message.Data = body
	m.Message.MessageID = id
	m.Message.PublishTime = now.UTC()
	m.Subscription = "projects/local/subscriptions/" + topic
	e := event.New()
	e.SetID(id)
	e.SetSource("//pubsub.googleapis.com/projects/local/topics/" + topic)
	e.SetType(MessagePublishedType)
	e.SetTime(now.UTC())
	_ = e.SetData(event.ApplicationJSON, m)
	return e
}

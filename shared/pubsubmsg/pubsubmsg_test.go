package pubsubmsg

import (
	"errors"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

type opts struct {
	DryRun    *bool    `json:"dry_run"`
	Instances []string `json:"instances"`
}

func TestDecode(t *testing.T) {
	now := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		body    string
		wantDry *bool
		wantN   int
		wantErr bool
	}{
		{name: "empty body", body: ""},
		{name: "whitespace", body: "  \n"},
		{name: "empty object", body: "{}"},
		{name: "dry run", body: `{"dry_run": true}`, wantDry: ptr(true)},
		{name: "instances", body: `{"instances": ["a", "b"]}`, wantN: 2},
		{name: "unknown field", body: `{"dryrun": true}`, wantErr: true},
		{name: "not json", body: `dry_run`, wantErr: true},
		{name: "wrong type", body: `{"dry_run": "yes"}`, wantErr: true},
		{name: "trailing data", body: `{} {}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o opts
			m, err := Decode(NewEvent("1", "fediops-triage", []byte(tt.body), now), &o)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("err = %v, want ErrInvalid", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (o.DryRun == nil) != (tt.wantDry == nil) || (o.DryRun != nil && *o.DryRun != *tt.wantDry) || len(o.Instances) != tt.wantN {
				t.Errorf("opts = %+v", o)
			}
			if m.Message.MessageID != "1" {
				t.Errorf("message id = %q", m.Message.MessageID)
			}
		})
	}
}

func TestDecodeBadEventData(t *testing.T) {
	e := event.New()
	e.SetID("x")
	e.SetSource("s")
	e.SetType(MessagePublishedType)
	_ = e.SetData(event.ApplicationJSON, []byte("not json"))
	var o opts
	if _, err := Decode(e, &o); !errors.Is(err, ErrInvalid) {
		t.Errorf("err = %v", err)
	}
}

func ptr[T any](v T) *T { return &v }

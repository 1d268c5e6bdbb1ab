package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/fediops/fediops/functions/approve"
	"github.com/fediops/fediops/functions/backupaudit"
	"github.com/fediops/fediops/functions/blocklist"
	"github.com/fediops/fediops/shared/pubsubmsg"
)

// documentedMessages finds every `gcloud pubsub topics publish TOPIC --message='JSON'` in the
// README and docs/.
func documentedMessages(t *testing.T) map[string][]string {
	t.Helper()
	files, _ := filepath.Glob("../docs/*.md")
	files = append(files, "../README.md")
	re := regexp.MustCompile(`topics publish ([a-z0-9-]+) --message='([^']*)'`)
	out := map[string][]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			out[m[1]] = append(out[m[1]], m[2])
		}
	}
	return out
}

// TestDocumentedMessagesAreValid keeps the documented manual invocations honest: every
// message the docs tell an admin to publish decodes, strictly, into its function's options.
func TestDocumentedMessagesAreValid(t *testing.T) {
	msgs := documentedMessages(t)
	if len(msgs["fediops-triage"]) == 0 || len(msgs["fediops-blocklist"]) == 0 {
		t.Fatalf("the docs show no manual invocation for triage or blocklist: %v", msgs)
	}
	decoders := map[string]func([]byte) error{
		"fediops-triage": func(b []byte) error {
			var m approve.Message
			_, err := pubsubmsg.Decode(pubsubmsg.NewEvent("doc", "fediops-triage", b, time.Now()), &m)
			return err
		},
		"fediops-backupaudit": func(b []byte) error {
			var m backupaudit.Message
			_, err := pubsubmsg.Decode(pubsubmsg.NewEvent("doc", "fediops-backupaudit", b, time.Now()), &m)
			return err
		},
		"fediops-blocklist": func(b []byte) error {
			var m blocklist.Message
			_, err := pubsubmsg.Decode(pubsubmsg.NewEvent("doc", "fediops-blocklist", b, time.Now()), &m)
			return err
		},
	}
	for topic, bodies := range msgs {
		dec, ok := decoders[topic]
		if !ok {
			t.Errorf("the docs publish to %s, which no function listens to", topic)
			continue
		}
		for _, b := range bodies {
			if err := dec([]byte(b)); err != nil {
				t.Errorf("documented message %s %s: %v", topic, b, err)
			}
		}
	}
}

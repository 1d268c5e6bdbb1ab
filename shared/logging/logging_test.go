package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func decode(t *testing.T, b *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not a JSON line: %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func TestSeverityAndMessage(t *testing.T) {
	tests := []struct {
		log  func(*slog.Logger)
		want string
	}{
		{func(l *slog.Logger) { l.Debug("d") }, "DEBUG"},
		{func(l *slog.Logger) { l.Info("i") }, "INFO"},
		{func(l *slog.Logger) { l.Warn("w") }, "WARNING"},
		{func(l *slog.Logger) { l.Error("e") }, "ERROR"},
	}
	for _, tt := range tests {
		var b bytes.Buffer
		tt.log(New(&b, slog.LevelDebug, nil))
		lines := decode(t, &b)
		if len(lines) != 1 {
			t.Fatalf("got %d lines", len(lines))
		}
		if lines[0]["severity"] != tt.want {
			t.Errorf("severity = %v, want %s", lines[0]["severity"], tt.want)
		}
		if _, ok := lines[0]["message"].(string); !ok {
			t.Errorf("no message field: %v", lines[0])
		}
		if _, ok := lines[0]["level"]; ok {
			t.Errorf("level key should be renamed: %v", lines[0])
		}
	}
}

func TestLevelFilter(t *testing.T) {
	var b bytes.Buffer
	l := New(&b, slog.LevelInfo, nil)
	l.Debug("hidden")
	l.Info("shown")
	if lines := decode(t, &b); len(lines) != 1 || lines[0]["message"] != "shown" {
		t.Errorf("lines = %v", lines)
	}
}

func TestRedaction(t *testing.T) {
	r := NewRedactor()
	r.Add("s3cr3t-token-value")
	r.Add("ab") // too short to be a credential: ignored
	var b bytes.Buffer
	l := New(&b, slog.LevelDebug, r).With("preset", "Bearer s3cr3t-token-value")
	l.Info("token s3cr3t-token-value leaked",
		"err", errors.New("GET failed with s3cr3t-token-value"),
		slog.Group("req", "auth", "s3cr3t-token-value"),
		"short", "ab")
	out := b.String()
	if strings.Contains(out, "s3cr3t-token-value") {
		t.Fatalf("secret leaked: %s", out)
	}
	if c := strings.Count(out, "[REDACTED]"); c != 4 {
		t.Errorf("want 4 redactions, got %d: %s", c, out)
	}
	if !strings.Contains(out, `"short":"ab"`) {
		t.Errorf("short values must not be redacted: %s", out)
	}
}

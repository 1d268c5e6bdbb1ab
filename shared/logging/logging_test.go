package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
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

// TestRedactsCompositeValues: a secret inside a slice, a map, a struct or a wrapped error is
// redacted like a string.
func TestRedactsCompositeValues(t *testing.T) {
	const secret = "tok-SECRET-1234"
	red := NewRedactor()
	red.Add(secret)
	type inner struct{ Token string }
	type outer struct {
		Name   string
		Inner  inner
		Tokens []string
	}
	var b bytes.Buffer
	l := New(&b, slog.LevelInfo, red)
	l.Info("values",
		"slice", []string{"a", secret},
		"map", map[string]string{"token": secret},
		"struct", outer{Name: "x", Inner: inner{Token: secret}, Tokens: []string{secret}},
		"pointer", &inner{Token: secret},
		"wrapped", fmt.Errorf("outer: %w", fmt.Errorf("inner %s", secret)),
		"group", slog.GroupValue(slog.Any("deep", []any{map[string]any{"t": secret}})),
		"plain", 42, "clean", []int{1, 2})
	out := b.String()
	if strings.Contains(out, secret) {
		t.Fatalf("secret logged:\n%s", out)
	}
	lines := decode(t, &b)
	if got := lines[0]["clean"]; fmt.Sprint(got) != "[1 2]" {
		t.Errorf("a value without secrets changed: %v", got)
	}
	if s, _ := lines[0]["struct"].(map[string]any); s["Name"] != "x" {
		t.Errorf("struct lost its shape: %v", lines[0]["struct"])
	}
}

func TestSanitizeURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://lists.example/tier0.csv?token=SECRET", "https://lists.example/tier0.csv?token=REDACTED"},
		{"https://lists.example/x?access_token=SECRET&page=2", "https://lists.example/x?access_token=REDACTED&page=2"},
		{"https://u:SECRET@lists.example/x", "https://REDACTED@lists.example/x"},
		{"https://h/x?key=SECRET&Signature=SECRET&sig=SECRET&client_secret=SECRET", "https://h/x?Signature=REDACTED&client_secret=REDACTED&key=REDACTED&sig=REDACTED"},
		{"https://storage.googleapis.com/b/o?X-Goog-Signature=SECRET&X-Goog-Credential=SECRET", "https://storage.googleapis.com/b/o?X-Goog-Credential=REDACTED&X-Goog-Signature=REDACTED"},
		{"https://lists.example/x.csv?page=2", "https://lists.example/x.csv?page=2"},
		{"not a url", "not a url"},
	}
	for _, tt := range tests {
		if got := SanitizeURL(tt.in); got != tt.want {
			t.Errorf("SanitizeURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	msg := `fetch https://lists.example/a.csv?token=SECRET: HTTP 500; then "https://x:SECRET@h/b"`
	if got := SanitizeText(msg); strings.Contains(got, "SECRET") || !strings.Contains(got, "HTTP 500") {
		t.Errorf("SanitizeText = %q", got)
	}
	// Every log line, even without a redactor, loses URL credentials.
	var b bytes.Buffer
	New(&b, slog.LevelInfo, NewRedactor()).Error("fetch https://h/x?token=SECRET failed", "url", "https://h/x?token=SECRET")
	if strings.Contains(b.String(), "SECRET") {
		t.Errorf("URL credentials logged: %s", b.String())
	}
}

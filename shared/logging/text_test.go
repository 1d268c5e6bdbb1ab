package logging

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
)

var textLine = regexp.MustCompile(`^\d\d:\d\d:\d\d (DBG|INF|WRN|ERR) `)

func TestTextLines(t *testing.T) {
	var b bytes.Buffer
	l := NewText(&b, slog.LevelDebug, nil, false)
	type reason string
	l.Info("merged 3 source(s)", "snapshot", "2026/01/02/x", "held_plan", "", "warnings", []string(nil), "skipped", map[string]int{}, "stopped", reason(""), "failed", 0)
	l.Warn("careful")
	l.Debug("detail")
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("lines:\n%s", b.String())
	}
	for _, line := range lines {
		if !textLine.MatchString(line) || strings.HasPrefix(line, "{") || strings.Contains(line, "\x1b[") {
			t.Errorf("not a plain human line: %q", line)
		}
	}
	if !strings.Contains(lines[0], "INF merged 3 source(s) snapshot=2026/01/02/x failed=0") {
		t.Errorf("message and key=value: %q", lines[0])
	}
	for _, empty := range []string{"held_plan", "warnings", "skipped", "stopped"} {
		if strings.Contains(lines[0], empty) {
			t.Errorf("empty attribute %s shown: %q", empty, lines[0])
		}
	}
	if !strings.Contains(lines[1], "WRN careful") || !strings.Contains(lines[2], "DBG detail") {
		t.Errorf("levels: %q", lines)
	}
	var c bytes.Buffer
	NewText(&c, slog.LevelInfo, nil, true).Error("red")
	if !strings.Contains(c.String(), "\x1b[") {
		t.Errorf("colour asked for, none written: %q", c.String())
	}
}

// TestTextRedaction: the human format keeps every guarantee of the JSON one.
func TestTextRedaction(t *testing.T) {
	const secret = "tok-SECRET-1234"
	red := NewRedactor()
	red.Add(secret)
	var b bytes.Buffer
	l := NewText(&b, slog.LevelInfo, red, false).With("preset", "Bearer "+secret)
	l.Info("token "+secret+" leaked",
		"err", errors.New("GET failed with "+secret),
		"map", map[string]string{"token": secret},
		"slice", []string{"a", secret},
		slog.Group("req", "auth", secret),
		"url", "https://u:pw@lists.example/x.csv?token=URLSECRET")
	out := b.String()
	if strings.Contains(out, secret) || strings.Contains(out, "URLSECRET") || strings.Contains(out, ":pw@") {
		t.Fatalf("secret in a human line:\n%s", out)
	}
	if n := strings.Count(out, "[REDACTED]"); n != 6 {
		t.Errorf("want 6 redactions, got %d:\n%s", n, out)
	}
}

func TestParseFormat(t *testing.T) {
	for in, want := range map[string]Format{"": Auto, "auto": Auto, "JSON": JSON, "text": Text} {
		if got, err := ParseFormat(in); err != nil || got != want {
			t.Errorf("ParseFormat(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseFormat("yaml"); err == nil {
		t.Error("yaml accepted")
	}
}

// openPTY returns the terminal end of a new pseudo-terminal and a function that waits for
// the next line written to it.
func openPTY(t *testing.T) (*os.File, func() string) {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { tty.Close(); ptmx.Close() })
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(ptmx)
		for sc.Scan() {
			lines <- strings.TrimRight(sc.Text(), "\r")
		}
		close(lines)
	}()
	return tty, func() string {
		select {
		case l := <-lines:
			return l
		case <-time.After(10 * time.Second):
			t.Fatal("nothing written to the terminal")
			return ""
		}
	}
}

// TestNewLoggerChooses: text on a terminal, JSON elsewhere or when asked; colour only on a
// terminal and never with NoColor.
func TestNewLoggerChooses(t *testing.T) {
	tty, next := openPTY(t)
	if !IsTerminal(tty) || IsTerminal(&bytes.Buffer{}) {
		t.Fatal("IsTerminal is wrong")
	}
	tests := []struct {
		name      string
		tty       bool
		o         Options
		wantText  bool
		wantColor bool
	}{
		{"auto, pipe", false, Options{}, false, false},
		{"auto, terminal", true, Options{}, true, true},
		{"auto, terminal, NO_COLOR", true, Options{NoColor: true}, true, false},
		{"json on a terminal", true, Options{Format: JSON}, false, false},
		{"text on a pipe", false, Options{Format: Text}, true, false},
	}
	red := NewRedactor()
	red.Add("tok-SECRET-1234")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			var w io.Writer = &b
			if tt.tty {
				w = tty
			}
			tt.o.Redactor = red
			NewLogger(w, tt.o).Warn("hello tok-SECRET-1234", "k", "v")
			line := strings.TrimSpace(b.String())
			if tt.tty {
				line = next()
			}
			if strings.Contains(line, "SECRET") {
				t.Errorf("secret written: %q", line)
			}
			if isJSON := strings.HasPrefix(line, "{") && strings.Contains(line, `"severity":"WARNING"`); isJSON == tt.wantText {
				t.Errorf("line %q: want text %v", line, tt.wantText)
			}
			if got := strings.Contains(line, "\x1b["); got != tt.wantColor {
				t.Errorf("line %q: colour = %v, want %v", line, got, tt.wantColor)
			}
			if tt.wantText && !strings.Contains(line, "hello [REDACTED]") {
				t.Errorf("line %q", line)
			}
		})
	}
}

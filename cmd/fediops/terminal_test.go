package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/jedib0t/go-pretty/v6/text"

	"github.com/fediops/fediops/shared/clock"
	"github.com/fediops/fediops/shared/setup"
	"github.com/fediops/fediops/shared/testsupport/backupfake"
	"github.com/fediops/fediops/shared/testsupport/mastosim"
)

// terminal is a pseudo-terminal of a given width: the CLI writes to its tty end as it would
// to a person's terminal; the test reads what it shows from the other end.
type terminal struct {
	tty  *os.File
	ptmx *os.File
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
}

const endMark = "@@end-of-output@@"

func newTerminal(t *testing.T, cols int) *terminal {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 50, Cols: uint16(cols)}); err != nil {
		t.Fatal(err)
	}
	term := &terminal{tty: tty, ptmx: ptmx, done: make(chan struct{})}
	go func() {
		defer close(term.done)
		buf := make([]byte, 4096)
		for {
			n, err := ptmx.Read(buf)
			term.mu.Lock()
			term.out.Write(buf[:n])
			term.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { tty.Close(); ptmx.Close(); <-term.done })
	return term
}

// text returns everything written so far, once a mark written after it has arrived, with the
// terminal's "\r\n" turned back into "\n".
func (term *terminal) text(t *testing.T) string {
	t.Helper()
	if _, err := term.tty.WriteString(endMark + "\n"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		term.mu.Lock()
		s := term.out.String()
		term.mu.Unlock()
		if i := strings.Index(s, endMark); i >= 0 {
			term.mu.Lock()
			term.out.Reset()
			term.out.WriteString(s[i+len(endMark):])
			term.mu.Unlock()
			return strings.ReplaceAll(s[:i], "\r\n", "\n")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the terminal's output did not arrive")
	return ""
}

// visible is what a terminal shows of out: a carriage return goes back to the start of the
// line, and "erase in line" clears it.
func visible(out string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if i := strings.LastIndex(l, "\r"); i >= 0 {
			l = l[i+1:]
		}
		lines = append(lines, strings.ReplaceAll(l, "\x1b[2K", ""))
	}
	return lines
}

var ansi = regexp.MustCompile("\x1b\\[[0-9;]*m")

// runOn runs the CLI with stdout and stderr on terminals of cols columns (a side whose
// terminal is nil writes to a buffer, as when piped).
func runOn(t *testing.T, outTerm, errTerm *terminal, env map[string]string, customize func(*setup.Env), args ...string) (int, string, string) {
	t.Helper()
	var outBuf, errBuf bytes.Buffer
	var stdout, stderr io.Writer = &outBuf, &errBuf
	if outTerm != nil {
		stdout = outTerm.tty
	}
	if errTerm != nil {
		stderr = errTerm.tty
	}
	c := newCLI(stdout, stderr, func(k string) string { return env[k] })
	c.customize = customize
	code := c.run(context.Background(), args)
	gotOut, gotErr := outBuf.String(), errBuf.String()
	if outTerm != nil {
		gotOut = outTerm.text(t)
	}
	if errTerm != nil {
		gotErr = errTerm.text(t)
	}
	return code, gotOut, gotErr
}

var humanLine = regexp.MustCompile(`^\d\d:\d\d:\d\d (DBG|INF|WRN|ERR) \S`)

// logLines returns stderr's log lines (the CLI's own "fediops: ..." error line left out).
func logLines(stderr string) []string {
	var out []string
	for _, l := range visible(stderr) {
		l = ansi.ReplaceAllString(l, "")
		if strings.TrimSpace(l) != "" && !strings.HasPrefix(l, "fediops: ") {
			out = append(out, l)
		}
	}
	return out
}

// textLines start the lines of output that are not tables: a location or a snapshot id is
// not wrapped.
var textLines = regexp.MustCompile(`^(report archived at |  audit trail: |merged: \d+ entries)`)

// widest is the width of the widest table line of s.
func widest(s string) int {
	w := 0
	for _, l := range strings.Split(s, "\n") {
		if !textLines.MatchString(l) {
			w = max(w, text.StringWidthWithoutEscSequences(l))
		}
	}
	return w
}

// TestTerminalOutput: on a terminal, logs are short human lines and tables fit its width;
// piped, logs are JSON lines and every cell is whole; --wide, --json, --log-format json and
// NO_COLOR do what they say.
func TestTerminalOutput(t *testing.T) {
	cfg := backupConfig(t, backupfake.Broken(time.Now()))
	const hint = "gcloud sql instances patch mastodon-db --project=fediops-broken --enable-point-in-time-recovery --retained-transaction-log-days=7"
	out80, err80 := newTerminal(t, 80), newTerminal(t, 80)

	t.Run("terminal", func(t *testing.T) {
		code, stdout, stderr := runOn(t, out80, err80, nil, nil, "--config", cfg, "backup", "audit")
		if code != 1 || !strings.Contains(stdout, "FAIL: ") || !strings.Contains(stdout, "cloudsql.pitr_enabled") {
			t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
		}
		if w := widest(stdout); w > 80 {
			t.Errorf("a line of %d columns on an 80-column terminal:\n%s", w, stdout)
		}
		if strings.Contains(stdout, hint) {
			t.Errorf("the long hint is not wrapped:\n%s", stdout)
		}
		if !strings.Contains(stdout, "--enable-point-in-time-recovery") {
			t.Errorf("wrapped cells lost words:\n%s", stdout)
		}
		lines := logLines(stderr)
		if len(lines) == 0 {
			t.Fatal("no log lines")
		}
		for _, l := range lines {
			if !humanLine.MatchString(l) {
				t.Errorf("not a human log line: %q", l)
			}
		}
		if !strings.Contains(stderr, "\x1b[") {
			t.Error("no colour on a terminal")
		}
	})
	t.Run("piped", func(t *testing.T) {
		code, stdout, stderr := runOn(t, nil, nil, nil, nil, "--config", cfg, "backup", "audit")
		if code != 1 || !strings.Contains(stdout, hint) {
			t.Fatalf("exit %d; cells are not whole when piped:\n%s", code, stdout)
		}
		if strings.Contains(stdout+stderr, "\x1b[") {
			t.Error("escape sequences in piped output")
		}
		for _, l := range logLines(stderr) {
			if !json.Valid([]byte(l)) || !strings.Contains(l, `"severity"`) {
				t.Errorf("not a JSON log line: %q", l)
			}
		}
	})
	t.Run("--wide", func(t *testing.T) {
		code, stdout, _ := runOn(t, out80, err80, nil, nil, "--config", cfg, "--wide", "backup", "audit")
		if code != 1 || !strings.Contains(stdout, hint) || widest(stdout) <= 80 {
			t.Errorf("--wide did not print cells whole: exit %d\n%s", code, stdout)
		}
	})
	t.Run("--json", func(t *testing.T) {
		code, stdout, _ := runOn(t, out80, err80, nil, nil, "--config", cfg, "backup", "audit", "--json")
		if code != 1 || !json.Valid([]byte(strings.TrimSpace(stdout))) || !strings.Contains(stdout, hint) {
			t.Errorf("--json on a terminal is not complete JSON: exit %d\n%s", code, stdout)
		}
	})
	t.Run("--log-format json", func(t *testing.T) {
		for _, env := range []map[string]string{nil, {"FEDIOPS_LOG_FORMAT": "json"}} {
			args := []string{"--config", cfg, "backup", "audit"}
			if env == nil {
				args = append([]string{"--log-format", "json"}, args...)
			}
			_, _, stderr := runOn(t, out80, err80, env, nil, args...)
			lines := logLines(stderr)
			if len(lines) == 0 {
				t.Fatal("no log lines")
			}
			for _, l := range lines {
				if !json.Valid([]byte(l)) {
					t.Errorf("%v: not a JSON log line on a terminal: %q", env, l)
				}
			}
		}
		if code, _, stderr := runOn(t, nil, nil, nil, nil, "--config", cfg, "--log-format", "xml", "backup", "audit"); code != 2 || !strings.Contains(stderr, "xml") {
			t.Errorf("--log-format xml: exit %d %s", code, stderr)
		}
	})
	t.Run("--log-format text, piped", func(t *testing.T) {
		_, _, stderr := runOn(t, nil, nil, nil, nil, "--config", cfg, "--log-format", "text", "backup", "audit")
		for _, l := range logLines(stderr) {
			if !humanLine.MatchString(l) {
				t.Errorf("not a human line: %q", l)
			}
		}
		if strings.Contains(stderr, "\x1b[") {
			t.Error("colour on a pipe")
		}
	})
	t.Run("NO_COLOR", func(t *testing.T) {
		_, _, stderr := runOn(t, out80, err80, map[string]string{"NO_COLOR": "1"}, nil, "--config", cfg, "backup", "audit")
		if lines := logLines(stderr); len(lines) == 0 || !humanLine.MatchString(lines[0]) {
			t.Errorf("no human log lines: %q", lines)
		}
		if strings.Contains(stderr, "\x1b[") {
			t.Errorf("colour with NO_COLOR set:\n%q", stderr)
		}
	})
}

// TestTerminalTables: the triage, plan and merge tables fit the terminal and hold every cell
// whole when piped.
func TestTerminalTables(t *testing.T) {
	cfg, sim, dir := sandboxConfig(t, "")
	long := "a-rather-long-subdomain.of-a-domain-that-keeps-going.example"
	list := filepath.Join(dir, "list.csv")
	if err := os.WriteFile(list, []byte("domain,severity,public_comment\n"+long+",silence,"+
		strings.Repeat("spam and harassment reported by several moderators ", 3)+"\nshort.example,silence,x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	appendConfig(t, cfg, fmt.Sprintf("\n[blocklist]\nblocklist_url_sources = [ { url = \"file://%s\", name = \"a source with a long name that goes on and on for a while\" } ]\ninitial_import = true\ndestinations = [\"sb\"]\nimport_fields = [\"public_comment\"]\n", list))
	sim.AddAccount(mastosim.Account{Username: "a-user-with-a-very-long-name-indeed", Email: "someone@" + long, Confirmed: true})

	for _, cols := range []int{60, 100} {
		out, errT := newTerminal(t, cols), newTerminal(t, cols)
		for _, args := range [][]string{{"triage", "run", "--dry-run"}, {"blocklist", "plan"}, {"blocklist", "sync", "--dry-run"}} {
			code, stdout, stderr := runOn(t, out, errT, nil, nil, append([]string{"--config", cfg}, args...)...)
			if code != 0 {
				t.Fatalf("%v: exit %d\n%s\n%s", args, code, stdout, stderr)
			}
			// The counts line of each command is text, not a table; every table line fits.
			for _, l := range strings.Split(stdout, "\n") {
				if strings.HasPrefix(l, "  ") && !textLines.MatchString(l) && text.StringWidthWithoutEscSequences(l) > cols {
					t.Errorf("%v on %d columns: table line of %d: %q", args, cols, text.StringWidthWithoutEscSequences(l), l)
				}
			}
			var summary []string
			for _, l := range visible(stderr) {
				if l = ansi.ReplaceAllString(l, ""); l != "" && !humanLine.MatchString(l) {
					summary = append(summary, l)
				}
			}
			if args[1] == "sync" && (len(summary) == 0 || !strings.HasPrefix(summary[0], "SOURCE")) {
				t.Errorf("%v: no merge summary on stderr: %q", args, summary)
			}
			if w := widest(strings.Join(summary, "\n")); w > cols {
				t.Errorf("%v on %d columns: summary line of %d:\n%s", args, cols, w, strings.Join(summary, "\n"))
			}
		}
	}
	// Piped: whole cells, one line per row.
	_, stdout, _ := runOn(t, nil, nil, nil, nil, "--config", cfg, "blocklist", "plan")
	if !regexp.MustCompile(`(?m)^  create  ` + regexp.QuoteMeta(long) + ` +- → silence +listed by a source with a long name that goes on and on for a while$`).MatchString(stdout) {
		t.Errorf("plan row not whole:\n%s", stdout)
	}
	_, _, stderr := runOn(t, nil, nil, nil, nil, "--config", cfg, "blocklist", "merge")
	// Whole: the name, then the status (not_modified: earlier runs here read the same file).
	if !regexp.MustCompile(`a source with a long name that goes on and on for a while  (ok|not_modified) `).MatchString(stderr) {
		t.Errorf("merge summary not whole:\n%s", stderr)
	}
	_, stdout, _ = runOn(t, nil, nil, nil, nil, "--config", cfg, "triage", "run", "--dry-run")
	if !strings.Contains(stdout, "a-user-with-a-very-long-name-indeed  "+long+"  held (no rule matches "+long+")") {
		t.Errorf("triage row not whole:\n%s", stdout)
	}
}

func appendConfig(t *testing.T, cfg, extra string) {
	t.Helper()
	f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(extra); err != nil {
		t.Fatal(err)
	}
}

// TestProgress: a blocklist sync that waits for rate-limit windows shows how far it is and
// until when it waits on a terminal, without garbling the log lines; nothing of the sort
// when stderr is not a terminal.
func TestProgress(t *testing.T) {
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.Local)
	setupSync := func(t *testing.T) (string, func(*setup.Env)) {
		fake := clock.NewFake(start)
		sim := mastosim.New(mastosim.Options{Clock: fake, RateLimit: 6})
		sim.AddToken("cli-token-abcdef", "admin:read admin:write")
		srv := httptest.NewServer(sim)
		t.Cleanup(srv.Close)
		dir := t.TempDir()
		var list strings.Builder
		list.WriteString("domain,severity\n")
		for i := range 12 {
			fmt.Fprintf(&list, "spam%02d.example,silence\n", i)
		}
		if err := os.WriteFile(filepath.Join(dir, "list.csv"), []byte(list.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "token"), []byte("cli-token-abcdef"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := filepath.Join(dir, "fediops.toml")
		if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`[[instance]]
name = "sb"
url = %q
token = "file://%s"

[archive]
url = %q

[blocklist]
blocklist_url_sources = [ { url = "file://%s" } ]
initial_import = true
destinations = ["sb"]
`, srv.URL, filepath.Join(dir, "token"), filepath.Join(dir, "archive"), filepath.Join(dir, "list.csv"))), 0o600); err != nil {
			t.Fatal(err)
		}
		return cfg, func(e *setup.Env) { e.Clock = fake }
	}

	t.Run("terminal", func(t *testing.T) {
		cfg, customize := setupSync(t)
		errT := newTerminal(t, 100)
		code, stdout, stderr := runOn(t, nil, errT, nil, customize, "--config", cfg, "blocklist", "sync")
		if code != 0 || !strings.Contains(stdout, "12 created") {
			t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
		}
		for _, want := range []string{"blocklist sb: 12/12 changes applied (100%)", "changes applied", "; waiting for the rate-limit window until 12:"} {
			if !strings.Contains(stderr, want) {
				t.Errorf("progress lacks %q:\n%q", want, stderr)
			}
		}
		if !regexp.MustCompile(`waiting for the rate-limit window until \d\d:\d\d:\d\d`).MatchString(stderr) {
			t.Errorf("no HH:MM:SS in the waiting line:\n%q", stderr)
		}
		// What the terminal shows: log lines start at the left margin, whole; the status line
		// is gone at the end.
		lines := visible(stderr)
		logs := 0
		for _, l := range lines {
			l = ansi.ReplaceAllString(l, "")
			if strings.Contains(l, " INF ") || strings.Contains(l, " WRN ") || strings.Contains(l, " ERR ") {
				logs++
				if !humanLine.MatchString(l) {
					t.Errorf("a log line garbled by the progress line: %q", l)
				}
			}
		}
		if logs == 0 {
			t.Errorf("no log lines:\n%q", stderr)
		}
		if last := lines[len(lines)-1]; strings.Contains(last, "changes applied") {
			t.Errorf("the status line was left on the screen: %q", last)
		}
	})
	t.Run("--timeout", func(t *testing.T) {
		// The rate-limit window outlasts the run's deadline: it stops, and the next run goes on.
		cfg, customize := setupSync(t)
		code, stdout, stderr := runOn(t, nil, nil, nil, customize, "--config", cfg, "blocklist", "sync", "--timeout", "1m")
		if code != 0 || strings.Contains(stdout, "12 created") || !strings.Contains(stdout, "stopped: ") || strings.Contains(stdout, " 0 deferred") {
			t.Errorf("exit %d\n%s\n%s", code, stdout, stderr)
		}
	})
	t.Run("piped", func(t *testing.T) {
		cfg, customize := setupSync(t)
		code, stdout, stderr := runOn(t, nil, nil, nil, customize, "--config", cfg, "blocklist", "sync")
		if code != 0 || !strings.Contains(stdout, "12 created") {
			t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
		}
		if strings.Contains(stderr, "changes applied") || strings.Contains(stderr, "\r") || strings.Contains(stderr, "\x1b") {
			t.Errorf("progress shown without a terminal:\n%s", stderr)
		}
	})
}

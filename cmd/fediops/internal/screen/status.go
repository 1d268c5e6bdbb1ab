package screen

import (
	"io"
	"strings"
	"sync"

	"github.com/jedib0t/go-pretty/v6/text"
)

// Status is one line at the bottom of a terminal, rewritten in place as work goes on. Other
// output to the same terminal (log lines) goes through Write, which takes the line away,
// writes, and puts it back, so that neither garbles the other.
type Status struct {
	mu   sync.Mutex
	w    io.Writer
	line string // as shown, "" when none
}

// NewStatus returns a status line on w, which should be a terminal.
func NewStatus(w io.Writer) *Status { return &Status{w: w} }

// clearLine is a carriage return and ECMA-48 "erase in line" (EL 2).
const clearLine = "\r\x1b[2K"

// Set shows line in place of the previous one, shortened to the terminal's width so that it
// stays on one line.
func (s *Status) Set(line string) {
	line = clean(line)
	if w := Width(s.w); w > 1 && text.StringWidthWithoutEscSequences(line) > w-1 {
		line = text.Snip(line, w-1, "…")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if line == s.line {
		return
	}
	s.line = line
	_, _ = io.WriteString(s.w, clearLine+line)
}

// Clear takes the line away.
func (s *Status) Clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.line != "" {
		_, _ = io.WriteString(s.w, clearLine)
		s.line = ""
	}
}

// Write writes p above the status line.
func (s *Status) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.line == "" {
		return s.w.Write(p)
	}
	var b strings.Builder
	b.WriteString(clearLine)
	b.Write(p)
	if len(p) > 0 && p[len(p)-1] != '\n' {
		b.WriteByte('\n')
	}
	b.WriteString(s.line)
	if _, err := io.WriteString(s.w, b.String()); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Fd is the terminal's descriptor, so that what writes through the status line still knows
// it writes to a terminal.
func (s *Status) Fd() uintptr {
	if f, ok := s.w.(interface{ Fd() uintptr }); ok {
		return f.Fd()
	}
	return ^uintptr(0)
}

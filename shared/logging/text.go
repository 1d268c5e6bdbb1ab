package logging

import (
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strings"

	"github.com/lmittmann/tint"
	"golang.org/x/term"
)

// Format says how log lines are written.
type Format int

const (
	// Auto writes short human lines when the output is a terminal, JSON lines otherwise.
	Auto Format = iota
	// JSON writes JSON lines with Cloud Logging's severity and message (New).
	JSON
	// Text writes short human lines: time, level, message, then key=value (NewText).
	Text
)

// ParseFormat reads a format name: "auto" (or ""), "json" or "text".
func ParseFormat(s string) (Format, error) {
	switch strings.ToLower(s) {
	case "", "auto":
		return Auto, nil
	case "json":
		return JSON, nil
	case "text":
		return Text, nil
	}
	return Auto, fmt.Errorf("log format %q: use auto, json or text", s)
}

// Options choose a logger (NewLogger).
type Options struct {
	// Level is the lowest level written (nil: info).
	Level slog.Leveler
	// Redactor scrubs secrets from every line, whatever the format; may be nil.
	Redactor *Redactor
	// Format is JSON, Text, or Auto (text on a terminal, JSON otherwise).
	Format Format
	// NoColor turns colour off (NO_COLOR is set). Text lines are coloured only on a terminal.
	NoColor bool
}

// NewLogger returns the logger for w as o asks: JSON lines (New), or short human lines
// (NewText) when o.Format is Text, or Auto and w is a terminal. Colour is used only when w is a
// terminal and o.NoColor is false. Both formats keep the Redactor.
func NewLogger(w io.Writer, o Options) *slog.Logger {
	level := o.Level
	if level == nil {
		level = slog.LevelInfo
	}
	tty := IsTerminal(w)
	if o.Format == JSON || (o.Format == Auto && !tty) {
		return New(w, level, o.Redactor)
	}
	return NewText(w, level, o.Redactor, tty && !o.NoColor)
}

// NewText returns a logger writing short human lines to w: "15:04:05 INF message key=value".
// Attributes with empty values are left out. r may be nil.
func NewText(w io.Writer, level slog.Leveler, r *Redactor, color bool) *slog.Logger {
	h := tint.NewTextHandler(w, &tint.Options{Level: level, TimeFormat: "15:04:05", NoColor: !color, ReplaceAttr: dropEmpty})
	if r == nil {
		return slog.New(h)
	}
	return slog.New(&redactingHandler{inner: h, r: r})
}

// dropEmpty leaves out attributes that say nothing on a terminal line (held_plan="").
func dropEmpty(_ []string, a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch {
	case v.Kind() == slog.KindString && v.String() == "":
		return slog.Attr{}
	case v.Kind() == slog.KindAny && empty(v.Any()):
		return slog.Attr{}
	}
	return a
}

// empty reports nil, and strings (of named string types too), slices and maps without
// elements.
func empty(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Map, reflect.String:
		return rv.Len() == 0
	}
	return false
}

// IsTerminal reports whether w is a terminal (a file such as os.Stderr, or a writer that
// forwards to one and says so with Fd).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}

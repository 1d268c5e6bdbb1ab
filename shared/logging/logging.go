// Package logging writes structured logs: as JSON lines that Cloud Logging understands (the
// level is in "severity" — DEBUG, INFO, WARNING, ERROR — and the text in "message") when
// deployed or piped, and as short human lines on a terminal (NewLogger chooses). A Redactor
// scrubs secret values (instance tokens) and URL credentials from every line, in either
// format, as a last line of defence.
package logging

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
)

// New returns a logger writing JSON lines to w at level and above. r may be nil.
func New(w io.Writer, level slog.Leveler, r *Redactor) *slog.Logger {
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: replace})
	if r == nil {
		return slog.New(h)
	}
	return slog.New(&redactingHandler{inner: h, r: r})
}

// Discard returns a logger that drops everything.
func Discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func replace(groups []string, a slog.Attr) slog.Attr {
	if len(groups) > 0 {
		return a
	}
	switch a.Key {
	case slog.MessageKey:
		a.Key = "message"
	case slog.LevelKey:
		a.Key = "severity"
		a.Value = slog.StringValue(Severity(a.Value.Any().(slog.Level)))
	}
	return a
}

// Severity maps a slog level to Cloud Logging's severity names.
func Severity(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "ERROR"
	case l >= slog.LevelWarn:
		return "WARNING"
	case l >= slog.LevelInfo:
		return "INFO"
	default:
		return "DEBUG"
	}
}

// Redactor replaces registered secret values with "[REDACTED]" wherever they appear.
// It is safe for concurrent use.
type Redactor struct {
	mu      sync.RWMutex
	secrets []string
}

// NewRedactor returns an empty Redactor.
func NewRedactor() *Redactor { return &Redactor{} }

// Add registers a secret value. Values shorter than 4 bytes are ignored: redacting them would
// mangle ordinary text and they are not credentials.
func (r *Redactor) Add(secret string) {
	if r == nil || len(secret) < 4 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.secrets {
		if s == secret {
			return
		}
	}
	r.secrets = append(r.secrets, secret)
}

// Redact returns s with every registered secret replaced and the credentials of the URLs in
// it removed (SanitizeText).
func (r *Redactor) Redact(s string) string {
	s = SanitizeText(s)
	if r == nil {
		return s
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, sec := range r.secrets {
		if strings.Contains(s, sec) {
			s = strings.ReplaceAll(s, sec, "[REDACTED]")
		}
	}
	return s
}

type redactingHandler struct {
	inner slog.Handler
	r     *Redactor
}

func (h *redactingHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h *redactingHandler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, h.r.Redact(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.inner.Handle(ctx, out)
}

func (h *redactingHandler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, h.r.Redact(v.String()))
	case slog.KindGroup:
		attrs := v.Group()
		out := make([]any, 0, len(attrs))
		for _, g := range attrs {
			out = append(out, h.attr(g))
		}
		return slog.Group(a.Key, out...)
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return slog.String(a.Key, h.r.Redact(err.Error())) // the whole chain of a wrapped error
		}
		if s, ok := v.Any().(interface{ String() string }); ok {
			return slog.String(a.Key, h.r.Redact(s.String()))
		}
		return slog.Any(a.Key, h.composite(v.Any()))
	default:
		return a
	}
}

// composite redacts a slice, map or struct: it is logged as its JSON form, so the JSON form is
// what is redacted. A value that needs no redaction is logged as it is.
func (h *redactingHandler) composite(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return h.r.Redact(fmt.Sprint(v))
	}
	red := h.r.Redact(string(b))
	if red == string(b) {
		return v
	}
	var out any
	if err := json.Unmarshal([]byte(red), &out); err != nil {
		return red
	}
	return out
}

func (h *redactingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		red[i] = h.attr(a)
	}
	return &redactingHandler{inner: h.inner.WithAttrs(red), r: h.r}
}

func (h *redactingHandler) WithGroup(name string) slog.Handler {
	return &redactingHandler{inner: h.inner.WithGroup(name), r: h.r}
}

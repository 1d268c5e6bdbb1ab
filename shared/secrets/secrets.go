// Package secrets resolves secret references found in the configuration:
//
//	sm://projects/P/secrets/S/versions/V   a Secret Manager secret version (V may be "latest")
//	sm://projects/P/secrets/S              the same, version "latest"
//	env://VAR                              an environment variable
//	file:///path/to/file                   a file (surrounding whitespace is trimmed)
//
// Resolved values are cached for a while and registered with a redactor so that they can never
// appear in a log line. Error messages name the reference, never the value.
package secrets

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/fediops/fediops/shared/clock"
)

// Kind is the kind of store a reference points into.
type Kind string

// The kinds of secret references.
const (
	SecretManager Kind = "sm"
	Env           Kind = "env"
	File          Kind = "file"
)

// Ref is a parsed secret reference.
type Ref struct {
	Kind Kind
	// Name is the Secret Manager version resource name, the variable name, or the file path.
	Name string
}

func (r Ref) String() string {
	switch r.Kind {
	case SecretManager:
		return "sm://" + r.Name
	case File:
		return "file://" + r.Name
	default:
		return string(r.Kind) + "://" + r.Name
	}
}

// ErrNotReference is returned by ParseRef for a string that is not a secret reference at all
// (for instance a token pasted into the configuration).
var ErrNotReference = errors.New("not a secret reference (want sm://projects/P/secrets/S[/versions/V], env://VAR or file:///path)")

// ParseRef parses and validates a secret reference.
func ParseRef(s string) (Ref, error) {
	kind, rest, ok := strings.Cut(s, "://")
	if !ok {
		return Ref{}, ErrNotReference
	}
	switch Kind(kind) {
	case SecretManager:
		parts := strings.Split(rest, "/")
		switch {
		case len(parts) == 4 && parts[0] == "projects" && parts[2] == "secrets" && parts[1] != "" && parts[3] != "":
			return Ref{Kind: SecretManager, Name: rest + "/versions/latest"}, nil
		case len(parts) == 6 && parts[0] == "projects" && parts[2] == "secrets" && parts[4] == "versions" &&
			parts[1] != "" && parts[3] != "" && parts[5] != "":
			return Ref{Kind: SecretManager, Name: rest}, nil
		}
		return Ref{}, fmt.Errorf("secret manager reference must look like sm://projects/P/secrets/S/versions/V, got %q", s)
	case Env:
		if rest == "" || strings.ContainsAny(rest, "=/ ") {
			return Ref{}, fmt.Errorf("environment reference must look like env://VAR, got %q", s)
		}
		return Ref{Kind: Env, Name: rest}, nil
	case File:
		if !strings.HasPrefix(rest, "/") {
			return Ref{}, fmt.Errorf("file reference must be absolute (file:///path), got %q", s)
		}
		return Ref{Kind: File, Name: rest}, nil
	}
	return Ref{}, ErrNotReference
}

// Accessor reads a Secret Manager secret version by its resource name.
type Accessor interface {
	Access(ctx context.Context, name string) ([]byte, error)
}

// Redactor receives every resolved value (logging.Redactor implements it).
type Redactor interface {
	Add(secret string)
}

// Resolver resolves references. It is safe for concurrent use.
type Resolver struct {
	sm       func(ctx context.Context) (Accessor, error)
	getenv   func(string) string
	readFile func(string) ([]byte, error)
	clock    clock.Clock
	ttl      time.Duration
	redactor Redactor

	mu      sync.Mutex
	cache   map[string]cached
	smOnce  sync.Once
	smValue Accessor
	smErr   error
}

type cached struct {
	value string
	at    time.Time
}

// Option configures a Resolver.
type Option func(*Resolver)

// WithSecretManager sets how the Secret Manager accessor is obtained; it is called at most once,
// on the first sm:// reference.
func WithSecretManager(f func(ctx context.Context) (Accessor, error)) Option {
	return func(r *Resolver) { r.sm = f }
}

// WithEnv replaces os.Getenv (tests).
func WithEnv(getenv func(string) string) Option { return func(r *Resolver) { r.getenv = getenv } }

// WithClock sets the clock used for cache expiry.
func WithClock(c clock.Clock) Option { return func(r *Resolver) { r.clock = c } }

// WithTTL sets how long a resolved value is reused (default 10 minutes).
func WithTTL(d time.Duration) Option { return func(r *Resolver) { r.ttl = d } }

// WithRedactor registers every resolved value with red.
func WithRedactor(red Redactor) Option { return func(r *Resolver) { r.redactor = red } }

// NewResolver returns a Resolver.
func NewResolver(opts ...Option) *Resolver {
	r := &Resolver{
		getenv:   os.Getenv,
		readFile: os.ReadFile,
		clock:    clock.Real{},
		ttl:      10 * time.Minute,
		cache:    map[string]cached{},
		sm: func(context.Context) (Accessor, error) {
			return nil, errors.New("secret manager is not configured")
		},
	}
	for _, o := range opts {
		o(r)
	}
	return r
}

// Resolve returns the value a reference points to.
func (r *Resolver) Resolve(ctx context.Context, ref string) (string, error) {
	p, err := ParseRef(ref)
	if err != nil {
		return "", err
	}
	r.mu.Lock()
	c, ok := r.cache[ref]
	r.mu.Unlock()
	if ok && r.clock.Now().Sub(c.at) < r.ttl {
		return c.value, nil
	}
	v, err := r.fetch(ctx, p)
	if err != nil {
		return "", err
	}
	if v == "" {
		return "", fmt.Errorf("secret %s is empty", p)
	}
	if r.redactor != nil {
		r.redactor.Add(v)
	}
	r.mu.Lock()
	r.cache[ref] = cached{value: v, at: r.clock.Now()}
	r.mu.Unlock()
	return v, nil
}

func (r *Resolver) fetch(ctx context.Context, p Ref) (string, error) {
	switch p.Kind {
	case Env:
		v := r.getenv(p.Name)
		if v == "" {
			return "", fmt.Errorf("secret %s: environment variable %s is not set", p, p.Name)
		}
		return strings.TrimSpace(v), nil
	case File:
		b, err := r.readFile(localPath(runtime.GOOS, p.Name))
		if err != nil {
			return "", fmt.Errorf("secret %s: %w", p, err)
		}
		return strings.TrimSpace(string(b)), nil
	case SecretManager:
		r.smOnce.Do(func() { r.smValue, r.smErr = r.sm(ctx) })
		if r.smErr != nil {
			return "", fmt.Errorf("secret %s: %w", p, r.smErr)
		}
		// The client retries an unavailable service for up to a minute; the run's deadline
		// bounds that, so that an outage ends the run in time and the event is redelivered.
		if left, ok := clock.Remaining(ctx, r.clock); ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, max(left, time.Second))
			defer cancel()
		}
		b, err := r.smValue.Access(ctx, p.Name)
		if err != nil {
			return "", fmt.Errorf("secret %s: %w", p, err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	return "", fmt.Errorf("secret %s: unsupported kind", p)
}

// localPath is the local file a file URL's path names: the path itself, except on Windows,
// where "/C:/dir/token" (from file:///C:/dir/token) is "C:/dir/token".
func localPath(goos, urlPath string) string {
	if goos == "windows" && len(urlPath) >= 3 && urlPath[0] == '/' && urlPath[2] == ':' {
		return urlPath[1:]
	}
	return urlPath
}

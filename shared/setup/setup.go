// Package setup assembles the adapters a job needs (configuration, secrets, archive store,
// logger, Mastodon clients) from the process environment, the same way for the deployed
// functions and for the CLI.
//
// Environment variables:
//
//	FEDIOPS_CONFIG                  configuration location: a path, file:///path or gs://bucket/object
//	FEDIOPS_TIMEOUT                 the function's timeout, as deployed (--timeout); runs end before it
//	FEDIOPS_LOG_LEVEL               debug, info (default), warning or error
//	FEDIOPS_LOG_FORMAT              auto (default: human lines on a terminal, JSON otherwise), json or text;
//	                                the deployed functions always write JSON
//	NO_COLOR                        when set (not empty), human log lines have no colour
//	FEDIOPS_STORAGE_ENDPOINT        Cloud Storage JSON API endpoint (tests: fake-gcs-server)
//	FEDIOPS_SECRETMANAGER_ENDPOINT  Secret Manager gRPC endpoint host:port (tests: the fake)
//	FEDIOPS_PUBSUB_ENDPOINT         Pub/Sub gRPC endpoint host:port (tests, fediops serve: pstest)
//	FEDIOPS_TRIAGE_TOPIC            projects/P/topics/T of Approve (the webhook and fan-out publish there)
//	FEDIOPS_BLOCKLIST_TOPIC         projects/P/topics/T of BlocklistSync (fan-out publishes there)
package setup

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/storage"

	"github.com/fediops/fediops/shared/archive"
	"github.com/fediops/fediops/shared/clock"
	"github.com/fediops/fediops/shared/config"
	"github.com/fediops/fediops/shared/logging"
	"github.com/fediops/fediops/shared/mastodon"
	"github.com/fediops/fediops/shared/publish"
	"github.com/fediops/fediops/shared/run"
	"github.com/fediops/fediops/shared/secrets"
)

// Env is everything a job run needs from its surroundings.
type Env struct {
	Config   *config.Config
	Store    archive.Store
	Secrets  *secrets.Resolver
	Log      *slog.Logger
	Redactor *logging.Redactor
	Clock    clock.Clock
	// HTTPClient is used by the Mastodon clients (tests may replace it).
	HTTPClient *http.Client
	// ClientOptions are appended when building Mastodon clients (tests: fast backoff).
	ClientOptions []mastodon.Option
	// Getenv reads the process environment (FediBlockHole-style token variables).
	Getenv func(string) string
	// Deployed is set for the Cloud Functions (not the CLI): literal tokens in the
	// configuration are refused there, since every function's account can read it.
	Deployed bool

	storageEndpoint string
	storageOnce     sync.Once
	storage         *storage.Client
	storageErr      error
	pubsubEndpoint  string
	publisherOnce   sync.Once
	publisher       *publish.Client
	closers         []func() error
}

// Params say where to find things; FromGetenv fills them from the environment.
type Params struct {
	ConfigLocation string
	LogLevel       string
	// LogFormat is auto (""), json or text (logging.ParseFormat); Deployed means json.
	LogFormat string
	// NoColor turns colour off in human log lines (NO_COLOR).
	NoColor bool
	// NoArchive: the command does not use the archive (auth check); Open neither
	// requires nor opens it, and Env.Store is nil.
	NoArchive             bool
	StorageEndpoint       string
	SecretManagerEndpoint string
	PubSubEndpoint        string
	LogOutput             io.Writer
	Clock                 clock.Clock
	Getenv                func(string) string
	Deployed              bool
}

// ParamsFromEnv reads the FEDIOPS_* variables.
func ParamsFromEnv(getenv func(string) string, logOutput io.Writer) Params {
	return Params{
		ConfigLocation:        getenv("FEDIOPS_CONFIG"),
		LogLevel:              getenv("FEDIOPS_LOG_LEVEL"),
		LogFormat:             getenv("FEDIOPS_LOG_FORMAT"),
		NoColor:               getenv("NO_COLOR") != "",
		StorageEndpoint:       getenv("FEDIOPS_STORAGE_ENDPOINT"),
		SecretManagerEndpoint: getenv("FEDIOPS_SECRETMANAGER_ENDPOINT"),
		PubSubEndpoint:        getenv("FEDIOPS_PUBSUB_ENDPOINT"),
		LogOutput:             logOutput,
		Getenv:                getenv,
	}
}

// NewLogger returns the logger p asks for, writing to p.LogOutput at p.LogLevel ("" = info):
// JSON lines when deployed (exactly what Cloud Logging reads) or when the output is not a
// terminal, short human lines on a terminal; p.LogFormat forces either.
func NewLogger(p Params, r *logging.Redactor) (*slog.Logger, error) {
	var l slog.Level
	switch strings.ToLower(p.LogLevel) {
	case "", "info":
		l = slog.LevelInfo
	case "debug":
		l = slog.LevelDebug
	case "warning", "warn":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	default:
		return nil, fmt.Errorf("FEDIOPS_LOG_LEVEL %q: use debug, info, warning or error", p.LogLevel)
	}
	format, err := logging.ParseFormat(p.LogFormat)
	if err != nil {
		return nil, fmt.Errorf("FEDIOPS_LOG_FORMAT: %w", err)
	}
	if p.Deployed {
		format = logging.JSON
	}
	return logging.NewLogger(p.LogOutput, logging.Options{Level: l, Redactor: r, Format: format, NoColor: p.NoColor}), nil
}

// Open loads the configuration and opens the archive store. The logger is usable even when
// Open fails (env.Log is set first), so callers can report the failure.
func Open(ctx context.Context, p Params) (*Env, error) {
	red := logging.NewRedactor()
	e := &Env{Redactor: red, Clock: p.Clock, HTTPClient: &http.Client{}, storageEndpoint: p.StorageEndpoint,
		pubsubEndpoint: p.PubSubEndpoint, Getenv: p.Getenv, Deployed: p.Deployed}
	if e.Getenv == nil {
		e.Getenv = os.Getenv
	}
	if e.Clock == nil {
		e.Clock = clock.Real{}
	}
	log, err := NewLogger(p, red)
	if err != nil {
		fallback := p
		fallback.LogLevel, fallback.LogFormat = "", ""
		e.Log, _ = NewLogger(fallback, red)
		return e, run.MarkPermanent(err)
	}
	e.Log = log
	e.Secrets = secrets.NewResolver(
		secrets.WithEnv(e.Getenv),
		secrets.WithRedactor(red),
		secrets.WithClock(e.Clock),
		secrets.WithSecretManager(func(ctx context.Context) (secrets.Accessor, error) {
			c, err := secrets.NewSecretManager(ctx, p.SecretManagerEndpoint)
			if err != nil {
				return nil, err
			}
			e.closers = append(e.closers, c.Close)
			return c, nil
		}),
	)
	cfg, err := config.Load(ctx, p.ConfigLocation, e.readGS)
	if err != nil {
		return e, classifyLoad(err)
	}
	e.Config = cfg
	if p.NoArchive {
		return e, nil
	}
	if err := cfg.CheckArchive(); err != nil {
		return e, run.MarkPermanent(err)
	}
	if cfg.ArchiveDefaulted {
		e.Log.Warn(fmt.Sprintf("%s has no [archive]: archiving in the local directory %s (FediBlockHole's default; set [archive] url to choose)",
			cfg.File, ArchiveLocation(cfg.Archive.URL)), "archive", ArchiveLocation(cfg.Archive.URL))
	}
	store, err := archive.Open(ctx, cfg.Archive.URL, e.StorageClient)
	if err != nil {
		return e, fmt.Errorf("archive %s: %w", cfg.Archive.URL, err)
	}
	e.Store = store
	return e, nil
}

// ArchiveLocation is an archive URL as a person finds it: gs:// as it is, a local directory
// as an absolute path.
func ArchiveLocation(url string) string {
	if strings.HasPrefix(url, "gs://") {
		return url
	}
	dir := strings.TrimPrefix(url, "file://")
	if abs, err := filepath.Abs(dir); err == nil {
		return abs
	}
	return dir
}

// classifyLoad marks configuration errors: an invalid file or a missing one needs a person;
// a read that failed for any other reason (Cloud Storage 5xx, a timeout) is classified by its
// cause, so that an outage leads to a redelivery rather than a dropped run.
func classifyLoad(err error) error {
	var re *config.ReadError
	switch {
	case errors.As(err, &re) && errors.Is(re.Err, os.ErrNotExist):
		return run.MarkPermanent(err)
	case errors.As(err, &re) && errors.Is(re.Err, storage.ErrObjectNotExist):
		return run.MarkPermanent(err)
	case errors.As(err, &re):
		return err
	}
	return run.MarkPermanent(err)
}

// LoadConfig loads only the configuration named by p (no archive, no secrets).
func LoadConfig(ctx context.Context, p Params) (*config.Config, error) {
	e := &Env{storageEndpoint: p.StorageEndpoint}
	defer e.Close()
	return config.Load(ctx, p.ConfigLocation, e.readGS)
}

// StorageClient returns the Cloud Storage client, created on first use.
func (e *Env) StorageClient(ctx context.Context) (*storage.Client, error) {
	e.storageOnce.Do(func() {
		e.storage, e.storageErr = archive.NewStorageClient(ctx, e.storageEndpoint)
		if e.storageErr == nil {
			e.closers = append(e.closers, e.storage.Close)
		}
	})
	return e.storage, e.storageErr
}

// Publisher returns the Pub/Sub publisher (the process's credentials, or
// FEDIOPS_PUBSUB_ENDPOINT), connected on its first publish.
func (e *Env) Publisher() *publish.Client {
	e.publisherOnce.Do(func() {
		e.publisher = publish.New(e.pubsubEndpoint)
		e.closers = append(e.closers, e.publisher.Close)
	})
	return e.publisher
}

// Topic returns the topic named by the environment variable v (FEDIOPS_TRIAGE_TOPIC,
// FEDIOPS_BLOCKLIST_TOPIC), checked; "" when it is not set.
func (e *Env) Topic(v string) (string, error) {
	t := e.Getenv(v)
	if t == "" {
		return "", nil
	}
	if _, err := publish.ParseTopic(t); err != nil {
		return "", run.MarkPermanent(fmt.Errorf("%s: %w", v, err))
	}
	return t, nil
}

// readGS reads a gs://bucket/object.
func (e *Env) readGS(ctx context.Context, location string) ([]byte, error) {
	bucket, object, err := archive.ParseGS(location)
	if err != nil {
		return nil, err
	}
	c, err := e.StorageClient(ctx)
	if err != nil {
		return nil, err
	}
	return archive.NewGCS(c, bucket, "").Read(ctx, object)
}

// Mastodon returns a client for inst, with its token resolved.
func (e *Env) Mastodon(ctx context.Context, inst config.Instance) (*mastodon.Client, error) {
	tok, err := e.Secrets.Resolve(ctx, inst.Token)
	if err != nil {
		return nil, fmt.Errorf("instance %s: token: %w", inst.Name, err)
	}
	return e.MastodonWithToken(inst, tok)
}

// MastodonWithToken returns a client for inst with an already resolved token ("" for
// public endpoints).
func (e *Env) MastodonWithToken(inst config.Instance, token string) (*mastodon.Client, error) {
	opts := []mastodon.Option{
		mastodon.WithHTTPClient(e.HTTPClient),
		mastodon.WithClock(e.Clock),
		mastodon.WithLogger(e.Log.With("instance", inst.Name)),
	}
	if inst.RequestTimeout.Duration > 0 {
		opts = append(opts, mastodon.WithTimeout(inst.RequestTimeout.Duration))
	}
	return mastodon.New(inst.URL, token, append(opts, e.ClientOptions...)...)
}

// Close releases the clients Open created.
func (e *Env) Close() error {
	var errs []error
	for _, c := range e.closers {
		errs = append(errs, c())
	}
	return errors.Join(errs...)
}

// RunID returns a unique, sortable identifier for a run.
func RunID(now time.Time) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return now.UTC().Format("150405") + "-" + hex.EncodeToString(b)
}

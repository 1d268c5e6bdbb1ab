// Package gcpbackup reads the backup configuration and history of a Mastodon instance's
// Google Cloud resources through the official client libraries: Cloud SQL Admin
// (google.golang.org/api/sqladmin/v1), Cloud Storage (cloud.google.com/go/storage), Backup
// for GKE (cloud.google.com/go/gkebackup/apiv1, REST transport) and the GKE control plane
// (google.golang.org/api/container/v1, to find a cluster's endpoint and CA).
//
// For the restore drill it also clones, patches and deletes Cloud SQL instances, but only
// instances whose name starts with DrillPrefix: every method that changes an instance refuses
// any other name before it sends a request (see drill.go).
//
// It returns small plain structs (SQLInstance, SQLBackupRun, Bucket, GKEPlan, GKEBackup) and
// errors of type *Error, which say what kind of failure happened (permission denied, not
// found, timeout, malformed answer...) so that callers can explain it without knowing the
// client libraries. It holds no check logic.
package gcpbackup

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	gkebackup "cloud.google.com/go/gkebackup/apiv1"
	"cloud.google.com/go/storage"
	container "google.golang.org/api/container/v1"
	"google.golang.org/api/option"
	sqladmin "google.golang.org/api/sqladmin/v1"
	htransport "google.golang.org/api/transport/http"
)

// Defaults for Config.
const (
	DefaultTimeout  = 30 * time.Second
	DefaultAttempts = 3
	DefaultBackoff  = time.Second
)

// Config says where the APIs live and how patient to be.
type Config struct {
	// SQLAdminEndpoint, StorageEndpoint and GKEBackupEndpoint replace the public endpoints
	// when set (HTTP/JSON base URLs, e.g. "http://127.0.0.1:8080" or a private
	// "https://sqladmin.p.googleapis.com"). On http:// loopback URLs the clients send no
	// credentials; any other http:// URL is refused. Empty means the public Google endpoint
	// with Application Default Credentials.
	SQLAdminEndpoint  string
	StorageEndpoint   string
	GKEBackupEndpoint string
	// ContainerEndpoint replaces the GKE API (container.googleapis.com) the same way.
	ContainerEndpoint string
	// Timeout bounds each HTTP request (each page of a listing, each retry); default 30s.
	Timeout time.Duration
	// Attempts is how often a request is tried when the API answers 429, 502, 503 or 504;
	// default 3. Timeouts and other errors are not retried.
	Attempts int
	// Backoff is the pause before the first retry, doubled for each further one; default 1s.
	Backoff time.Duration
	// Options are added to every client (e.g. option.WithCredentialsFile for the CLI).
	Options []option.ClientOption
}

func (c Config) withDefaults() Config {
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Attempts <= 0 {
		c.Attempts = DefaultAttempts
	}
	if c.Backoff <= 0 {
		c.Backoff = DefaultBackoff
	}
	return c
}

// Client reads all three APIs. The underlying Google clients are created on first use, so
// a missing credential only fails the checks that need it. Client is safe for concurrent use.
type Client struct {
	cfg Config

	mu  sync.Mutex
	sql *sqladmin.Service
	gcs *storage.Client
	gke *gkebackup.BackupForGKEClient
	ctr *container.Service
}

// New returns a Client for cfg. It does no I/O.
func New(cfg Config) *Client {
	return &Client{cfg: cfg.withDefaults()}
}

// Close releases the clients that were created.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	if c.gcs != nil {
		errs = append(errs, c.gcs.Close())
		c.gcs = nil
	}
	if c.gke != nil {
		errs = append(errs, c.gke.Close())
		c.gke = nil
	}
	c.sql = nil
	c.ctr = nil
	return errors.Join(errs...)
}

func (c *Client) sqlService(ctx context.Context) (*sqladmin.Service, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sql != nil {
		return c.sql, nil
	}
	opts, err := endpointOptions(c.cfg.SQLAdminEndpoint, sqlBase)
	if err != nil {
		return nil, err
	}
	svc, err := sqladmin.NewService(context.WithoutCancel(ctx), append(opts, c.cfg.Options...)...)
	if err != nil {
		return nil, fmt.Errorf("create Cloud SQL Admin client: %w", err)
	}
	c.sql = svc
	return svc, nil
}

func (c *Client) storageClient(ctx context.Context) (*storage.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gcs != nil {
		return c.gcs, nil
	}
	opts, err := endpointOptions(c.cfg.StorageEndpoint, storageBase)
	if err != nil {
		return nil, err
	}
	sc, err := storage.NewClient(context.WithoutCancel(ctx), append(opts, c.cfg.Options...)...)
	if err != nil {
		return nil, fmt.Errorf("create Cloud Storage client: %w", err)
	}
	// Retries are done by Client.do, with the same policy for all three APIs.
	sc.SetRetry(storage.WithPolicy(storage.RetryNever))
	c.gcs = sc
	return sc, nil
}

func (c *Client) gkeClient(ctx context.Context) (*gkebackup.BackupForGKEClient, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gke != nil {
		return c.gke, nil
	}
	opts, err := endpointOptions(c.cfg.GKEBackupEndpoint, gkeBase)
	if err != nil {
		return nil, err
	}
	opts = append(opts, c.cfg.Options...)
	// The generated REST list methods (ListBackups...) build their HTTP request without the
	// call's context, so a context deadline does not stop a request that hangs. Bound every
	// request with http.Client.Timeout instead, on an HTTP client built (and authenticated)
	// the way the library would build it.
	hc, _, err := htransport.NewClient(context.WithoutCancel(ctx),
		append([]option.ClientOption{option.WithScopes(gkebackup.DefaultAuthScopes()...)}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("create Backup for GKE HTTP client: %w", err)
	}
	bounded := *hc
	bounded.Timeout = c.cfg.Timeout
	gc, err := gkebackup.NewBackupForGKERESTClient(context.WithoutCancel(ctx), append(opts, option.WithHTTPClient(&bounded))...)
	if err != nil {
		return nil, fmt.Errorf("create Backup for GKE client: %w", err)
	}
	c.gke = gc
	return gc, nil
}

func (c *Client) containerService(ctx context.Context) (*container.Service, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctr != nil {
		return c.ctr, nil
	}
	opts, err := endpointOptions(c.cfg.ContainerEndpoint, sqlBase)
	if err != nil {
		return nil, err
	}
	svc, err := container.NewService(context.WithoutCancel(ctx), append(opts, c.cfg.Options...)...)
	if err != nil {
		return nil, fmt.Errorf("create GKE API client: %w", err)
	}
	c.ctr = svc
	return svc, nil
}

// ContainerUnauthenticated reports whether the GKE API is a loopback test endpoint reached
// without credentials: the clusters it names are then test clusters, reached without a
// token too.
func (c *Client) ContainerUnauthenticated() bool {
	return strings.HasPrefix(c.cfg.ContainerEndpoint, "http://")
}

type baseKind int

const (
	sqlBase baseKind = iota
	storageBase
	gkeBase
)

// endpointOptions turns a configured base URL into client options. Each client library
// wants its base URL in a slightly different shape:
//   - sqladmin and container: "http://host/" (they resolve "v1/projects/..." against it),
//   - storage: "http://host/storage/v1/",
//   - gkebackup REST: "http://host" (it appends "/v1/projects/...").
func endpointOptions(raw string, kind baseKind) ([]option.ClientOption, error) {
	if raw == "" {
		return nil, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("endpoint %q: %w", raw, err)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("endpoint %q has no host", raw)
	}
	noAuth := false
	switch u.Scheme {
	case "https":
	case "http":
		if !IsLoopback(u.Hostname()) {
			return nil, fmt.Errorf("endpoint %q: http:// is only allowed on a loopback host", raw)
		}
		noAuth = true
	default:
		return nil, fmt.Errorf("endpoint %q: scheme must be https (or http on loopback)", raw)
	}
	base := strings.TrimRight(u.Scheme+"://"+u.Host+u.Path, "/")
	switch kind {
	case sqlBase:
		base += "/"
	case storageBase:
		if !strings.HasSuffix(base, "/storage/v1") {
			base += "/storage/v1"
		}
		base += "/"
	case gkeBase:
	}
	opts := []option.ClientOption{option.WithEndpoint(base)}
	if noAuth {
		opts = append(opts, option.WithoutAuthentication())
	}
	return opts, nil
}

// IsLoopback reports whether host (without port) is localhost or a loopback IP address.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// do runs call with a per-request timeout, retrying answers that say "try again later".
// It always returns nil or an *Error.
func (c *Client) do(ctx context.Context, api API, op, resource string, call func(ctx context.Context) error) error {
	pause := c.cfg.Backoff
	for attempt := 1; ; attempt++ {
		// Some generated REST calls ignore the context; do not even start when it is done.
		if err := ctx.Err(); err != nil {
			e := classify(api, op, resource, err)
			e.Attempts = attempt - 1
			return e
		}
		actx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
		err := call(actx)
		timedOut := errors.Is(actx.Err(), context.DeadlineExceeded) && ctx.Err() == nil
		cancel()
		if err == nil {
			return nil
		}
		e := classify(api, op, resource, err)
		if timedOut && e.Kind != KindTimeout && e.Kind != KindPermissionDenied && e.Kind != KindNotFound {
			e.Kind = KindTimeout
		}
		if e.Kind == KindTimeout && e.Message == "" {
			e.Message = fmt.Sprintf("no answer within %s", c.cfg.Timeout)
		}
		e.Attempts = attempt
		if !e.retryable() || attempt >= c.cfg.Attempts || ctx.Err() != nil {
			return e
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return e
		case <-t.C:
		}
		pause *= 2
	}
}

// setupError wraps a client construction failure.
func setupError(api API, op, resource string, err error) *Error {
	return &Error{API: api, Op: op, Resource: resource, Kind: KindSetup, Message: err.Error(), Err: err}
}

// maxPages bounds every listing so that a misbehaving server cannot keep us paging forever.
const maxPages = 200

// listPages reads a listing to its end: fetch asks for the page at token ("" for the first)
// through c.do's retries, and take consumes it and returns the next page's token ("" at the
// end). An error from take, or pagination that does not end (pageGuard), is classified.
func listPages[P any](ctx context.Context, c *Client, api API, op, res string, fetch func(ctx context.Context, token string) (P, error), take func(P) (string, error)) error {
	var guard pageGuard
	token := ""
	for {
		var page P
		err := c.do(ctx, api, op, res, func(ctx context.Context) (err error) {
			page, err = fetch(ctx, token)
			return err
		})
		if err != nil {
			return err
		}
		next, err := take(page)
		if err != nil {
			return classify(api, op, res, err)
		}
		if next == "" {
			return nil
		}
		if err := guard.next(next); err != nil {
			return classify(api, op, res, err)
		}
		token = next
	}
}

// pageGuard detects pagination that does not end.
type pageGuard struct {
	pages int
	seen  map[string]bool
}

func (g *pageGuard) next(token string) error {
	g.pages++
	if g.pages >= maxPages {
		return &malformedError{fmt.Sprintf("listing did not end after %d pages", maxPages)}
	}
	if g.seen == nil {
		g.seen = map[string]bool{}
	}
	if g.seen[token] {
		return &malformedError{fmt.Sprintf("page token %q repeated", token)}
	}
	g.seen[token] = true
	return nil
}

// malformedError reports an answer that decoded but makes no sense (bad timestamp, endless
// pagination...).
type malformedError struct{ msg string }

func (e *malformedError) Error() string { return e.msg }

// parseTime parses an RFC 3339 timestamp; "" is the zero time.
func parseTime(field, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, &malformedError{fmt.Sprintf("%s %q is not an RFC 3339 timestamp", field, s)}
	}
	return t, nil
}

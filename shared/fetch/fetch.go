// Package fetch reads published blocklists: over HTTPS (with a timeout, a size limit, a
// User-Agent and conditional GET), from local files (file://) and from Cloud Storage (gs://).
package fetch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"cloud.google.com/go/storage"

	"github.com/fediops/fediops/shared/logging"
)

// UserAgent is sent with every HTTP request.
const UserAgent = "fediops-blocklist/1.0 (+https://github.com/fediops/fediops)"

// Validators are the conditional-GET validators of a previous fetch.
type Validators struct {
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
}

// Result is a fetched document.
type Result struct {
	Data []byte
	// NotModified is set when the server answered 304 to the validators: Data is empty and
	// the caller's previous copy is current.
	NotModified bool
	Validators  Validators
	// Note, if set, is a remark for the report on how the document was read.
	Note string
}

// ErrTooLarge is returned when a document exceeds the size limit.
var ErrTooLarge = errors.New("larger than the size limit")

// StatusError is an HTTP answer other than 200 and 304.
type StatusError struct {
	URL  string // sanitised
	Code int
}

func (e *StatusError) Error() string { return fmt.Sprintf("fetch %s: HTTP %d", e.URL, e.Code) }

// Status returns the HTTP status of a StatusError in err's chain, or 0.
func Status(err error) int {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

// JSON is the Accept header FetchJSON sends: JSON-LD first (ActivityStreams and FIRES
// servers answer with it), plain JSON next.
const JSON = "application/ld+json, application/json;q=0.9"

// Fetcher reads documents. The zero value is not usable; use New.
type Fetcher struct {
	http     *http.Client
	timeout  time.Duration
	maxBytes int64
	gcs      func(context.Context) (*storage.Client, error)
	rebase   [][2]string
}

// Option configures a Fetcher.
type Option func(*Fetcher)

// WithHTTPClient sets the HTTP client.
func WithHTTPClient(c *http.Client) Option { return func(f *Fetcher) { f.http = c } }

// WithStorage sets how the Cloud Storage client is obtained (for gs:// URLs).
func WithStorage(fn func(context.Context) (*storage.Client, error)) Option {
	return func(f *Fetcher) { f.gcs = fn }
}

// WithRebase maps file:// URLs starting with old to start with new (FediBlockHole configs name
// paths of the machine they were written on).
func WithRebase(old, new string) Option {
	return func(f *Fetcher) { f.rebase = append(f.rebase, [2]string{old, new}) }
}

// New returns a Fetcher with a per-request timeout and a size limit in bytes.
func New(timeout time.Duration, maxBytes int64, opts ...Option) *Fetcher {
	f := &Fetcher{http: &http.Client{}, timeout: timeout, maxBytes: maxBytes}
	for _, o := range opts {
		o(f)
	}
	return f
}

// Rebased applies the rebase mappings to a URL.
func (f *Fetcher) Rebased(raw string) string {
	for _, r := range f.rebase {
		if strings.HasPrefix(raw, r[0]) {
			return r[1] + strings.TrimPrefix(raw, r[0])
		}
	}
	return raw
}

// Fetch reads the document at raw (https://, http://, file:// or gs://). For HTTP, v are sent
// as If-None-Match / If-Modified-Since.
func (f *Fetcher) Fetch(ctx context.Context, raw string, v Validators) (*Result, error) {
	return f.fetch(ctx, raw, v, "")
}

// FetchJSON is Fetch asking HTTP servers for JSON (Accept: JSON).
func (f *Fetcher) FetchJSON(ctx context.Context, raw string, v Validators) (*Result, error) {
	return f.fetch(ctx, raw, v, JSON)
}

func (f *Fetcher) fetch(ctx context.Context, raw string, v Validators, accept string) (*Result, error) {
	raw = f.Rebased(raw)
	if filepath.VolumeName(raw) != "" {
		return f.fetchFile(raw) // a Windows path such as C:\lists\x.csv (a rebased file URL)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", logging.SanitizeURL(raw), err)
	}
	switch u.Scheme {
	case "https", "http":
		return f.fetchHTTP(ctx, raw, v, accept)
	case "file":
		return f.fetchFile(localPath(runtime.GOOS, u.Path))
	case "gs":
		return f.fetchGCS(ctx, u.Host, strings.TrimPrefix(u.Path, "/"))
	case "":
		return f.fetchFile(raw) // a plain path (rebased file URLs may become one)
	}
	return nil, fmt.Errorf("fetch %s: unsupported scheme %q", logging.SanitizeURL(raw), u.Scheme)
}

func (f *Fetcher) fetchHTTP(ctx context.Context, raw string, v Validators, accept string) (*Result, error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", logging.SanitizeURL(raw), err)
	}
	req.Header.Set("User-Agent", UserAgent)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if v.ETag != "" {
		req.Header.Set("If-None-Match", v.ETag)
	}
	if v.LastModified != "" {
		req.Header.Set("If-Modified-Since", v.LastModified)
	}
	resp, err := f.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its message repeats the URL, credentials included
		}
		return nil, fmt.Errorf("fetch %s: %w", logging.SanitizeURL(raw), err)
	}
	defer resp.Body.Close()
	got := Validators{ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified")}
	switch {
	case resp.StatusCode == http.StatusNotModified:
		return &Result{NotModified: true, Validators: v}, nil
	case resp.StatusCode != http.StatusOK:
		return nil, &StatusError{URL: logging.SanitizeURL(raw), Code: resp.StatusCode}
	}
	if resp.ContentLength > f.maxBytes {
		return nil, fmt.Errorf("fetch %s: %d bytes: %w (%d)", logging.SanitizeURL(raw), resp.ContentLength, ErrTooLarge, f.maxBytes)
	}
	data, err := readLimited(resp.Body, f.maxBytes, resp.ContentLength)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", logging.SanitizeURL(raw), err)
	}
	return &Result{Data: data, Validators: got}, nil
}

// readLimited reads r to its end, at most max bytes. size is the expected length (-1 if
// unknown): with it the data is read into one buffer of the right size.
func readLimited(r io.Reader, max, size int64) ([]byte, error) {
	if size < 0 || size > max {
		size = 0
	}
	buf := bytes.NewBuffer(make([]byte, 0, size+bytes.MinRead))
	if _, err := buf.ReadFrom(io.LimitReader(r, max+1)); err != nil {
		return nil, err
	}
	if int64(buf.Len()) > max {
		return nil, fmt.Errorf("%w (%d bytes)", ErrTooLarge, max)
	}
	return buf.Bytes(), nil
}

func (f *Fetcher) fetchFile(path string) (*Result, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("fetch file://%s: %w", path, err)
	}
	defer fh.Close()
	size := int64(-1)
	if st, err := fh.Stat(); err == nil && st.Mode().IsRegular() {
		size = st.Size()
	}
	data, err := readLimited(fh, f.maxBytes, size)
	if err != nil {
		return nil, fmt.Errorf("fetch file://%s: %w", path, err)
	}
	return &Result{Data: data}, nil
}

func (f *Fetcher) fetchGCS(ctx context.Context, bucket, object string) (*Result, error) {
	if f.gcs == nil {
		return nil, fmt.Errorf("fetch gs://%s/%s: Cloud Storage is not configured", bucket, object)
	}
	c, err := f.gcs(ctx)
	if err != nil {
		return nil, fmt.Errorf("fetch gs://%s/%s: %w", bucket, object, err)
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	r, err := c.Bucket(bucket).Object(object).NewReader(ctx)
	if err != nil {
		return nil, fmt.Errorf("fetch gs://%s/%s: %w", bucket, object, err)
	}
	defer r.Close()
	data, err := readLimited(r, f.maxBytes, r.Attrs.Size)
	if err != nil {
		return nil, fmt.Errorf("fetch gs://%s/%s: %w", bucket, object, err)
	}
	return &Result{Data: data, Validators: Validators{ETag: fmt.Sprint(r.Attrs.Generation)}}, nil
}

// localPath is the local file a file URL's path names: the path itself, except on Windows,
// where "/C:/lists/x.csv" (from file:///C:/lists/x.csv) is "C:/lists/x.csv".
func localPath(goos, urlPath string) string {
	if goos == "windows" && len(urlPath) >= 3 && urlPath[0] == '/' && urlPath[2] == ':' {
		return urlPath[1:]
	}
	return urlPath
}

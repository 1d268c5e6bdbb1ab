// Package listsource reads the published lists a job depends on, one source at a time, the
// way a scheduled run must: it fetches a source with the validators of its last good copy,
// compares what came back with that copy, keeps the raw bytes in the archive once
// (content-addressed, create-only) and records which copy is the last good one. A source that
// cannot be read, or whose fresh data the caller refuses, falls back to its last good copy.
//
// What the bytes mean is the caller's: a Source says how to read it, how to parse bytes into
// the caller's value, and how to check fresh data against the last good copy (zero usable
// entries, a shrink, a signature).
//
// Archive layout, under a prefix such as "blocklist":
//
//	<prefix>/objects/<sha256>             raw bytes, written once (create-only)
//	<prefix>/sources/<name>-<hash>.json   the last good copy of a source (a Copy; overwritten
//	                                      with a generation check)
//
// A Copy recorded before content addressing names its bytes by any archive key (fediops kept
// them under each snapshot) and has no SHA256; it is still read.
package listsource

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/fediops/fediops/shared/archive"
	"github.com/fediops/fediops/shared/clock"
	"github.com/fediops/fediops/shared/fetch"
)

// Cache is a job's archive of sources.
type Cache struct {
	Store  archive.Store
	Prefix string // e.g. "blocklist"
	Clock  clock.Clock
}

// Copy records an archived copy of a source: the last good copy's pointer object, and what a
// run used.
type Copy struct {
	Name string `json:"name"`
	// Key is the archive key of the bytes: <prefix>/objects/<sha256>, or (copies recorded
	// before content addressing) any key.
	Key    string `json:"key"`
	SHA256 string `json:"sha256,omitempty"`
	Bytes  int    `json:"bytes,omitempty"`
	// Format and Usable are the caller's Meta of these bytes.
	Format     string           `json:"format"`
	Usable     int              `json:"usable"`
	Fetched    time.Time        `json:"fetched"`
	Validators fetch.Validators `json:"validators"`
}

// Meta is what the caller's parser says about bytes.
type Meta struct {
	Format string // how the bytes were read (parse an archived copy the same way)
	Usable int    // usable entries, for shrink checks
}

// Previous is the last good copy a Read may use: its validators for a conditional request,
// and its bytes for sources that read only what changed since.
type Previous struct {
	Copy
	data func(ctx context.Context) ([]byte, error)
}

// Data reads the previous copy's bytes from the archive.
func (p *Previous) Data(ctx context.Context) ([]byte, error) { return p.data(ctx) }

// Source is one source to read.
type Source[T any] struct {
	Name string
	// Read fetches the source; prev is nil when there is no last good copy. A result with
	// NotModified means the last good copy is current.
	Read func(ctx context.Context, prev *Previous) (*fetch.Result, error)
	// Parse turns bytes into the caller's value: fresh bytes (from is nil) or an archived
	// copy (from is its record). An error means the bytes are unusable.
	Parse func(data []byte, from *Copy) (T, Meta, error)
	// Check, if set, refuses fresh data that parsed but must not replace the last good copy
	// (nothing usable, a shrink, a bad signature); prev is nil on the first read.
	Check func(ctx context.Context, data []byte, v T, m Meta, prev *Copy) error
}

// Status is what happened to a source.
type Status string

// Statuses.
const (
	OK          Status = "ok"                          // fresh data, now the last good copy
	NotModified Status = "not_modified"                // the last good copy is current (HTTP 304, or the same bytes)
	Fallback    Status = "failed_using_last_good_copy" // the fresh read failed; the last good copy is used
	LeftOut     Status = "failed_left_out"             // the fresh read failed and there is no usable last good copy
)

// Result is the outcome of Get.
type Result[T any] struct {
	Value  T
	Status Status
	// Err says why the fresh read was not used (Fallback, LeftOut).
	Err error
	// Copy is the archived copy the value comes from (nil when left out).
	Copy *Copy
	// Stored is set when new bytes were written to the archive.
	Stored bool
	// Warning is set when the value is good but the archive could not record it (the next
	// run reads the source again).
	Warning string
	// Note is the read's remark (fetch.Result.Note) when its data was used.
	Note string
}

// ObjectKey is where bytes with this SHA-256 (hex) are kept.
func (c *Cache) ObjectKey(sum string) string { return c.Prefix + "/objects/" + sum }

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// SafeName turns a source name into a string usable in an archive key.
func SafeName(name string) string {
	s := strings.Trim(unsafeChars.ReplaceAllString(name, "_"), "_.")
	if s == "" {
		s = "source"
	}
	return s
}

// PointerKey is where the last good copy of the source named name is recorded.
func (c *Cache) PointerKey(name string) string {
	h := sha256.Sum256([]byte(name))
	return c.Prefix + "/sources/" + SafeName(name) + "-" + hex.EncodeToString(h[:4]) + ".json"
}

// ErrCorrupt is returned by Last when the record of the last good copy cannot be read.
var ErrCorrupt = errors.New("the record of the last good copy is corrupt")

// Last returns the last good copy of a source (nil if there is none) and the pointer's
// generation.
func (c *Cache) Last(ctx context.Context, name string) (*Copy, int64, error) {
	b, gen, err := c.Store.ReadVersion(ctx, c.PointerKey(name))
	if errors.Is(err, archive.ErrNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	var cp Copy
	if err := json.Unmarshal(b, &cp); err != nil || cp.Key == "" {
		return nil, gen, fmt.Errorf("%w: %s", ErrCorrupt, c.Store.Location(c.PointerKey(name)))
	}
	return &cp, gen, nil
}

// Load reads an archived copy's bytes, checking them against its SHA-256 when it has one.
func (c *Cache) Load(ctx context.Context, cp *Copy) ([]byte, error) {
	b, err := c.Store.Read(ctx, cp.Key)
	if err != nil {
		return nil, err
	}
	if cp.SHA256 != "" {
		if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != cp.SHA256 {
			return nil, fmt.Errorf("%s does not match its SHA-256: the archived copy is damaged", c.Store.Location(cp.Key))
		}
	}
	return b, nil
}

// Get reads one source: fresh if it can, else from its last good copy.
//
//   - The source is read with the last good copy's validators. HTTP 304, or bytes identical to
//     the last good copy, mean nothing changed: the copy is used and nothing is written.
//   - Fresh bytes are parsed and checked; if they pass they are stored under their SHA-256
//     (an object that exists already is the same bytes) and become the last good copy.
//   - A failed read, parse or check falls back to the last good copy, or leaves the source
//     out when there is none.
func Get[T any](ctx context.Context, c *Cache, src Source[T]) Result[T] {
	g := &get[T]{c: c, src: src}
	var err error
	g.prev, g.gen, err = c.Last(ctx, src.Name)
	switch {
	case errors.Is(err, ErrCorrupt):
		// Read the source as if for the first time; its record is replaced.
		g.res.Warning = err.Error()
	case err != nil:
		// Without the last good copy there is no shrink check: do not read the source blind.
		g.res.Status, g.res.Err = LeftOut, fmt.Errorf("cannot read the last good copy's record: %w", err)
		return g.res
	}
	var p *Previous
	if g.prev != nil {
		prev := g.prev
		p = &Previous{Copy: *prev, data: func(ctx context.Context) ([]byte, error) { return c.Load(ctx, prev) }}
	}
	got, err := src.Read(ctx, p)
	if err != nil {
		return g.fail(ctx, err)
	}
	g.res.Note = got.Note
	if got.NotModified {
		if g.prev == nil {
			return g.fail(ctx, errors.New("the server answered \"not modified\" but there is no archived copy"))
		}
		v, err := parseCopy(ctx, c, src, g.prev)
		if err != nil {
			return g.fail(ctx, fmt.Errorf("not modified, but the last good copy is unusable: %w", err))
		}
		g.res.Status, g.res.Value, g.res.Copy = NotModified, v, g.prev
		return g.res
	}
	sum := sha256.Sum256(got.Data)
	if hexSum := hex.EncodeToString(sum[:]); g.prev == nil || g.prev.SHA256 != hexSum {
		return g.fresh(ctx, got, hexSum)
	}
	return g.same(ctx, got)
}

// get is one Get: the source, its last good copy and the result so far.
type get[T any] struct {
	c    *Cache
	src  Source[T]
	prev *Copy
	gen  int64 // the pointer's generation (0: none)
	res  Result[T]
}

// fail falls back to the last good copy, or leaves the source out.
func (g *get[T]) fail(ctx context.Context, err error) Result[T] {
	g.res.Err, g.res.Note = err, ""
	if g.prev == nil {
		g.res.Status = LeftOut
		return g.res
	}
	v, err2 := parseCopy(ctx, g.c, g.src, g.prev)
	if err2 != nil {
		g.res.Status, g.res.Err = LeftOut, fmt.Errorf("%w; the last good copy is unusable too: %v", err, err2)
		return g.res
	}
	g.res.Status, g.res.Value, g.res.Copy = Fallback, v, g.prev
	return g.res
}

// same handles the bytes of the last good copy: parsed as it was parsed, checked again (the
// configuration may have changed, e.g. a signature now required), no new object; the
// record is rewritten only if the validators changed.
func (g *get[T]) same(ctx context.Context, got *fetch.Result) Result[T] {
	v, m, err := g.src.Parse(got.Data, g.prev)
	if err == nil && g.src.Check != nil {
		err = g.src.Check(ctx, got.Data, v, m, g.prev)
	}
	if err != nil {
		return g.fail(ctx, err)
	}
	g.res.Status, g.res.Value, g.res.Copy = NotModified, v, g.prev
	if got.Validators != g.prev.Validators {
		next := *g.prev
		next.Validators, next.Usable = got.Validators, m.Usable
		if w := g.c.record(ctx, &next, g.gen); w != "" {
			g.res.Warning = w
		}
		g.res.Copy = &next
	}
	return g.res
}

// fresh handles new bytes: parsed and checked, stored under their hash (create-only: an
// object that exists already holds these bytes) and recorded as the last good copy.
func (g *get[T]) fresh(ctx context.Context, got *fetch.Result, sum string) Result[T] {
	v, m, err := g.src.Parse(got.Data, nil)
	if err == nil && g.src.Check != nil {
		err = g.src.Check(ctx, got.Data, v, m, g.prev)
	}
	if err != nil {
		return g.fail(ctx, err)
	}
	cp := &Copy{Name: g.src.Name, Key: g.c.ObjectKey(sum), SHA256: sum, Bytes: len(got.Data), Format: m.Format,
		Usable: m.Usable, Fetched: g.c.Clock.Now().UTC(), Validators: got.Validators}
	g.res.Status, g.res.Value, g.res.Copy = OK, v, cp
	stored, err := g.c.put(ctx, cp.Key, got.Data)
	if err != nil {
		g.res.Warning = "could not archive the source: " + err.Error()
		g.res.Copy = nil
		return g.res
	}
	g.res.Stored = stored
	if w := g.c.record(ctx, cp, g.gen); w != "" {
		g.res.Warning = w
	}
	return g.res
}

// Object is an object stored by content.
type Object struct {
	Key    string `json:"key"`
	SHA256 string `json:"sha256"`
	Bytes  int    `json:"bytes"`
	// Stored is set when this call wrote it (it was not archived yet).
	Stored bool `json:"stored,omitempty"`
}

// Put stores data under its SHA-256, once: data that is archived already costs nothing.
func (c *Cache) Put(ctx context.Context, data []byte) (Object, error) {
	sum := sha256.Sum256(data)
	o := Object{SHA256: hex.EncodeToString(sum[:]), Bytes: len(data)}
	o.Key = c.ObjectKey(o.SHA256)
	var err error
	o.Stored, err = c.put(ctx, o.Key, data)
	return o, err
}

// put creates an object; one that exists already holds the same bytes (its key is their hash).
func (c *Cache) put(ctx context.Context, key string, data []byte) (bool, error) {
	switch err := c.Store.Create(ctx, key, data); {
	case err == nil:
		return true, nil
	case errors.Is(err, archive.ErrExists):
		return false, nil
	default:
		return false, err
	}
}

// parseCopy loads and parses an archived copy.
func parseCopy[T any](ctx context.Context, c *Cache, src Source[T], cp *Copy) (T, error) {
	b, err := c.Load(ctx, cp)
	if err != nil {
		var zero T
		return zero, err
	}
	v, _, err := src.Parse(b, cp)
	return v, err
}

// record makes cp the last good copy (gen: the pointer's generation when read, 0 if absent).
// It returns a warning when that fails (another run recorded one meanwhile, or the archive
// failed): the value is still good, and the next run compares with whichever copy is recorded.
func (c *Cache) record(ctx context.Context, cp *Copy, gen int64) string {
	b, err := json.Marshal(cp)
	if err != nil {
		return err.Error()
	}
	if _, err := c.Store.WriteIf(ctx, c.PointerKey(cp.Name), b, gen); err != nil {
		return "could not record the last good copy: " + err.Error()
	}
	return ""
}

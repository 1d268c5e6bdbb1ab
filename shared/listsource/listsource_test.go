package listsource_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/storage"

	"github.com/fediops/fediops/shared/archive"
	"github.com/fediops/fediops/shared/clock"
	"github.com/fediops/fediops/shared/fetch"
	"github.com/fediops/fediops/shared/listsource"
	"github.com/fediops/fediops/shared/testsupport/gcpfake"
)

// stores runs a test against the local directory store and Cloud Storage (the real client
// against fake-gcs-server).
func stores(t *testing.T, fn func(t *testing.T, s archive.Store)) {
	t.Run("local", func(t *testing.T) {
		s, err := archive.NewLocal(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		fn(t, s)
	})
	t.Run("gcs", func(t *testing.T) {
		fake := gcpfake.StartStorage(t, "archive")
		c, err := archive.NewStorageClient(context.Background(), fake.Endpoint)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		s, err := archive.Open(context.Background(), "gs://archive/p/", func(context.Context) (*storage.Client, error) { return c, nil })
		if err != nil {
			t.Fatal(err)
		}
		fn(t, s)
	})
}

// feed is a source whose next answer a test sets: bytes, "not modified", or an error.
type feed struct {
	data        string
	etag        string
	notModified bool
	err         error
	reads       int
	sawETag     string
	sawPrev     string // the previous copy's bytes, as Read saw them
}

// source reads f as a toy list: one entry per word; a "!" makes it unparsable. Check
// wants at least minLines entries and refuses to shrink by more than half.
func source(name string, f *feed, minLines int) listsource.Source[[]string] {
	return listsource.Source[[]string]{
		Name: name,
		Read: func(ctx context.Context, prev *listsource.Previous) (*fetch.Result, error) {
			f.reads++
			f.sawETag, f.sawPrev = "", ""
			if prev != nil {
				f.sawETag = prev.Validators.ETag
				b, err := prev.Data(ctx)
				if err != nil {
					return nil, err
				}
				f.sawPrev = string(b)
			}
			switch {
			case f.err != nil:
				return nil, f.err
			case f.notModified:
				return &fetch.Result{NotModified: true}, nil
			}
			return &fetch.Result{Data: []byte(f.data), Validators: fetch.Validators{ETag: f.etag}}, nil
		},
		Parse: func(data []byte, from *listsource.Copy) ([]string, listsource.Meta, error) {
			if strings.Contains(string(data), "!") {
				return nil, listsource.Meta{}, errors.New("unparsable")
			}
			l := strings.Fields(string(data))
			return l, listsource.Meta{Format: "lines", Usable: len(l)}, nil
		},
		Check: func(_ context.Context, _ []byte, v []string, m listsource.Meta, prev *listsource.Copy) error {
			if m.Usable < minLines {
				return fmt.Errorf("only %d lines", m.Usable)
			}
			if prev != nil && m.Usable*2 < prev.Usable {
				return fmt.Errorf("shrank from %d to %d", prev.Usable, m.Usable)
			}
			return nil
		},
	}
}

func objects(t *testing.T, s archive.Store) []string {
	t.Helper()
	keys, err := s.List(context.Background(), "lists/objects/")
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestGetStoresEachContentOnce(t *testing.T) {
	stores(t, func(t *testing.T, s archive.Store) {
		ctx := context.Background()
		c := &listsource.Cache{Store: s, Prefix: "lists", Clock: clock.NewFake(time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC))}
		f := &feed{data: "a b c", etag: `"v1"`}
		src := source("team list", f, 1)

		r := listsource.Get(ctx, c, src)
		if r.Status != listsource.OK || !r.Stored || strings.Join(r.Value, ",") != "a,b,c" || r.Copy.Key != "lists/objects/"+sum("a b c") || r.Warning != "" {
			t.Fatalf("first read: %+v", r)
		}
		if got := objects(t, s); len(got) != 1 {
			t.Fatalf("objects = %v", got)
		}
		// The same bytes again (a server without validators, a file): nothing written.
		r = listsource.Get(ctx, c, src)
		if r.Status != listsource.NotModified || r.Stored || len(r.Value) != 3 || f.sawETag != `"v1"` || f.sawPrev != "a b c" {
			t.Fatalf("same bytes: %+v (etag sent %q)", r, f.sawETag)
		}
		// 304: the archived copy is used.
		f.notModified = true
		r = listsource.Get(ctx, c, src)
		if r.Status != listsource.NotModified || r.Stored || strings.Join(r.Value, ",") != "a,b,c" {
			t.Fatalf("304: %+v", r)
		}
		if got := objects(t, s); len(got) != 1 {
			t.Fatalf("unchanged source wrote objects: %v", got)
		}
		// A change adds exactly one object and becomes the last good copy.
		f.notModified, f.data, f.etag = false, "a b c d", `"v2"`
		r = listsource.Get(ctx, c, src)
		if r.Status != listsource.OK || !r.Stored || r.Copy.SHA256 != sum("a b c d") {
			t.Fatalf("changed: %+v", r)
		}
		last, _, err := c.Last(ctx, "team list")
		if err != nil || last.SHA256 != sum("a b c d") || last.Validators.ETag != `"v2"` || last.Usable != 4 || last.Format != "lines" {
			t.Fatalf("last good copy = %+v, %v", last, err)
		}
		// Back to the first content: the object exists already (ErrExists is success).
		f.data, f.etag = "a b c", `"v3"`
		r = listsource.Get(ctx, c, src)
		if r.Status != listsource.OK || r.Stored || r.Warning != "" || r.Copy.SHA256 != sum("a b c") {
			t.Fatalf("back to the first content: %+v", r)
		}
		// Another source with the same bytes shares the object.
		r = listsource.Get(ctx, c, source("other", &feed{data: "a b c"}, 1))
		if r.Status != listsource.OK || r.Stored {
			t.Fatalf("other source: %+v", r)
		}
		if got := objects(t, s); len(got) != 2 {
			t.Fatalf("objects = %v", got)
		}
	})
}

func TestGetFallsBackToTheLastGoodCopy(t *testing.T) {
	stores(t, func(t *testing.T, s archive.Store) {
		ctx := context.Background()
		c := &listsource.Cache{Store: s, Prefix: "lists", Clock: clock.Real{}}
		f := &feed{data: "a b c d"}
		src := source("s", f, 2)
		// No copy yet and a failure: left out.
		f.err = errors.New("HTTP 500")
		if r := listsource.Get(ctx, c, src); r.Status != listsource.LeftOut || r.Value != nil || r.Copy != nil || !strings.Contains(r.Err.Error(), "HTTP 500") {
			t.Fatalf("no copy: %+v", r)
		}
		f.err = nil
		if r := listsource.Get(ctx, c, src); r.Status != listsource.OK {
			t.Fatalf("good read: %+v", r)
		}
		tests := []struct {
			name, data string
			err        error
			notMod     bool
			why        string
		}{
			{"read fails", "", errors.New("HTTP 503"), false, "HTTP 503"},
			{"unparsable", "a ! b", nil, false, "unparsable"},
			{"check refuses", "a", nil, false, "only 1 lines"},
			{"shrinks", "a b", nil, false, ""},
		}
		for _, tt := range tests {
			f.data, f.err, f.notModified = tt.data, tt.err, tt.notMod
			r := listsource.Get(ctx, c, src)
			if tt.why == "" {
				// Half is allowed by this check: accepted.
				if r.Status != listsource.OK {
					t.Fatalf("%s: %+v", tt.name, r)
				}
				continue
			}
			if r.Status != listsource.Fallback || strings.Join(r.Value, ",") != "a,b,c,d" || !strings.Contains(r.Err.Error(), tt.why) || r.Copy.SHA256 != sum("a b c d") {
				t.Fatalf("%s: %+v", tt.name, r)
			}
		}
		// Refused data is never recorded: the last good copy is the last accepted one.
		last, _, _ := c.Last(ctx, "s")
		if last.SHA256 != sum("a b") {
			t.Fatalf("last good copy = %+v", last)
		}
	})
}

// brokenStore fails reads of some keys.
type brokenStore struct {
	archive.Store
	fail func(key string) error
}

func (b brokenStore) Read(ctx context.Context, key string) ([]byte, error) {
	if err := b.fail(key); err != nil {
		return nil, err
	}
	return b.Store.Read(ctx, key)
}

func (b brokenStore) ReadVersion(ctx context.Context, key string) ([]byte, int64, error) {
	if err := b.fail(key); err != nil {
		return nil, 0, err
	}
	return b.Store.ReadVersion(ctx, key)
}

func TestGetWithADamagedArchive(t *testing.T) {
	ctx := context.Background()
	local, err := archive.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := &listsource.Cache{Store: local, Prefix: "lists", Clock: clock.Real{}}
	f := &feed{data: "a b"}
	if r := listsource.Get(ctx, c, source("s", f, 1)); r.Status != listsource.OK {
		t.Fatal(r)
	}

	// The pointer cannot be read (the archive is down): the source is left out without being
	// read, since its shrink check would have nothing to compare with.
	down := &listsource.Cache{Store: brokenStore{local, func(k string) error {
		if strings.Contains(k, "/sources/") {
			return errors.New("503 from storage")
		}
		return nil
	}}, Prefix: "lists", Clock: clock.Real{}}
	reads := f.reads
	if r := listsource.Get(ctx, down, source("s", f, 1)); r.Status != listsource.LeftOut || f.reads != reads || !strings.Contains(r.Err.Error(), "503 from storage") {
		t.Fatalf("pointer unreadable: %+v, %d reads", r, f.reads-reads)
	}

	// The object was damaged: its hash does not match, the fallback refuses it.
	last, _, _ := c.Last(ctx, "s")
	damaged := &listsource.Cache{Store: brokenStore{local, func(string) error { return nil }}, Prefix: "lists", Clock: clock.Real{}}
	if err := overwrite(local, last.Key, "x y z"); err != nil {
		t.Fatal(err)
	}
	f.err = errors.New("timeout")
	if r := listsource.Get(ctx, damaged, source("s", f, 1)); r.Status != listsource.LeftOut || !strings.Contains(r.Err.Error(), "damaged") {
		t.Fatalf("damaged copy: %+v", r)
	}

	// A corrupt pointer: the source is read as if for the first time and the record replaced.
	if _, err := local.WriteIf(ctx, c.PointerKey("s"), []byte("{not json"), 1); err != nil {
		t.Fatal(err)
	}
	f.err, f.data = nil, "p q"
	r := listsource.Get(ctx, c, source("s", f, 1))
	if r.Status != listsource.OK || !strings.Contains(r.Warning, "corrupt") {
		t.Fatalf("corrupt pointer: %+v", r)
	}
	if last, _, err := c.Last(ctx, "s"); err != nil || last.SHA256 != sum("p q") {
		t.Fatalf("pointer not replaced: %+v, %v", last, err)
	}
}

// overwrite replaces an object's bytes behind the store's back (a damaged archive).
func overwrite(l *archive.Local, key, data string) error {
	return writeFile(l.Location(key), data)
}

// A copy recorded before content addressing (bytes under a snapshot, no SHA-256) is still
// the last good copy: used as fallback and replaced by the next good read.
func TestGetReadsCopiesRecordedBeforeContentAddressing(t *testing.T) {
	stores(t, func(t *testing.T, s archive.Store) {
		ctx := context.Background()
		c := &listsource.Cache{Store: s, Prefix: "lists", Clock: clock.Real{}}
		oldKey := "lists/snapshots/20261125T100000.000000Z-old/sources/s"
		if err := s.Create(ctx, oldKey, []byte("a b c")); err != nil {
			t.Fatal(err)
		}
		old := `{"name":"s","key":"` + oldKey + `","format":"lines","usable":3,"fetched":"2026-11-25T10:00:00Z","validators":{"etag":"\"e1\""}}`
		if _, err := s.WriteIf(ctx, c.PointerKey("s"), []byte(old), 0); err != nil {
			t.Fatal(err)
		}
		f := &feed{err: errors.New("HTTP 500")}
		r := listsource.Get(ctx, c, source("s", f, 1))
		if r.Status != listsource.Fallback || strings.Join(r.Value, ",") != "a,b,c" || r.Copy.Key != oldKey || f.sawETag != `"e1"` {
			t.Fatalf("old copy: %+v", r)
		}
		f.err, f.notModified = nil, true
		if r := listsource.Get(ctx, c, source("s", f, 1)); r.Status != listsource.NotModified || r.Copy.Key != oldKey {
			t.Fatalf("304 on an old copy: %+v", r)
		}
		// The shrink check compares with the old copy's count.
		f.notModified, f.data = false, "a"
		if r := listsource.Get(ctx, c, source("s", f, 1)); r.Status != listsource.Fallback || !strings.Contains(r.Err.Error(), "shrank from 3 to 1") {
			t.Fatalf("shrink against an old copy: %+v", r)
		}
		f.data = "a b c"
		r = listsource.Get(ctx, c, source("s", f, 1))
		if r.Status != listsource.OK || !r.Stored || r.Copy.Key != c.ObjectKey(sum("a b c")) {
			t.Fatalf("first good read after the old copy: %+v", r)
		}
		if b, err := s.Read(ctx, oldKey); err != nil || string(b) != "a b c" {
			t.Errorf("old copy changed: %q, %v", b, err)
		}
	})
}

func writeFile(path, data string) error { return os.WriteFile(path, []byte(data), 0o600) }

// The same bytes as the last good copy are checked again: a check the configuration added
// since (here: at least five entries) refuses them too.
func TestGetChecksUnchangedBytesAgain(t *testing.T) {
	ctx := context.Background()
	local, err := archive.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := &listsource.Cache{Store: local, Prefix: "lists", Clock: clock.Real{}}
	f := &feed{data: "a b c"}
	if r := listsource.Get(ctx, c, source("s", f, 1)); r.Status != listsource.OK {
		t.Fatal(r)
	}
	if r := listsource.Get(ctx, c, source("s", f, 5)); r.Status != listsource.Fallback || !strings.Contains(r.Err.Error(), "only 3 lines") {
		t.Fatalf("stricter check: %+v", r)
	}
}

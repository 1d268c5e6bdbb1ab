package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"sort"
	"strings"

	"cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"
)

// GCS is a Store in a Cloud Storage bucket under a prefix. Create uses the DoesNotExist
// precondition (ifGenerationMatch=0), conditional writes use GenerationMatch.
type GCS struct {
	client *storage.Client
	bucket string
	prefix string // "" or ends with "/"
}

// NewGCS returns a Store for gs://bucket/prefix using client.
func NewGCS(client *storage.Client, bucket, prefix string) *GCS {
	prefix = strings.Trim(prefix, "/")
	if prefix != "" {
		prefix += "/"
	}
	return &GCS{client: client, bucket: bucket, prefix: prefix}
}

// Location returns gs://bucket/prefix/key.
func (g *GCS) Location(key string) string { return "gs://" + g.bucket + "/" + g.prefix + key }

func (g *GCS) object(key string) (*storage.ObjectHandle, error) {
	if err := ValidKey(key); err != nil {
		return nil, err
	}
	return g.client.Bucket(g.bucket).Object(g.prefix + key), nil
}

func (g *GCS) write(ctx context.Context, o *storage.ObjectHandle, data []byte) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // abandons the upload if Write fails
	w := o.NewWriter(ctx)
	w.ContentType = contentType(o.ObjectName())
	w.ChunkSize = 0 // one request: the data is in memory
	if _, err := w.Write(data); err != nil {
		return 0, err
	}
	if err := w.Close(); err != nil {
		return 0, err
	}
	return w.Attrs().Generation, nil
}

func contentType(name string) string {
	switch path.Ext(name) {
	case ".json":
		return "application/json"
	case ".jsonl":
		return "application/jsonl"
	case ".csv":
		return "text/csv"
	default:
		return "application/octet-stream"
	}
}

func isStatus(err error, code int) bool {
	var ge *googleapi.Error
	return errors.As(err, &ge) && ge.Code == code
}

// Create writes a new object; ErrExists if it is already there.
func (g *GCS) Create(ctx context.Context, key string, data []byte) error {
	o, err := g.object(key)
	if err != nil {
		return err
	}
	if _, err := g.write(ctx, o.If(storage.Conditions{DoesNotExist: true}), data); err != nil {
		if isStatus(err, http.StatusPreconditionFailed) {
			return fmt.Errorf("create %s: %w", g.Location(key), ErrExists)
		}
		return fmt.Errorf("create %s: %w", g.Location(key), err)
	}
	return nil
}

// Read returns an object's content.
func (g *GCS) Read(ctx context.Context, key string) ([]byte, error) {
	b, _, err := g.ReadVersion(ctx, key)
	return b, err
}

// ReadVersion returns content and generation.
func (g *GCS) ReadVersion(ctx context.Context, key string) ([]byte, int64, error) {
	o, err := g.object(key)
	if err != nil {
		return nil, 0, err
	}
	r, err := o.NewReader(ctx)
	if errors.Is(err, storage.ErrObjectNotExist) {
		return nil, 0, fmt.Errorf("read %s: %w", g.Location(key), ErrNotFound)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", g.Location(key), err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", g.Location(key), err)
	}
	return b, r.Attrs.Generation, nil
}

// List returns the keys under prefix.
func (g *GCS) List(ctx context.Context, prefix string) ([]string, error) {
	it := g.client.Bucket(g.bucket).Objects(ctx, &storage.Query{Prefix: g.prefix + prefix})
	var keys []string
	for {
		a, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", g.Location(prefix), err)
		}
		keys = append(keys, strings.TrimPrefix(a.Name, g.prefix))
	}
	sort.Strings(keys)
	return keys, nil
}

// WriteIf writes key if its generation is gen (0 = absent).
func (g *GCS) WriteIf(ctx context.Context, key string, data []byte, gen int64) (int64, error) {
	o, err := g.object(key)
	if err != nil {
		return 0, err
	}
	cond := storage.Conditions{GenerationMatch: gen}
	if gen == 0 {
		cond = storage.Conditions{DoesNotExist: true}
	}
	ng, err := g.write(ctx, o.If(cond), data)
	if err != nil {
		if isStatus(err, http.StatusPreconditionFailed) {
			return 0, fmt.Errorf("write %s: %w", g.Location(key), ErrPrecondition)
		}
		return 0, fmt.Errorf("write %s: %w", g.Location(key), err)
	}
	return ng, nil
}

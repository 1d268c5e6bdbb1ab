package archive

import (
	"context"
	"fmt"
	"strings"

	"cloud.google.com/go/storage"
	"google.golang.org/api/option"
)

// NewStorageClient returns a Cloud Storage client using Application Default Credentials, or,
// when endpoint is set (a JSON API base URL such as http://127.0.0.1:4443/storage/v1/), that
// endpoint without authentication: how tests and the fake-gcs-server are reached.
func NewStorageClient(ctx context.Context, endpoint string) (*storage.Client, error) {
	opts := []option.ClientOption{storage.WithJSONReads()}
	if endpoint != "" {
		opts = append(opts, option.WithEndpoint(endpoint), option.WithoutAuthentication())
	}
	c, err := storage.NewClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("cloud storage client: %w", err)
	}
	return c, nil
}

// ParseGS splits gs://bucket/object/path into bucket and object path.
func ParseGS(url string) (bucket, object string, err error) {
	rest, ok := strings.CutPrefix(url, "gs://")
	if !ok {
		return "", "", fmt.Errorf("not a gs:// URL: %q", url)
	}
	bucket, object, _ = strings.Cut(rest, "/")
	if bucket == "" {
		return "", "", fmt.Errorf("gs:// URL without a bucket: %q", url)
	}
	return bucket, object, nil
}

// Open returns the Store for location: "gs://bucket/prefix" (Cloud Storage through the client
// that newClient returns) or a local directory ("file:///dir", "/dir" or a relative path).
func Open(ctx context.Context, location string, newClient func(context.Context) (*storage.Client, error)) (Store, error) {
	if strings.HasPrefix(location, "gs://") {
		bucket, prefix, err := ParseGS(location)
		if err != nil {
			return nil, err
		}
		c, err := newClient(ctx)
		if err != nil {
			return nil, err
		}
		return NewGCS(c, bucket, prefix), nil
	}
	dir := strings.TrimPrefix(location, "file://")
	if dir == "" {
		return nil, fmt.Errorf("archive location is empty")
	}
	return NewLocal(dir)
}

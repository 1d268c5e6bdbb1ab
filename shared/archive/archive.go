// Package archive is fediops' archive store: the audit trail, blocklist snapshots, reports, and
// the small control objects (leases, checkpoints) that keep overlapping runs apart.
//
// Two backends implement Store: Cloud Storage (gs://bucket/prefix) in production and a local
// directory for the embedded defaults and the CLI. Archive objects are written with Create,
// which never overwrites. Control objects use generation preconditions (ReadVersion, WriteIf,
// DeleteIf), the same compare-and-swap Cloud Storage offers with ifGenerationMatch.
package archive

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Errors returned by stores; test with errors.Is.
var (
	ErrExists       = errors.New("object already exists")
	ErrNotFound     = errors.New("object not found")
	ErrPrecondition = errors.New("object changed since it was read")
)

// Store is an archive backend. Keys are slash-separated relative paths.
type Store interface {
	// Create writes a new object and fails with ErrExists if key is taken: archives are never
	// overwritten.
	Create(ctx context.Context, key string, data []byte) error
	// Read returns an object's content, or ErrNotFound.
	Read(ctx context.Context, key string) ([]byte, error)
	// List returns the keys under prefix, sorted.
	List(ctx context.Context, prefix string) ([]string, error)
	// ReadVersion returns an object's content and generation (ErrNotFound if absent).
	ReadVersion(ctx context.Context, key string) ([]byte, int64, error)
	// WriteIf writes key only if its current generation is gen (0: only if it does not exist)
	// and returns the new generation, or ErrPrecondition.
	WriteIf(ctx context.Context, key string, data []byte, gen int64) (int64, error)
	// Location returns where key is stored, for people (gs://bucket/prefix/key or a file path).
	Location(key string) string
}

// ValidKey reports an error for keys that could escape the store's root or are malformed.
func ValidKey(key string) error {
	if key == "" || strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/") {
		return fmt.Errorf("invalid archive key %q", key)
	}
	for _, part := range strings.Split(key, "/") {
		if part == "" || part == "." || part == ".." {
			return fmt.Errorf("invalid archive key %q", key)
		}
	}
	return nil
}

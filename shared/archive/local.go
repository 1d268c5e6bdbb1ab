package archive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// Local is a Store in a directory. Conditional writes are serialised with a file lock (flock on
// Unix, LockFileEx on Windows) so that several processes sharing the directory (overlapping CLI
// runs) stay consistent.
// Generations of control objects are kept in a hidden ".generations" directory.
type Local struct {
	dir string
	mu  sync.Mutex // serialises goroutines of this process; the file lock serialises processes
}

const genDir = ".generations"

// NewLocal returns a Store rooted at dir, creating it if needed.
func NewLocal(dir string) (*Local, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("archive directory %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return nil, fmt.Errorf("archive directory %s: %w", dir, err)
	}
	return &Local{dir: abs}, nil
}

// Dir returns the root directory.
func (l *Local) Dir() string { return l.dir }

func (l *Local) path(key string) (string, error) {
	if err := ValidKey(key); err != nil {
		return "", err
	}
	if strings.HasPrefix(key, genDir+"/") || key == genDir {
		return "", fmt.Errorf("invalid archive key %q", key)
	}
	return filepath.Join(l.dir, filepath.FromSlash(key)), nil
}

// Location returns the file path of key.
func (l *Local) Location(key string) string { return filepath.Join(l.dir, filepath.FromSlash(key)) }

// Create writes a new file atomically (temporary file + hard link, which fails if key exists).
func (l *Local) Create(_ context.Context, key string, data []byte) error {
	p, err := l.path(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return fmt.Errorf("create %s: %w", key, err)
	}
	tmp, err := writeTemp(filepath.Dir(p), data)
	if err != nil {
		return fmt.Errorf("create %s: %w", key, err)
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, p); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create %s: %w", key, ErrExists)
		}
		return fmt.Errorf("create %s: %w", key, err)
	}
	return nil
}

func writeTemp(dir string, data []byte) (string, error) {
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return "", err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(f.Name())
		return "", err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// Read returns the content of key.
func (l *Local) Read(_ context.Context, key string) ([]byte, error) {
	p, err := l.path(key)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	return b, nil
}

// List returns the keys under prefix (a plain string prefix, like Cloud Storage).
func (l *Local) List(_ context.Context, prefix string) ([]string, error) {
	var keys []string
	err := filepath.WalkDir(l.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(l.dir, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel == genDir {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasPrefix(d.Name(), ".tmp-") || rel == ".lock" {
			return nil
		}
		if strings.HasPrefix(rel, prefix) {
			keys = append(keys, rel)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", prefix, err)
	}
	sort.Strings(keys)
	return keys, nil
}

// lock takes the process lock and an exclusive lock on the store's lock file.
func (l *Local) lock() (func(), error) {
	l.mu.Lock()
	f, err := os.OpenFile(filepath.Join(l.dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		l.mu.Unlock()
		return nil, err
	}
	if err := lockFile(f); err != nil {
		f.Close()
		l.mu.Unlock()
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return func() {
		_ = unlockFile(f)
		f.Close()
		l.mu.Unlock()
	}, nil
}

func (l *Local) genPath(key string) string {
	return filepath.Join(l.dir, genDir, filepath.FromSlash(key)+".json")
}

func (l *Local) generation(key string) (int64, error) {
	b, err := os.ReadFile(l.genPath(key))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var g int64
	if err := json.Unmarshal(b, &g); err != nil {
		return 0, fmt.Errorf("generation of %s: %w", key, err)
	}
	return g, nil
}

func (l *Local) setGeneration(key string, g int64) error {
	gp := l.genPath(key)
	if err := os.MkdirAll(filepath.Dir(gp), 0o750); err != nil {
		return err
	}
	return os.WriteFile(gp, []byte(fmt.Sprint(g)), 0o600)
}

// ReadVersion returns content and generation.
func (l *Local) ReadVersion(ctx context.Context, key string) ([]byte, int64, error) {
	unlock, err := l.lock()
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", key, err)
	}
	defer unlock()
	b, err := l.Read(ctx, key)
	if err != nil {
		return nil, 0, err
	}
	g, err := l.generation(key)
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", key, err)
	}
	return b, max(g, 1), nil // an object written by Create has generation 1
}

// WriteIf writes key if its generation is gen.
func (l *Local) WriteIf(_ context.Context, key string, data []byte, gen int64) (int64, error) {
	p, err := l.path(key)
	if err != nil {
		return 0, err
	}
	unlock, err := l.lock()
	if err != nil {
		return 0, fmt.Errorf("write %s: %w", key, err)
	}
	defer unlock()
	var cur int64 // 0 = absent
	if _, statErr := os.Stat(p); statErr == nil {
		g, err := l.generation(key)
		if err != nil {
			return 0, fmt.Errorf("write %s: %w", key, err)
		}
		cur = max(g, 1) // an object written by Create has generation 1
	}
	if cur != gen {
		return 0, fmt.Errorf("write %s: %w", key, ErrPrecondition)
	}
	next := cur + 1
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return 0, fmt.Errorf("write %s: %w", key, err)
	}
	tmp, err := writeTemp(filepath.Dir(p), data)
	if err != nil {
		return 0, fmt.Errorf("write %s: %w", key, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return 0, fmt.Errorf("write %s: %w", key, err)
	}
	if err := l.setGeneration(key, next); err != nil {
		return 0, fmt.Errorf("write %s: %w", key, err)
	}
	return next, nil
}

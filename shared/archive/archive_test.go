package archive_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/storage"

	"github.com/fediops/fediops/shared/archive"
	"github.com/fediops/fediops/shared/testsupport/gcpfake"
)

// stores runs a test against every backend: the local directory and Cloud Storage (through the
// real client against fake-gcs-server).
func stores(t *testing.T, fn func(t *testing.T, s archive.Store)) {
	t.Run("local", func(t *testing.T) {
		s, err := archive.Open(context.Background(), t.TempDir(), nil)
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
		s, err := archive.Open(context.Background(), "gs://archive/fediops/", func(context.Context) (*storage.Client, error) { return c, nil })
		if err != nil {
			t.Fatal(err)
		}
		fn(t, s)
		if objs := fake.Objects(t, "archive", ""); len(objs) > 0 {
			for name := range objs {
				if !strings.HasPrefix(name, "fediops/") {
					t.Errorf("object %s outside the prefix", name)
				}
			}
		}
	})
}

func TestCreateNeverOverwrites(t *testing.T) {
	stores(t, func(t *testing.T, s archive.Store) {
		ctx := context.Background()
		if err := s.Create(ctx, "triage/a/run1.jsonl", []byte("first")); err != nil {
			t.Fatal(err)
		}
		err := s.Create(ctx, "triage/a/run1.jsonl", []byte("second"))
		if !errors.Is(err, archive.ErrExists) {
			t.Fatalf("second Create: %v, want ErrExists", err)
		}
		got, err := s.Read(ctx, "triage/a/run1.jsonl")
		if err != nil || string(got) != "first" {
			t.Errorf("Read = %q, %v", got, err)
		}
		if _, err := s.Read(ctx, "triage/a/none"); !errors.Is(err, archive.ErrNotFound) {
			t.Errorf("Read missing: %v", err)
		}
	})
}

func TestList(t *testing.T) {
	stores(t, func(t *testing.T, s archive.Store) {
		ctx := context.Background()
		for _, k := range []string{"b/2", "a/1", "b/1", "c"} {
			if err := s.Create(ctx, k, []byte(k)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.WriteIf(ctx, "b/ctl", []byte("x"), 0); err != nil {
			t.Fatal(err)
		}
		got, err := s.List(ctx, "b/")
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"b/1", "b/2", "b/ctl"}; !slices.Equal(got, want) {
			t.Errorf("List(b/) = %v, want %v", got, want)
		}
		all, _ := s.List(ctx, "")
		if len(all) != 5 {
			t.Errorf("List('') = %v", all)
		}
	})
}

func TestInvalidKeys(t *testing.T) {
	stores(t, func(t *testing.T, s archive.Store) {
		for _, k := range []string{"", "/abs", "a/../b", "a//b", "dir/"} {
			if err := s.Create(context.Background(), k, nil); err == nil {
				t.Errorf("Create(%q) accepted", k)
			}
		}
	})
}

func TestConditionalWrites(t *testing.T) {
	stores(t, func(t *testing.T, s archive.Store) {
		ctx := context.Background()
		g1, err := s.WriteIf(ctx, "state/x", []byte("v1"), 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.WriteIf(ctx, "state/x", []byte("again"), 0); !errors.Is(err, archive.ErrPrecondition) {
			t.Fatalf("create over existing: %v", err)
		}
		g2, err := s.WriteIf(ctx, "state/x", []byte("v2"), g1)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.WriteIf(ctx, "state/x", []byte("stale"), g1); !errors.Is(err, archive.ErrPrecondition) {
			t.Fatalf("stale write: %v", err)
		}
		b, g, err := s.ReadVersion(ctx, "state/x")
		if err != nil || string(b) != "v2" || g != g2 {
			t.Fatalf("ReadVersion = %q, %d, %v; want v2, %d", b, g, err, g2)
		}
	})
}

func TestLeaseExcludesConcurrentHolders(t *testing.T) {
	stores(t, func(t *testing.T, s archive.Store) {
		ctx := context.Background()
		now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
		const n = 8
		var wg sync.WaitGroup
		var mu sync.Mutex
		var won []*archive.Lease
		var held int
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				l, err := archive.AcquireLease(ctx, s, "triage/main", fmt.Sprintf("run-%d", i), now, 10*time.Minute)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					won = append(won, l)
				case errors.Is(err, archive.ErrLeaseHeld):
					held++
				default:
					t.Errorf("acquire: %v", err)
				}
			}()
		}
		wg.Wait()
		if len(won) != 1 || held != n-1 {
			t.Fatalf("winners = %d, held = %d; want exactly one winner", len(won), held)
		}
		// Still held a minute later by someone else.
		_, err := archive.AcquireLease(ctx, s, "triage/main", "late", now.Add(time.Minute), 10*time.Minute)
		var he *archive.HeldError
		if !errors.As(err, &he) || he.Holder != won[0].Holder {
			t.Fatalf("late acquire: %v", err)
		}
		// Released: free again.
		if err := won[0].Release(ctx); err != nil {
			t.Fatal(err)
		}
		l2, err := archive.AcquireLease(ctx, s, "triage/main", "next", now.Add(time.Minute), 10*time.Minute)
		if err != nil {
			t.Fatalf("after release: %v", err)
		}
		// Expired: a crashed holder's lease is taken over, and its late Release does not free the new holder's lease.
		l3, err := archive.AcquireLease(ctx, s, "triage/main", "after-crash", now.Add(20*time.Minute), 10*time.Minute)
		if err != nil {
			t.Fatalf("takeover of expired lease: %v", err)
		}
		if err := l2.Release(ctx); !errors.Is(err, archive.ErrLeaseLost) {
			t.Fatalf("late release of a taken-over lease: %v, want ErrLeaseLost", err)
		}
		if _, err := archive.AcquireLease(ctx, s, "triage/main", "intruder", now.Add(21*time.Minute), 10*time.Minute); !errors.Is(err, archive.ErrLeaseHeld) {
			t.Fatalf("stale release freed a live lease: %v", err)
		}
		if err := l3.Renew(ctx, now.Add(25*time.Minute), 10*time.Minute); err != nil {
			t.Fatal(err)
		}
		if _, err := archive.AcquireLease(ctx, s, "triage/main", "intruder", now.Add(32*time.Minute), 10*time.Minute); !errors.Is(err, archive.ErrLeaseHeld) {
			t.Fatalf("renewed lease not honoured: %v", err)
		}
	})
}

func TestOpen(t *testing.T) {
	if _, err := archive.Open(context.Background(), "", nil); err == nil {
		t.Error("empty location accepted")
	}
	if _, _, err := archive.ParseGS("gs:///x"); err == nil {
		t.Error("gs URL without bucket accepted")
	}
	b, o, err := archive.ParseGS("gs://bkt/a/b.toml")
	if err != nil || b != "bkt" || o != "a/b.toml" {
		t.Errorf("ParseGS = %q %q %v", b, o, err)
	}
}

// Two Local stores on one directory stand for two overlapping CLI runs: only the file lock
// (flock on Unix, LockFileEx on Windows) keeps their conditional writes apart, so no increment
// may be lost and no two writers may succeed from the same generation.
func TestLocalStoresShareTheFileLock(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var stores [2]*archive.Local
	for i := range stores {
		s, err := archive.NewLocal(dir)
		if err != nil {
			t.Fatal(err)
		}
		stores[i] = s
	}
	if _, err := stores[0].WriteIf(ctx, "state/counter", []byte("0"), 0); err != nil {
		t.Fatal(err)
	}
	const perWorker = 25
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			s := stores[w%2]
			for done := 0; done < perWorker; {
				b, gen, err := s.ReadVersion(ctx, "state/counter")
				if err != nil {
					t.Error(err)
					return
				}
				var n int
				fmt.Sscan(string(b), &n)
				_, err = s.WriteIf(ctx, "state/counter", []byte(fmt.Sprint(n+1)), gen)
				switch {
				case err == nil:
					done++
				case !errors.Is(err, archive.ErrPrecondition):
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b, gen, err := stores[1].ReadVersion(ctx, "state/counter")
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != fmt.Sprint(4*perWorker) || gen != 4*perWorker+1 {
		t.Errorf("counter %s at generation %d; want %d at %d", b, gen, 4*perWorker, 4*perWorker+1)
	}
}

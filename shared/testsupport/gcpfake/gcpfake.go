// Package gcpfake starts in-process doubles of the Google Cloud services fediops talks to:
// Cloud Storage (fake-gcs-server, over a real loopback HTTP listener) and Secret Manager (a small
// gRPC server implementing the calls fediops makes). Both are reachable by endpoint URL, so code
// under test builds its clients exactly as in production, only pointed elsewhere.
package gcpfake

import (
	"context"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Storage is a fake-gcs-server listening on loopback.
type Storage struct {
	*fakestorage.Server
	// Endpoint is the JSON API base URL to give storage.NewClient (option.WithEndpoint).
	Endpoint string
}

// StartStorage starts fake-gcs-server with the given buckets (versioning on, like the
// production archive bucket) and stops it when the test ends.
func StartStorage(t testing.TB, buckets ...string) *Storage {
	t.Helper()
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{
		Scheme: "http",
		Host:   "127.0.0.1",
		Port:   0,
		Writer: io.Discard,
	})
	if err != nil {
		t.Fatalf("fake-gcs-server: %v", err)
	}
	t.Cleanup(srv.Stop)
	for _, b := range buckets {
		srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: b, VersioningEnabled: true})
	}
	return &Storage{Server: srv, Endpoint: srv.URL() + "/storage/v1/"}
}

// Put stores an object directly (test setup).
func (s *Storage) Put(bucket, name string, data []byte) {
	s.CreateObject(fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: bucket, Name: name}, Content: data})
}

// Objects returns the names and contents of every object in bucket under prefix.
func (s *Storage) Objects(t testing.TB, bucket, prefix string) map[string][]byte {
	t.Helper()
	attrs, _, err := s.ListObjects(bucket, prefix, "", false)
	if err != nil {
		t.Fatalf("list %s/%s: %v", bucket, prefix, err)
	}
	out := map[string][]byte{}
	for _, a := range attrs {
		o, err := s.GetObject(bucket, a.Name)
		if err != nil {
			t.Fatalf("get %s: %v", a.Name, err)
		}
		out[a.Name] = o.Content
	}
	return out
}

// SecretManager is a gRPC Secret Manager fake holding secrets in memory.
type SecretManager struct {
	secretmanagerpb.UnimplementedSecretManagerServiceServer
	// Addr is the "127.0.0.1:port" endpoint to give secrets.NewSecretManager.
	Addr string

	mu       sync.Mutex
	versions map[string][][]byte // "projects/P/secrets/S" → versions, index+1 = version number
	disabled map[string]bool     // version names that are disabled
	accessed []string
	fail     codes.Code // every access fails with this code while it is not OK
}

// Fail makes every access fail with code (as during an outage: codes.Unavailable) until
// Fail(codes.OK).
func (f *SecretManager) Fail(code codes.Code) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = code
}

// StartSecretManager starts the fake on a loopback port and stops it when the test ends.
func StartSecretManager(t testing.TB) *SecretManager {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	f := &SecretManager{Addr: l.Addr().String(), versions: map[string][][]byte{}, disabled: map[string]bool{}}
	s := grpc.NewServer()
	secretmanagerpb.RegisterSecretManagerServiceServer(s, f)
	go func() { _ = s.Serve(l) }()
	t.Cleanup(s.Stop)
	return f
}

// Set adds a version to secret ("projects/P/secrets/S"), creating the secret if needed, and
// returns the version's resource name.
func (f *SecretManager) Set(secret string, value []byte) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.versions[secret] = append(f.versions[secret], append([]byte(nil), value...))
	return fmt.Sprintf("%s/versions/%d", secret, len(f.versions[secret]))
}

// Disable marks a version ("projects/P/secrets/S/versions/N") as disabled.
func (f *SecretManager) Disable(version string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.disabled[version] = true
}

// Versions returns every version of secret, oldest first.
func (f *SecretManager) Versions(secret string) [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]byte(nil), f.versions[secret]...)
}

// Accessed lists the version names read so far.
func (f *SecretManager) Accessed() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.accessed...)
}

// AccessSecretVersion implements the API call, including "latest" and disabled versions.
func (f *SecretManager) AccessSecretVersion(_ context.Context, r *secretmanagerpb.AccessSecretVersionRequest) (*secretmanagerpb.AccessSecretVersionResponse, error) {
	name := r.GetName()
	secret, version, ok := strings.Cut(name, "/versions/")
	if !ok || !strings.HasPrefix(secret, "projects/") || strings.Count(secret, "/") != 3 {
		return nil, status.Errorf(codes.InvalidArgument, "invalid resource name %q", name)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.accessed = append(f.accessed, name)
	if f.fail != codes.OK {
		return nil, status.Errorf(f.fail, "the service is unavailable (fault injected by the test)")
	}
	vs := f.versions[secret]
	if len(vs) == 0 {
		return nil, status.Errorf(codes.NotFound, "Secret [%s] not found or has no versions.", secret)
	}
	n := len(vs)
	if version != "latest" {
		v, err := strconv.Atoi(version)
		if err != nil || v < 1 || v > len(vs) {
			return nil, status.Errorf(codes.NotFound, "Secret Version [%s] not found.", name)
		}
		n = v
	}
	full := fmt.Sprintf("%s/versions/%d", secret, n)
	if f.disabled[full] {
		return nil, status.Errorf(codes.FailedPrecondition, "Secret Version [%s] is in DISABLED state.", full)
	}
	data := vs[n-1]
	sum := int64(crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)))
	return &secretmanagerpb.AccessSecretVersionResponse{
		Name:    full,
		Payload: &secretmanagerpb.SecretPayload{Data: data, DataCrc32C: &sum},
	}, nil
}

// AddSecretVersion implements the API call; the secret must exist (created by Set or NewSecret).
func (f *SecretManager) AddSecretVersion(_ context.Context, r *secretmanagerpb.AddSecretVersionRequest) (*secretmanagerpb.SecretVersion, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.versions[r.GetParent()]; !ok {
		return nil, status.Errorf(codes.NotFound, "Secret [%s] not found.", r.GetParent())
	}
	data := r.GetPayload().GetData()
	if sum := r.GetPayload().DataCrc32C; sum != nil && int64(crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli))) != *sum {
		return nil, status.Error(codes.InvalidArgument, "checksum mismatch")
	}
	f.versions[r.GetParent()] = append(f.versions[r.GetParent()], append([]byte(nil), data...))
	return &secretmanagerpb.SecretVersion{
		Name:  fmt.Sprintf("%s/versions/%d", r.GetParent(), len(f.versions[r.GetParent()])),
		State: secretmanagerpb.SecretVersion_ENABLED,
	}, nil
}

// NewSecret registers an empty secret (so AddSecretVersion can add to it).
func (f *SecretManager) NewSecret(secret string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.versions[secret]; !ok {
		f.versions[secret] = [][]byte{}
	}
}

// Secrets lists the secret names held.
func (f *SecretManager) Secrets() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for k := range f.versions {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

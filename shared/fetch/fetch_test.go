package fetch

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/storage"

	"github.com/fediops/fediops/shared/archive"
	"github.com/fediops/fediops/shared/testsupport/gcpfake"
)

func TestHTTP(t *testing.T) {
	var gotUA string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotUA = r.Header.Get("User-Agent")
		switch r.URL.Path {
		case "/list.csv":
			if r.Header.Get("If-None-Match") == `"v1"` {
				w.WriteHeader(http.StatusNotModified)
				return
			}
			w.Header().Set("ETag", `"v1"`)
			w.Header().Set("Last-Modified", "Wed, 25 Nov 2026 10:00:00 GMT")
			w.Write([]byte("domain\nbad.example\n"))
		case "/big":
			w.Write([]byte(strings.Repeat("x", 2000)))
		case "/slow":
			time.Sleep(300 * time.Millisecond)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer srv.Close()
	f := New(100*time.Millisecond, 1000)
	ctx := context.Background()
	r, err := f.Fetch(ctx, srv.URL+"/list.csv", Validators{})
	if err != nil || string(r.Data) != "domain\nbad.example\n" || r.Validators.ETag != `"v1"` || r.Validators.LastModified == "" {
		t.Fatalf("fetch = %+v, %v", r, err)
	}
	if gotUA != UserAgent {
		t.Errorf("User-Agent = %q", gotUA)
	}
	r, err = f.Fetch(ctx, srv.URL+"/list.csv", r.Validators)
	if err != nil || !r.NotModified || len(r.Data) != 0 {
		t.Errorf("conditional fetch = %+v, %v", r, err)
	}
	if _, err := f.Fetch(ctx, srv.URL+"/big", Validators{}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("size limit: %v", err)
	}
	if _, err := f.Fetch(ctx, srv.URL+"/slow", Validators{}); err == nil {
		t.Error("timeout not enforced")
	}
	if _, err := f.Fetch(ctx, srv.URL+"/missing", Validators{}); err == nil || !strings.Contains(err.Error(), "HTTP 404") {
		t.Errorf("404: %v", err)
	}
	if _, err := f.Fetch(ctx, "ftp://x/y", Validators{}); err == nil {
		t.Error("ftp accepted")
	}
}

func TestFileAndRebase(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.csv"), []byte("domain\nx.example\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := New(time.Second, 100, WithRebase("file:///opt/fediblockhole/blocklists/", dir+"/"))
	r, err := f.Fetch(context.Background(), "file:///opt/fediblockhole/blocklists/a.csv", Validators{})
	if err != nil || string(r.Data) != "domain\nx.example\n" {
		t.Fatalf("rebased fetch = %v, %v", r, err)
	}
	if _, err := f.Fetch(context.Background(), "file://"+filepath.Join(dir, "missing.csv"), Validators{}); err == nil {
		t.Error("missing file")
	}
	if err := os.WriteFile(filepath.Join(dir, "big.csv"), make([]byte, 200), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Fetch(context.Background(), "file://"+filepath.Join(dir, "big.csv"), Validators{}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("file size limit: %v", err)
	}
}

func TestGCS(t *testing.T) {
	fake := gcpfake.StartStorage(t, "lists")
	fake.Put("lists", "team/ours.csv", []byte("domain\nours.example\n"))
	c, err := archive.NewStorageClient(context.Background(), fake.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f := New(time.Second, 1000, WithStorage(func(context.Context) (*storage.Client, error) { return c, nil }))
	r, err := f.Fetch(context.Background(), "gs://lists/team/ours.csv", Validators{})
	if err != nil || string(r.Data) != "domain\nours.example\n" {
		t.Fatalf("gs fetch = %v, %v", r, err)
	}
	if _, err := f.Fetch(context.Background(), "gs://lists/none.csv", Validators{}); err == nil {
		t.Error("missing object")
	}
	if _, err := New(time.Second, 10).Fetch(context.Background(), "gs://lists/team/ours.csv", Validators{}); err == nil {
		t.Error("gs without storage")
	}
}

// TestErrorsHideURLCredentials: a source URL carrying a token never shows it in an error.
func TestErrorsHideURLCredentials(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusForbidden) }))
	defer srv.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()
	f := New(time.Second, 1<<20)
	for _, u := range []string{srv.URL + "/list.csv?token=SECRET", closed + "/list.csv?access_token=SECRET", "https://user:SECRET@127.0.0.1:1/x"} {
		_, err := f.Fetch(context.Background(), u, Validators{})
		if err == nil || strings.Contains(err.Error(), "SECRET") {
			t.Errorf("%s: %v", u, err)
		}
	}
}

func TestFetchJSONAndStatus(t *testing.T) {
	var accept string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		accept = r.Header.Get("Accept")
		if r.URL.Path == "/gone" {
			w.WriteHeader(http.StatusGone)
			return
		}
		w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	f := New(time.Second, 1000)
	if _, err := f.FetchJSON(context.Background(), srv.URL+"/x", Validators{}); err != nil || accept != JSON {
		t.Errorf("Accept = %q, %v", accept, err)
	}
	if _, err := f.Fetch(context.Background(), srv.URL+"/x", Validators{}); err != nil || accept != "" {
		t.Errorf("plain fetch sent Accept %q, %v", accept, err)
	}
	_, err := f.Fetch(context.Background(), "http://user:secret@"+strings.TrimPrefix(srv.URL, "http://")+"/gone", Validators{})
	if Status(err) != http.StatusGone || !strings.Contains(err.Error(), "HTTP 410") || strings.Contains(err.Error(), "secret") {
		t.Errorf("status error = %v", err)
	}
	if Status(errors.New("other")) != 0 {
		t.Error("Status of a plain error")
	}
}

func TestLocalPath(t *testing.T) {
	tests := []struct{ goos, in, want string }{
		{"linux", "/srv/lists/tier0.csv", "/srv/lists/tier0.csv"},
		{"windows", "/C:/lists/tier0.csv", "C:/lists/tier0.csv"},
		{"windows", "/lists/tier0.csv", "/lists/tier0.csv"}, // no drive: the current drive's root
		{"darwin", "/C:/odd/but/unix.csv", "/C:/odd/but/unix.csv"},
	}
	for _, tt := range tests {
		if got := localPath(tt.goos, tt.in); got != tt.want {
			t.Errorf("localPath(%s, %q) = %q, want %q", tt.goos, tt.in, got, tt.want)
		}
	}
}

package secrets_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fediops/fediops/shared/clock"
	"github.com/fediops/fediops/shared/logging"
	"github.com/fediops/fediops/shared/secrets"
	"github.com/fediops/fediops/shared/testsupport/gcpfake"
)

func TestParseRef(t *testing.T) {
	tests := []struct {
		in      string
		want    secrets.Ref
		wantErr bool
	}{
		{in: "sm://projects/p/secrets/s/versions/3", want: secrets.Ref{Kind: secrets.SecretManager, Name: "projects/p/secrets/s/versions/3"}},
		{in: "sm://projects/p/secrets/s", want: secrets.Ref{Kind: secrets.SecretManager, Name: "projects/p/secrets/s/versions/latest"}},
		{in: "env://MASTODON_TOKEN", want: secrets.Ref{Kind: secrets.Env, Name: "MASTODON_TOKEN"}},
		{in: "file:///run/secrets/token", want: secrets.Ref{Kind: secrets.File, Name: "/run/secrets/token"}},
		{in: "abcdef0123456789", wantErr: true},
		{in: "sm://projects/p/secret/s", wantErr: true},
		{in: "sm://projects//secrets/s", wantErr: true},
		{in: "env://", wantErr: true},
		{in: "file://relative/path", wantErr: true},
		{in: "https://example.com/token", wantErr: true},
	}
	for _, tt := range tests {
		got, err := secrets.ParseRef(tt.in)
		if (err != nil) != tt.wantErr || (!tt.wantErr && got != tt.want) {
			t.Errorf("ParseRef(%q) = %+v, %v", tt.in, got, err)
		}
		if err == nil && got.String() == "" {
			t.Errorf("empty String for %q", tt.in)
		}
	}
}

func TestResolveEnvAndFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tok")
	if err := os.WriteFile(path, []byte("file-token-value\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"TOK": "env-token-value"}
	red := logging.NewRedactor()
	r := secrets.NewResolver(secrets.WithEnv(func(k string) string { return env[k] }), secrets.WithRedactor(red))
	ctx := context.Background()
	if v, err := r.Resolve(ctx, "env://TOK"); err != nil || v != "env-token-value" {
		t.Errorf("env: %q, %v", v, err)
	}
	if v, err := r.Resolve(ctx, "file://"+path); err != nil || v != "file-token-value" {
		t.Errorf("file: %q, %v", v, err)
	}
	if got := red.Redact("a env-token-value b file-token-value"); strings.Contains(got, "token-value") {
		t.Errorf("resolved values not registered for redaction: %q", got)
	}
	if _, err := r.Resolve(ctx, "env://MISSING"); err == nil || !strings.Contains(err.Error(), "MISSING") {
		t.Errorf("missing env: %v", err)
	}
	if _, err := r.Resolve(ctx, "file:///does/not/exist"); err == nil {
		t.Error("missing file: no error")
	}
	if _, err := r.Resolve(ctx, "plaintext-token"); !errors.Is(err, secrets.ErrNotReference) {
		t.Errorf("literal: %v", err)
	}
}

func TestResolveCachesUntilTTL(t *testing.T) {
	calls := 0
	env := func(string) string { calls++; return "v-value" }
	fc := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	r := secrets.NewResolver(secrets.WithEnv(env), secrets.WithClock(fc), secrets.WithTTL(time.Minute))
	for range 3 {
		if _, err := r.Resolve(context.Background(), "env://X"); err != nil {
			t.Fatal(err)
		}
	}
	if calls != 1 {
		t.Errorf("calls = %d, want 1 (cached)", calls)
	}
	fc.Advance(2 * time.Minute)
	if _, err := r.Resolve(context.Background(), "env://X"); err != nil {
		t.Fatal(err)
	}
	if calls != 2 {
		t.Errorf("calls = %d, want 2 after TTL", calls)
	}
}

func TestSecretManagerThroughGRPCFake(t *testing.T) {
	ctx := context.Background()
	fake := gcpfake.StartSecretManager(t)
	fake.Set("projects/p/secrets/tok", []byte("old-version-token"))
	fake.Set("projects/p/secrets/tok", []byte("sm-token-value\n"))
	sm, err := secrets.NewSecretManager(ctx, fake.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer sm.Close()
	r := secrets.NewResolver(secrets.WithSecretManager(func(context.Context) (secrets.Accessor, error) { return sm, nil }))
	tests := []struct{ ref, want string }{
		{"sm://projects/p/secrets/tok", "sm-token-value"},
		{"sm://projects/p/secrets/tok/versions/1", "old-version-token"},
		{"sm://projects/p/secrets/tok/versions/latest", "sm-token-value"},
	}
	for _, tt := range tests {
		if v, err := r.Resolve(ctx, tt.ref); err != nil || v != tt.want {
			t.Errorf("%s = %q, %v; want %q", tt.ref, v, err, tt.want)
		}
	}
	_, err = r.Resolve(ctx, "sm://projects/p/secrets/nope")
	if err == nil || !strings.Contains(err.Error(), "projects/p/secrets/nope") {
		t.Errorf("missing secret: %v", err)
	}
	fake.Disable("projects/p/secrets/tok/versions/1")
	r2 := secrets.NewResolver(secrets.WithSecretManager(func(context.Context) (secrets.Accessor, error) { return sm, nil }))
	if _, err := r2.Resolve(ctx, "sm://projects/p/secrets/tok/versions/1"); err == nil || strings.Contains(err.Error(), "old-version-token") {
		t.Errorf("disabled version: %v", err)
	}

	fake.NewSecret("projects/p/secrets/new")
	name, err := sm.AddVersion(ctx, "projects/p/secrets/new", []byte("added"))
	if err != nil || name != "projects/p/secrets/new/versions/1" {
		t.Fatalf("AddVersion = %q, %v", name, err)
	}
	if got := fake.Versions("projects/p/secrets/new"); len(got) != 1 || string(got[0]) != "added" {
		t.Errorf("versions = %q", got)
	}
}

func TestSecretManagerNotConfigured(t *testing.T) {
	r := secrets.NewResolver()
	if _, err := r.Resolve(context.Background(), "sm://projects/p/secrets/s"); err == nil {
		t.Error("want error without a secret manager")
	}
}

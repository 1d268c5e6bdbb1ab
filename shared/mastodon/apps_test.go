package mastodon

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fediops/fediops/shared/testsupport/mastosim"
)

// simClient starts a simulator (Mastodon version ver) and returns a client for it with token.
func simClient(t *testing.T, sim *mastosim.Server, token string) *Client {
	t.Helper()
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	c, err := New(srv.URL, token, WithTimeout(5*time.Second), WithRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRegisterApp(t *testing.T) {
	ctx := context.Background()
	sim := mastosim.New(mastosim.Options{})
	c := simClient(t, sim, "")
	a, err := c.RegisterApp(ctx, AppRegistration{
		ClientName:   "fediops",
		RedirectURIs: []string{"http://127.0.0.1:4567/callback"},
		Scopes:       []string{"admin:read:accounts", "admin:write:accounts", "profile"},
		Website:      "https://github.com/fediops/fediops",
	})
	if err != nil {
		t.Fatal(err)
	}
	if a.ClientID == "" || a.ClientSecret == "" || a.Name != "fediops" {
		t.Errorf("app = %+v", a)
	}
	if want := []string{"admin:read:accounts", "admin:write:accounts", "profile"}; !reflect.DeepEqual(a.Scopes, want) {
		t.Errorf("scopes = %v, want %v", a.Scopes, want)
	}
	if want := []string{"http://127.0.0.1:4567/callback"}; !reflect.DeepEqual(a.RedirectURIs, want) {
		t.Errorf("redirect_uris = %v, want %v", a.RedirectURIs, want)
	}
	if reqs := sim.Requests(); len(reqs) != 1 || reqs[0].Token != "" || reqs[0].Method != http.MethodPost {
		t.Errorf("requests = %+v", reqs)
	}

	// Several redirect URIs, and the out-of-band one.
	a, err = c.RegisterApp(ctx, AppRegistration{ClientName: "x", RedirectURIs: []string{OOBRedirectURI, "http://127.0.0.1:1/cb"}, Scopes: []string{"read"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{OOBRedirectURI, "http://127.0.0.1:1/cb"}; !reflect.DeepEqual(a.RedirectURIs, want) {
		t.Errorf("redirect_uris = %v, want %v", a.RedirectURIs, want)
	}

	// enforce_configured_scopes: 422.
	_, err = c.RegisterApp(ctx, AppRegistration{ClientName: "x", RedirectURIs: []string{OOBRedirectURI}, Scopes: []string{"admin:everything"}})
	if StatusOf(err) != http.StatusUnprocessableEntity {
		t.Errorf("unknown scope: err = %v, want 422", err)
	}

	// Before 4.3.0 the answer has no scopes.
	old := simClient(t, mastosim.New(mastosim.Options{Version: "4.2.10"}), "")
	a, err = old.RegisterApp(ctx, AppRegistration{ClientName: "x", RedirectURIs: []string{OOBRedirectURI}, Scopes: []string{"admin:read"}})
	if err != nil || a.ClientID == "" || a.Scopes != nil || a.RedirectURI != OOBRedirectURI {
		t.Errorf("4.2.10: app = %+v, err = %v", a, err)
	}
}

func TestVerifyAppCredentials(t *testing.T) {
	ctx := context.Background()
	sim := mastosim.New(mastosim.Options{})
	sim.AddToken("admin-only", "admin:read:accounts admin:write:accounts")

	got, err := simClient(t, sim, "admin-only").VerifyAppCredentials(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !got.HasScopes || !reflect.DeepEqual(got.Scopes, []string{"admin:read:accounts", "admin:write:accounts"}) || got.Name == "" {
		t.Errorf("credentials = %+v", got)
	}

	_, err = simClient(t, sim, "unknown-token").VerifyAppCredentials(ctx)
	if !IsInvalidToken(err) || IsOutsideScopes(err) {
		t.Errorf("unknown token: err = %v, want 401", err)
	}

	// Before 4.3.0 the endpoint needs read: an admin-only token is outside the scopes.
	old := mastosim.New(mastosim.Options{Version: "4.2.10"})
	old.AddToken("admin-only", "admin:read")
	_, err = simClient(t, old, "admin-only").VerifyAppCredentials(ctx)
	if !IsOutsideScopes(err) || IsInvalidToken(err) {
		t.Errorf("4.2.10 admin-only token: err = %v, want 403 outside the authorized scopes", err)
	}

	// A server without the endpoint (GoToSocial v0.17.3): ErrUnsupported.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"error":"Not Found"}`))
	}))
	t.Cleanup(srv.Close)
	gts, err := New(srv.URL, "tok", WithRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gts.VerifyAppCredentials(ctx); !errors.Is(err, ErrUnsupported) {
		t.Errorf("404: err = %v, want ErrUnsupported", err)
	}
}

func TestVerifyAccountCredentials(t *testing.T) {
	ctx := context.Background()
	sim := mastosim.New(mastosim.Options{})
	sim.AddToken("with-profile", "profile admin:read")
	sim.AddToken("admin-only", "admin:read admin:write")

	a, err := simClient(t, sim, "with-profile").VerifyAccountCredentials(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if a.ID == "" || a.Username != "admin" || a.Acct != "admin" || a.Role == nil || a.Role.Name == "" {
		t.Errorf("account = %+v", a)
	}
	_, err = simClient(t, sim, "admin-only").VerifyAccountCredentials(ctx)
	if !IsOutsideScopes(err) {
		t.Errorf("admin-only token: err = %v, want 403 outside the authorized scopes", err)
	}
	_, err = simClient(t, sim, "nope").VerifyAccountCredentials(ctx)
	if !IsInvalidToken(err) {
		t.Errorf("unknown token: err = %v, want 401", err)
	}
}

func TestProbe(t *testing.T) {
	ctx := context.Background()
	sim := mastosim.New(mastosim.Options{})
	sim.AddToken("triage", "admin:read:accounts admin:write:accounts")
	sim.AddToken("coarse", "admin:read")
	sim.AddToken("blocks", "admin:read:domain_blocks")

	tests := []struct {
		token     string
		probe     Probe
		wantScope string // "" = no *ScopeError
		wantOK    bool
	}{
		{"triage", ProbeAdminAccounts, "", true},
		{"coarse", ProbeAdminAccounts, "", true},
		{"coarse", ProbeDomainBlocks, "", true},
		{"blocks", ProbeDomainBlocks, "", true},
		{"triage", ProbeDomainBlocks, "admin:read:domain_blocks", false},
		{"blocks", ProbeAdminAccounts, "admin:read:accounts", false},
		// Mastodon answers an unknown token on admin endpoints like a role denial.
		{"unknown", ProbeAdminAccounts, "", false},
	}
	for _, tt := range tests {
		err := simClient(t, sim, tt.token).Probe(ctx, tt.probe)
		var se *ScopeError
		switch {
		case tt.wantOK && err != nil:
			t.Errorf("%s %s: %v", tt.token, tt.probe.Path, err)
		case tt.wantScope != "" && (!errors.As(err, &se) || se.Scope != tt.wantScope):
			t.Errorf("%s %s: err = %v, want missing scope %s", tt.token, tt.probe.Path, err, tt.wantScope)
		case !tt.wantOK && tt.wantScope == "" && (StatusOf(err) != http.StatusForbidden || errors.As(err, &se)):
			t.Errorf("%s %s: err = %v, want 403 not allowed", tt.token, tt.probe.Path, err)
		}
		if se != nil && !IsOutsideScopes(err) {
			t.Errorf("%s: the *ScopeError does not unwrap to the 403", tt.token)
		}
	}
	for _, r := range sim.Requests() {
		if r.Method != http.MethodGet {
			t.Errorf("probe sent %s %s", r.Method, r.Path)
		}
	}
}

func TestScopeCovers(t *testing.T) {
	tests := []struct {
		granted string
		need    string
		want    bool
	}{
		{"admin:read:accounts", "admin:read:accounts", true},
		{"admin:read", "admin:read:accounts", true},
		{"admin:read", "admin:read:domain_blocks", true},
		{"admin:write", "admin:write:accounts", true},
		{"admin:write", "admin:read:accounts", false},
		{"admin:read", "admin:write:accounts", false},
		{"admin:read:domain_blocks", "admin:read", false},
		{"read", "admin:read:accounts", false},
		{"read", "admin:read", false},
		{"read", "read:accounts", true},
		{"write", "write:statuses", true},
		{"read", "profile", true},
		{"read:accounts", "profile", true},
		{"admin:read admin:write", "profile", false},
		{"", "profile", false},
	}
	for _, tt := range tests {
		if got := ScopeCovers(fields(tt.granted), tt.need); got != tt.want {
			t.Errorf("ScopeCovers(%q, %q) = %v, want %v", tt.granted, tt.need, got, tt.want)
		}
	}
	got := MissingScopes(fields("admin:read profile admin:write:domain_blocks"),
		fields("admin:read:accounts admin:write:accounts admin:read:domain_blocks admin:write:domain_blocks admin:read profile admin:write:accounts"))
	if want := []string{"admin:write:accounts"}; !slices.Equal(got, want) {
		t.Errorf("MissingScopes = %v, want %v", got, want)
	}
}

func fields(s string) []string { return strings.Fields(s) }

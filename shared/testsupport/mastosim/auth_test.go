package mastosim

import (
	"slices"
	"strings"
	"testing"
)

func TestScopes(t *testing.T) {
	const (
		notAllowed = "This action is not allowed"
		outside    = "This action is outside the authorized scopes"
	)
	type endpoint struct {
		name, method, path string
		body               any
	}
	var (
		listAccounts = endpoint{"list accounts", "GET", "/api/v2/admin/accounts", nil}
		showAccount  = endpoint{"show account", "GET", "/api/v1/admin/accounts/{acct}", nil}
		approve      = endpoint{"approve", "POST", "/api/v1/admin/accounts/{acct}/approve", nil}
		listBlocks   = endpoint{"list blocks", "GET", "/api/v1/admin/domain_blocks", nil}
		createBlock  = endpoint{"create block", "POST", "/api/v1/admin/domain_blocks", map[string]any{"domain": "x.example"}}
		updateBlock  = endpoint{"update block", "PUT", "/api/v1/admin/domain_blocks/{block}", map[string]any{"severity": "suspend"}}
		deleteBlock  = endpoint{"delete block", "DELETE", "/api/v1/admin/domain_blocks/{block}", nil}
		measures     = endpoint{"measures", "POST", "/api/v1/admin/measures", map[string]any{
			"keys": []string{"instance_follows"}, "start_at": "2026-08-01", "end_at": "2026-08-02",
			"instance_follows": map[string]any{"domain": "x.example"}}}
	)
	tests := []struct {
		scopes string // "" = no token, "-" = unknown token
		ep     endpoint
		status int
		err    string
	}{
		{"", listAccounts, 403, notAllowed},
		{"", approve, 403, notAllowed},
		{"", listBlocks, 403, notAllowed},
		{"", createBlock, 403, notAllowed},
		{"", measures, 403, notAllowed},
		{"-", listAccounts, 403, notAllowed},
		{"-", deleteBlock, 403, notAllowed},
		{"read write follow", listAccounts, 403, outside},
		{"read write follow", listBlocks, 403, outside},
		{"admin:read", listAccounts, 200, ""},
		{"admin:read", showAccount, 200, ""},
		{"admin:read", listBlocks, 200, ""},
		{"admin:read", measures, 200, ""},
		{"admin:read", approve, 403, outside},
		{"admin:read", createBlock, 403, outside},
		{"admin:read:accounts admin:write:accounts profile", listAccounts, 200, ""},
		{"admin:read:accounts admin:write:accounts profile", showAccount, 200, ""},
		{"admin:read:accounts admin:write:accounts profile", approve, 200, ""},
		{"admin:read:accounts admin:write:accounts profile", listBlocks, 403, outside},
		{"admin:read:accounts admin:write:accounts profile", measures, 403, outside},
		{"admin:read:domain_blocks admin:write:domain_blocks", listBlocks, 200, ""},
		{"admin:read:domain_blocks admin:write:domain_blocks", createBlock, 200, ""},
		{"admin:read:domain_blocks admin:write:domain_blocks", updateBlock, 200, ""},
		{"admin:read:domain_blocks admin:write:domain_blocks", deleteBlock, 200, ""},
		{"admin:read:domain_blocks admin:write:domain_blocks", listAccounts, 403, outside},
		{"admin:write", approve, 200, ""},
		{"admin:write", createBlock, 200, ""},
		{"admin:write", listBlocks, 403, outside},
		{"admin:write:domain_blocks", measures, 403, outside},
	}
	for _, tt := range tests {
		t.Run(tt.scopes+" "+tt.ep.name, func(t *testing.T) {
			s, _ := newSim(t, Options{})
			acct := s.AddAccount(Account{Username: "p"})
			block := s.AddDomainBlock(DomainBlock{Domain: "b.example"})
			tok := ""
			switch tt.scopes {
			case "":
			case "-":
				tok = "unknown"
			default:
				tok = "scoped"
				s.AddToken(tok, tt.scopes)
			}
			path := strings.NewReplacer("{acct}", acct, "{block}", block).Replace(tt.ep.path)
			w := do(t, s, tt.ep.method, path, tok, tt.ep.body)
			if tt.err != "" {
				wantError(t, w, tt.status, tt.err)
			} else {
				wantStatus(t, w, tt.status)
			}
		})
	}
}

func TestNoTokenOrderOfChecks(t *testing.T) {
	// set_account runs before Pundit: without a token an unknown id is still a 404,
	// and invalid filters are a 400.
	s, _ := newSim(t, Options{})
	wantError(t, do(t, s, "GET", "/api/v1/admin/accounts/42", "", nil), 404, "Record not found")
	wantError(t, do(t, s, "GET", "/api/v2/admin/accounts?status=nope", "", nil), 400, "Unknown status: nope")
	// ... but a token without the scope is refused before anything else.
	s.AddToken("r", "read")
	wantError(t, do(t, s, "GET", "/api/v1/admin/accounts/42", "r", nil), 403, "This action is outside the authorized scopes")
	// access_token as a query parameter works like the header.
	wantStatus(t, do(t, s, "GET", "/api/v1/admin/domain_blocks?access_token="+adminTok, "", nil), 200)
	if got := s.Requests()[3].Token; got != adminTok {
		t.Fatalf("recorded token %q", got)
	}
}

func TestVerifyCredentials(t *testing.T) {
	s, _ := newSim(t, Options{})
	s.AddToken("profile", "admin:read admin:write:accounts profile")

	wantError(t, do(t, s, "GET", "/api/v1/apps/verify_credentials", "", nil), 401, "The access token is invalid")
	wantError(t, do(t, s, "GET", "/api/v1/apps/verify_credentials", "bogus", nil), 401, "The access token is invalid")
	w := do(t, s, "GET", "/api/v1/apps/verify_credentials", adminTok, nil)
	wantStatus(t, w, 200)
	app := decode[struct {
		Name   string   `json:"name"`
		Scopes []string `json:"scopes"`
	}](t, w)
	if app.Name == "" || !slices.Equal(app.Scopes, []string{"admin:read", "admin:write"}) {
		t.Fatalf("app = %+v", app)
	}
	// Before 4.3 it needed `read`.
	old, _ := newSim(t, Options{Version: "4.2.10"})
	wantError(t, do(t, old, "GET", "/api/v1/apps/verify_credentials", adminTok, nil), 403, "This action is outside the authorized scopes")

	wantError(t, do(t, s, "GET", "/api/v1/accounts/verify_credentials", adminTok, nil), 403, "This action is outside the authorized scopes")
	wantError(t, do(t, s, "GET", "/api/v1/accounts/verify_credentials", "bogus", nil), 401, "The access token is invalid")
	w = do(t, s, "GET", "/api/v1/accounts/verify_credentials", "profile", nil)
	wantStatus(t, w, 200)
	if got := decode[map[string]any](t, w); got["username"] != "admin" || got["id"] != "1" {
		t.Fatalf("account = %v", got)
	}
	s.AddToken("reader", "read:accounts")
	wantStatus(t, do(t, s, "GET", "/api/v1/accounts/verify_credentials", "reader", nil), 200)
	s.RemoveToken("reader")
	wantStatus(t, do(t, s, "GET", "/api/v1/accounts/verify_credentials", "reader", nil), 401)
}

func TestCreateApp(t *testing.T) {
	s, _ := newSim(t, Options{})
	w := do(t, s, "POST", "/api/v1/apps", "", map[string]any{
		"client_name": "fediops", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob",
		"scopes": "admin:read admin:write:accounts profile", "website": "https://fediops.example",
	})
	wantStatus(t, w, 200)
	got := decode[map[string]any](t, w)
	if got["client_id"] == "" || got["client_secret"] == "" || got["name"] != "fediops" || got["client_secret_expires_at"] != float64(0) {
		t.Fatalf("app = %v", got)
	}
	if sc, _ := got["scopes"].([]any); len(sc) != 3 || sc[2] != "profile" {
		t.Fatalf("scopes = %v", got["scopes"])
	}
	wantError(t, do(t, s, "POST", "/api/v1/apps", "", map[string]any{"redirect_uris": "urn:ietf:wg:oauth:2.0:oob"}),
		422, "Validation failed: Application name can't be blank")
	wantError(t, do(t, s, "POST", "/api/v1/apps", "", map[string]any{"client_name": "x", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob", "scopes": "admin:everything"}),
		422, "Validation failed: Scopes doesn't match configured on the server.")
}

func TestInstance(t *testing.T) {
	tests := []struct {
		version     string
		apiVersions bool
	}{
		{"", true},
		{"4.2.10", false},
		{"4.8.0-alpha.1", true},
	}
	for _, tt := range tests {
		t.Run(tt.version, func(t *testing.T) {
			s, _ := newSim(t, Options{Version: tt.version, Title: "Sandbox"})
			want := tt.version
			if want == "" {
				want = "4.3.0"
			}
			v2 := decode[map[string]any](t, do(t, s, "GET", "/api/v2/instance", "", nil))
			if v2["version"] != want || v2["source_url"] != "https://github.com/mastodon/mastodon" || v2["title"] != "Sandbox" || v2["domain"] != host {
				t.Fatalf("v2 = %v", v2)
			}
			if reg := v2["registrations"].(map[string]any); reg["approval_required"] != true {
				t.Fatalf("registrations = %v", reg)
			}
			if _, ok := v2["api_versions"]; ok != tt.apiVersions {
				t.Fatalf("api_versions present = %v", ok)
			}
			v1 := decode[map[string]any](t, do(t, s, "GET", "/api/v1/instance", "", nil))
			if v1["version"] != want || v1["approval_required"] != true || v1["uri"] != host {
				t.Fatalf("v1 = %v", v1)
			}
		})
	}
}

func TestUnknownRoutes(t *testing.T) {
	s, _ := newSim(t, Options{})
	for _, r := range []struct{ method, path string }{
		{"GET", "/api/v1/nothing"},
		{"GET", "/api/v1/admin/measures"},
		{"DELETE", "/api/v2/admin/accounts"},
		{"GET", "/"},
		{"POST", "/api/v1/admin/accounts/1/suspend"},
	} {
		wantError(t, do(t, s, r.method, r.path, adminTok, nil), 404, "Record not found")
	}
	// Malformed JSON bodies are a 400.
	wantError(t, do(t, s, "POST", "/api/v1/admin/domain_blocks", adminTok, "{not json"), 400,
		"The request you submitted was invalid or malformed.")
}

package mastosim

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestAccountsPaginationFollowsLinkHeaders(t *testing.T) {
	s, _ := newSim(t, Options{})
	pending := seedPending(s, 5, "p")
	s.AddAccount(Account{Username: "old", Email: "old@mail.example", Approved: true, Confirmed: true})
	s.AddAccount(Account{Username: "remote", Domain: "other.example"})
	desc := reversed(pending)

	w := do(t, s, "GET", "/api/v2/admin/accounts?status=pending&limit=2", adminTok, nil)
	wantStatus(t, w, 200)
	if got := ids(t, w); !slices.Equal(got, desc[:2]) {
		t.Fatalf("page 1 = %v, want %v", got, desc[:2])
	}
	wantLink := fmt.Sprintf(`<http://social.example/api/v2/admin/accounts?limit=2&max_id=%s&status=pending>; rel="next", `+
		`<http://social.example/api/v2/admin/accounts?limit=2&min_id=%s&status=pending>; rel="prev"`, desc[1], desc[0])
	if got := w.Header().Get("Link"); got != wantLink {
		t.Fatalf("Link =\n %s\nwant\n %s", got, wantLink)
	}

	// Follow rel="next" to the end: 2, 2, 1; the last page is not full so it has no next.
	var all []string
	next := "/api/v2/admin/accounts?status=pending&limit=2"
	pages := 0
	for next != "" {
		w := do(t, s, "GET", next, adminTok, nil)
		wantStatus(t, w, 200)
		all = append(all, ids(t, w)...)
		next = ""
		for _, part := range strings.Split(w.Header().Get("Link"), ", ") {
			if strings.HasSuffix(part, `rel="next"`) {
				next = strings.TrimPrefix(strings.SplitN(part, ">", 2)[0], "<")
			}
		}
		pages++
	}
	if pages != 3 || !slices.Equal(all, desc) {
		t.Fatalf("walked %d pages: %v, want 3 pages %v", pages, all, desc)
	}

	// min_id returns the records just above it, still in DESC order; since_id the newest above it.
	w = do(t, s, "GET", "/api/v2/admin/accounts?status=pending&limit=2&min_id="+pending[0], adminTok, nil)
	if got := ids(t, w); !slices.Equal(got, []string{pending[2], pending[1]}) {
		t.Fatalf("min_id page = %v, want %v", got, []string{pending[2], pending[1]})
	}
	w = do(t, s, "GET", "/api/v2/admin/accounts?status=pending&limit=2&since_id="+pending[0], adminTok, nil)
	if got := ids(t, w); !slices.Equal(got, []string{pending[4], pending[3]}) {
		t.Fatalf("since_id page = %v", got)
	}

	// An empty page has no Link header at all.
	w = do(t, s, "GET", "/api/v2/admin/accounts?status=pending&max_id="+pending[0], adminTok, nil)
	wantStatus(t, w, 200)
	if got := ids(t, w); len(got) != 0 || w.Header().Get("Link") != "" {
		t.Fatalf("empty page = %v, Link %q", got, w.Header().Get("Link"))
	}
}

func TestAccountsLinkSchemeFromForwardedProto(t *testing.T) {
	s, _ := newSim(t, Options{})
	id := seedPending(s, 1, "p")[0]
	r := do(t, s, "GET", "/api/v2/admin/accounts?limit=1&username=p", adminTok, nil)
	if want := `<http://social.example/api/v2/admin/accounts?limit=1&max_id=` + id + `&username=p>; rel="next"`; !strings.HasPrefix(r.Header().Get("Link"), want) {
		t.Fatalf("Link = %s", r.Header().Get("Link"))
	}
	req := newReq("GET", "/api/v2/admin/accounts?limit=1", adminTok)
	req.Header.Set("X-Forwarded-Proto", "https")
	w := serve(s, req)
	if !strings.HasPrefix(w.Header().Get("Link"), "<https://social.example/api/v2/admin/accounts?limit=1&max_id=") {
		t.Fatalf("Link = %s", w.Header().Get("Link"))
	}
}

func TestAccountsLimitClamping(t *testing.T) {
	s, _ := newSim(t, Options{RateLimit: -1, PagingLimit: -1})
	for i := 0; i < 250; i++ {
		s.AddAccount(Account{Username: fmt.Sprintf("u%03d", i)})
	}
	tests := []struct {
		query    string
		status   int
		n        int
		wantNext bool
	}{
		{"", 200, 100, true},
		{"limit=40", 200, 40, true},
		{"limit=1000", 200, 200, true},
		{"limit=-3", 200, 3, true},   // .to_i.abs
		{"limit=7abc", 200, 7, true}, // String#to_i
		{"limit=0", 500, 0, false},   // records_continue? on an empty page → nil.id
		{"limit=abc", 500, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			w := do(t, s, "GET", "/api/v2/admin/accounts?"+tt.query, adminTok, nil)
			wantStatus(t, w, tt.status)
			if tt.status != 200 {
				return
			}
			if got := len(ids(t, w)); got != tt.n {
				t.Fatalf("got %d accounts, want %d", got, tt.n)
			}
			if got := strings.Contains(w.Header().Get("Link"), `rel="next"`); got != tt.wantNext {
				t.Fatalf("next link = %v, want %v", got, tt.wantNext)
			}
		})
	}
	// The Link keeps the limit parameter as sent, not the clamped value.
	w := do(t, s, "GET", "/api/v2/admin/accounts?limit=1000", adminTok, nil)
	if !strings.Contains(w.Header().Get("Link"), "?limit=1000&max_id=") {
		t.Fatalf("Link = %s", w.Header().Get("Link"))
	}
}

func TestAccountsFilters(t *testing.T) {
	s, _ := newSim(t, Options{})
	alice := s.AddAccount(Account{Username: "Alice", Email: "alice@Spam.example", IP: "203.0.113.7"})
	bob := s.AddAccount(Account{Username: "bob", Email: "bob@mail.example", Approved: true, Confirmed: true})
	carol := s.AddAccount(Account{Username: "carol", Email: "carol@spam.example", Suspended: true})
	remote := s.AddAccount(Account{Username: "alice", Domain: "Other.Example"})
	tests := []struct {
		query string
		want  []string
	}{
		{"", []string{remote, carol, bob, alice}},
		{"origin=local", []string{carol, bob, alice}},
		{"origin=remote", []string{remote}},
		{"status=pending", []string{carol, alice}},
		{"status=active", []string{remote, bob, alice}},
		{"status=suspended", []string{carol}},
		{"status=pending&origin=local&username=ali", []string{alice}},
		{"username=%40AL", []string{remote, alice}}, // case-insensitive prefix, leading @ stripped
		{"username=lice", nil},
		{"email=bob%40", []string{bob}},
		{"email=%25%40spam.example", []string{carol, alice}}, // % is not escaped: "contains"
		{"by_domain=other.example&origin=remote", []string{remote}},
		{"ip=203.0.113.0/24", []string{alice}},
		{"ip=not-an-ip", nil},
		{"permissions=staff", nil},
		{"permissions=whatever", []string{remote, carol, bob, alice}}, // not a filter key: ignored
		{"origin=", []string{remote, carol, bob, alice}},              // blank values are skipped
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			w := do(t, s, "GET", "/api/v2/admin/accounts?"+tt.query, adminTok, nil)
			wantStatus(t, w, 200)
			if got := ids(t, w); !slices.Equal(got, tt.want) && !(len(got) == 0 && len(tt.want) == 0) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
	// v1 defaults to origin=local, status=active and uses boolean flags.
	w := do(t, s, "GET", "/api/v1/admin/accounts", adminTok, nil)
	if got := ids(t, w); !slices.Equal(got, []string{bob, alice}) {
		t.Fatalf("v1 default = %v", got)
	}
	w = do(t, s, "GET", "/api/v1/admin/accounts?pending=true", adminTok, nil)
	if got := ids(t, w); !slices.Equal(got, []string{carol, alice}) {
		t.Fatalf("v1 pending = %v", got)
	}
}

func TestAccountsUnknownFilterValues(t *testing.T) {
	s, _ := newSim(t, Options{})
	wantError(t, do(t, s, "GET", "/api/v2/admin/accounts?origin=mars", adminTok, nil), 400, "Unknown origin: mars")
	wantError(t, do(t, s, "GET", "/api/v2/admin/accounts?status=zombie", adminTok, nil), 400, "Unknown status: zombie")
	// origin is checked before status (AccountFilter::KEYS order).
	wantError(t, do(t, s, "GET", "/api/v2/admin/accounts?status=zombie&origin=mars", adminTok, nil), 400, "Unknown origin: mars")
}

func TestAdminAccountJSON(t *testing.T) {
	s, _ := newSim(t, Options{})
	created := time.Date(2026, 8, 20, 10, 11, 12, 345_000_000, time.UTC)
	id := s.AddAccount(Account{
		Username: "newbie", Email: "newbie@mail.example.org", CreatedAt: created, Locale: "en",
		InviteRequest: "I run the bike club", IP: "203.0.113.7",
	})
	rid := s.AddAccount(Account{Username: "far", Domain: "remote.example", CreatedAt: created})

	w := do(t, s, "GET", "/api/v1/admin/accounts/"+id, adminTok, nil)
	wantStatus(t, w, 200)
	got := decode[map[string]any](t, w)
	want := map[string]any{
		"id": id, "username": "newbie", "domain": nil, "created_at": "2026-08-20T10:11:12.345Z",
		"email": "newbie@mail.example.org", "ip": "203.0.113.7", "confirmed": false, "approved": false,
		"suspended": false, "silenced": false, "sensitized": false, "disabled": false, "locale": "en",
		"invite_request": "I run the bike club",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %#v, want %#v", k, got[k], v)
		}
	}
	acct := got["account"].(map[string]any)
	if acct["id"] != id || acct["acct"] != "newbie" || acct["created_at"] != "2026-08-20T00:00:00.000Z" || acct["url"] != "https://social.example/@newbie" {
		t.Errorf("account = %v", acct)
	}
	role := got["role"].(map[string]any)
	if role["id"] != "-99" || role["permissions"] != "65536" {
		t.Errorf("role = %v", role)
	}
	ips := got["ips"].([]any)
	if len(ips) != 1 || ips[0].(map[string]any)["ip"] != "203.0.113.7" {
		t.Errorf("ips = %v", ips)
	}

	w = do(t, s, "GET", "/api/v1/admin/accounts/"+rid, adminTok, nil)
	got = decode[map[string]any](t, w)
	if got["domain"] != "remote.example" || got["role"] != nil || got["email"] != nil || got["approved"] != nil {
		t.Errorf("remote = %v", got)
	}
	if got["account"].(map[string]any)["acct"] != "far@remote.example" {
		t.Errorf("remote acct = %v", got["account"])
	}
	wantError(t, do(t, s, "GET", "/api/v1/admin/accounts/999", adminTok, nil), 404, "Record not found")
	wantError(t, do(t, s, "GET", "/api/v1/admin/accounts/abc", adminTok, nil), 404, "Record not found")
}

func TestApproveReject(t *testing.T) {
	type step struct {
		method, action string
		id             string // "pending", "pending2", "approved", "remote", "missing"
		status         int
		errMsg         string
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"approve pending", []step{{"POST", "approve", "pending", 200, ""}}},
		{"approve twice", []step{{"POST", "approve", "pending", 200, ""}, {"POST", "approve", "pending", 403, "This action is not allowed"}}},
		{"approve already approved", []step{{"POST", "approve", "approved", 403, "This action is not allowed"}}},
		{"reject already approved", []step{{"POST", "reject", "approved", 403, "This action is not allowed"}}},
		// require_local_account! calls ApplicationController#forbidden, which
		// Api::BaseController#respond_with_error renders with the status text
		// (app/controllers/api/v1/admin/accounts_controller.rb, app/controllers/api/base_controller.rb).
		{"approve remote: require_local_account! forbidden", []step{{"POST", "approve", "remote", 403, "Forbidden"}}},
		{"reject remote: require_local_account! forbidden", []step{{"POST", "reject", "remote", 403, "Forbidden"}}},
		{"approve unknown", []step{{"POST", "approve", "missing", 404, "Record not found"}}},
		{"reject unknown", []step{{"POST", "reject", "missing", 404, "Record not found"}}},
		{"reject then everything is 404", []step{
			{"POST", "reject", "pending", 200, ""},
			{"POST", "reject", "pending", 404, "Record not found"},
			{"POST", "approve", "pending", 404, "Record not found"},
			{"GET", "", "pending", 404, "Record not found"},
		}},
		{"approve then reject", []step{{"POST", "approve", "pending", 200, ""}, {"POST", "reject", "pending", 403, "This action is not allowed"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newSim(t, Options{})
			idOf := map[string]string{
				"pending":  s.AddAccount(Account{Username: "p", Email: "p@x.example", Confirmed: false}),
				"approved": s.AddAccount(Account{Username: "a", Approved: true, Confirmed: true}),
				"remote":   s.AddAccount(Account{Username: "r", Domain: "remote.example"}),
				"missing":  "12345",
			}
			for _, st := range tt.steps {
				path := "/api/v1/admin/accounts/" + idOf[st.id]
				if st.action != "" {
					path += "/" + st.action
				}
				w := do(t, s, st.method, path, adminTok, nil)
				if st.errMsg != "" {
					wantError(t, w, st.status, st.errMsg)
					continue
				}
				wantStatus(t, w, st.status)
				switch st.action {
				case "approve":
					got := decode[map[string]any](t, w)
					if got["approved"] != true || got["id"] != idOf[st.id] {
						t.Fatalf("approve body = %v", got)
					}
					if a, _ := s.Account(idOf[st.id]); !a.Approved {
						t.Fatal("account not approved in state")
					}
				case "reject":
					if w.Body.String() != "{}" {
						t.Fatalf("reject body = %s", w.Body.String())
					}
					if _, ok := s.Account(idOf[st.id]); ok {
						t.Fatal("rejected account still exists")
					}
				}
			}
		})
	}
}

func TestAccountIDsIncrease(t *testing.T) {
	s, _ := newSim(t, Options{})
	a := s.AddAccount(Account{Username: "a", CreatedAt: t0})
	b := s.AddAccount(Account{Username: "b", CreatedAt: t0.Add(-48 * time.Hour)}) // older date, still a larger id
	c := s.AddAccount(Account{Username: "c"})
	if !(len(a) >= 15 && idLess(a, b) && idLess(b, c)) {
		t.Fatalf("ids not increasing snowflakes: %s %s %s", a, b, c)
	}
	got := s.Accounts()
	if len(got) != 3 || got[0].ID != a || got[2].ID != c {
		t.Fatalf("Accounts() = %+v", got)
	}
}

func idLess(a, b string) bool { return len(a) < len(b) || (len(a) == len(b) && a < b) }

func newReq(method, path, tok string) *http.Request {
	r, _ := http.NewRequest(method, "http://"+host+path, nil)
	r.RemoteAddr = "192.0.2.1:1234"
	if tok != "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	return r
}

// TestApproveRemoteWithoutTokenIsForbiddenFirst: require_local_account! is a before_action, so
// it answers before Pundit's authorize, even without a token
// (app/controllers/api/v1/admin/accounts_controller.rb).
func TestApproveRemoteWithoutTokenIsForbiddenFirst(t *testing.T) {
	s, _ := newSim(t, Options{})
	remote := s.AddAccount(Account{Username: "r", Domain: "remote.example"})
	local := s.AddAccount(Account{Username: "l"})
	wantError(t, do(t, s, "POST", "/api/v1/admin/accounts/"+remote+"/approve", "", nil), 403, "Forbidden")
	wantError(t, do(t, s, "POST", "/api/v1/admin/accounts/"+local+"/approve", "", nil), 403, "This action is not allowed")
}

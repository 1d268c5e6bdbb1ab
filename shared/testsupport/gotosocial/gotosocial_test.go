package gotosocial

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/smtp"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// adminAccount is the part of GoToSocial's admin account JSON the tests look at.
type adminAccount struct {
	ID        string `json:"id"`
	Username  string `json:"username"`
	Email     string `json:"email"`
	Confirmed bool   `json:"confirmed"`
	Approved  bool   `json:"approved"`
}

type domainBlock struct {
	ID     string `json:"id"`
	Domain string `json:"domain"`
}

// api sends a request with the admin token and decodes the JSON answer into out.
func api(t *testing.T, s *Server, method, target string, form url.Values, out any) http.Header {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	if strings.HasPrefix(target, "/") {
		target = s.URL + target
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.AdminToken)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %s: %s", method, target, resp.Status, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, target, err, b)
		}
	}
	return resp.Header
}

var nextLinkRE = regexp.MustCompile(`<([^>]+)>\s*;\s*rel="next"`)

// pending lists all pending local sign-ups one per page, following Link rel="next" until a page
// is empty or has no next link.
func pending(t *testing.T, s *Server) (accounts []adminAccount, pages int) {
	t.Helper()
	next := "/api/v2/admin/accounts?origin=local&status=pending&limit=1"
	for next != "" {
		if pages++; pages > 50 {
			t.Fatal("more than 50 pages")
		}
		var page []adminAccount
		h := api(t, s, http.MethodGet, next, nil, &page)
		if len(page) > 1 {
			t.Fatalf("limit=1 gave %d accounts", len(page))
		}
		accounts = append(accounts, page...)
		next = ""
		if m := nextLinkRE.FindStringSubmatch(h.Get("Link")); len(page) > 0 && m != nil {
			next = m[1]
			if !strings.HasPrefix(next, s.URL+"/") {
				t.Fatalf("next link %q is not on %s", next, s.URL)
			}
		}
	}
	return accounts, pages
}

// TestServer starts one server (≈ 20 s cold, a few seconds with a warm compilation cache) and
// shares it between subtests: the pattern for integration tests.
func TestServer(t *testing.T) {
	s := Start(t, Options{})

	t.Run("admin token", func(t *testing.T) {
		var me struct {
			Username string `json:"username"`
		}
		api(t, s, http.MethodGet, "/api/v1/accounts/verify_credentials", nil, &me)
		if me.Username != s.AdminUsername {
			t.Errorf("verify_credentials: username %q, want %q", me.Username, s.AdminUsername)
		}
		if h := api(t, s, http.MethodGet, "/api/v1/instance", nil, nil); h.Get("Server") != "gotosocial" {
			t.Errorf("Server header %q, want gotosocial", h.Get("Server"))
		}
	})

	t.Run("triage", func(t *testing.T) {
		aliceID := s.SignUp(t, "alice", "alice@example.org")
		bobID := s.SignUp(t, "bob", "bob@example.org")
		s.ConfirmEmail(t, "bob@example.org")

		got, pages := pending(t, s)
		if pages < 3 {
			t.Errorf("followed %d pages, want ≥ 3 (one per account, then an empty one)", pages)
		}
		byID := map[string]adminAccount{}
		for _, a := range got {
			byID[a.ID] = a
		}
		if len(got) != 2 || len(byID) != 2 {
			t.Fatalf("pending accounts: %+v, want alice and bob", got)
		}
		alice, bob := byID[aliceID], byID[bobID]
		if alice.Username != "alice" || bob.Username != "bob" {
			t.Fatalf("pending accounts: %+v, want alice (%s) and bob (%s)", got, aliceID, bobID)
		}
		if alice.Confirmed || !bob.Confirmed {
			t.Errorf("confirmed: alice %v, bob %v; want false, true", alice.Confirmed, bob.Confirmed)
		}
		if alice.Approved || bob.Approved {
			t.Errorf("approved before approval: alice %v, bob %v", alice.Approved, bob.Approved)
		}

		var approved adminAccount
		api(t, s, http.MethodPost, "/api/v1/admin/accounts/"+bobID+"/approve", url.Values{}, &approved)
		if approved.ID != bobID || !approved.Approved {
			t.Errorf("approve: got %+v", approved)
		}
		// The approval's side effects run asynchronously; the listing follows shortly.
		deadline := time.Now().Add(10 * time.Second)
		for {
			got, _ = pending(t, s)
			if len(got) == 1 && got[0].ID == aliceID {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("pending after approving bob: %+v, want only alice", got)
			}
			time.Sleep(200 * time.Millisecond)
		}
		var acct adminAccount
		api(t, s, http.MethodGet, "/api/v1/admin/accounts/"+bobID, nil, &acct)
		if !acct.Approved || !acct.Confirmed {
			t.Errorf("bob after approval: %+v", acct)
		}
		// The admin was told about each sign-up.
		s.WaitMail(t, func(m Mail) bool { return m.HasRecipient(s.AdminEmail) && strings.Contains(m.Body, "alice") })
	})

	t.Run("domain blocks", func(t *testing.T) {
		var created domainBlock
		api(t, s, http.MethodPost, "/api/v1/admin/domain_blocks", url.Values{
			"domain":          {"spam.example"},
			"public_comment":  {"spam"},
			"private_comment": {"fediops test"},
		}, &created)
		if created.ID == "" || created.Domain != "spam.example" {
			t.Fatalf("created block: %+v", created)
		}
		var blocks []domainBlock
		api(t, s, http.MethodGet, "/api/v1/admin/domain_blocks", nil, &blocks)
		found := false
		for _, b := range blocks {
			found = found || b == created
		}
		if !found {
			t.Errorf("blocks %+v do not include %+v", blocks, created)
		}
	})

	t.Run("token with scopes", func(t *testing.T) {
		tok := s.Token(t, "read")
		if tok == "" || tok == s.AdminToken {
			t.Fatalf("Token: %q", tok)
		}
	})
}

func TestMailSink(t *testing.T) {
	sink, err := newMailSink()
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	msg := "To: bob@example.org\r\nSubject: GoToSocial Email Confirmation\r\n\r\n" +
		"Hello bob!\r\n.leading dot\r\nhttp://localhost:1/confirm_email?token=0b6e-77\r\n"
	if err := smtp.SendMail(sink.Addr().String(), nil, "gts@localhost", []string{"bob@example.org"}, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := sink.Wait(ctx, func(m Mail) bool { return m.HasRecipient("BOB@example.org") })
	if err != nil {
		t.Fatal(err)
	}
	if m.From != "gts@localhost" || m.Subject != "GoToSocial Email Confirmation" ||
		m.Body != "Hello bob!\n.leading dot\nhttp://localhost:1/confirm_email?token=0b6e-77\n" {
		t.Errorf("mail: %+v", m)
	}
	if got := confirmLinkRE.FindStringSubmatch(m.Body); got == nil || got[1] != "0b6e-77" {
		t.Errorf("token: %v", got)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if _, err := sink.Wait(short, func(m Mail) bool { return false }); err == nil {
		t.Error("Wait for a mail that never comes: no error")
	}
}

func TestConfig(t *testing.T) {
	sink, err := newMailSink()
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	s := &Server{Dir: "/tmp/x", Host: "localhost:1234", mail: sink,
		install: Install{TemplateDir: "/t/template", AssetDir: "/t/assets"}}
	for _, tc := range []struct {
		opts Options
		want []string
	}{
		{Options{}, []string{"advanced-rate-limit-requests: 0\n", "advanced-throttling-multiplier: 0\n", `log-level: "info"`}},
		{Options{RateLimit: true, Throttling: true, LogLevel: "debug"}, []string{"advanced-rate-limit-requests: 300\n", "advanced-throttling-multiplier: 8\n", `log-level: "debug"`}},
	} {
		cfg := s.config(1234, tc.opts)
		for _, want := range append(tc.want,
			`host: "localhost:1234"`, "port: 1234\n", `db-address: "/tmp/x/sqlite.db"`,
			`web-template-base-dir: "/t/template/"`, `smtp-host: "127.0.0.1"`,
			"smtp-port: "+strconv.Itoa(sink.Addr().Port)+"\n") {
			if !strings.Contains(cfg, want) {
				t.Errorf("%+v: config lacks %q:\n%s", tc.opts, want, cfg)
			}
		}
	}
	if got := addrParam("FROM:<gts@localhost> BODY=8BITMIME", "FROM:"); got != "gts@localhost" {
		t.Errorf("addrParam: %q", got)
	}
}

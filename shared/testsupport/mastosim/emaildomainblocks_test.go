package mastosim

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
)

type emailBlockOut struct {
	ID                string `json:"id"`
	Domain            string `json:"domain"`
	AllowWithApproval *bool  `json:"allow_with_approval"`
	History           []struct {
		Day, Accounts, Uses string
	} `json:"history"`
}

func TestEmailDomainBlocksCreateListShowDelete(t *testing.T) {
	s, _ := newSim(t, Options{})
	w := do(t, s, http.MethodPost, "/api/v1/admin/email_domain_blocks", adminTok, url.Values{"domain": {" Spam.Example. "}})
	wantStatus(t, w, http.StatusOK)
	b := decode[emailBlockOut](t, w)
	if b.Domain != "spam.example" || b.AllowWithApproval == nil || *b.AllowWithApproval || len(b.History) != 7 || b.History[0].Uses != "0" {
		t.Fatalf("created %+v", b)
	}
	// A duplicate, a blank and an invalid domain: 422 with the validation messages.
	wantError(t, do(t, s, http.MethodPost, "/api/v1/admin/email_domain_blocks", adminTok, map[string]any{"domain": "SPAM.example"}),
		http.StatusUnprocessableEntity, "Validation failed: Domain has already been taken")
	wantError(t, do(t, s, http.MethodPost, "/api/v1/admin/email_domain_blocks", adminTok, map[string]any{"domain": ""}),
		http.StatusUnprocessableEntity, "Validation failed: Domain can't be blank")
	wantError(t, do(t, s, http.MethodPost, "/api/v1/admin/email_domain_blocks", adminTok, map[string]any{"domain": "bad_domain!.example"}),
		http.StatusUnprocessableEntity, "Validation failed: Domain is not a valid domain name")

	w = do(t, s, http.MethodPost, "/api/v1/admin/email_domain_blocks", adminTok, map[string]any{"domain": "wait.example", "allow_with_approval": true})
	wantStatus(t, w, http.StatusOK)
	if b2 := decode[emailBlockOut](t, w); !*b2.AllowWithApproval {
		t.Errorf("allow_with_approval not kept: %s", w.Body.String())
	}
	w = do(t, s, http.MethodGet, "/api/v1/admin/email_domain_blocks/"+b.ID, adminTok, nil)
	wantStatus(t, w, http.StatusOK)
	wantStatus(t, do(t, s, http.MethodGet, "/api/v1/admin/email_domain_blocks/999", adminTok, nil), http.StatusNotFound)

	w = do(t, s, http.MethodGet, "/api/v1/admin/email_domain_blocks", adminTok, nil)
	wantStatus(t, w, http.StatusOK)
	if got := ids(t, w); len(got) != 2 || got[0] <= got[1] {
		t.Errorf("index ids %v, want newest first", got)
	}
	wantStatus(t, do(t, s, http.MethodDelete, "/api/v1/admin/email_domain_blocks/"+b.ID, adminTok, nil), http.StatusOK)
	if got := s.EmailDomainBlocks(); len(got) != 1 || got[0].Domain != "wait.example" {
		t.Errorf("after delete: %+v", got)
	}
	wantStatus(t, do(t, s, http.MethodDelete, "/api/v1/admin/email_domain_blocks/"+b.ID, adminTok, nil), http.StatusNotFound)
}

// The admin UI's MX children are listed by the API, inherit allow_with_approval and go with
// their parent.
func TestEmailDomainBlocksMXChildren(t *testing.T) {
	s, _ := newSim(t, Options{})
	s.AddEmailDomainBlock(EmailDomainBlock{Domain: "mx.example"})
	id := s.AddEmailDomainBlock(EmailDomainBlock{Domain: "hosted.example", AllowWithApproval: true, OtherDomains: []string{"mx.example", "mx2.example"}})
	all := s.EmailDomainBlocks()
	if len(all) != 3 || all[2].Domain != "mx2.example" || all[2].ParentID != id || !all[2].AllowWithApproval {
		t.Fatalf("blocks %+v", all)
	}
	w := do(t, s, http.MethodGet, "/api/v1/admin/email_domain_blocks", adminTok, nil)
	if got := ids(t, w); len(got) != 3 {
		t.Errorf("index lists %v, want the child too", got)
	}
	wantStatus(t, do(t, s, http.MethodDelete, "/api/v1/admin/email_domain_blocks/"+id, adminTok, nil), http.StatusOK)
	if got := s.EmailDomainBlocks(); len(got) != 1 || got[0].Domain != "mx.example" {
		t.Errorf("after deleting the parent: %+v", got)
	}
}

func TestEmailDomainBlocksPagination(t *testing.T) {
	s, _ := newSim(t, Options{RateLimit: -1, PagingLimit: -1})
	for i := 0; i < 450; i++ {
		s.AddEmailDomainBlock(EmailDomainBlock{Domain: "d" + strconv.Itoa(i) + ".example"})
	}
	var seen []string
	target := "/api/v1/admin/email_domain_blocks?limit=1000"
	pages := 0
	for target != "" {
		w := do(t, s, http.MethodGet, target, adminTok, nil)
		wantStatus(t, w, http.StatusOK)
		page := ids(t, w)
		if len(page) > 200 {
			t.Fatalf("page of %d, want at most 200", len(page))
		}
		seen = append(seen, page...)
		pages++
		target = ""
		for _, l := range strings.Split(w.Header().Get("Link"), ",") {
			if strings.Contains(l, `rel="next"`) {
				u := strings.Trim(strings.TrimSpace(strings.Split(l, ";")[0]), "<>")
				if !strings.Contains(u, "limit=1000") {
					t.Errorf("next link %q lost the limit", u)
				}
				target = u
			}
		}
	}
	uniq := slices.Compact(slices.Sorted(slices.Values(seen)))
	if len(seen) != 450 || len(uniq) != 450 || pages != 3 {
		t.Errorf("read %d blocks in %d pages", len(seen), pages)
	}
}

func TestEmailDomainBlocksScopesAndVersions(t *testing.T) {
	s, _ := newSim(t, Options{})
	s.AddToken("accounts-only", "admin:read:accounts admin:write:accounts")
	s.AddToken("read-only", "admin:read:email_domain_blocks")
	wantError(t, do(t, s, http.MethodGet, "/api/v1/admin/email_domain_blocks", "accounts-only", nil),
		http.StatusForbidden, "This action is outside the authorized scopes")
	wantStatus(t, do(t, s, http.MethodGet, "/api/v1/admin/email_domain_blocks", "read-only", nil), http.StatusOK)
	wantError(t, do(t, s, http.MethodPost, "/api/v1/admin/email_domain_blocks", "read-only", map[string]any{"domain": "x.example"}),
		http.StatusForbidden, "This action is outside the authorized scopes")
	wantError(t, do(t, s, http.MethodGet, "/api/v1/admin/email_domain_blocks", "", nil), http.StatusForbidden, "This action is not allowed")

	old, _ := newSim(t, Options{Version: "4.2.10"})
	w := do(t, old, http.MethodPost, "/api/v1/admin/email_domain_blocks", adminTok, map[string]any{"domain": "x.example", "allow_with_approval": true})
	wantStatus(t, w, http.StatusOK)
	if strings.Contains(w.Body.String(), "allow_with_approval") || old.EmailDomainBlocks()[0].AllowWithApproval {
		t.Errorf("4.2 took allow_with_approval: %s", w.Body.String())
	}
	older, _ := newSim(t, Options{Version: "3.5.3"})
	wantStatus(t, do(t, older, http.MethodGet, "/api/v1/admin/email_domain_blocks", adminTok, nil), http.StatusNotFound)
}

package mastosim

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/fediops/fediops/shared/domain"
)

func TestDomainBlocksPaginationByVersion(t *testing.T) {
	tests := []struct {
		version string
		query   string
		n       int
	}{
		{"4.3.0", "limit=1000", 500},
		{"4.3.0", "limit=500", 500},
		{"4.3.0", "", 100},
		{"4.7.1", "limit=1000", 500},
		{"4.2.10", "limit=1000", 200},
		{"4.2.10", "limit=500", 200},
		{"4.0.2", "", 100},
		{"4.3.0", "limit=-30", 30},
	}
	for _, tt := range tests {
		t.Run(tt.version+"?"+tt.query, func(t *testing.T) {
			s, _ := newSim(t, Options{Version: tt.version, RateLimit: -1, PagingLimit: -1})
			for i := 0; i < 600; i++ {
				s.AddDomainBlock(DomainBlock{Domain: fmt.Sprintf("d%03d.example", i)})
			}
			w := do(t, s, "GET", "/api/v1/admin/domain_blocks?"+tt.query, adminTok, nil)
			wantStatus(t, w, 200)
			got := ids(t, w)
			if len(got) != tt.n {
				t.Fatalf("got %d blocks, want %d", len(got), tt.n)
			}
			if got[0] != "600" || got[len(got)-1] != fmt.Sprint(600-tt.n+1) {
				t.Fatalf("order: first %s last %s", got[0], got[len(got)-1])
			}
			limitPart := ""
			if tt.query != "" {
				limitPart = tt.query + "&"
			}
			want := fmt.Sprintf(`<http://social.example/api/v1/admin/domain_blocks?%smax_id=%s>; rel="next", `+
				`<http://social.example/api/v1/admin/domain_blocks?%smin_id=600>; rel="prev"`, limitPart, got[len(got)-1], limitPart)
			if l := w.Header().Get("Link"); l != want {
				t.Fatalf("Link =\n %s\nwant\n %s", l, want)
			}
		})
	}
}

func TestDomainBlocksWalkAllPages(t *testing.T) {
	s, _ := newSim(t, Options{})
	for i := 0; i < 7; i++ {
		s.AddDomainBlock(DomainBlock{Domain: fmt.Sprintf("d%d.example", i), Severity: "suspend"})
	}
	var all []string
	next := "/api/v1/admin/domain_blocks?limit=3"
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
	}
	if !slices.Equal(all, []string{"7", "6", "5", "4", "3", "2", "1"}) {
		t.Fatalf("walked %v", all)
	}
}

func TestCreateDomainBlock(t *testing.T) {
	type existing struct {
		domain, severity string
		rejectMedia      bool
	}
	tests := []struct {
		name     string
		version  string
		existing []existing
		body     any
		status   int
		errMsg   string
		conflict string // domain of existing_domain_block in a 422 conflict
	}{
		{name: "same domain same severity", existing: []existing{{"bad.example", "suspend", false}},
			body: map[string]any{"domain": "bad.example", "severity": "suspend"}, status: 422,
			errMsg: "You have already imposed stricter limits on bad.example.", conflict: "bad.example"},
		{name: "same domain stricter severity still conflicts", existing: []existing{{"bad.example", "silence", false}},
			body: map[string]any{"domain": "bad.example", "severity": "suspend"}, status: 422, conflict: "bad.example"},
		{name: "same domain after normalisation", existing: []existing{{"bad.example", "noop", false}},
			body: map[string]any{"domain": "BAD.Example./"}, status: 422, conflict: "bad.example"},
		{name: "silence subdomain under suspended parent", existing: []existing{{"bad.example", "suspend", false}},
			body: map[string]any{"domain": "sub.bad.example", "severity": "silence"}, status: 422,
			errMsg: "You have already imposed stricter limits on bad.example.", conflict: "bad.example"},
		{name: "noop subdomain under silenced parent", existing: []existing{{"bad.example", "silence", false}},
			body: map[string]any{"domain": "a.b.bad.example", "severity": "noop"}, status: 422, conflict: "bad.example"},
		{name: "silence subdomain without reject_media under parent with it", existing: []existing{{"bad.example", "silence", true}},
			body: map[string]any{"domain": "sub.bad.example", "severity": "silence"}, status: 422, conflict: "bad.example"},
		{name: "most specific rule wins", existing: []existing{{"bad.example", "silence", false}, {"sub.bad.example", "suspend", false}},
			body: map[string]any{"domain": "x.sub.bad.example", "severity": "silence"}, status: 422, conflict: "sub.bad.example"},
		{name: "stricter subdomain allowed", existing: []existing{{"bad.example", "silence", false}},
			body: map[string]any{"domain": "sub.bad.example", "severity": "suspend"}, status: 200},
		{name: "suspend subdomain under suspended parent allowed", existing: []existing{{"bad.example", "suspend", false}},
			body: map[string]any{"domain": "sub.bad.example", "severity": "suspend"}, status: 200},
		{name: "silence with reject_media under plain silence allowed", existing: []existing{{"bad.example", "silence", false}},
			body: map[string]any{"domain": "sub.bad.example", "reject_media": true}, status: 200},
		{name: "stricter subdomain refused before 4.2.9", version: "4.2.8", existing: []existing{{"bad.example", "silence", false}},
			body: map[string]any{"domain": "sub.bad.example", "severity": "suspend"}, status: 422, conflict: "bad.example"},
		{name: "parent of a blocked subdomain allowed", existing: []existing{{"sub.bad.example", "suspend", false}},
			body: map[string]any{"domain": "bad.example", "severity": "silence"}, status: 200},
		{name: "lookalike suffix is not a parent", existing: []existing{{"bad.example", "suspend", false}},
			body: map[string]any{"domain": "notbad.example", "severity": "silence"}, status: 200},
		{name: "invalid domain with space", body: map[string]any{"domain": "foo bar"}, status: 422,
			errMsg: "Validation failed: Domain is not a valid domain name"},
		{name: "invalid wildcard domain", body: map[string]any{"domain": "*.example"}, status: 422,
			errMsg: "Validation failed: Domain is not a valid domain name"},
		{name: "invalid label length", body: map[string]any{"domain": strings.Repeat("a", 64) + ".example"}, status: 422,
			errMsg: "Validation failed: Domain is not a valid domain name"},
		{name: "missing domain", body: map[string]any{"severity": "suspend"}, status: 422,
			errMsg: "Validation failed: Domain can't be blank"},
		{name: "blank domain", body: map[string]any{"domain": "   "}, status: 422,
			errMsg: "Validation failed: Domain can't be blank"},
		{name: "invalid severity", body: map[string]any{"domain": "ok.example", "severity": "obliterate"}, status: 422,
			errMsg: "Validation failed: Severity is not included in the list"},
		{name: "invalid severity and missing domain", body: map[string]any{"severity": "obliterate"}, status: 422,
			errMsg: "Validation failed: Severity is not included in the list, Domain can't be blank"},
		{name: "form encoded", body: url.Values{"domain": {"form.example"}, "severity": {"noop"}, "reject_reports": {"1"}}, status: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newSim(t, Options{Version: tt.version})
			idOf := map[string]string{}
			for _, e := range tt.existing {
				idOf[e.domain] = s.AddDomainBlock(DomainBlock{Domain: e.domain, Severity: e.severity, RejectMedia: e.rejectMedia})
			}
			before := len(s.DomainBlocks())
			w := do(t, s, "POST", "/api/v1/admin/domain_blocks", adminTok, tt.body)
			wantStatus(t, w, tt.status)
			got := decode[map[string]any](t, w)
			if tt.errMsg != "" && got["error"] != tt.errMsg {
				t.Fatalf("error = %q, want %q", got["error"], tt.errMsg)
			}
			if tt.conflict != "" {
				ex, _ := got["existing_domain_block"].(map[string]any)
				wantDigest := any(domain.Digest(tt.conflict))
				if tt.version != "" && !parseVersion(tt.version).atLeast(4, 2, 9) {
					wantDigest = nil
				}
				if ex["domain"] != tt.conflict || ex["id"] != idOf[tt.conflict] || ex["digest"] != wantDigest {
					t.Fatalf("existing_domain_block = %v, want %s (id %s)", ex, tt.conflict, idOf[tt.conflict])
				}
			}
			after := len(s.DomainBlocks())
			if tt.status == 200 && after != before+1 || tt.status != 200 && after != before {
				t.Fatalf("blocks %d → %d with status %d", before, after, tt.status)
			}
		})
	}
}

func TestCreateDomainBlockStoresNormalisedDefaults(t *testing.T) {
	s, fc := newSim(t, Options{})
	w := do(t, s, "POST", "/api/v1/admin/domain_blocks", adminTok, map[string]any{
		"domain": "Bücher.Example", "private_comment": "wave 3", "obfuscate": "true",
	})
	wantStatus(t, w, 200)
	got := decode[map[string]any](t, w)
	want := map[string]any{
		"domain": "xn--bcher-kva.example", "severity": "silence", "reject_media": false, "reject_reports": false,
		"private_comment": "wave 3", "public_comment": nil, "obfuscate": true,
		"digest": domain.Digest("xn--bcher-kva.example"), "created_at": railsTime(fc.Now()), "id": "1",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %#v, want %#v", k, got[k], v)
		}
	}
	// digest is not serialised before 4.2.9.
	old, _ := newSim(t, Options{Version: "4.1.0"})
	w = do(t, old, "POST", "/api/v1/admin/domain_blocks", adminTok, map[string]any{"domain": "x.example"})
	if _, ok := decode[map[string]any](t, w)["digest"]; ok {
		t.Fatal("4.1.0 serialised a digest")
	}
}

func TestUpdateDomainBlock(t *testing.T) {
	for _, method := range []string{"PUT", "PATCH"} {
		t.Run(method, func(t *testing.T) {
			s, _ := newSim(t, Options{})
			id := s.AddDomainBlock(DomainBlock{Domain: "bad.example", Severity: "silence", PublicComment: "spam"})
			w := do(t, s, method, "/api/v1/admin/domain_blocks/"+id, adminTok, map[string]any{
				"domain": "other.example", "severity": "suspend", "reject_media": true,
			})
			wantStatus(t, w, 200)
			got := decode[map[string]any](t, w)
			if got["domain"] != "bad.example" || got["severity"] != "suspend" || got["reject_media"] != true || got["public_comment"] != "spam" {
				t.Fatalf("updated = %v", got)
			}
			if b := s.DomainBlocks(); len(b) != 1 || b[0].Domain != "bad.example" || b[0].Severity != "suspend" {
				t.Fatalf("state = %+v", b)
			}
			wantError(t, do(t, s, method, "/api/v1/admin/domain_blocks/"+id, adminTok, map[string]any{"severity": "nuke", "public_comment": "x"}),
				422, "Validation failed: Severity is not included in the list")
			if b := s.DomainBlocks()[0]; b.Severity != "suspend" || b.PublicComment != "spam" {
				t.Fatalf("failed update changed state: %+v", b)
			}
			wantError(t, do(t, s, method, "/api/v1/admin/domain_blocks/999", adminTok, map[string]any{"severity": "noop"}), 404, "Record not found")
		})
	}
}

func TestShowAndDeleteDomainBlock(t *testing.T) {
	s, _ := newSim(t, Options{})
	id := s.AddDomainBlock(DomainBlock{Domain: "bad.example", Severity: "suspend"})
	w := do(t, s, "GET", "/api/v1/admin/domain_blocks/"+id, adminTok, nil)
	wantStatus(t, w, 200)
	if got := decode[map[string]any](t, w); got["domain"] != "bad.example" || got["id"] != id {
		t.Fatalf("show = %v", got)
	}
	w = do(t, s, "DELETE", "/api/v1/admin/domain_blocks/"+id, adminTok, nil)
	wantStatus(t, w, 200)
	if w.Body.String() != "{}" {
		t.Fatalf("delete body = %s", w.Body.String())
	}
	wantError(t, do(t, s, "GET", "/api/v1/admin/domain_blocks/"+id, adminTok, nil), 404, "Record not found")
	wantError(t, do(t, s, "DELETE", "/api/v1/admin/domain_blocks/"+id, adminTok, nil), 404, "Record not found")
	if len(s.DomainBlocks()) != 0 {
		t.Fatal("block still stored")
	}
	// A new block after a delete gets a fresh id (bigserial).
	w = do(t, s, "POST", "/api/v1/admin/domain_blocks", adminTok, map[string]any{"domain": "bad.example"})
	if got := decode[map[string]any](t, w); got["id"] != "2" {
		t.Fatalf("recreated id = %v", got["id"])
	}
}

func TestPublicDomainBlocks(t *testing.T) {
	s, _ := newSim(t, Options{})
	s.AddDomainBlock(DomainBlock{Domain: "zzz.example", Severity: "silence"})
	s.AddDomainBlock(DomainBlock{Domain: "bad.example", Severity: "suspend", Obfuscate: true, PublicComment: "spam"})
	s.AddDomainBlock(DomainBlock{Domain: "media.example", Severity: "noop", RejectMedia: true})
	s.AddDomainBlock(DomainBlock{Domain: "aaa.example", Severity: "suspend"})

	w := do(t, s, "GET", "/api/v1/instance/domain_blocks", "", nil)
	wantStatus(t, w, 200)
	got := decode[[]map[string]any](t, w)
	var doms []string
	for _, e := range got {
		doms = append(doms, e["domain"].(string))
	}
	// silence before suspend, then by (real) domain; noop omitted; obfuscated middle.
	if want := []string{"zzz.example", "aaa.example", "bad.*****le"}; !slices.Equal(doms, want) {
		t.Fatalf("domains = %v, want %v", doms, want)
	}
	if got[2]["digest"] != domain.Digest("bad.example") || got[2]["comment"] != "spam" || got[2]["severity"] != "suspend" {
		t.Fatalf("entry = %v", got[2])
	}
	if c, ok := got[0]["comment"]; !ok || c != nil {
		t.Fatalf("comment key must be present and null: %v", got[0])
	}

	users, _ := newSim(t, Options{ShowDomainBlocks: "users"})
	w = do(t, users, "GET", "/api/v1/instance/domain_blocks", "", nil)
	if w.Code != 404 || w.Body.Len() != 0 {
		t.Fatalf("users mode without token: %d %q", w.Code, w.Body.String())
	}
	wantStatus(t, do(t, users, "GET", "/api/v1/instance/domain_blocks", adminTok, nil), 200)
}

func TestPublicDomainObfuscation(t *testing.T) {
	tests := map[string]string{
		"bad.example":      "bad.*****le",
		"a.bc":             "a.*c",
		"spam.social":      "spa*.****al",
		"xn--bcher-kva.de": "xn--b*******a.de",
	}
	for in, want := range tests {
		if got := publicDomain(&domainBlock{domain: in, obfuscate: true}); got != want {
			t.Errorf("publicDomain(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestCreateDomainBlockAcceptsWhatDomainValidatorAccepts: app/validators/domain_validator.rb
// asks only for labels of 1..63 characters of [a-z0-9-] in the name Addressable (with libidn,
// app/models/concerns/domain_normalizable.rb) normalises, and libidn leaves ASCII labels as they
// are; libidn's IDNA2003 maps ß to ss. A name libidn refuses raises IDN::Idna::IdnaError, which
// DomainNormalizable does not rescue: 500.
func TestCreateDomainBlockAcceptsWhatDomainValidatorAccepts(t *testing.T) {
	tests := []struct {
		in, stored string
		status     int
	}{
		{"-lead.example", "-lead.example", 200},
		{"trail-.example", "trail-.example", 200},
		{"ab--cd.example", "ab--cd.example", 200},
		{"xn--zz.example", "xn--zz.example", 200},
		{"Straße.Example", "strasse.example", 200},
		{strings.Repeat("a.", 126) + "bcd", strings.Repeat("a.", 126) + "bcd", 200}, // 255 characters
		{strings.Repeat("a.", 127) + "bc", "", 422},                                 // 256
		{"under_score.example", "", 422},
		{"xn--bücher.example", "", 500},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			s, _ := newSim(t, Options{})
			w := do(t, s, "POST", "/api/v1/admin/domain_blocks", adminTok, map[string]any{"domain": tt.in, "severity": "suspend"})
			wantStatus(t, w, tt.status)
			blocks := s.DomainBlocks()
			if tt.status != 200 {
				if len(blocks) != 0 {
					t.Fatalf("stored %+v", blocks)
				}
				return
			}
			if got := decode[map[string]any](t, w); got["domain"] != tt.stored || len(blocks) != 1 || blocks[0].Domain != tt.stored {
				t.Fatalf("answer %v, stored %+v, want %s", got, blocks, tt.stored)
			}
			// And rule_for finds it again: a second create is the same-domain conflict.
			w = do(t, s, "POST", "/api/v1/admin/domain_blocks", adminTok, map[string]any{"domain": tt.in, "severity": "suspend"})
			wantStatus(t, w, 422)
		})
	}
}

// TestCreateCoveredDomainWithSurroundingWhitespace: DomainBlock.rule_for strips the domain and
// finds the covering block, then conflicts_with_existing_block? hands the raw, unstripped
// parameter to TagManager#normalize_domain, where Addressable::URI#host= raises InvalidURIError
// on the whitespace, and Api::ErrorHandling does not rescue it: 500
// (app/controllers/api/v1/admin/domain_blocks_controller.rb, app/models/domain_block.rb,
// app/lib/tag_manager.rb). Without a covering block, DomainNormalizable strips it: 200. Before
// 4.2.9 (#30119) conflicts_with_existing_block? did not exist: 422.
func TestCreateCoveredDomainWithSurroundingWhitespace(t *testing.T) {
	tests := []struct {
		name, version, domain string
		status                int
	}{
		{"same domain", "", " bad.example ", 500},
		{"subdomain, stricter", "", "sub.bad.example\n", 500},
		{"subdomain, not stricter", "", "\tsub.bad.example", 500},
		{"slash inside", "", "bad.exa/mple", 500}, // rule_for deletes every '/', normalize_domain only a trailing one
		{"not covered", "", " other.example ", 200},
		{"before 4.2.9", "4.2.8", " bad.example ", 422},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newSim(t, Options{Version: tt.version})
			s.AddDomainBlock(DomainBlock{Domain: "bad.example", Severity: "silence"})
			w := do(t, s, "POST", "/api/v1/admin/domain_blocks", adminTok, map[string]any{"domain": tt.domain, "severity": "suspend"})
			wantStatus(t, w, tt.status)
			if n := len(s.DomainBlocks()); (tt.status == 200) != (n == 2) {
				t.Fatalf("%d blocks after a %d", n, tt.status)
			}
		})
	}
}

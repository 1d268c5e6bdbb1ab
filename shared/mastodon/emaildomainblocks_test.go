package mastodon

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fediops/fediops/shared/testsupport/mastosim"
)

func TestEmailDomainBlocksOnSimulator(t *testing.T) {
	ctx := context.Background()
	sim := mastosim.New(mastosim.Options{RateLimit: -1, PagingLimit: -1})
	sim.AddToken("tok", "admin:read:email_domain_blocks admin:write:email_domain_blocks")
	for i := range 430 {
		sim.AddEmailDomainBlock(mastosim.EmailDomainBlock{Domain: fmt.Sprintf("d%d.example", i)})
	}
	c := simClient(t, sim, "tok")
	all, err := c.AllEmailDomainBlocks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 430 {
		t.Fatalf("listed %d blocks, want 430", len(all))
	}
	pages := 0
	for _, r := range sim.Requests() {
		if r.Path == "/api/v1/admin/email_domain_blocks" {
			pages++
			if !strings.Contains(r.RawQuery, "limit=200") {
				t.Errorf("page request %q without limit=200", r.RawQuery)
			}
		}
	}
	if pages != 3 {
		t.Errorf("%d page requests, want 3", pages)
	}

	b, err := c.CreateEmailDomainBlock(ctx, "spam.example", false)
	if err != nil || b.Domain != "spam.example" || b.ID == "" || b.RequiresApproval() || b.AllowWithApproval == nil {
		t.Fatalf("create: %+v, %v", b, err)
	}
	_, err = c.CreateEmailDomainBlock(ctx, "spam.example", false)
	if StatusOf(err) != http.StatusUnprocessableEntity || !strings.Contains(err.Error(), "already been taken") {
		t.Errorf("duplicate: err = %v, want 422 taken", err)
	}
	w, err := c.CreateEmailDomainBlock(ctx, "wait.example", true)
	if err != nil || !w.RequiresApproval() {
		t.Errorf("allow_with_approval: %+v, %v", w, err)
	}
	if err := c.DeleteEmailDomainBlock(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteEmailDomainBlock(ctx, b.ID); StatusOf(err) != http.StatusNotFound {
		t.Errorf("second delete: %v, want 404", err)
	}
}

// Servers without the API: GoToSocial (detected, no request to the path) and Mastodon
// before 4.0 (404 from the router).
func TestEmailDomainBlocksUnsupported(t *testing.T) {
	ctx := context.Background()
	var hits []string
	gts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits = append(hits, r.URL.Path)
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/api/v2/instance" {
			_, _ = w.Write([]byte(`{"version":"0.17.3","source_url":"https://github.com/superseriousbusiness/gotosocial"}`))
			return
		}
		w.WriteHeader(http.StatusNotFound)
	}))
	t.Cleanup(gts.Close)
	c, err := New(gts.URL, "tok", WithRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.EmailDomainBlocksPage(ctx, ""); !errors.Is(err, ErrUnsupported) {
		t.Errorf("GoToSocial list: %v, want ErrUnsupported", err)
	}
	if _, err := c.CreateEmailDomainBlock(ctx, "x.example", false); !errors.Is(err, ErrUnsupported) {
		t.Errorf("GoToSocial create: %v, want ErrUnsupported", err)
	}
	if len(hits) != 1 || hits[0] != "/api/v2/instance" {
		t.Errorf("requests to GoToSocial: %v, want only the detection", hits)
	}

	old := mastosim.New(mastosim.Options{Version: "3.5.3"})
	old.AddToken("tok", "admin:read admin:write")
	if _, err := simClient(t, old, "tok").AllEmailDomainBlocks(ctx); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Mastodon 3.5: %v, want ErrUnsupported", err)
	}
}

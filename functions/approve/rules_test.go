package approve

import (
	"strings"
	"testing"
)

func testRules(t *testing.T) *Rules {
	t.Helper()
	r, err := NewRules(
		[]string{"gov", ".gov.uk", "gc.ca", "gov.au", "europa.eu", "bücher.example"},
		[]string{"gmail.com", "yahoo.com", "aol.com", "contractor.agency.gov"},
	)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestClassify(t *testing.T) {
	r := testRules(t)
	tests := []struct {
		email string
		want  Decision
		rule  string
	}{
		{"alice@agency.gov", Approve, "approve_domains: gov"},
		{"bob@x.agency.gov", Approve, "approve_domains: gov"},
		{"carol@AGENCY.GOV.", Approve, "approve_domains: gov"},
		{"  dave@hmrc.gov.uk  ", Approve, "approve_domains: gov.uk"},
		{"erin@canada.gc.ca", Approve, "approve_domains: gc.ca"},
		{"frank@ec.europa.eu", Approve, "approve_domains: europa.eu"},
		{"gina@BÜCHER.example", Approve, "approve_domains: xn--bcher-kva.example"},
		{"spy@agency.gov.evil.com", Hold, "no rule matches agency.gov.evil.com"},
		{"x@gov.evil", Hold, "no rule matches gov.evil"},
		{"gov@example.com", Hold, "no rule matches example.com"},
		{"someone@notgmail.com", Hold, "no rule matches notgmail.com"},
		{"someone@gmail.com", Reject, "reject_domains: gmail.com"},
		{"someone@mail.yahoo.com", Reject, "reject_domains: yahoo.com"},
		{"temp@contractor.agency.gov", Reject, "reject_domains: contractor.agency.gov"},
		{"temp@sub.contractor.agency.gov", Reject, "reject_domains: contractor.agency.gov"},
		{"noat.gov", Hold, "malformed address: no @"},
		{"a@b@agency.gov", Hold, "malformed address: several @"},
		{"@agency.gov", Hold, "malformed address: empty local part"},
		{"a b@agency.gov", Hold, "malformed address: space in local part"},
		{"a@agency..gov", Hold, "malformed address: invalid domain"},
		{"a@.gov", Hold, "malformed address: invalid domain"},
		{"a@gov", Hold, "malformed address: domain without a dot"},
		{"a@agency.gov]", Hold, "malformed address: invalid domain"},
		{"a@age ncy.gov", Hold, "malformed address: invalid domain"},
		{"", Hold, "malformed address: no @"},
	}
	for _, tt := range tests {
		got := r.Classify(tt.email)
		if got.Decision != tt.want || got.Rule != tt.rule {
			t.Errorf("Classify(%q) = %s (%s), want %s (%s)", tt.email, got.Decision, got.Rule, tt.want, tt.rule)
		}
	}
}

func TestNewRulesErrors(t *testing.T) {
	if _, err := NewRules([]string{"gov"}, []string{".gov"}); err == nil || !strings.Contains(err.Error(), "both") {
		t.Errorf("overlap: %v", err)
	}
	if _, err := NewRules([]string{"bad domain"}, nil); err == nil {
		t.Error("invalid entry accepted")
	}
}

// FuzzClassify checks that classification never panics and never approves a malformed
// address or one outside the approve list.
func FuzzClassify(f *testing.F) {
	for _, s := range []string{"a@agency.gov", "a@agency.gov.evil.com", "a@b@gov", "@gov", "x@GOV.", "x@xn--bcher-kva.gov", "x@\u0261ov", "x@gov\u3002uk", "x@a.gov\x00"} {
		f.Add(s)
	}
	r, err := NewRules([]string{"gov", "gov.uk"}, []string{"gmail.com"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, email string) {
		v := r.Classify(email)
		d, why := EmailDomain(email)
		if v.Decision != Approve {
			return
		}
		if why != "" {
			t.Fatalf("malformed address %q (%s) approved", email, why)
		}
		if d != "gov.uk" && !strings.HasSuffix(d, ".gov") && !strings.HasSuffix(d, ".gov.uk") {
			t.Fatalf("%q approved with domain %q outside the approve list", email, d)
		}
		if strings.Count(email, "@") != 1 {
			t.Fatalf("%q approved with %d @", email, strings.Count(email, "@"))
		}
	})
}

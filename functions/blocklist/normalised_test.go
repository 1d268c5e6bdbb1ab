package blocklist

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/fediops/fediops/functions/blocklist/lists"
	"github.com/fediops/fediops/functions/blocklist/merge"
	"github.com/fediops/fediops/shared/domain"
	"github.com/fediops/fediops/shared/testsupport/mastosim"
)

// TestCreatesSendNormalisedDomains: list rows reach the server in the form shared/domain gives
// them, never as written. This matters: Mastodon 4.3 answers 500 to a name with surrounding
// whitespace that an existing block covers (conflicts_with_existing_block? hands the raw
// parameter to TagManager#normalize_domain), and the simulator does the same, so a raw row
// under bad.example would fail here.
func TestCreatesSendNormalisedDomains(t *testing.T) {
	h := newSim(t, mastosim.Options{})
	h.sim.AddDomainBlock(mastosim.DomainBlock{Domain: "bad.example", Severity: "silence"})
	csv := "domain,severity\n  Sub.Bad.Example.  ,suspend\n\tStraße.example ,suspend\n-lead.example,silence\n"
	l, err := lists.Parse("padded.csv", []byte(csv), lists.FormatCSV, lists.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := merge.Merge([]*lists.List{l}, nil, merge.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	out := h.sync(t, context.Background(), dest("main", nil), Desired{Blocks: DesiredFrom(res), Allowed: Allowlist(nil, true)})
	if out.Failed != 0 || out.Created != 3 {
		t.Fatalf("outcome = %+v", out)
	}
	var sent []string
	for _, r := range h.sim.Requests() {
		if r.Status >= 500 {
			t.Errorf("%s %s answered %d", r.Method, r.Path, r.Status)
		}
		if r.Method != http.MethodPost || r.Path != "/api/v1/admin/domain_blocks" {
			continue
		}
		var body struct {
			Domain string `json:"domain"`
		}
		if err := json.Unmarshal([]byte(r.Body), &body); err != nil {
			t.Fatalf("create body %q: %v", r.Body, err)
		}
		if n, err := domain.Normalize(body.Domain); err != nil || n != body.Domain {
			t.Errorf("sent %q, not a normalised name (%q, %v)", body.Domain, n, err)
		}
		sent = append(sent, body.Domain)
	}
	slices.Sort(sent)
	if want := []string{"-lead.example", "strasse.example", "sub.bad.example"}; !slices.Equal(sent, want) {
		t.Errorf("created %v, want %v", sent, want)
	}
}

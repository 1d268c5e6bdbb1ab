package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/fediops/fediops/functions/approve"
	"github.com/fediops/fediops/shared/testsupport/mastosim"
)

func TestTriagePresets(t *testing.T) {
	code, out, errOut := runCLI(t, nil, "triage", "presets")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"public-sector", "gov.uk", "https://gov.uk/guidance/check-if-your-organisation-can-get-a-govuk-domain-name",
		"webmail", "gmail.com", approve.DisposableListURL, "outlook.com: Microsoft 365", "starting point"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = runCLI(t, nil, "triage", "presets", "--json")
	var got struct {
		PublicSector []approve.PresetRow `json:"public-sector"`
		Webmail      []string            `json:"webmail"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != 0 {
		t.Fatalf("--json: exit %d, %v\n%s", code, err, out)
	}
	rows, _ := approve.PublicSectorTable()
	if len(got.PublicSector) != len(rows) || got.PublicSector[0].Source == "" || !slices.Contains(got.Webmail, "yahoo.com") {
		t.Errorf("--json: %+v", got)
	}
}

func simBlocks(sim *mastosim.Server) []string {
	var out []string
	for _, b := range sim.EmailDomainBlocks() {
		out = append(out, b.Domain)
	}
	slices.Sort(out)
	return out
}

func TestTriageEmailBlocksPlanAndSync(t *testing.T) {
	dir := t.TempDir()
	list := writeFile(t, dir, "local.txt", "# our own\nlisted.example\n")
	cfg, sim, _ := sandboxConfig(t, fmt.Sprintf(`
[triage]
reject_domains = ["spam.example", "outlook.com"]
reject_domain_sources = [ { url = "file://%s", name = "local" } ]
email_domain_blocks_max_additions = 2
`, list))
	sim.AddEmailDomainBlock(mastosim.EmailDomainBlock{Domain: "manual.example"})

	code, out, errOut := runCLI(t, nil, "--config", cfg, "triage", "email-blocks", "plan")
	if code != 0 || !strings.Contains(out, "dry run, nothing changed") || !strings.Contains(out, "listed.example") ||
		!strings.Contains(out, "listed by reject_domain_sources local") || !strings.Contains(out, "left alone (mail_host): outlook.com") {
		t.Fatalf("plan: exit %d\n%s\n%s", code, out, errOut)
	}
	if got := simBlocks(sim); !slices.Equal(got, []string{"manual.example"}) {
		t.Errorf("plan changed the blocks: %v", got)
	}

	// Within the bound: applied.
	code, out, errOut = runCLI(t, nil, "--config", cfg, "triage", "email-blocks", "sync")
	if code != 0 || !strings.Contains(out, "2 created") {
		t.Fatalf("sync: exit %d\n%s\n%s", code, out, errOut)
	}
	if got := simBlocks(sim); !slices.Equal(got, []string{"listed.example", "manual.example", "spam.example"}) {
		t.Errorf("blocks %v", got)
	}

	// Over the bound: held, then applied with --apply-plan.
	writeFile(t, dir, "local.txt", "listed.example\na.example\nb.example\nc.example\n")
	code, out, _ = runCLI(t, nil, "--config", cfg, "triage", "email-blocks", "sync")
	m := regexp.MustCompile(`--apply-plan ([0-9a-f]{12})`).FindStringSubmatch(out)
	if code != 1 || m == nil || len(simBlocks(sim)) != 3 {
		t.Fatalf("held: exit %d\n%s", code, out)
	}
	if code, _, errOut := runCLI(t, nil, "--config", cfg, "triage", "email-blocks", "sync", "--apply-plan", m[1]); code != 2 || !strings.Contains(errOut, "--instance") {
		t.Errorf("--apply-plan without --instance: exit %d %s", code, errOut)
	}
	code, out, errOut = runCLI(t, nil, "--config", cfg, "triage", "email-blocks", "sync", "--instance", "sb", "--apply-plan", m[1])
	if code != 0 || !strings.Contains(out, "3 created") || len(simBlocks(sim)) != 6 {
		t.Fatalf("apply: exit %d\n%s\n%s", code, out, errOut)
	}
	code, _, errOut = runCLI(t, nil, "--config", cfg, "triage", "email-blocks", "sync", "--instance", "sb", "--apply-plan", m[1])
	if code != 1 || !strings.Contains(errOut, "already applied") {
		t.Errorf("second apply: exit %d %s", code, errOut)
	}
	// The record of each sync is archived beside the triage audit trails.
	if matches, _ := filepath.Glob(filepath.Join(filepath.Dir(cfg), "archive", "triage-email-blocks", "runs", "sb", "*.json")); len(matches) < 3 {
		t.Errorf("records %v", matches)
	}
}

// triage run with sync_email_domain_blocks: the sync follows the decisions and is printed.
func TestTriageRunSyncsEmailBlocks(t *testing.T) {
	cfg, sim, _ := sandboxConfig(t, "\n[triage]\nreject_domains = [\"spam.example\"]\nsync_email_domain_blocks = true\n")
	sim.AddAccount(mastosim.Account{Username: "sam", Email: "sam@spam.example", Confirmed: true})
	code, out, errOut := runCLI(t, nil, "--config", cfg, "triage", "run")
	if code != 0 || !strings.Contains(out, "1 rejected") || !strings.Contains(out, "sb email-domain blocks (applied") ||
		!slices.Equal(simBlocks(sim), []string{"spam.example"}) {
		t.Errorf("exit %d\n%s\n%s\nblocks %v", code, out, errOut, simBlocks(sim))
	}
}

package approve

import (
	"bytes"
	"embed"
	"encoding/csv"
	"fmt"
	"slices"
	"strings"
)

// Presets: curated lists shipped with fediops (functions/approve/presets/*.csv), named in
// [triage] approve_presets and reject_presets. They are a starting point that an admin
// reviews; presets/README.md says how to propose a row.
const (
	// PresetPublicSector is the approve preset: suffixes whose registry admits public bodies only.
	PresetPublicSector = "public-sector"
	// PresetWebmail is the reject preset of large free-mail providers.
	PresetWebmail = "webmail"
	// PresetDisposable is the reject preset of disposable-mail providers: a maintained list
	// read as a reject_domain_sources entry, not a copy kept here.
	PresetDisposable = "disposable"
)

// DisposableListURL is the disposable-email-domains project's list (CC0, one domain per line,
// maintained by its community): https://github.com/disposable-email-domains/disposable-email-domains
const DisposableListURL = "https://raw.githubusercontent.com/disposable-email-domains/disposable-email-domains/main/disposable_email_blocklist.conf"

// ApprovePresets and RejectPresets are the preset names each key accepts.
var (
	ApprovePresets = []string{PresetPublicSector}
	RejectPresets  = []string{PresetWebmail, PresetDisposable}
)

//go:embed presets/*.csv
var presetFiles embed.FS

// PresetRow is a row of the public-sector table.
type PresetRow struct {
	Suffix string `json:"suffix"`
	// Body is the country or body whose registry it is.
	Body string `json:"country_or_body"`
	// Source is the registry's (or government's) policy page that states the restriction.
	Source string `json:"source"`
	// Note says who may register.
	Note string `json:"who_may_register"`
}

// PublicSectorTable returns the public-sector preset's rows.
func PublicSectorTable() ([]PresetRow, error) {
	recs, err := readPreset("public-sector.csv", []string{"suffix", "country_or_body", "source", "who_may_register"})
	if err != nil {
		return nil, err
	}
	out := make([]PresetRow, 0, len(recs))
	for _, r := range recs {
		out = append(out, PresetRow{Suffix: r[0], Body: r[1], Source: r[2], Note: r[3]})
	}
	return out, nil
}

// WebmailTable returns the webmail preset's rows: domain and provider.
func WebmailTable() ([][2]string, error) {
	recs, err := readPreset("webmail.csv", []string{"domain", "provider"})
	if err != nil {
		return nil, err
	}
	out := make([][2]string, 0, len(recs))
	for _, r := range recs {
		out = append(out, [2]string{r[0], r[1]})
	}
	return out, nil
}

// MailHosts returns the domains that also name other organisations' mail servers, with the
// service: Mastodon's email-domain blocks match MX host names, so a block on one of them
// would refuse every domain the service hosts. Email-domain block sync leaves them out.
func MailHosts() (map[string]string, error) {
	recs, err := readPreset("mail-hosts.csv", []string{"domain", "service", "mx_example", "source"})
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, r := range recs {
		out[r[0]] = fmt.Sprintf("%s (mail servers such as %s)", r[1], r[2])
	}
	return out, nil
}

func readPreset(name string, header []string) ([][]string, error) {
	b, err := presetFiles.ReadFile("presets/" + name)
	if err != nil {
		return nil, err
	}
	r := csv.NewReader(bytes.NewReader(b))
	r.FieldsPerRecord = len(header)
	recs, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("preset %s: %w", name, err)
	}
	if len(recs) == 0 || !slices.Equal(recs[0], header) {
		return nil, fmt.Errorf("preset %s: header is not %s", name, strings.Join(header, ","))
	}
	return recs[1:], nil
}

// presetDomains returns the domains of the named presets of one kind, and the list sources
// some of them stand for (disposable).
func presetDomains(d Decision, names []string) ([]RuleSet, []ListSource, error) {
	var sets []RuleSet
	var srcs []ListSource
	for _, n := range names {
		set := RuleSet{Decision: d, List: presetListName(d, n)}
		switch {
		case d == Approve && n == PresetPublicSector:
			rows, err := PublicSectorTable()
			if err != nil {
				return nil, nil, err
			}
			for _, r := range rows {
				set.Domains = append(set.Domains, r.Suffix)
			}
		case d == Reject && n == PresetWebmail:
			rows, err := WebmailTable()
			if err != nil {
				return nil, nil, err
			}
			for _, r := range rows {
				set.Domains = append(set.Domains, r[0])
			}
		case d == Reject && n == PresetDisposable:
			srcs = append(srcs, ListSource{Decision: Reject, Name: PresetDisposable, URL: DisposableListURL, Format: FormatText, Preset: true})
			continue
		default:
			return nil, nil, fmt.Errorf("unknown preset %q", n)
		}
		sets = append(sets, set)
	}
	return sets, srcs, nil
}

func presetListName(d Decision, name string) string {
	if d == Approve {
		return "approve_presets " + name
	}
	return "reject_presets " + name
}

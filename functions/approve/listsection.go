package approve

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/fediops/fediops/shared/config"
	"github.com/fediops/fediops/shared/listsource"
)

// ListsConfig are the [triage] keys of list sources, presets and the instances' email-domain
// blocks (embedded in Section).
//
//	[triage]
//	approve_presets = ["public-sector"]
//	reject_presets  = ["webmail", "disposable"]
//	reject_domain_sources = [ { url = "https://lists.example/spam.txt", name = "spam" } ]
//	sync_email_domain_blocks = true
type ListsConfig struct {
	ApproveDomainSources []ListSpec `toml:"approve_domain_sources"`
	RejectDomainSources  []ListSpec `toml:"reject_domain_sources"`
	// ApprovePresets and RejectPresets name shipped lists (see presets.go). Setting either
	// replaces the built-in default list of its kind unless approve_domains/reject_domains
	// is set too, which then adds to it.
	ApprovePresets []string `toml:"approve_presets"`
	RejectPresets  []string `toml:"reject_presets"`
	// MaxSourceShrink (percent, default 50), MaxSourceBytes (default 10 MiB) and
	// RequestTimeout (default 30s) govern reading the list sources.
	MaxSourceShrink *float64        `toml:"max_source_shrink"`
	MaxSourceBytes  int64           `toml:"max_source_bytes"`
	RequestTimeout  config.Duration `toml:"request_timeout"`
	EmailBlockSettings
}

// ListSpec is an entry of approve_domain_sources or reject_domain_sources.
type ListSpec struct {
	URL    string `toml:"url"`    // https://, file://, gs:// (http:// on loopback)
	Format string `toml:"format"` // text, csv, mastodon_email_domain_blocks; "" detects
	Name   string `toml:"name"`   // default: from the URL
}

// SourceName is the spec's name, else one derived from its URL.
func (s ListSpec) SourceName() string {
	if s.Name != "" {
		return s.Name
	}
	return listsource.NameFromURL(s.URL)
}

// EmailBlockSettings are the email-domain block keys; [instance.triage] can override each.
type EmailBlockSettings struct {
	// ReadEmailDomainBlocks treats the instance's email-domain blocks as reject entries
	// (default true).
	ReadEmailDomainBlocks *bool `toml:"read_email_domain_blocks"`
	// SyncEmailDomainBlocks keeps the instance's email-domain blocks equal to the reject
	// list (default false).
	SyncEmailDomainBlocks *bool `toml:"sync_email_domain_blocks"`
	// EmailDomainBlocksRequireApproval makes the blocks fediops creates require approval
	// instead of refusing (Mastodon 4.3+).
	EmailDomainBlocksRequireApproval *bool `toml:"email_domain_blocks_require_approval"`
	// EmailDomainBlocksMaxAdditions and EmailDomainBlocksMaxRemovals bound what a sync does
	// unattended (default 50 and 20; -1: no bound); a bigger plan is held.
	EmailDomainBlocksMaxAdditions *int `toml:"email_domain_blocks_max_additions"`
	EmailDomainBlocksMaxRemovals  *int `toml:"email_domain_blocks_max_removals"`
}

// Defaults of the list and email-domain block keys.
const (
	DefaultMaxListBytes            = 10 << 20
	DefaultListTimeout             = 30 * time.Second
	DefaultEmailBlocksMaxAdditions = 50
	DefaultEmailBlocksMaxRemovals  = 20
)

// EmailBlockOptions are one instance's email-domain block settings, defaults applied.
type EmailBlockOptions struct {
	Read            bool
	Sync            bool
	RequireApproval bool
	MaxAdditions    int // -1: no bound
	MaxRemovals     int // -1: no bound
	// ApplyPlan is the id of a held plan to apply (`fediops triage email-blocks sync
	// --apply-plan`).
	ApplyPlan string
}

func pickSetting[T any](o *T, s *T, def T) T {
	switch {
	case o != nil:
		return *o
	case s != nil:
		return *s
	}
	return def
}

// emailBlocksFor combines [triage]'s settings with an instance's overrides (o may be nil).
func (l *ListsConfig) emailBlocksFor(o *EmailBlockSettings) EmailBlockOptions {
	if o == nil {
		o = &EmailBlockSettings{}
	}
	g := l.EmailBlockSettings
	return EmailBlockOptions{
		Read:            pickSetting(o.ReadEmailDomainBlocks, g.ReadEmailDomainBlocks, true),
		Sync:            pickSetting(o.SyncEmailDomainBlocks, g.SyncEmailDomainBlocks, false),
		RequireApproval: pickSetting(o.EmailDomainBlocksRequireApproval, g.EmailDomainBlocksRequireApproval, false),
		MaxAdditions:    pickSetting(o.EmailDomainBlocksMaxAdditions, g.EmailDomainBlocksMaxAdditions, DefaultEmailBlocksMaxAdditions),
		MaxRemovals:     pickSetting(o.EmailDomainBlocksMaxRemovals, g.EmailDomainBlocksMaxRemovals, DefaultEmailBlocksMaxRemovals),
	}
}

// presetsReplaceDefaults reports whether a preset key of this kind is set without the
// inline list: the presets then replace the built-in default list.
func presetsReplaceDefaults(c *config.Config, inlineKey, presetKey string) bool {
	return c.IsDefined("triage", presetKey) && !c.IsDefined("triage", inlineKey)
}

func (l *ListsConfig) applyListDefaults() {
	if l.MaxSourceBytes == 0 {
		l.MaxSourceBytes = DefaultMaxListBytes
	}
	if l.RequestTimeout.Duration == 0 {
		l.RequestTimeout.Duration = DefaultListTimeout
	}
}

// MaxShrink is max_source_shrink with its default.
func (l *ListsConfig) MaxShrink() float64 {
	if l.MaxSourceShrink == nil {
		return DefaultMaxListShrink
	}
	return *l.MaxSourceShrink
}

// Sources returns the list sources to read: approve_domain_sources, reject_domain_sources,
// then the lists presets stand for.
func (l *ListsConfig) Sources() ([]ListSource, error) {
	var out []ListSource
	for _, s := range l.ApproveDomainSources {
		out = append(out, ListSource{Decision: Approve, Name: s.SourceName(), URL: s.URL, Format: s.Format})
	}
	for _, s := range l.RejectDomainSources {
		out = append(out, ListSource{Decision: Reject, Name: s.SourceName(), URL: s.URL, Format: s.Format})
	}
	_, fromPresets, err := presetDomains(Reject, l.RejectPresets)
	if err != nil {
		return nil, err
	}
	return append(out, fromPresets...), nil
}

// PresetSets returns the domains of the configured presets.
func (l *ListsConfig) PresetSets() ([]RuleSet, error) {
	a, _, err := presetDomains(Approve, l.ApprovePresets)
	if err != nil {
		return nil, err
	}
	r, _, err := presetDomains(Reject, l.RejectPresets)
	if err != nil {
		return nil, err
	}
	return append(a, r...), nil
}

var listSchemes = []string{"https", "http", "file", "gs"}

func (l *ListsConfig) checkLists(r config.Report) {
	names := map[string]bool{}
	for _, specs := range []struct {
		key   string
		specs []ListSpec
	}{{"approve_domain_sources", l.ApproveDomainSources}, {"reject_domain_sources", l.RejectDomainSources}} {
		for i, s := range specs.specs {
			sr := r.Sub(fmt.Sprintf("%s[%d]", specs.key, i))
			checkListURL(sr, s.URL)
			if s.Format != "" && !slices.Contains(ListFormats, s.Format) {
				sr.Add("format", "%q: use %s, or leave it out to detect", s.Format, strings.Join(ListFormats, ", "))
			}
			if n := specs.key + " " + s.SourceName(); names[n] {
				sr.Add("name", "%q is used by another source; set name", s.SourceName())
			} else {
				names[n] = true
			}
		}
	}
	for i, p := range l.ApprovePresets {
		if !slices.Contains(ApprovePresets, p) {
			r.Add(fmt.Sprintf("approve_presets[%d]", i), "%q: use %s", p, strings.Join(ApprovePresets, ", "))
		}
	}
	for i, p := range l.RejectPresets {
		if !slices.Contains(RejectPresets, p) {
			r.Add(fmt.Sprintf("reject_presets[%d]", i), "%q: use %s", p, strings.Join(RejectPresets, ", "))
		}
	}
	if slices.Contains(l.RejectPresets, PresetDisposable) && names["reject_domain_sources "+PresetDisposable] {
		r.Add("reject_domain_sources", "the name %q is taken by reject_presets = [\"disposable\"]", PresetDisposable)
	}
	if l.MaxSourceShrink != nil && (*l.MaxSourceShrink < 0 || *l.MaxSourceShrink > 100) {
		r.Add("max_source_shrink", "must be a percentage between 0 and 100")
	}
	if l.MaxSourceBytes < 0 {
		r.Add("max_source_bytes", "must be positive")
	}
	checkEmailBlockSettings(r, l.EmailBlockSettings)
}

func checkEmailBlockSettings(r config.Report, s EmailBlockSettings) {
	if s.EmailDomainBlocksMaxAdditions != nil && *s.EmailDomainBlocksMaxAdditions < -1 {
		r.Add("email_domain_blocks_max_additions", "must be -1 (no bound) or more")
	}
	if s.EmailDomainBlocksMaxRemovals != nil && *s.EmailDomainBlocksMaxRemovals < -1 {
		r.Add("email_domain_blocks_max_removals", "must be -1 (no bound) or more")
	}
}

func checkListURL(r config.Report, raw string) {
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		r.Add("url", "is required")
	case err != nil || !slices.Contains(listSchemes, u.Scheme):
		r.Add("url", "%q: use https://, file://, gs:// (or http:// on loopback)", raw)
	case u.Scheme == "http" && !config.LoopbackHost(u.Hostname()):
		r.Add("url", "%q: plain http is only allowed on loopback; lists can be tampered with in transit", raw)
	case u.Scheme == "file" && ((u.Host != "" && u.Host != "localhost") || !strings.HasPrefix(u.Path, "/")):
		r.Add("url", "%q: file URLs must be absolute (file:///path)", raw)
	}
}

// checkPresetOverlap reports a suffix that the approve side (approve_domains and presets)
// and the reject side both list: the configuration would contradict itself.
func (s *Section) checkPresetOverlap(r config.Report) {
	sets, err := s.PresetSets()
	if err != nil {
		return // reported by checkLists
	}
	sets = append(sets, RuleSet{Approve, "approve_domains", s.ApproveDomains}, RuleSet{Reject, "reject_domains", s.RejectDomains})
	lists := map[Decision]map[string]string{Approve: {}, Reject: {}}
	for _, set := range sets {
		for _, d := range set.Domains {
			if n, err := NormalizeSuffix(d); err == nil {
				if _, ok := lists[set.Decision][n]; !ok {
					lists[set.Decision][n] = set.List
				}
			}
		}
	}
	for d, a := range lists[Approve] {
		if rj, ok := lists[Reject][d]; ok && (a != "approve_domains" || rj != "reject_domains") {
			r.Add("approve_presets", "%q is in both %s and %s", d, a, rj)
		}
	}
}

// RulesFor builds the rules of one instance: its approve_domains and reject_domains, the
// presets, and the list sources read this run (lists may be nil: no sources read).
func (s *Section) RulesFor(tr Effective, lists *Lists) (*Rules, error) {
	sets := []RuleSet{{Approve, "approve_domains", tr.ApproveDomains}, {Reject, "reject_domains", tr.RejectDomains}}
	presets, err := s.PresetSets()
	if err != nil {
		return nil, err
	}
	sets = append(sets, presets...)
	var missing []MissingList
	if lists != nil {
		sets = append(sets, lists.Sets...)
		missing = lists.Missing
	}
	return BuildRules(sets, missing)
}

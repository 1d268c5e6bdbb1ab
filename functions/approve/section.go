package approve

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fediops/fediops/shared/config"
	"github.com/fediops/fediops/shared/domain"
)

// Section is the [triage] table.
//
//	[triage]
//	approve_domains = ["gov", "gov.uk"]
//	reject_domains  = ["gmail.com"]
//
//	[instance.triage]            # per-instance overrides, right after its [[instance]]
//	max_actions = 20
type Section struct {
	// Instances limits triage to these instance names (default: every instance).
	Instances []string `toml:"instances"`
	// DryRun logs what would be done and changes nothing.
	DryRun bool `toml:"dry_run"`
	// ApproveDomains and RejectDomains are email domain suffixes matched on label boundaries.
	// Left out, they default to DefaultApproveDomains / DefaultRejectDomains; set them to []
	// to have none.
	ApproveDomains []string `toml:"approve_domains"`
	RejectDomains  []string `toml:"reject_domains"`
	// RequireConfirmedEmail holds an approvable account until its email is confirmed (default true).
	RequireConfirmedEmail bool `toml:"require_confirmed_email"`
	// MaxActions caps approvals plus rejections per instance and run (default 100).
	MaxActions int `toml:"max_actions"`
	// PageSize is the number of pending accounts asked for per page (default 200, the maximum).
	PageSize int `toml:"page_size"`
	// LeaseTTL is how long a run's exclusive lease lasts if the run dies (default 10m).
	LeaseTTL config.Duration `toml:"lease_ttl"`
	// Fanout: a scheduled run (a message naming no instance) with several instances publishes
	// one message per instance to the triage topic and returns, so that each instance runs in
	// its own invocation (default true). false runs them one after the other.
	Fanout bool `toml:"fanout"`
	// WebhookMaxAge: TriageWebhook ignores events created longer ago (default 1h): Mastodon
	// retries a failed delivery for about two days, and the schedule has long since decided.
	WebhookMaxAge config.Duration `toml:"webhook_max_age"`
	// ListsConfig: list sources, presets and email-domain blocks (listsection.go).
	ListsConfig

	// overrides are the [instance.triage] tables, by instance name.
	overrides map[string]*Override
}

// Override is an [instance.triage] table: any key set replaces the [triage] value.
type Override struct {
	DryRun                *bool     `toml:"dry_run"`
	ApproveDomains        *[]string `toml:"approve_domains"`
	RejectDomains         *[]string `toml:"reject_domains"`
	RequireConfirmedEmail *bool     `toml:"require_confirmed_email"`
	MaxActions            *int      `toml:"max_actions"`
	EmailBlockSettings
}

// DefaultApproveDomains are government and public-sector email domains.
var DefaultApproveDomains = []string{
	"gov", "mil", "gov.uk", "gc.ca", "canada.ca", "gov.au", "govt.nz", "europa.eu",
	"gouv.fr", "bund.de", "admin.ch", "gv.at", "gov.ie", "overheid.nl", "gov.it",
}

// DefaultRejectDomains are free webmail providers: not a public body.
var DefaultRejectDomains = []string{
	"gmail.com", "googlemail.com", "yahoo.com", "aol.com", "hotmail.com", "outlook.com",
	"live.com", "msn.com", "icloud.com", "me.com", "mail.ru", "yandex.ru", "gmx.com", "proton.me",
}

// Defaults applied when a key is absent.
const (
	DefaultMaxActions = 100
	DefaultPageSize   = 200
	DefaultLeaseTTL   = 10 * time.Minute
	// DefaultWebhookMaxAge is [triage] webhook_max_age's default.
	DefaultWebhookMaxAge = time.Hour
)

// Effective is the triage configuration of one instance: [triage] with its overrides.
type Effective struct {
	DryRun                bool
	ApproveDomains        []string
	RejectDomains         []string
	RequireConfirmedEmail bool
	MaxActions            int
	PageSize              int
	LeaseTTL              time.Duration
	EmailBlocks           EmailBlockOptions
}

// LoadSection decodes and validates [triage] and the instances' [instance.triage] tables.
func LoadSection(c *config.Config) (*Section, error) {
	s := &Section{overrides: map[string]*Override{}}
	r := c.Report()
	r.Merge(c.Section("triage", s))
	s.applyDefaults(c)
	for _, inst := range c.Instances {
		var o Override
		ok, err := c.InstanceSection(inst.Name, "triage", &o)
		r.Merge(err)
		if ok {
			s.overrides[inst.Name] = &o
		}
	}
	s.check(c, r)
	if err := r.Err(); err != nil {
		return nil, err
	}
	return s, nil
}

// CheckConfig validates the triage sections of c (for the other functions' warnings and the
// CLI's list of problems).
func CheckConfig(c *config.Config) error {
	_, err := LoadSection(c)
	return err
}

func (s *Section) applyDefaults(c *config.Config) {
	// Presets set without the inline list replace the built-in default list (listsection.go).
	if !c.IsDefined("triage", "approve_domains") && !presetsReplaceDefaults(c, "approve_domains", "approve_presets") {
		s.ApproveDomains = slices.Clone(DefaultApproveDomains)
	}
	if !c.IsDefined("triage", "reject_domains") && !presetsReplaceDefaults(c, "reject_domains", "reject_presets") {
		s.RejectDomains = slices.Clone(DefaultRejectDomains)
	}
	s.applyListDefaults()
	if !c.IsDefined("triage", "require_confirmed_email") {
		s.RequireConfirmedEmail = true
	}
	if !c.IsDefined("triage", "max_actions") {
		s.MaxActions = DefaultMaxActions
	}
	if !c.IsDefined("triage", "page_size") {
		s.PageSize = DefaultPageSize
	}
	if s.LeaseTTL.Duration == 0 {
		s.LeaseTTL.Duration = DefaultLeaseTTL
	}
	if !c.IsDefined("triage", "fanout") {
		s.Fanout = true
	}
	if s.WebhookMaxAge.Duration == 0 {
		s.WebhookMaxAge.Duration = DefaultWebhookMaxAge
	}
}

// Defaults returns the section of a file without [triage]: the built-in lists and defaults.
func Defaults() *Section {
	s := &Section{
		ApproveDomains: slices.Clone(DefaultApproveDomains), RejectDomains: slices.Clone(DefaultRejectDomains),
		RequireConfirmedEmail: true, MaxActions: DefaultMaxActions, PageSize: DefaultPageSize,
		LeaseTTL: config.Duration{Duration: DefaultLeaseTTL}, Fanout: true,
		WebhookMaxAge: config.Duration{Duration: DefaultWebhookMaxAge}, overrides: map[string]*Override{},
	}
	s.applyListDefaults()
	return s
}

// For returns the triage configuration of the instance called name.
func (s *Section) For(name string) Effective {
	e := Effective{
		DryRun: s.DryRun, ApproveDomains: s.ApproveDomains, RejectDomains: s.RejectDomains,
		RequireConfirmedEmail: s.RequireConfirmedEmail, MaxActions: s.MaxActions, PageSize: s.PageSize,
		LeaseTTL: s.LeaseTTL.Duration,
	}
	o := s.overrides[name]
	if o == nil {
		e.EmailBlocks = s.emailBlocksFor(nil)
		return e
	}
	e.EmailBlocks = s.emailBlocksFor(&o.EmailBlockSettings)
	if o.DryRun != nil {
		e.DryRun = *o.DryRun
	}
	if o.ApproveDomains != nil {
		e.ApproveDomains = *o.ApproveDomains
	}
	if o.RejectDomains != nil {
		e.RejectDomains = *o.RejectDomains
	}
	if o.RequireConfirmedEmail != nil {
		e.RequireConfirmedEmail = *o.RequireConfirmedEmail
	}
	if o.MaxActions != nil {
		e.MaxActions = *o.MaxActions
	}
	return e
}

// InstancesOf returns the instances triage works on, in file order.
func (s *Section) InstancesOf(c *config.Config) []config.Instance {
	if len(s.Instances) == 0 {
		return c.Instances
	}
	var out []config.Instance
	for _, i := range c.Instances {
		if slices.Contains(s.Instances, i.Name) {
			out = append(out, i)
		}
	}
	return out
}

func (s *Section) check(c *config.Config, r config.Report) {
	for i, inst := range c.Instances {
		o := s.overrides[inst.Name]
		if o == nil {
			continue
		}
		tr := r.Sub(fmt.Sprintf("instance[%d].triage", i))
		if o.ApproveDomains != nil {
			checkDomains(tr, "approve_domains", *o.ApproveDomains)
		}
		if o.RejectDomains != nil {
			checkDomains(tr, "reject_domains", *o.RejectDomains)
		}
		if o.MaxActions != nil && *o.MaxActions < 1 {
			tr.Add("max_actions", "must be at least 1")
		}
		checkEmailBlockSettings(tr, o.EmailBlockSettings)
		eff := s.For(inst.Name)
		checkOverlap(tr, eff.ApproveDomains, eff.RejectDomains)
	}
	tr := r.Sub("triage")
	for _, n := range s.Instances {
		if _, ok := c.Instance(n); !ok {
			tr.Add("instances", "%q is not an [[instance]] name", n)
		}
	}
	checkDomains(tr, "approve_domains", s.ApproveDomains)
	checkDomains(tr, "reject_domains", s.RejectDomains)
	checkOverlap(tr, s.ApproveDomains, s.RejectDomains)
	s.checkLists(tr)
	s.checkPresetOverlap(tr)
	if s.MaxActions < 1 {
		tr.Add("max_actions", "must be at least 1")
	}
	if s.PageSize < 1 || s.PageSize > 200 {
		tr.Add("page_size", "must be between 1 and 200")
	}
	if s.LeaseTTL.Duration < time.Minute {
		tr.Add("lease_ttl", "must be at least 1m")
	}
	if s.WebhookMaxAge.Duration < time.Minute {
		tr.Add("webhook_max_age", "must be at least 1m")
	}
}

// NormalizeSuffix normalises a domain rule entry: a leading "." or "*." is allowed and ignored.
func NormalizeSuffix(s string) (string, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "*.")
	s = strings.TrimPrefix(s, ".")
	return domain.Normalize(s)
}

func checkDomains(r config.Report, key string, list []string) {
	seen := map[string]bool{}
	for i, d := range list {
		n, err := NormalizeSuffix(d)
		if err != nil {
			r.Add(fmt.Sprintf("%s[%d]", key, i), "%v", err)
			continue
		}
		if seen[n] {
			r.Add(fmt.Sprintf("%s[%d]", key, i), "%q is listed twice", d)
		}
		seen[n] = true
	}
}

func checkOverlap(r config.Report, approve, reject []string) {
	in := map[string]bool{}
	for _, d := range approve {
		if n, err := NormalizeSuffix(d); err == nil {
			in[n] = true
		}
	}
	for _, d := range reject {
		if n, err := NormalizeSuffix(d); err == nil && in[n] {
			r.Add("reject_domains", "%q is also in approve_domains", d)
		}
	}
}

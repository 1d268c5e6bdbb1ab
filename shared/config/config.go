// Package config loads fediops' configuration: one TOML file for every function and the CLI.
//
//	[[instance]]                 # one per Mastodon/GoToSocial server
//	name  = "main"
//	url   = "https://social.example.gov"
//	token = "sm://projects/P/secrets/mastodon-token/versions/latest"   # or env://VAR, file:///path
//
//	[triage]                     # registration triage defaults
//	approve_domains = ["gov", "gov.uk"]
//	reject_domains  = ["gmail.com"]
//
//	[instance.triage]            # per-instance overrides, right after its [[instance]]
//	max_actions = 20
//
//	[archive]
//	url = "gs://bucket/prefix"   # or a local directory
//
// Every problem (unknown keys, bad values, dangling references) is reported with the file and
// the key before anything runs.
package config

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/fediops/fediops/shared/domain"
	"github.com/fediops/fediops/shared/secrets"
)

// Config is the whole configuration file.
type Config struct {
	// File is where the configuration was read from (for messages).
	File string `toml:"-"`

	Instances []Instance `toml:"instance"`
	Triage    Triage     `toml:"triage"`
	Archive   Archive    `toml:"archive"`
	Blocklist Blocklist  `toml:"blocklist"`
	Backup    Backup     `toml:"backup"`

	// FediBlockHole is set when the file is a FediBlockHole configuration (its keys at the
	// top level); they are read into Blocklist.
	FediBlockHole bool `toml:"-"`
}

// fbhFile is a FediBlockHole configuration file: the [blocklist] keys at the top level,
// next to fediops' own tables.
type fbhFile struct {
	Blocklist
	Instances []Instance `toml:"instance"`
	Triage    Triage     `toml:"triage"`
	Archive   Archive    `toml:"archive"`
	Backup    Backup     `toml:"backup"`
}

// fbhKeys are the top-level keys that mark a FediBlockHole configuration.
var fbhKeys = []string{"blocklist_url_sources", "blocklist_instance_sources", "allowlist_url_sources",
	"blocklist_instance_destinations", "mergeplan", "merge_threshold", "merge_threshold_type", "import_fields",
	"export_fields", "save_intermediate", "savedir", "blocklist_savefile", "blocklist_auditfile",
	"no_push_instance", "no_fetch_url", "no_fetch_instance", "override_private_comment"}

// DefaultFBHArchive is where a FediBlockHole configuration, which has no [archive], archives.
const DefaultFBHArchive = "fediops-archive"

// Instance is one [[instance]]: a server fediops works on.
type Instance struct {
	// Name identifies the instance in messages, archive paths and Pub/Sub options.
	Name string `toml:"name"`
	// URL is the server's base URL (https://; http:// only on loopback).
	URL string `toml:"url"`
	// Token is a secret reference to an access token of an admin account.
	Token string `toml:"token"`
	// RequestTimeout bounds each HTTP request to the server (default 30s).
	RequestTimeout Duration `toml:"request_timeout"`
	// Triage overrides [triage] for this instance.
	Triage *TriageOverride `toml:"triage"`
}

// Triage is the [triage] table.
type Triage struct {
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
	LeaseTTL Duration `toml:"lease_ttl"`
}

// TriageOverride is an [instance.triage] table: any key set replaces the [triage] value.
type TriageOverride struct {
	DryRun                *bool     `toml:"dry_run"`
	ApproveDomains        *[]string `toml:"approve_domains"`
	RejectDomains         *[]string `toml:"reject_domains"`
	RequireConfirmedEmail *bool     `toml:"require_confirmed_email"`
	MaxActions            *int      `toml:"max_actions"`
}

// Archive is the [archive] table.
type Archive struct {
	// URL is gs://bucket/prefix or a local directory (a path or file:///path).
	URL string `toml:"url"`
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
	DefaultMaxActions     = 100
	DefaultPageSize       = 200
	DefaultLeaseTTL       = 10 * time.Minute
	DefaultRequestTimeout = 30 * time.Second
)

// TriageRules is the effective triage configuration for one instance.
type TriageRules struct {
	DryRun                bool
	ApproveDomains        []string
	RejectDomains         []string
	RequireConfirmedEmail bool
	MaxActions            int
	PageSize              int
	LeaseTTL              time.Duration
}

// TriageFor returns the triage rules for inst: [triage] with inst's overrides applied.
func (c *Config) TriageFor(inst Instance) TriageRules {
	r := TriageRules{
		DryRun:                c.Triage.DryRun,
		ApproveDomains:        c.Triage.ApproveDomains,
		RejectDomains:         c.Triage.RejectDomains,
		RequireConfirmedEmail: c.Triage.RequireConfirmedEmail,
		MaxActions:            c.Triage.MaxActions,
		PageSize:              c.Triage.PageSize,
		LeaseTTL:              c.Triage.LeaseTTL.Duration,
	}
	if o := inst.Triage; o != nil {
		if o.DryRun != nil {
			r.DryRun = *o.DryRun
		}
		if o.ApproveDomains != nil {
			r.ApproveDomains = *o.ApproveDomains
		}
		if o.RejectDomains != nil {
			r.RejectDomains = *o.RejectDomains
		}
		if o.RequireConfirmedEmail != nil {
			r.RequireConfirmedEmail = *o.RequireConfirmedEmail
		}
		if o.MaxActions != nil {
			r.MaxActions = *o.MaxActions
		}
	}
	return r
}

// Instance returns the instance called name.
func (c *Config) Instance(name string) (Instance, bool) {
	for _, i := range c.Instances {
		if i.Name == name {
			return i, true
		}
	}
	return Instance{}, false
}

// TriageInstances returns the instances triage works on, in file order.
func (c *Config) TriageInstances() []Instance {
	if len(c.Triage.Instances) == 0 {
		return c.Instances
	}
	var out []Instance
	for _, i := range c.Instances {
		if slices.Contains(c.Triage.Instances, i.Name) {
			out = append(out, i)
		}
	}
	return out
}

// Reader reads a configuration file from a location that is not a local path (gs://…).
type Reader func(ctx context.Context, location string) ([]byte, error)

// Load reads and validates the configuration at location: a local path, file:///path, or
// gs://bucket/object (read through readRemote).
func Load(ctx context.Context, location string, readRemote Reader) (*Config, error) {
	if location == "" {
		return nil, errors.New("no configuration: set FEDIOPS_CONFIG or pass --config")
	}
	var data []byte
	var err error
	switch {
	case strings.HasPrefix(location, "gs://"):
		if readRemote == nil {
			return nil, fmt.Errorf("%s: cannot read gs:// configuration here", location)
		}
		data, err = readRemote(ctx, location)
	default:
		data, err = os.ReadFile(strings.TrimPrefix(location, "file://"))
	}
	if err != nil {
		return nil, fmt.Errorf("read configuration %s: %w", location, err)
	}
	return Parse(location, data)
}

// Parse decodes and validates a configuration file's content; name is used in messages.
func Parse(name string, data []byte) (*Config, error) {
	c := &Config{File: name}
	md, err := toml.Decode(string(data), c)
	if err == nil && isFBH(&md) {
		var f fbhFile
		if md, err = toml.Decode(string(data), &f); err == nil {
			c.Blocklist, c.Instances, c.Triage, c.Archive, c.Backup = f.Blocklist, f.Instances, f.Triage, f.Archive, f.Backup
			c.FediBlockHole = true
			if c.Archive.URL == "" {
				c.Archive.URL = DefaultFBHArchive
			}
		}
	}
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, &Error{Problems: []Problem{{File: name, Key: pe.LastKey, Msg: fmt.Sprintf("line %d: %s", pe.Position.Line, pe.Message)}}}
		}
		return nil, &Error{Problems: []Problem{{File: name, Msg: err.Error()}}}
	}
	var problems []Problem
	for _, k := range md.Undecoded() {
		problems = append(problems, Problem{File: name, Key: k.String(), Msg: "unknown key"})
	}
	c.applyDefaults(&md)
	c.check(report{file: name, problems: &problems})
	if len(problems) > 0 {
		return nil, &Error{Problems: problems}
	}
	return c, nil
}

func isFBH(md *toml.MetaData) bool {
	for _, k := range fbhKeys {
		if md.IsDefined(k) {
			return true
		}
	}
	return false
}

func (c *Config) applyDefaults(md *toml.MetaData) {
	b := &c.Blocklist
	if b.RequestTimeout.Duration == 0 {
		b.RequestTimeout.Duration = DefaultRequestTimeout
	}
	if b.LeaseTTL.Duration == 0 {
		b.LeaseTTL.Duration = DefaultBlocklistLease
	}
	if b.MaxSourceBytes == 0 {
		b.MaxSourceBytes = DefaultMaxSourceBytes
	}
	if !md.IsDefined("triage", "approve_domains") {
		c.Triage.ApproveDomains = slices.Clone(DefaultApproveDomains)
	}
	if !md.IsDefined("triage", "reject_domains") {
		c.Triage.RejectDomains = slices.Clone(DefaultRejectDomains)
	}
	if !md.IsDefined("triage", "require_confirmed_email") {
		c.Triage.RequireConfirmedEmail = true
	}
	if !md.IsDefined("triage", "max_actions") {
		c.Triage.MaxActions = DefaultMaxActions
	}
	if !md.IsDefined("triage", "page_size") {
		c.Triage.PageSize = DefaultPageSize
	}
	if c.Triage.LeaseTTL.Duration == 0 {
		c.Triage.LeaseTTL.Duration = DefaultLeaseTTL
	}
	for i := range c.Instances {
		if c.Instances[i].RequestTimeout.Duration == 0 {
			c.Instances[i].RequestTimeout.Duration = DefaultRequestTimeout
		}
	}
}

var nameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

func (c *Config) check(r report) {
	names := map[string]bool{}
	for i, inst := range c.Instances {
		ir := r.Sub(fmt.Sprintf("instance[%d]", i))
		switch {
		case inst.Name == "":
			ir.Add("name", "is required")
		case !nameRe.MatchString(inst.Name):
			ir.Add("name", "%q: use lower-case letters, digits, '-' and '_'", inst.Name)
		case names[inst.Name]:
			ir.Add("name", "%q is used by another instance", inst.Name)
		}
		names[inst.Name] = true
		if err := CheckServerURL(inst.URL); err != nil {
			ir.Add("url", "%v", err)
		}
		if inst.Token == "" {
			ir.Add("token", "is required (sm://…, env://VAR or file:///path)")
		} else if _, err := secrets.ParseRef(inst.Token); err != nil {
			if errors.Is(err, secrets.ErrNotReference) {
				ir.Add("token", "must be a secret reference, not the token itself: %v", err)
			} else {
				ir.Add("token", "%v", err)
			}
		}
		if inst.RequestTimeout.Duration < 0 {
			ir.Add("request_timeout", "must be positive")
		}
		if o := inst.Triage; o != nil {
			tr := ir.Sub("triage")
			if o.ApproveDomains != nil {
				checkDomains(tr, "approve_domains", *o.ApproveDomains)
			}
			if o.RejectDomains != nil {
				checkDomains(tr, "reject_domains", *o.RejectDomains)
			}
			if o.MaxActions != nil && *o.MaxActions < 1 {
				tr.Add("max_actions", "must be at least 1")
			}
			eff := c.TriageFor(inst)
			checkOverlap(tr, eff.ApproveDomains, eff.RejectDomains)
		}
	}
	tr := r.Sub("triage")
	for _, n := range c.Triage.Instances {
		if !names[n] {
			tr.Add("instances", "%q is not an [[instance]] name", n)
		}
	}
	checkDomains(tr, "approve_domains", c.Triage.ApproveDomains)
	checkDomains(tr, "reject_domains", c.Triage.RejectDomains)
	checkOverlap(tr, c.Triage.ApproveDomains, c.Triage.RejectDomains)
	if c.Triage.MaxActions < 1 {
		tr.Add("max_actions", "must be at least 1")
	}
	if c.Triage.PageSize < 1 || c.Triage.PageSize > 200 {
		tr.Add("page_size", "must be between 1 and 200")
	}
	if c.Triage.LeaseTTL.Duration < time.Minute {
		tr.Add("lease_ttl", "must be at least 1m")
	}
	ar := r.Sub("archive")
	if c.Archive.URL == "" {
		ar.Add("url", "is required (gs://bucket/prefix or a local directory)")
	} else if strings.HasPrefix(c.Archive.URL, "gs://") {
		if b, _, _ := strings.Cut(strings.TrimPrefix(c.Archive.URL, "gs://"), "/"); b == "" {
			ar.Add("url", "%q has no bucket", c.Archive.URL)
		}
	} else if strings.Contains(c.Archive.URL, "://") && !strings.HasPrefix(c.Archive.URL, "file://") {
		ar.Add("url", "%q: use gs://bucket/prefix or a local directory", c.Archive.URL)
	}
	br := r.Sub("blocklist")
	if c.FediBlockHole {
		br = r
	}
	c.Blocklist.check(br, names)
	c.Backup.check(r.Sub("backup"))
}

// CheckServerURL validates an instance base URL: https, or http on a loopback host (tests,
// the built-in sandbox), with a host and no query.
func CheckServerURL(s string) error {
	if s == "" {
		return errors.New("is required")
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %w", s, err)
	}
	if u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q must look like https://social.example", s)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !loopbackHost(u.Hostname()) {
			return fmt.Errorf("%q: plain http is only allowed on loopback; the token would travel in clear text", s)
		}
	default:
		return fmt.Errorf("%q must start with https://", s)
	}
	return nil
}

// NormalizeSuffix normalises a domain rule entry: a leading "." or "*." is allowed and ignored.
func NormalizeSuffix(s string) (string, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "*.")
	s = strings.TrimPrefix(s, ".")
	return domain.Normalize(s)
}

func checkDomains(r report, key string, list []string) {
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

func checkOverlap(r report, approve, reject []string) {
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

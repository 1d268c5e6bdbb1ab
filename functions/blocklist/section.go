package blocklist

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/fediops/fediops/functions/blocklist/fires"
	"github.com/fediops/fediops/shared/config"
	"github.com/fediops/fediops/shared/domain"
	"github.com/fediops/fediops/shared/listsource"
	"github.com/fediops/fediops/shared/secrets"
)

// Section is the [blocklist] table. Its keys are FediBlockHole's, so a FediBlockHole
// configuration file (whose keys are at the top level) loads unchanged; the keys after the
// FediBlockHole block are fediops' own.
//
//	[blocklist]
//	blocklist_url_sources = [
//	  { url = "https://example.org/tier0.csv", format = "csv", max_severity = "suspend" },
//	  { url = "gs://lists/ours.csv", name = "ours" },
//	  { url = "https://rapidblock.org/blocklist.json", format = "rapidblock.json", public_key = "WvnrPc+6PAQrB9iJPbg4m5lQghHY2Pf7hm7JK3A8JC4=" },
//	]
//	blocklist_instance_sources = [ { domain = "mastodon.social" } ]
//	allowlist_url_sources = [ { url = "file:///etc/fediops/allow.csv" } ]
//	mergeplan = "max"
//	import_fields = ["public_comment", "reject_media", "reject_reports", "obfuscate"]
//	destinations = ["main"]        # [[instance]] names; or tables with per-destination options
type Section struct {
	// FediBlockHole keys.
	URLSources             []URLSourceSpec      `toml:"blocklist_url_sources"`
	InstanceSources        []InstanceSourceSpec `toml:"blocklist_instance_sources"`
	AllowlistURLSources    []ListSpec           `toml:"allowlist_url_sources"`
	InstanceDestinations   []FBHDestination     `toml:"blocklist_instance_destinations"`
	SaveIntermediate       bool                 `toml:"save_intermediate"`
	Savedir                string               `toml:"savedir"`
	BlocklistSavefile      string               `toml:"blocklist_savefile"`
	BlocklistAuditfile     string               `toml:"blocklist_auditfile"`
	NoPushInstance         bool                 `toml:"no_push_instance"`
	NoFetchURL             bool                 `toml:"no_fetch_url"`
	NoFetchInstance        bool                 `toml:"no_fetch_instance"`
	Mergeplan              string               `toml:"mergeplan"`
	MergeThreshold         int                  `toml:"merge_threshold"`
	MergeThresholdType     string               `toml:"merge_threshold_type"`
	OverridePrivateComment string               `toml:"override_private_comment"`
	ImportFields           []string             `toml:"import_fields"`
	ExportFields           []string             `toml:"export_fields"`
	Destinations           []DestinationSpec    `toml:"destinations"`

	// fediops keys.
	AllowlistSubdomains *bool           `toml:"allowlist_subdomains"` // default true
	MaxSourceShrink     *float64        `toml:"max_source_shrink"`    // percent, default 50
	MaxSourceBytes      int64           `toml:"max_source_bytes"`     // default 50 MiB
	RequestTimeout      config.Duration `toml:"request_timeout"`      // per fetch, default 30s
	LeaseTTL            config.Duration `toml:"lease_ttl"`            // default 15m
	// Fanout: the deployed function turns a scheduled run (a message naming no destination)
	// with several destinations into one merge and one message per destination (default true).
	Fanout *bool `toml:"fanout"`
	SyncOptions
}

// SyncOptions are the sync settings; each can be set in [blocklist] (for every destination)
// and overridden per destination.
type SyncOptions struct {
	DryRun              *bool    `toml:"dry_run"`
	AdoptOrphans        *bool    `toml:"adopt_orphans"`
	RemoveRetracted     *bool    `toml:"remove_retracted"`
	MaxFollowedSeverity *string  `toml:"max_followed_severity"`
	MaxRemovals         *int     `toml:"max_removals"`
	MaxChangePct        *float64 `toml:"max_change_pct"`
	InitialImport       *bool    `toml:"initial_import"`
	Marker              *string  `toml:"marker"`
}

// URLSourceSpec is an entry of blocklist_url_sources.
type URLSourceSpec struct {
	ListSpec
	// FIRES datasets (format = "fires", url = the dataset's URL): only entities carrying one
	// of labels (names, URLs or ids; all if empty), and what each recommendedPolicy becomes.
	Labels   []string    `toml:"labels"`
	Policies *PolicySpec `toml:"policies"`
}

// ListSpec is an entry of allowlist_url_sources, and what every entry of
// blocklist_url_sources has.
type ListSpec struct {
	URL          string   `toml:"url"` // https://, http:// (loopback), file://, gs://
	Format       string   `toml:"format"`
	MaxSeverity  string   `toml:"max_severity"`
	ImportFields []string `toml:"import_fields"`
	// fediops: a name for reports and the marker (default: from the URL), and an Ed25519
	// public key (base64) to verify a RapidBlock signature at signature_url (default URL+".sig").
	Name         string `toml:"name"`
	PublicKey    string `toml:"public_key"`
	SignatureURL string `toml:"signature_url"`
}

// PolicySpec maps a FIRES dataset's recommendedPolicy values to what fediops does: suspend,
// silence or noop (a block of that severity), allow (an allowlist entry) or ignore. Unset
// values keep their defaults (fires.DefaultPolicies).
type PolicySpec struct {
	Drop   string `toml:"drop"`
	Reject string `toml:"reject"`
	Filter string `toml:"filter"`
	Accept string `toml:"accept"`
}

// Map returns the policies that are set, by FIRES policy.
func (p *PolicySpec) Map() map[string]string {
	out := map[string]string{}
	if p == nil {
		return out
	}
	for k, v := range map[string]string{"drop": p.Drop, "reject": p.Reject, "filter": p.Filter, "accept": p.Accept} {
		if v != "" {
			out[k] = v
		}
	}
	return out
}

// InstanceSourceSpec is an entry of blocklist_instance_sources.
type InstanceSourceSpec struct {
	Domain       string   `toml:"domain"`
	Token        string   `toml:"token"` // a secret reference, or (FediBlockHole style) the token itself
	TokenEnvVar  string   `toml:"token_env_var"`
	Admin        bool     `toml:"admin"`
	Scheme       string   `toml:"scheme"`
	ImportFields []string `toml:"import_fields"`
	MaxSeverity  string   `toml:"max_severity"`
	Name         string   `toml:"name"`
}

// FBHDestination is an entry of blocklist_instance_destinations (FediBlockHole style).
type FBHDestination struct {
	Domain              string   `toml:"domain"`
	Token               string   `toml:"token"`
	TokenEnvVar         string   `toml:"token_env_var"`
	MaxFollowedSeverity string   `toml:"max_followed_severity"`
	Scheme              string   `toml:"scheme"`
	ImportFields        []string `toml:"import_fields"`
	MaxSeverity         string   `toml:"max_severity"`
}

// DestinationSpec is an entry of destinations: an [[instance]] name, or a table
// { instance = "name", <sync options> }.
type DestinationSpec struct {
	Instance string
	SyncOptions
	ImportFields *[]string
	unknown      []string
}

// UnmarshalTOML accepts "name" or a table.
func (d *DestinationSpec) UnmarshalTOML(v any) error {
	switch x := v.(type) {
	case string:
		d.Instance = x
		return nil
	case map[string]any:
		for k, val := range x {
			if err := d.set(k, val); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("a destination is an instance name or a table, not %T", v)
}

func (d *DestinationSpec) set(k string, v any) error {
	str := func() (*string, error) {
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("%s must be a string", k)
		}
		return &s, nil
	}
	boolean := func() (*bool, error) {
		b, ok := v.(bool)
		if !ok {
			return nil, fmt.Errorf("%s must be true or false", k)
		}
		return &b, nil
	}
	var err error
	switch k {
	case "instance":
		var s *string
		if s, err = str(); err == nil {
			d.Instance = *s
		}
	case "dry_run":
		d.DryRun, err = boolean()
	case "adopt_orphans":
		d.AdoptOrphans, err = boolean()
	case "remove_retracted":
		d.RemoveRetracted, err = boolean()
	case "initial_import":
		d.InitialImport, err = boolean()
	case "max_followed_severity":
		d.MaxFollowedSeverity, err = str()
	case "marker":
		d.Marker, err = str()
	case "max_removals":
		n, ok := v.(int64)
		if !ok {
			return fmt.Errorf("max_removals must be a whole number")
		}
		i := int(n)
		d.MaxRemovals = &i
	case "max_change_pct":
		switch n := v.(type) {
		case int64:
			f := float64(n)
			d.MaxChangePct = &f
		case float64:
			d.MaxChangePct = &n
		default:
			return fmt.Errorf("max_change_pct must be a number")
		}
	case "import_fields":
		arr, ok := v.([]any)
		if !ok {
			return fmt.Errorf("import_fields must be a list")
		}
		var out []string
		for _, a := range arr {
			s, ok := a.(string)
			if !ok {
				return fmt.Errorf("import_fields must be a list of strings")
			}
			out = append(out, s)
		}
		d.ImportFields = &out
	default:
		d.unknown = append(d.unknown, k)
	}
	return err
}

// Defaults of the sync options.
const (
	DefaultMaxRemovals     = 20
	DefaultMaxChangePct    = 10.0
	DefaultMaxSourceShrink = 50.0
	DefaultMaxSourceBytes  = 50 << 20
	DefaultBlocklistLease  = 15 * time.Minute
	DefaultMarker          = "fediops:"
)

// EffectiveSync is the sync configuration of one destination, defaults applied.
type EffectiveSync struct {
	Instance            config.Instance
	DryRun              bool
	AdoptOrphans        bool
	RemoveRetracted     bool
	MaxFollowedSeverity string
	MaxRemovals         int
	MaxChangePct        float64
	InitialImport       bool
	Marker              string
	ImportFields        []string
	// TokenEnvVar and FBH are set for FediBlockHole-style destinations.
	TokenEnvVar string
	FBH         bool
}

func pick[T any](vals ...*T) *T {
	for _, v := range vals {
		if v != nil {
			return v
		}
	}
	return nil
}

func or[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

// DestinationsOf returns every destination with its effective options: the
// [[instance]]s named in destinations, then FediBlockHole's blocklist_instance_destinations.
// With no_push_instance there are none.
func (b *Section) DestinationsOf(c *config.Config) []EffectiveSync {
	if b.NoPushInstance {
		return nil
	}
	var out []EffectiveSync
	mk := func(inst config.Instance, o SyncOptions, importFields *[]string) EffectiveSync {
		g := b.SyncOptions
		fields := b.ImportFields
		if importFields != nil {
			fields = *importFields
		}
		return EffectiveSync{
			Instance:            inst,
			DryRun:              or(pick(o.DryRun, g.DryRun), false),
			AdoptOrphans:        or(pick(o.AdoptOrphans, g.AdoptOrphans), false),
			RemoveRetracted:     or(pick(o.RemoveRetracted, g.RemoveRetracted), true),
			MaxFollowedSeverity: or(pick(o.MaxFollowedSeverity, g.MaxFollowedSeverity), "silence"),
			MaxRemovals:         or(pick(o.MaxRemovals, g.MaxRemovals), DefaultMaxRemovals),
			MaxChangePct:        or(pick(o.MaxChangePct, g.MaxChangePct), DefaultMaxChangePct),
			InitialImport:       or(pick(o.InitialImport, g.InitialImport), false),
			Marker:              or(pick(o.Marker, g.Marker), DefaultMarker),
			ImportFields:        fields,
		}
	}
	for _, d := range b.Destinations {
		inst, ok := c.Instance(d.Instance)
		if !ok {
			continue // reported by check
		}
		out = append(out, mk(inst, d.SyncOptions, d.ImportFields))
	}
	for _, d := range b.InstanceDestinations {
		scheme := or(nonEmpty(d.Scheme), "https")
		inst := config.Instance{Name: fbhName(d.Domain), URL: scheme + "://" + d.Domain, Token: d.Token, RequestTimeout: config.Duration{Duration: config.DefaultRequestTimeout}}
		o := SyncOptions{}
		if d.MaxFollowedSeverity != "" {
			o.MaxFollowedSeverity = &d.MaxFollowedSeverity
		}
		var fields *[]string
		if d.ImportFields != nil {
			fields = &d.ImportFields
		}
		e := mk(inst, o, fields)
		e.TokenEnvVar, e.FBH = d.TokenEnvVar, true
		out = append(out, e)
	}
	return out
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// fbhName names a FediBlockHole destination after its domain.
func fbhName(d string) string {
	return strings.Trim(regexp.MustCompile(`[^a-z0-9_-]+`).ReplaceAllString(strings.ToLower(d), "-"), "-")
}

// fbhTokenEnvVar is FediBlockHole's default token variable for a domain:
// upper case, dots to underscores, "_TOKEN" appended ("mastodon.social" → MASTODON_SOCIAL_TOKEN).
func fbhTokenEnvVar(d string) string {
	return strings.ToUpper(strings.ReplaceAll(d, ".", "_")) + "_TOKEN"
}

// SourceName returns a source's name: its own, else one derived from the URL.
func (s ListSpec) SourceName() string {
	if s.Name != "" {
		return s.Name
	}
	return NameFromURL(s.URL)
}

// NameFromURL derives a short, stable name from a URL: host and file name.
func NameFromURL(raw string) string { return listsource.NameFromURL(raw) }

// SourceName returns the name of an instance source.
func (s InstanceSourceSpec) SourceName() string {
	if s.Name != "" {
		return s.Name
	}
	return s.Domain
}

var (
	formats     = []string{"", "csv", "mastodon_csv", "json", "mastodon_api_public", "rapidblock.csv", "rapidblock.json", "text", string(fires.Format)}
	severities  = []string{"noop", "silence", "suspend"}
	fieldNames  = []string{"public_comment", "private_comment", "reject_media", "reject_reports", "obfuscate"}
	sourceSchms = []string{"https", "http", "file", "gs"}
)

func (b *Section) check(r config.Report, instanceNames map[string]bool) {
	names := map[string]bool{}
	checkURL := func(sr config.Report, s ListSpec) {
		u, err := url.Parse(s.URL)
		switch {
		case s.URL == "":
			sr.Add("url", "is required")
		case err != nil || !slices.Contains(sourceSchms, u.Scheme):
			sr.Add("url", "%q: use https://, file://, gs:// (or http:// on loopback)", s.URL)
		case u.Scheme == "http" && !config.LoopbackHost(u.Hostname()):
			sr.Add("url", "%q: plain http is only allowed on loopback; lists can be tampered with in transit", s.URL)
		case u.Scheme == "file" && !strings.HasPrefix(u.Path, "/"):
			sr.Add("url", "%q: file URLs must be absolute (file:///path)", s.URL)
		}
		if !slices.Contains(formats, s.Format) {
			sr.Add("format", "%q: use one of %s", s.Format, strings.Join(formats[1:], ", "))
		}
		if s.MaxSeverity != "" && !slices.Contains(severities, s.MaxSeverity) {
			sr.Add("max_severity", "%q: use noop, silence or suspend", s.MaxSeverity)
		}
		checkFields(sr, "import_fields", s.ImportFields)
		if s.PublicKey != "" && len(strings.TrimSpace(s.PublicKey)) != 44 {
			sr.Add("public_key", "must be a base64 Ed25519 public key (44 characters)")
		}
	}
	for i, s := range b.URLSources {
		sr := r.Sub(fmt.Sprintf("blocklist_url_sources[%d]", i))
		checkURL(sr, s.ListSpec)
		checkFIRES(sr, s)
		if n := s.SourceName(); names[n] {
			sr.Add("name", "%q is used by another source; set name", n)
		} else {
			names[n] = true
		}
	}
	for i, s := range b.AllowlistURLSources {
		sr := r.Sub(fmt.Sprintf("allowlist_url_sources[%d]", i))
		checkURL(sr, s)
		if s.Format == string(fires.Format) {
			sr.Add("format", "a FIRES dataset goes in blocklist_url_sources: its accept recommendations become allowlist entries")
		}
	}
	for i, s := range b.InstanceSources {
		sr := r.Sub(fmt.Sprintf("blocklist_instance_sources[%d]", i))
		checkDomainKey(sr, "domain", s.Domain)
		checkScheme(sr, s.Scheme, s.Domain)
		checkToken(sr, s.Token)
		checkFields(sr, "import_fields", s.ImportFields)
		if s.MaxSeverity != "" && !slices.Contains(severities, s.MaxSeverity) {
			sr.Add("max_severity", "%q: use noop, silence or suspend", s.MaxSeverity)
		}
		if n := s.SourceName(); names[n] {
			sr.Add("name", "%q is used by another source; set name", n)
		} else {
			names[n] = true
		}
	}
	for i, d := range b.InstanceDestinations {
		dr := r.Sub(fmt.Sprintf("blocklist_instance_destinations[%d]", i))
		checkDomainKey(dr, "domain", d.Domain)
		checkScheme(dr, d.Scheme, d.Domain)
		checkToken(dr, d.Token)
		checkFields(dr, "import_fields", d.ImportFields)
		if d.MaxFollowedSeverity != "" && !slices.Contains(severities, d.MaxFollowedSeverity) {
			dr.Add("max_followed_severity", "%q: use noop, silence or suspend", d.MaxFollowedSeverity)
		}
	}
	seen := map[string]bool{}
	for i, d := range b.Destinations {
		dr := r.Sub(fmt.Sprintf("destinations[%d]", i))
		switch {
		case d.Instance == "":
			dr.Add("instance", "is required")
		case !instanceNames[d.Instance]:
			dr.Add("instance", "%q is not an [[instance]] name", d.Instance)
		case seen[d.Instance]:
			dr.Add("instance", "%q is listed twice", d.Instance)
		}
		seen[d.Instance] = true
		for _, k := range d.unknown {
			dr.Add(k, "unknown key")
		}
		checkSync(dr, d.SyncOptions)
		if d.ImportFields != nil {
			checkFields(dr, "import_fields", *d.ImportFields)
		}
	}
	checkSync(r, b.SyncOptions)
	switch b.Mergeplan {
	case "", "max", "min":
	default:
		r.Add("mergeplan", "%q: use max or min", b.Mergeplan)
	}
	switch b.MergeThresholdType {
	case "", "count", "pct":
	default:
		r.Add("merge_threshold_type", "%q: use count or pct", b.MergeThresholdType)
	}
	if b.MergeThreshold < 0 {
		r.Add("merge_threshold", "must not be negative")
	}
	checkFields(r, "import_fields", b.ImportFields)
	checkFields(r, "export_fields", b.ExportFields)
	if b.MaxSourceShrink != nil && (*b.MaxSourceShrink < 0 || *b.MaxSourceShrink > 100) {
		r.Add("max_source_shrink", "must be a percentage between 0 and 100")
	}
	if b.MaxSourceBytes < 0 {
		r.Add("max_source_bytes", "must be positive")
	}
}

// checkFIRES checks the keys of a FIRES dataset source, and that they are not used elsewhere.
func checkFIRES(r config.Report, s URLSourceSpec) {
	if s.Format != string(fires.Format) {
		if s.Labels != nil {
			r.Add("labels", "only for format = \"fires\"")
		}
		if s.Policies != nil {
			r.Add("policies", "only for format = \"fires\"")
		}
		return
	}
	if u, err := url.Parse(s.URL); err == nil && u.Scheme != "https" && u.Scheme != "http" {
		r.Add("url", "%q: a FIRES dataset is read over https:// (its URL, e.g. https://fires.example/datasets/<id>)", s.URL)
	}
	if s.PublicKey != "" {
		r.Add("public_key", "not for a FIRES dataset")
	}
	for k, v := range s.Policies.Map() {
		if !fires.ValidAction(v) {
			r.Sub("policies").Add(k, "%q: use %s", v, strings.Join(fires.Actions, ", "))
		}
	}
	for _, l := range s.Labels {
		if strings.TrimSpace(l) == "" {
			r.Add("labels", "an empty label")
		}
	}
}

func checkSync(r config.Report, o SyncOptions) {
	if o.MaxFollowedSeverity != nil && !slices.Contains(severities, *o.MaxFollowedSeverity) {
		r.Add("max_followed_severity", "%q: use noop, silence or suspend", *o.MaxFollowedSeverity)
	}
	if o.MaxRemovals != nil && *o.MaxRemovals < 0 {
		r.Add("max_removals", "must not be negative")
	}
	if o.MaxChangePct != nil && *o.MaxChangePct < 0 {
		r.Add("max_change_pct", "must not be negative (it is a percentage of the instance's blocks and may exceed 100)")
	}
	if o.Marker != nil && len(strings.TrimSpace(*o.Marker)) < 3 {
		r.Add("marker", "must be at least 3 characters: it is how fediops recognises its own blocks")
	}
}

func checkFields(r config.Report, key string, fields []string) {
	for _, f := range fields {
		if f == "domain" || f == "severity" {
			continue // always imported; FediBlockHole tolerates them being named
		}
		if !slices.Contains(fieldNames, f) {
			r.Add(key, "%q is not a field (use %s)", f, strings.Join(fieldNames, ", "))
		}
	}
}

func checkDomainKey(r config.Report, key, d string) {
	if d == "" {
		r.Add(key, "is required")
		return
	}
	if _, err := domain.Normalize(strings.Split(d, ":")[0]); err != nil {
		r.Add(key, "%v", err)
	}
}

func checkScheme(r config.Report, scheme, d string) {
	switch scheme {
	case "", "https":
	case "http":
		if !config.LoopbackHost(strings.Split(d, ":")[0]) {
			r.Add("scheme", "plain http is only allowed on loopback")
		}
	default:
		r.Add("scheme", "%q: use https", scheme)
	}
}

// checkToken accepts a secret reference or, as FediBlockHole does, a literal token; a
// malformed reference is reported.
func checkToken(r config.Report, tok string) {
	if tok == "" {
		return
	}
	if _, err := secrets.ParseRef(tok); err != nil && strings.Contains(tok, "://") {
		r.Add("token", "%v", err)
	}
}

// LoadSection decodes the [blocklist] table (or a FediBlockHole file's top level), applies
// its defaults and validates it against the configured instances.
func LoadSection(c *config.Config) (*Section, error) {
	var s Section
	if err := c.Section("blocklist", &s); err != nil {
		return nil, err
	}
	s.applyDefaults()
	r := c.Report()
	br := r.Sub("blocklist")
	if c.FediBlockHole {
		br = r
	}
	names := map[string]bool{}
	for _, n := range c.InstanceNames() {
		names[n] = true
	}
	s.check(br, names)
	if err := r.Err(); err != nil {
		return nil, err
	}
	return &s, nil
}

// CheckConfig validates the blocklist section of c (for the other functions' warnings and
// the CLI's list of problems).
func CheckConfig(c *config.Config) error {
	_, err := LoadSection(c)
	return err
}

func (b *Section) applyDefaults() {
	if b.RequestTimeout.Duration == 0 {
		b.RequestTimeout.Duration = config.DefaultRequestTimeout
	}
	if b.LeaseTTL.Duration == 0 {
		b.LeaseTTL.Duration = DefaultBlocklistLease
	}
	if b.MaxSourceBytes == 0 {
		b.MaxSourceBytes = DefaultMaxSourceBytes
	}
}

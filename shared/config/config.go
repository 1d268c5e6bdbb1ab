// Package config loads fediops' configuration: one TOML file for every function and the CLI.
//
//	[[instance]]                 # one per Mastodon/GoToSocial server
//	name  = "main"
//	url   = "https://social.example.gov"
//	token = "sm://projects/P/secrets/mastodon-token/versions/latest"   # or env://VAR, file:///path
//	webhook_secret = "sm://projects/P/secrets/mastodon-webhook"        # optional (TriageWebhook)
//
//	[archive]
//	url = "gs://bucket/prefix"   # or a local directory
//
//	[triage]                     # registration triage (functions/approve)
//	[blocklist]                  # blocklist sync (functions/blocklist)
//	[backup]                     # backup audit (functions/backupaudit)
//
// This package decodes and validates what every function shares, [[instance]] and [archive]
// ([archive] is required only by what opens the archive: CheckArchive),
// and hands each function its own section undecoded: the function package owns that
// section's type, defaults and validation (Section, InstanceSection). So a mistake in
// [backup] never stops triage, and adding an option touches one package.
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
	"sync"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/fediops/fediops/shared/secrets"
)

// Sections are the top-level tables that belong to a function, and InstanceSections the
// tables inside an [[instance]] that do.
var (
	sectionNames         = []string{"triage", "blocklist", "backup"}
	instanceSectionNames = []string{"triage"}
)

// Config is the part of the configuration file every function shares, with the sections
// kept for their functions.
type Config struct {
	// File is where the configuration was read from (for messages).
	File string

	Instances []Instance
	Archive   Archive

	// ArchiveDefaulted is set when the file has no [archive] and Archive.URL is the
	// FediBlockHole default (DefaultFBHArchive, relative to the working directory).
	ArchiveDefaulted bool

	// FediBlockHole is set when the file is a FediBlockHole configuration (its keys at the
	// top level); the blocklist section then reads them.
	FediBlockHole bool

	mu       sync.Mutex
	data     string
	md       toml.MetaData
	sections map[string]toml.Primitive
	instSecs []map[string]*toml.Primitive
}

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
	// WebhookSecret is a secret reference to the secret of the server's admin webhook
	// (Mastodon signs each delivery with it); optional: without it the TriageWebhook function
	// refuses every delivery for this instance.
	WebhookSecret string `toml:"webhook_secret"`
}

// Archive is the [archive] table.
type Archive struct {
	// URL is gs://bucket/prefix or a local directory (a path or file:///path).
	URL string `toml:"url"`
}

// file is the shape of the file as this package decodes it.
type file struct {
	Instances []instanceFile `toml:"instance"`
	Archive   Archive        `toml:"archive"`
	Triage    toml.Primitive `toml:"triage"`
	Blocklist toml.Primitive `toml:"blocklist"`
	Backup    toml.Primitive `toml:"backup"`
}

type instanceFile struct {
	Instance
	Triage *toml.Primitive `toml:"triage"` // nil when the instance has no such table
}

// fbhKeys are the top-level keys that mark a FediBlockHole configuration.
var fbhKeys = []string{"blocklist_url_sources", "blocklist_instance_sources", "allowlist_url_sources",
	"blocklist_instance_destinations", "mergeplan", "merge_threshold", "merge_threshold_type", "import_fields",
	"export_fields", "save_intermediate", "savedir", "blocklist_savefile", "blocklist_auditfile",
	"no_push_instance", "no_fetch_url", "no_fetch_instance", "override_private_comment"}

// DefaultFBHArchive is where a FediBlockHole configuration, which has no [archive], archives.
const DefaultFBHArchive = "fediops-archive"

// DefaultRequestTimeout bounds each request to a server unless request_timeout says otherwise.
const DefaultRequestTimeout = 30 * time.Second

// Reader reads a configuration file from a location that is not a local path (gs://…).
type Reader func(ctx context.Context, location string) ([]byte, error)

// ReadError says the configuration could not be read (as opposed to being invalid): the
// cause decides whether a retry can help.
type ReadError struct {
	Location string
	Err      error
}

func (e *ReadError) Error() string {
	return fmt.Sprintf("read configuration %s: %v", e.Location, e.Err)
}
func (e *ReadError) Unwrap() error { return e.Err }

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
		return nil, &ReadError{Location: location, Err: err}
	}
	return Parse(location, data)
}

// Parse decodes and validates a configuration file's shared parts; name is used in messages.
// When the file decodes but has problems, the *Error comes with the Config, so that its
// sections can still be checked (fediops config check lists every problem); nothing may run
// on such a Config.
func Parse(name string, data []byte) (*Config, error) {
	c := &Config{File: name, data: string(data)}
	var f file
	md, err := toml.Decode(c.data, &f)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, &Error{Problems: []Problem{{File: name, Key: pe.LastKey, Msg: fmt.Sprintf("line %d: %s", pe.Position.Line, pe.Message)}}}
		}
		return nil, &Error{Problems: []Problem{{File: name, Msg: err.Error()}}}
	}
	c.md, c.Archive = md, f.Archive
	c.sections = map[string]toml.Primitive{"triage": f.Triage, "blocklist": f.Blocklist, "backup": f.Backup}
	for _, i := range f.Instances {
		c.Instances = append(c.Instances, i.Instance)
		c.instSecs = append(c.instSecs, map[string]*toml.Primitive{"triage": i.Triage})
	}
	c.FediBlockHole = slices.ContainsFunc(fbhKeys, func(k string) bool { return md.IsDefined(k) })
	if c.FediBlockHole && c.Archive.URL == "" {
		c.Archive.URL = DefaultFBHArchive
		c.ArchiveDefaulted = true
	}
	for i := range c.Instances {
		if c.Instances[i].RequestTimeout.Duration == 0 {
			c.Instances[i].RequestTimeout.Duration = DefaultRequestTimeout
		}
	}
	r := NewReport(name)
	c.unknownShared(r)
	c.check(r)
	if err := r.Err(); err != nil {
		return c, err
	}
	return c, nil
}

// unknownShared reports keys that belong to no section: top-level keys other than the
// sections (in a FediBlockHole file those are the blocklist section's), and [[instance]] keys.
func (c *Config) unknownShared(r Report) {
	for _, k := range c.md.Undecoded() {
		switch {
		case len(k) == 0 || slices.Contains(sectionNames, k[0]):
		case k[0] == "instance" && len(k) > 1 && slices.Contains(instanceSectionNames, k[1]):
		case c.FediBlockHole && k[0] != "instance" && k[0] != "archive":
		default:
			r.Add(k.String(), "unknown key")
		}
	}
}

var nameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

func (c *Config) check(r Report) {
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
		checkSecretRef(ir, "token", inst.Token, true)
		checkSecretRef(ir, "webhook_secret", inst.WebhookSecret, false)
		if inst.RequestTimeout.Duration < 0 {
			ir.Add("request_timeout", "must be positive")
		}
	}
	ar := r.Sub("archive")
	if c.Archive.URL == "" {
		return // required only where the archive is opened: CheckArchive
	}
	if strings.HasPrefix(c.Archive.URL, "gs://") {
		if b, _, _ := strings.Cut(strings.TrimPrefix(c.Archive.URL, "gs://"), "/"); b == "" {
			ar.Add("url", "%q has no bucket", c.Archive.URL)
		}
	} else if strings.Contains(c.Archive.URL, "://") && !strings.HasPrefix(c.Archive.URL, "file://") {
		ar.Add("url", "%q: use gs://bucket/prefix or a local directory", c.Archive.URL)
	}
}

// CheckArchive reports a missing [archive] url. Parse accepts a file without one, since a
// command that never archives (triage classify) does not need it; whatever opens the archive
// (setup.Open) checks it first.
func (c *Config) CheckArchive() error {
	if c.Archive.URL != "" {
		return nil
	}
	r := NewReport(c.File)
	r.Sub("archive").Add("url", "is required (gs://bucket/prefix or a local directory)")
	return r.Err()
}

// checkSecretRef validates a key that must hold a secret reference.
// CheckSecretRef reports a problem with a secret reference (sm://…, env://VAR or
// file:///path) under key; an empty ref is a problem only when required.
func CheckSecretRef(r Report, key, ref string, required bool) { checkSecretRef(r, key, ref, required) }

func checkSecretRef(r Report, key, ref string, required bool) {
	if ref == "" {
		if required {
			r.Add(key, "is required (sm://…, env://VAR or file:///path)")
		}
		return
	}
	if _, err := secrets.ParseRef(ref); err != nil {
		if errors.Is(err, secrets.ErrNotReference) {
			r.Add(key, "must be a secret reference, not the secret itself: %v", err)
		} else {
			r.Add(key, "%v", err)
		}
	}
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

// InstanceNames returns the instances' names in file order.
func (c *Config) InstanceNames() []string {
	n := make([]string, 0, len(c.Instances))
	for _, i := range c.Instances {
		n = append(n, i.Name)
	}
	return n
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
		if !LoopbackHost(u.Hostname()) {
			return fmt.Errorf("%q: plain http is only allowed on loopback; the token would travel in clear text", s)
		}
	default:
		return fmt.Errorf("%q must start with https://", s)
	}
	return nil
}

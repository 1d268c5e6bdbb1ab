package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
)

// Section decodes the top-level table name ("triage", "blocklist", "backup") into v, a
// pointer to the owning function's type, and returns a *Error naming every key of that
// section that v does not have, or a value of the wrong type. A section that is not in the
// file leaves v as it is (its defaults). In a FediBlockHole file the "blocklist" section is
// the file's top level.
func (c *Config) Section(name string, v any) error {
	if !slices.Contains(sectionNames, name) {
		return fmt.Errorf("config: %q is not a section", name)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	r := NewReport(c.File)
	if name == "blocklist" && c.FediBlockHole {
		md, err := toml.Decode(c.data, v)
		if err != nil {
			r.Add("", "%v", err)
			return r.Err()
		}
		for _, k := range md.Undecoded() {
			if !slices.Contains([]string{"instance", "archive", "triage", "backup"}, k[0]) {
				r.Add(k.String(), "unknown key")
			}
		}
		return r.Err()
	}
	if !c.md.IsDefined(name) {
		return nil
	}
	if err := c.md.PrimitiveDecode(c.sections[name], v); err != nil {
		r.Sub(name).Add("", "%v", err)
		return r.Err()
	}
	c.unknownIn(r, name)
	return r.Err()
}

// InstanceSection decodes the table name inside the [[instance]] called instance (e.g. its
// [instance.triage]) into v and reports whether the instance has that table. Unknown keys
// are reported as Section does.
func (c *Config) InstanceSection(instance, name string, v any) (bool, error) {
	i := slices.IndexFunc(c.Instances, func(in Instance) bool { return in.Name == instance })
	if i < 0 || !slices.Contains(instanceSectionNames, name) {
		return false, fmt.Errorf("config: no section %q in instance %q", name, instance)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	prim := c.instSecs[i][name]
	if prim == nil {
		return false, nil
	}
	r := NewReport(c.File)
	if err := c.md.PrimitiveDecode(*prim, v); err != nil {
		r.Sub(fmt.Sprintf("instance[%d].%s", i, name)).Add("", "%v", err)
		return true, r.Err()
	}
	c.unknownIn(r, "instance."+name)
	return true, r.Err()
}

// IsDefined reports whether a key is set in the file, e.g. IsDefined("triage", "max_actions").
func (c *Config) IsDefined(key ...string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.md.IsDefined(key...)
}

// Report returns an empty problem report for this file.
func (c *Config) Report() Report { return NewReport(c.File) }

func (c *Config) unknownIn(r Report, prefix string) {
	for _, k := range c.md.Undecoded() {
		if s := k.String(); strings.HasPrefix(s, prefix+".") {
			r.Add(s, "unknown key")
		}
	}
}

// Join merges configuration errors into one *Error (other errors are kept as problems).
func Join(file string, errs ...error) error {
	r := NewReport(file)
	for _, e := range errs {
		r.Merge(e)
	}
	return r.Err()
}

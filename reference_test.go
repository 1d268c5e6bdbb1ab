package fediops

import (
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/fediops/fediops/functions/approve"
	"github.com/fediops/fediops/functions/backupaudit"
	"github.com/fediops/fediops/functions/blocklist"
	"github.com/fediops/fediops/shared/config"
)

// keyPaths lists every TOML key of t as dotted paths ("blocklist.mergeplan",
// "instance.triage.max_actions"); embedded structs are inline, as the decoder treats them.
func keyPaths(t reflect.Type, prefix string, out map[string]bool) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return
	}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("toml")
		if tag == "-" {
			continue
		}
		if f.Anonymous && tag == "" {
			keyPaths(f.Type, prefix, out)
			continue
		}
		if tag == "" {
			continue
		}
		path := prefix + tag
		out[path] = true
		ft := f.Type
		for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && ft != reflect.TypeOf(config.Duration{}) && ft != reflect.TypeOf(blocklist.DestinationSpec{}) {
			keyPaths(ft, path+".", out)
		}
	}
}

// TestReferenceDocumentsEveryKey keeps docs/configuration.md and the configuration structs
// in step: every key the loader accepts is documented, and every documented key exists.
func TestReferenceDocumentsEveryKey(t *testing.T) {
	doc, err := os.ReadFile("docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{"archive": true, "archive.url": true, "instance": true}
	// The shared part, then each function's section (its package owns the type).
	keyPaths(reflect.TypeOf(config.Instance{}), "instance.", keys)
	keyPaths(reflect.TypeOf(approve.Override{}), "instance.triage.", keys)
	keys["instance.triage"] = true
	keys["triage"] = true
	keyPaths(reflect.TypeOf(approve.Section{}), "triage.", keys)
	keys["blocklist"] = true
	keyPaths(reflect.TypeOf(blocklist.Section{}), "blocklist.", keys)
	keys["backup"] = true
	keyPaths(reflect.TypeOf(backupaudit.Section{}), "backup.", keys)
	// The destination table's keys (decoded by DestinationSpec.UnmarshalTOML).
	for _, k := range []string{"instance", "dry_run", "adopt_orphans", "remove_retracted", "max_followed_severity",
		"max_removals", "max_change_pct", "initial_import", "marker", "import_fields"} {
		keys["blocklist.destinations."+k] = true
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z_.]+)` \\|").FindAllStringSubmatch(string(doc), -1) {
		documented[m[1]] = true
	}
	var missing, extra []string
	for k := range keys {
		if !documented[k] {
			missing = append(missing, k)
		}
	}
	for k := range documented {
		if !keys[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 {
		t.Errorf("docs/configuration.md does not document:\n  %s", strings.Join(missing, "\n  "))
	}
	if len(extra) > 0 {
		t.Errorf("docs/configuration.md documents keys that do not exist:\n  %s", strings.Join(extra, "\n  "))
	}
}

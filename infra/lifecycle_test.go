package infra

import (
	"sort"
	"testing"

	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// lifecycleRules returns a bucket's lifecycle_rule blocks, the content of dynamic ones
// included.
func lifecycleRules(b *hclsyntax.Block) []*hclsyntax.Block {
	var out []*hclsyntax.Block
	for _, c := range b.Body.Blocks {
		switch {
		case c.Type == "lifecycle_rule":
			out = append(out, c)
		case c.Type == "dynamic" && len(c.Labels) == 1 && c.Labels[0] == "lifecycle_rule":
			if content := child(c, "content"); content != nil {
				out = append(out, content)
			}
		}
	}
	return out
}

// TestArchiveLifecycleKeepsLiveObjects: no lifecycle rule of the archive bucket deletes a
// live object. Snapshots refer to raw sources stored once under blocklist/objects/<sha256>,
// which stay in use for as long as a source does not change; audit trails are kept. Only
// noncurrent generations (overwritten control objects) may be deleted by rule.
func TestArchiveLifecycleKeepsLiveObjects(t *testing.T) {
	m := loadModule(t)
	b := m.resources["google_storage_bucket.archive"]
	if b == nil {
		t.Fatal("no google_storage_bucket.archive")
	}
	rules := lifecycleRules(b)
	if len(rules) == 0 {
		t.Fatal("no lifecycle rules")
	}
	for _, r := range rules {
		action := child(r, "action")
		if action == nil || attr(action, "type") == nil || m.text(attr(action, "type").Expr) != `"Delete"` {
			continue
		}
		cond := child(r, "condition")
		if cond == nil {
			t.Error("a Delete rule without a condition deletes every object")
			continue
		}
		noncurrent := false
		for _, a := range []string{"days_since_noncurrent_time", "num_newer_versions", "noncurrent_time_before"} {
			noncurrent = noncurrent || attr(cond, a) != nil
		}
		if s := attr(cond, "with_state"); s != nil && m.text(s.Expr) == `"ARCHIVED"` {
			noncurrent = true
		}
		if s := attr(cond, "with_state"); s != nil && m.text(s.Expr) != `"ARCHIVED"` {
			noncurrent = false
		}
		if !noncurrent {
			t.Errorf("a Delete rule on %v can delete live objects, e.g. blocklist/objects/<sha256> that kept snapshots refer to", conditionNames(cond))
		}
	}
}

func conditionNames(b *hclsyntax.Block) []string {
	var out []string
	for name := range b.Body.Attributes {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

package plan

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/fediops/fediops/functions/blocklist/lists"
)

var mastodonCaps = Capabilities{Severities: true, Update: true}

// keepRetracted in Options.Marker tells TestCompute to turn RemoveRetracted off.
const keepRetracted = "\x00keep"

func want(domain string, sev lists.Severity, sources ...string) Desired {
	if len(sources) == 0 {
		sources = []string{"listA"}
	}
	return Desired{Block: lists.Block{Domain: domain, Severity: sev}, Sources: sources}
}

func ownedBlock(id, domain string, sev lists.Severity) Existing {
	return Existing{ID: id, Domain: domain, Fields: Fields{Severity: sev}, PrivateComment: "fediops: listA"}
}

func manualBlock(id, domain string, sev lists.Severity) Existing {
	return Existing{ID: id, Domain: domain, Fields: Fields{Severity: sev}, PrivateComment: "spam wave, see ticket 12"}
}

// summary renders a plan compactly: "create a.example suspend", "skip b.example manual_block".
func summary(p *Plan) []string {
	var out []string
	for _, a := range p.Actions {
		s := fmt.Sprintf("%s %s", a.Kind, a.Domain)
		if a.To != nil {
			s += " " + a.To.Severity.String()
		}
		if len(a.Changed) > 0 {
			s += " [" + strings.Join(a.Changed, ",") + "]"
		}
		if a.FollowCheck {
			s += " +follows"
		}
		out = append(out, s)
	}
	for _, k := range p.Skipped {
		out = append(out, "skip "+k.Domain+" "+k.Reason)
	}
	slices.Sort(out)
	return out
}

func TestCompute(t *testing.T) {
	tests := []struct {
		name    string
		current []Existing
		desired []Desired
		state   map[string]Owned
		opts    Options
		want    []string
	}{
		{
			name:    "new entries are created with a follow check for suspensions",
			desired: []Desired{want("bad.example", lists.Suspend), want("meh.example", lists.Silence)},
			want:    []string{"create bad.example suspend +follows", "create meh.example silence"},
		},
		{
			name:    "nothing changed means no request",
			current: []Existing{ownedBlock("1", "bad.example", lists.Suspend)},
			desired: []Desired{want("bad.example", lists.Suspend)},
			want:    nil,
		},
		{
			name:    "owned block follows the lists, down as well as up",
			current: []Existing{ownedBlock("1", "down.example", lists.Suspend), ownedBlock("2", "up.example", lists.Silence)},
			desired: []Desired{want("down.example", lists.Silence), want("up.example", lists.Suspend)},
			want:    []string{"update down.example silence [severity]", "update up.example suspend [severity] +follows"},
		},
		{
			name:    "manual blocks are never touched",
			current: []Existing{manualBlock("1", "strict.example", lists.Suspend), manualBlock("2", "lax.example", lists.Silence), manualBlock("3", "same.example", lists.Suspend)},
			desired: []Desired{want("strict.example", lists.Silence), want("lax.example", lists.Suspend), want("same.example", lists.Suspend)},
			want:    []string{"skip lax.example manual_block", "skip same.example manual_block", "skip strict.example less_strict_than_manual"},
		},
		{
			name:    "manual blocks are not retracted either",
			current: []Existing{manualBlock("1", "mine.example", lists.Suspend)},
			want:    nil,
		},
		{
			name:    "adopt_orphans takes over a listed manual block",
			current: []Existing{manualBlock("1", "lax.example", lists.Silence), manualBlock("2", "unlisted.example", lists.Suspend)},
			desired: []Desired{want("lax.example", lists.Suspend)},
			opts:    Options{AdoptOrphans: true},
			want:    []string{"update lax.example suspend [severity] +follows"},
		},
		{
			name:    "retracted owned blocks are removed",
			current: []Existing{ownedBlock("1", "gone.example", lists.Suspend), ownedBlock("2", "kept.example", lists.Suspend)},
			desired: []Desired{want("kept.example", lists.Suspend)},
			want:    []string{"remove gone.example"},
		},
		{
			name:    "remove_retracted off keeps them",
			current: []Existing{ownedBlock("1", "gone.example", lists.Suspend)},
			opts:    Options{Marker: keepRetracted},
			want:    nil,
		},
		{
			name:    "allowlist wins: never blocked, owned block removed",
			current: []Existing{ownedBlock("1", "partner.example", lists.Suspend), manualBlock("2", "home.example", lists.Suspend)},
			desired: []Desired{want("partner.example", lists.Suspend), want("home.example", lists.Suspend), want("new.home.example", lists.Suspend)},
			opts:    Options{Allowed: func(d string) bool { return strings.HasSuffix(d, "home.example") || d == "partner.example" }},
			want:    []string{"remove partner.example", "skip home.example allowlisted", "skip new.home.example allowlisted", "skip partner.example allowlisted"},
		},
		{
			name:    "owned block found by state even without the marker",
			current: []Existing{{ID: "9", Domain: "x.example", Fields: Fields{Severity: lists.Suspend}, PrivateComment: "edited"}},
			state:   map[string]Owned{"x.example": {ID: "9", Domain: "x.example", Applied: Fields{Severity: lists.Suspend}}},
			want:    []string{"remove x.example"},
		},
		{
			name:    "owned block changed by an admin is left alone",
			current: []Existing{ownedBlock("1", "raised.example", lists.Suspend), ownedBlock("2", "gone.example", lists.Suspend)},
			desired: []Desired{want("raised.example", lists.Silence)},
			state: map[string]Owned{
				"raised.example": {ID: "1", Applied: Fields{Severity: lists.Silence}},
				"gone.example":   {ID: "2", Applied: Fields{Severity: lists.Silence}},
			},
			want: []string{"skip gone.example changed_by_admin", "skip raised.example changed_by_admin"},
		},
		{
			name:    "subdomain not stricter than its parent is skipped, stricter one created",
			current: []Existing{manualBlock("1", "parent.example", lists.Silence), ownedBlock("2", "sus.example", lists.Suspend)},
			desired: []Desired{want("a.parent.example", lists.Noop), want("b.parent.example", lists.Suspend), want("c.sus.example", lists.Silence), want("sus.example", lists.Suspend)},
			want:    []string{"create b.parent.example suspend +follows", "skip a.parent.example covered_by_parent", "skip c.sus.example covered_by_parent"},
		},
		{
			name: "only managed fields are compared and sent",
			current: []Existing{{ID: "1", Domain: "c.example", PrivateComment: "fediops: listA",
				Fields: Fields{Severity: lists.Suspend, PublicComment: "admin's words", RejectMedia: true}}},
			desired: []Desired{{Block: lists.Block{Domain: "c.example", Severity: lists.Suspend, PublicComment: "list words", RejectMedia: false, Obfuscate: true}, Sources: []string{"listA"}}},
			opts:    Options{Managed: []string{FieldObfuscate}},
			want:    []string{"update c.example suspend [obfuscate]"},
		},
		{
			name:    "gotosocial: only suspensions, no updates",
			current: []Existing{ownedBlock("1", "now-silenced.example", lists.Suspend), ownedBlock("2", "commented.example", lists.Suspend)},
			desired: []Desired{want("now-silenced.example", lists.Silence), want("new.example", lists.Suspend), want("quiet.example", lists.Noop),
				{Block: lists.Block{Domain: "commented.example", Severity: lists.Suspend, PublicComment: "new"}, Sources: []string{"listA"}}},
			opts: Options{Caps: Capabilities{}, Managed: []string{FieldPublicComment}},
			want: []string{"create new.example suspend", "remove now-silenced.example", "skip commented.example unsupported_update",
				"skip now-silenced.example unsupported_severity", "skip quiet.example unsupported_severity"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.opts
			o.RemoveRetracted = o.Marker != keepRetracted
			if o.Marker == keepRetracted {
				o.Marker = ""
			}
			if o.Caps == (Capabilities{}) && !strings.HasPrefix(tt.name, "gotosocial") {
				o.Caps = mastodonCaps
			}
			o.MaxFollowedSeverity = lists.Silence
			p := Compute(tt.current, tt.desired, tt.state, o)
			got := summary(p)
			w := slices.Clone(tt.want)
			slices.Sort(w)
			if !slices.Equal(got, w) {
				t.Errorf("plan:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(w, "\n  "))
			}
		})
	}
}

func TestActionDetails(t *testing.T) {
	o := Options{Caps: mastodonCaps, RemoveRetracted: true, MaxFollowedSeverity: lists.Silence, AdoptOrphans: true, Managed: []string{FieldRejectMedia}}
	current := []Existing{
		{ID: "1", Domain: "adopt.example", Fields: Fields{Severity: lists.Silence, PublicComment: "admin note"}, PrivateComment: "reported by alice"},
		{ID: "2", Domain: "upd.example", Fields: Fields{Severity: lists.Silence, PublicComment: "keep me", Obfuscate: true}, PrivateComment: "fediops: listA"},
	}
	desired := []Desired{
		{Block: lists.Block{Domain: "adopt.example", Severity: lists.Suspend}, Sources: []string{"listA", "listB"}},
		{Block: lists.Block{Domain: "upd.example", Severity: lists.Silence, RejectMedia: true, PublicComment: "other"}, Sources: []string{"listA"}},
		{Block: lists.Block{Domain: "new.example", Severity: lists.Silence, RejectMedia: true, PublicComment: "not managed"}, Sources: []string{"listB"}},
	}
	p := Compute(current, desired, nil, o)
	by := map[string]Action{}
	for _, a := range p.Actions {
		by[a.Domain] = a
	}
	if a := by["adopt.example"]; !a.Adopt || a.PrivateComment != "fediops: listA, listB | reported by alice" || a.To.PublicComment != "admin note" {
		t.Errorf("adopt = %+v", a)
	}
	if a := by["upd.example"]; !slices.Equal(a.Changed, []string{FieldRejectMedia}) || a.To.PublicComment != "keep me" || !a.To.Obfuscate || !a.To.RejectMedia {
		t.Errorf("update = %+v %+v", a, a.To)
	}
	if a := by["new.example"]; a.PrivateComment != "fediops: listB" || a.To.PublicComment != "" || !a.To.RejectMedia || a.FollowCheck {
		t.Errorf("create = %+v %+v", a, a.To)
	}
	if p.Blocks != 2 || p.Owned != 1 {
		t.Errorf("blocks %d owned %d", p.Blocks, p.Owned)
	}
	custom := Options{Marker: "[robot]"}
	if !custom.Owns("  [robot] listA") || custom.Owns("fediops: listA") || !(Options{}).Owns("fediops: x") {
		t.Error("marker detection")
	}
}

// BenchmarkCompute100k plans 100,000 merged entries against 100,000 existing blocks (half
// owned, a tenth of them changed or retracted).
func BenchmarkCompute100k(b *testing.B) {
	const n = 100_000
	current := make([]Existing, 0, n)
	desired := make([]Desired, 0, n)
	for i := range n {
		d := fmt.Sprintf("host%06d.example", i)
		sev := lists.Suspend
		if i%7 == 0 {
			sev = lists.Silence
		}
		e := Existing{ID: fmt.Sprint(i), Domain: d, Fields: Fields{Severity: sev}}
		if i%2 == 0 {
			e.PrivateComment = "fediops: listA"
		}
		current = append(current, e)
		switch {
		case i%10 == 1: // retracted
		case i%10 == 2:
			desired = append(desired, want(d, lists.Silence))
		default:
			desired = append(desired, want(d, sev))
		}
	}
	for i := range n / 10 {
		desired = append(desired, want(fmt.Sprintf("new%06d.example", i), lists.Suspend))
	}
	o := Options{Caps: mastodonCaps, RemoveRetracted: true, MaxFollowedSeverity: lists.Silence}
	b.ReportAllocs()
	for b.Loop() {
		p := Compute(current, desired, nil, o)
		if len(p.Actions) == 0 {
			b.Fatal("empty plan")
		}
	}
}

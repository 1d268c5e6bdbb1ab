package merge

import (
	"testing"

	"github.com/fediops/fediops/functions/blocklist/lists"
)

// fbhMergeComments is FBH's merge_comments transcribed literally, without fast paths.
func fbhMergeComments(old, nw string) string {
	if old == "" && nw == "" {
		return ""
	}
	if old == nw || nw == "" {
		return old
	}
	if old == "" {
		return nw
	}
	return mergeCommentsSlow(old, nw)
}

// FuzzMergeComments checks MergeComments' allocation-free fast paths against FBH's algorithm.
func FuzzMergeComments(f *testing.F) {
	for _, s := range [][2]string{{"a, b", "b, c"}, {"a, , b", "a"}, {"x, x", "x"}, {"a,, b", "a,"}, {", ", "a"}, {"a", "a, a"}, {"a,  b", " b"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, old, nw string) {
		if got, want := MergeComments(old, nw), fbhMergeComments(old, nw); got != want {
			t.Fatalf("MergeComments(%q, %q) = %q, FBH gives %q", old, nw, got, want)
		}
	})
}

// FuzzMerge: any two parsed inputs merge without panicking and every row is accounted for.
func FuzzMerge(f *testing.F) {
	f.Add([]byte("domain,severity\na.example,suspend\nb.a.example,silence\nap.***.st,suspend\n"), []byte("x.example\nap.foo.st\ncanary.x.example.com\n"), uint8(0))
	f.Fuzz(func(t *testing.T, a, b []byte, mode uint8) {
		if len(a)+len(b) > 64<<10 {
			t.Skip()
		}
		var srcs []*lists.List
		for i, d := range [][]byte{a, b} {
			l, err := lists.Parse(string(rune('a'+i)), d, "", lists.Options{ImportFields: lists.OptionalFields})
			if err != nil {
				continue
			}
			srcs = append(srcs, l)
		}
		opts := DefaultOptions()
		if mode&1 != 0 {
			opts.Plan = PlanMin
		}
		if mode&2 != 0 {
			opts.ThresholdType, opts.Threshold = ThresholdPct, 50
		}
		opts.AllowSubdomains = mode&4 != 0
		var allow []*lists.List
		if mode&8 != 0 && len(srcs) > 0 {
			allow = srcs[len(srcs)-1:]
			srcs = srcs[:len(srcs)-1]
		}
		res := mustMerge(t, srcs, allow, opts)
		for _, b := range res.Blocks {
			if lists.IsCanary(b.Domain) != "" {
				t.Fatalf("canary %s in output", b.Domain)
			}
		}
	})
}

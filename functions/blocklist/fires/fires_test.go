package fires

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fediops/fediops/functions/blocklist/lists"
	"github.com/fediops/fediops/shared/fetch"
	"github.com/fediops/fediops/shared/testsupport/fires"
)

func start(t *testing.T, opts fires.Options) (*fires.Server, *fetch.Fetcher) {
	t.Helper()
	s := fires.New(opts)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	s.Base = srv.URL
	return s, fetch.New(time.Second, 1<<20)
}

// entities renders a state: "kind key type policy".
func render(st *State) []string {
	var out []string
	for _, e := range st.Entities {
		out = append(out, strings.TrimSpace(fmt.Sprintf("%s %s %s %s", e.EntityKind, e.EntityKey, e.Type, e.RecommendedPolicy)))
	}
	return out
}

// newRequests returns the requests made since the count before.
func newRequests(s *fires.Server, before int) []string { return s.Requests()[before:] }

func TestReadFollowsTheDataset(t *testing.T) {
	ctx := context.Background()
	s, f := start(t, fires.Options{PageSize: 2})
	spam := s.AddLabel("Spam")
	d := s.AddDataset("Blocklist")
	d.Recommend("spam.example", "drop", spam)
	d.Add(fires.Change{Type: fires.Advisory, Kind: "actor", Key: "https://other.example/users/troll"})
	d.Recommend("oops.example", "reject")
	d.Retract("oops.example")

	// First read: the snapshot (retractions are not entities), then the feed's end.
	out, err := Read(ctx, f, d.URL(), nil, "", 0)
	if err != nil || !out.Fresh || out.Why != "first read" || out.ETag == "" {
		t.Fatalf("first read: %+v, %v", out, err)
	}
	st := out.State
	if got := render(st); !slices.Equal(got, []string{"actor https://other.example/users/troll Advisory", "domain spam.example Recommendation drop"}) {
		t.Fatalf("state = %v", got)
	}
	if st.Labels[s.LabelURL(spam)] != "Spam" || !strings.HasSuffix(st.CursorURL, st.Cursor) {
		t.Errorf("labels %v, cursor %s %s", st.Labels, st.Cursor, st.CursorURL)
	}

	// Nothing new: one request, 304.
	before := len(s.Requests())
	out, err = Read(ctx, f, d.URL(), st, out.ETag, 0)
	if err != nil || !out.NotModified {
		t.Fatalf("unchanged: %+v, %v", out, err)
	}
	if reqs := newRequests(s, before); len(reqs) != 1 || !strings.Contains(reqs[0], "since="+st.Cursor) {
		t.Errorf("unchanged read made %v", reqs)
	}

	// Additions, a policy change and a retraction, over several pages (2 per page): only the
	// changes are read, none skipped despite the server's next links.
	etag := out.ETag
	for i := range 5 {
		d.Recommend(fmt.Sprintf("new%d.example", i), "filter")
	}
	d.Recommend("spam.example", "filter", spam)
	d.Retract("new0.example")
	before = len(s.Requests())
	out, err = Read(ctx, f, d.URL(), st, etag, 0)
	if err != nil || out.Fresh || out.NotModified {
		t.Fatalf("changes: %+v, %v", out, err)
	}
	want := []string{"actor https://other.example/users/troll Advisory", "domain new1.example Recommendation filter", "domain new2.example Recommendation filter",
		"domain new3.example Recommendation filter", "domain new4.example Recommendation filter", "domain spam.example Recommendation filter"}
	if got := render(out.State); !slices.Equal(got, want) {
		t.Fatalf("after changes: %v", got)
	}
	for _, r := range newRequests(s, before) {
		if strings.Contains(r, "/snapshot") || strings.Contains(r, "/labels/") {
			t.Errorf("incremental read requested %s", r)
		}
	}
	if n := len(newRequests(s, before)); n != 1+1+4 { // first page (304 check), cursor check, 3 more pages + the empty end
		t.Errorf("%d requests: %v", n, newRequests(s, before))
	}
	if spamEntity := out.State.Entities[len(out.State.Entities)-1]; len(spamEntity.Seen) != 2 {
		t.Errorf("seen = %v", spamEntity.Seen)
	}

	// A page limit stops early and says where; the next read continues.
	d.Recommend("a.example", "drop")
	d.Recommend("b.example", "drop")
	d.Recommend("c.example", "drop")
	part, err := Read(ctx, f, d.URL(), out.State, out.ETag, 1)
	if err != nil || part.State.Incomplete == "" || part.ETag != "" || len(part.State.Entities) != 8 {
		t.Fatalf("page limit: %+v, %v", part, err)
	}
	rest, err := Read(ctx, f, d.URL(), part.State, part.ETag, 0)
	if err != nil || rest.State.Incomplete != "" || len(rest.State.Entities) != 9 {
		t.Fatalf("continued: %+v, %v", rest, err)
	}
}

func TestReadStartsAfreshWhenTheCursorIsGone(t *testing.T) {
	ctx := context.Background()
	s, f := start(t, fires.Options{})
	d := s.AddDataset("Blocklist")
	d.Recommend("a.example", "drop")
	d.Recommend("b.example", "drop")
	first, err := Read(ctx, f, d.URL(), nil, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	// The history is compacted: the cursor's change is gone; the server would answer
	// "changes after it" anyway, so the reader checks and reads the snapshot.
	d.Recommend("a.example", "filter")
	d.Retract("b.example")
	d.Compact()
	out, err := Read(ctx, f, d.URL(), first.State, first.ETag, 0)
	if err != nil || !out.Fresh || !strings.Contains(out.Why, "no longer knows") {
		t.Fatalf("compacted: %+v, %v", out, err)
	}
	if got := render(out.State); !slices.Equal(got, []string{"domain a.example Recommendation filter"}) {
		t.Errorf("state = %v", got)
	}
	// A cursor the server refuses (400): afresh too.
	bad := *out.State
	bad.Cursor = "not-a-uuid"
	if out, err := Read(ctx, f, d.URL(), &bad, "", 0); err != nil || !out.Fresh || !strings.Contains(out.Why, "refused the cursor") {
		t.Fatalf("refused cursor: %+v, %v", out, err)
	}
	// Another dataset URL: afresh.
	other := s.AddDataset("Other")
	if out, err := Read(ctx, f, other.URL(), out.State, "", 0); err != nil || !out.Fresh || len(out.State.Entities) != 0 || out.State.Cursor != "" {
		t.Fatalf("other dataset: %+v, %v", out, err)
	}
}

func TestReadTombstones(t *testing.T) {
	ctx := context.Background()
	s, f := start(t, fires.Options{})
	d := s.AddDataset("Blocklist")
	d.Recommend("a.example", "drop")
	d.Recommend("gone.example", "drop")
	first, err := Read(ctx, f, d.URL(), nil, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	// A later change of an entity is tombstoned with all its others (in place): the feed
	// shows a Tombstone this state never saw, so the snapshot is read, where the entity's
	// newest change is a Tombstone: gone.
	d.Recommend("gone.example", "filter")
	d.TombstoneEntity("domain", "gone.example")
	out, err := Read(ctx, f, d.URL(), first.State, first.ETag, 0)
	if err != nil || !out.Fresh || !strings.Contains(out.Why, "Tombstone") {
		t.Fatalf("tombstone: %+v, %v", out, err)
	}
	if got := render(out.State); !slices.Equal(got, []string{"domain a.example Recommendation drop"}) {
		t.Errorf("state = %v", got)
	}
	// A Tombstone naming a change the state holds removes that entity.
	e := indexOf(out.State)
	id := out.State.Entities[0].Seen[0]
	if !e.apply(Change{ID: "x/" + id, Type: Tombstone}, id) || len(e.by) != 0 {
		t.Errorf("tombstone of a known change: %v", e.by)
	}
}

func TestReadFailures(t *testing.T) {
	ctx := context.Background()
	s, f := start(t, fires.Options{PageSize: 1})
	d := s.AddDataset("Blocklist")
	d.Recommend("a.example", "drop")
	first, err := Read(ctx, f, d.URL(), nil, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	// The first page fails: an error (the caller falls back to the last good state).
	d.Recommend("b.example", "drop")
	d.Recommend("c.example", "drop")
	s.Fail("/datasets/", http.StatusInternalServerError, 1)
	if _, err := Read(ctx, f, d.URL(), first.State, first.ETag, 0); err == nil || !strings.Contains(err.Error(), "HTTP 500") {
		t.Fatalf("failing feed: %v", err)
	}
	// A later page fails (rate limit): the pages read so far count, the state says where it
	// stopped, and the next read continues from there.
	s.FailAfter("/datasets/"+d.ID+"/changes", http.StatusTooManyRequests, 2, 1) // page 1 and the cursor check pass
	out, err := Read(ctx, f, d.URL(), first.State, first.ETag, 0)
	if err != nil || !strings.Contains(out.State.Incomplete, "HTTP 429") || out.ETag != "" {
		t.Fatalf("failing second page: %+v, %v", out, err)
	}
	if got := render(out.State); !slices.Equal(got, []string{"domain a.example Recommendation drop", "domain b.example Recommendation drop"}) {
		t.Errorf("partial state = %v", got)
	}
	out, err = Read(ctx, f, d.URL(), out.State, out.ETag, 0)
	if err != nil || out.State.Incomplete != "" || len(out.State.Entities) != 3 {
		t.Fatalf("continued: %+v, %v", out, err)
	}
	// Not a dataset; a label that cannot be read.
	if _, err := Read(ctx, f, s.LabelURL(s.AddLabel("x")), nil, "", 0); err == nil || !strings.Contains(err.Error(), "not a FIRES dataset") {
		t.Errorf("not a dataset: %v", err)
	}
	d2 := s.AddDataset("Labelled")
	d2.Recommend("x.example", "drop", "0193a001-0000-7000-8000-00000000dead")
	if _, err := Read(ctx, f, d2.URL(), nil, "", 0); err == nil || !strings.Contains(err.Error(), "label") {
		t.Errorf("missing label: %v", err)
	}
}

func TestLists(t *testing.T) {
	st := &State{Labels: map[string]string{"https://f.example/labels/1": "Spam", "https://f.example/labels/2": "Harassment"}}
	add := func(kind, key, typ, policy string, labels []string, filters ...string) {
		st.Entities = append(st.Entities, Entity{Change: Change{Type: typ, EntityKind: kind, EntityKey: key, RecommendedPolicy: policy, Labels: labels, RecommendedFilters: filters}})
	}
	spam, harass := []string{"https://f.example/labels/1"}, []string{"https://f.example/labels/2", "https://f.example/labels/1"}
	add("actor", "https://x.example/users/a", Recommendation, "drop", nil)
	add("domain", "advised.example", Advisory, "", spam)
	add("domain", "drop.example", Recommendation, "drop", harass)
	add("domain", "reject.example", Recommendation, "reject", nil)
	add("domain", "filter.example", Recommendation, "filter", spam, "https://fires.fedimod.org/filters/reject-media", "reject_reports", "auto-cw")
	add("domain", "accept.example", Recommendation, "accept", nil)
	add("domain", "nopolicy.example", Recommendation, "", nil)
	add("domain", "future.example", Recommendation, "quarantine", nil)
	opts := lists.Options{ImportFields: lists.OptionalFields}

	blocks, allow := Lists("ds", st, Mapping{}, opts)
	got := map[string]string{}
	for _, e := range blocks.Blocks {
		got[e.Domain] = fmt.Sprintf("%s media=%v reports=%v %q", e.Severity, e.RejectMedia, e.RejectReports, e.PublicComment)
	}
	want := map[string]string{
		"drop.example":   `suspend media=false reports=false "Harassment, Spam"`,
		"reject.example": `suspend media=false reports=false ""`,
		"filter.example": `silence media=true reports=true "Spam"`,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("blocks = %v", got)
	}
	if len(allow.Blocks) != 1 || allow.Blocks[0].Domain != "accept.example" || allow.Source != "ds" || allow.Format != Format {
		t.Errorf("allow = %+v", allow)
	}
	skipped := blocks.SkippedByReason()
	if skipped[ReasonActor] != 1 || skipped[ReasonAdvisory] != 1 || skipped[ReasonNoPolicy] != 1 || skipped[ReasonUnknownPolicy] != 1 || blocks.Rows+allow.Rows != 8 {
		t.Errorf("skipped = %v, rows %d+%d", skipped, blocks.Rows, allow.Rows)
	}

	// Policies from the configuration; a label filter by name, id or URL.
	blocks, allow = Lists("ds", st, Mapping{Policies: map[string]string{"filter": "noop", "accept": "ignore", "reject": "silence"}, Labels: []string{"spam"}}, opts)
	got = map[string]string{}
	for _, e := range blocks.Blocks {
		got[e.Domain] = e.Severity.String()
	}
	if fmt.Sprint(got) != "map[drop.example:suspend filter.example:noop]" || len(allow.Blocks) != 0 {
		t.Errorf("mapped and filtered: %v, allow %d", got, len(allow.Blocks))
	}
	if sk := blocks.SkippedByReason(); sk[ReasonLabelFiltered] != 3 {
		t.Errorf("label filtered: %v", sk)
	}
	for _, l := range []string{"2", "https://f.example/labels/2", "HARASSMENT"} {
		b, _ := Lists("ds", st, Mapping{Labels: []string{l}}, opts)
		if len(b.Blocks) != 1 || b.Blocks[0].Domain != "drop.example" {
			t.Errorf("label %q: %+v", l, b.Blocks)
		}
	}
	// import_fields: no comment, no flags.
	b, _ := Lists("ds", st, Mapping{}, lists.Options{})
	for _, e := range b.Blocks {
		if e.PublicComment != "" || e.RejectMedia {
			t.Errorf("fields not imported: %+v", e)
		}
	}
}

func TestStateEncoding(t *testing.T) {
	st := &State{Version: StateVersion, Dataset: "https://f.example/datasets/1", Changes: "https://f.example/datasets/1/changes",
		Entities: []Entity{{Change: Change{EntityKind: "domain", EntityKey: "b.example", Type: Recommendation}}, {Change: Change{EntityKind: "domain", EntityKey: "a.example", Type: Advisory}}}}
	a := st.Encode()
	back, err := Decode(a)
	if err != nil || string(back.Encode()) != string(a) || back.Entities[0].EntityKey != "a.example" {
		t.Fatalf("round trip: %v\n%s", err, a)
	}
	for _, bad := range []string{"", "{}", `{"fediops_fires_state": 2, "changes": "x"}`, "domain,severity\n"} {
		if _, err := Decode([]byte(bad)); err == nil {
			t.Errorf("decoded %q", bad)
		}
	}
}

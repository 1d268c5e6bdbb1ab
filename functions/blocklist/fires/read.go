package fires

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/fediops/fediops/shared/fetch"
)

// Getter fetches protocol documents (*fetch.Fetcher: timeout, size limit, conditional GET).
type Getter interface {
	FetchJSON(ctx context.Context, url string, v fetch.Validators) (*fetch.Result, error)
}

// DefaultMaxPages bounds the change pages one read follows (100 changes each on the
// reference server, which allows 100 anonymous requests per 5 minutes); the next read
// continues.
const DefaultMaxPages = 50

// Outcome is the result of Read.
type Outcome struct {
	// State is the dataset now; nil when NotModified.
	State *State
	// NotModified is set when the feed has nothing after the previous state's cursor (the
	// server answered 304 to the ETag of the previous read's last page).
	NotModified bool
	// ETag is the ETag of the feed's last page (changes since the new cursor): the next
	// read sends it.
	ETag string
	// Fresh is set when the snapshot was read, and Why says why (first read, another
	// dataset, the server no longer knows the cursor).
	Fresh bool
	Why   string
}

// Read brings a dataset's state up to date. prev is the last good state (nil on the first
// read) and etag the ETag its read ended with. Without a previous state, for another
// dataset URL, or when the server no longer knows the previous cursor (the change 404s, or
// the changes feed refuses it with 400, 404 or 410), the snapshot is read afresh. Otherwise
// only the changes after the cursor are read, page after page, each next request built from
// the last change applied; at most maxPages pages (0: DefaultMaxPages) — the state records
// where it stopped and the next read continues. An error on a later page keeps what the
// earlier pages applied (State.Incomplete says so). Label names are looked up once.
func Read(ctx context.Context, g Getter, dataset string, prev *State, etag string, maxPages int) (*Outcome, error) {
	if maxPages <= 0 {
		maxPages = DefaultMaxPages
	}
	switch {
	case prev == nil:
		return fresh(ctx, g, dataset, maxPages, "first read")
	case prev.Dataset != dataset:
		return fresh(ctx, g, dataset, maxPages, "the dataset URL changed")
	case prev.Cursor == "":
		return fresh(ctx, g, dataset, maxPages, "the dataset had no changes")
	}
	res, err := g.FetchJSON(ctx, pageURL(prev.Changes, prev.Cursor), fetch.Validators{ETag: etag})
	if unknownCursor(err) {
		return fresh(ctx, g, dataset, maxPages, fmt.Sprintf("the server refused the cursor %s (%v)", prev.Cursor, err))
	}
	if err != nil {
		return nil, err
	}
	if res.NotModified {
		return &Outcome{NotModified: true, ETag: etag}, nil
	}
	// The reference server answers "changes after X" even for an X it no longer has (a
	// compacted or rebuilt history): check that it still knows the cursor.
	if _, err := g.FetchJSON(ctx, prev.CursorURL, fetch.Validators{}); unknownCursor(err) {
		return fresh(ctx, g, dataset, maxPages, fmt.Sprintf("the server no longer knows change %s", prev.Cursor))
	} else if err != nil {
		return nil, err
	}
	st := *prev
	st.Incomplete = ""
	last, err := follow(ctx, g, &st, res, maxPages, true)
	if errors.Is(err, errUnplacedTombstone) {
		return fresh(ctx, g, dataset, maxPages, err.Error())
	}
	if err != nil {
		return nil, err
	}
	if err := nameLabels(ctx, g, &st); err != nil {
		return nil, err
	}
	return &Outcome{State: &st, ETag: last}, nil
}

// unknownCursor reports answers meaning the server does not know a change id.
func unknownCursor(err error) bool {
	switch fetch.Status(err) {
	case http.StatusBadRequest, http.StatusNotFound, http.StatusGone:
		return true
	}
	return false
}

func pageURL(changes, since string) string {
	u, err := url.Parse(changes)
	if err != nil {
		return changes + "?since=" + url.QueryEscape(since)
	}
	q := u.Query()
	q.Set("since", since)
	u.RawQuery = q.Encode()
	return u.String()
}

type dataset struct {
	Type      string `json:"type"`
	Endpoints struct {
		Changes  string `json:"changes"`
		Snapshot string `json:"snapshot"`
	} `json:"endpoints"`
}

type collection struct {
	Type         string   `json:"type"`
	Changes      string   `json:"changes"` // snapshots: the changes since the newest change
	OrderedItems []Change `json:"orderedItems"`
}

func decode(res *fetch.Result, what string, v any) error {
	if err := json.Unmarshal(res.Data, v); err != nil {
		return fmt.Errorf("%s is not FIRES JSON: %w", what, err)
	}
	return nil
}

// fresh reads the dataset object, its snapshot, and the changes after the snapshot.
func fresh(ctx context.Context, g Getter, datasetURL string, maxPages int, why string) (*Outcome, error) {
	res, err := g.FetchJSON(ctx, datasetURL, fetch.Validators{})
	if err != nil {
		return nil, err
	}
	var ds dataset
	if err := decode(res, "the dataset", &ds); err != nil {
		return nil, err
	}
	if ds.Type != "Dataset" || ds.Endpoints.Changes == "" || ds.Endpoints.Snapshot == "" {
		return nil, fmt.Errorf("%s is not a FIRES dataset (type %q, no snapshot and changes endpoints)", datasetURL, ds.Type)
	}
	if res, err = g.FetchJSON(ctx, ds.Endpoints.Snapshot, fetch.Validators{}); err != nil {
		return nil, err
	}
	var snap collection
	if err := decode(res, "the snapshot", &snap); err != nil {
		return nil, err
	}
	if snap.Type != "Collection" && snap.Type != "OrderedCollection" {
		return nil, fmt.Errorf("the snapshot is a %q, not a collection", snap.Type)
	}
	st := &State{Version: StateVersion, Dataset: datasetURL, Changes: ds.Endpoints.Changes}
	e := indexOf(st)
	// Items are newest first, one per entity: apply them oldest first.
	for i := len(snap.OrderedItems) - 1; i >= 0; i-- {
		c := snap.OrderedItems[i]
		id, err := changeID(c.ID)
		if err != nil {
			return nil, err
		}
		e.apply(c, id)
		if id > st.Cursor {
			st.Cursor, st.CursorURL = id, c.ID
		}
	}
	e.into(st)
	if snap.Changes != "" {
		if u, err := url.Parse(snap.Changes); err == nil && u.Query().Get("since") != "" {
			st.Cursor = strings.ToLower(u.Query().Get("since"))
			st.CursorURL = strings.TrimSuffix(ds.Endpoints.Changes, "/") + "/" + st.Cursor
		}
	}
	out := &Outcome{State: st, Fresh: true, Why: why}
	if st.Cursor != "" {
		// Changes made since the snapshot was built, and the ETag of the feed's end.
		res, err := g.FetchJSON(ctx, pageURL(st.Changes, st.Cursor), fetch.Validators{})
		if err != nil {
			return nil, err
		}
		if out.ETag, err = follow(ctx, g, st, res, maxPages, false); err != nil {
			return nil, err
		}
	}
	if err := nameLabels(ctx, g, st); err != nil {
		return nil, err
	}
	return out, nil
}

type page struct {
	Type         string   `json:"type"`
	OrderedItems []Change `json:"orderedItems"`
}

// errUnplacedTombstone stops a read whose feed erased a change the state never saw: the
// entity it belonged to is unknown, so the snapshot is read afresh.
var errUnplacedTombstone = errors.New("a Tombstone erased a change this state never saw")

// follow applies the page in res and the pages after it, until an empty page (the end), and
// returns the ETag of that last page ("" when it stopped early). With strict, a Tombstone
// naming no change of the state stops it with errUnplacedTombstone.
func follow(ctx context.Context, g Getter, st *State, res *fetch.Result, maxPages int, strict bool) (string, error) {
	e := indexOf(st)
	defer e.into(st)
	for n := 1; ; n++ {
		var p page
		if err := decode(res, "a changes page", &p); err != nil {
			if n == 1 {
				return "", err
			}
			st.Incomplete = fmt.Sprintf("changes page %d: %v; the next run continues after change %s", n, err, st.Cursor)
			return "", nil
		}
		if len(p.OrderedItems) == 0 {
			return res.Validators.ETag, nil
		}
		for _, c := range p.OrderedItems {
			id, err := changeID(c.ID)
			if err != nil {
				return "", err
			}
			if id <= st.Cursor {
				return "", fmt.Errorf("the changes feed went back: change %s came after %s", id, st.Cursor)
			}
			if !e.apply(c, id) && strict {
				return "", errUnplacedTombstone
			}
			st.Cursor, st.CursorURL = id, c.ID
		}
		if n >= maxPages {
			st.Incomplete = fmt.Sprintf("read %d pages of changes; the next run continues after change %s", n, st.Cursor)
			return "", nil
		}
		// The next page starts after the last change applied (the reference server's next
		// link names the change after the page, which "since" would skip).
		next, err := g.FetchJSON(ctx, pageURL(st.Changes, st.Cursor), fetch.Validators{})
		if err != nil {
			st.Incomplete = fmt.Sprintf("the changes feed failed after %d page(s): %v; the next run continues after change %s", n, err, st.Cursor)
			return "", nil
		}
		res = next
	}
}

// nameLabels looks up the names of labels the entities use and the state does not name yet,
// and forgets those no entity uses.
func nameLabels(ctx context.Context, g Getter, st *State) error {
	used := map[string]bool{}
	for _, en := range st.Entities {
		for _, l := range en.Labels {
			used[l] = true
		}
	}
	var missing []string
	for l := range used {
		if _, ok := st.Labels[l]; !ok {
			missing = append(missing, l)
		}
	}
	sort.Strings(missing)
	names := map[string]string{}
	for l, n := range st.Labels {
		if used[l] {
			names[l] = n
		}
	}
	for _, l := range missing {
		res, err := g.FetchJSON(ctx, l, fetch.Validators{})
		if err != nil {
			return fmt.Errorf("label: %w", err)
		}
		var lb struct {
			Name    string            `json:"name"`
			NameMap map[string]string `json:"nameMap"`
		}
		if err := decode(res, "label "+l, &lb); err != nil {
			return err
		}
		names[l] = labelName(lb.Name, lb.NameMap, l)
	}
	st.Labels = names
	if len(names) == 0 {
		st.Labels = nil
	}
	return nil
}

// labelName picks a label's name: name, else the English or first name of nameMap, else
// the last part of its URL.
func labelName(name string, byLocale map[string]string, u string) string {
	if name != "" {
		return name
	}
	if n := byLocale["en"]; n != "" {
		return n
	}
	var locales []string
	for l := range byLocale {
		locales = append(locales, l)
	}
	sort.Strings(locales)
	for _, l := range locales {
		if byLocale[l] != "" {
			return byLocale[l]
		}
	}
	return u[strings.LastIndexByte(u, '/')+1:]
}

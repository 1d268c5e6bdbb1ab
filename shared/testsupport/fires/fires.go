// Package fires is a FIRES server for tests: it serves datasets of moderation advisories,
// recommendations, retractions and tombstones the way the reference server
// (fedimod/fires, components/fires-server at ae42b95, 0.8.0) does, so that a consumer is
// tested against the protocol's real shapes and quirks:
//
//   - GET /datasets/{id}: the Dataset object with its endpoints
//     (app/serializers/dataset_serializer.ts);
//   - GET /datasets/{id}/snapshot: the newest change of every entity, newest first, as a
//     "Collection" with orderedItems, and changes?since=<newest id>
//     (app/services/snapshot_service.ts, app/serializers/snapshot_serializer.ts);
//   - GET /datasets/{id}/changes: an OrderedCollection with first/last/next and no items;
//     ?since=<uuidv7>: an OrderedCollectionPage of up to PageSize changes with id > since,
//     oldest first, whose next link names the change after the page (the reference server's
//     off-by-one: following it literally skips that change); since = the newest id gives an
//     empty page without next or last; a since that is not a UUIDv7 is a 400
//     (app/controllers/datasets/changes_controller.ts, app/serializers/change_serializer.ts);
//   - GET /datasets/{id}/changes/{id}: one change, or 404 (a change compacted away);
//   - GET /labels/{id}: a label (app/serializers/labels_serializer.ts);
//   - ETag on every protocol answer (AdonisJS: "<length hex>-<base64 SHA-1>") and 304 for a
//     matching If-None-Match; Content-Type application/ld+json when Accept starts with it,
//     else application/json; dates as yyyy-MM-ddTHH:mm:ssZ.
//
// Fault injection: Fail makes the next requests under a path prefix answer an HTTP status.
package fires

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Context is the JSON-LD context of every protocol document.
var Context = []string{"https://www.w3.org/ns/activitystreams", "https://fires.fedimod.org/context/fires.jsonld"}

// Genesis is the since value of a changes collection's first page.
const Genesis = "00000000-0000-7000-A000-000000000000"

// Change types.
const (
	Advisory       = "Advisory"
	Recommendation = "Recommendation"
	Retraction     = "Retraction"
	Tombstone      = "Tombstone"
)

// Change is one change of a dataset.
type Change struct {
	ID        string // a UUIDv7; generated when empty
	Type      string
	Published time.Time // the server's clock when zero
	Kind      string    // entityKind: "domain" or "actor"
	Key       string    // entityKey
	Labels    []string  // label ids
	Policy    string    // recommendedPolicy; "" is null
	Filters   []string  // recommendedFilters
	// Tombstoned is set when a tombstone replaced the change: it is served as a Tombstone.
	Tombstoned bool
}

// Label is a label of the server.
type Label struct {
	ID, Name string
}

// Dataset is one dataset.
type Dataset struct {
	ID, Name, Slug string
	Published      time.Time
	s              *Server
	changes        []*Change // in id order
}

// Options configure a Server.
type Options struct {
	// PageSize is the number of changes per page (the reference server's 100 if zero).
	PageSize int
	// Start is the time of the first generated change (2025-11-01 if zero); each next one is
	// a minute later.
	Start time.Time
}

// Server is the FIRES server. Its URLs are relative to Base, which the test sets to the
// listener's URL (Start does).
type Server struct {
	Base string

	mu       sync.Mutex
	opts     Options
	datasets map[string]*Dataset
	labels   map[string]Label
	now      time.Time
	seq      uint64
	faults   []fault
	requests []string
}

type fault struct {
	prefix string
	status int
	skip   int // matching requests served normally first
	left   int
}

// New returns a server.
func New(opts Options) *Server {
	if opts.PageSize == 0 {
		opts.PageSize = 100
	}
	if opts.Start.IsZero() {
		opts.Start = time.Date(2025, 11, 1, 0, 0, 0, 0, time.UTC)
	}
	return &Server{opts: opts, datasets: map[string]*Dataset{}, labels: map[string]Label{}, now: opts.Start}
}

// uuid7 makes a UUIDv7 for t, unique and increasing within the server.
func (s *Server) uuid7(t time.Time) string {
	s.seq++
	ms := uint64(t.UnixMilli())
	return fmt.Sprintf("%08x-%04x-7%03x-%04x-%012x", ms>>16, ms&0xffff, s.seq&0xfff, 0x8000|(s.seq>>12)&0x3fff, s.seq*0x9e3779b1&0xffffffffffff)
}

func (s *Server) tick() time.Time {
	s.now = s.now.Add(time.Minute)
	return s.now
}

// AddLabel adds a label and returns its id.
func (s *Server) AddLabel(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.uuid7(s.tick())
	s.labels[id] = Label{ID: id, Name: name}
	return id
}

// LabelURL is the protocol URL of a label.
func (s *Server) LabelURL(id string) string { return s.Base + "/labels/" + id }

// AddDataset adds an empty dataset.
func (s *Server) AddDataset(name string) *Dataset { return s.AddDatasetWithID("", name) }

// AddDatasetWithID adds an empty dataset with a given id ("" = a new UUIDv7).
func (s *Server) AddDatasetWithID(id, name string) *Dataset {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tick()
	if id == "" {
		id = s.uuid7(t)
	}
	d := &Dataset{ID: id, Name: name, Slug: strings.ToLower(strings.ReplaceAll(name, " ", "-")), Published: t, s: s}
	s.datasets[d.ID] = d
	return d
}

// URL is the dataset's protocol URL (what a consumer is configured with).
func (d *Dataset) URL() string { return d.s.Base + "/datasets/" + d.ID }

// Add appends a change and returns its id.
func (d *Dataset) Add(c Change) string {
	d.s.mu.Lock()
	defer d.s.mu.Unlock()
	if c.Published.IsZero() {
		c.Published = d.s.tick()
	}
	if c.ID == "" {
		c.ID = d.s.uuid7(c.Published)
	}
	if n := len(d.changes); n > 0 && strings.ToLower(c.ID) <= strings.ToLower(d.changes[n-1].ID) {
		panic("fires: change ids must increase")
	}
	d.changes = append(d.changes, &c)
	return c.ID
}

// Recommend adds a Recommendation for a domain.
func (d *Dataset) Recommend(domain, policy string, labels ...string) string {
	return d.Add(Change{Type: Recommendation, Kind: "domain", Key: domain, Policy: policy, Labels: labels})
}

// Retract adds a Retraction for a domain.
func (d *Dataset) Retract(domain string) string {
	return d.Add(Change{Type: Retraction, Kind: "domain", Key: domain})
}

// TombstoneEntity replaces every change of an entity by a tombstone, in place (the
// protocol's Tombstone retroactively applies to all changes of an entity).
func (d *Dataset) TombstoneEntity(kind, key string) {
	d.s.mu.Lock()
	defer d.s.mu.Unlock()
	for _, c := range d.changes {
		if c.Kind == kind && c.Key == key {
			c.Tombstoned = true
		}
	}
}

// Compact drops every change that is not the newest of its entity, and retractions: the
// history is shorter, and consumers whose last change is gone must read the snapshot anew.
func (d *Dataset) Compact() {
	d.s.mu.Lock()
	defer d.s.mu.Unlock()
	newest := map[[2]string]string{}
	for _, c := range d.changes {
		newest[[2]string{c.Kind, c.Key}] = c.ID
	}
	d.changes = slices.DeleteFunc(d.changes, func(c *Change) bool {
		return c.Type == Retraction || newest[[2]string{c.Kind, c.Key}] != c.ID
	})
}

// Fail makes the next n requests whose path starts with prefix answer status.
func (s *Server) Fail(prefix string, status, n int) { s.FailAfter(prefix, status, 0, n) }

// FailAfter serves skip requests whose path starts with prefix, then makes the n after them
// answer status.
func (s *Server) FailAfter(prefix string, status, skip, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, fault{prefix, status, skip, n})
}

// Requests returns the request URIs served so far ("GET /datasets/…?since=…").
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// XSDDate formats t as the reference server does.
func XSDDate(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// isUUID7 is VineJS' uuid({ version: [7] }) check of the since parameter.
func isUUID7(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range strings.ToLower(s) {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
			continue
		}
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return s[14] == '7' && strings.ContainsRune("89abAB", rune(s[19]))
}

// ServeHTTP serves the protocol routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, r.Method+" "+r.URL.RequestURI())
	for i := range s.faults {
		f := &s.faults[i]
		if f.left > 0 && strings.HasPrefix(r.URL.Path, f.prefix) {
			if f.skip > 0 {
				f.skip--
				continue
			}
			f.left--
			http.Error(w, http.StatusText(f.status), f.status)
			return
		}
	}
	if r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case len(parts) == 2 && parts[0] == "labels":
		l, ok := s.labels[parts[1]]
		if !ok {
			notFound(w)
			return
		}
		s.reply(w, r, s.label(l))
	case len(parts) >= 2 && parts[0] == "datasets":
		d, ok := s.datasets[parts[1]]
		if !ok {
			notFound(w)
			return
		}
		switch {
		case len(parts) == 2:
			s.reply(w, r, s.dataset(d))
		case len(parts) == 3 && parts[2] == "snapshot":
			s.reply(w, r, s.snapshot(d))
		case len(parts) == 3 && parts[2] == "changes":
			since := r.URL.Query().Get("since")
			if r.URL.Query().Has("since") && !isUUID7(since) {
				w.Header().Set("Content-Type", "application/json; charset=utf-8")
				w.WriteHeader(http.StatusBadRequest)
				json.NewEncoder(w).Encode(map[string]any{"error": "Malformed request", "validation": []map[string]string{
					{"message": "The since field must be a valid UUID", "rule": "uuid", "field": "since"}}})
				return
			}
			s.reply(w, r, s.changesPage(d, since, r.URL.Query().Has("since")))
		case len(parts) == 4 && parts[2] == "changes":
			for _, c := range d.changes {
				if strings.EqualFold(c.ID, parts[3]) {
					item := s.item(d, c)
					s.reply(w, r, append(doc{{"@context", Context}}, item...))
					return
				}
			}
			notFound(w)
		default:
			notFound(w)
		}
	default:
		notFound(w)
	}
}

func notFound(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusNotFound)
	w.Write([]byte(`{"error":"Not Found"}`))
}

// doc is a JSON object whose keys keep their order, as the reference server's objects do.
type doc []field

type field struct {
	k string
	v any
}

// MarshalJSON writes the fields in order, leaving out nil values (undefined in JS).
func (d doc) MarshalJSON() ([]byte, error) {
	var b strings.Builder
	b.WriteByte('{')
	n := 0
	for _, f := range d {
		if f.v == nil {
			continue
		}
		if s, ok := f.v.(string); ok && s == "\x00" {
			continue
		}
		v, err := json.Marshal(f.v)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(f.k)
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
		n++
	}
	b.WriteByte('}')
	return []byte(b.String()), nil
}

// absent is a field value left out of a document.
const absent = "\x00"

func orAbsent(s string) string {
	if s == "" {
		return absent
	}
	return s
}

// reply writes v as the reference server does: Content-Type by Accept, an ETag, and 304
// when If-None-Match matches it.
func (s *Server) reply(w http.ResponseWriter, r *http.Request, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if strings.HasPrefix(r.Header.Get("Accept"), "application/ld+json") {
		w.Header().Set("Content-Type", "application/ld+json; charset=utf-8")
	} else {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
	}
	w.Header().Set("Vary", "Accept")
	etag := ETag(body)
	w.Header().Set("ETag", etag)
	if matches(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Write(body)
}

// ETag is the strong ETag the etag package (used by AdonisJS) makes for a body.
func ETag(body []byte) string {
	h := sha1.Sum(body)
	return fmt.Sprintf(`"%x-%s"`, len(body), base64.StdEncoding.EncodeToString(h[:])[:27])
}

// matches is the weak comparison of If-None-Match (a list, or *) with an ETag.
func matches(header, etag string) bool {
	if header == "" {
		return false
	}
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}

func (s *Server) label(l Label) doc {
	return doc{{"@context", Context}, {"type", "fires:Label"}, {"id", s.LabelURL(l.ID)},
		{"url", s.Base + "/labels/" + strings.ToLower(strings.ReplaceAll(l.Name, " ", "-"))},
		{"context", s.Base + "/labels"}, {"created", XSDDate(s.opts.Start)}, {"published", XSDDate(s.opts.Start)},
		{"name", l.Name}, {"summary", nullable{nil}}, {"description", ""}}
}

func (s *Server) dataset(d *Dataset) doc {
	return doc{{"@context", Context}, {"type", "Dataset"}, {"id", d.URL()}, {"url", s.Base + "/datasets/" + d.Slug},
		{"name", d.Name}, {"published", XSDDate(d.Published)},
		{"endpoints", doc{{"changes", d.URL() + "/changes"}, {"snapshot", d.URL() + "/snapshot"}}}}
}

func (s *Server) item(d *Dataset, c *Change) doc {
	it := doc{{"id", d.URL() + "/changes/" + c.ID}, {"type", c.Type}, {"published", XSDDate(c.Published)}}
	if c.Tombstoned || c.Type == Tombstone {
		it[1].v = Tombstone
		return it
	}
	it = append(it, field{"entityKind", c.Kind}, field{"entityKey", c.Key})
	if c.Type == Retraction {
		return it
	}
	labels := []string{}
	for _, l := range c.Labels {
		labels = append(labels, s.LabelURL(l))
	}
	it = append(it, field{"labels", labels})
	if c.Type == Recommendation {
		var policy any // null when there is none
		if c.Policy != "" {
			policy = c.Policy
		}
		filters := c.Filters
		if filters == nil {
			filters = []string{}
		}
		it = append(it, field{"recommendedPolicy", nullable{policy}}, field{"recommendedFilters", filters})
	}
	return it
}

// nullable is a value written as JSON null when nil (rather than left out).
type nullable struct{ v any }

func (n nullable) MarshalJSON() ([]byte, error) { return json.Marshal(n.v) }

func (s *Server) items(d *Dataset, cs []*Change) []doc {
	out := []doc{}
	for _, c := range cs {
		out = append(out, s.item(d, c))
	}
	return out
}

func (s *Server) snapshot(d *Dataset) doc {
	newest := map[[2]string]*Change{}
	for _, c := range d.changes {
		newest[[2]string{c.Kind, c.Key}] = c
	}
	var recs []*Change
	for _, c := range newest {
		recs = append(recs, c)
	}
	slices.SortFunc(recs, func(a, b *Change) int { return strings.Compare(strings.ToLower(b.ID), strings.ToLower(a.ID)) })
	out := doc{{"@context", Context}, {"id", d.URL() + "/snapshot"}, {"type", "Collection"},
		{"summary", "Snapshot for " + d.Name + " dataset"}, {"dataset", d.URL()}, {"totalItems", len(recs)}}
	if len(recs) > 0 {
		out = append(out, field{"updated", XSDDate(recs[0].Published)}, field{"changes", d.URL() + "/changes?since=" + url.QueryEscape(recs[0].ID)})
	}
	return append(out, field{"orderedItems", s.items(d, recs)})
}

func pageURL(collection, since string) string {
	if since == "" {
		return absent
	}
	return collection + "?since=" + url.QueryEscape(since)
}

func (s *Server) changesPage(d *Dataset, since string, page bool) doc {
	collection := d.URL() + "/changes"
	total := len(d.changes)
	lastID := ""
	if total > 0 {
		lastID = d.changes[total-1].ID
	}
	var records, rest []*Change
	var next *Change
	if page {
		for _, c := range d.changes {
			if strings.ToLower(c.ID) > strings.ToLower(since) {
				rest = append(rest, c)
			}
		}
		if len(rest) > s.opts.PageSize {
			next = rest[s.opts.PageSize] // the change after the page (reference behaviour)
			rest = rest[:s.opts.PageSize]
		}
		if !strings.EqualFold(since, lastID) {
			records = rest
		}
	}
	first := absent
	if total > 0 {
		first = pageURL(collection, Genesis)
	}
	last := pageURL(collection, lastID)
	if page && len(records) == 0 {
		last = absent
	}
	id, partOf, typ, nextURL := collection, absent, "OrderedCollection", first
	if page {
		id, partOf, typ = pageURL(collection, since), collection, "OrderedCollectionPage"
		nextURL = absent
		switch {
		case next != nil:
			nextURL = pageURL(collection, next.ID)
		case len(records) > 0:
			nextURL = pageURL(collection, records[len(records)-1].ID)
		}
	}
	out := doc{{"@context", Context}, {"id", id}, {"partOf", orAbsent(partOf)}, {"type", typ}, {"dataset", d.URL()},
		{"totalItems", total}, {"first", first}, {"last", last}, {"next", nextURL}}
	switch {
	case total == 0:
		out = append(out, field{"orderedItems", []doc{}})
	case page:
		out = append(out, field{"orderedItems", s.items(d, records)})
	}
	return out
}

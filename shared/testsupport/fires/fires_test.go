package fires

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

func get(t *testing.T, url string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func compact(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		t.Fatalf("%v in %s", err, s)
	}
	return b.String()
}

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// exampleServer holds the dataset of the reference notes' examples: 12 changes, of which the
// snapshot shows the newest per entity.
func exampleServer(t *testing.T) (*Server, *Dataset) {
	s := New(Options{})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	s.Base = "https://fires.example" // documents name the public URL, as behind a proxy
	s.labels["0193a001-0000-7000-8000-000000000001"] = Label{ID: "0193a001-0000-7000-8000-000000000001", Name: "Spam"}
	s.labels["0193a001-0000-7000-8000-000000000002"] = Label{ID: "0193a001-0000-7000-8000-000000000002", Name: "Harassment"}
	d := s.AddDatasetWithID("01936b2e-7a10-7c4d-9e21-3f5a6b7c8d90", "Example Blocklist")
	// Eight earlier changes on the same three entities.
	for i, e := range []string{"spam.example", "oops.example", "spam.example", "oops.example", "spam.example", "oops.example", "spam.example", "oops.example"} {
		d.Add(Change{ID: "019a0000-0000-7000-8000-00000000000" + string(rune('1'+i)), Type: Advisory, Kind: "domain", Key: e, Published: at("2025-11-01T00:00:00Z").Add(time.Duration(i) * time.Hour)})
	}
	d.Add(Change{ID: "019a70aa-1000-7c00-a000-0000000000aa", Type: Advisory, Kind: "actor", Key: "https://other.example/users/troll",
		Labels: []string{"0193a001-0000-7000-8000-000000000002"}, Published: at("2025-11-10T12:30:00Z")})
	d.Add(Change{ID: "019a8e11-2200-7b3c-9d4e-5f6a7b8c9d0e", Type: Recommendation, Kind: "domain", Key: "spam.example",
		Labels: []string{"0193a001-0000-7000-8000-000000000001"}, Policy: "drop", Published: at("2025-11-16T08:00:00Z")})
	d.Add(Change{ID: "019a9b00-0a00-7000-8000-000000000b0b", Type: Recommendation, Kind: "domain", Key: "oops.example", Policy: "reject", Published: at("2025-11-18T09:00:00Z")})
	d.Add(Change{ID: "019aa0f3-5c00-7a1b-8c2d-3e4f5a6b7c8d", Type: Retraction, Kind: "domain", Key: "oops.example", Published: at("2025-11-20T10:15:00Z")})
	return s, d
}

// The server's documents are the reference notes' examples, field for field and in order.
func TestDocumentsMatchTheReferenceExamples(t *testing.T) {
	s, d := exampleServer(t)
	for _, tt := range []struct{ file, query string }{
		{"testdata/snapshot.json", "/snapshot"},
		{"testdata/changes-page.json", "/changes?since=019a8e11-2200-7b3c-9d4e-5f6a7b8c9d0e"},
	} {
		want, err := os.ReadFile(tt.file)
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/datasets/"+d.ID+tt.query, nil))
		if got := compact(t, rec.Body.String()); got != compact(t, string(want)) {
			t.Errorf("%s:\ngot  %s\nwant %s", tt.query, got, compact(t, string(want)))
		}
	}
}

func TestPagingETagAndErrors(t *testing.T) {
	s := New(Options{PageSize: 2})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	s.Base = srv.URL
	spam := s.AddLabel("Spam")
	d := s.AddDataset("Test")
	if _, body := get(t, d.URL()+"/snapshot"); !strings.Contains(body, `"totalItems":0`) || strings.Contains(body, `"changes"`) || !strings.Contains(body, `"orderedItems":[]`) {
		t.Errorf("empty snapshot: %s", body)
	}
	if _, body := get(t, d.URL()+"/changes"); body != compact(t, `{"@context":["https://www.w3.org/ns/activitystreams","https://fires.fedimod.org/context/fires.jsonld"],"id":"`+d.URL()+`/changes","type":"OrderedCollection","dataset":"`+d.URL()+`","totalItems":0,"orderedItems":[]}`) {
		t.Errorf("empty changes: %s", body)
	}
	var ids []string
	for _, dom := range []string{"a.example", "b.example", "c.example"} {
		ids = append(ids, d.Recommend(dom, "drop", spam))
	}
	ids = append(ids, d.Retract("a.example"))
	// The collection has no items; first and next point at the genesis page.
	_, body := get(t, d.URL()+"/changes")
	var coll struct {
		Type, First, Last, Next string
		TotalItems              int
		OrderedItems            []json.RawMessage
	}
	json.Unmarshal([]byte(body), &coll)
	if coll.Type != "OrderedCollection" || coll.TotalItems != 4 || coll.OrderedItems != nil || !strings.HasSuffix(coll.First, "since="+Genesis) || coll.Next != coll.First || !strings.HasSuffix(coll.Last, ids[3]) {
		t.Errorf("collection: %s", body)
	}
	// A page of two, whose next names the third change (the reference's off-by-one).
	_, body = get(t, coll.First)
	var page struct {
		Type, Next, Last string
		OrderedItems     []struct{ ID, Type string }
	}
	json.Unmarshal([]byte(body), &page)
	if page.Type != "OrderedCollectionPage" || len(page.OrderedItems) != 2 || !strings.HasSuffix(page.Next, "since="+ids[2]) {
		t.Errorf("first page: %s", body)
	}
	// The newest id: an empty page without next or last.
	resp, body := get(t, d.URL()+"/changes?since="+ids[3])
	if !strings.Contains(body, `"orderedItems":[]`) || strings.Contains(body, `"next"`) || strings.Contains(body, `"last"`) {
		t.Errorf("end page: %s", body)
	}
	// ETag and 304; Content-Type by Accept.
	etag := resp.Header.Get("ETag")
	if resp, _ := get(t, d.URL()+"/changes?since="+ids[3], "If-None-Match", etag); resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: %d", resp.StatusCode)
	}
	if resp.Header.Get("Content-Type") != "application/json; charset=utf-8" {
		t.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
	}
	if resp, _ := get(t, d.URL()+"/snapshot", "Accept", "application/ld+json"); resp.Header.Get("Content-Type") != "application/ld+json; charset=utf-8" {
		t.Errorf("ld+json Content-Type %q", resp.Header.Get("Content-Type"))
	}
	// Snapshot: newest per entity, newest first, retractions included.
	_, body = get(t, d.URL()+"/snapshot")
	var snap struct {
		Changes      string
		OrderedItems []struct{ ID, Type, EntityKey string }
	}
	json.Unmarshal([]byte(body), &snap)
	if len(snap.OrderedItems) != 3 || snap.OrderedItems[0].Type != Retraction || snap.OrderedItems[0].EntityKey != "a.example" || !strings.HasSuffix(snap.Changes, "since="+ids[3]) {
		t.Errorf("snapshot: %s", body)
	}
	// Malformed since: 400 with VineJS' shape.
	if resp, body := get(t, d.URL()+"/changes?since=12"); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Malformed request") {
		t.Errorf("malformed since: %d %s", resp.StatusCode, body)
	}
	// Labels, single changes, tombstones, compaction, faults.
	if _, body := get(t, s.LabelURL(spam)); !strings.Contains(body, `"name":"Spam"`) {
		t.Errorf("label: %s", body)
	}
	d.TombstoneEntity("domain", "b.example")
	if _, body := get(t, d.URL()+"/changes/"+ids[1]); body != compact(t, `{"@context":`+mustJSON(Context)+`,"id":"`+d.URL()+`/changes/`+ids[1]+`","type":"Tombstone","published":"2025-11-01T00:04:00Z"}`) {
		t.Errorf("tombstone: %s", body)
	}
	d.Compact()
	if resp, _ := get(t, d.URL()+"/changes/"+ids[0]); resp.StatusCode != http.StatusNotFound {
		t.Errorf("compacted change: %d", resp.StatusCode)
	}
	s.Fail("/datasets/", http.StatusTooManyRequests, 1)
	if resp, _ := get(t, d.URL()+"/snapshot"); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("fault: %d", resp.StatusCode)
	}
	if resp, _ := get(t, d.URL()+"/snapshot"); resp.StatusCode != http.StatusOK {
		t.Errorf("after the fault: %d", resp.StatusCode)
	}
	if resp, _ := get(t, srv.URL+"/datasets/01936b2e-7a10-7c4d-9e21-3f5a6b7c8d90"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown dataset: %d", resp.StatusCode)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

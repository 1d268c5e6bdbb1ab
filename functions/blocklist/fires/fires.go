// Package fires reads a FIRES dataset (Fediverse Intelligence Replication Endpoint Server,
// fedimod/fires) as a blocklist source. The first read takes the dataset's snapshot; later
// reads take only the changes since the last change applied, page by page to the end of the
// feed. What fediops keeps between runs is a State: the newest Advisory or Recommendation of
// every entity the dataset holds (a Retraction or Tombstone removes the entity), the last
// change applied, and the names of the labels used. The State is the source's archived copy,
// so an unchanged dataset costs no bytes and a broken feed falls back to the last good State.
//
// The wire format is the reference server's (components/fires-server at ae42b95, 0.8.0):
// camelCase keys, capitalised change types, UUIDv7 change ids at the end of change URLs.
package fires

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path"
	"slices"
	"strings"
)

// Change types.
const (
	Advisory       = "Advisory"
	Recommendation = "Recommendation"
	Retraction     = "Retraction"
	Tombstone      = "Tombstone"
)

// Change is one change as the protocol serialises it.
type Change struct {
	ID                 string   `json:"id"`
	Type               string   `json:"type"`
	Published          string   `json:"published,omitempty"`
	EntityKind         string   `json:"entityKind,omitempty"`
	EntityKey          string   `json:"entityKey,omitempty"`
	Labels             []string `json:"labels,omitempty"`
	RecommendedPolicy  string   `json:"recommendedPolicy,omitempty"` // null and absent are ""
	RecommendedFilters []string `json:"recommendedFilters,omitempty"`
}

// Entity is the newest Advisory or Recommendation about one entity.
type Entity struct {
	Change
	// Seen are the ids (UUIDs) of the changes applied to the entity: a Tombstone names one of
	// them.
	Seen []string `json:"seen"`
}

// StateVersion is the version of the State format.
const StateVersion = 1

// State is what fediops keeps of a dataset, and archives as the source's copy.
type State struct {
	Version int    `json:"fediops_fires_state"`
	Dataset string `json:"dataset"` // the configured dataset URL
	Changes string `json:"changes"` // the dataset's changes collection
	// Cursor is the id (UUID) of the last change applied, CursorURL its URL; empty for a
	// dataset without changes.
	Cursor    string `json:"cursor,omitempty"`
	CursorURL string `json:"cursor_url,omitempty"`
	// Labels names the labels the entities use (label URL → name).
	Labels map[string]string `json:"labels,omitempty"`
	// Entities holds every entity the dataset has now, sorted by kind and key.
	Entities []Entity `json:"entities"`
	// Incomplete, when set, says why the read stopped before the end of the feed (the next
	// read continues from Cursor).
	Incomplete string `json:"incomplete,omitempty"`
}

// Encode writes the state as indented JSON: the same state always gives the same bytes.
func (s *State) Encode() []byte {
	slices.SortFunc(s.Entities, func(a, b Entity) int {
		if c := strings.Compare(a.EntityKind, b.EntityKind); c != 0 {
			return c
		}
		return strings.Compare(a.EntityKey, b.EntityKey)
	})
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", " ")
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // plain strings, slices and maps always encode
	return buf.Bytes()
}

// Decode reads a State written by Encode.
func Decode(b []byte) (*State, error) {
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("not a FIRES state: %w", err)
	}
	if s.Version != StateVersion || s.Changes == "" {
		return nil, errors.New("not a FIRES state of this version")
	}
	return &s, nil
}

// changeID returns the UUID at the end of a change URL.
func changeID(u string) (string, error) {
	p, err := url.Parse(u)
	if err != nil {
		return "", fmt.Errorf("change id %q: %w", u, err)
	}
	id := strings.ToLower(path.Base(p.Path))
	if !isUUID(id) {
		return "", fmt.Errorf("change id %q does not end in a UUID", u)
	}
	return id, nil
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
		}
	}
	return true
}

// entities indexes a state's entities while changes are applied.
type entities struct {
	by map[[2]string]*Entity
}

func indexOf(s *State) *entities {
	e := &entities{by: make(map[[2]string]*Entity, len(s.Entities))}
	for i := range s.Entities {
		en := s.Entities[i]
		e.by[[2]string{en.EntityKind, en.EntityKey}] = &en
	}
	return e
}

// apply applies one change, in feed order: later changes overwrite earlier ones. It
// returns false for a Tombstone naming no change of the state: which entity it erased is
// unknown.
func (e *entities) apply(c Change, id string) bool {
	key := [2]string{c.EntityKind, c.EntityKey}
	switch c.Type {
	case Advisory, Recommendation:
		if c.EntityKind == "" || c.EntityKey == "" {
			return true
		}
		var seen []string
		if old := e.by[key]; old != nil {
			seen = old.Seen
		}
		if !slices.Contains(seen, id) {
			seen = append(seen, id)
		}
		e.by[key] = &Entity{Change: c, Seen: seen}
	case Retraction:
		delete(e.by, key)
	case Tombstone:
		// The tombstone's id is that of a change it erased; erasing applies to every change
		// of the entity.
		for k, en := range e.by {
			if slices.Contains(en.Seen, id) {
				delete(e.by, k)
				return true
			}
		}
		return false
	}
	return true
}

// into writes the entities back into s.
func (e *entities) into(s *State) {
	s.Entities = make([]Entity, 0, len(e.by))
	for _, en := range e.by {
		s.Entities = append(s.Entities, *en)
	}
	slices.SortFunc(s.Entities, func(a, b Entity) int {
		if c := strings.Compare(a.EntityKind, b.EntityKind); c != 0 {
			return c
		}
		return strings.Compare(a.EntityKey, b.EntityKey)
	})
}

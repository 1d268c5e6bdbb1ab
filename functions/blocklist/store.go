package blocklist

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/fediops/fediops/functions/blocklist/plan"
	"github.com/fediops/fediops/shared/archive"
	"github.com/fediops/fediops/shared/run"
)

// Archive layout (under the archive store's root):
//
//	blocklist/objects/<sha256>                             raw sources and merged lists, once per content
//	blocklist/sources/<name>-<hash>.json                   each source's last good copy (control object)
//	blocklist/snapshots/<snapshot>/sources.json            the copies the run used, and its merged list (Manifest)
//	blocklist/snapshots/<snapshot>/report.json             the merge report
//	blocklist/snapshots/<snapshot>/<instance>/before.json  the instance's blocks before
//	blocklist/snapshots/<snapshot>/<instance>/plan.json    the plan
//	blocklist/snapshots/<snapshot>/<instance>/results.json what was done
//	blocklist/snapshots/<snapshot>/<instance>/state.json   the owned blocks after
//	blocklist/state/<instance>.json                        owned blocks now (control object)
//	blocklist/checkpoint/<instance>.json                   unfinished approved work, as intent (control object)
//	blocklist/pending/<instance>/<plan id>.json            plans held by a guard (intent and actions)
//	blocklist/pending/<instance>/<plan id>.applied         written when such a plan's work is done or kept as intent
//
// A snapshot id is "<UTC time to the microsecond>-<run id>", so listing sorts by time.
// Snapshots written before content addressing hold sources/<name> and merged.csv instead of
// sources.json; they are still listed and rolled back to.

const snapshotsPrefix = "blocklist/snapshots/"

// Snapshot writes the objects of one run.
type Snapshot struct {
	ID    string
	store archive.Store
}

// NewSnapshot names a run's snapshot.
func NewSnapshot(store archive.Store, now time.Time, runID string) *Snapshot {
	return &Snapshot{ID: now.UTC().Format("20060102T150405.000000Z") + "-" + runID, store: store}
}

// Put archives data under the snapshot (create-only).
func (s *Snapshot) Put(ctx context.Context, name string, data []byte) error {
	return s.store.Create(ctx, snapshotsPrefix+s.ID+"/"+name, data)
}

// PutJSON archives v as indented JSON.
func (s *Snapshot) PutJSON(ctx context.Context, name string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return s.Put(ctx, name, append(b, '\n'))
}

// Location returns where the snapshot lives.
func (s *Snapshot) Location() string { return s.store.Location(snapshotsPrefix + s.ID) }

// SnapshotInfo describes an archived snapshot.
type SnapshotInfo struct {
	ID        string   `json:"id"`
	Instances []string `json:"instances"`
}

// ListSnapshots returns the snapshots (oldest first), limited to those that touched instance
// if it is not "".
func ListSnapshots(ctx context.Context, store archive.Store, instance string) ([]SnapshotInfo, error) {
	keys, err := store.List(ctx, snapshotsPrefix)
	if err != nil {
		return nil, err
	}
	byID := map[string]map[string]bool{}
	var ids []string
	for _, k := range keys {
		rest := strings.TrimPrefix(k, snapshotsPrefix)
		id, file, ok := strings.Cut(rest, "/")
		if !ok {
			continue
		}
		if byID[id] == nil {
			byID[id] = map[string]bool{}
			ids = append(ids, id)
		}
		if inst, name, ok := strings.Cut(file, "/"); ok && name == "state.json" {
			byID[id][inst] = true
		}
	}
	sort.Strings(ids)
	var out []SnapshotInfo
	for _, id := range ids {
		var insts []string
		for i := range byID[id] {
			insts = append(insts, i)
		}
		sort.Strings(insts)
		if instance != "" && !byID[id][instance] {
			continue
		}
		out = append(out, SnapshotInfo{ID: id, Instances: insts})
	}
	return out, nil
}

// State is what fediops owns on one instance.
type State struct {
	Instance string                `json:"instance"`
	Updated  time.Time             `json:"updated"`
	Owned    map[string]plan.Owned `json:"owned"` // by domain
	// Rate is the rate-limit state at the end of the last run, so that the next one does not
	// start into an exhausted window.
	Rate *run.Rate `json:"rate,omitempty"`
}

// stateStore reads and writes an instance's state and checkpoint with generation checks.
type stateStore struct {
	store    archive.Store
	instance string
	stateGen int64
	ckptGen  int64
}

func (s *stateStore) stateKey() string { return "blocklist/state/" + s.instance + ".json" }
func (s *stateStore) ckptKey() string  { return "blocklist/checkpoint/" + s.instance + ".json" }

func (s *stateStore) loadState(ctx context.Context) (*State, error) {
	st := &State{Instance: s.instance, Owned: map[string]plan.Owned{}}
	b, gen, err := s.store.ReadVersion(ctx, s.stateKey())
	if errors.Is(err, archive.ErrNotFound) {
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	s.stateGen = gen
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("state %s is corrupt: %w", s.store.Location(s.stateKey()), err)
	}
	if st.Owned == nil {
		st.Owned = map[string]plan.Owned{}
	}
	return st, nil
}

func (s *stateStore) saveState(ctx context.Context, st *State) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	gen, err := s.store.WriteIf(ctx, s.stateKey(), b, s.stateGen)
	if err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	s.stateGen = gen
	return nil
}

// checkpoint is the unfinished part of approved work, kept as intent: the next run plans it
// again against the instance's blocks at that moment.
type checkpoint struct {
	PlanID  string    `json:"plan_id"`
	Created time.Time `json:"created"`
	Intent  Intent    `json:"intent"`
	// Remaining is how checkpoints stored the rest before they stored intent; such a
	// checkpoint is read as the intent behind those actions.
	Remaining []plan.Action `json:"remaining,omitempty"`
}

func (s *stateStore) loadCheckpoint(ctx context.Context) (*checkpoint, error) {
	b, gen, err := s.store.ReadVersion(ctx, s.ckptKey())
	if errors.Is(err, archive.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read checkpoint: %w", err)
	}
	s.ckptGen = gen
	var c checkpoint
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("checkpoint %s is corrupt: %w", s.store.Location(s.ckptKey()), err)
	}
	if len(c.Remaining) > 0 {
		c.Intent, c.Remaining = intentOf(c.Remaining, BasisLists), nil
	}
	if c.Intent.Len() == 0 {
		return nil, nil
	}
	return &c, nil
}

// saveCheckpoint writes c (nil or empty: no unfinished work).
func (s *stateStore) saveCheckpoint(ctx context.Context, c *checkpoint) error {
	if c == nil {
		c = &checkpoint{}
	}
	if c.Intent.Len() == 0 && s.ckptGen == 0 {
		return nil // nothing to clear
	}
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	gen, err := s.store.WriteIf(ctx, s.ckptKey(), b, s.ckptGen)
	if err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	s.ckptGen = gen
	return nil
}

func heldKey(instance, id string) string {
	return "blocklist/pending/" + instance + "/" + id + ".json"
}
func appliedKey(instance, id string) string {
	return "blocklist/pending/" + instance + "/" + id + ".applied"
}

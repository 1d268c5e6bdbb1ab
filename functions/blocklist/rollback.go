package blocklist

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/fediops/fediops/functions/blocklist/lists"
	"github.com/fediops/fediops/functions/blocklist/plan"
	"github.com/fediops/fediops/shared/archive"
)

// snapshotState reads the owned-block state an instance had after the run of a snapshot.
func snapshotState(ctx context.Context, store archive.Store, snapshotID, instance string) (*State, error) {
	b, err := store.Read(ctx, snapshotsPrefix+snapshotID+"/"+instance+"/state.json")
	if errors.Is(err, archive.ErrNotFound) {
		return nil, fmt.Errorf("snapshot %s has no state for instance %s (see `fediops blocklist snapshots --instance %s`)", snapshotID, instance, instance)
	}
	if err != nil {
		return nil, err
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("snapshot %s: state is corrupt: %w", snapshotID, err)
	}
	return &st, nil
}

// Rollback returns an instance's owned blocks to their state in an earlier snapshot: blocks
// fediops removed since are recreated, blocks it added are removed, severities and the managed
// fields are restored. Manual blocks are never touched, and the same guards apply as to a
// sync (a held rollback is applied with `fediops blocklist apply --plan`).
func Rollback(ctx context.Context, d Deps, dest Destination, snapshotID string, snap *Snapshot, runID string) (*Outcome, error) {
	st, err := snapshotState(ctx, d.Store, snapshotID, dest.Name)
	if err != nil {
		return nil, err
	}
	want := Desired{Allowed: func(string) bool { return false }, Basis: BasisRollback}
	for _, o := range st.Owned {
		src := o.Sources
		if len(src) == 0 {
			src = []string{"rollback to " + snapshotID}
		}
		want.Blocks = append(want.Blocks, plan.Desired{Block: lists.Block{
			Domain: o.Domain, Severity: o.Applied.Severity, RejectMedia: o.Applied.RejectMedia, RejectReports: o.Applied.RejectReports,
			Obfuscate: o.Applied.Obfuscate, PublicComment: o.Applied.PublicComment,
		}, Sources: src})
	}
	sort.Slice(want.Blocks, func(i, j int) bool { return want.Blocks[i].Domain < want.Blocks[j].Domain })
	dest.Plan.RemoveRetracted = true
	dest.Plan.AdoptOrphans = false
	// The follow protection applied when the snapshot's blocks were made; restoring them
	// must not suspend a domain people follow now either, so it stays on.
	return Sync(ctx, d, dest, want, snap, runID)
}

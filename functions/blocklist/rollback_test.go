package blocklist

import (
	"context"
	"maps"
	"testing"

	"github.com/fediops/fediops/shared/testsupport/mastosim"
)

func TestRollbackRestoresOwnedBlocksOfASnapshot(t *testing.T) {
	h := newSim(t, mastosim.Options{})
	ctx := context.Background()
	h.sim.AddDomainBlock(mastosim.DomainBlock{Domain: "manual.example", Severity: "silence"})
	first := h.sync(t, ctx, dest("main", nil), desiredOf("a.example:suspend", "b.example:silence", "c.example:suspend"))
	afterFirst := h.blocks()

	// The lists change: a retracted, b raised, d added; an admin adds a manual block.
	h.sync(t, ctx, dest("main", nil), desiredOf("b.example:suspend", "c.example:suspend", "d.example:suspend"))
	h.sim.AddDomainBlock(mastosim.DomainBlock{Domain: "later-manual.example", Severity: "suspend"})

	snaps, err := ListSnapshots(ctx, h.store, "main")
	if err != nil || len(snaps) != 2 || snaps[0].ID != first.Snapshot {
		t.Fatalf("snapshots = %+v, %v", snaps, err)
	}
	// Dry run first: nothing changes.
	d := dest("main", nil)
	d.DryRun = true
	d.Client = h.client(t)
	preview, err := Rollback(ctx, h.deps(), d, first.Snapshot, NewSnapshot(h.store, h.clock.Now(), "rb-dry"), "rb-dry")
	if err != nil || preview.Created != 1 || preview.Updated != 1 || preview.Removed != 1 {
		t.Fatalf("rollback preview = %+v, %v", preview, err)
	}
	d.DryRun = false
	out, err := Rollback(ctx, h.deps(), d, first.Snapshot, NewSnapshot(h.store, h.clock.Now(), "rb"), "rb")
	if err != nil {
		t.Fatal(err)
	}
	want := maps.Clone(afterFirst)
	want["later-manual.example"] = h.blocks()["later-manual.example"]
	if diff := diffMaps(h.blocks(), want); diff != "" {
		t.Fatalf("after rollback:\n%s", diff)
	}
	if out.Created != 1 || out.Updated != 1 || out.Removed != 1 {
		t.Errorf("outcome = %+v", out)
	}
	if _, err := Rollback(ctx, h.deps(), dest("main", h.client(t)), "20990101T000000Z-nope", NewSnapshot(h.store, h.clock.Now(), "rb2"), "rb2"); err == nil {
		t.Error("rollback to a missing snapshot accepted")
	}
}

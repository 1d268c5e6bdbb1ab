package blocklist

import (
	"context"

	"github.com/fediops/fediops/functions/blocklist/fires"
	"github.com/fediops/fediops/functions/blocklist/lists"
	"github.com/fediops/fediops/shared/fetch"
	"github.com/fediops/fediops/shared/listsource"
)

// readFIRES brings a FIRES dataset's state up to date from the last good state (prev): the
// changes since its last change, or the snapshot. The new state's bytes are what the source
// cache compares and archives; an unchanged feed answers "not modified".
func readFIRES(ctx context.Context, g fires.Getter, src Source, prev *listsource.Previous) (*fetch.Result, error) {
	var last *fires.State
	var etag string
	if prev != nil {
		if b, err := prev.Data(ctx); err == nil {
			if st, err := fires.Decode(b); err == nil {
				last, etag = st, prev.Validators.ETag
			}
		}
	}
	out, err := fires.Read(ctx, g, src.URL, last, etag, 0)
	if err != nil {
		return nil, err
	}
	if out.NotModified {
		return &fetch.Result{NotModified: true, Validators: prev.Validators}, nil
	}
	res := &fetch.Result{Data: out.State.Encode(), Validators: fetch.Validators{ETag: out.ETag}}
	if out.Fresh && out.Why != "first read" {
		res.Note = "read the snapshot afresh: " + out.Why
	}
	return res, nil
}

// parseFIRES reads an archived FIRES state into the source's blocklist and allowlist.
func parseFIRES(src Source, data []byte) (*parsed, listsource.Meta, error) {
	st, err := fires.Decode(data)
	if err != nil {
		return nil, listsource.Meta{}, err
	}
	blocks, allow := fires.Lists(src.Name, st, *src.FIRES, src.Options)
	return &parsed{list: blocks, allow: allow, note: st.Incomplete},
		listsource.Meta{Format: string(fires.Format), Usable: blocks.Usable() + allow.Usable()}, nil
}

// parsed is one source's lists: its entries and, for a FIRES dataset, its allowlist entries.
type parsed struct {
	list  *lists.List
	allow *lists.List
	note  string
}

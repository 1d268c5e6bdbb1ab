package blocklist

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/fediops/fediops/functions/blocklist/fires"
	"github.com/fediops/fediops/functions/blocklist/lists"
	"github.com/fediops/fediops/functions/blocklist/merge"
	"github.com/fediops/fediops/shared/archive"
	"github.com/fediops/fediops/shared/fetch"
	"github.com/fediops/fediops/shared/listsource"
	"github.com/fediops/fediops/shared/logging"
)

// Source is one configured list: a URL (https, file, gs) or an instance's domain blocks.
type Source struct {
	Name      string
	URL       string       // for URL sources; for instances, the server's base URL
	Format    lists.Format // "" = detect
	Options   lists.Options
	Allowlist bool
	// PublicKey (base64 Ed25519) makes the source's RapidBlock signature at SignatureURL
	// (default URL + ".sig") mandatory.
	PublicKey    string
	SignatureURL string
	// Instance is set for instance sources.
	Instance *InstanceSource
	// FIRES is set for FIRES datasets (URL is the dataset's).
	FIRES *fires.Mapping
}

// InstanceSource is a server whose domain blocks are a source.
type InstanceSource struct {
	Admin bool   // the admin API (all fields, all pages) instead of the public list
	Token string // resolved token ("" for the public list)
}

// Reader reads a source's raw data; the adapter behind it does HTTP, files, Cloud Storage
// and the Mastodon API (instance sources come back as the JSON the API answered). prev is the
// source's last good copy (nil if none): its validators make the request conditional.
type Reader interface {
	Read(ctx context.Context, src Source, prev *listsource.Previous) (*fetch.Result, error)
}

// Source statuses in the report.
const (
	StatusOK          = string(listsource.OK)
	StatusNotModified = string(listsource.NotModified) // HTTP 304, or the same bytes as the last good copy
	StatusFallback    = string(listsource.Fallback)
	StatusLeftOut     = string(listsource.LeftOut)
)

// SourceReport says what happened to one source.
type SourceReport struct {
	Name      string         `json:"name"`
	Location  string         `json:"location"`
	Allowlist bool           `json:"allowlist,omitempty"`
	Status    string         `json:"status"`
	Error     string         `json:"error,omitempty"`
	Format    lists.Format   `json:"format,omitempty"`
	Rows      int            `json:"rows"`
	Used      int            `json:"used"`
	Skipped   map[string]int `json:"skipped,omitempty"`
	// Copy is the archived raw copy used (a fallback or an unchanged list).
	Copy string `json:"copy,omitempty"`
	// Note says how the source was read when that matters (a FIRES dataset read afresh, or
	// only in part).
	Note string `json:"note,omitempty"`
}

// MergeReport is the report of the sources and merge stage.
type MergeReport struct {
	Snapshot string         `json:"snapshot"`
	Time     time.Time      `json:"time"`
	Sources  []SourceReport `json:"sources"`
	Merged   int            `json:"merged"`
	Dropped  map[string]int `json:"dropped,omitempty"`
	Failed   int            `json:"failed_sources"`
	// StoredBytes is how many bytes of raw sources and merged list this run added to the
	// archive (what is archived already costs nothing).
	StoredBytes int `json:"stored_bytes"`
}

// MergeRun is the outcome of Collect.
type MergeRun struct {
	Allowlists []*lists.List
	Result     *merge.Result
	Desired    Desired
	Report     MergeReport
}

// CollectOptions configure Collect.
type CollectOptions struct {
	Merge           merge.Options
	MaxShrinkPct    float64 // a source that shrinks more than this against its last good copy fails
	AllowSubdomains bool
	// MergeOnly leaves Desired.Blocks out: the run ends with the merge (fediops blocklist
	// merge) and needs only Result.
	MergeOnly bool
}

// SourceRef is a snapshot's reference to the raw copy of a source it used.
type SourceRef struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	// Key is the archive key of the raw bytes (blocklist/objects/<sha256>; in archives
	// written before content addressing, a snapshot's sources/<name>).
	Key    string `json:"key,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
	Bytes  int    `json:"bytes,omitempty"`
	Format string `json:"format,omitempty"`
	// Stored is set when this run wrote the bytes.
	Stored bool `json:"stored,omitempty"`
}

// Manifest is a snapshot's sources.json: which raw copy of each source the run used, and
// the merged list (Mastodon CSV), both stored once by content.
type Manifest struct {
	Sources []SourceRef        `json:"sources"`
	Merged  *listsource.Object `json:"merged,omitempty"`
}

// sourceCache is the blocklist's archive of raw sources.
func sourceCache(d Deps) *listsource.Cache {
	return &listsource.Cache{Store: d.Store, Prefix: "blocklist", Clock: d.Clock}
}

// collected is one source read and parsed.
type collected struct {
	rep   SourceReport
	ref   SourceRef
	list  *lists.List // nil when left out
	allow *lists.List // a FIRES dataset's accept entries
	warn  string
	bytes int // stored
}

// Collect reads, checks and merges every source. One bad source never spoils the run: a
// source that cannot be fetched or parsed, has no usable row, fails its signature check or
// shrank more than MaxShrinkPct against its last good copy is reported as failed, and its last
// good archived copy is used instead (or it is left out if there is none). Raw sources are
// archived once, by content (blocklist/objects/<sha256>), and so is the merged list; the
// snapshot gets the manifest naming them, and the report.
//
// Sources are read and parsed a few at a time, concurrently, and folded into the merge in
// configuration order as soon as each is ready, so that only a few parsed lists are in memory
// at once.
func Collect(ctx context.Context, d Deps, r Reader, srcs []Source, o CollectOptions, snap *Snapshot) (*MergeRun, error) {
	run := &MergeRun{Report: MergeReport{Snapshot: snap.ID, Time: d.Clock.Now().UTC(), Dropped: map[string]int{}}}
	mo := o.Merge
	mo.AllowSubdomains = o.AllowSubdomains
	if mo.TotalLists == 0 {
		for _, src := range srcs {
			if !src.Allowlist {
				mo.TotalLists++ // failed sources still count: a failure cannot lower the bar
			}
		}
	}
	m, err := merge.NewMerger(mo)
	if err != nil {
		return nil, fmt.Errorf("merge: %w", err)
	}
	cache := sourceCache(d)
	var manifest Manifest
	// Up to 8 sources are fetched at once (network sources wait on their servers), but
	// parsing takes all CPUs but one: the merge folds each list in on the remaining one, and
	// it is the longest serial part of the run.
	parsing := make(chan struct{}, max(1, runtime.GOMAXPROCS(0)-1))
	inOrder(len(srcs), 8, func(i int) *collected {
		return collectOne(ctx, cache, r, srcs[i], o, parsing)
	}, func(i int, out *collected) {
		src := srcs[i]
		run.Report.Sources = append(run.Report.Sources, out.rep)
		manifest.Sources = append(manifest.Sources, out.ref)
		run.Report.StoredBytes += out.bytes
		if out.warn != "" {
			d.Log.Warn(fmt.Sprintf("source %s: %s", src.Name, out.warn), "source", src.Name)
		}
		if out.rep.Status == StatusFallback || out.rep.Status == StatusLeftOut {
			run.Report.Failed++
			d.Log.Warn(fmt.Sprintf("source %s failed: %s (%s)", src.Name, out.rep.Error, out.rep.Status), "source", src.Name, "status", out.rep.Status)
		}
		switch {
		case out.list == nil:
		case src.Allowlist:
			run.Allowlists = append(run.Allowlists, out.list)
		default:
			m.Add(out.list) // the merger keeps what it needs; the parsed list can go
		}
		if out.allow != nil && len(out.allow.Blocks) > 0 {
			run.Allowlists = append(run.Allowlists, out.allow)
		}
	})
	res := m.Result(run.Allowlists)
	run.Result = res
	run.Desired = Desired{Allowed: Allowlist(run.Allowlists, o.AllowSubdomains), Unread: unread(run.Report.Sources)}
	if !o.MergeOnly {
		run.Desired.Blocks = DesiredFrom(res)
	}
	run.Report.Merged = len(res.Blocks)
	for _, dr := range res.Dropped {
		run.Report.Dropped[dr.Reason]++
	}
	accountSources(run.Report.Sources, append(append([]merge.SourceStats(nil), res.Sources...), res.Allowlists...))
	if err := archiveMerge(ctx, cache, snap, res.Blocks, manifest, &run.Report); err != nil {
		return nil, err
	}
	return run, nil
}

// unread names the blocklist sources that were left out: neither read nor replaced by a last
// good copy. What they listed is not retracted.
func unread(reports []SourceReport) map[string]bool {
	out := map[string]bool{}
	for _, r := range reports {
		if r.Status == StatusLeftOut && !r.Allowlist {
			out[r.Name] = true
		}
	}
	return out
}

// collectOne reads and parses one source through the source cache: fresh if it passes the
// checks, else its last good copy.
func collectOne(ctx context.Context, cache *listsource.Cache, r Reader, src Source, o CollectOptions, parsing chan struct{}) *collected {
	out := &collected{rep: SourceReport{Name: src.Name, Location: logging.SanitizeURL(src.URL), Allowlist: src.Allowlist}}
	res := listsource.Get(ctx, cache, listsource.Source[*parsed]{
		Name: src.Name,
		Read: func(ctx context.Context, prev *listsource.Previous) (*fetch.Result, error) {
			return r.Read(ctx, src, prev)
		},
		Parse: func(data []byte, from *listsource.Copy) (*parsed, listsource.Meta, error) {
			parsing <- struct{}{}
			defer func() { <-parsing }()
			if src.FIRES != nil {
				return parseFIRES(src, data)
			}
			format := src.Format
			if from != nil && from.Format != "" {
				format = lists.Format(from.Format) // as it was read when it was good
			}
			if format == "" {
				format = lists.Detect(data, src.URL)
			}
			if format == "" {
				return nil, listsource.Meta{}, errors.New("not a blocklist in any known format")
			}
			l, err := lists.ParseOwned(src.Name, data, format, src.Options) // data is not changed after
			if err != nil {
				return nil, listsource.Meta{}, fmt.Errorf("parse: %w", err)
			}
			return &parsed{list: l}, listsource.Meta{Format: string(format), Usable: l.Usable()}, nil
		},
		Check: func(ctx context.Context, data []byte, p *parsed, m listsource.Meta, prev *listsource.Copy) error {
			// A FIRES dataset may be empty; a file with nothing usable is not a blocklist.
			if m.Usable == 0 && src.FIRES == nil {
				return fmt.Errorf("zero usable rows (of %d)", p.list.Rows)
			}
			if src.PublicKey != "" {
				if err := verifySignature(ctx, r, src, data); err != nil {
					return err
				}
			}
			if prev != nil && o.MaxShrinkPct > 0 && prev.Usable > 0 {
				if shrink := 100 * float64(prev.Usable-m.Usable) / float64(prev.Usable); shrink > o.MaxShrinkPct {
					return fmt.Errorf("shrank by %.0f%% (from %d to %d usable rows; max_source_shrink = %g)", shrink, prev.Usable, m.Usable, o.MaxShrinkPct)
				}
			}
			return nil
		},
	})
	out.rep.Status, out.warn = string(res.Status), res.Warning
	if p := res.Value; p != nil {
		out.list, out.allow = p.list, p.allow
		out.rep.Note = strings.Trim(res.Note+"; "+p.note, "; ")
	}
	out.ref = SourceRef{Name: src.Name, Status: string(res.Status)}
	if res.Err != nil {
		out.rep.Error = res.Err.Error()
	}
	if cp := res.Copy; cp != nil {
		out.ref.Key, out.ref.SHA256, out.ref.Bytes, out.ref.Format, out.ref.Stored = cp.Key, cp.SHA256, cp.Bytes, cp.Format, res.Stored
		if res.Status != listsource.OK {
			out.rep.Copy = cache.Store.Location(cp.Key)
		}
		if res.Stored {
			out.bytes = cp.Bytes
		}
	}
	return out
}

// accountSources fills in the per-source accounting from the merge.
func accountSources(reports []SourceReport, stats []merge.SourceStats) {
	by := make(map[string]*SourceReport, len(reports))
	for i := range reports {
		by[reports[i].Name] = &reports[i]
	}
	for _, st := range stats {
		sr := by[st.Source]
		if sr == nil {
			continue
		}
		if sr.Format == "" {
			sr.Format = st.Format
		}
		sr.Rows += st.Rows
		sr.Used += st.Used
		for k, v := range st.Skipped {
			if sr.Skipped == nil {
				sr.Skipped = map[string]int{}
			}
			sr.Skipped[k] += v
		}
	}
}

// archiveMerge stores the merged list (by content, like the sources: an unchanged list costs
// nothing) and writes the snapshot's manifest and report.
func archiveMerge(ctx context.Context, cache *listsource.Cache, snap *Snapshot, blocks []lists.Block, manifest Manifest, rep *MergeReport) error {
	var csv bytes.Buffer
	csv.Grow(64 * len(blocks))
	if err := lists.WriteMastodonCSV(&csv, blocks); err != nil {
		return err
	}
	merged, err := cache.Put(ctx, csv.Bytes())
	if err != nil {
		return fmt.Errorf("archive the merged list: %w", err)
	}
	manifest.Merged = &merged
	if merged.Stored {
		rep.StoredBytes += merged.Bytes
	}
	if err := snap.PutJSON(ctx, "sources.json", manifest); err != nil && !errors.Is(err, archive.ErrExists) {
		return fmt.Errorf("archive the sources manifest: %w", err)
	}
	if err := snap.PutJSON(ctx, "report.json", rep); err != nil && !errors.Is(err, archive.ErrExists) {
		return fmt.Errorf("archive report: %w", err)
	}
	return nil
}

// inOrder calls read(i) for i in 0..n-1, a few at a time, and use(i, result) in order of i.
// A read starts only when fewer than parallel results are unused, so the results waiting in
// memory stay bounded.
func inOrder[T any](n, parallel int, read func(i int) T, use func(i int, v T)) {
	results := make([]chan T, n)
	for i := range results {
		results[i] = make(chan T, 1)
	}
	slots := make(chan struct{}, parallel)
	go func() {
		for i := range n {
			slots <- struct{}{}
			go func() { results[i] <- read(i) }()
		}
	}()
	for i := range n {
		v := <-results[i]
		<-slots
		use(i, v)
	}
}

// verifySignature checks a RapidBlock signature: base64 Ed25519 over the SHA-256 of the
// list (RapidBlock's text mode strips carriage returns before hashing; both are accepted).
func verifySignature(ctx context.Context, r Reader, src Source, data []byte) error {
	pub, err := base64.StdEncoding.DecodeString(strings.TrimSpace(src.PublicKey))
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return errors.New("public_key is not a base64 Ed25519 public key")
	}
	sigURL := src.SignatureURL
	if sigURL == "" {
		sigURL = src.URL + ".sig"
	}
	res, err := r.Read(ctx, Source{Name: src.Name + " signature", URL: sigURL}, nil)
	if err != nil {
		return fmt.Errorf("signature: %w", err)
	}
	sig, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(res.Data)))
	if err != nil || len(sig) != ed25519.SignatureSize {
		return errors.New("signature file is not a base64 Ed25519 signature")
	}
	for _, msg := range [][]byte{data, bytes.ReplaceAll(data, []byte("\r"), nil)} {
		sum := sha256.Sum256(msg)
		if ed25519.Verify(pub, sum[:], sig) {
			return nil
		}
	}
	return errors.New("signature does not match the list: refusing it")
}

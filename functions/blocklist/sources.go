package blocklist

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/fediops/fediops/functions/blocklist/lists"
	"github.com/fediops/fediops/functions/blocklist/merge"
	"github.com/fediops/fediops/shared/archive"
	"github.com/fediops/fediops/shared/fetch"
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
}

// InstanceSource is a server whose domain blocks are a source.
type InstanceSource struct {
	Admin bool   // the admin API (all fields, all pages) instead of the public list
	Token string // resolved token ("" for the public list)
}

// Reader reads a source's raw data; the adapter behind it does HTTP, files, Cloud Storage
// and the Mastodon API (instance sources come back as the JSON the API answered).
type Reader interface {
	Read(ctx context.Context, src Source, v fetch.Validators) (*fetch.Result, error)
}

// Source statuses in the report.
const (
	StatusOK          = "ok"
	StatusNotModified = "not_modified"
	StatusFallback    = "failed_using_last_good_copy"
	StatusLeftOut     = "failed_left_out"
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
}

// MergeReport is the report of the sources and merge stage.
type MergeReport struct {
	Snapshot string         `json:"snapshot"`
	Time     time.Time      `json:"time"`
	Sources  []SourceReport `json:"sources"`
	Merged   int            `json:"merged"`
	Dropped  map[string]int `json:"dropped,omitempty"`
	Failed   int            `json:"failed_sources"`
}

// MergeRun is the outcome of Collect.
type MergeRun struct {
	Lists      []*lists.List
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
}

// lastGood points at the last good archived copy of a source.
type lastGood struct {
	Name       string           `json:"name"`
	Key        string           `json:"key"`
	Format     lists.Format     `json:"format"`
	Usable     int              `json:"usable"`
	Fetched    time.Time        `json:"fetched"`
	Validators fetch.Validators `json:"validators"`
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func safeName(name string) string {
	s := strings.Trim(unsafeChars.ReplaceAllString(name, "_"), "_.")
	if s == "" {
		s = "source"
	}
	return s
}

func pointerKey(name string) string {
	h := sha256.Sum256([]byte(name))
	return "blocklist/sources/" + safeName(name) + "-" + fmt.Sprintf("%x", h[:4]) + ".json"
}

// Collect reads, checks and merges every source. One bad source never spoils the run: a
// source that cannot be fetched or parsed, has no usable row, fails its signature check or
// shrank more than MaxShrinkPct against its last good copy is reported as failed, and its last
// good archived copy is used instead (or it is left out if there is none). Raw sources, the
// merged list and the report are archived in snap.
func Collect(ctx context.Context, d Deps, r Reader, srcs []Source, o CollectOptions, snap *Snapshot) (*MergeRun, error) {
	run := &MergeRun{Report: MergeReport{Snapshot: snap.ID, Time: d.Clock.Now().UTC(), Dropped: map[string]int{}}}
	blocklists := 0
	for _, src := range srcs {
		if !src.Allowlist {
			blocklists++
		}
		rep := &SourceReport{Name: src.Name, Location: logging.SanitizeURL(src.URL), Allowlist: src.Allowlist}
		l := collectOne(ctx, d, r, src, o, snap, rep)
		run.Report.Sources = append(run.Report.Sources, *rep)
		if rep.Status == StatusFallback || rep.Status == StatusLeftOut {
			run.Report.Failed++
			d.Log.Warn(fmt.Sprintf("source %s failed: %s (%s)", src.Name, rep.Error, rep.Status), "source", src.Name, "status", rep.Status)
		}
		if l == nil {
			continue
		}
		if src.Allowlist {
			run.Allowlists = append(run.Allowlists, l)
		} else {
			run.Lists = append(run.Lists, l)
		}
	}
	mo := o.Merge
	mo.AllowSubdomains = o.AllowSubdomains
	if mo.TotalLists == 0 {
		mo.TotalLists = blocklists // failed sources still count: a failure cannot lower the bar
	}
	res, err := merge.Merge(run.Lists, run.Allowlists, mo)
	if err != nil {
		return nil, fmt.Errorf("merge: %w", err)
	}
	run.Result = res
	run.Desired = Desired{Blocks: DesiredFrom(res, run.Lists), Allowed: Allowlist(run.Allowlists, o.AllowSubdomains), Unread: unread(run.Report.Sources)}
	run.Report.Merged = len(res.Blocks)
	for _, dr := range res.Dropped {
		run.Report.Dropped[dr.Reason]++
	}
	// Fill in the per-source accounting from the merge.
	for _, st := range append(append([]merge.SourceStats(nil), res.Sources...), res.Allowlists...) {
		for i := range run.Report.Sources {
			sr := &run.Report.Sources[i]
			if sr.Name == st.Source {
				sr.Rows, sr.Used, sr.Skipped, sr.Format = st.Rows, st.Used, st.Skipped, st.Format
			}
		}
	}
	var csv bytes.Buffer
	if err := lists.WriteMastodonCSV(&csv, res.Blocks); err != nil {
		return nil, err
	}
	if err := snap.Put(ctx, "merged.csv", csv.Bytes()); err != nil && !errors.Is(err, archive.ErrExists) {
		return nil, fmt.Errorf("archive merged list: %w", err)
	}
	if err := snap.PutJSON(ctx, "report.json", run.Report); err != nil && !errors.Is(err, archive.ErrExists) {
		return nil, fmt.Errorf("archive report: %w", err)
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

// collectOne reads and parses one source, falling back to its last good copy.
func collectOne(ctx context.Context, d Deps, r Reader, src Source, o CollectOptions, snap *Snapshot, rep *SourceReport) *lists.List {
	ptrKey := pointerKey(src.Name)
	var prev *lastGood
	var prevGen int64
	if b, gen, err := d.Store.ReadVersion(ctx, ptrKey); err == nil {
		var lg lastGood
		if json.Unmarshal(b, &lg) == nil {
			prev, prevGen = &lg, gen
		}
	}
	fail := func(why string) *lists.List {
		rep.Error = why
		if prev == nil {
			rep.Status = StatusLeftOut
			return nil
		}
		l, err := loadCopy(ctx, d.Store, src, prev)
		if err != nil {
			rep.Status, rep.Error = StatusLeftOut, why+"; the last good copy is unreadable too: "+err.Error()
			return nil
		}
		rep.Status, rep.Copy = StatusFallback, d.Store.Location(prev.Key)
		return l
	}

	var v fetch.Validators
	if prev != nil {
		v = prev.Validators
	}
	res, err := r.Read(ctx, src, v)
	if err != nil {
		return fail(err.Error())
	}
	if res.NotModified && prev != nil {
		l, err := loadCopy(ctx, d.Store, src, prev)
		if err != nil {
			return fail("not modified, but the last copy is unreadable: " + err.Error())
		}
		rep.Status, rep.Copy = StatusNotModified, d.Store.Location(prev.Key)
		return l
	}
	if src.PublicKey != "" {
		if err := verifySignature(ctx, r, src, res.Data); err != nil {
			return fail(err.Error())
		}
	}
	format := src.Format
	if format == "" {
		format = lists.Detect(res.Data, src.URL)
	}
	if format == "" {
		return fail("not a blocklist in any known format")
	}
	l, err := lists.Parse(src.Name, res.Data, format, src.Options)
	if err != nil {
		return fail("parse: " + err.Error())
	}
	if l.Usable() == 0 {
		return fail(fmt.Sprintf("zero usable rows (of %d)", l.Rows))
	}
	if prev != nil && o.MaxShrinkPct > 0 && prev.Usable > 0 {
		if shrink := 100 * float64(prev.Usable-l.Usable()) / float64(prev.Usable); shrink > o.MaxShrinkPct {
			return fail(fmt.Sprintf("shrank by %.0f%% (from %d to %d usable rows; max_source_shrink = %g)", shrink, prev.Usable, l.Usable(), o.MaxShrinkPct))
		}
	}
	key := snapshotsPrefix + snap.ID + "/sources/" + safeName(src.Name)
	if err := snap.Put(ctx, "sources/"+safeName(src.Name), res.Data); err != nil && !errors.Is(err, archive.ErrExists) {
		d.Log.Warn("could not archive source "+src.Name, "error", err.Error())
	} else {
		lg := lastGood{Name: src.Name, Key: key, Format: format, Usable: l.Usable(), Fetched: d.Clock.Now().UTC(), Validators: res.Validators}
		b, _ := json.Marshal(lg)
		if _, err := d.Store.WriteIf(ctx, ptrKey, b, prevGen); err != nil {
			d.Log.Warn("could not record the last good copy of "+src.Name, "error", err.Error())
		}
	}
	rep.Status = StatusOK
	return l
}

func loadCopy(ctx context.Context, store archive.Store, src Source, lg *lastGood) (*lists.List, error) {
	b, err := store.Read(ctx, lg.Key)
	if err != nil {
		return nil, err
	}
	return lists.Parse(src.Name, b, lg.Format, src.Options)
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
	res, err := r.Read(ctx, Source{Name: src.Name + " signature", URL: sigURL}, fetch.Validators{})
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

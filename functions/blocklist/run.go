package blocklist

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"

	"github.com/fediops/fediops/functions/blocklist/fires"
	"github.com/fediops/fediops/functions/blocklist/lists"
	"github.com/fediops/fediops/functions/blocklist/merge"
	"github.com/fediops/fediops/functions/blocklist/plan"
	"github.com/fediops/fediops/shared/archive"
	"github.com/fediops/fediops/shared/config"
	"github.com/fediops/fediops/shared/fetch"
	"github.com/fediops/fediops/shared/listsource"
	"github.com/fediops/fediops/shared/mastodon"
	"github.com/fediops/fediops/shared/run"
	"github.com/fediops/fediops/shared/secrets"
	"github.com/fediops/fediops/shared/setup"
)

// Message is what a Pub/Sub message to BlocklistSync may carry; an empty body means the
// configuration's defaults.
type Message struct {
	// DryRun, if set, overrides dry_run for every destination of this run.
	DryRun *bool `json:"dry_run,omitempty"`
	// Instances limits the sync to these destinations.
	Instances []string `json:"instances,omitempty"`
	// ApplyPlan applies a plan a guard held back (its id from the ERROR log line).
	ApplyPlan string `json:"apply_plan,omitempty"`
	// Snapshot applies the merged list a fanned-out run shared in that snapshot
	// (desired.json) instead of reading and merging the sources again.
	Snapshot string `json:"snapshot,omitempty"`
}

// RunOptions are CLI-only settings.
type RunOptions struct {
	// Rebase maps file:// URL prefixes (FediBlockHole configs name their machine's paths).
	Rebase [][2]string
	// MergeOnly stops after the merge (fediops blocklist merge).
	MergeOnly bool
	// Rollback returns the destinations' owned blocks to this snapshot instead of syncing.
	Rollback string
	// Progress, if set, hears how far the apply is (the CLI on a terminal).
	Progress Progress
}

// Report is the outcome of a run.
type Report struct {
	Merge    *MergeReport `json:"merge,omitempty"`
	Outcomes []*Outcome   `json:"destinations"`
	Run      *MergeRun    `json:"-"`
}

// reader is the Reader adapter: URLs through shared/fetch, instances through the Mastodon client.
type reader struct {
	fetcher *fetch.Fetcher
	env     *setup.Env
}

func (r reader) Read(ctx context.Context, src Source, prev *listsource.Previous) (*fetch.Result, error) {
	if src.FIRES != nil {
		return readFIRES(ctx, r.fetcher, src, prev)
	}
	if src.Instance == nil {
		var v fetch.Validators
		if prev != nil {
			v = prev.Validators
		}
		return r.fetcher.Fetch(ctx, src.URL, v)
	}
	c, err := r.env.MastodonWithToken(config.Instance{Name: src.Name, URL: src.URL}, src.Instance.Token)
	if err != nil {
		return nil, err
	}
	var data []byte
	if src.Instance.Admin {
		blocks, _, err := c.DomainBlocks(ctx)
		if err != nil {
			return nil, err
		}
		data, err = json.Marshal(blocks)
		if err != nil {
			return nil, err
		}
	} else {
		blocks, err := c.PublicDomainBlocks(ctx)
		if err != nil {
			return nil, err
		}
		if data, err = json.Marshal(blocks); err != nil {
			return nil, err
		}
	}
	return &fetch.Result{Data: data}, nil
}

// resolveToken resolves a FediBlockHole-style token: a secret reference or the token itself,
// then token_env_var, then the default <DOMAIN>_TOKEN variable. Empty if none is set.
//
// A literal token in the file is refused when deployed: every function's account can read the
// configuration object, which would undo the per-function secrets. The CLI accepts it with a
// WARNING.
func resolveToken(ctx context.Context, env *setup.Env, token, envVar, domain string) (string, error) {
	getenv := env.Getenv
	if token != "" {
		if _, err := secrets.ParseRef(token); err == nil {
			return env.Secrets.Resolve(ctx, token)
		}
		env.Redactor.Add(token)
		if env.Deployed {
			return "", run.MarkPermanent(errors.New("the token is written into the configuration file, which every function's account can read: store it in Secret Manager and use token = \"sm://…\""))
		}
		env.Log.Warn("a token is written into the configuration file; use a secret reference (sm://, env:// or file://) before deploying", "domain", domain)
		return token, nil
	}
	if envVar != "" {
		v := getenv(envVar)
		if v == "" {
			return "", run.MarkPermanent(fmt.Errorf("token_env_var %s is not set", envVar))
		}
		env.Redactor.Add(v)
		return v, nil
	}
	v := getenv(fbhTokenEnvVar(domain))
	env.Redactor.Add(v)
	return v, nil
}

// SourcesFrom turns the configuration's sources into Sources, tokens resolved.
func SourcesFrom(ctx context.Context, env *setup.Env, b *Section) ([]Source, error) {
	var out []Source
	severity := func(s string) (lists.Severity, error) {
		if s == "" {
			return lists.SeverityUnset, nil
		}
		return lists.ParseSeverity(s)
	}
	fields := func(f []string) []string {
		if f != nil {
			return f
		}
		return b.ImportFields
	}
	add := func(s ListSpec, allow bool, f *fires.Mapping) error {
		sev, err := severity(s.MaxSeverity)
		if err != nil {
			return err
		}
		out = append(out, Source{Name: s.SourceName(), URL: s.URL, Format: lists.Format(s.Format), Allowlist: allow,
			Options:   lists.Options{ImportFields: fields(s.ImportFields), MaxSeverity: sev},
			PublicKey: s.PublicKey, SignatureURL: s.SignatureURL, FIRES: f})
		return nil
	}
	if !b.NoFetchURL {
		for _, s := range b.URLSources {
			var f *fires.Mapping
			if s.Format == string(fires.Format) {
				f = &fires.Mapping{Policies: s.Policies.Map(), Labels: s.Labels}
			}
			if err := add(s.ListSpec, false, f); err != nil {
				return nil, err
			}
		}
	}
	for _, s := range b.AllowlistURLSources {
		if err := add(s, true, nil); err != nil {
			return nil, err
		}
	}
	if !b.NoFetchInstance {
		for _, s := range b.InstanceSources {
			sev, err := severity(s.MaxSeverity)
			if err != nil {
				return nil, err
			}
			tok, err := resolveToken(ctx, env, s.Token, s.TokenEnvVar, s.Domain)
			if err != nil {
				return nil, fmt.Errorf("source %s: %w", s.SourceName(), err)
			}
			scheme := s.Scheme
			if scheme == "" {
				scheme = "https"
			}
			format := lists.Format("mastodon_api_public")
			if s.Admin {
				format = "json"
			}
			out = append(out, Source{Name: s.SourceName(), URL: scheme + "://" + s.Domain, Format: format,
				Options:  lists.Options{ImportFields: fields(s.ImportFields), MaxSeverity: sev},
				Instance: &InstanceSource{Admin: s.Admin, Token: tok}})
		}
	}
	return out, nil
}

// mergeOptions returns the merge settings of the configuration.
func mergeOptions(b *Section) CollectOptions {
	o := CollectOptions{
		Merge:           merge.Options{Plan: merge.Plan(b.Mergeplan), Threshold: b.MergeThreshold, ThresholdType: merge.ThresholdType(b.MergeThresholdType)},
		MaxShrinkPct:    DefaultMaxSourceShrink,
		AllowSubdomains: true,
	}
	if b.MaxSourceShrink != nil {
		o.MaxShrinkPct = *b.MaxSourceShrink
	}
	if b.AllowlistSubdomains != nil {
		o.AllowSubdomains = *b.AllowlistSubdomains
	}
	return o
}

// newFetcher builds the fetch adapter of the configuration.
func newFetcher(env *setup.Env, b *Section, rebase [][2]string) *fetch.Fetcher {
	opts := []fetch.Option{fetch.WithHTTPClient(env.HTTPClient), fetch.WithStorage(env.StorageClient)}
	for _, r := range rebase {
		opts = append(opts, fetch.WithRebase(r[0], r[1]))
	}
	return fetch.New(b.RequestTimeout.Duration, b.MaxSourceBytes, opts...)
}

// Merged reads and merges the configured sources (the first half of every run).
func Merged(ctx context.Context, env *setup.Env, b *Section, ro RunOptions, snap *Snapshot) (*MergeRun, error) {
	srcs, err := SourcesFrom(ctx, env, b)
	if err != nil {
		if run.ClassOf(err) == run.Transient && !errors.As(err, new(*config.Error)) {
			return nil, err
		}
		return nil, run.MarkPermanent(err)
	}
	d := Deps{Store: env.Store, Clock: env.Clock, Log: env.Log}
	o := mergeOptions(b)
	o.MergeOnly = ro.MergeOnly
	return Collect(ctx, d, reader{fetcher: newFetcher(env, b, ro.Rebase), env: env}, srcs, o, snap)
}

// destinations builds the selected destinations with their clients. A destination whose
// client cannot be built (no token, an unreadable secret) carries its error and fails alone.
func destinations(ctx context.Context, env *setup.Env, b *Section, names []string, dryRun *bool) ([]Destination, error) {
	all := b.DestinationsOf(env.Config)
	var out []Destination
	for _, n := range names {
		if !slices.ContainsFunc(all, func(d EffectiveSync) bool { return d.Instance.Name == n }) {
			return nil, run.MarkPermanent(fmt.Errorf("%q is not a blocklist destination", n))
		}
	}
	for _, e := range all {
		if len(names) > 0 && !slices.Contains(names, e.Instance.Name) {
			continue
		}
		sev, err := lists.ParseSeverity(e.MaxFollowedSeverity)
		if err != nil {
			return nil, run.MarkPermanent(err)
		}
		dry := e.DryRun
		if dryRun != nil {
			dry = *dryRun
		}
		dest := Destination{
			Name: e.Instance.Name,
			Plan: plan.Options{Marker: e.Marker, Managed: e.ImportFields, AdoptOrphans: e.AdoptOrphans,
				RemoveRetracted: e.RemoveRetracted, MaxFollowedSeverity: sev},
			MaxRemovals: e.MaxRemovals, MaxChangePct: e.MaxChangePct, InitialImport: e.InitialImport,
			DryRun: dry, LeaseTTL: b.LeaseTTL.Duration,
		}
		dest.Client, dest.Err = client(ctx, env, e)
		out = append(out, dest)
	}
	return out, nil
}

// client builds a destination's client, its token resolved.
func client(ctx context.Context, env *setup.Env, e EffectiveSync) (*mastodon.Client, error) {
	if !e.FBH {
		return env.Mastodon(ctx, e.Instance)
	}
	host := strings.TrimPrefix(strings.TrimPrefix(e.Instance.URL, "https://"), "http://")
	tok, err := resolveToken(ctx, env, e.Instance.Token, e.TokenEnvVar, host)
	switch {
	case err != nil:
		return nil, fmt.Errorf("destination %s: token: %w", e.Instance.Name, err)
	case tok == "":
		return nil, run.MarkPermanent(fmt.Errorf("destination %s: no token (set token, token_env_var or %s)", e.Instance.Name, fbhTokenEnvVar(host)))
	}
	return env.MastodonWithToken(e.Instance, tok)
}

// RunConfigured runs the blocklist job of env's configuration: merge, then sync (or apply a
// held plan, or roll back) every selected destination. A failing destination does not stop
// the others; the error joins the failures worth retrying.
func RunConfigured(ctx context.Context, env *setup.Env, msg Message, ro RunOptions) (*Report, error) {
	b, err := LoadSection(env.Config)
	if err != nil {
		return &Report{}, run.MarkPermanent(err)
	}
	return RunSection(ctx, env, b, msg, ro)
}

// RunSection is RunConfigured with the section already loaded.
func RunSection(ctx context.Context, env *setup.Env, b *Section, msg Message, ro RunOptions) (*Report, error) {
	runID := setup.RunID(env.Clock.Now())
	snap := NewSnapshot(env.Store, env.Clock.Now(), runID)
	d := Deps{Store: env.Store, Clock: env.Clock, Log: env.Log, Progress: ro.Progress}
	rep := &Report{}
	switch {
	case msg.Snapshot != "" && ro.Rollback == "":
		mr, err := LoadShared(ctx, env.Store, msg.Snapshot)
		if err != nil {
			return rep, err
		}
		snap = &Snapshot{ID: msg.Snapshot, store: env.Store}
		rep.Merge, rep.Run = &mr.Report, mr
	case ro.Rollback == "":
		mr, err := Merged(ctx, env, b, ro, snap)
		if err != nil {
			return rep, err
		}
		rep.Merge, rep.Run = &mr.Report, mr
		logMerge(env.Log, mr)
		if ro.MergeOnly {
			return rep, nil
		}
	}
	dests, err := destinations(ctx, env, b, msg.Instances, msg.DryRun)
	if err != nil {
		return rep, err
	}
	var errs []error
	for _, dest := range dests {
		out, err := runDestination(ctx, env, d, dest, msg, ro, rep, snap, runID)
		if out != nil {
			rep.Outcomes = append(rep.Outcomes, out)
			logOutcome(env.Log, out, err)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if msg.ApplyPlan != "" && len(rep.Outcomes) == 0 && len(errs) == 0 {
		return rep, run.MarkPermanent(fmt.Errorf("no destination has a held plan %q", msg.ApplyPlan))
	}
	return rep, errors.Join(errs...)
}

// TopicVar names the environment variable holding the blocklist topic (projects/P/topics/T),
// where a scheduled run fans out.
const TopicVar = "FEDIOPS_BLOCKLIST_TOPIC"

// FanOut hands a scheduled run (a message naming no destination and no held plan) of a
// configuration with more than one destination to one invocation per destination: it reads
// and merges the sources once, shares the merged list in the snapshot (desired.json), and
// publishes {"instances": ["<name>"], "snapshot": "<id>"} per destination to the blocklist
// topic; each destination then syncs with its own deadline, lease and retries, from the same
// list. It reports done; it does nothing with fanout = false, for a single destination, or
// without a topic (FEDIOPS_BLOCKLIST_TOPIC unset: a WARNING, and the run stays here). A
// failed publish is returned (Pub/Sub redelivers the tick; the destinations' leases and
// plans make a message delivered twice harmless).
func FanOut(ctx context.Context, env *setup.Env, b *Section, msg Message) (bool, error) {
	dests := b.DestinationsOf(env.Config)
	if (b.Fanout != nil && !*b.Fanout) || len(msg.Instances) > 0 || msg.ApplyPlan != "" || len(dests) < 2 {
		return false, nil
	}
	topic, err := env.Topic(TopicVar)
	if err != nil {
		return false, err
	}
	if topic == "" {
		env.Log.Warn(fmt.Sprintf("[blocklist] fanout is on but %s is not set: the %d destinations are synced one after the other in this invocation", TopicVar, len(dests)))
		return false, nil
	}
	id := msg.Snapshot
	if id == "" {
		snap := NewSnapshot(env.Store, env.Clock.Now(), setup.RunID(env.Clock.Now()))
		mr, err := Merged(ctx, env, b, RunOptions{}, snap)
		if err != nil {
			return false, err
		}
		logMerge(env.Log, mr)
		if err := share(ctx, snap, mr, mergeOptions(b).AllowSubdomains); err != nil {
			return false, err
		}
		id = snap.ID
	}
	var bodies [][]byte
	var names []string
	for _, d := range dests {
		body, err := json.Marshal(Message{DryRun: msg.DryRun, Instances: []string{d.Instance.Name}, Snapshot: id})
		if err != nil {
			return false, err
		}
		bodies, names = append(bodies, body), append(names, d.Instance.Name)
	}
	if _, err := env.Publisher().Publish(ctx, topic, bodies...); err != nil {
		return false, fmt.Errorf("blocklist fan-out: %w", err)
	}
	env.Log.Info(fmt.Sprintf("blocklist fanned out: one message per destination to %s (%d destinations, snapshot %s)", topic, len(names), id),
		"instances", names, "topic", topic, "snapshot", id)
	return true, nil
}

// sharedFile is the object of a snapshot that holds the merged list a fanned-out run shares.
const sharedFile = "desired.json"

// sharedMerge is desired.json: what a destination's sync needs from the merge.
type sharedMerge struct {
	Blocks          []plan.Desired `json:"blocks"`
	Allowlist       []string       `json:"allowlist,omitempty"`
	AllowSubdomains bool           `json:"allow_subdomains"`
	Unread          []string       `json:"unread,omitempty"`
	Report          MergeReport    `json:"report"`
}

// share archives the merged list of mr in snap (create-only: a redelivered tick merges
// into a new snapshot).
func share(ctx context.Context, snap *Snapshot, mr *MergeRun, allowSubdomains bool) error {
	sm := sharedMerge{Blocks: mr.Desired.Blocks, AllowSubdomains: allowSubdomains, Report: mr.Report}
	seen := map[string]bool{}
	for _, l := range mr.Allowlists {
		for _, e := range l.Blocks {
			if !seen[e.Domain] {
				seen[e.Domain] = true
				sm.Allowlist = append(sm.Allowlist, e.Domain)
			}
		}
	}
	for name := range mr.Desired.Unread {
		sm.Unread = append(sm.Unread, name)
	}
	slices.Sort(sm.Allowlist)
	slices.Sort(sm.Unread)
	if err := snap.PutJSON(ctx, sharedFile, sm); err != nil {
		return fmt.Errorf("share the merged list in snapshot %s: %w", snap.ID, err)
	}
	return nil
}

var snapshotID = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z._-]{0,127}$`)

// LoadShared reads the merged list a fanned-out run shared in snapshot id. A snapshot that
// does not exist or shares nothing is a permanent failure; an unreadable archive is not.
func LoadShared(ctx context.Context, store archive.Store, id string) (*MergeRun, error) {
	if !snapshotID.MatchString(id) || strings.Contains(id, "..") {
		return nil, run.MarkPermanent(fmt.Errorf("%q is not a snapshot id", id))
	}
	key := snapshotsPrefix + id + "/" + sharedFile
	b, err := store.Read(ctx, key)
	if errors.Is(err, archive.ErrNotFound) {
		return nil, run.MarkPermanent(fmt.Errorf("snapshot %s has no shared merged list (%s): only a fanned-out run shares one", id, store.Location(key)))
	}
	if err != nil {
		return nil, fmt.Errorf("read the shared merged list of snapshot %s: %w", id, err)
	}
	var sm sharedMerge
	if err := json.Unmarshal(b, &sm); err != nil {
		return nil, run.MarkPermanent(fmt.Errorf("the shared merged list %s is corrupt: %w", store.Location(key), err))
	}
	allow := &lists.List{Source: "shared allowlist"}
	for _, d := range sm.Allowlist {
		allow.Blocks = append(allow.Blocks, lists.Entry{Block: lists.Block{Domain: d}})
	}
	unread := map[string]bool{}
	for _, n := range sm.Unread {
		unread[n] = true
	}
	return &MergeRun{Report: sm.Report, Desired: Desired{Blocks: sm.Blocks, Allowed: Allowlist([]*lists.List{allow}, sm.AllowSubdomains), Unread: unread}}, nil
}

func runDestination(ctx context.Context, env *setup.Env, d Deps, dest Destination, msg Message, ro RunOptions, rep *Report, snap *Snapshot, runID string) (*Outcome, error) {
	switch {
	case msg.ApplyPlan != "":
		if _, err := env.Store.Read(ctx, heldKey(dest.Name, msg.ApplyPlan)); err != nil {
			return nil, nil // the plan belongs to another destination
		}
		return ApplyHeld(ctx, d, dest, msg.ApplyPlan, &rep.Run.Desired, snap, runID)
	case ro.Rollback != "":
		return Rollback(ctx, d, dest, ro.Rollback, snap, runID)
	}
	return Sync(ctx, d, dest, rep.Run.Desired, snap, runID)
}

func logMerge(log *slog.Logger, run *MergeRun) {
	level := slog.LevelInfo
	if run.Report.Failed > 0 {
		level = slog.LevelWarn
	}
	log.Log(context.Background(), level, fmt.Sprintf("merged %d source(s) into %d entries; %d source(s) failed",
		len(run.Report.Sources), run.Report.Merged, run.Report.Failed), "snapshot", run.Report.Snapshot, "dropped", run.Report.Dropped)
}

// Summary is the one-line summary of a destination's run.
func (o *Outcome) Summary() string {
	var skipped []string
	for _, r := range o.SortedReasons() {
		skipped = append(skipped, fmt.Sprintf("%s %d", r, o.Skipped[r]))
	}
	s := fmt.Sprintf("blocklist %s: %d created, %d updated, %d removed, skipped [%s], %d failed, %d deferred to the next run",
		o.Instance, o.Created, o.Updated, o.Removed, strings.Join(skipped, ", "), o.Failed, o.Deferred)
	if o.DryRun {
		s = "dry run (nothing changed): " + s
	}
	if o.Held != "" {
		s += "; plan " + o.Held + " held: " + o.HeldReason
	}
	if o.Stopped != "" {
		s += "; stopped: " + o.Stopped.Explain()
	}
	if o.Error != "" {
		s += "; failed: " + o.Error
	}
	if len(o.FollowProtected) > 0 {
		s += "; limited because of follows: " + strings.Join(o.FollowProtected, ", ")
	}
	return s
}

func logOutcome(log *slog.Logger, o *Outcome, err error) {
	level := slog.LevelInfo
	if o.Failed > 0 || err != nil || o.Held != "" || o.Error != "" || o.Stopped == run.LeaseLost {
		level = slog.LevelError
	}
	log.Log(context.Background(), level, o.Summary(), "instance", o.Instance, "created", o.Created, "updated", o.Updated,
		"removed", o.Removed, "skipped", o.Skipped, "failed", o.Failed, "deferred", o.Deferred, "snapshot", o.Snapshot,
		"held_plan", o.Held, "stopped", string(o.Stopped), "warnings", o.Warnings)
}

package blocklist

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/fediops/fediops/functions/blocklist/lists"
	"github.com/fediops/fediops/functions/blocklist/merge"
	"github.com/fediops/fediops/functions/blocklist/plan"
	"github.com/fediops/fediops/shared/config"
	"github.com/fediops/fediops/shared/fetch"
	"github.com/fediops/fediops/shared/mastodon"
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
}

// RunOptions are CLI-only settings.
type RunOptions struct {
	// Rebase maps file:// URL prefixes (FediBlockHole configs name their machine's paths).
	Rebase [][2]string
	// MergeOnly stops after the merge (fediops blocklist merge).
	MergeOnly bool
	// Rollback returns the destinations' owned blocks to this snapshot instead of syncing.
	Rollback string
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

func (r reader) Read(ctx context.Context, src Source, v fetch.Validators) (*fetch.Result, error) {
	if src.Instance == nil {
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
func resolveToken(ctx context.Context, env *setup.Env, token, envVar, domain string) (string, error) {
	getenv := env.Getenv
	if token != "" {
		if _, err := secrets.ParseRef(token); err == nil {
			return env.Secrets.Resolve(ctx, token)
		}
		env.Redactor.Add(token)
		return token, nil
	}
	if envVar != "" {
		v := getenv(envVar)
		if v == "" {
			return "", fmt.Errorf("token_env_var %s is not set", envVar)
		}
		env.Redactor.Add(v)
		return v, nil
	}
	v := getenv(config.FBHTokenEnvVar(domain))
	env.Redactor.Add(v)
	return v, nil
}

// SourcesFrom turns the configuration's sources into Sources, tokens resolved.
func SourcesFrom(ctx context.Context, env *setup.Env) ([]Source, error) {
	b := env.Config.Blocklist
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
	add := func(s config.URLSource, allow bool) error {
		sev, err := severity(s.MaxSeverity)
		if err != nil {
			return err
		}
		out = append(out, Source{Name: s.SourceName(), URL: s.URL, Format: lists.Format(s.Format), Allowlist: allow,
			Options:   lists.Options{ImportFields: fields(s.ImportFields), MaxSeverity: sev},
			PublicKey: s.PublicKey, SignatureURL: s.SignatureURL})
		return nil
	}
	if !b.NoFetchURL {
		for _, s := range b.URLSources {
			if err := add(s, false); err != nil {
				return nil, err
			}
		}
	}
	for _, s := range b.AllowlistURLSources {
		if err := add(s, true); err != nil {
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

// MergeOptions returns the merge settings of the configuration.
func MergeOptions(b config.Blocklist) CollectOptions {
	o := CollectOptions{
		Merge:           merge.Options{Plan: merge.Plan(b.Mergeplan), Threshold: b.MergeThreshold, ThresholdType: merge.ThresholdType(b.MergeThresholdType)},
		MaxShrinkPct:    config.DefaultMaxSourceShrink,
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

// NewFetcher builds the fetch adapter of the configuration.
func NewFetcher(env *setup.Env, rebase [][2]string) *fetch.Fetcher {
	opts := []fetch.Option{fetch.WithHTTPClient(env.HTTPClient), fetch.WithStorage(env.StorageClient)}
	for _, r := range rebase {
		opts = append(opts, fetch.WithRebase(r[0], r[1]))
	}
	b := env.Config.Blocklist
	return fetch.New(b.RequestTimeout.Duration, b.MaxSourceBytes, opts...)
}

// Merged reads and merges the configured sources (the first half of every run).
func Merged(ctx context.Context, env *setup.Env, ro RunOptions, snap *Snapshot) (*MergeRun, error) {
	srcs, err := SourcesFrom(ctx, env)
	if err != nil {
		return nil, setup.Permanent(err)
	}
	d := Deps{Store: env.Store, Clock: env.Clock, Log: env.Log}
	return Collect(ctx, d, reader{fetcher: NewFetcher(env, ro.Rebase), env: env}, srcs, MergeOptions(env.Config.Blocklist), snap)
}

// destinations builds the selected destinations with their clients.
func destinations(ctx context.Context, env *setup.Env, names []string, dryRun *bool) ([]Destination, error) {
	all := env.Config.BlocklistDestinations()
	var out []Destination
	for _, n := range names {
		if !slices.ContainsFunc(all, func(d config.EffectiveSync) bool { return d.Instance.Name == n }) {
			return nil, setup.Permanent(fmt.Errorf("%q is not a blocklist destination", n))
		}
	}
	for _, e := range all {
		if len(names) > 0 && !slices.Contains(names, e.Instance.Name) {
			continue
		}
		var client *mastodon.Client
		var err error
		if e.FBH {
			tok, terr := resolveToken(ctx, env, e.Instance.Token, e.TokenEnvVar, strings.TrimPrefix(strings.TrimPrefix(e.Instance.URL, "https://"), "http://"))
			if terr != nil || tok == "" {
				return nil, setup.Permanent(fmt.Errorf("destination %s: no token (%v)", e.Instance.Name, terr))
			}
			client, err = env.MastodonWithToken(e.Instance, tok)
		} else {
			client, err = env.Mastodon(ctx, e.Instance)
		}
		if err != nil {
			return nil, setup.Permanent(err)
		}
		sev, err := lists.ParseSeverity(e.MaxFollowedSeverity)
		if err != nil {
			return nil, setup.Permanent(err)
		}
		dry := e.DryRun
		if dryRun != nil {
			dry = *dryRun
		}
		out = append(out, Destination{
			Name: e.Instance.Name, Client: client,
			Plan: plan.Options{Marker: e.Marker, Managed: e.ImportFields, AdoptOrphans: e.AdoptOrphans,
				RemoveRetracted: e.RemoveRetracted, MaxFollowedSeverity: sev},
			MaxRemovals: e.MaxRemovals, MaxChangePct: e.MaxChangePct, InitialImport: e.InitialImport,
			DryRun: dry, LeaseTTL: env.Config.Blocklist.LeaseTTL.Duration,
		})
	}
	return out, nil
}

// RunConfigured runs the blocklist job of env's configuration: merge, then sync (or apply a
// held plan, or roll back) every selected destination. A failing destination does not stop
// the others; the error joins the failures worth retrying.
func RunConfigured(ctx context.Context, env *setup.Env, msg Message, ro RunOptions) (*Report, error) {
	runID := setup.RunID(env.Clock.Now())
	snap := NewSnapshot(env.Store, env.Clock.Now(), runID)
	d := Deps{Store: env.Store, Clock: env.Clock, Log: env.Log}
	rep := &Report{}
	if msg.ApplyPlan == "" && ro.Rollback == "" {
		run, err := Merged(ctx, env, ro, snap)
		if err != nil {
			return rep, err
		}
		rep.Merge, rep.Run = &run.Report, run
		logMerge(env.Log, run)
		if ro.MergeOnly {
			return rep, nil
		}
	}
	dests, err := destinations(ctx, env, msg.Instances, msg.DryRun)
	if err != nil {
		return rep, err
	}
	var errs []error
	for _, dest := range dests {
		var out *Outcome
		var err error
		switch {
		case msg.ApplyPlan != "":
			if _, rerr := env.Store.Read(ctx, pendingKey(dest.Name, msg.ApplyPlan)); rerr != nil {
				continue // the plan belongs to another destination
			}
			out, err = ApplyHeld(ctx, d, dest, msg.ApplyPlan, snap, runID)
		case ro.Rollback != "":
			out, err = Rollback(ctx, d, dest, ro.Rollback, snap, runID)
		default:
			out, err = Sync(ctx, d, dest, rep.Run.Desired, snap, runID)
		}
		if out != nil {
			rep.Outcomes = append(rep.Outcomes, out)
			logOutcome(env.Log, out, err)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if msg.ApplyPlan != "" && len(rep.Outcomes) == 0 && len(errs) == 0 {
		return rep, setup.Permanent(fmt.Errorf("no destination has a held plan %q", msg.ApplyPlan))
	}
	return rep, errors.Join(errs...)
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
		s += "; stopped: " + o.Stopped
	}
	if len(o.FollowProtected) > 0 {
		s += "; limited because of follows: " + strings.Join(o.FollowProtected, ", ")
	}
	return s
}

func logOutcome(log *slog.Logger, o *Outcome, err error) {
	level := slog.LevelInfo
	if o.Failed > 0 || err != nil || o.Held != "" {
		level = slog.LevelError
	}
	log.Log(context.Background(), level, o.Summary(), "instance", o.Instance, "created", o.Created, "updated", o.Updated,
		"removed", o.Removed, "skipped", o.Skipped, "failed", o.Failed, "deferred", o.Deferred, "snapshot", o.Snapshot,
		"held_plan", o.Held, "warnings", o.Warnings)
}

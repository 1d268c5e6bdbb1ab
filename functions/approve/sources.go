package approve

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/fediops/fediops/shared/archive"
	"github.com/fediops/fediops/shared/clock"
	"github.com/fediops/fediops/shared/fetch"
	"github.com/fediops/fediops/shared/listsource"
	"github.com/fediops/fediops/shared/logging"
	"github.com/fediops/fediops/shared/setup"
)

// ListSource is a published domain list: an entry of approve_domain_sources or
// reject_domain_sources, or the list a preset stands for.
type ListSource struct {
	Decision Decision // Approve or Reject
	Name     string
	URL      string // https://, file://, gs:// (http:// on loopback)
	Format   string // "" detects
	Preset   bool   // it stands for a reject preset (disposable)
}

// List is the name a list's entries carry in the audit trail:
// "reject_domain_sources disposable".
func (s ListSource) List() string {
	key := "approve_domain_sources"
	if s.Decision == Reject {
		key = "reject_domain_sources"
	}
	if s.Preset {
		key = strings.Replace(key, "domain_sources", "presets", 1)
	}
	return key + " " + s.Name
}

// ListReader reads a list's bytes; *fetch.Fetcher implements it (timeouts, size limit,
// conditional GET with the last good copy's validators, file:// and gs://).
type ListReader interface {
	Fetch(ctx context.Context, rawURL string, v fetch.Validators) (*fetch.Result, error)
}

// ListsPrefix is where triage archives its list sources (raw bytes by content, and each
// source's last good copy): triage-lists/objects/<sha256>, triage-lists/sources/<name>.json.
const ListsPrefix = "triage-lists"

// DefaultMaxListShrink is the shrink, in percent of the last good copy's usable entries, beyond
// which a fresh list is refused and the last good copy kept.
const DefaultMaxListShrink = 50.0

// ListReport says what happened to one list source.
type ListReport struct {
	List     string         `json:"list"`
	Location string         `json:"location"`
	Status   string         `json:"status"` // listsource statuses: ok, not_modified, failed_using_last_good_copy, failed_left_out
	Error    string         `json:"error,omitempty"`
	Format   string         `json:"format,omitempty"`
	Rows     int            `json:"rows"`
	Used     int            `json:"used"`
	Skipped  map[string]int `json:"skipped,omitempty"`
	Copy     string         `json:"copy,omitempty"` // the archived copy used when it is not fresh
}

// Lists are the list sources of a run, read: their entries and the lists that could not be
// read at all.
type Lists struct {
	Sets    []RuleSet
	Missing []MissingList
	Reports []ListReport
}

// ListDeps are what reading lists needs.
type ListDeps struct {
	Store  archive.Store
	Clock  clock.Clock
	Log    *slog.Logger
	Reader ListReader
}

// CollectLists reads every list source through the shared source machinery
// (shared/listsource): fresh when it can, checked (nothing usable, or a shrink of more than
// maxShrinkPct against the last good copy, refuses the fresh copy), archived once by content,
// else its last good copy. A list with neither is missing: its entries are unknown, and
// Rules hold every decision it could have overturned.
func CollectLists(ctx context.Context, d ListDeps, srcs []ListSource, maxShrinkPct float64) *Lists {
	cache := &listsource.Cache{Store: d.Store, Prefix: ListsPrefix, Clock: d.Clock}
	out := &Lists{}
	for _, src := range srcs {
		rep, list := collectList(ctx, cache, d.Reader, src, maxShrinkPct)
		out.Reports = append(out.Reports, rep)
		switch rep.Status {
		case string(listsource.LeftOut):
			out.Missing = append(out.Missing, MissingList{Decision: src.Decision, List: src.List()})
			what := "approvals"
			if src.Decision == Approve {
				what = "rejections"
			}
			d.Log.Error(fmt.Sprintf("%s could not be read and has no last good copy: %s; %s it could overturn are held until it can be read", src.List(), rep.Error, what),
				"list", src.List(), "location", rep.Location, "status", rep.Status)
		case string(listsource.Fallback):
			d.Log.Warn(fmt.Sprintf("%s could not be read (%s); using its last good copy %s", src.List(), rep.Error, rep.Copy),
				"list", src.List(), "location", rep.Location, "status", rep.Status)
		}
		if list != nil {
			out.Sets = append(out.Sets, RuleSet{Decision: src.Decision, List: src.List(), Domains: list.Domains})
		}
	}
	return out
}

func collectList(ctx context.Context, cache *listsource.Cache, r ListReader, src ListSource, maxShrinkPct float64) (ListReport, *DomainList) {
	rep := ListReport{List: src.List(), Location: logging.SanitizeURL(src.URL)}
	res := listsource.Get(ctx, cache, listsource.Source[*DomainList]{
		Name: src.List(),
		Read: func(ctx context.Context, prev *listsource.Previous) (*fetch.Result, error) {
			var v fetch.Validators
			if prev != nil {
				v = prev.Validators
			}
			return r.Fetch(ctx, src.URL, v)
		},
		Parse: func(data []byte, from *listsource.Copy) (*DomainList, listsource.Meta, error) {
			format := src.Format
			if from != nil && from.Format != "" {
				format = from.Format // as it was read when it was good
			}
			l, err := ParseDomainList(data, format, src.URL)
			if err != nil {
				return nil, listsource.Meta{}, err
			}
			return l, listsource.Meta{Format: l.Format, Usable: len(l.Domains)}, nil
		},
		Check: func(_ context.Context, _ []byte, l *DomainList, m listsource.Meta, prev *listsource.Copy) error {
			if m.Usable == 0 {
				return fmt.Errorf("zero usable domains (of %d rows)", l.Rows)
			}
			if prev != nil && maxShrinkPct > 0 && prev.Usable > 0 {
				if shrink := 100 * float64(prev.Usable-m.Usable) / float64(prev.Usable); shrink > maxShrinkPct {
					return fmt.Errorf("shrank by %.0f%% (from %d to %d domains; max_source_shrink = %g)", shrink, prev.Usable, m.Usable, maxShrinkPct)
				}
			}
			return nil
		},
	})
	rep.Status = string(res.Status)
	if res.Err != nil {
		rep.Error = logging.SanitizeText(res.Err.Error())
	}
	if res.Copy != nil && res.Status != listsource.OK {
		rep.Copy = cache.Store.Location(res.Copy.Key)
	}
	if l := res.Value; l != nil {
		rep.Format, rep.Rows, rep.Used = l.Format, l.Rows, len(l.Domains)
		if len(l.Skipped) > 0 {
			rep.Skipped = l.Skipped
		}
	}
	return rep, res.Value
}

// ReadLists reads the configured list sources (nil when there are none) with the fetch
// adapter of the environment. The error is a configuration problem.
func ReadLists(ctx context.Context, env *setup.Env, sec *Section) (*Lists, error) {
	srcs, err := sec.Sources()
	if err != nil || len(srcs) == 0 {
		return nil, err
	}
	f := fetch.New(sec.RequestTimeout.Duration, sec.MaxSourceBytes, fetch.WithHTTPClient(env.HTTPClient), fetch.WithStorage(env.StorageClient))
	return CollectLists(ctx, ListDeps{Store: env.Store, Clock: env.Clock, Log: env.Log, Reader: f}, srcs, sec.MaxShrink()), nil
}

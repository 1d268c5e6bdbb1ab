package fires

import (
	"fmt"
	"slices"
	"strings"

	"github.com/fediops/fediops/functions/blocklist/lists"
)

// Format is the list format of a FIRES source.
const Format lists.Format = "fires"

// Actions a recommendedPolicy maps to: a severity, an allowlist entry, or nothing.
const (
	ActionSuspend = "suspend"
	ActionSilence = "silence"
	ActionNoop    = "noop"
	ActionAllow   = "allow"
	ActionIgnore  = "ignore"
)

// Actions lists the actions a policy may map to.
var Actions = []string{ActionSuspend, ActionSilence, ActionNoop, ActionAllow, ActionIgnore}

// Policies lists the recommendedPolicy values the protocol defines.
var Policies = []string{"drop", "reject", "filter", "accept"}

// DefaultPolicies maps each recommendedPolicy to an action: drop and reject suspend (the
// protocol equates drop with Mastodon's suspend, and reject refuses federation), filter
// silences (Mastodon's "limit": the filters' intent; the reference server's own CSV export
// uses noop), accept is an allowlist entry.
func DefaultPolicies() map[string]string {
	return map[string]string{"drop": ActionSuspend, "reject": ActionSuspend, "filter": ActionSilence, "accept": ActionAllow}
}

// Mapping says how a dataset's entities become list entries.
type Mapping struct {
	// Policies maps recommendedPolicy values to actions (DefaultPolicies for those not set).
	Policies map[string]string
	// Labels, if set, keeps only the entities carrying one of these labels, each given by
	// name, URL or id (case-insensitive).
	Labels []string
}

// Reasons an entity is not an entry (counted in the source's report).
const (
	ReasonActor         = "fires_actor"          // entityKind actor (or another kind than domain)
	ReasonAdvisory      = "fires_advisory"       // an Advisory: informational only
	ReasonNoPolicy      = "fires_no_policy"      // a Recommendation without a policy: informational only
	ReasonLabelFiltered = "fires_label_filtered" // none of the configured labels
	ReasonPolicyIgnored = "fires_policy_ignored" // the policy maps to "ignore"
	ReasonUnknownPolicy = "fires_unknown_policy" // a policy the protocol does not define
	filterRejectMedia   = "reject-media"
	filterRejectReports = "reject-reports"
)

// Lists turns a state into the source's blocklist (entities whose policy maps to a
// severity) and allowlist (those mapping to "allow"). Label names are kept as the public
// comment; the filters reject-media and reject-reports set those flags. Each list's Line is
// the entity's position in the state.
func Lists(source string, st *State, m Mapping, opts lists.Options) (blocks, allow *lists.List) {
	policies := DefaultPolicies()
	for k, v := range m.Policies {
		policies[k] = v
	}
	var blockRows, allowRows []lists.Row
	for i, en := range st.Entities {
		row := lists.Row{Line: i + 1, Domain: en.EntityKey}
		names := labelNames(st, en.Labels)
		skip := func(reason, detail string) { row.Skip, row.Detail = reason, detail }
		switch {
		case en.EntityKind != "domain":
			skip(ReasonActor, en.EntityKind+" "+en.EntityKey)
		case en.Type == Advisory:
			skip(ReasonAdvisory, strings.Join(names, ", "))
		case en.Type != Recommendation:
			skip(ReasonUnknownPolicy, "change type "+en.Type)
		case en.RecommendedPolicy == "":
			skip(ReasonNoPolicy, "")
		case len(m.Labels) > 0 && !anyLabel(st, en.Labels, m.Labels):
			skip(ReasonLabelFiltered, strings.Join(names, ", "))
		}
		if row.Skip != "" {
			blockRows = append(blockRows, row)
			continue
		}
		action, ok := policies[en.RecommendedPolicy]
		switch {
		case !ok:
			row.Skip, row.Detail = ReasonUnknownPolicy, en.RecommendedPolicy
			blockRows = append(blockRows, row)
			continue
		case action == ActionIgnore:
			row.Skip, row.Detail = ReasonPolicyIgnored, en.RecommendedPolicy
			blockRows = append(blockRows, row)
			continue
		case action == ActionAllow:
			allowRows = append(allowRows, row)
			continue
		}
		sev, err := lists.ParseSeverity(action)
		if err != nil { // mappings are validated with the configuration
			row.Skip, row.Detail = ReasonUnknownPolicy, fmt.Sprintf("%s maps to %q", en.RecommendedPolicy, action)
			blockRows = append(blockRows, row)
			continue
		}
		row.Severity = sev
		row.PublicComment = strings.Join(names, ", ")
		for _, f := range en.RecommendedFilters {
			switch filterName(f) {
			case filterRejectMedia:
				row.RejectMedia = true
			case filterRejectReports:
				row.RejectReports = true
			}
		}
		blockRows = append(blockRows, row)
	}
	blocks = lists.FromRows(source, Format, blockRows, opts)
	allow = lists.FromRows(source, Format, allowRows, lists.Options{})
	return blocks, allow
}

// labelNames returns the names of labels, in their order.
func labelNames(st *State, labels []string) []string {
	var out []string
	for _, l := range labels {
		if n := st.Labels[l]; n != "" {
			out = append(out, n)
		} else {
			out = append(out, l[strings.LastIndexByte(l, '/')+1:])
		}
	}
	return out
}

// anyLabel reports whether one of labels is wanted (by name, URL or id).
func anyLabel(st *State, labels, wanted []string) bool {
	for _, l := range labels {
		id := l[strings.LastIndexByte(l, '/')+1:]
		for _, w := range wanted {
			if strings.EqualFold(w, l) || strings.EqualFold(w, id) || strings.EqualFold(w, st.Labels[l]) {
				return true
			}
		}
	}
	return false
}

// filterName reduces a filter (a name, or an IRI ending in one) to its name, lower case with
// dashes: "https://fires.fedimod.org/filters/reject_media" → "reject-media".
func filterName(f string) string {
	f = f[strings.LastIndexAny(f, "/#:")+1:]
	return strings.ReplaceAll(strings.ToLower(f), "_", "-")
}

// ValidAction reports whether a is an action a policy may map to.
func ValidAction(a string) bool { return slices.Contains(Actions, a) }

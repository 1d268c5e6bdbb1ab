package infra

// The ordering rules of a first `terraform apply` on an empty project, where the APIs are
// enabled by the same apply that uses them:
//
//   - every Google resource and data source depends, directly or through other resources,
//     data sources or locals, on the google_project_service that enables its API
//     (TestResourcesWaitForTheirAPI);
//   - no alert policy is created right after a log-based metric it reads: Cloud Monitoring
//     answers 404 for a metric Logging created minutes ago (hashicorp/terraform-provider-google
//     #11102), so a time_sleep of at least metricVisibleAfter sits between them
//     (TestAlertPoliciesWaitForTheirMetrics).
//
// The dependencies are Terraform's: every reference in a block (attributes, nested blocks,
// depends_on) and, through locals, the references of those locals.

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// metricVisibleAfter is how long Cloud Monitoring may take to know a new log-based metric
// ("it could take up to 10 minutes to become available", the 404 of alertPolicies.create).
const metricVisibleAfter = 10 * time.Minute

// apiOf maps resource type prefixes to the API that serves them; the longest prefix wins.
var apiOf = map[string]string{
	"google_artifact_registry_":      "artifactregistry.googleapis.com",
	"google_cloud_run_":              "run.googleapis.com",
	"google_cloud_scheduler_":        "cloudscheduler.googleapis.com",
	"google_cloudfunctions2_":        "cloudfunctions.googleapis.com",
	"google_logging_":                "logging.googleapis.com",
	"google_monitoring_":             "monitoring.googleapis.com",
	"google_project":                 "cloudresourcemanager.googleapis.com",
	"google_project_iam_custom_role": "iam.googleapis.com",
	"google_pubsub_":                 "pubsub.googleapis.com",
	"google_secret_manager_":         "secretmanager.googleapis.com",
	"google_service_account":         "iam.googleapis.com",
	"google_storage_":                "storage.googleapis.com",
}

// neededAPI returns the API a resource or data source type needs.
func neededAPI(typ string) (string, bool) {
	best := ""
	for prefix := range apiOf {
		if strings.HasPrefix(typ, prefix) && len(prefix) > len(best) {
			best = prefix
		}
	}
	return apiOf[best], best != ""
}

// graph holds the direct dependencies of every resource ("type.name"), data source
// ("data.type.name") and local ("local.name") of a module.
type graph map[string][]string

func dependencies(m *module) graph {
	g := graph{}
	for key, b := range m.resources {
		g[key] = references(b.Body)
	}
	for key, b := range m.data {
		g["data."+key] = references(b.Body)
	}
	for name, a := range m.locals {
		g["local."+name] = referencesOf(a.Expr)
	}
	return g
}

// references returns the nodes that the expressions of body (nested blocks included) refer to.
func references(body *hclsyntax.Body) []string {
	seen := map[string]bool{}
	_ = hclsyntax.VisitAll(body, func(n hclsyntax.Node) hcl.Diagnostics {
		if e, ok := n.(hclsyntax.Expression); ok {
			for _, r := range referencesOf(e) {
				seen[r] = true
			}
		}
		return nil
	})
	out := make([]string, 0, len(seen))
	for r := range seen {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

func referencesOf(e hcl.Expression) []string {
	var out []string
	for _, tr := range e.Variables() {
		names := attrNames(tr)
		switch root := tr.RootName(); {
		case root == "local" && len(names) >= 1:
			out = append(out, "local."+names[0])
		case root == "data" && len(names) >= 2:
			out = append(out, "data."+names[0]+"."+names[1])
		case root == "var", root == "each", root == "count", root == "path", root == "self", root == "terraform":
		case len(names) >= 1:
			out = append(out, root+"."+names[0])
		}
	}
	return out
}

// attrNames returns the attribute names following the root of tr, up to the first index.
func attrNames(tr hcl.Traversal) []string {
	var out []string
	for _, step := range tr[1:] {
		a, ok := step.(hcl.TraverseAttr)
		if !ok {
			break
		}
		out = append(out, a.Name)
	}
	return out
}

// reaches reports whether from depends on to, directly or transitively.
func (g graph) reaches(from, to string) bool {
	seen := map[string]bool{}
	stack := []string{from}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, d := range g[n] {
			if d == to {
				return true
			}
			if !seen[d] {
				seen[d] = true
				stack = append(stack, d)
			}
		}
	}
	return false
}

// reachable returns every node from depends on, sorted.
func (g graph) reachable(from string) []string {
	seen := map[string]bool{}
	stack := []string{from}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, d := range g[n] {
			if !seen[d] {
				seen[d] = true
				stack = append(stack, d)
			}
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// apiOrderProblems lists the Google resources and data sources of m that do not wait for the
// enablement of their API.
func apiOrderProblems(m *module) []string {
	e := newEvaluator(m, symbolicVar)
	g := dependencies(m)
	// API => the google_project_service resources that enable it.
	enablers := map[string][]string{}
	for _, addr := range m.resourcesOfType("google_project_service") {
		for _, in := range e.instances[addr] {
			api := in.key
			if in.key == "" {
				api, _ = e.str(e.ctx, attr(m.resources[addr], "service").Expr)
			}
			enablers[api] = append(enablers[api], addr)
		}
	}
	var nodes []string
	for key := range m.resources {
		nodes = append(nodes, key)
	}
	for key := range m.data {
		nodes = append(nodes, "data."+key)
	}
	sort.Strings(nodes)
	var problems []string
	for _, node := range nodes {
		typ, _, _ := strings.Cut(strings.TrimPrefix(node, "data."), ".")
		if typ == "google_project_service" || !strings.HasPrefix(typ, "google") {
			continue
		}
		api, ok := neededAPI(typ)
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: which API serves %s? add it to apiOf", node, typ))
			continue
		}
		if len(enablers[api]) == 0 {
			problems = append(problems, fmt.Sprintf("%s needs %s, which no google_project_service enables", node, api))
			continue
		}
		if !slices.ContainsFunc(enablers[api], func(s string) bool { return g.reaches(node, s) }) {
			problems = append(problems, fmt.Sprintf("%s needs %s but does not depend on %s (add depends_on): on an empty project it races the API's enablement", node, api, strings.Join(enablers[api], " or ")))
		}
	}
	return problems
}

// metricWaitProblems lists the alert policies of m that could be created right after a
// log-based metric they depend on.
func metricWaitProblems(m *module) []string {
	g := dependencies(m)
	var problems []string
	for _, policy := range m.resourcesOfType("google_monitoring_alert_policy") {
		deps := g.reachable(policy)
		for _, metric := range deps {
			if !strings.HasPrefix(metric, "google_logging_metric.") {
				continue
			}
			var waits []string
			for _, sleep := range deps {
				if strings.HasPrefix(sleep, "time_sleep.") && g.reaches(sleep, metric) {
					waits = append(waits, sleep)
				}
			}
			if len(waits) == 0 {
				problems = append(problems, fmt.Sprintf("%s is created right after %s: Cloud Monitoring answers 404 for a new log-based metric for up to %s; put a time_sleep between them", policy, metric, metricVisibleAfter))
				continue
			}
			longest := time.Duration(0)
			for _, w := range waits {
				a := attr(m.resources[w], "create_duration")
				if a == nil {
					continue
				}
				v, diags := a.Expr.Value(nil)
				if diags.HasErrors() || v.Type() != cty.String || v.IsNull() {
					continue
				}
				if d, err := time.ParseDuration(v.AsString()); err == nil && d > longest {
					longest = d
				}
			}
			if longest < metricVisibleAfter {
				problems = append(problems, fmt.Sprintf("%s waits %s after %s (%s); Cloud Monitoring may take %s to know a new metric", policy, longest, metric, strings.Join(waits, ", "), metricVisibleAfter))
			}
		}
	}
	return problems
}

func TestResourcesWaitForTheirAPI(t *testing.T) {
	for _, p := range apiOrderProblems(loadModule(t)) {
		t.Error(p)
	}
}

func TestAlertPoliciesWaitForTheirMetrics(t *testing.T) {
	m := loadModule(t)
	if len(m.resourcesOfType("google_monitoring_alert_policy")) == 0 {
		t.Fatal("no google_monitoring_alert_policy: the ERROR alert is gone")
	}
	for _, p := range metricWaitProblems(m) {
		t.Error(p)
	}
}

// TestOrderingRulesCatchMistakes runs both rules on small modules with the mistakes they
// exist for, and on their corrected versions.
func TestOrderingRulesCatchMistakes(t *testing.T) {
	const apis = `
locals { apis = ["iam.googleapis.com", "logging.googleapis.com", "monitoring.googleapis.com"] }
resource "google_project_service" "this" {
  for_each = toset(local.apis)
  service  = each.key
}
`
	const metric = `
resource "google_logging_metric" "m" {
  name       = "m"
  depends_on = [google_project_service.this]
}
`
	tests := []struct {
		name  string
		src   string
		rule  func(*module) []string
		wants []string // substrings, one per expected problem
	}{
		{"custom role without depends_on", apis + `
resource "google_project_iam_custom_role" "r" { role_id = "r" }`,
			apiOrderProblems, []string{"google_project_iam_custom_role.r needs iam.googleapis.com but does not depend on google_project_service.this"}},
		{"custom role with depends_on", apis + `
resource "google_project_iam_custom_role" "r" {
  role_id    = "r"
  depends_on = [google_project_service.this]
}`, apiOrderProblems, nil},
		{"dependency through a resource and a local", apis + `
resource "google_service_account" "sa" { depends_on = [google_project_service.this] }
locals { member = google_service_account.sa.member }
resource "google_project_iam_custom_role" "r" { description = local.member }`,
			apiOrderProblems, nil},
		{"API not enabled at all", apis + `
resource "google_pubsub_topic" "t" { depends_on = [google_project_service.this] }`,
			apiOrderProblems, []string{"google_pubsub_topic.t needs pubsub.googleapis.com, which no google_project_service enables"}},
		{"unknown resource type", apis + `
resource "google_compute_network" "n" { depends_on = [google_project_service.this] }`,
			apiOrderProblems, []string{"which API serves google_compute_network"}},
		{"policy right after its metric", apis + metric + `
resource "google_monitoring_alert_policy" "p" { filter = google_logging_metric.m.name }`,
			metricWaitProblems, []string{"google_monitoring_alert_policy.p is created right after google_logging_metric.m"}},
		{"policy after a short wait", apis + metric + `
resource "time_sleep" "w" {
  create_duration = "30s"
  triggers        = { m = google_logging_metric.m.name }
}
resource "google_monitoring_alert_policy" "p" { filter = time_sleep.w.triggers["m"] }`,
			metricWaitProblems, []string{"waits 30s after google_logging_metric.m"}},
		{"policy after a wait that is not on its metric", apis + metric + `
resource "time_sleep" "w" { create_duration = "600s" }
resource "google_monitoring_alert_policy" "p" {
  filter     = google_logging_metric.m.name
  depends_on = [time_sleep.w]
}`, metricWaitProblems, []string{"is created right after google_logging_metric.m"}},
		{"policy after a long enough wait", apis + metric + `
resource "time_sleep" "w" {
  create_duration = "10m"
  depends_on      = [google_logging_metric.m]
}
resource "google_monitoring_alert_policy" "p" {
  filter     = google_logging_metric.m.name
  depends_on = [time_sleep.w]
}`, metricWaitProblems, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(tt.src), 0o644); err != nil {
				t.Fatal(err)
			}
			m, err := parseModule(dir)
			if err != nil {
				t.Fatal(err)
			}
			got := tt.rule(m)
			if len(got) != len(tt.wants) {
				t.Fatalf("got %d problems, want %d:\n  %s", len(got), len(tt.wants), strings.Join(got, "\n  "))
			}
			for i, want := range tt.wants {
				if !strings.Contains(got[i], want) {
					t.Errorf("problem %q does not say %q", got[i], want)
				}
			}
		})
	}
}

package infra

// The gcloud check of what fediops documents: every gcloud command in README.md, docs/*.md,
// infra/README.md, the comments and strings (descriptions) of infra/*.tf and
// terraform.tfvars.example, and cloudbuild.yaml (its deploy steps and comments) parses with
// the installed Google Cloud CLI (shared/testsupport/gcloudcheck). Commands in code blocks,
// commented examples and deploy steps are parsed whole; gcloud named in prose must name an
// existing command and flags.

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/fediops/fediops/shared/testsupport/gcloudcheck"
)

// docEnv is the shell of an admin following docs/deployment.md with the example values:
// its variables, and what `terraform -chdir=infra output -raw NAME` prints for every output
// Terraform can compute from the variables' defaults.
func docEnv(t *testing.T) gcloudcheck.Env {
	t.Helper()
	m := loadModule(t)
	e := newEvaluator(m, defaultsVar(map[string]cty.Value{
		"project_id":            cty.StringVal(gcloudcheck.Project),
		"notification_channels": cty.ListVal([]cty.Value{cty.StringVal("projects/" + gcloudcheck.Project + "/notificationChannels/1")}),
	}))
	outputs := map[string]string{}
	for name, b := range m.outputs {
		if s, ok := e.str(e.ctx, attr(b, "value").Expr); ok {
			outputs["terraform -chdir=infra output -raw "+name] = s
		}
	}
	return gcloudcheck.Env{
		Vars: map[string]string{
			"PROJECT":        gcloudcheck.Project,
			"REGION":         "europe-west1",
			"TOKEN":          "token-from-the-server",
			"PROJECT_NUMBER": "123456789012",
		},
		Outputs: outputs,
	}
}

// documentedLines extracts the gcloud commands of every documented source, by file.
func documentedLines(t *testing.T) map[string][]gcloudcheck.Line {
	t.Helper()
	env := docEnv(t)
	byFile := map[string][]gcloudcheck.Line{}
	add := func(name string, lines []gcloudcheck.Line, err error) {
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		byFile[name] = append(byFile[name], lines...)
	}

	docs, err := filepath.Glob("../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range append([]string{"../README.md", "README.md"}, docs...) {
		lines, err := gcloudcheck.FromMarkdown(name, readFile(t, name), env)
		add(name, lines, err)
	}

	tfs, err := filepath.Glob("*.tf")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range append(tfs, "terraform.tfvars.example") {
		src := readFile(t, name)
		lines, err := gcloudcheck.FromHashComments(name, src, env)
		add(name, lines, err)
		// Strings: descriptions of variables and outputs, documentation.
		tokens, diags := hclsyntax.LexConfig(src, name, hcl.InitialPos)
		if diags.HasErrors() {
			t.Fatalf("%s: %s", name, diags.Error())
		}
		for _, tok := range tokens {
			if tok.Type != hclsyntax.TokenQuotedLit && tok.Type != hclsyntax.TokenStringLit {
				continue
			}
			where := fmt.Sprintf("%s:%d", name, tok.Range.Start.Line)
			lines, err := gcloudcheck.FromProse(where, string(tok.Bytes), gcloudcheck.Mention, env)
			add(name, lines, err)
		}
	}

	cfg, _ := loadCloudBuild(t)
	src := readFile(t, "../cloudbuild.yaml")
	lines, err := gcloudcheck.FromHashComments("../cloudbuild.yaml", src, env)
	add("../cloudbuild.yaml", lines, err)
	subst := func(s string) string {
		for range 5 { // _FEDIOPS_CONFIG's default refers to ${PROJECT_ID}
			s = os.Expand(s, func(v string) string {
				if v == "PROJECT_ID" {
					return gcloudcheck.Project
				}
				if d, ok := cfg.Substitutions[v]; ok {
					return d
				}
				t.Errorf("cloudbuild.yaml: ${%s} is neither a built-in nor a substitution", v)
				return v
			})
		}
		return s
	}
	for _, s := range cfg.Steps {
		if s.Entrypoint != "gcloud" {
			continue
		}
		var args []string
		for _, a := range s.Args {
			args = append(args, subst(a))
		}
		byFile["../cloudbuild.yaml"] = append(byFile["../cloudbuild.yaml"], gcloudcheck.Line{Source: "../cloudbuild.yaml step " + s.ID, Args: args})
	}
	return byFile
}

// TestDocumentedGcloudCommandsParse: every documented gcloud command parses with the
// installed gcloud; skipped, saying so, where gcloud is not installed.
func TestDocumentedGcloudCommandsParse(t *testing.T) {
	cli := gcloudcheck.Require(t)
	byFile := documentedLines(t)
	var all []gcloudcheck.Line
	for _, name := range sortedKeys(byFile) {
		all = append(all, byFile[name]...)
	}
	cli.Verify(t, all)
}

// TestDocumentedGcloudCommandsAreFound: the extraction finds a command in every file that
// writes "gcloud " and the commands the guide and the runbook depend on, and the runbook's
// log queries read the severity Cloud Logging lifts out of the JSON line.
func TestDocumentedGcloudCommandsAreFound(t *testing.T) {
	byFile := documentedLines(t)
	files := append([]string{"../README.md", "README.md", "../cloudbuild.yaml", "terraform.tfvars.example"}, sortedKeys(byFile)...)
	for _, name := range files {
		if strings.Contains(string(readFile(t, name)), "gcloud ") && len(byFile[name]) == 0 {
			t.Errorf("%s writes gcloud commands but none was extracted", name)
		}
	}
	has := func(name, prefix string) bool {
		return slices.ContainsFunc(byFile[name], func(l gcloudcheck.Line) bool {
			return strings.HasPrefix(strings.Join(l.Args, " "), prefix)
		})
	}
	for name, prefixes := range map[string][]string{
		"../docs/deployment.md": {
			"auth application-default login", "builds submit /tmp/fediops.tgz --config=cloudbuild.yaml",
			"builds connections create github", "builds repositories create",
			"builds triggers create github --name=fediops", "secrets versions add fediops-token-main",
			"iam service-accounts add-iam-policy-binding fediops-build@",
			"secrets versions add fediops-webhook-main", "functions describe fediops-webhook",
		},
		"../docs/runbook.md": {
			"logging read", "storage cat gs://", "storage ls gs://", "secrets versions disable",
			"pubsub topics publish fediops-blocklist", "pubsub topics publish fediops-triage",
		},
		"../cloudbuild.yaml":       {"functions deploy fediops-approve", "functions deploy fediops-blocklist", "functions deploy fediops-backupaudit", "functions deploy fediops-webhook", "builds submit"},
		"terraform.tfvars.example": {"beta monitoring channels create"},
	} {
		for _, p := range prefixes {
			if !has(name, p) {
				t.Errorf("%s: no gcloud %s… was extracted", name, p)
			}
		}
	}
	for name, lines := range byFile {
		for _, l := range lines {
			if len(l.Args) > 1 && l.Args[0] == "logging" && l.Args[1] == "read" && strings.Contains(strings.Join(l.Args, " "), "jsonPayload.severity") {
				t.Errorf("%s: %s: Cloud Logging moves severity out of jsonPayload; filter on severity>=ERROR", name, l)
			}
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

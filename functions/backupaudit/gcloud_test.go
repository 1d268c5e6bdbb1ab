package backupaudit_test

import (
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fediops/fediops/functions/backupaudit"
	"github.com/fediops/fediops/shared/clock"
	"github.com/fediops/fediops/shared/gcpbackup"
	"github.com/fediops/fediops/shared/testsupport/backupfake"
	"github.com/fediops/fediops/shared/testsupport/gcloudcheck"
)

// hintEnv holds what the hints' shell words expand to.
var hintEnv = gcloudcheck.Env{Outputs: map[string]string{"date +%Y%m%d": "20261120"}}

// failing answers every call with an API error of one kind.
type failing struct{ kind gcpbackup.Kind }

func (f failing) err() error {
	return &gcpbackup.Error{API: gcpbackup.APISQLAdmin, Kind: f.kind, Code: 400, Message: "refused"}
}

func (f failing) Instance(context.Context, string, string) (gcpbackup.SQLInstance, error) {
	return gcpbackup.SQLInstance{}, f.err()
}

func (f failing) BackupRuns(context.Context, string, string) ([]gcpbackup.SQLBackupRun, error) {
	return nil, f.err()
}

func (f failing) LatestRecoveryTime(context.Context, string, string) (time.Time, error) {
	return time.Time{}, f.err()
}

func (f failing) Bucket(context.Context, string) (gcpbackup.Bucket, error) {
	return gcpbackup.Bucket{}, f.err()
}

func (f failing) Plan(context.Context, string) (gcpbackup.GKEPlan, error) {
	return gcpbackup.GKEPlan{}, f.err()
}

func (f failing) Backups(context.Context, string) ([]gcpbackup.GKEBackup, error) {
	return nil, f.err()
}

// hintLines returns the gcloud commands of every hint the audit prints: for every check
// case, for both sample environments, and for every kind of API error on every kind of target.
func hintLines(t *testing.T) []gcloudcheck.Line {
	t.Helper()
	var lines []gcloudcheck.Line
	add := func(how string, rep backupaudit.Report) {
		for _, c := range rep.Checks {
			if c.Hint == "" {
				continue
			}
			found, err := gcloudcheck.FromProse("hint of "+c.ID+" ("+how+")", c.Hint, gcloudcheck.Command, hintEnv)
			if err != nil {
				t.Fatal(err)
			}
			lines = append(lines, found...)
		}
	}
	for _, tt := range checkCases() {
		env := backupfake.Healthy(now)
		tt.mutate(&env)
		rep, _ := audit(t, env, tt.th)
		add(tt.name, rep)
	}
	rep, _ := audit(t, backupfake.Broken(now), backupaudit.Thresholds{})
	add("broken sample", rep)

	tg := backupaudit.Targets{
		CloudSQL: []backupaudit.SQLTarget{{Project: "fediops-prod", Instance: "mastodon-db"}},
		Buckets:  []string{"fediops-prod-mastodon-media"},
		GKE:      []backupaudit.GKETarget{{Project: "fediops-prod", Location: "europe-west1", Plan: "mastodon-nightly"}},
	}
	for k := gcpbackup.KindOther; k <= gcpbackup.KindMalformed; k++ {
		f := failing{k}
		rep := backupaudit.Audit(context.Background(), clock.NewFake(now), backupaudit.Sources{CloudSQL: f, Buckets: f, GKE: f}, tg, backupaudit.Thresholds{})
		add("API error "+k.String(), rep)
	}
	for i, rep := range drillHintReports(t) {
		add(fmt.Sprintf("drill %d", i), rep)
	}
	return lines
}

// TestHintsParseWithGcloud: every gcloud command that a hint of the audit prints parses with
// the installed gcloud (shared/testsupport/gcloudcheck); skipped, saying so, without gcloud.
func TestHintsParseWithGcloud(t *testing.T) {
	cli := gcloudcheck.Require(t)
	cli.Verify(t, hintLines(t))
}

// gcloudWritten returns the command paths ("sql instances patch") of the gcloud commands
// written in the string literals of the package's source.
func gcloudWritten(t *testing.T) map[string]string {
	t.Helper()
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	start := regexp.MustCompile(`(?:^|[\s(` + "`" + `])gcloud `)
	word := regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
	out := map[string]string{}
	fset := token.NewFileSet()
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err != nil {
				return true
			}
			for _, loc := range start.FindAllStringIndex(s, -1) {
				var words []string
				for _, w := range strings.Fields(s[loc[1]:]) {
					if !word.MatchString(w) {
						break
					}
					words = append(words, w)
				}
				if len(words) > 0 {
					out[strings.Join(words, " ")] = fset.Position(lit.Pos()).String()
				}
			}
			return true
		})
	}
	return out
}

// TestEveryHintCommandIsExercised: each gcloud command written in the package's source comes
// out of some hint in hintLines, so TestHintsParseWithGcloud checks every one of them.
func TestEveryHintCommandIsExercised(t *testing.T) {
	written := gcloudWritten(t)
	if len(written) < 10 {
		t.Fatalf("found only %d gcloud commands in the source: %v", len(written), written)
	}
	var printed []string
	for _, l := range hintLines(t) {
		printed = append(printed, strings.Join(l.Args, " "))
	}
	var paths []string
	for p := range written {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		if !slices.ContainsFunc(printed, func(s string) bool { return s == p || strings.HasPrefix(s, p+" ") }) {
			t.Errorf("%s: gcloud %s is in a hint that no check case prints; add a case to checkCases", written[p], p)
		}
	}
	for _, want := range []string{"beta container backup-restore backup-plans update", "sql instances patch"} {
		if written[want] == "" {
			t.Errorf("the source scan did not find gcloud %s", want)
		}
	}
}

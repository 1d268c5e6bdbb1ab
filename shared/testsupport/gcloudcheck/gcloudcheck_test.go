package gcloudcheck

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var env = Env{
	Vars:    map[string]string{"PROJECT": "fediops-prod", "REGION": "europe-west1", "TOKEN": "t0ken"},
	Outputs: map[string]string{"terraform -chdir=infra output -raw archive_url": "gs://fediops-prod-fediops-archive/prod"},
}

func args(lines []Line) []string {
	var out []string
	for _, l := range lines {
		out = append(out, l.Kind.String()+": "+strings.Join(l.Args, " "))
	}
	return out
}

func TestFromShell(t *testing.T) {
	script := `export PROJECT=fediops-prod
gcloud config set project $PROJECT   # a comment
printf %s "$TOKEN" | gcloud secrets versions add fediops-token-<name> --data-file=-
gcloud builds submit /tmp/x.tgz --region=$REGION \
  --substitutions="_REGION=$REGION,_X=y" && echo done
gcloud storage ls -r "$(terraform -chdir=infra output -raw archive_url)/triage/"
go run ./cmd/fediops triage classify --config x.toml a@b.c
`
	lines, err := FromShell("guide.md", 10, script, Command, env)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"command: config set project fediops-prod",
		"command: secrets versions add fediops-token-NAME --data-file=-",
		"command: builds submit /tmp/x.tgz --region=europe-west1 --substitutions=_REGION=europe-west1,_X=y",
		"command: storage ls -r gs://fediops-prod-fediops-archive/prod/triage/",
	}
	if got := args(lines); !slices.Equal(got, want) {
		t.Errorf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	if lines[2].Source != "guide.md:13" {
		t.Errorf("source %q, want guide.md:13", lines[2].Source)
	}

	for _, bad := range []string{"gcloud x --project=$UNSET", "gcloud x $(date)", "gcloud 'unclosed"} {
		if _, err := FromShell("x", 1, bad, Command, env); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestFromProse(t *testing.T) {
	env := Env{Outputs: map[string]string{"date +%Y%m%d": "20261120"}}
	tests := []struct {
		prose string
		want  []string
	}{
		{"check: gcloud sql backups list --instance=db; take one now: gcloud sql backups create --instance=db",
			[]string{"command: sql backups list --instance=db", "command: sql backups create --instance=db"}},
		{`gcloud sql instances describe db --format='value(state,settings.x)' (then wait)`,
			[]string{"command: sql instances describe db --format=value(state,settings.x)"}},
		{"create gcloud storage buckets create gs://b-eu --location=EU && gcloud storage rsync --recursive gs://b gs://b-eu, then point S3_BUCKET at it",
			[]string{"command: storage buckets create gs://b-eu --location=EU", "command: storage rsync --recursive gs://b gs://b-eu"}},
		{"(the instance is stopped (gcloud sql instances describe db --project=p))",
			[]string{"command: sql instances describe db --project=p"}},
		{"take one: gcloud beta container backup-restore backups create manual-$(date +%Y%m%d) --backup-plan=p",
			[]string{"command: beta container backup-restore backups create manual-20261120 --backup-plan=p"}},
		{"gcloud scheduler jobs run <name> --location=<scheduler region> to start one now.",
			[]string{"command: scheduler jobs run NAME --location=SCHEDULER_REGION to start one now"}},
		{"deployed by `gcloud functions deploy --retry` in cloudbuild.yaml; add a version with gcloud.", []string{"command: functions deploy --retry"}},
		{"honours .gcloudignore and mygcloud x", nil},
		{`a flag: gcloud beta container backup-restore backup-plans create p --cron-schedule="0 3 * * *": then`,
			[]string{"command: beta container backup-restore backup-plans create p --cron-schedule=0 3 * * *"}},
	}
	for _, tt := range tests {
		lines, err := FromProse("hint", tt.prose, Command, env)
		if err != nil {
			t.Errorf("%q: %v", tt.prose, err)
			continue
		}
		if got := args(lines); !slices.Equal(got, tt.want) {
			t.Errorf("%q:\n got %q\nwant %q", tt.prose, got, tt.want)
		}
	}
}

func TestFromMarkdown(t *testing.T) {
	md := "# Title\n\nRun `gcloud functions deploy` from Cloud Build, or `gcloud builds submit /tmp/x.tgz\n--region=$REGION`.\n" +
		"\n| a | `gcloud secrets versions disable 1 --secret=s` |\n" +
		"\n```sh\ngcloud scheduler jobs run fediops-approve \\\n  --location=$REGION\n```\n" +
		"\n```toml\nx = \"gcloud not a command\"\n```\n" +
		"\n    gcloud pubsub topics list\n"
	lines, err := FromMarkdown("doc.md", []byte(md), env)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"mention: functions deploy",
		"command: builds submit /tmp/x.tgz --region=europe-west1",
		"command: secrets versions disable 1 --secret=s",
		"command: scheduler jobs run fediops-approve --location=europe-west1",
		"command: pubsub topics list",
	}
	if got := args(lines); !slices.Equal(got, want) {
		t.Errorf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	wantSources := []string{"doc.md:3", "doc.md:3", "doc.md:6", "doc.md:9", "doc.md:17"}
	for i, l := range lines {
		if i < len(wantSources) && l.Source != wantSources[i] {
			t.Errorf("%s: source, want %s", l, wantSources[i])
		}
	}
}

func TestFromHashComments(t *testing.T) {
	src := `# Where images go (gcloud functions deploy --docker-repository), and
# gcloud functions deploy --service-account / --trigger-service-account /
# --build-service-account: the deployer acts as each.
#
#   printf %s "$TOKEN" | gcloud secrets versions add fediops-token-<name> --data-file=-
#
resource "x" "y" {} # inline comments are not read
# Run by hand:
#   gcloud builds submit /tmp/f.tgz --config=cloudbuild.yaml \
#     --region=$REGION
# (` + "`gcloud builds submit .`" + ` would drop the tests.)
`
	lines, err := FromHashComments("main.tf", []byte(src), env)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"mention: functions deploy --docker-repository",
		"mention: functions deploy --service-account / --trigger-service-account / --build-service-account",
		"command: secrets versions add fediops-token-NAME --data-file=-",
		"command: builds submit /tmp/f.tgz --config=cloudbuild.yaml --region=europe-west1",
		"mention: builds submit",
	}
	if got := args(lines); !slices.Equal(got, want) {
		t.Errorf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	if lines[3].Source != "main.tf:9" {
		t.Errorf("source %q, want main.tf:9", lines[3].Source)
	}
}

// TestParserVerdicts: the parser accepts what gcloud runs and refuses, with gcloud's own
// message, what gcloud would refuse; mentions need an existing command and flags.
func TestParserVerdicts(t *testing.T) {
	t.Parallel()
	c := Require(t)
	cmd := func(a ...string) Line { return Line{Source: "test", Args: a, Kind: Command} }
	mention := func(a ...string) Line { return Line{Source: "test", Args: a, Kind: Mention} }
	tests := []struct {
		line Line
		path string // want, when it parses
		err  string // substring of the error, when it does not
	}{
		{line: cmd("sql", "instances", "patch", "db", "--project=p", "--enable-bin-log", "--retained-transaction-log-days=7"), path: "gcloud.sql.instances.patch"},
		{line: cmd("sql", "instances", "patch", "db", "--enable-bogus"), err: "unrecognized arguments: --enable-bogus"},
		{line: cmd("sql", "instances", "patch", "db", "--activation-policy=sometimes"), err: "Invalid choice: 'sometimes'"},
		{line: cmd("sql", "instances", "patch", "--project=p"), err: "INSTANCE"},
		{line: cmd("container", "backup-restore", "backup-plans", "list", "--location=l"), err: "Invalid choice: 'backup-restore'"},
		{line: cmd("beta", "container", "backup-restore", "backup-plans", "list", "--location=l"), path: "gcloud.beta.container.backup-restore.backup-plans.list"},
		{line: cmd("storage", "buckets", "update", "gs://b", "--soft-delete-duration=7q"), err: "soft-delete-duration"},
		{line: cmd("logging", "read", `severity>=ERROR`, "--freshness=1d"), path: "gcloud.logging.read"},
		{line: cmd("functions", "deploy", "f", "--gen2", "--region=r", "--max-instances=one"), err: "max-instances"},
		{line: cmd("pubsub", "topics"), err: "Command name argument expected"},
		{line: mention("functions", "deploy", "--trigger-topic", "--retry"), path: "gcloud.functions.deploy"},
		{line: mention("functions", "deploy", "--trigger-topc"), err: "gcloud functions deploy has no flag --trigger-topc"},
		{line: mention("container", "backup-restore"), err: "gcloud container has no command or group 'backup-restore'"},
		{line: mention("beta", "container", "backup-restore"), path: "gcloud.beta.container.backup-restore"},
	}
	var lines []Line
	for _, tt := range tests {
		lines = append(lines, tt.line)
	}
	verdicts, err := c.Check(context.Background(), lines)
	if err != nil {
		t.Fatal(err)
	}
	for i, tt := range tests {
		v := verdicts[i]
		if tt.err == "" && (v.Error != "" || v.Path != tt.path) {
			t.Errorf("%s: path %q, error %q; want path %q", tt.line, v.Path, v.Error, tt.path)
		}
		if tt.err != "" && !strings.Contains(v.Error, tt.err) {
			t.Errorf("%s: error %q, want it to contain %q", tt.line, v.Error, tt.err)
		}
		if strings.Contains(v.Error, "Usage:") {
			t.Errorf("%s: the error keeps the usage text: %q", tt.line, v.Error)
		}
	}
}

// TestParserAgreesWithGcloud runs the real gcloud on one line it accepts and one it refuses,
// with a fresh configuration and no credentials: the refused one exits with status 2 (a parse
// error), the accepted one gets past the parser and stops for want of credentials. The
// parser's verdicts must be the same.
func TestParserAgreesWithGcloud(t *testing.T) {
	t.Parallel()
	c := Require(t)
	good := []string{"sql", "instances", "patch", "db", "--project=p", "--enable-bin-log"}
	bad := []string{"sql", "instances", "patch", "db", "--project=p", "--enable-bogus"}
	verdicts, err := c.Check(context.Background(), []Line{{Args: good}, {Args: bad}})
	if err != nil {
		t.Fatal(err)
	}
	if verdicts[0].Error != "" || verdicts[1].Error == "" {
		t.Fatalf("parser verdicts %+v", verdicts)
	}
	for i, a := range [][]string{good, bad} {
		t.Run(map[int]string{0: "accepted", 1: "refused"}[i], func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(c.Binary, append(a, "--verbosity=error")...)
			cmd.Env = append(os.Environ(), "CLOUDSDK_CONFIG="+filepath.Join(t.TempDir(), "gcloud"),
				"CLOUDSDK_CORE_DISABLE_PROMPTS=1", "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING=true",
				"CLOUDSDK_AUTH_ACCESS_TOKEN_FILE=", "GOOGLE_APPLICATION_CREDENTIALS=")
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("gcloud %s: %v (it must fail: there are no credentials)\n%s", strings.Join(a, " "), err, out)
			}
			parseError := exit.ExitCode() == 2
			if parseError != (verdicts[i].Error != "") {
				t.Errorf("gcloud %s exits %d:\n%s\nthe parser said %q", strings.Join(a, " "), exit.ExitCode(), out, verdicts[i].Error)
			}
		})
	}
}

func TestShorten(t *testing.T) {
	msg := "ERROR: (gcloud.sql.instances.patch) argument --x: bad\nUsage: gcloud sql instances patch INSTANCE\n  flags\n\nFor detailed information on this command"
	if got := shorten(msg); got != "ERROR: (gcloud.sql.instances.patch) argument --x: bad" {
		t.Errorf("shorten = %q", got)
	}
}

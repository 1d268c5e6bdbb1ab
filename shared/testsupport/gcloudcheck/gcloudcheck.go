// Package gcloudcheck checks the gcloud command lines that fediops prints or documents
// against the installed Google Cloud CLI's own argument parser, without credentials, network
// or side effects.
//
// gcloud parses a command line completely (command path, flags and their typed values,
// choices, positional and resource arguments, required and exclusive groups) before it runs
// anything, and a parse error exits with status 2. CLI.Check does exactly that parse and
// stops: driver.py boots the CLI the way gcloud's own launcher does, with the SDK's Python,
// and hands every line to calliope's parser in one process (about a second to start, then
// milliseconds per line once its command group is loaded), so hundreds of lines take a few
// seconds where running `gcloud` for each would take one or two seconds per line. The
// configuration directory is a fresh temporary one and the project property is set, as after
// `gcloud config set project`; no command is ever run.
//
// The lines come from the extractors of extract.go: shell code (Markdown code blocks,
// commented examples), prose (hints, descriptions) and Markdown inline code.
package gcloudcheck

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

//go:embed driver.py
var driver []byte

// Kind says how strictly a line is checked.
type Kind int

const (
	// Command is a whole command line, meant to be run: it must parse.
	Command Kind = iota
	// Mention names a command in prose ("`gcloud functions deploy --trigger-topic`"): the
	// command or group must exist and every --flag named must be one of its flags.
	Mention
)

func (k Kind) String() string {
	if k == Mention {
		return "mention"
	}
	return "command"
}

// Line is one gcloud command line and where it was found.
type Line struct {
	Source string   // file:line, or what printed it
	Args   []string // the words after "gcloud"
	Kind   Kind
}

func (l Line) String() string {
	return l.Source + ": gcloud " + strings.Join(l.Args, " ")
}

// Verdict is gcloud's answer about one line.
type Verdict struct {
	Line  Line
	Path  string // the command it resolved to, e.g. gcloud.sql.instances.patch
	Error string // what gcloud would print before exiting with status 2; "" when it parses
}

// ErrNotInstalled is returned by Find when there is no gcloud on PATH.
var ErrNotInstalled = errors.New("gcloud is not installed (not on PATH)")

// CLI is an installed Google Cloud CLI.
type CLI struct {
	Binary  string // the gcloud on PATH
	Root    string // its SDK root (holding lib/gcloud.py)
	Python  string // the interpreter its launcher would use
	Version string // e.g. 528.0.0
}

// Find locates gcloud on PATH, its SDK root and the Python its launcher would run.
func Find(ctx context.Context) (*CLI, error) {
	bin, err := exec.LookPath("gcloud")
	if err != nil {
		return nil, ErrNotInstalled
	}
	c := &CLI{Binary: bin}
	if real, err := filepath.EvalSymlinks(bin); err == nil {
		c.Root = filepath.Dir(filepath.Dir(real))
	}
	if !exists(filepath.Join(c.Root, "lib", "gcloud.py")) {
		// A wrapper rather than the SDK's own bin/gcloud: ask gcloud where it lives.
		out, err := exec.CommandContext(ctx, bin, "info", "--format=value(installation.sdk_root)").Output()
		if err != nil {
			return nil, fmt.Errorf("gcloud info: %w", err)
		}
		c.Root = strings.TrimSpace(string(out))
		if !exists(filepath.Join(c.Root, "lib", "gcloud.py")) {
			return nil, fmt.Errorf("gcloud's SDK root %q has no lib/gcloud.py", c.Root)
		}
	}
	c.Python, err = python(c.Root)
	if err != nil {
		return nil, err
	}
	if v, err := os.ReadFile(filepath.Join(c.Root, "VERSION")); err == nil {
		c.Version = strings.TrimSpace(string(v))
	}
	return c, nil
}

// python returns the interpreter bin/gcloud would choose: CLOUDSDK_PYTHON, the bundled one,
// then python3 or python on PATH.
func python(root string) (string, error) {
	if p := os.Getenv("CLOUDSDK_PYTHON"); p != "" {
		return exec.LookPath(p)
	}
	if p := filepath.Join(root, "platform", "bundledpythonunix", "bin", "python3"); exists(p) {
		return p, nil
	}
	for _, name := range []string{"python3", "python"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no Python for gcloud: set CLOUDSDK_PYTHON")
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// Project is the core/project property during checks, as after `gcloud config set project`.
const Project = "fediops-prod"

// Check parses every line with gcloud's parser and returns one verdict per line, in order.
// An error means the parser could not be run at all.
func (c *CLI) Check(ctx context.Context, lines []Line) ([]Verdict, error) {
	dir, err := os.MkdirTemp("", "gcloudcheck-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	script := filepath.Join(dir, "driver.py")
	if err := os.WriteFile(script, driver, 0o600); err != nil {
		return nil, err
	}
	config := filepath.Join(dir, "config")
	if err := os.Mkdir(config, 0o700); err != nil {
		return nil, err
	}

	var in bytes.Buffer
	enc := json.NewEncoder(&in)
	for _, l := range lines {
		if err := enc.Encode(map[string]any{"kind": l.Kind.String(), "args": l.Args}); err != nil {
			return nil, err
		}
	}
	cmd := exec.CommandContext(ctx, c.Python, "-S", script, c.Root)
	cmd.Stdin = &in
	cmd.Env = append(os.Environ(),
		"CLOUDSDK_CONFIG="+config,
		"CLOUDSDK_CORE_PROJECT="+Project,
		"CLOUDSDK_CORE_DISABLE_PROMPTS=1",
		"CLOUDSDK_CORE_DISABLE_USAGE_REPORTING=true",
		"CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK=true",
		"CLOUDSDK_METRICS_ENVIRONMENT=fediops-gcloudcheck",
		"PYTHONIOENCODING=UTF-8",
	)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("gcloud's parser (%s driver.py): %w\n%s", c.Python, err, stderr.String())
	}
	var verdicts []Verdict
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64*1024), 16<<20)
	for sc.Scan() {
		var v struct {
			Path  *string `json:"path"`
			Error *string `json:"error"`
		}
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			return nil, fmt.Errorf("gcloud's parser answered %q: %w", sc.Text(), err)
		}
		if len(verdicts) == len(lines) {
			return nil, errors.New("gcloud's parser answered more lines than it was given")
		}
		vd := Verdict{Line: lines[len(verdicts)]}
		if v.Path != nil {
			vd.Path = *v.Path
		}
		if v.Error != nil {
			vd.Error = shorten(*v.Error)
		}
		verdicts = append(verdicts, vd)
	}
	if len(verdicts) != len(lines) {
		return nil, fmt.Errorf("gcloud's parser answered %d of %d lines\n%s", len(verdicts), len(lines), stderr.String())
	}
	return verdicts, nil
}

var ansi = regexp.MustCompile("\x1b\\[[0-9;]*m")

// shorten keeps gcloud's error message and drops the usage text and help hints after it.
func shorten(msg string) string {
	msg = ansi.ReplaceAllString(msg, "")
	for _, cut := range []string{"\nUsage:", "\nTo search the help text", "\nFor detailed information"} {
		if i := strings.Index(msg, cut); i >= 0 {
			msg = msg[:i]
		}
	}
	return strings.TrimSpace(msg)
}

// Require returns the installed gcloud, or skips t, saying so, where there is none.
func Require(t testing.TB) *CLI {
	t.Helper()
	c, err := Find(context.Background())
	if errors.Is(err, ErrNotInstalled) {
		t.Skip("SKIPPED, not checked: gcloud is not installed, so the gcloud commands fediops prints and documents cannot be parsed here (install google-cloud-cli to run this check)")
	}
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Verify checks lines and fails t for each one gcloud's parser refuses; it also fails on no
// lines at all, which would mean the extraction found nothing.
func (c *CLI) Verify(t testing.TB, lines []Line) []Verdict {
	t.Helper()
	if len(lines) == 0 {
		t.Fatal("no gcloud command lines to check: the extraction found none")
	}
	verdicts, err := c.Check(context.Background(), Dedupe(lines))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range verdicts {
		if v.Error != "" {
			t.Errorf("%s\n  gcloud %s refuses it: %s", v.Line, c.Version, strings.ReplaceAll(v.Error, "\n", "\n    "))
		}
	}
	t.Logf("gcloud %s parsed %d distinct command lines (%d found)", c.Version, len(verdicts), len(lines))
	return verdicts
}

// Dedupe drops lines whose kind and words an earlier line already has.
func Dedupe(lines []Line) []Line {
	seen := map[string]bool{}
	var out []Line
	for _, l := range lines {
		key := l.Kind.String() + "\x00" + strings.Join(l.Args, "\x00")
		if !seen[key] {
			seen[key] = true
			out = append(out, l)
		}
	}
	return out
}

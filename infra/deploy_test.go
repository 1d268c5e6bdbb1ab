package infra

// The deployability test: is the source that `gcloud functions deploy --source=.` uploads
// (the module root filtered by .gcloudignore) something the Cloud Functions Go buildpack
// builds? The buildpack (GoogleCloudPlatform/buildpacks cmd/go/functions_framework) parses
// every .go file of the uploaded root, test files included, and fails on two package names;
// takes the module root package as the function package, except that a directory named like
// the package makes it import <module>/<package> instead; generates a main package
// functions.local/app that blank-imports it and calls funcframework.Start; runs `go mod
// tidy` and builds that main. FUNCTION_TARGET (--entry-point) then selects the function.

import (
	"bufio"
	"context"
	"fmt"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/modfile"
)

// --- .gcloudignore, as gcloud reads it -------------------------------------------------
//
// A port of googlecloudsdk/command_lib/util/gcloudignore.py: gitignore-like patterns, except
// that a pattern is matched against the end of the path (so "a/b" matches "x/a/b" too) unless
// it starts with "/"; "#!include:FILE" inserts FILE's patterns; an ignored directory's
// contents cannot be re-included.

type ignorePattern struct {
	parts   []string
	negated bool
	dirOnly bool
}

type ignoreMatch int

const (
	noMatch ignoreMatch = iota
	matchInclude
	matchIgnore
)

var oddBackslashes = regexp.MustCompile(`(^|[^\\])\\(\\\\)*$`)

// parseIgnore reads an ignore file's text; includes are read from dir, recurse levels deep.
func parseIgnore(text, dir string, recurse int) ([]ignorePattern, error) {
	var out []ignorePattern
	for _, line := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		if strings.HasPrefix(line, "#") {
			rest := strings.TrimLeft(line[1:], " \t")
			if !strings.HasPrefix(rest, "!include:") {
				continue
			}
			file := line[strings.Index(line, "!include:")+len("!include:"):]
			if strings.Contains(file, "/") {
				return nil, fmt.Errorf("%q: may only include files in the same directory", line)
			}
			if recurse == 0 {
				continue
			}
			b, err := os.ReadFile(filepath.Join(dir, file))
			if err != nil {
				return nil, fmt.Errorf("%q: %w", line, err)
			}
			inc, err := parseIgnore(string(b), dir, recurse-1)
			if err != nil {
				return nil, err
			}
			out = append(out, inc...)
			continue
		}
		if l := handleSpaces(line); l == "" || oddBackslashes.MatchString(l) {
			continue
		}
		p := ignorePattern{}
		if strings.HasPrefix(line, "!") {
			line, p.negated = line[1:], true
		}
		if strings.HasSuffix(line, "/") {
			line, p.dirOnly = line[:len(line)-1], true
		}
		line = handleSpaces(line)
		if oddBackslashes.MatchString(line) {
			return nil, fmt.Errorf("%q ends in an odd number of backslashes", line)
		}
		line = unescape(line)
		if line == "" {
			return nil, fmt.Errorf("blank pattern")
		}
		p.parts = strings.Split(line, "/")
		out = append(out, p)
	}
	return out, nil
}

// handleSpaces strips unescaped trailing spaces and unescapes "\ ".
func handleSpaces(line string) string {
	var tokens []string
	for i := 0; i < len(line); i++ {
		if line[i] == '\\' && i+1 < len(line) {
			tokens = append(tokens, line[i:i+2])
			i++
			continue
		}
		tokens = append(tokens, line[i:i+1])
	}
	for len(tokens) > 0 && tokens[len(tokens)-1] == " " {
		tokens = tokens[:len(tokens)-1]
	}
	return strings.ReplaceAll(strings.Join(tokens, ""), `\ `, " ")
}

var escaped = regexp.MustCompile(`\\([^\\])`)

func unescape(line string) string {
	return strings.ReplaceAll(escaped.ReplaceAllString(line, "$1"), `\\`, `\`)
}

// fnmatch is Python's fnmatch.fnmatchcase.
func fnmatch(name, pat string) bool {
	var b strings.Builder
	b.WriteString(`^(?s:`)
	p := []rune(pat)
	for i := 0; i < len(p); i++ {
		switch c := p[i]; c {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		case '[':
			j := i + 1
			if j < len(p) && p[j] == '!' {
				j++
			}
			if j < len(p) && p[j] == ']' {
				j++
			}
			for j < len(p) && p[j] != ']' {
				j++
			}
			if j >= len(p) {
				b.WriteString(`\[`)
				continue
			}
			set := strings.ReplaceAll(string(p[i+1:j]), `\`, `\\`)
			switch {
			case strings.HasPrefix(set, "!"):
				set = "^" + set[1:]
			case strings.HasPrefix(set, "^"):
				set = `\` + set
			}
			b.WriteString("[" + set + "]")
			i = j
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString(`)$`)
	re, err := regexp.Compile(b.String())
	return err == nil && re.MatchString(name)
}

// splitPath is os.path.split for the relative, slash-separated paths used here.
func splitPath(p string) (head, tail string) {
	i := strings.LastIndex(p, "/")
	if i < 0 {
		return "", p
	}
	return strings.TrimRight(p[:i], "/"), p[i+1:]
}

// pathPrefixes returns "", "a", "a/b", "a/b/c" for "a/b/c".
func pathPrefixes(p string) []string {
	out := []string{p}
	for rest := true; p != "" && rest; {
		var tail string
		p, tail = splitPath(p)
		rest = tail != ""
		out = append([]string{p}, out...)
	}
	return out
}

func matchParts(parts []string, p string, none bool) bool {
	if len(parts) == 0 {
		return true
	}
	if none {
		return false
	}
	part, rest := parts[len(parts)-1], parts[:len(parts)-1]
	if p != "" {
		p = path.Clean(p)
	}
	remaining, last := splitPath(p)
	if part == "**" {
		r := rest
		if len(r) == 0 || r[0] != "" {
			r = append([]string{""}, r...)
		}
		for _, prefix := range pathPrefixes(p) {
			if matchParts(r, prefix, false) {
				return true
			}
		}
		return false
	}
	if !fnmatch(last, part) {
		return false
	}
	return matchParts(rest, remaining, last == "")
}

func (ip ignorePattern) match(p string, isDir bool) ignoreMatch {
	if ip.dirOnly && !isDir {
		return noMatch
	}
	if !matchParts(ip.parts, p, false) {
		return noMatch
	}
	if ip.negated {
		return matchInclude
	}
	return matchIgnore
}

// included is FileChooser.IsIncluded: whether gcloud uploads the relative path p.
func included(patterns []ignorePattern, p string, isDir bool) bool {
	prefixes := pathPrefixes(p)
	state := make([]ignoreMatch, len(prefixes))
	for _, pat := range patterns {
		parent := noMatch
		for i, prefix := range prefixes {
			m := parent
			if parent == noMatch {
				m = pat.match(prefix, prefix != p || isDir)
			}
			if m != noMatch {
				state[i] = m
			}
			parent = m
			if state[i] == matchIgnore {
				parent = matchIgnore
			}
		}
	}
	return state[len(state)-1] != matchIgnore
}

// upload lists the files gcloud uploads from root (slash-separated, relative, sorted).
func upload(t *testing.T, root string) []string {
	t.Helper()
	text, err := os.ReadFile(filepath.Join(root, ".gcloudignore"))
	if err != nil {
		t.Fatalf("no .gcloudignore: gcloud would upload the whole tree, tests included: %v", err)
	}
	patterns, err := parseIgnore(string(text), root, 1)
	if err != nil {
		t.Fatalf(".gcloudignore: %v", err)
	}
	var files []string
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return nil
		}
		if d.IsDir() {
			if !included(patterns, rel, true) {
				return filepath.SkipDir
			}
			return nil
		}
		if included(patterns, rel, false) {
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	return files
}

// TestGcloudignorePort checks the port against gcloud's documented and coded behaviour.
func TestGcloudignorePort(t *testing.T) {
	patterns, err := parseIgnore(strings.Join([]string{
		"# comment",
		".git",
		"*_test.go",
		"testdata/",
		"/cmd/",
		"shared/testsupport",
		"*.md",
		"!KEEP.md",
		"/docs/",
		"!docs/keep.go",
		"**/gen/**",
		`\#hash`,
		"trailing\\ ",
		"",
	}, "\n"), ".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path  string
		dir   bool
		want  bool
		label string
	}{
		{".git/config", false, false, "an ignored directory hides its files"},
		{"a/.git", true, false, "a pattern without / matches at any depth"},
		{"functions/approve/job_test.go", false, false, "*_test.go at any depth"},
		{"functions/approve/job.go", false, true, ""},
		{"functions/blocklist/lists/testdata/fuzz/x", false, false, "dir-only pattern"},
		{"testdata", false, true, "dir-only pattern does not match a file"},
		{"cmd/fediops/main.go", false, false, "anchored"},
		{"functions/cmd/x.go", false, true, "anchored patterns only match at the root"},
		{"x/shared/testsupport/a.go", false, false, "unanchored multi-part patterns match any suffix"},
		{"README.md", false, false, ""},
		{"KEEP.md", false, true, "negation re-includes a file"},
		{"docs/keep.go", false, false, "an ignored directory cannot be re-included into"},
		{"a/gen/b/c.go", false, false, "**"},
		{"#hash", false, false, "escaped #"},
		{"trailing ", false, false, "escaped trailing space"},
		{"go.mod", false, true, ""},
	} {
		if got := included(patterns, c.path, c.dir); got != c.want {
			t.Errorf("%s (dir %v): included = %v, want %v %s", c.path, c.dir, got, c.want, c.label)
		}
	}
}

// TestUploadLeavesOutTests: the upload holds the module and the root package, and no test,
// test data, test helper, infrastructure, documentation, CLI or VCS file.
func TestUploadLeavesOutTests(t *testing.T) {
	files := upload(t, "..")
	for _, want := range []string{"go.mod", "go.sum", "functions.go"} {
		if !slices.Contains(files, want) {
			t.Errorf("%s is not uploaded", want)
		}
	}
	excluded := []string{".git/", "infra/", "docs/", "e2e/", "cmd/", "scripts/", "shared/testsupport/", "vendor/"}
	for _, f := range files {
		base := path.Base(f)
		switch {
		case strings.HasSuffix(f, "_test.go"):
			t.Errorf("%s is uploaded: the buildpack parses root tests and go mod tidy pulls test-only modules", f)
		case strings.HasSuffix(f, ".test"):
			t.Errorf("%s (a test binary) is uploaded", f)
		case slices.Contains(strings.Split(f, "/"), "testdata"):
			t.Errorf("%s (test data) is uploaded", f)
		case f == "cloudbuild.yaml" || base == ".gcloudignore" || strings.HasSuffix(f, ".tf") || strings.Contains(f, ".tfstate"):
			t.Errorf("%s is uploaded", f)
		}
		for _, dir := range excluded {
			if strings.HasPrefix(f, dir) {
				t.Errorf("%s is uploaded (%s is not part of a function)", f, dir)
			}
		}
	}
	if len(files) > 2000 {
		t.Errorf("%d files are uploaded; is something large not ignored?", len(files))
	}
	var size int64
	for _, f := range files {
		if fi, err := os.Stat(filepath.Join("..", f)); err == nil {
			size += fi.Size()
		}
	}
	if size > 20<<20 {
		t.Errorf("the upload is %d MiB; is a binary or a build directory not ignored?", size>>20)
	}
}

// rootPackages parses the .go files of the root among files and returns package name =>
// files, as the buildpack's package scan sees them (tests included).
func rootPackages(t *testing.T, dir string, files []string) (map[string][]string, map[string]bool) {
	t.Helper()
	fset := token.NewFileSet()
	pkgs := map[string][]string{}
	imports := map[string]bool{}
	for _, f := range files {
		if strings.Contains(f, "/") || !strings.HasSuffix(f, ".go") {
			continue
		}
		af, err := parser.ParseFile(fset, filepath.Join(dir, f), nil, parser.ImportsOnly)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		pkgs[af.Name.Name] = append(pkgs[af.Name.Name], f)
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		for _, imp := range af.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			imports[p] = true
		}
	}
	return pkgs, imports
}

// TestRootPackageIsDeployable: exactly one package at the module root, with or without the
// test files; it imports the Functions Framework (declarative registration); no directory
// shadows it; go.mod suits the runtime of cloudbuild.yaml (_RUNTIME).
func TestRootPackageIsDeployable(t *testing.T) {
	entries, err := os.ReadDir("..")
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	for _, e := range entries {
		if !e.IsDir() {
			all = append(all, e.Name())
		}
	}
	pkgs, _ := rootPackages(t, "..", all)
	if len(pkgs) != 1 {
		t.Errorf("the module root holds packages %v: the buildpack fails with \"multiple packages in user code directory\" unless every other one (e.g. an external _test package) is in .gcloudignore; keep one", pkgs)
	}
	uploadPkgs, imports := rootPackages(t, "..", upload(t, ".."))
	if len(uploadPkgs) != 1 {
		t.Fatalf("the uploaded module root holds packages %v, want exactly one", uploadPkgs)
	}
	var pkg string
	for name := range uploadPkgs {
		pkg = name
	}
	if !imports[frameworkFunctions] {
		t.Errorf("the root package does not import %s: the buildpack would then generate a main that needs an exported symbol per entry point", frameworkFunctions)
	}
	if fi, err := os.Stat(filepath.Join("..", pkg)); err == nil && fi.IsDir() {
		t.Errorf("a directory ../%s exists: the buildpack would import <module>/%s instead of the root package", pkg, pkg)
	}

	data := readFile(t, "../go.mod")
	mf, err := modfile.Parse("go.mod", data, nil)
	if err != nil {
		t.Fatal(err)
	}
	if first, _, _ := strings.Cut(mf.Module.Mod.Path, "/"); !strings.Contains(first, ".") {
		t.Errorf("module path %s: the buildpack needs a dot in the first element", mf.Module.Mod.Path)
	}
	cfg, _ := loadCloudBuild(t)
	rt := functionsRuntime(t, cfg)
	if mf.Go == nil || !goAtMost(mf.Go.Version, rt.major, rt.minor) {
		t.Errorf("go.mod says go %v; the %s runtime builds with Go %d.%d", mf.Go, rt.id, rt.major, rt.minor)
	}
	if mf.Toolchain != nil && !goAtMost(strings.TrimPrefix(mf.Toolchain.Name, "go"), rt.major, rt.minor) {
		t.Errorf("go.mod asks for toolchain %s, newer than the %s runtime", mf.Toolchain.Name, rt.id)
	}
	framework := false
	for _, r := range mf.Require {
		if r.Mod.Path == "github.com/GoogleCloudPlatform/functions-framework-go" {
			framework = true
		}
	}
	if !framework {
		t.Error("go.mod does not require functions-framework-go: the buildpack would inject its own version")
	}
	if fi, err := os.Stat("../vendor"); err == nil && fi.IsDir() {
		t.Error("../vendor exists: the buildpack would then need the framework vendored")
	}
}

// goAtMost reports whether the go version v (1.26, 1.26.0, 1.26rc1) is at most major.minor.
func goAtMost(v string, major, minor int) bool {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return false
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(strings.TrimRightFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' }))
	if err1 != nil || err2 != nil {
		return false
	}
	return ma < major || ma == major && mi <= minor
}

// mainTemplate is the buildpack's declarative main (cmd/go/functions_framework, template
// for a root package that imports the framework's functions package).
const mainTemplate = `// Binary main file implements an HTTP server that loads and runs user's code
// on incoming HTTP requests.
package main

import (
	"log"
	"net/http"
	"os"

	_ "%s"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"
)

func main() {
	http.HandleFunc("/robots.txt", http.NotFound)
	http.HandleFunc("/favicon.ico", http.NotFound)

	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	if err := funcframework.Start(port); err != nil {
		log.Fatalf("Function failed to start: %%v\n", err)
	}
}
`

// TestUploadBuildsAndServes copies exactly the uploaded files to a fresh directory, builds
// every package there (what `go mod tidy` loads) and the buildpack's generated main, and
// starts that binary once per registered function with FUNCTION_TARGET set, as Cloud Run
// does: each must come up and answer. Skipped with -short.
func TestUploadBuildsAndServes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the module in a scratch directory")
	}
	files := upload(t, "..")
	dir := t.TempDir()
	for _, f := range files {
		if err := copyFile(filepath.Join("..", f), filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	mf, err := modfile.Parse("go.mod", readFile(t, "../go.mod"), nil)
	if err != nil {
		t.Fatal(err)
	}
	app := filepath.Join(dir, "functions.local", "app")
	if err := os.MkdirAll(app, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(app, "main.go"), fmt.Appendf(nil, mainTemplate, mf.Module.Mod.Path), 0o644); err != nil {
		t.Fatal(err)
	}

	env := append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off", "GOPROXY=off")
	goCmd := func(args ...string) {
		t.Helper()
		cmd := exec.Command("go", args...)
		cmd.Dir, cmd.Env = dir, env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s in the uploaded source: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	goCmd("build", "./...")
	bin := filepath.Join(dir, "fn")
	goCmd("build", "-o", bin, "./functions.local/app")

	for _, name := range registrations(t) {
		t.Run(name, func(t *testing.T) { serveOnce(t, bin, name) })
	}
	t.Run("unknown target", func(t *testing.T) { unknownTargetExits(t, bin) })
}

// serveOnce starts the function binary for target and expects the framework to serve it at
// "/" (a GET, which is no CloudEvent, is refused by the handler rather than not found).
func serveOnce(t *testing.T, bin, target string) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = append(os.Environ(), "PORT="+port, "FUNCTION_TARGET="+target, "K_SERVICE=fediops-test")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logs := make(chan string, 1)
	go func() {
		var b strings.Builder
		sc := bufio.NewScanner(io.LimitReader(stderr, 1<<20))
		for sc.Scan() {
			b.WriteString(sc.Text() + "\n")
		}
		logs <- b.String()
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Kill()
	}()

	client := &http.Client{Timeout: 2 * time.Second}
	for {
		select {
		case err := <-exited:
			t.Fatalf("FUNCTION_TARGET=%s: the function exited (%v):\n%s", target, err, <-logs)
		case <-ctx.Done():
			t.Fatalf("FUNCTION_TARGET=%s: no answer on port %s", target, port)
		case <-time.After(50 * time.Millisecond):
		}
		resp, err := client.Get("http://127.0.0.1:" + port + "/")
		if err != nil {
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound || resp.StatusCode >= 500 {
			t.Errorf("FUNCTION_TARGET=%s: GET / = %s, want the CloudEvent handler's refusal (400 or 405)", target, resp.Status)
		}
		return
	}
}

// unknownTargetExits shows that serveOnce proves something: with a FUNCTION_TARGET that
// is not registered, the framework refuses to start.
func unknownTargetExits(t *testing.T, bin string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = append(os.Environ(), "PORT=0", "FUNCTION_TARGET=NoSuchFunction")
	out, err := cmd.CombinedOutput()
	if err == nil || ctx.Err() != nil || !strings.Contains(string(out), "NoSuchFunction") {
		t.Errorf("FUNCTION_TARGET=NoSuchFunction: err %v, output %q; want the framework to refuse", err, out)
	}
}

func copyFile(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, fi.Mode().Perm()|0o200)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

package gotosocial

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// Version is the GoToSocial version this package runs.
const Version = "v0.17.3"

// Install is a located GoToSocial binary with the web files it needs at run time.
type Install struct {
	Binary      string // the gotosocial executable
	TemplateDir string // web/template (HTML and email templates)
	AssetDir    string // web/assets (static files; optional for the API)
	CacheDir    string // the per-version cache dir (also holds the WebAssembly compilation cache)
}

var (
	installMu   sync.Mutex
	installDone *Install
)

// Binary locates the GoToSocial binary and its web templates. It runs
// scripts/build-gotosocial.sh, which answers at once when its cache is valid and otherwise builds
// (several minutes); with FEDIOPS_GOTOSOCIAL_BIN set it uses that binary instead. It calls
// t.Fatal if that fails. The result is memoised for the life of the test binary.
func Binary(t testing.TB) Install {
	t.Helper()
	in, err := locateOrBuild()
	if err != nil {
		t.Fatalf("gotosocial: %v", err)
	}
	return in
}

func locateOrBuild() (Install, error) {
	installMu.Lock()
	defer installMu.Unlock()
	if installDone != nil {
		return *installDone, nil
	}
	cache := cacheDir()
	bin := os.Getenv("FEDIOPS_GOTOSOCIAL_BIN")
	if bin == "" {
		// The script decides whether the cache is valid (for instance, it rebuilds a binary
		// built with a Go version that breaks GoToSocial's WebAssembly runtime).
		built, err := runBuildScript()
		if err != nil {
			return Install{}, fmt.Errorf("the GoToSocial binary could not be built: %w", err)
		}
		bin = built
	}
	in, missing := locate(bin, cache)
	if missing != "" {
		return Install{}, fmt.Errorf("%s is missing", missing)
	}
	installDone = &in
	return in, nil
}

// cacheDir mirrors the script: ${FEDIOPS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fediops}/gotosocial-VERSION.
func cacheDir() string {
	base := os.Getenv("FEDIOPS_CACHE")
	if base == "" {
		xdg := os.Getenv("XDG_CACHE_HOME")
		if xdg == "" {
			home, _ := os.UserHomeDir()
			xdg = filepath.Join(home, ".cache")
		}
		base = filepath.Join(xdg, "fediops")
	}
	return filepath.Join(base, "gotosocial-"+Version)
}

// locate finds the web dirs for bin; missing names the first thing not found.
func locate(bin, cache string) (in Install, missing string) {
	in.CacheDir = cache
	in.Binary = bin
	if !isExecutable(in.Binary) {
		return in, "the GoToSocial binary " + in.Binary
	}
	// Web files: next to the binary and in the cache dir (the script copies them there), else in
	// the Go module cache (the script's `go mod tidy` downloads the module).
	candidates := []string{filepath.Join(filepath.Dir(in.Binary), "web"), filepath.Join(cache, "web"), ""}
	for i, web := range candidates {
		if web == "" {
			modcache := goModCache()
			if modcache == "" {
				candidates = candidates[:i]
				break
			}
			web = filepath.Join(modcache, "github.com", "superseriousbusiness", "gotosocial@"+Version, "web")
			candidates[i] = web
		}
		if fileExists(filepath.Join(web, "template", "index.tmpl")) {
			in.TemplateDir = filepath.Join(web, "template")
			in.AssetDir = filepath.Join(web, "assets")
			return in, ""
		}
	}
	return in, "GoToSocial's web templates (looked in " + strings.Join(candidates, ", ") + ")"
}

func goModCache() string {
	if dir := os.Getenv("GOMODCACHE"); dir != "" {
		return dir
	}
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// runBuildScript runs scripts/build-gotosocial.sh, streaming its progress to stderr, and
// returns the binary path it prints.
func runBuildScript() (string, error) {
	script, err := findBuildScript()
	if err != nil {
		return "", err
	}
	start := time.Now()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("bash", script)
	cmd.Stdout = &stdout
	cmd.Stderr = io.MultiWriter(os.Stderr, &stderr)
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s: %w\n%s", script, err, lastLines(stderr.String(), 30))
	}
	bin := strings.TrimSpace(lastLines(stdout.String(), 1))
	if d := time.Since(start); d > 10*time.Second {
		fmt.Fprintf(os.Stderr, "gotosocial: %s took %s\n", script, d.Round(time.Second))
	}
	if bin == "" {
		return "", fmt.Errorf("%s printed no binary path", script)
	}
	return bin, nil
}

// findBuildScript looks for scripts/build-gotosocial.sh above this source file, then above the
// working directory (go test runs in the package dir).
func findBuildScript() (string, error) {
	const rel = "scripts/build-gotosocial.sh"
	var starts []string
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		starts = append(starts, filepath.Dir(file))
	}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	for _, dir := range starts {
		for {
			if p := filepath.Join(dir, rel); fileExists(p) {
				return p, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return "", errors.New("cannot find " + rel + " above " + strings.Join(starts, " or "))
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

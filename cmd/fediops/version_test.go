package main

import (
	"debug/buildinfo"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersionOf(t *testing.T) {
	vcs := []debug.BuildSetting{
		{Key: "-trimpath", Value: "true"},
		{Key: "vcs", Value: "git"},
		{Key: "vcs.revision", Value: "34b53f1cdd0e6f1a3c4b5d6e7f8091a2b3c4d5e6"},
		{Key: "vcs.time", Value: "2026-11-25T10:00:00Z"},
		{Key: "vcs.modified", Value: "true"},
	}
	tests := []struct {
		name string
		info *debug.BuildInfo
		ok   bool
		want string
	}{
		{"no build information", nil, false, "(unknown)"},
		{"checkout with changes", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/fediops/fediops", Version: "(devel)"}, Settings: vcs},
			true, "(devel), revision 34b53f1cdd0e6f1a3c4b5d6e7f8091a2b3c4d5e6, committed 2026-11-25T10:00:00Z, modified, built with go1.26.8"},
		{"clean checkout", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-20261125100000-34b53f1cdd0e"}, Settings: append(vcs[:4:4], debug.BuildSetting{Key: "vcs.modified", Value: "false"})},
			true, "v0.0.0-20261125100000-34b53f1cdd0e, revision 34b53f1cdd0e6f1a3c4b5d6e7f8091a2b3c4d5e6, committed 2026-11-25T10:00:00Z, built with go1.26.8"},
		{"go install of a tag", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.0"}}, true, "v1.2.0, built with go1.26.8"},
		{"no main module version", &debug.BuildInfo{GoVersion: "go1.26.8"}, true, "(devel), built with go1.26.8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := versionOf(tt.info, tt.ok).String(); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestVersionCommandAndFlag(t *testing.T) {
	code, cmdOut, _ := runCLI(t, nil, "version")
	if code != 0 || !strings.HasPrefix(cmdOut, "fediops ") || !strings.Contains(cmdOut, runtime.Version()) {
		t.Fatalf("fediops version: exit %d, %q", code, cmdOut)
	}
	code, flagOut, _ := runCLI(t, nil, "--version")
	if code != 0 || flagOut != cmdOut {
		t.Errorf("fediops --version: exit %d, %q; want %q", code, flagOut, cmdOut)
	}
	if code, _, _ := runCLI(t, nil, "version", "extra"); code != exitConfig {
		t.Errorf("version with an argument: exit %d, want %d", code, exitConfig)
	}
}

// TestBuiltBinaryVersion builds the CLI as a user would from this checkout and runs it: both
// forms print exactly what the go command stamped into the binary, and in a git clone that is
// the checked-out revision.
func TestBuiltBinaryVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI")
	}
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gobin); err != nil {
		gobin = "go"
	}
	bin := filepath.Join(t.TempDir(), "fediops")
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	args := []string{"build", "-o", bin}
	rev, status := gitState(t)
	if rev != "" {
		args = append(args, "-buildvcs=true") // even if GOFLAGS says otherwise
	}
	if out, err := exec.Command(gobin, append(args, ".")...).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	var outs []string
	for _, arg := range []string{"version", "--version"} {
		out, err := exec.Command(bin, arg).Output()
		if err != nil {
			t.Fatalf("fediops %s: %v", arg, err)
		}
		outs = append(outs, string(out))
	}
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	want := "fediops " + versionOf(info, true).String() + "\n"
	for i, got := range outs {
		if got != want {
			t.Errorf("%s: got %q, want %q", []string{"version", "--version"}[i], got, want)
		}
	}
	if rev != "" {
		if !strings.Contains(outs[0], "revision "+rev+", committed ") {
			t.Errorf("%q lacks revision %s", outs[0], rev)
		}
		if modified := status != ""; strings.Contains(outs[0], ", modified") != modified {
			t.Errorf("%q: modified should be %v (git status: %q)", outs[0], modified, status)
		}
	}
}

// gitState returns HEAD's revision and `git status --porcelain` when the go command can stamp
// them: in a git clone (the go command does not recognise a worktree's .git file) with git
// installed. Otherwise (a source archive, a worktree) it returns "".
func gitState(t *testing.T) (rev, status string) {
	t.Helper()
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Logf("not a git checkout (%v): the version has no revision", err)
		return "", ""
	}
	if fi, err := os.Stat(filepath.Join(strings.TrimSpace(string(top)), ".git")); err != nil || !fi.IsDir() {
		t.Logf("a git worktree: the go command does not stamp its revision")
		return "", ""
	}
	out, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatalf("git rev-parse HEAD: %v", err)
	}
	st, err := exec.Command("git", "status", "--porcelain").Output()
	if err != nil {
		t.Fatalf("git status: %v", err)
	}
	return strings.TrimSpace(string(out)), string(st)
}

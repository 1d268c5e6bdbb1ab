package main

import (
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// buildVersion is what the binary knows of its own build (runtime/debug.ReadBuildInfo).
type buildVersion struct {
	Version   string // module version: a tag, a pseudo-version, or "(devel)"
	Revision  string // VCS commit, when the go command stamped it
	Time      string // VCS commit time (RFC 3339)
	Modified  bool   // the working tree had uncommitted changes
	GoVersion string
}

// versionOf reads a build's information; ok is ReadBuildInfo's second result.
func versionOf(info *debug.BuildInfo, ok bool) buildVersion {
	if !ok || info == nil {
		return buildVersion{Version: "(unknown)"}
	}
	v := buildVersion{Version: info.Main.Version, GoVersion: info.GoVersion}
	if v.Version == "" {
		v.Version = "(devel)" // the main module of a test binary or of go run has no version
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

// String is one line: version, then the revision, its time and "modified" when known, then Go.
func (v buildVersion) String() string {
	parts := []string{v.Version}
	if v.Revision != "" {
		parts = append(parts, "revision "+v.Revision)
	}
	if v.Time != "" {
		parts = append(parts, "committed "+v.Time)
	}
	if v.Modified {
		parts = append(parts, "modified")
	}
	if v.GoVersion != "" {
		parts = append(parts, "built with "+v.GoVersion)
	}
	return strings.Join(parts, ", ")
}

func currentVersion() buildVersion { return versionOf(debug.ReadBuildInfo()) }

// setVersion makes `fediops --version` print what `fediops version` prints.
func setVersion(root *cobra.Command) {
	root.Version = currentVersion().String()
	root.SetVersionTemplate("fediops {{.Version}}\n")
}

func (c *cli) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version and VCS revision of this binary",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintf(c.stdout, "fediops %s\n", currentVersion())
			return err
		},
	}
}

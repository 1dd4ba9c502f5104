package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

// Build information stamped at link time by `make build`:
//
//	-X main.version=$(git describe --tags --always --dirty)
//	-X main.revision=$(git rev-parse --short HEAD)
//	-X main.dirty=true|false
//	-X main.buildTime=<RFC 3339 UTC>
//
// A build without them (go build, go install) falls back to what the Go
// toolchain recorded (debug.ReadBuildInfo: the module version and, unless
// built with -buildvcs=false, vcs.revision, vcs.modified and vcs.time).
var (
	version   string
	revision  string
	dirty     string
	buildTime string
)

// buildStamp is the link-time stamp (tests make their own).
type buildStamp struct {
	version, revision, dirty, buildTime string
}

// versionInfo is what `oomscope version` prints.
type versionInfo struct {
	// Version is the stamped version (git describe), else the module
	// version the toolchain recorded, else "(devel)".
	Version string `json:"version"`
	// Revision is the VCS revision, "" when unknown.
	Revision string `json:"revision,omitempty"`
	// Dirty is true when the work tree had uncommitted changes; nil when
	// unknown.
	Dirty *bool `json:"dirty,omitempty"`
	// BuildTime is when the binary was built, when stamped.
	BuildTime string `json:"build_time,omitempty"`
	// CommitTime is the revision's commit time, from the toolchain's VCS
	// information.
	CommitTime string `json:"commit_time,omitempty"`
	// Source says where Revision came from: "ldflags", "buildinfo" or
	// "none".
	Source        string `json:"source"`
	GoVersion     string `json:"go_version"`
	Platform      string `json:"platform"`
	Module        string `json:"module,omitempty"`
	ModuleVersion string `json:"module_version,omitempty"`
}

// newVersionInfo combines the stamp with the toolchain's build information
// (bi may be nil).
func newVersionInfo(s buildStamp, bi *debug.BuildInfo) versionInfo {
	v := versionInfo{
		Version:   s.version,
		Revision:  s.revision,
		BuildTime: s.buildTime,
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
		Source:    "none",
	}
	if b, err := strconv.ParseBool(s.dirty); err == nil {
		v.Dirty = &b
	}
	if v.Revision != "" {
		v.Source = "ldflags"
	}
	if bi != nil {
		if bi.GoVersion != "" {
			v.GoVersion = bi.GoVersion
		}
		v.Module, v.ModuleVersion = bi.Main.Path, bi.Main.Version
		if v.Version == "" && bi.Main.Version != "" {
			v.Version = bi.Main.Version
		}
		for _, kv := range bi.Settings {
			switch kv.Key {
			case "vcs.revision":
				if v.Revision == "" {
					v.Revision, v.Source = kv.Value, "buildinfo"
				}
			case "vcs.modified":
				if b, err := strconv.ParseBool(kv.Value); err == nil && v.Dirty == nil {
					v.Dirty = &b
				}
			case "vcs.time":
				v.CommitTime = kv.Value
			}
		}
	}
	if v.Version == "" {
		v.Version = "(devel)"
	}
	return v
}

// write writes the version as a few lines of text.
func (v versionInfo) write(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "oomscope %s\n", v.Version)
	rev := v.Revision
	switch {
	case rev == "":
		rev = "unknown (not stamped: build with make build, or without -buildvcs=false)"
	case v.Dirty != nil && *v.Dirty:
		rev += " (with uncommitted changes)"
	}
	line := func(k, val string) { fmt.Fprintf(&b, "  %-10s %s\n", k, val) }
	line("revision", rev)
	if v.CommitTime != "" {
		line("committed", v.CommitTime)
	}
	if v.BuildTime != "" {
		line("built", v.BuildTime)
	}
	line("go", v.GoVersion+" "+v.Platform)
	if v.Module != "" {
		mod := v.Module
		if v.ModuleVersion != "" {
			mod += " " + v.ModuleVersion
		}
		line("module", mod)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func newVersionCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, VCS revision and build information",
		Long: `Prints the version (git describe of the source, stamped by "make build"), the
VCS revision and whether the work tree had uncommitted changes, the build
time, the Go version and platform, and the module. A binary built without
the stamp (go build, go install) shows what the Go toolchain recorded: the
module version and, unless built with -buildvcs=false, the revision.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			bi, ok := debug.ReadBuildInfo()
			if !ok {
				bi = nil
			}
			v := newVersionInfo(buildStamp{version, revision, dirty, buildTime}, bi)
			switch output {
			case "text":
				return v.write(cmd.OutOrStdout())
			case "json":
				b, err := json.Marshal(v)
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s\n", b)
				return err
			}
			return usageError{fmt.Errorf("--output %q: want text or json", output)}
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output: text or json")
	return cmd
}

package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

// TestVersionStampedBuild builds the binary with the -ldflags of `make
// build` into a temporary directory and runs `oomscope version`: the
// stamped version, revision, dirty flag and build time are printed, in
// text and JSON.
func TestVersionStampedBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool in PATH")
	}
	bin := filepath.Join(t.TempDir(), "oomscope")
	ldflags := "-X main.version=v9.8.7-3-gabc1234-dirty -X main.revision=abc1234 -X main.dirty=true -X main.buildTime=2026-03-10T12:00:00Z"
	build := exec.Command(goTool, "build", "-trimpath", "-ldflags", ldflags, "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("version: %v\n%s", err, out)
	}
	t.Logf("oomscope version:\n%s", out)
	for _, want := range []string{
		"oomscope v9.8.7-3-gabc1234-dirty\n",
		"  revision   abc1234 (with uncommitted changes)\n",
		"  built      2026-03-10T12:00:00Z\n",
		"  go         " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + "\n",
		"  module     github.com/oomscope/oomscope",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	out, err = exec.Command(bin, "version", "-o", "json").Output()
	if err != nil {
		t.Fatal(err)
	}
	var v versionInfo
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if v.Version != "v9.8.7-3-gabc1234-dirty" || v.Revision != "abc1234" || v.Dirty == nil || !*v.Dirty || v.Source != "ldflags" || v.BuildTime != "2026-03-10T12:00:00Z" {
		t.Errorf("json: %+v", v)
	}
}

func TestVersionHelp(t *testing.T) { checkHelp(t, "version") }

// TestVersionFallbacks: without a stamp the toolchain's VCS settings are
// used, and with neither the revision is said to be unknown; the stamp
// wins over the build information.
func TestVersionFallbacks(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "github.com/oomscope/oomscope", Version: "v1.2.3"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef"}, {Key: "vcs.modified", Value: "false"}, {Key: "vcs.time", Value: "2026-01-02T03:04:05Z"}}}
	text := func(v versionInfo) string {
		var b bytes.Buffer
		if err := v.write(&b); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	v := newVersionInfo(buildStamp{}, bi)
	if v.Version != "v1.2.3" || v.Revision != "0123456789abcdef" || v.Dirty == nil || *v.Dirty || v.Source != "buildinfo" || v.CommitTime != "2026-01-02T03:04:05Z" {
		t.Errorf("build info: %+v", v)
	}
	if out := text(v); !strings.Contains(out, "  revision   0123456789abcdef\n  committed  2026-01-02T03:04:05Z\n") {
		t.Errorf("build info text:\n%s", out)
	}
	v = newVersionInfo(buildStamp{version: "v2.0.0", revision: "fedcba9", dirty: "false"}, bi)
	if v.Version != "v2.0.0" || v.Revision != "fedcba9" || v.Source != "ldflags" || *v.Dirty {
		t.Errorf("stamp over build info: %+v", v)
	}
	bare := &debug.BuildInfo{Main: debug.Module{Path: "github.com/oomscope/oomscope", Version: "(devel)"}}
	for _, b := range []*debug.BuildInfo{bare, nil} {
		v = newVersionInfo(buildStamp{}, b)
		if out := text(v); v.Version != "(devel)" || v.Source != "none" || !strings.Contains(out, "revision   unknown (not stamped") {
			t.Errorf("nothing known: %+v\n%s", v, out)
		}
	}
	// The test binary itself: no stamp; this machine builds with
	// -buildvcs=false, so no revision either — but the command runs.
	code, out, errs := run(t, "", "version")
	if code != 0 || !strings.HasPrefix(out, "oomscope ") || !strings.Contains(out, "  go         go") {
		t.Errorf("version: exit %d, %q %q", code, out, errs)
	}
	if code, _, errs := run(t, "", "version", "-o", "yaml"); code != 2 || !strings.Contains(errs, `--output "yaml"`) {
		t.Errorf("-o yaml: exit %d, %q", code, errs)
	}
}

// Package goldens is the test support for the golden cases under testdata/:
// which folders hold them, which files are inputs, and how the golden tests
// parse an input. It serves the tests of packages one folder below the
// repository root (their paths are relative: ../testdata/...).
//
// A case is <case>.log (or .kmsg), the input; <case>.golden.json, the
// reports it must produce; and <case>.alt*.log, the same reports in other
// log formats.
package goldens

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oomscope/oomscope/report"

	"github.com/oomscope/oomscope/kmsg"
	"github.com/oomscope/oomscope/oomparse"
)

// Dirs returns the folders holding golden cases: hand-written per kernel
// era, real captures, qemu kernel captures, and this machine's live kills.
func Dirs() []string {
	return []string{"../testdata/cases", "../testdata/captures", "../testdata/kernels", "../testdata/live"}
}

// Inputs returns every input file of every golden case; with alternates,
// the .alt*.log files too. It fails tb when there are none.
func Inputs(tb testing.TB, alternates bool) []string {
	tb.Helper()
	return walk(tb, func(path string) bool {
		base := filepath.Base(path)
		if !strings.HasSuffix(base, ".log") && !strings.HasSuffix(base, ".kmsg") {
			return false
		}
		return alternates || !strings.Contains(base, ".alt")
	})
}

// Goldens returns every .golden.json file. It fails tb when there are none.
func Goldens(tb testing.TB) []string {
	tb.Helper()
	return walk(tb, func(path string) bool { return strings.HasSuffix(path, ".golden.json") })
}

func walk(tb testing.TB, keep func(path string) bool) []string {
	tb.Helper()
	var out []string
	for _, dir := range Dirs() {
		err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && keep(path) {
				out = append(out, path)
			}
			return nil
		})
		if err != nil {
			tb.Fatalf("goldens: walk %s: %v", dir, err)
		}
	}
	if len(out) == 0 {
		tb.Fatalf("goldens: no files found under %v", Dirs())
	}
	return out
}

// Parse parses the file at path the way `oomscope parse` does (format
// detected), with timestamps that carry no year read as 2026 UTC so that
// results do not depend on the day the test runs.
func Parse(tb testing.TB, path string, opts ...oomparse.Option) []report.Report {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	sc := kmsg.NewScanner(f, kmsg.WithYear(2026), kmsg.WithLocation(time.UTC))
	reports, err := oomparse.ParseAll(sc, opts...)
	if err != nil {
		tb.Fatalf("parse %s: %v", path, err)
	}
	return reports
}

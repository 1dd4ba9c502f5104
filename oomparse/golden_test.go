package oomparse_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/oomscope/oomscope/kmsg"
	"github.com/oomscope/oomscope/oomparse"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// goldenDirs hold the golden cases: <case>.log (or .kmsg) is the input,
// <case>.golden.json the reports it must produce, and <case>.alt*.log the
// same report in other log formats, which must produce the same reports
// (minus what a format cannot carry: sequence numbers, raw lines).
var goldenDirs = []string{"../testdata/cases", "../testdata/captures", "../testdata/kernels", "../testdata/live"}

func TestGolden(t *testing.T) {
	var inputs []string
	for _, dir := range goldenDirs {
		_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && isInput(path) {
				inputs = append(inputs, path)
			}
			return nil
		})
	}
	if len(inputs) == 0 {
		t.Fatal("no golden inputs found")
	}
	for _, in := range inputs {
		name := strings.TrimPrefix(in, "../testdata/")
		t.Run(name, func(t *testing.T) {
			got := parseFile(t, in)
			golden := strings.TrimSuffix(strings.TrimSuffix(in, ".log"), ".kmsg") + ".golden.json"
			if *update {
				writeGolden(t, golden, got)
				return
			}
			want := readGolden(t, golden)
			if diff := cmp.Diff(want, normalize(got, false)); diff != "" {
				t.Errorf("reports differ from %s (-want +got):\n%s", golden, diff)
			}
			for _, alt := range alternates(in) {
				alt := alt
				t.Run(filepath.Base(alt), func(t *testing.T) {
					a := normalize(parseFile(t, alt), true)
					w := normalize(want, true)
					alignFormats(w, a)
					if diff := cmp.Diff(w, a); diff != "" {
						t.Errorf("%s parses differently from %s (-want +got):\n%s", alt, in, diff)
					}
				})
			}
		})
	}
}

func isInput(path string) bool {
	base := filepath.Base(path)
	if strings.Contains(base, ".alt") {
		return false
	}
	return strings.HasSuffix(base, ".log") || strings.HasSuffix(base, ".kmsg")
}

func alternates(in string) []string {
	stem := strings.TrimSuffix(strings.TrimSuffix(in, ".log"), ".kmsg")
	m, _ := filepath.Glob(stem + ".alt*.log")
	return m
}

// parseFile parses a file the way `oomscope parse` does (format detected).
func parseFile(t *testing.T, path string) []oomparse.Report {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := kmsg.NewScanner(f, kmsg.WithYear(2026), kmsg.WithLocation(time.UTC))
	reports, err := oomparse.ParseAll(sc)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	return reports
}

// normalize drops what golden files do not hold (raw lines: asserted by
// their own tests) and, across formats, what a format cannot carry.
func normalize(in []oomparse.Report, acrossFormats bool) []oomparse.Report {
	out := make([]oomparse.Report, len(in))
	for i, r := range in {
		r.Raw, r.RawDropped = nil, 0
		if acrossFormats {
			r.First.Seq, r.Last.Seq = 0, 0
			r.First.Wall, r.Last.Wall = nil, nil
			r.Gap, r.LostRecords = false, 0
			r.Victims = append([]oomparse.Victim(nil), r.Victims...)
			for j := range r.Victims {
				r.Victims[j].Seq = 0
			}
			r.Problems = nil
			r.ID = ""
		}
		out[i] = r
	}
	return out
}

// alignFormats drops from want what the alternate format of got cannot
// carry: a host name that only the syslog and journal formats have, and
// kernel timestamps (dmesg -T, journalctl short-precise print none).
func alignFormats(want, got []oomparse.Report) {
	for i := range got {
		if i >= len(want) {
			return
		}
		if want[i].Host == "" {
			got[i].Host = ""
		}
		if got[i].First.MonoUsec == nil {
			want[i].First.MonoUsec = nil
		}
		if got[i].Last.MonoUsec == nil {
			want[i].Last.MonoUsec = nil
		}
	}
}

func writeGolden(t *testing.T, path string, reports []oomparse.Report) {
	t.Helper()
	b, err := json.MarshalIndent(normalize(reports, false), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readGolden(t *testing.T, path string) []oomparse.Report {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./oomparse -run TestGolden -update to create it)", err)
	}
	var want []oomparse.Report
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&want); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return want
}

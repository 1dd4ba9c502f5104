package oomparse_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/oomscope/oomscope/internal/goldens"
	"github.com/oomscope/oomscope/report"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func TestGolden(t *testing.T) {
	// Every case's input must produce its golden reports, and its
	// alternates (other log formats) the same reports, minus what a format
	// cannot carry (sequence numbers, raw lines).
	for _, in := range goldens.Inputs(t, false) {
		name := strings.TrimPrefix(in, "../testdata/")
		t.Run(name, func(t *testing.T) {
			got := goldens.Parse(t, in)
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
					a := normalize(goldens.Parse(t, alt), true)
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

func alternates(in string) []string {
	stem := strings.TrimSuffix(strings.TrimSuffix(in, ".log"), ".kmsg")
	m, _ := filepath.Glob(stem + ".alt*.log")
	return m
}

// normalize drops what golden files do not hold (raw lines: asserted by
// their own tests) and, across formats, what a format cannot carry.
func normalize(in []report.Report, acrossFormats bool) []report.Report {
	out := make([]report.Report, len(in))
	for i, r := range in {
		r.Raw, r.RawDropped = nil, 0
		if acrossFormats {
			r.First.Seq, r.Last.Seq = 0, 0
			r.First.Wall, r.Last.Wall = nil, nil
			r.Gap, r.LostRecords = false, 0
			r.Victims = append([]report.Victim(nil), r.Victims...)
			for j := range r.Victims {
				r.Victims[j].Seq = 0
			}
			r.AlreadyExiting = append([]report.ExitingTask(nil), r.AlreadyExiting...)
			for j := range r.AlreadyExiting {
				r.AlreadyExiting[j].Seq = 0
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
func alignFormats(want, got []report.Report) {
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

func writeGolden(t *testing.T, path string, reports []report.Report) {
	t.Helper()
	b, err := json.MarshalIndent(normalize(reports, false), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readGolden(t *testing.T, path string) []report.Report {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./oomparse -run TestGolden -update to create it)", err)
	}
	var want []report.Report
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&want); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return want
}

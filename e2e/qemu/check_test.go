package qemu

import (
	"os"
	"strings"
	"testing"

	"github.com/oomscope/oomscope/e2e/qemu/internal/frame"
	"github.com/oomscope/oomscope/report"
)

// The sample is the frame port of a real boot of Debian's 6.1 kernel running
// the v2-container scenario, with oomscope run in the guest.
const sample = "testdata/frames-debian-6.1-v2-container.log"

func readSample(t *testing.T) (*Boot, Segment) {
	t.Helper()
	f, err := os.Open(sample)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := ReadBoot(f)
	if err != nil {
		t.Fatal(err)
	}
	segs := b.Segments()
	if len(segs) != 1 {
		t.Fatalf("segments: got %d, want 1", len(segs))
	}
	return b, segs[0]
}

func TestReadBoot(t *testing.T) {
	b, seg := readSample(t)
	if !b.Done || b.BadFrames != 0 || len(b.Truths) != 1 || len(b.Reports) != 1 {
		t.Fatalf("boot: done=%v bad=%d truths=%d reports=%d, want true 0 1 1", b.Done, b.BadFrames, len(b.Truths), len(b.Reports))
	}
	if seg.BeginSeq == 0 || seg.EndSeq <= seg.BeginSeq {
		t.Fatalf("markers: begin %d end %d", seg.BeginSeq, seg.EndSeq)
	}
	for _, l := range seg.Lines {
		if strings.Contains(l, "oomscope-e2e:") {
			t.Fatalf("marker inside the capture: %q", l)
		}
	}
	if !strings.Contains(string(seg.Capture()), "invoked oom-killer") {
		t.Fatal("capture lacks the report header")
	}
}

func TestCheck(t *testing.T) {
	b, seg := readSample(t)
	host, err := ParseSegment(seg)
	if err != nil {
		t.Fatal(err)
	}
	guest, err := b.GuestReports(seg)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		mutate  func(s *Segment, rs []report.Report) []report.Report
		reports []report.Report
		want    string // "" = pass, else a substring of a reason
	}{
		{name: "host parse passes", reports: host},
		{name: "guest reports pass", reports: guest},
		{name: "wrong limit written", reports: host, want: "limit: expected 16777216",
			mutate: func(s *Segment, rs []report.Report) []report.Report {
				s.Truth.Cgroups[0].Limit = "16777216"
				return rs
			}},
		{name: "missing report", reports: host, want: "in no parsed report",
			mutate: func(s *Segment, rs []report.Report) []report.Report { return nil }},
		{name: "wrong victim comm", reports: host, want: `comm: expected "bash"`,
			mutate: func(s *Segment, rs []report.Report) []report.Report {
				s.Truth.Processes[0].Comm = "bash"
				return rs
			}},
		{name: "wrong task cgroup", reports: host, want: "victim cgroup (task_memcg)",
			mutate: func(s *Segment, rs []report.Report) []report.Report {
				out := append([]report.Report(nil), rs...)
				out[0].TaskMemcg = "/elsewhere"
				return out
			}},
		{name: "task table expected absent", reports: host, want: "vm.oom_dump_tasks=0",
			mutate: func(s *Segment, rs []report.Report) []report.Report {
				s.Truth.Expect.TaskTable = false
				return rs
			}},
		{name: "guest failure", reports: host, want: "guest: scenario failed: boom",
			mutate: func(s *Segment, rs []report.Report) []report.Report {
				s.Truth.Status, s.Truth.Error = "failed", "boom"
				return rs
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := seg
			// Deep-copy what the mutations touch.
			s.Truth.Cgroups = nil
			for _, cg := range seg.Truth.Cgroups {
				c := *cg
				s.Truth.Cgroups = append(s.Truth.Cgroups, &c)
			}
			s.Truth.Processes = nil
			for _, p := range seg.Truth.Processes {
				c := *p
				s.Truth.Processes = append(s.Truth.Processes, &c)
			}
			rs := tc.reports
			if tc.mutate != nil {
				rs = tc.mutate(&s, rs)
			}
			res := Check("debian-6.1", s, rs)
			reasons := strings.Join(res.Reasons, "\n")
			if tc.want == "" {
				if res.Outcome != Pass {
					t.Fatalf("outcome %s, want pass:\n%s", res.Outcome, reasons)
				}
				if !strings.Contains(res.Summary, "1 kills, 1 reports") {
					t.Fatalf("summary %q", res.Summary)
				}
				return
			}
			if res.Outcome != Fail || !strings.Contains(reasons, tc.want) {
				t.Fatalf("outcome %s, reasons:\n%s\nwant a FAIL naming %q", res.Outcome, reasons, tc.want)
			}
			if !strings.HasPrefix(tc.want, "guest:") && !strings.Contains(reasons, "expected") {
				t.Fatalf("reasons do not name the expected fact:\n%s", reasons)
			}
		})
	}
}

func TestFrameRoundTrip(t *testing.T) {
	line := string(frame.Append(nil, frame.Kmsg, []byte("6,1,2,-;a\nb")))
	kind, payload, ok, err := frame.Parse("noise" + strings.TrimSuffix(line, "\n") + "\r")
	if !ok || err != nil || kind != frame.Kmsg || payload != "6,1,2,-;a b" {
		t.Fatalf("parse: kind %c payload %q ok %v err %v", kind, payload, ok, err)
	}
	bad := strings.Replace(line, "a b", "a c", 1)
	if _, _, ok, err := frame.Parse(bad); !ok || err == nil {
		t.Fatalf("corrupt frame accepted: ok %v err %v", ok, err)
	}
}

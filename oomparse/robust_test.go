package oomparse

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/oomscope/oomscope/report"

	"github.com/oomscope/oomscope/kmsg"
)

// records parses /dev/kmsg lines.
func records(t *testing.T, lines ...string) []kmsg.Record {
	t.Helper()
	out := make([]kmsg.Record, 0, len(lines))
	for _, l := range lines {
		r, err := kmsg.ParseRecord(l)
		if err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		out = append(out, r)
	}
	return out
}

func mustNew(t *testing.T, opts ...Option) *Parser {
	t.Helper()
	p, err := New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A short 6.1 memcg report, seq 10-15, 1 ms apart.
var shortReport = []string{
	"4,10,5000000,-;a invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
	"4,11,5001000,-;CPU: 0 PID: 11 Comm: a Not tainted 6.1.0-26-amd64 #1  Debian 6.1.112-1",
	"6,12,5002000,-;memory: usage 10240kB, limit 10240kB, failcnt 1",
	"6,13,5003000,-;swap: usage 0kB, limit 0kB, failcnt 0",
	"6,14,5004000,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/a,task_memcg=/a,task=a,pid=11,uid=0",
	"3,15,5005000,-;Memory cgroup out of memory: Killed process 11 (a) total-vm:12000kB, anon-rss:9000kB, file-rss:100kB, shmem-rss:0kB, UID:0 pgtables:60kB oom_score_adj:0",
}

// TestEmitWithoutNextReport: a finished report comes out when its linger
// time has passed (Expire), without waiting for another report or the end
// of the stream, and a reaper line within the linger time is attached.
func TestEmitWithoutNextReport(t *testing.T) {
	p := mustNew(t, WithVictimLinger(2*time.Second))
	var out []report.Report
	for _, r := range records(t, shortReport...) {
		out = p.Feed(out, r)
	}
	out = p.Expire(out, 6*time.Second) // 0.995 s after the victim: not yet
	if len(out) != 0 {
		t.Fatalf("report emitted before its linger time: %d", len(out))
	}
	for _, r := range records(t, "6,16,6500000,-;oom_reaper: reaped process 11 (a), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB") {
		out = p.Feed(out, r)
	}
	// The reaper record is held for continuation fragments first.
	d, ok := p.Deadline()
	if !ok || d != 6520*time.Millisecond {
		t.Fatalf("deadline %v %v, want the reaper record's time + %v", d, ok, contGrace)
	}
	if out = p.Expire(out, d); len(out) != 0 {
		t.Fatal("report emitted at the reaper line")
	}
	d, ok = p.Deadline()
	if !ok || d != 5005*time.Millisecond+2*time.Second {
		t.Fatalf("deadline %v %v, want victim time + linger", d, ok)
	}
	out = p.Expire(out, d)
	if len(out) != 1 {
		t.Fatalf("got %d reports at the deadline, want 1", len(out))
	}
	r := out[0]
	if r.Incomplete || r.Partial || len(r.Victims) != 1 || r.Victims[0].Reaper == nil || !r.Victims[0].Reaper.Reaped {
		t.Fatalf("report not whole: incomplete=%v partial=%v victims=%+v", r.Incomplete, r.Partial, r.Victims)
	}
	if r.Last.Seq != 16 {
		t.Errorf("last seq %d, want 16 (the reaper line)", r.Last.Seq)
	}
	if !p.Idle() {
		t.Error("parser not idle after the report")
	}
}

// TestLingerZero: with no linger, the first foreign record ends the report.
func TestLingerZero(t *testing.T) {
	p := mustNew(t, WithVictimLinger(0))
	var out []report.Report
	recs := records(t, append(shortReport, "6,16,5006000,-;usb 1-1: new high-speed USB device number 3 using xhci_hcd",
		"6,17,5007000,-;eth0: link up")...)
	for i, r := range recs {
		out = p.Feed(out, r)
		if i < len(recs)-1 && len(out) != 0 {
			t.Fatalf("report emitted at record %d", i)
		}
	}
	if len(out) != 1 || out[0].Incomplete {
		t.Fatalf("got %d reports, want one complete report after the foreign record", len(out))
	}
}

// TestUnfinishedReportEnds: a report without a victim ends, flagged
// incomplete, after too many unrelated records, or after the idle timeout.
func TestUnfinishedReportEnds(t *testing.T) {
	head := shortReport[:4]
	t.Run("unrelated", func(t *testing.T) {
		p := mustNew(t, WithMaxUnrelated(3))
		var out []report.Report
		lines := append([]string(nil), head...)
		for i := 0; i < 3; i++ {
			lines = append(lines, fmt.Sprintf("6,%d,%d,-;eth0: carrier lost %d", 14+i, 5004000+i*1000, i))
		}
		for _, r := range records(t, lines...) {
			out = p.Feed(out, r)
		}
		out = p.Expire(out, 5100*time.Millisecond) // release the held record
		if len(out) != 1 || !out[0].Incomplete || len(out[0].Victims) != 0 {
			t.Fatalf("got %+v, want one incomplete report", out)
		}
		if !strings.Contains(strings.Join(out[0].Problems, "|"), "too many records") {
			t.Errorf("problems %q do not say why", out[0].Problems)
		}
	})
	t.Run("idle", func(t *testing.T) {
		p := mustNew(t, WithIdleTimeout(time.Second))
		var out []report.Report
		for _, r := range records(t, head...) {
			out = p.Feed(out, r)
		}
		out = p.Expire(out, 5003*time.Millisecond+999*time.Millisecond)
		if len(out) != 0 {
			t.Fatal("report ended before the idle timeout")
		}
		out = p.Expire(out, 5003*time.Millisecond+time.Second)
		if len(out) != 1 || !out[0].Incomplete {
			t.Fatalf("got %d reports, want one incomplete", len(out))
		}
	})
}

// TestTruncatedKeepsRaw: a report cut by the end of the input keeps every
// raw line read (golden files do not hold raw lines).
func TestTruncatedKeepsRaw(t *testing.T) {
	b, err := os.ReadFile("../testdata/cases/robust-truncated-eof.log")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	reports, err := ParseAll(kmsg.NewScanner(strings.NewReader(string(b))))
	if err != nil {
		t.Fatal(err)
	}
	if len(reports) != 1 || !reports[0].Incomplete {
		t.Fatalf("want one incomplete report, got %d", len(reports))
	}
	if got := reports[0].Raw; strings.Join(got, "\n") != strings.Join(lines, "\n") {
		t.Errorf("raw lines differ from the input:\n got %q\nwant %q", got, lines)
	}
}

// TestRawBounds: raw records beyond the line or byte cap are counted, not kept.
func TestRawBounds(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opt     Option
		kept    int
		dropped int
	}{
		{"lines", WithMaxLines(4), 4, 2},
		{"bytes", WithMaxRawBytes(200), 2, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := mustNew(t, tc.opt)
			var out []report.Report
			for _, r := range records(t, shortReport...) {
				out = p.Feed(out, r)
			}
			out = p.Flush(out)
			if len(out) != 1 {
				t.Fatalf("got %d reports", len(out))
			}
			if len(out[0].Raw) != tc.kept || out[0].RawDropped != tc.dropped {
				t.Errorf("kept %d dropped %d, want %d and %d", len(out[0].Raw), out[0].RawDropped, tc.kept, tc.dropped)
			}
		})
	}
}

// TestContinuationFragments: fragments flagged 'c' from the same caller are
// joined to the record before them (a header whose pr_cont pieces could not
// be merged by printk), those of another caller are not.
func TestContinuationFragments(t *testing.T) {
	p := mustNew(t)
	var out []report.Report
	for _, r := range records(t,
		"4,1,100,-,caller=T5;x invoked oom-killer: gfp_mask=0x14000c0(GFP_KERNEL), nodemask=",
		"4,2,101,c,caller=T5;(null)",
		"4,3,102,c,caller=T5;,  order=3, oom_score_adj=-17",
		"4,4,103,c,caller=T9;stray fragment of another task",
		"3,5,104,-,caller=T5;Out of memory: Killed process 5 (x) total-vm:4kB, anon-rss:4kB, file-rss:0kB, shmem-rss:0kB",
	) {
		out = p.Feed(out, r)
	}
	out = p.Flush(out)
	if len(out) != 1 {
		t.Fatalf("got %d reports", len(out))
	}
	tr := out[0].Trigger
	if tr == nil || tr.Order == nil || *tr.Order != 3 || tr.OOMScoreAdj == nil || *tr.OOMScoreAdj != -17 || out[0].Nodemask != "(null)" {
		t.Fatalf("header not rebuilt from its fragments: %+v nodemask=%q", tr, out[0].Nodemask)
	}
	if out[0].Raw[0] != "4,1,100,-,caller=T5;x invoked oom-killer: gfp_mask=0x14000c0(GFP_KERNEL), nodemask=\n4,2,101,c,caller=T5;(null)\n4,3,102,c,caller=T5;,  order=3, oom_score_adj=-17" {
		t.Errorf("raw of the joined record: %q", out[0].Raw[0])
	}
}

// TestFragmentFloodBounded: endless (even empty) continuation fragments do
// not grow the held record without bound.
func TestFragmentFloodBounded(t *testing.T) {
	p := mustNew(t)
	head := records(t, "4,1,100,-;x invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0")[0]
	p.Feed(nil, head)
	frag := records(t, "4,2,100,c;")[0]
	for i := 0; i < 200000; i++ {
		frag.Seq = uint64(i + 2)
		p.Feed(nil, frag)
		if len(p.pendRaw) > 2*maxMerged || len(p.pending.Raw) > 2*maxMerged {
			t.Fatalf("held record grew to %d bytes after %d fragments", max(len(p.pendRaw), len(p.pending.Raw)), i)
		}
	}
}

// TestDuplicatesAndGaps: a record seen twice (a reader that re-read the
// ring) is dropped; a gap outside any report is reported, not flagged on
// the next report.
func TestDuplicatesAndGaps(t *testing.T) {
	var errs []error
	p := mustNew(t, WithErrorHandler(func(e *LineError) { errs = append(errs, e) }))
	var out []report.Report
	recs := records(t, append([]string{"6,5,4000000,-;eth0: up"}, shortReport...)...)
	recs = append(recs[:3], recs[2:]...) // seq 11 twice
	for _, r := range recs {
		out = p.Feed(out, r)
	}
	out = p.Flush(out)
	if len(out) != 1 {
		t.Fatalf("got %d reports", len(out))
	}
	if out[0].Gap || out[0].Incomplete || len(out[0].Raw) != len(shortReport) {
		t.Errorf("gap=%v incomplete=%v raw=%d, want a whole report of %d records", out[0].Gap, out[0].Incomplete, len(out[0].Raw), len(shortReport))
	}
	if len(errs) != 1 || !errors.Is(errs[0], ErrGap) {
		t.Errorf("errors %v, want the one gap between seq 5 and 10", errs)
	}
}

// TestSectionBounds: hostile input cannot grow a report's sections beyond
// their caps; what is dropped is said in Problems.
func TestSectionBounds(t *testing.T) {
	p := mustNew(t, WithMaxTasks(3))
	var out []report.Report
	feed := func(text string) {
		out = p.Feed(out, kmsg.Record{Text: text})
	}
	feed("x invoked oom-killer: gfp_mask=0x0, order=0, oom_score_adj=0")
	feed("Mem-Info:")
	for i := 0; i < maxMemInfoLines+50; i++ {
		feed(fmt.Sprintf("Node 0 hugepages_total=%d hugepages_free=0 hugepages_surp=0 hugepages_size=2048kB", i))
	}
	feed("Unreclaimable slab info:")
	for i := 0; i < maxSlabRows+10; i++ {
		feed(fmt.Sprintf("cache-%d 4KB 4KB", i))
	}
	feed("[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name")
	for i := 0; i < 10; i++ {
		feed(fmt.Sprintf("[%7d] 0 %d 10 %d 4096 0 0 %s", i+1, i+1, i, strings.Repeat("n", 100)))
	}
	feed("Tasks in /g are going to be killed due to memory.oom.group set")
	for i := 0; i < 10; i++ {
		feed(fmt.Sprintf("Killed process %d (%s) total-vm:4kB, anon-rss:4kB, file-rss:0kB, shmem-rss:0kB", i+1, strings.Repeat("c", 100)))
	}
	out = p.Flush(out)
	if len(out) != 1 {
		t.Fatalf("got %d reports", len(out))
	}
	r := out[0]
	if n := len(r.MemInfo.Other); n != maxMemInfoLines {
		t.Errorf("%d Mem-Info lines kept, want %d", n, maxMemInfoLines)
	}
	if len(r.Slab) != maxSlabRows {
		t.Errorf("%d slab rows kept, want %d", len(r.Slab), maxSlabRows)
	}
	if len(r.Tasks) != 3 || r.TasksTotal != 10 || r.TasksDropped != 7 {
		t.Errorf("tasks kept %d total %d dropped %d, want 3/10/7", len(r.Tasks), r.TasksTotal, r.TasksDropped)
	}
	for _, tk := range r.Tasks {
		if len(tk.Name) != maxNameBytes {
			t.Errorf("task name of %d bytes", len(tk.Name))
		}
	}
	if len(r.Victims) != 3 {
		t.Errorf("%d victims kept, want the cap 3", len(r.Victims))
	}
	probs := strings.Join(r.Problems, "|")
	for _, want := range []string{"Mem-Info lines", "unreclaimable slab lines", "victim lines"} {
		if !strings.Contains(probs, want) {
			t.Errorf("problems %q do not mention %q", probs, want)
		}
	}
}

// TestReaperAfterNextReport: the oom_reaper line of a report's victim that
// arrives after the next report started (the reaper runs later, 2 s later
// from 5.15 on) is attached to its report, which waits for it until its
// linger time and is delivered before the next report.
func TestReaperAfterNextReport(t *testing.T) {
	p := mustNew(t, WithVictimLinger(3*time.Second))
	lines := append([]string(nil), shortReport...)
	lines = append(lines,
		"4,16,5500000,-;b invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
		"6,17,5501000,-;memory: usage 10240kB, limit 10240kB, failcnt 2",
		"6,18,7005000,-,caller=T51;oom_reaper: reaped process 11 (a), now anon-rss:0kB, file-rss:4kB, shmem-rss:0kB",
		"3,19,7006000,-;Memory cgroup out of memory: Killed process 22 (b) total-vm:12000kB, anon-rss:9000kB, file-rss:100kB, shmem-rss:0kB, UID:0 pgtables:60kB oom_score_adj:0",
	)
	var out []report.Report
	for _, r := range records(t, lines...) {
		out = p.Feed(out, r)
	}
	if len(out) != 0 {
		t.Fatalf("%d reports delivered before the first one's linger time", len(out))
	}
	if p.Idle() {
		t.Fatal("Idle with a report waiting")
	}
	out = p.Expire(out, 5005*time.Millisecond+3*time.Second)
	if len(out) != 1 {
		t.Fatalf("got %d reports at the first deadline, want 1", len(out))
	}
	a := out[0]
	if a.Victims[0].PID != 11 || a.Victims[0].Reaper == nil || a.Victims[0].Reaper.FileRSSBytes == nil || *a.Victims[0].Reaper.FileRSSBytes != 4096 {
		t.Fatalf("first report's victim %+v, want pid 11 with its reaper line", a.Victims[0])
	}
	if a.Last.Seq != 18 || a.Raw[len(a.Raw)-1] != lines[len(lines)-2] {
		t.Errorf("first report ends at seq %d with %q, want the reaper record", a.Last.Seq, a.Raw[len(a.Raw)-1])
	}
	out = p.Flush(out[:0])
	if len(out) != 1 || out[0].Victims[0].PID != 22 || out[0].Victims[0].Reaper != nil {
		t.Fatalf("second report: %+v", out)
	}
	for _, raw := range out[0].Raw {
		if strings.Contains(raw, "oom_reaper") {
			t.Error("the reaper record went to the second report too")
		}
	}
	if !p.Idle() {
		t.Error("not idle after Flush")
	}
}

// TestHeldBounded: at most maxHeld finished reports wait for reaper lines;
// older ones are delivered, in order, when more finish.
func TestHeldBounded(t *testing.T) {
	p := mustNew(t, WithVictimLinger(time.Hour))
	var out []report.Report
	for i := 0; i < maxHeld+5; i++ {
		out = p.Feed(out, kmsg.Record{Text: fmt.Sprintf("Out of memory: Killed process %d (x) total-vm:4kB, anon-rss:4kB, file-rss:0kB, shmem-rss:0kB", 100+i),
			Mono: time.Duration(i) * time.Millisecond, HasMono: true})
	}
	out = p.Expire(out, 100*time.Millisecond) // release the held record
	if len(p.held) > maxHeld {
		t.Fatalf("%d reports held", len(p.held))
	}
	got := len(out)
	out = p.Flush(out)
	if len(out) != maxHeld+5 || got == 0 {
		t.Fatalf("delivered %d before Flush and %d in all, want some and %d", got, len(out), maxHeld+5)
	}
	for i, r := range out {
		if r.Victims[0].PID != 100+i {
			t.Fatalf("report %d has victim %d: out of order", i, r.Victims[0].PID)
		}
	}
}

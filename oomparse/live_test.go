package oomparse

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/oomscope/oomscope/kmsg"
	"github.com/oomscope/oomscope/report"
)

// liveRun feeds recs to p as a live reader does: before each record, and
// at the end, Expire is called at every deadline passed by then (now is
// the record's own stamp: the reader is never behind). It returns the
// reports with the kernel time each left the parser.
func liveRun(p *Parser, recs []kmsg.Record, end time.Duration) (out []report.Report, at []time.Duration) {
	expireUntil := func(now time.Duration) {
		for {
			d, ok := p.Deadline()
			if !ok || d > now {
				return
			}
			n := len(out)
			out = p.Expire(out, d)
			for range len(out) - n {
				at = append(at, d)
			}
			if d2, ok2 := p.Deadline(); ok2 && d2 == d && len(out) == n {
				return // no progress at this deadline
			}
		}
	}
	for _, r := range recs {
		expireUntil(r.Mono)
		n := len(out)
		out = p.Feed(out, r)
		for range len(out) - n {
			at = append(at, r.Mono)
		}
	}
	expireUntil(end)
	return out, at
}

// TestLiveTimingLatency: with WithLiveTiming a report leaves the parser
// LiveVictimLinger after its victim line, not seconds later, and a
// rate-limited bare victim line (the storm's) as fast.
func TestLiveTimingLatency(t *testing.T) {
	lines := append(append([]string(nil), shortReport...),
		"3,16,5017000,-;Memory cgroup out of memory: Killed process 12 (a) total-vm:12000kB, anon-rss:9000kB, file-rss:100kB, shmem-rss:0kB, UID:0 pgtables:60kB oom_score_adj:0")
	p := mustNew(t, WithLiveTiming())
	out, at := liveRun(p, records(t, lines...), time.Minute)
	if len(out) != 2 {
		t.Fatalf("got %d reports, want 2", len(out))
	}
	victim := []time.Duration{5005 * time.Millisecond, 5017 * time.Millisecond}
	for i, r := range out {
		if r.Victims[0].PID != 11+i {
			t.Errorf("report %d: victim %d, want %d", i, r.Victims[0].PID, 11+i)
		}
		// The second kill ends the first report at its own line (a
		// second victim without memory.oom.group is another report).
		if lat := at[i] - victim[i]; lat > LiveVictimLinger+LiveContinuationGrace {
			t.Errorf("report %d left %v after its victim line, want at most %v", i, lat, LiveVictimLinger+LiveContinuationGrace)
		}
	}
	if out[0].Partial || !out[1].Partial {
		t.Errorf("partial: %v %v, want false true", out[0].Partial, out[1].Partial)
	}
	if !p.Idle() {
		t.Error("not idle after the reports left")
	}
}

// TestLiveTimingGroup: memory.oom.group members printed in the same
// oom_kill_process call stay in one report, also with the 14.6 ms between
// two members that the Debian 6.12 kernel under qemu TCG printed (the
// capture), and the report leaves LiveGroupLinger after the last member.
func TestLiveTimingGroup(t *testing.T) {
	for _, name := range []string{"debian-5.10-v2-oom-group", "debian-6.1-v2-oom-group", "debian-6.12-v2-oom-group"} {
		t.Run(name, func(t *testing.T) {
			f, err := os.Open("../testdata/kernels/" + name + ".kmsg")
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			sc := kmsg.NewScanner(f)
			var recs []kmsg.Record
			for sc.Scan() {
				recs = append(recs, sc.Record())
			}
			if err := sc.Err(); err != nil {
				t.Fatal(err)
			}
			if _, err := f.Seek(0, 0); err != nil {
				t.Fatal(err)
			}
			want, err := ParseAll(kmsg.NewScanner(f))
			if err != nil {
				t.Fatal(err)
			}
			got, at := liveRun(mustNew(t, WithLiveTiming()), recs, recs[len(recs)-1].Mono+time.Minute)
			if len(got) != len(want) {
				t.Fatalf("live: %d reports, offline: %d", len(got), len(want))
			}
			groups := 0
			for i := range got {
				if len(got[i].Victims) != len(want[i].Victims) {
					t.Errorf("report %d: %d victims live, %d offline: split", i, len(got[i].Victims), len(want[i].Victims))
				}
				if got[i].OOMGroup == "" {
					continue
				}
				groups++
				last := monoOf(t, recs, got[i].Victims[len(got[i].Victims)-1].Seq)
				if lat := at[i] - last; lat > LiveGroupLinger+LiveContinuationGrace {
					t.Errorf("group report left %v after its last member, want at most %v", lat, LiveGroupLinger+LiveContinuationGrace)
				}
			}
			if groups == 0 {
				t.Fatal("no memory.oom.group report in the capture")
			}
		})
	}
}

// monoOf is the kernel stamp of the record seq of recs.
func monoOf(t *testing.T, recs []kmsg.Record, seq uint64) time.Duration {
	t.Helper()
	for _, r := range recs {
		if r.Seq == seq {
			return r.Mono
		}
	}
	t.Fatalf("no record %d", seq)
	return 0
}

// TestLateReaperSwallowed: an oom_reaper line that comes after its report
// left (with WithLiveTiming, every one from 5.15 on: 2 s late) is counted
// and dropped — attached to nothing, not a victim of the report open when
// it arrives, whatever state that report is in, and no report of its own.
func TestLateReaperSwallowed(t *testing.T) {
	reaper := "6,%d,%d,-;oom_reaper: reaped process 11 (a), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB"
	next := []string{
		"4,17,7000000,-;b invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
		"6,18,7001000,-;memory: usage 10240kB, limit 10240kB, failcnt 2",
		"6,19,7002000,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/b,task_memcg=/b,task=b,pid=22,uid=0",
	}
	killB := "3,21,7010000,-;Memory cgroup out of memory: Killed process 22 (b) total-vm:12000kB, anon-rss:9000kB, file-rss:100kB, shmem-rss:0kB, UID:0 pgtables:60kB oom_score_adj:0"
	cases := []struct {
		name  string
		lines []string
	}{
		{"idle", []string{fmt.Sprintf(reaper, 16, 7005000)}},
		{"inside the next report, before its victim", append(append([]string(nil), next...), fmt.Sprintf(reaper, 20, 7005000), killB)},
		{"after the next report's victim", append(append(append([]string(nil), next...), killB), fmt.Sprintf(reaper, 22, 7011000))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := mustNew(t, WithLiveTiming())
			recs := records(t, append(append([]string(nil), shortReport...), tc.lines...)...)
			out, _ := liveRun(p, recs, time.Minute)
			if p.LateReaperLines() != 1 {
				t.Errorf("LateReaperLines() = %d, want 1", p.LateReaperLines())
			}
			for i, r := range out {
				for _, v := range r.Victims {
					if v.Reaper != nil || v.Inferred != "" || v.PID == 11 && i > 0 {
						t.Errorf("report %d: victim %+v: the late reaper line was used", i, v)
					}
				}
				for _, raw := range r.Raw {
					if strings.Contains(raw, "oom_reaper") {
						t.Errorf("report %d holds the late reaper line", i)
					}
				}
			}
			if wantN := 1 + strings.Count(strings.Join(tc.lines, "\n"), "Killed process"); len(out) != wantN {
				t.Errorf("got %d reports, want %d", len(out), wantN)
			}
		})
	}
}

// TestReaperOfChosenStillInfers: a reaper line about the pid the open report
// chose still names that report's victim when its Killed line is missing,
// even if the pid was a victim of a report delivered before (pids are
// reused): only the reaper lines that can belong to nothing open are late.
func TestReaperOfChosenStillInfers(t *testing.T) {
	p := mustNew(t, WithLiveTiming())
	lines := append(append([]string(nil), shortReport...),
		"4,17,7000000,-;a invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
		"6,18,7001000,-;memory: usage 10240kB, limit 10240kB, failcnt 2",
		"6,19,7002000,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/a,task_memcg=/a,task=a,pid=11,uid=0",
		"6,21,7003000,-;oom_reaper: reaped process 11 (a), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB",
	)
	out, _ := liveRun(p, records(t, lines...), time.Minute)
	if len(out) != 2 || len(out[1].Victims) != 1 || out[1].Victims[0].Inferred != "oom_reaper" {
		t.Fatalf("reports %+v, want the second with its victim inferred from the reaper line", out)
	}
	if p.LateReaperLines() != 0 {
		t.Errorf("LateReaperLines() = %d, want 0", p.LateReaperLines())
	}
}

// TestLiveTimingOptions: the new options validate, and an option after
// WithLiveTiming overrides its value.
func TestLiveTimingOptions(t *testing.T) {
	for _, o := range []Option{WithGroupLinger(-time.Second), WithContinuationGrace(0)} {
		if _, err := New(o); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("New: %v, want ErrInvalidOption", err)
		}
	}
	p := mustNew(t, WithLiveTiming(), WithVictimLinger(time.Second))
	if p.cfg.victimLinger != time.Second || p.cfg.groupLinger != LiveGroupLinger || p.cfg.contGrace != LiveContinuationGrace {
		t.Errorf("config %+v", p.cfg)
	}
	d := mustNew(t)
	if d.cfg.victimLinger != DefaultVictimLinger || d.cfg.contGrace != DefaultContinuationGrace || d.linger() != DefaultVictimLinger {
		t.Errorf("defaults changed: %+v", d.cfg)
	}
}

// TestWholeKillLineNotHeld: a /dev/kmsg "Killed process" line printed whole
// (to its oom_score_adj field) is parsed when it is fed, not held back for
// a continuation fragment; one cut short is held for the grace, and its
// continuation is joined to it.
func TestWholeKillLineNotHeld(t *testing.T) {
	const kill = "Memory cgroup out of memory: Killed process 12 (a) total-vm:12000kB, anon-rss:9000kB, file-rss:100kB, shmem-rss:0kB, UID:0 pgtables:60kB oom_score_adj:"
	for _, adj := range []string{"0", "-998", "1000"} {
		p := mustNew(t, WithLiveTiming())
		p.Feed(nil, records(t, "3,16,5017000,-;"+kill+adj)[0])
		if p.hasPending {
			t.Errorf("oom_score_adj:%s: the whole line is held for a continuation", adj)
		}
		if d, ok := p.Deadline(); !ok || d != 5017*time.Millisecond+LiveVictimLinger {
			t.Errorf("oom_score_adj:%s: deadline %v %v, want the victim linger after the line", adj, d, ok)
		}
	}
	// Cut short: held, and the fragment completes it.
	p := mustNew(t, WithLiveTiming())
	recs := records(t, "3,16,5017000,-;"+kill, "3,17,5017001,c;7")
	p.Feed(nil, recs[0])
	if !p.hasPending {
		t.Fatal("a line cut before its last field is not held for its continuation")
	}
	p.Feed(nil, recs[1])
	out := p.Flush(nil)
	if len(out) != 1 || len(out[0].Victims) != 1 || out[0].Victims[0].OOMScoreAdj == nil || *out[0].Victims[0].OOMScoreAdj != 7 {
		t.Fatalf("the continuation was not joined: %+v", out)
	}
	// Text with no kill line, or one whose last field is not a number.
	for _, s := range []string{"oom_score_adj:0", "Killed process 1 (a) oom_score_adj:", "Killed process 1 (a) oom_score_adj:1x"} {
		if wholeKillLine(s) {
			t.Errorf("wholeKillLine(%q) = true", s)
		}
	}
}

// TestMemoryCgroupV1: with WithMemoryCgroupV1 a live report is due at its
// victim line (no timer to wait for), for a full report and a storm's bare
// victim line alike.
func TestMemoryCgroupV1(t *testing.T) {
	lines := append(append([]string(nil), shortReport...),
		"3,16,5017000,-;Memory cgroup out of memory: Killed process 12 (a) total-vm:12000kB, anon-rss:9000kB, file-rss:100kB, shmem-rss:0kB, UID:0 pgtables:60kB oom_score_adj:0")
	recs := records(t, lines...)
	p := mustNew(t, WithLiveTiming(), WithMemoryCgroupV1())
	var out []report.Report
	for _, r := range recs {
		out = p.Feed(out, r)
		if strings.Contains(r.Text, "Killed process") {
			d, ok := p.Deadline()
			if !ok || d > r.Mono {
				t.Fatalf("after the victim line at %v: deadline %v %v, want due at once", r.Mono, d, ok)
			}
			out = p.Expire(out, r.Mono)
		}
	}
	if len(out) != 2 || out[0].Victims[0].PID != 11 || out[1].Victims[0].PID != 12 || !out[1].Partial {
		t.Fatalf("got %d reports, want the full one of 11 and the partial one of 12 (%+v)", len(out), out)
	}
	if !p.Idle() {
		t.Error("not idle after the reports left")
	}
}

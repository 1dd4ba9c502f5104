package oomparse

import (
	"strings"
	"testing"

	"github.com/oomscope/oomscope/kmsg"
	"github.com/oomscope/oomscope/report"
)

// parseText parses bare kernel text, one line per record, as a paste
// without prefixes gives it.
func parseText(t *testing.T, text string) []report.Report {
	t.Helper()
	reports, err := ParseAll(kmsg.NewScanner(strings.NewReader(text)))
	if err != nil {
		t.Fatal(err)
	}
	return reports
}

// A 4.19 memcg report (cgroup v1), bare, each line prefixed by its
// section name for the cuts below.
var headless419 = []string{
	"header:java invoked oom-killer: gfp_mask=0x6000c0(GFP_KERNEL), nodemask=(null), order=0, oom_score_adj=-998",
	"header:java cpuset=/ mems_allowed=0",
	"stack:CPU: 1 PID: 23871 Comm: java Not tainted 4.19.0-27-amd64 #1 Debian 4.19.316-1",
	"stack:Hardware name: Xen HVM domU, BIOS 4.2.amazon 08/24/2006",
	"stack:Call Trace:",
	"stack: dump_stack+0x66/0x81",
	"taskin:Task in /kubepods/pod1/c1 killed as a result of limit of /kubepods/pod1",
	"memory:memory: usage 1048576kB, limit 1048576kB, failcnt 120",
	"memory:memory+swap: usage 1048576kB, limit 9007199254740988kB, failcnt 0",
	"memory:kmem: usage 10240kB, limit 9007199254740988kB, failcnt 0",
	"stats:Memory cgroup stats for /kubepods/pod1: cache:0KB rss:0KB rss_huge:0KB shmem:0KB mapped_file:0KB dirty:0KB writeback:0KB swap:0KB inactive_anon:0KB active_anon:0KB inactive_file:0KB active_file:0KB unevictable:0KB",
	"stats:Memory cgroup stats for /kubepods/pod1/c1: cache:4KB rss:1038332KB rss_huge:0KB shmem:0KB mapped_file:0KB dirty:0KB writeback:0KB swap:0KB inactive_anon:0KB active_anon:1038332KB inactive_file:0KB active_file:4KB unevictable:0KB",
	"tasks:Tasks state (memory values in pages):",
	"tasks:[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name",
	"rows:[  23801]     0 23801      256        1    32768        0          -998 pause",
	"rows:[  23871]  1000 23871  2836512   259583  2301952        0          -998 java",
	"kill:Memory cgroup out of memory: Kill process 23871 (java) score 0 or sacrifice child",
	"killed:Killed process 23871 (java) total-vm:11346048kB, anon-rss:1037604kB, file-rss:728kB, shmem-rss:0kB",
	"reaper:oom_reaper: reaped process 23871 (java), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB",
}

// from returns the report's lines from the first of section on, bare.
func from(lines []string, section string) string {
	var b strings.Builder
	on := false
	for _, l := range lines {
		sec, text, _ := strings.Cut(l, ":")
		on = on || sec == section
		if on {
			b.WriteString(text + "\n")
		}
	}
	return b.String()
}

// TestReportWithoutItsBeginning: a paste that starts at any section still
// gives the victim and the facts it holds, flagged incomplete; nothing it
// does not hold is invented.
func TestReportWithoutItsBeginning(t *testing.T) {
	for _, start := range []string{"header", "stack", "taskin", "memory", "stats", "tasks", "rows", "kill", "killed"} {
		t.Run(start, func(t *testing.T) {
			rs := parseText(t, from(headless419, start))
			if len(rs) != 1 {
				t.Fatalf("%d reports, want 1", len(rs))
			}
			r := rs[0]
			if len(r.Victims) != 1 || r.Victims[0].PID != 23871 || r.Victims[0].AnonRSSBytes != 1037604*1024 {
				t.Fatalf("victims %+v", r.Victims)
			}
			if r.Victims[0].Reaper == nil {
				t.Error("reaper line not attached")
			}
			whole := start == "header"
			if r.Incomplete == whole && start != "killed" && start != "kill" {
				t.Errorf("incomplete = %v, problems %q", r.Incomplete, r.Problems)
			}
			if got := r.Trigger != nil; got != whole {
				t.Errorf("trigger %+v: only the header gives one", r.Trigger)
			}
			has := func(sec string) bool {
				return strings.Index(strings.Join(headless419, "\n"), sec+":") >= strings.Index(strings.Join(headless419, "\n"), start+":")
			}
			if got, want := r.KernelVersion == "4.19.0-27-amd64", has("stack"); got != want {
				t.Errorf("kernel version %q", r.KernelVersion)
			}
			if got, want := r.OOMMemcg == "/kubepods/pod1", has("taskin"); got != want {
				t.Errorf("oom_memcg %q", r.OOMMemcg)
			}
			if got, want := r.Memory != nil && r.Memory.LimitBytes == 1<<30, has("memory"); got != want {
				t.Errorf("memory %+v", r.Memory)
			}
			if got, want := len(r.MemcgStats) == 2, has("stats"); got != want {
				t.Errorf("%d stats blocks", len(r.MemcgStats))
			}
			if got, want := r.TasksTotal == 2 && len(r.Tasks) == 2, has("rows"); got != want {
				t.Errorf("tasks %d %+v", r.TasksTotal, r.Tasks)
			}
			if has("rows") && r.Tasks[1].PgtablesBytes == nil {
				t.Errorf("row without header: pgtables_bytes not read: %+v", r.Tasks[1])
			}
		})
	}
}

// TestGreppedSummaries: a grep that kept only the summary and Killed
// lines of several reports gives one report per kill.
func TestGreppedSummaries(t *testing.T) {
	text := `oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/a,task_memcg=/a,task=x,pid=10,uid=0
Memory cgroup out of memory: Killed process 10 (x) total-vm:1000kB, anon-rss:900kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:40kB oom_score_adj:0
oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/b,task_memcg=/b,task=y,pid=20,uid=0
Memory cgroup out of memory: Killed process 20 (y) total-vm:2000kB, anon-rss:1800kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:40kB oom_score_adj:0
`
	rs := parseText(t, text)
	if len(rs) != 2 {
		t.Fatalf("%d reports, want 2", len(rs))
	}
	for i, want := range []struct {
		pid   int
		memcg string
	}{{10, "/a"}, {20, "/b"}} {
		r := rs[i]
		if len(r.Victims) != 1 || r.Victims[0].PID != want.pid || r.OOMMemcg != want.memcg || r.SummaryVictim == nil || r.SummaryVictim.PID != want.pid {
			t.Errorf("report %d: victims %+v memcg %q summary %+v", i, r.Victims, r.OOMMemcg, r.SummaryVictim)
		}
	}
}

// TestSectionGoesBack: a section the report has passed starts the next
// report (their headers were cut by the paste).
func TestSectionGoesBack(t *testing.T) {
	one := from(headless419, "taskin")
	rs := parseText(t, one+one)
	if len(rs) != 2 {
		t.Fatalf("%d reports, want 2", len(rs))
	}
	for i, r := range rs {
		if len(r.Victims) != 1 || r.Memory == nil || r.TasksTotal != 2 {
			t.Errorf("report %d: victims %d memory %v tasks %d", i, len(r.Victims), r.Memory, r.TasksTotal)
		}
	}
}

// TestTentative: generic lines (a stack dump, Mem-Info) open a report only
// if an OOM-specific line follows; another dump's generic lines, never.
func TestTentative(t *testing.T) {
	stack := "CPU: 3 PID: 77 Comm: kworker/3:1 Not tainted 6.1.0-26-amd64 #1 Debian 6.1.112-1\nHardware name: QEMU\nCall Trace:\n dump_stack_lvl+0x44/0x5c\n"
	mem := "Mem-Info:\nactive_anon:14062 inactive_anon:1935120 isolated_anon:0\nfree:25312 free_pcp:71 free_cma:0\n2097022 pages RAM\n"
	killed := "Out of memory: Killed process 50213 (stress-ng) total-vm:7888520kB, anon-rss:7728416kB, file-rss:64kB, shmem-rss:0kB, UID:0 pgtables:15248kB oom_score_adj:1000\n"
	t.Run("a stack dump alone is no report", func(t *testing.T) {
		if rs := parseText(t, stack+mem+"eth0: link up\n"); len(rs) != 0 {
			t.Fatalf("%d reports from a stack and memory dump", len(rs))
		}
	})
	t.Run("a stack dump, Mem-Info and the victim", func(t *testing.T) {
		rs := parseText(t, stack+mem+killed)
		if len(rs) != 1 || len(rs[0].Victims) != 1 || rs[0].MemInfo == nil || rs[0].KernelVersion != "6.1.0-26-amd64" || !rs[0].Incomplete {
			t.Fatalf("reports %+v", rs)
		}
	})
	t.Run("a failed allocation's dump is not the victim's report", func(t *testing.T) {
		rs := parseText(t, "kworker/3:1: page allocation failure: order:0, mode:0xa20(GFP_ATOMIC), nodemask=(null)\n"+stack+mem+killed)
		if len(rs) != 1 || len(rs[0].Victims) != 1 || rs[0].MemInfo != nil || !rs[0].Partial {
			t.Fatalf("reports %+v", rs)
		}
	})
}

// TestRowsWithoutHeader: task rows without their table header are read by
// their layout, in every era's column set; what cannot be told is left
// out.
func TestRowsWithoutHeader(t *testing.T) {
	killed := "Killed process 5 (a) total-vm:4000kB, anon-rss:400kB, file-rss:0kB\n"
	tests := []struct {
		name  string
		row   string
		check func(report.Task) bool
	}{
		{"3.10 nr_ptes", "[    5]  1000     5     1000      100      13       7             0 a",
			func(t report.Task) bool {
				return t.NrPtes != nil && *t.NrPtes == 13 && t.SwapEnts == 7 && t.PgtablesBytes == nil
			}},
		{"4.0-4.14 nr_ptes nr_pmds", "[    5]  1000     5     1000      100      13       3        7             0 a",
			func(t report.Task) bool {
				return t.NrPtes != nil && *t.NrPtes == 13 && *t.NrPmds == 3 && t.SwapEnts == 7
			}},
		{"4.15 pgtables_bytes", "[    5]  1000     5     1000      100    53248        7             0 a",
			func(t report.Task) bool {
				return t.PgtablesBytes != nil && *t.PgtablesBytes == 53248 && t.SwapEnts == 7
			}},
		{"4.19 wide pid", "[      5]  1000     5     1000      100        0        7             0 a",
			func(t report.Task) bool { return t.PgtablesBytes != nil && *t.PgtablesBytes == 0 && t.SwapEnts == 7 }},
		{"6.8 rss columns", "[      5]  1000     5     1000      100       90       10        0    53248        7             0 a",
			func(t report.Task) bool {
				return t.RSSAnonPages != nil && *t.RSSAnonPages == 90 && *t.PgtablesBytes == 53248 && t.SwapEnts == 7
			}},
		{"2.6.32", "[    5]  1000     5     1000      100   1     -17         -1000 a",
			func(t report.Task) bool { return t.OOMScoreAdj == -1000 && t.SwapEnts == 0 && t.NrPtes == nil }},
		{"padding lost, 7 columns", "[ 5] 1000 5 1000 100 13 0 0 a",
			func(t report.Task) bool {
				return t.NrPtes == nil && t.PgtablesBytes == nil && t.SwapEnts == 0 && t.RSSPages == 100
			}},
		{"a name with spaces", "[      5]  1000     5     1000      100    53248        7             0 Plex Media Serv",
			func(t report.Task) bool { return t.Name == "Plex Media Serv" && t.SwapEnts == 7 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := parseText(t, tt.row+"\n"+killed)
			if len(rs) != 1 || len(rs[0].Tasks) != 1 || rs[0].TasksTotal != 1 {
				t.Fatalf("reports %+v", rs)
			}
			if tk := rs[0].Tasks[0]; tk.PID != 5 || tk.UID != 1000 || tk.TotalVMPages != 1000 || tk.RSSPages != 100 || !tt.check(tk) {
				t.Errorf("row read as %+v", tk)
			}
			if len(rs[0].Victims) != 1 {
				t.Errorf("victims %+v", rs[0].Victims)
			}
		})
	}
	// 7 columns without padding whose sixth may be a 2.6 oom_adj: counted,
	// not kept.
	rs := parseText(t, "[ 5] 1000 5 1000 100 1 3 0 a\n"+killed)
	if len(rs) != 1 || len(rs[0].Tasks) != 0 || rs[0].TasksTotal != 1 || rs[0].TasksDropped != 1 {
		t.Fatalf("ambiguous row: %+v", rs)
	}
}

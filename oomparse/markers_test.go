package oomparse

import (
	"strings"
	"testing"
)

// markerSamples has one line of every kind of the table, and lines that
// look like one kind but are another (hostile process names).
var markerSamples = []struct {
	line string
	want kind
}{
	{"dd invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0", kHeader},
	{"COMPACTION is disabled!!!", kCompaction},
	{"stress cpuset=/ mems_allowed=0", kCpuset},
	{"CPU: 0 PID: 85 Comm: dd Not tainted 6.1.0-56-amd64 #1", kStack},
	{"Pid: 2345, comm: java Not tainted 2.6.32-754.el6.x86_64 #1", kStack},
	{"Hardware name: QEMU Standard PC (i440FX + PIIX, 1996)", kHardware},
	{"Task in /foo killed as a result of limit of /foo", kTaskIn},
	{"Memory limit reached of cgroup /foo", kLimitReached},
	{"memory: usage 102400kB, limit 102400kB, failcnt 371", kCounter},
	{"memory+swap: usage 102400kB, limit 9007199254740991kB, failcnt 0", kCounter},
	{"kmem: usage 0kB, limit 9007199254740991kB, failcnt 0", kCounter},
	{"swap: usage 0kB, limit 0kB, failcnt 0", kCounter},
	{"Memory cgroup stats for /foo: cache:0KB rss:102268KB", kStatsHeader},
	{"Memory cgroup stats for /kubepods.slice/pod1:", kStatsHeader},
	{"Memory cgroup min protection 0kB -- low protection 0kB", kProtection},
	{"Mem-Info:", kMemInfo},
	{"Unreclaimable slab info:", kSlabHeader},
	{"excessive unreclaimable slab but cannot dump stats", kSlabExcessive},
	{"Tasks state (memory values in pages):", kTasksState},
	{"[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name", kTaskHeader},
	{"[ pid ]   uid  tgid total_vm      rss nr_ptes swapents oom_score_adj name", kTaskHeader},
	{"[     85]     0    85    33333     8550    98304        0             0 dd", kTaskRow},
	{"oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/a,task_memcg=/a,task=dd,pid=85,uid=0", kSummary},
	{"Memory cgroup out of memory: Kill process 2345 (stress) score 1000 or sacrifice child", kKill},
	{"Kill process 2346 (stress) sharing same memory", kSharing},
	{"Memory cgroup out of memory: Killed process 85 (dd) total-vm:133332kB, anon-rss:32616kB, file-rss:4kB", kKilled},
	{"Killed process 2345 (stress) total-vm:108472kB, anon-rss:102168kB, file-rss:128kB", kKilled},
	{"Memory cgroup out of memory: OOM victim 5 (x) is already exiting. Skip killing the task", kExiting},
	{"Tasks in /a are going to be killed due to memory.oom.group set", kGroup},
	{"Out of memory and no killable processes...", kNoKillable},
	{"oom killer 1 (init) has mm pinned by 2 (x)", kPinned},
	{"Kernel panic - not syncing: System is deadlocked on memory", kPanic},
	{"oom_kill_process: 3 callbacks suppressed", kSuppressed},
	{"oom_reaper: reaped process 85 (dd), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB", kReaper},
	{"oom_reaper: unable to reap pid:85 (dd)", kReaper},
	{"OOM killer disabled.", kNever},
	{"OOM killer enabled.", kNever},
	{"Huh VM_FAULT_OOM leaked out to the #PF handler. Retrying PF", kNever},
	{"java: page allocation failure: order:0, mode:0x1080020(GFP_ATOMIC)", kNever},
	{"eth0: link up", kOther},
	{"anon 33480704", kOther},
	{"", kOther},
	// Process names chosen to look like another line never change what
	// the line is: the kernel's own text is at the start of the line, and
	// the header's marker follows at most a process name.
	{"oom_reaper:  invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0", kHeader},
	{"Tasks state ( invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0", kHeader},
	{"Killed process  invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0", kHeader},
	{"CPU: 0 PID: 5 Comm: Killed process  Not tainted 6.1.0 #1", kStack},
	{"[      5]     0     5     1000      100    65536        0             0 Killed process ", kTaskRow},
	{"oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),oom_memcg=/a,task_memcg=/a,task=Killed process ,pid=5,uid=0", kSummary},
	{"oom_reaper: reaped process 5 (Killed process ), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB", kReaper},
}

func TestClassify(t *testing.T) {
	seen := map[kind]bool{}
	for _, tt := range markerSamples {
		got := kOther
		if s := classify(tt.line); s != nil {
			got = s.kind
		}
		if got != tt.want {
			t.Errorf("classify(%q) = %d, want %d", tt.line, got, tt.want)
		}
		seen[got] = true
	}
	for k := kOther + 1; k < numKinds; k++ {
		if !seen[k] {
			t.Errorf("kind %d has no sample line", k)
		}
	}
}

// TestQuietFilter: the quiet-stream filter lets through every line of a
// row that acts where no report is open, no line of no row, and no later
// line of a record.
func TestQuietFilter(t *testing.T) {
	for _, tt := range markerSamples {
		s := classify(tt.line)
		want := s != nil && s.role != roleContinue
		if got := mayMatter(tt.line); want && !got || s == nil && got {
			t.Errorf("mayMatter(%q) = %v, want %v", tt.line, got, want)
		}
		// A later line of a record never acts on its own: it is part of
		// the first line's text (a name or a path) or of a memory dump.
		if text := "eth0: up\n" + tt.line; mayMatter(text) && !oneLine(text, "eth0: up") {
			t.Errorf("mayMatter(%q) = true: a later line of a record acts", text)
		}
	}
}

// TestTableRows: every row is reachable and consistent.
func TestTableRows(t *testing.T) {
	for i, s := range shapes {
		if s.prefix == "" && s.infix == "" && s.test == nil {
			t.Errorf("row %d (%s) matches every line", i, s.name)
		}
		if s.name == "" {
			t.Errorf("row %d has no name", i)
		}
		if s.key != 0 && !strings.Contains(s.infix, string(s.key)) {
			t.Errorf("row %d (%s): key %q is not in the infix %q", i, s.name, s.key, s.infix)
		}
		if s.role == roleCross && s.rank != rankAny {
			t.Errorf("row %d (%s): a line of another context has no place in a report", i, s.name)
		}
	}
}

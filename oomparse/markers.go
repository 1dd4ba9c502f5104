package oomparse

import "strings"

// This file is the one table of the kernel line shapes the parser knows:
// how each is recognised, whether it may open a report, continue one, or
// never belongs to one, and where it sits in a report. The state machine
// (handlers.go) classifies every line with [classify] and reads the row;
// nothing else keeps a list of markers. Teaching the parser a new kernel
// line is one row here, one handler case, and one golden case.

// kind is what a line of kernel text is, as far as OOM reports go.
type kind uint8

const (
	kOther kind = iota // no shape of the table: read by the open section, if any

	kHeader        // "<comm> invoked oom-killer: gfp_mask=..."
	kCompaction    // "COMPACTION is disabled!!!"
	kCpuset        // "<comm> cpuset=<name> mems_allowed=<list>" (<= 4.19)
	kStack         // "CPU: N PID: N Comm: x ..." / "Pid: N, comm: x ..." (dump_stack)
	kHardware      // "Hardware name: ..."
	kTaskIn        // "Task in <memcg> killed as a result of limit of <memcg>" (<= 4.19)
	kLimitReached  // "Memory limit reached of cgroup <memcg>" (4.x, no victim)
	kCounter       // "memory: usage NkB, limit NkB, failcnt N" (memory, memory+swap, kmem, swap)
	kStatsHeader   // "Memory cgroup stats for <path>:[ key:NKB...]"
	kProtection    // "Memory cgroup min protection NkB -- low protection NkB"
	kMemInfo       // "Mem-Info:"
	kSlabHeader    // "Unreclaimable slab info:"
	kSlabExcessive // "excessive unreclaimable slab but cannot dump stats"
	kTasksState    // "Tasks state (memory values in pages):" (>= 4.19)
	kTaskHeader    // "[  pid  ]   uid  tgid total_vm ... name"
	kTaskRow       // "[  1234]  1000  1234 ..."
	kSummary       // "oom-kill:constraint=...,task=..,pid=..,uid=.." (>= 5.0)
	kKill          // "<msg>: Kill process N (comm) score S or sacrifice child" (<= 5.0)
	kSharing       // "Kill process N (comm) sharing same memory" (3.x)
	kKilled        // "[<msg>: ]Killed process N (comm) total-vm:..."
	kExiting       // "<msg>: OOM victim N (comm) is already exiting. Skip killing the task"
	kGroup         // "Tasks in <path> are going to be killed due to memory.oom.group set"
	kNoKillable    // "Out of memory and no killable processes..."
	kPinned        // "oom killer N (comm) has mm pinned by M (comm)"
	kPanic         // "Kernel panic - not syncing: ..."
	kSuppressed    // "oom_kill_process: N callbacks suppressed"
	kReaper        // "oom_reaper: reaped process ..." / "oom_reaper: unable to reap pid:..."
	kNever         // OOM-looking lines that are no part of a report

	numKinds
)

// role says what a line may do to the report state.
type role uint8

const (
	// roleContinue lines belong to an open report and open none.
	roleContinue role = iota
	// roleOpen lines are printed only in OOM reports: where no report is
	// open they open one (a report whose beginning is missing, or a rate
	// limited one for the never rate-limited victim lines).
	roleOpen
	// roleCross lines are printed by other contexts than the report's
	// task (the reaper kthread, the rate limiter): they may arrive at any
	// time, interleaved with another task's records.
	roleCross
	// roleTentative lines are part of OOM reports and of other dumps (a
	// stack dump, a sysrq memory dump): where no report is open they open
	// a tentative one, kept only if an OOM-specific line follows.
	roleTentative
	// roleNever lines look like OOM text but are never part of a report;
	// they also announce another dump (a failed allocation's), whose
	// generic lines then open nothing.
	roleNever
)

// rank is the order of a report's sections, as the kernel prints them.
type rank uint8

const (
	rankHeader  rank = iota // the header line
	rankPre                 // COMPACTION, the cpuset line (before the stack dump)
	rankStack               // the stack dump
	rankMemory              // memcg block or Mem-Info, slab, protection
	rankTasks               // task table
	rankSummary             // oom-kill: summary
	rankKill                // Kill / Killed / exiting / group / no killable / panic
	rankAny                 // no place: lines of other contexts
)

// shape is one row of the table.
type shape struct {
	id   uint8 // the row's index in shapes
	kind kind
	name string // in problems: "the report starts at its <name> line"
	role role
	rank rank
	// once: a report holds at most one such line; a second one starts the
	// next report.
	once bool
	// names: the line prints a process name or a cgroup path, which may
	// hold newlines: a record that starts with it is one line (split.go).
	names bool
	// other: the line may be printed by another task or CPU than the one
	// that prints the report (the next report's header, the reaper's
	// lines, the never rate-limited victim lines of the next kill).
	other bool
	// The line starts with prefix, holds infix, ends with suffix ("" =
	// no condition) and passes test (nil = none). A line is given the kind
	// of the first row it matches.
	prefix, infix, suffix string
	test                  func(line string) bool
	// key is a byte of the infix that few lines hold: a line without it
	// is not looked into (the quiet path's speed).
	key byte
}

// shapes is the table, in the order rows are tried: first the lines that
// start with the kernel's own text (a process name cannot move text to the
// start of a line), then the lines found by a marker inside them, whose
// marker is longer than a process name (15 bytes) or whose other parts
// are fixed.
var shapes = [...]shape{
	// The header's marker is longer than a process name and follows one:
	// where it follows 15 bytes or fewer, nothing else can be the line.
	{kind: kHeader, name: "header", names: true, role: roleOpen, other: true, rank: rankHeader, once: true, test: headerAtComm},
	{kind: kTaskRow, name: "task row", names: true, role: roleOpen, rank: rankTasks, prefix: "[", test: isTaskRow},
	{kind: kTaskHeader, name: "task table header", role: roleOpen, rank: rankTasks, once: true, prefix: "[", test: isTaskHeader},
	{kind: kSummary, name: "oom-kill summary", names: true, role: roleOpen, rank: rankSummary, once: true, prefix: summaryPrefix},
	{kind: kReaper, name: "oom_reaper", names: true, role: roleCross, other: true, rank: rankAny, prefix: reaperPrefix},
	{kind: kPinned, name: "mm pinned", names: true, role: roleContinue, rank: rankKill, prefix: "oom killer ", infix: ") has mm pinned by "},
	{kind: kSharing, name: "sharing same memory", names: true, role: roleContinue, rank: rankKill, prefix: killMarker, suffix: ") sharing same memory"},
	{kind: kGroup, name: "memory.oom.group", names: true, role: roleOpen, other: true, rank: rankKill, once: true, prefix: groupPrefix, suffix: groupSuffix},
	{kind: kTasksState, name: "Tasks state", role: roleOpen, rank: rankTasks, once: true, prefix: "Tasks state (memory values in pages):"},
	{kind: kTaskIn, name: "Task in", names: true, role: roleOpen, rank: rankMemory, once: true, prefix: "Task in ", infix: " killed as a result of limit of "},
	{kind: kLimitReached, name: "Memory limit reached", names: true, role: roleOpen, rank: rankMemory, once: true, prefix: "Memory limit reached of cgroup "},
	{kind: kStatsHeader, name: "memory cgroup stats", names: true, role: roleOpen, rank: rankMemory, prefix: "Memory cgroup stats", test: isStatsHeader},
	{kind: kProtection, name: "memory cgroup protection", role: roleOpen, rank: rankMemory, once: true, prefix: "Memory cgroup min protection "},
	{kind: kCounter, name: "memory cgroup counter", role: roleOpen, rank: rankMemory, prefix: "memory: usage "},
	{kind: kCounter, name: "memory cgroup counter", role: roleOpen, rank: rankMemory, prefix: "memory+swap: usage "},
	{kind: kCounter, name: "memory cgroup counter", role: roleOpen, rank: rankMemory, prefix: "kmem: usage "},
	{kind: kCounter, name: "memory cgroup counter", role: roleOpen, rank: rankMemory, prefix: "swap: usage "},
	{kind: kMemInfo, name: "Mem-Info", role: roleTentative, rank: rankMemory, once: true, prefix: "Mem-", test: isMemInfo},
	{kind: kSlabHeader, name: "unreclaimable slab", role: roleContinue, rank: rankMemory, once: true, prefix: "Unreclaimable slab info:", test: isExactly("Unreclaimable slab info:")},
	{kind: kSlabExcessive, name: "excessive slab", role: roleContinue, rank: rankMemory, prefix: "excessive unreclaimable slab but cannot dump stats"},
	{kind: kCompaction, name: "COMPACTION", role: roleContinue, rank: rankPre, once: true, prefix: "COMPACTION is disabled!!!", test: isExactly("COMPACTION is disabled!!!")},
	{kind: kNoKillable, name: "no killable processes", role: roleOpen, other: true, rank: rankKill, once: true, prefix: noKillable, test: isExactly(noKillable)},
	{kind: kPanic, name: "panic", role: roleContinue, rank: rankKill, prefix: "Kernel panic - not syncing: "},
	{kind: kSuppressed, name: "callbacks suppressed", role: roleCross, other: true, rank: rankAny, prefix: "oom_kill_process: ", suffix: suppressed},
	{kind: kStack, name: "stack dump", names: true, role: roleTentative, rank: rankStack, prefix: "CPU: ", infix: " Comm: "},
	{kind: kStack, name: "stack dump", names: true, role: roleTentative, rank: rankStack, prefix: "Pid: ", infix: ", comm: "},
	{kind: kHardware, name: "hardware name", role: roleTentative, rank: rankStack, prefix: "Hardware name: "},
	{kind: kNever, name: "OOM killer enabled", role: roleNever, rank: rankAny, prefix: "OOM killer enabled."},
	{kind: kNever, name: "OOM killer disabled", role: roleNever, rank: rankAny, prefix: "OOM killer disabled."},
	{kind: kNever, name: "VM_FAULT_OOM", role: roleNever, rank: rankAny, prefix: "Huh VM_FAULT_OOM leaked out"},
	{kind: kHeader, name: "header", names: true, role: roleOpen, other: true, rank: rankHeader, once: true, infix: "oom-killer: gfp_mask=", test: hasInvoked, key: '='},
	{kind: kKill, name: "Kill process", names: true, role: roleOpen, other: true, rank: rankKill, infix: killMarker, suffix: " or sacrifice child", key: 'K'},
	{kind: kExiting, name: "already exiting", names: true, role: roleOpen, other: true, rank: rankKill, infix: "OOM victim ", suffix: exitingMarker, key: 'O'},
	{kind: kKilled, name: "Killed process", names: true, role: roleOpen, other: true, rank: rankKill, infix: killedMarker, key: 'K'},
	{kind: kCpuset, name: "cpuset", names: true, role: roleTentative, rank: rankPre, once: true, infix: " cpuset=", test: isCpusetLine, key: '='},
	{kind: kNever, name: "page allocation failure", role: roleNever, rank: rankAny, infix: ": page allocation failure: ", key: ':'},
}

// maxComm is the longest process name the kernel prints (TASK_COMM_LEN
// less the terminating NUL).
const maxComm = 15

// headerAtComm reports whether the header marker follows a process name's
// worth of bytes at most.
func headerAtComm(line string) bool {
	return strings.Contains(line[:min(len(line), maxComm+len(invokedMarker))], invokedMarker)
}

// The indexes of the table: leadRows are the rows without a prefix that
// come before the first row with one (tried first); byFirstByte lists, for
// each first byte of a line, the rows whose prefix starts with it;
// infixRows are the other rows without a prefix, in table order. The
// quiet ones are the same restricted to the rows that act where no report
// is open (every role but roleContinue).
type tableIndex struct {
	leadRows, infixRows []uint8
	byFirstByte         [256][]uint8
}

var index, quietIndex = func() (all, quiet tableIndex) {
	lead := true
	for i := range shapes {
		shapes[i].id = uint8(i)
		s := shapes[i]
		for _, t := range []*tableIndex{&all, &quiet} {
			if t == &quiet && s.role == roleContinue {
				continue
			}
			switch {
			case s.prefix != "":
				t.byFirstByte[s.prefix[0]] = append(t.byFirstByte[s.prefix[0]], uint8(i))
			case lead:
				t.leadRows = append(t.leadRows, uint8(i))
			default:
				t.infixRows = append(t.infixRows, uint8(i))
			}
		}
		if s.prefix != "" {
			lead = false
		}
	}
	return all, quiet
}()

// find returns the first row of t that line matches, or nil.
func (t *tableIndex) find(line string) *shape {
	if line == "" {
		return nil
	}
	for _, rows := range [3][]uint8{t.leadRows, t.byFirstByte[line[0]], t.infixRows} {
		for _, i := range rows {
			if s := &shapes[i]; s.matches(line) {
				return s
			}
		}
	}
	return nil
}

// classify returns the row of line, or nil for a line of no shape.
func classify(line string) *shape { return index.find(line) }

func (s *shape) matches(line string) bool {
	if s.key != 0 && strings.IndexByte(line, s.key) < 0 {
		return false
	}
	return strings.HasPrefix(line, s.prefix) && (s.infix == "" || strings.Contains(line, s.infix)) &&
		strings.HasSuffix(line, s.suffix) && (s.test == nil || s.test(line))
}

// mayMatter is the quiet-stream filter: can the text of a record (see
// firstLine: the later lines of a multi-line record never act on their
// own) be of a row that acts where no report is open? It is true for every such line, and cheap for the rest: a healthy
// node's stream goes through it alone.
func mayMatter(text string) bool {
	return quietIndex.find(firstLine(text)) != nil
}

// fromOtherContext reports whether text (one record) is a line that
// another context than the report's task prints about OOM kills (see
// shape.other): a record from another caller that is none of these is
// foreign, even when it mentions "oom".
func fromOtherContext(text string) bool {
	line, _, _ := strings.Cut(text, "\n")
	s := classify(line)
	return s != nil && s.other
}

func isExactly(want string) func(string) bool {
	return func(line string) bool { return line == want }
}

func isTaskHeader(line string) bool {
	_, _, ok := parseTaskHeader(line)
	return ok
}

func isCpusetLine(line string) bool {
	_, _, ok := parseCpusetLine(line)
	return ok
}

func isStatsHeader(line string) bool {
	_, _, ok := parseStatsHeader(line)
	return ok
}

func hasInvoked(line string) bool { return strings.Contains(line, invokedMarker) }

// isMemInfo is "Mem-Info:" ("Mem-info:" before 2.6.32).
func isMemInfo(line string) bool { return line == "Mem-Info:" || line == "Mem-info:" }

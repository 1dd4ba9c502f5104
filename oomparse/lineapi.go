package oomparse

import "strings"

// This file exports the few line parsers that a reader of the kernel log
// beside the Parser needs (enrich/counterattr reads /dev/kmsg through a
// descriptor of its own and must recognise kills exactly as the Parser
// does, hostile process names included).

// KillLine is a "Killed process N (comm) …" line.
type KillLine struct {
	PID  int
	Comm string
	// Memcg is true for the kernel's "Memory cgroup out of memory: "
	// message (a memcg OOM), false for a system-wide one.
	Memcg bool
}

// ParseKillLine parses one kernel log line as a "Killed process" line,
// the one line the kernel prints for every kill, rate limit or not. A line
// whose pid or name cannot be read is not one.
func ParseKillLine(text string) (KillLine, bool) {
	v, ok, _ := parseKilledFields(text)
	if !ok || v.PID <= 0 {
		return KillLine{}, false
	}
	return KillLine{PID: v.PID, Comm: v.Comm, Memcg: strings.HasPrefix(v.Message, "Memory cgroup out of memory")}, true
}

// SummaryLine is what the "oom-kill:" summary line (kernels >= 5.0) says
// about the victim: its pid, name and cgroups.
type SummaryLine struct {
	PID  int
	Task string
	// OOMMemcg is the memory cgroup under OOM ("" for a system-wide OOM);
	// TaskMemcg is the victim's. Either is "" when a hostile name or path
	// made it ambiguous: a value is never returned cut short.
	OOMMemcg, TaskMemcg string
	Global              bool
}

// ParseSummaryLine parses one kernel log line as an "oom-kill:" summary.
func ParseSummaryLine(text string) (SummaryLine, bool) {
	s, ok := parseSummary(text)
	if !ok || !s.hasPID {
		return SummaryLine{}, false
	}
	out := SummaryLine{PID: s.pid, Task: s.task, Global: s.globalOOM}
	if !s.ambiguous {
		out.OOMMemcg, out.TaskMemcg = s.oomMemcg, s.taskMemcg
	}
	return out, true
}

// IsGroupKillLine reports whether text is the "Tasks in <cgroup> are
// going to be killed due to memory.oom.group set" line, after which the
// kernel kills the rest of the group: more "Killed process" lines that no
// summary describes.
func IsGroupKillLine(text string) bool {
	return strings.HasPrefix(text, groupPrefix) && strings.HasSuffix(text, groupSuffix)
}

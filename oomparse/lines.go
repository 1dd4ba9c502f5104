package oomparse

import (
	"math"
	"strconv"
	"strings"

	"github.com/oomscope/oomscope/internal/ascii"
	"github.com/oomscope/oomscope/report"
)

// This file holds one parser per kernel line shape. Each takes the line
// text (one line: records with embedded newlines are split before) and
// returns ok=false when the line is not of that shape. None of them
// allocates for a line that does not match.

const (
	invokedMarker = " invoked oom-killer: "
	killedMarker  = "Killed process "
	killMarker    = "Kill process "
	exitingMarker = ") is already exiting. Skip killing the task"
	groupPrefix   = "Tasks in "
	groupSuffix   = " are going to be killed due to memory.oom.group set"
	reaperPrefix  = "oom_reaper: "
	summaryPrefix = "oom-kill:"
	noKillable    = "Out of memory and no killable processes..."
	suppressed    = " callbacks suppressed"
)

// header is "<comm> invoked oom-killer: gfp_mask=0x..(FLAGS), [nodemask=..,] order=N, oom_score_adj=N".
type header struct {
	comm, gfpMask, gfpFlags, nodemask string
	order, adj                        int
	hasOrder, hasAdj                  bool
}

func parseHeader(line string) (header, bool) {
	i := strings.Index(line, invokedMarker)
	if i < 0 {
		return header{}, false
	}
	h := header{comm: line[:i]}
	rest := line[i+len(invokedMarker):]
	for _, kv := range splitKV(rest, ",") {
		k, v, _ := strings.Cut(kv, "=")
		switch strings.TrimSpace(k) {
		case "gfp_mask":
			h.gfpMask, h.gfpFlags = v, ""
			if j := strings.IndexByte(v, '('); j >= 0 {
				h.gfpMask = v[:j]
				h.gfpFlags = strings.TrimSuffix(v[j+1:], ")")
			}
		case "nodemask":
			h.nodemask = v
		case "order":
			h.order, h.hasOrder = atoiOK(v)
		case "oom_score_adj":
			h.adj, h.hasAdj = atoiOK(v)
		}
	}
	return h, h.gfpMask != "" || h.hasOrder
}

// splitKV splits "a=1, b=2,3, c=4" on sep, gluing pieces without '=' to the
// previous one (node lists such as "0,2-3" contain commas).
func splitKV(s, sep string) []string {
	var out []string
	for _, part := range strings.Split(s, sep) {
		if !strings.Contains(part, "=") && len(out) > 0 {
			out[len(out)-1] += sep + part
			continue
		}
		out = append(out, part)
	}
	return out
}

// cpusetLine is the separate "<comm> cpuset=<name> mems_allowed=<list>" line (<= 4.19).
func parseCpusetLine(line string) (cpuset, mems string, ok bool) {
	i := strings.Index(line, " cpuset=")
	j := strings.LastIndex(line, " mems_allowed=")
	if i < 0 || j < i {
		return "", "", false
	}
	return line[i+len(" cpuset=") : j], line[j+len(" mems_allowed="):], true
}

// stackInfo is "CPU: 1 UID: 0 PID: 15901 Comm: python3 Not tainted 6.18.44 #1 PREEMPT(none)".
type stackInfo struct {
	cpu, uid, pid          int
	hasCPU, hasUID, hasPID bool
	tainted, version, rest string
}

func parseStackInfo(line string) (stackInfo, bool) {
	if strings.HasPrefix(line, "Pid: ") {
		return parseOldStackInfo(line)
	}
	if !strings.HasPrefix(line, "CPU: ") {
		return stackInfo{}, false
	}
	var s stackInfo
	comm := strings.Index(line, " Comm: ")
	if comm < 0 {
		return s, false
	}
	f := strings.Fields(line[:comm])
	for i := 0; i+1 < len(f); i += 2 {
		switch f[i] {
		case "CPU:":
			s.cpu, s.hasCPU = atoiOK(f[i+1])
		case "UID:":
			s.uid, s.hasUID = atoiOK(f[i+1])
		case "PID:":
			s.pid, s.hasPID = atoiOK(f[i+1])
		}
	}
	s.tainted, s.version, s.rest = parseTaint(line[comm:])
	return s, true
}

// parseOldStackInfo is the dump_stack line of kernels before 3.x:
// "Pid: 2345, comm: java Not tainted 2.6.32-754.el6.x86_64 #1".
func parseOldStackInfo(line string) (stackInfo, bool) {
	num, tail, ok := strings.Cut(strings.TrimPrefix(line, "Pid: "), ", comm: ")
	if !ok {
		return stackInfo{}, false
	}
	var s stackInfo
	if s.pid, s.hasPID = atoiOK(num); !s.hasPID {
		return stackInfo{}, false
	}
	s.tainted, s.version, s.rest = parseTaint(" " + tail)
	return s, true
}

// parseTaint reads what follows the comm on a dump_stack line: the taint
// ("Not tainted" or "Tainted: G   OE"), the release and the build.
func parseTaint(tail string) (tainted, version, rest string) {
	if i := strings.Index(tail, " Not tainted "); i >= 0 {
		tail = tail[i+len(" Not tainted "):]
	} else if i := strings.Index(tail, " Tainted: "); i >= 0 {
		tail = tail[i+len(" Tainted: "):]
		var flags []string
		for tail != "" && (tail[0] < '0' || tail[0] > '9') {
			var tok string
			tok, tail, _ = strings.Cut(strings.TrimLeft(tail, " "), " ")
			if tok != "" {
				flags = append(flags, tok)
			}
			tail = strings.TrimLeft(tail, " ")
		}
		tainted = strings.Join(flags, " ")
	} else {
		return "", "", ""
	}
	version, rest, _ = strings.Cut(strings.TrimSpace(tail), " ")
	return tainted, version, strings.TrimSpace(rest)
}

// parseCounter parses "memory: usage 98304kB, limit 98304kB, failcnt 2797"
// for the names memory, memory+swap, kmem and swap.
func parseCounter(line string) (name string, c report.Counter, ok bool) {
	name, rest, found := strings.Cut(line, ": usage ")
	if !found {
		return "", c, false
	}
	switch name {
	case "memory", "memory+swap", "kmem", "swap":
	default:
		return "", c, false
	}
	usage, rest, _ := strings.Cut(rest, ", limit ")
	limit, fail, _ := strings.Cut(rest, ", failcnt ")
	var okU, okL, okF bool
	c.UsageBytes, okU = parseKB(usage)
	c.LimitBytes, okL = parseKB(limit)
	c.Failcnt, okF = parseUint(fail)
	if kb, err := strconv.ParseUint(strings.TrimSuffix(limit, "kB"), 10, 64); err == nil && kb >= 1<<52 {
		c.Unlimited = true
	}
	return name, c, okU && okL && okF
}

// parseTaskIn is "Task in <task memcg> killed as a result of limit of <memcg>" (<= 4.19).
func parseTaskIn(line string) (task, memcg string, ok bool) {
	rest, found := strings.CutPrefix(line, "Task in ")
	if !found {
		return "", "", false
	}
	i := strings.LastIndex(rest, " killed as a result of limit of ")
	if i < 0 {
		return "", "", false
	}
	if strings.Count(rest, " killed as a result of limit of ") > 1 {
		// A path holds the marker: the two paths cannot be told apart.
		return "", "", true
	}
	return rest[:i], rest[i+len(" killed as a result of limit of "):], true
}

// parseStatsHeader is "Memory cgroup stats for <path>:[ key:NKB...]".
// inline holds the pairs of the <= 5.2 one-line form.
func parseStatsHeader(line string) (path, inline string, ok bool) {
	rest, found := strings.CutPrefix(line, "Memory cgroup stats")
	if !found {
		return "", "", false
	}
	if rest == ":" || strings.HasPrefix(rest, ": ") {
		return "", strings.TrimPrefix(rest, ":"), true
	}
	rest, found = strings.CutPrefix(rest, " for ")
	if !found {
		return "", "", false
	}
	// The path ends at the ':' that precedes the first " key:NKB" pair (or
	// the end); a path may itself contain ':'. A line cut before its
	// first pair ends in ": " (trailing space is trimmed off whole lines);
	// one cut after it has broken pairs at its end (see tailMissing).
	if i := strings.Index(rest, ": "); i >= 0 && (isInlinePairs(rest[i+1:]) || i+2 == len(rest) || firstPairOK(rest[i+1:])) {
		return rest[:i], rest[i+1:], true
	}
	return strings.TrimSuffix(rest, ":"), "", true
}

// firstPairOK reports whether s starts with one whole " key:NKB" pair.
func firstPairOK(s string) bool {
	f := strings.Fields(s)
	return len(f) > 1 && isInlinePairs(" "+f[0])
}

// isInlinePairs reports whether s is " key:NKB key:NKB ..." (at least one pair).
func isInlinePairs(s string) bool {
	n := 0
	for _, f := range strings.Fields(s) {
		k, v, ok := strings.Cut(f, ":")
		if !ok || k == "" || !strings.HasSuffix(v, "KB") {
			return false
		}
		if _, err := strconv.ParseInt(strings.TrimSuffix(v, "KB"), 10, 64); err != nil {
			return false
		}
		n++
	}
	return n > 0
}

// parseStatLine is "key value" (5.3+ memory.stat in OOM reports).
func parseStatLine(line string) (key string, val uint64, ok bool) {
	key, v, found := strings.Cut(line, " ")
	if !found || key == "" {
		return "", 0, false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return "", 0, false
		}
	}
	val, ok = parseUint(v)
	return key, val, ok
}

// parseProtection is "Memory cgroup min protection NkB -- low protection NkB".
func parseProtection(line string) (report.Protection, bool) {
	rest, found := strings.CutPrefix(line, "Memory cgroup min protection ")
	if !found {
		return report.Protection{}, false
	}
	min, low, found := strings.Cut(rest, " -- low protection ")
	if !found {
		return report.Protection{}, false
	}
	var p report.Protection
	var ok1, ok2 bool
	p.MinBytes, ok1 = parseKB(min)
	p.LowBytes, ok2 = parseKB(low)
	return p, ok1 && ok2
}

// summary is the "oom-kill:constraint=...,task=..,pid=..,uid=.." line (>= 5.0).
type summary struct {
	constraint, nodemask, cpuset, mems, oomMemcg, taskMemcg, task string
	globalOOM                                                     bool
	// ambiguous: a name or path holds a key of the line, so that some
	// values could not be told apart and were left out.
	ambiguous, lastCut bool
	pid, uid           int
	hasPID, hasUID     bool
}

func parseSummary(line string) (summary, bool) {
	return parseSummaryNamed(line, nil)
}

// parseSummaryNamed parses a summary line; nameOf, when not nil, gives the
// process name the report already holds for a pid (its task row), which
// tells where the task's name starts when the cgroup path before it or
// the name itself holds ",task=". Without it, or when it fits no split,
// the name and the task memcg are left out of such a line.
func parseSummaryNamed(line string, nameOf func(pid int) (string, bool)) (summary, bool) {
	rest, found := strings.CutPrefix(line, summaryPrefix)
	if !found {
		return summary{}, false
	}
	var s summary
	// task, pid and uid are the last three fields: parse from the right,
	// a comm may contain ',' and '='.
	if i := strings.LastIndex(rest, ",uid="); i >= 0 {
		s.uid, s.hasUID = atoiOK(rest[i+len(",uid="):])
		rest = rest[:i]
	}
	if i := strings.LastIndex(rest, ",pid="); i >= 0 {
		s.pid, s.hasPID = atoiOK(rest[i+len(",pid="):])
		rest = rest[:i]
	}
	if alts := taskFields(rest); len(alts) == 1 {
		s.task = rest[alts[0]+len(",task="):]
		rest = rest[:alts[0]]
	} else if len(alts) > 1 {
		// "...,task_memcg=/a,task=b,task=c": a path "/a,task=b" and the
		// name "c", or the path "/a" and the name "b,task=c".
		i := -1
		if name, ok := nameOf2(nameOf, s.pid, s.hasPID); ok {
			for _, a := range alts {
				if rest[a+len(",task="):] == name {
					i = a
				}
			}
		}
		if i < 0 {
			s.ambiguous = true
			rest = rest[:alts[0]] // the name and the value it may end are left out
			s.lastCut = true
		} else {
			s.task = rest[i+len(",task="):]
			rest = rest[:i]
		}
	}
	// The rest is constraint=..,nodemask=..[,cpuset=..,mems_allowed=..]
	// [,oom_memcg=..|,global_oom][,task_memcg=..]: values (node lists,
	// paths) may contain commas, so cut at the known keys in order.
	keys := [...]string{"constraint=", ",nodemask=", ",cpuset=", ",mems_allowed=", ",oom_memcg=", ",global_oom", ",task_memcg="}
	var pos [len(keys)]int
	from := 0
	for k, key := range keys {
		pos[k] = -1
		if k == 0 {
			if strings.HasPrefix(rest, key) {
				pos[k] = 0
			}
			continue
		}
		if i := strings.Index(rest[from:], key); i >= 0 {
			pos[k] = from + i
			from = pos[k] + len(key)
		}
	}
	// cpuset= prints a cgroup's name and oom_memcg=, task_memcg= cgroup
	// paths, which may hold the keys that follow them: a key printed more
	// than once makes the values it may end unknown.
	for _, key := range keys[3:] {
		// The kernel prints oom_memcg= or global_oom, never both.
		if strings.Count(rest, key) > 1 || strings.Contains(rest, ",oom_memcg=") && strings.Contains(rest, ",global_oom") {
			s.ambiguous = true
			s.cpuset, s.mems, s.oomMemcg, s.taskMemcg = "", "", "", ""
			return s, s.constraint != "" || s.hasPID
		}
	}
	vals := [len(keys)]*string{&s.constraint, &s.nodemask, &s.cpuset, &s.mems, &s.oomMemcg, nil, &s.taskMemcg}
	for k := range keys {
		if pos[k] < 0 {
			continue
		}
		end := len(rest)
		for n := k + 1; n < len(keys); n++ {
			if pos[n] >= 0 {
				end = pos[n]
				break
			}
		}
		start := pos[k] + len(keys[k])
		if start > end {
			start = end
		}
		if vals[k] != nil {
			*vals[k] = rest[start:end]
		} else {
			s.globalOOM = true
		}
	}
	if s.lastCut { // the last value may end with a piece of the name
		for k := len(keys) - 1; k > 0; k-- {
			if pos[k] >= 0 && vals[k] != nil {
				*vals[k] = ""
				break
			}
		}
	}
	return s, s.constraint != "" || s.hasPID
}

// nameOf2 calls nameOf for pid when both are known.
func nameOf2(nameOf func(pid int) (string, bool), pid int, hasPID bool) (string, bool) {
	if nameOf == nil || !hasPID {
		return "", false
	}
	return nameOf(pid)
}

// taskFields returns where ",task=" may start the last field of rest
// (the summary before its ",pid="): every such marker whose value is no
// longer than a process name, since the name itself may hold ",task=",
// and so may the path before it. A value longer than a name (a kernel
// that prints more) leaves the last marker.
func taskFields(rest string) []int {
	last := strings.LastIndex(rest, ",task=")
	if last < 0 {
		return nil
	}
	var alts []int
	for i := max(0, len(rest)-maxComm-len(",task=")); i <= last; i++ {
		if strings.HasPrefix(rest[i:], ",task=") {
			alts = append(alts, i)
		}
	}
	if len(alts) == 0 {
		return []int{last}
	}
	return alts
}

// killed is a "Killed process" line:
// "[<msg>: ]Killed process N (comm) total-vm:NkB, anon-rss:NkB, file-rss:NkB[, shmem-rss:NkB][, UID:N pgtables:NkB oom_score_adj:N]".
// RHEL/CentOS 6 kernels print "Killed process N, UID U, (comm) total-vm:...".
func parseKilled(line string) (report.Victim, bool) {
	v, ok, whole := parseKilledFields(line)
	return v, ok && whole
}

// parseKilledFields parses a Killed line: ok when its pid and name were
// read, whole when its three sizes were too.
func parseKilledFields(line string) (v report.Victim, ok, whole bool) {
	v, whole = parseKilledLine(line)
	return v, v.PID > 0 || v.Comm != "", whole
}

func parseKilledLine(line string) (report.Victim, bool) {
	i := strings.Index(line, killedMarker)
	if i < 0 {
		return report.Victim{}, false
	}
	s := line[i+len(killedMarker):]
	var uid *int
	if num, tail, found := strings.Cut(s, ", UID "); found && ascii.IsDigits(num) {
		// RHEL/CentOS 6 (2.6.32): "Killed process N, UID U, (comm) total-vm:..."
		u, after, found := strings.Cut(tail, ", (")
		n, ok := atoiOK(u)
		if !found || !ok {
			return report.Victim{}, false
		}
		uid, s = &n, num+" ("+after
	}
	pid, comm, rest, ok := cutPIDComm(s, ") total-vm:")
	if !ok {
		// 2.6.2x: "Killed process N (comm)", sizes not printed.
		if pid, comm, _, ok = cutPIDComm(s+" ", ") "); !ok || strings.Contains(comm, ") total-vm") || len(comm) > maxComm {
			return report.Victim{}, false
		}
		return report.Victim{PID: pid, Comm: comm, Message: strings.TrimSuffix(line[:i], ": "), UID: uid}, false
	}
	v := report.Victim{PID: pid, Comm: comm, Message: strings.TrimSuffix(line[:i], ": "), UID: uid}
	rest = "total-vm:" + rest
	var sizes [3]*uint64 // total-vm, anon-rss, file-rss
	for _, f := range strings.Fields(strings.ReplaceAll(rest, ",", " ")) {
		k, val, found := strings.Cut(f, ":")
		if !found {
			continue
		}
		switch k {
		case "total-vm":
			sizes[0] = kbPtr(val)
		case "anon-rss":
			sizes[1] = kbPtr(val)
		case "file-rss":
			sizes[2] = kbPtr(val)
		case "shmem-rss":
			v.ShmemRSSBytes = kbPtr(val)
		case "UID":
			if n, ok := atoiOK(val); ok {
				v.UID = &n
			}
		case "pgtables":
			v.PgtablesBytes = kbPtr(val)
		case "oom_score_adj":
			if n, ok := atoiOK(val); ok {
				v.OOMScoreAdj = &n
			}
		}
	}
	v.SetSizes(sizes[0], sizes[1], sizes[2])
	return v, sizes[0] != nil && sizes[1] != nil && sizes[2] != nil
}

// kbPtr parses "123kB" into bytes, nil when it is not that (a number cut
// before its unit is no number).
func kbPtr(s string) *uint64 {
	if !strings.HasSuffix(s, "kB") && !strings.HasSuffix(s, "KB") {
		return nil
	}
	n, ok := parseKB(s)
	if !ok {
		return nil
	}
	return &n
}

// parseKill is "<msg>: Kill process N (comm) score S or sacrifice child" (<= 5.0).
func parseKill(line string) (report.Chosen, bool) {
	i := strings.Index(line, killMarker)
	if i < 0 || !strings.HasSuffix(line, " or sacrifice child") {
		return report.Chosen{}, false
	}
	pid, comm, rest, ok := cutPIDComm(line[i+len(killMarker):], ") score ")
	if !ok {
		return report.Chosen{}, false
	}
	score, err := strconv.ParseInt(strings.TrimSuffix(rest, " or sacrifice child"), 10, 64)
	if err != nil {
		return report.Chosen{}, false
	}
	return report.Chosen{PID: pid, Comm: comm, Score: score}, true
}

// parseSharing is "Kill process N (comm) sharing same memory" (3.x).
func parseSharing(line string) (report.PIDComm, bool) {
	rest, found := strings.CutPrefix(line, killMarker)
	if !found || !strings.HasSuffix(rest, ") sharing same memory") {
		return report.PIDComm{}, false
	}
	pid, comm, _, ok := cutPIDComm(rest, ") sharing same memory")
	return report.PIDComm{PID: pid, Comm: comm}, ok
}

// parseExiting is "<msg>: OOM victim N (comm) is already exiting. Skip killing the task".
func parseExiting(line string) (report.ExitingTask, bool) {
	i := strings.Index(line, "OOM victim ")
	if i < 0 || !strings.HasSuffix(line, exitingMarker) {
		return report.ExitingTask{}, false
	}
	pid, comm, _, ok := cutPIDComm(line[i+len("OOM victim "):], exitingMarker)
	if !ok {
		return report.ExitingTask{}, false
	}
	return report.ExitingTask{PID: pid, Comm: comm, Message: strings.TrimSuffix(line[:i], ": ")}, true
}

// parseGroup is "Tasks in <path> are going to be killed due to memory.oom.group set".
func parseGroup(line string) (string, bool) {
	rest, found := strings.CutPrefix(line, groupPrefix)
	if !found || !strings.HasSuffix(rest, groupSuffix) {
		return "", false
	}
	return strings.TrimSuffix(rest, groupSuffix), true
}

// reaperLine is "oom_reaper: reaped process N (comm), now anon-rss:NkB, file-rss:NkB, shmem-rss:NkB"
// or "oom_reaper: unable to reap pid:N (comm)".
func parseReaper(line string) (pid int, comm string, r report.Reaper, ok bool) {
	rest, found := strings.CutPrefix(line, reaperPrefix)
	if !found {
		return 0, "", r, false
	}
	if s, found := strings.CutPrefix(rest, "unable to reap pid:"); found {
		pid, comm, _, ok = cutPIDComm(s+" ", ")")
		return pid, comm, report.Reaper{}, ok
	}
	s, found := strings.CutPrefix(rest, "reaped process ")
	if !found {
		return 0, "", r, false
	}
	pid, comm, tail, ok := cutPIDComm(s, "), now ")
	if !ok {
		return 0, "", r, false
	}
	r.Reaped = true
	for _, f := range strings.Fields(strings.ReplaceAll(tail, ",", " ")) {
		k, v, _ := strings.Cut(f, ":")
		switch k {
		case "anon-rss":
			r.AnonRSSBytes = kbPtr(v)
		case "file-rss":
			r.FileRSSBytes = kbPtr(v)
		case "shmem-rss":
			r.ShmemRSSBytes = kbPtr(v)
		}
	}
	return pid, comm, r, true
}

// parsePinned is "oom killer N (comm) has mm pinned by M (comm2)".
func parsePinned(line string) (victim, by report.PIDComm, ok bool) {
	rest, found := strings.CutPrefix(line, "oom killer ")
	if !found {
		return victim, by, false
	}
	pid, comm, tail, ok1 := cutPIDComm(rest, ") has mm pinned by ")
	if !ok1 {
		return victim, by, false
	}
	pid2, comm2, _, ok2 := cutPIDComm(tail+" ", ")")
	return report.PIDComm{PID: pid, Comm: comm}, report.PIDComm{PID: pid2, Comm: comm2}, ok2
}

// parseSuppressed is "oom_kill_process: N callbacks suppressed".
func parseSuppressed(line string) (int, bool) {
	rest, found := strings.CutPrefix(line, "oom_kill_process: ")
	if !found || !strings.HasSuffix(rest, suppressed) {
		return 0, false
	}
	return atoiOK(strings.TrimSuffix(rest, suppressed))
}

// cutPIDComm parses "N (comm<anchor>rest": the comm ends at the LAST
// occurrence of anchor (a comm may contain ')' or spaces), which must start
// with ')'.
func cutPIDComm(s, anchor string) (pid int, comm, rest string, ok bool) {
	num, tail, found := strings.Cut(s, " (")
	if !found {
		return 0, "", "", false
	}
	pid, ok = atoiOK(num)
	if !ok {
		return 0, "", "", false
	}
	i := strings.LastIndex(tail, anchor)
	if i < 0 {
		return 0, "", "", false
	}
	return pid, tail[:i], tail[i+len(anchor):], true
}

// parseKB parses "123kB" or "123KB" (or a bare number of kB) into bytes,
// saturating at the largest uint64.
func parseKB(s string) (uint64, bool) {
	s = strings.TrimSpace(s)
	s = strings.TrimSuffix(strings.TrimSuffix(s, "kB"), "KB")
	n, ok := parseUint(s)
	if !ok {
		return 0, false
	}
	return mulSat(n, 1024), true
}

func mulSat(a, b uint64) uint64 {
	if a != 0 && b > math.MaxUint64/a {
		return math.MaxUint64
	}
	return a * b
}

func parseUint(s string) (uint64, bool) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	return n, err == nil
}

func atoiOK(s string) (int, bool) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	return n, err == nil
}

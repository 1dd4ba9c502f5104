package oomparse

import (
	"strings"

	"github.com/oomscope/oomscope/report"
)

// sectionStart handles the lines that open a section of the dump:
// Mem-Info, the slab table, the task table, and COMPACTION.
func (p *Parser) sectionStart(k kind, line string) {
	p.use()
	switch k {
	case kMemInfo:
		if p.r.MemInfo == nil {
			p.r.MemInfo = &report.MemInfo{}
		}
		p.state = stMemInfo
	case kSlabHeader:
		p.state = stSlab
	case kSlabExcessive:
		p.problem("the kernel could not dump the unreclaimable slab table")
	case kTasksState:
		p.state = stTasks
	case kCompaction:
		if p.r.Trigger != nil {
			p.r.Trigger.CompactionDisabled = true
		}
	case kTaskHeader:
		names, cols, _ := parseTaskHeader(line)
		p.r.TaskColumns, p.cols = names, cols
		p.state = stTasks
	}
}

// sectionLine handles a line of no row of the table, by the section that
// is open: the memory cgroup statistics, the node memory dump, the slab
// table. It reports whether it used the line.
func (p *Parser) sectionLine(line string) bool {
	switch p.state {
	case stStats:
		return p.statLine(line)
	case stMemInfo:
		if p.memInfoN >= maxMemInfoLines {
			if isMemInfoLine(line) {
				p.overflow(secMemInfo, maxMemInfoLines)
				return true
			}
			return false
		}
		if addMemInfoLine(p.r.MemInfo, line) {
			p.use()
			p.memInfoN++
			return true
		}
	case stSlab:
		if strings.HasPrefix(line, "Name ") && strings.Contains(line, "Used") {
			p.use()
			return true
		}
		if s, ok := parseSlabRow(line); ok {
			if len(p.r.Slab) >= maxSlabRows {
				p.overflow(secSlab, maxSlabRows)
				return true
			}
			p.use()
			s.Name = clipBytes(s.Name, maxNameBytes)
			p.r.Slab = append(p.r.Slab, s)
			return true
		}
	}
	return false
}

// headerOnlyLine handles the lines that only follow the header: the cpuset
// line (<= 4.19), the stack dump's CPU/PID line, the hardware name.
func (p *Parser) headerOnlyLine(k kind, line string) bool {
	switch k {
	case kStack:
		s, ok := parseStackInfo(line)
		if !ok {
			return false
		}
		p.use()
		t := p.r.Trigger
		if t != nil && t.PID == nil && s.hasPID {
			pid := s.pid
			t.PID = &pid
			if s.hasUID {
				uid := s.uid
				t.UID = &uid
			}
			if s.hasCPU {
				cpu := s.cpu
				t.CPU = &cpu
			}
			t.Tainted = s.tainted
		}
		if p.r.KernelVersion == "" {
			p.r.KernelVersion, p.r.KernelBuild = s.version, s.rest
			r := p.r
			p.mayBeCut(func() {
				if r.KernelBuild == "" {
					r.KernelVersion = ""
				}
				r.KernelBuild = ""
			})
		}
		return true
	case kHardware:
		p.use()
		p.r.Hardware = strings.TrimPrefix(line, "Hardware name: ")
		r := p.r
		p.mayBeCut(func() { r.Hardware = "" })
		return true
	case kCpuset:
		if p.r.Trigger == nil || !strings.HasPrefix(line, p.r.Trigger.Comm+" cpuset=") {
			return false
		}
		cs, mems, _ := parseCpusetLine(line)
		p.use()
		p.r.Cpuset, p.r.MemsAllowed = cs, mems
		r := p.r
		p.mayBeCut(func() {
			if r.MemsAllowed == mems {
				r.MemsAllowed = ""
			}
		})
		return true
	}
	return false
}

// memcgLine handles the memory cgroup block: "Task in", the page counters,
// "Memory cgroup stats for", the protection line.
func (p *Parser) memcgLine(k kind, line string) {
	switch k {
	case kTaskIn:
		task, memcg, _ := parseTaskIn(line)
		p.use()
		if task == "" && memcg == "" {
			p.problem("a cgroup path in the Task in line holds the line's own words: both paths are left out")
		}
		p.r.TaskMemcg, p.r.OOMMemcg = clipBytes(task, maxPathBytes), clipBytes(memcg, maxPathBytes)
		p.state = stMemcg
		r, oom := p.r, p.r.OOMMemcg
		p.mayBeCut(func() {
			if r.OOMMemcg == oom {
				r.OOMMemcg = ""
			}
		})
	case kLimitReached:
		p.use()
		p.r.OOMMemcg = clipBytes(strings.TrimPrefix(line, "Memory limit reached of cgroup "), maxPathBytes)
		p.state = stMemcg
	case kCounter:
		name, c, ok := parseCounter(line)
		if !ok {
			p.malformed(line, "memory cgroup counter")
			return
		}
		p.use()
		cc := c
		var slot **report.Counter
		switch name {
		case "memory":
			slot = &p.r.Memory
		case "memory+swap":
			slot = &p.r.MemorySwap
		case "kmem":
			slot = &p.r.Kmem
		case "swap":
			slot = &p.r.Swap
		}
		*slot = &cc
		p.mayBeCut(func() { // a failcnt cut in two: the counter is not known whole
			if *slot == &cc {
				*slot = nil
			}
		})
		p.state = stMemcg
	case kStatsHeader:
		path, inline, _ := parseStatsHeader(line)
		if p.statN >= maxStatLines {
			p.stats = -1
			p.state = stStats
			p.overflow(secStats, maxStatLines)
			return
		}
		p.use()
		p.statN++
		ms := report.MemcgStats{Path: clipBytes(path, maxPathBytes), Format: "keys", Stats: map[string]uint64{}}
		if inline != "" {
			ms.Format = "v1-inline"
			addInlinePairs(ms.Stats, wholePairs(inline))
		}
		p.r.MemcgStats = append(p.r.MemcgStats, ms)
		p.stats = len(p.r.MemcgStats) - 1
		p.state = stStats
	case kProtection:
		pr, ok := parseProtection(line)
		if !ok {
			p.malformed(line, "memory cgroup protection")
			return
		}
		p.use()
		prot := pr // a copy, so that pr does not escape for every line
		p.r.Protection = &prot
	}
}

// statLine handles a line of an open "Memory cgroup stats" block.
func (p *Parser) statLine(line string) bool {
	if p.stats < 0 || p.statN >= maxStatLines {
		if _, _, ok := parseStatLine(line); ok || isInlinePairs(line) {
			p.overflow(secStats, maxStatLines)
			return true
		}
		return false
	}
	ms := &p.r.MemcgStats[p.stats]
	if ms.Format == "keys" && len(ms.Stats) == 0 && ms.Path == "" && isInlinePairs(line) {
		ms.Format = "v1-inline" // a header cut before its pairs: they tell its form
	}
	if k, v, ok := parseStatLine(line); ok && ms.Format == "keys" {
		p.use()
		p.statN++
		ms.Stats[k] = v
		return true
	}
	if ms.Format == "v1-inline" && isInlinePairs(line) {
		p.use() // a long one-line stats record split by the kernel
		p.statN++
		addInlinePairs(ms.Stats, line)
		return true
	}
	return false
}

// addInlinePairs adds " key:NKB" pairs, converted to bytes.
func addInlinePairs(m map[string]uint64, s string) {
	for _, f := range strings.Fields(s) {
		k, v, ok := strings.Cut(f, ":")
		if !ok {
			continue
		}
		if b, ok := parseKB(v); ok {
			m[k] = b
		}
	}
}

// newU64 returns a pointer to a copy of v, carved from a chunk: task rows
// have up to six optional columns, and one allocation per value would
// dominate the cost of a large table.
func (p *Parser) newU64(v uint64) *uint64 {
	if len(p.u64s) == cap(p.u64s) {
		p.u64s = make([]uint64, 0, 1024)
	}
	p.u64s = append(p.u64s, v)
	return &p.u64s[len(p.u64s)-1]
}

// taskRow adds a task-table row.
func (p *Parser) taskRow(line string) bool {
	if !isTaskRow(line) {
		return false
	}
	p.use()
	if p.cols == nil {
		// No table header (a grep kept the rows): the columns by the
		// rows' layout and the kernel release.
		e := inferEra(line, p.r.KernelVersion)
		if e == nil {
			p.malformed(line, "task row without the table header, of no known layout")
			return true
		}
		p.era, p.cols = e, e.cols
		p.problem("no task table header: the rows are read as the columns of kernel " + e.name)
	}
	t, ok := parseTaskRow(line, p.cols, p.newU64)
	if !ok {
		p.malformed(line, "task row")
		return true
	}
	p.r.TasksTotal++
	p.r.TaskRSSPagesTotal += t.RSSPages
	if p.era != nil && p.era.maybe26 && ambiguousRow(line) {
		p.r.TasksDropped++ // its swapents column may be a 2.6 oom_adj
		return true
	}
	if p.tasks.add(t) {
		p.r.TasksDropped++
	}
	return true
}

// wholePairs is the " key:NKB" pairs at the start of s up to the first
// that is not one.
func wholePairs(s string) string {
	f := strings.Fields(s)
	n := 0
	for n < len(f) && isInlinePairs(" "+f[n]) {
		n++
	}
	return " " + strings.Join(f[:n], " ")
}

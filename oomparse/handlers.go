package oomparse

import (
	"fmt"
	"strings"

	"github.com/oomscope/oomscope/report"
)

// line dispatches one line of text by its row of the table (markers.go).
// Lines of no row are read by the section that is open. last says the line
// ends its record (where a cut record was cut).
func (p *Parser) line(dst []report.Report, line string, last bool) []report.Report {
	line = trimSpace(line)
	s := classify(line)
	repaired := false
	if s == nil && strings.HasPrefix(line, "[") {
		if h, ok := completeTaskHeader(line); ok { // a header cut short
			line, s, repaired = h, classify(h), true
			if p.r != nil {
				p.problem("task table header cut short, completed by its kernel era's columns")
			}
		}
	}
	if !repaired && p.isCut(s, line, last) {
		var ok bool
		if s != nil && s.kind == kKilled {
			v, ok, _ := parseKilledFields(cutShortOr(s, line))
			if !ok {
				var pid int
				var comm string
				pid, comm, ok = cutVictim(line)
				v = report.Victim{PID: pid, Comm: comm, Message: killedMessage(line)}
			}
			if ok {
				// Cut in its sizes or name: a victim all the same, what
				// was cut absent.
				k := killed{v: v}
				if p.r == nil {
					p.openPartial()
					p.addVictim(k)
				} else {
					dst = p.kill(dst, k)
				}
				p.problem(fmt.Sprintf("Killed line cut short: %q", clip(line)))
				p.r.Incomplete = true
				return dst
			}
		}
		whole, ok := cutShort(s, line)
		if !ok {
			if p.r != nil {
				p.use()
				p.r.UnparsedLines++
				p.problem(fmt.Sprintf("line cut short, nothing whole left: %q", clip(line)))
			}
			return dst
		}
		if p.r != nil {
			p.problem(fmt.Sprintf("line cut short, its last value dropped: %q", clip(line)))
			p.r.Incomplete = true
		}
		line, s = whole, classify(whole)
	}
	if p.state == stTasks && isTaskRow(line) {
		// The hot path of a large table: a line that starts "[  1234]" is
		// a row, it cannot be any other line of a report.
		p.taskRow(line)
		p.unrelated = 0
		return dst
	}
	if p.state == stIdle {
		return p.idleLine(dst, line, s)
	}
	if s == nil {
		if p.sectionLine(line) {
			p.unrelated = 0
			return dst
		}
		return p.unknownLine(dst, line)
	}
	switch s.role {
	case roleNever:
		if p.tentative { // the dump is another kind's
			dst = p.emit(dst, "")
			p.otherDump = otherDumpRecords
			return dst
		}
		return p.unknownLine(dst, line)
	case roleOpen:
		if p.tentative && !p.confirm() || !p.tentative && p.splits(s) {
			dst = p.emit(dst, "the next report started")
			return p.idleLine(dst, line, s)
		}
	case roleTentative:
		if s.rank < p.maxRank { // a generic line never starts a report on its own
			return p.unknownLine(dst, line)
		}
	}
	done, dst := p.known(dst, s, line)
	if !done {
		return p.unknownLine(dst, line)
	}
	p.saw(s)
	return dst
}

// saw notes that the open report took a line of row s.
func (p *Parser) saw(s *shape) {
	if p.r == nil || s.rank == rankAny {
		return
	}
	p.unrelated = 0
	p.seenRow[s.id] = true
	if s.rank > p.maxRank {
		p.maxRank = s.rank
	}
}

// known handles a line of row s in an open report. It reports false when
// the line is not one the report can take where it is.
func (p *Parser) known(dst []report.Report, s *shape, line string) (bool, []report.Report) {
	switch s.kind {
	case kHeader:
		h, ok := parseHeader(line)
		if !ok {
			return false, dst
		}
		dst = p.emit(dst, "a new report started")
		p.startHeader(h)
		return true, dst
	case kStack, kHardware, kCpuset:
		return p.state == stHeader && p.headerOnlyLine(s.kind, line), dst
	case kTaskIn, kLimitReached, kCounter, kStatsHeader, kProtection:
		p.memcgLine(s.kind, line)
		return true, dst
	case kMemInfo, kSlabHeader, kSlabExcessive, kTasksState, kCompaction, kTaskHeader:
		p.sectionStart(s.kind, line)
		return true, dst
	case kTaskRow:
		if p.state != stTasks && p.cols != nil {
			return false, dst // a row away from its table
		}
		p.state = stTasks
		return p.taskRow(line), dst
	case kNever:
		return false, dst
	}
	return p.victimLine(dst, s.kind, line)
}

// idleLine handles a line while no report is open: a header starts one;
// a victim line without a header is a rate-limited (partial) report;
// another OOM-specific line opens a report whose beginning is missing; a
// generic line opens a tentative one.
func (p *Parser) idleLine(dst []report.Report, line string, s *shape) []report.Report {
	if s == nil {
		return dst
	}
	switch s.kind {
	case kHeader:
		if h, ok := parseHeader(line); ok {
			p.startHeader(h)
			p.saw(s)
		}
		return dst
	case kSuppressed:
		if n, ok := parseSuppressed(line); ok {
			p.suppressed += n
		}
		return dst
	case kReaper:
		// A late reaper line of a held report, or of a report already
		// delivered or never seen (then dropped).
		if pid, _, r, ok := parseReaper(line); ok && !p.attachHeld(pid, r) && p.delivered.has(pid) {
			p.lateReaper++
		}
		return dst
	case kKilled, kExiting:
		if p.bareVictim(line) {
			p.saw(s)
		}
		return dst
	case kKill:
		if p.bareKill(line) {
			p.saw(s)
		}
		return dst
	case kGroup, kNoKillable:
		p.bareOther(s.kind, line)
		p.saw(s)
		return dst
	}
	switch s.role {
	case roleNever:
		p.otherDump = otherDumpRecords
		return dst
	case roleOpen:
		if !opens(s, line) {
			return dst
		}
		p.openHeadless(s)
	case roleTentative:
		if p.otherDump > 0 || !opens(s, line) {
			return dst
		}
		p.openTentative(s)
	default:
		return dst
	}
	if s.kind == kTaskRow {
		p.state = stTasks
	}
	done, dst := p.known(dst, s, line)
	if done {
		p.saw(s)
	}
	return dst
}

// startHeader opens a report from its header line.
func (p *Parser) startHeader(h header) {
	if rec, prev := p.cur, p.curPrev; rec != nil && prev.ok && !rec.HasSeq && rec.HasMono && prev.mono == rec.Mono &&
		prev.host == rec.Host && len(prev.text)+1+len(h.comm) <= maxComm && strings.HasPrefix(rec.Text, h.comm+invokedMarker) {
		// The trigger's name held a newline and the kernel's syslog
		// rendering printed its start on a line of its own, with the
		// header's timestamp.
		h.comm = prev.text + "\n" + h.comm
	}
	p.open()
	p.use()
	t := &report.Trigger{Comm: h.comm, GFPMask: h.gfpMask}
	if h.hasOrder {
		t.Order = new(h.order)
	}
	if h.hasAdj {
		t.OOMScoreAdj = new(h.adj)
		p.mayBeCut(func() { t.OOMScoreAdj = nil })
	}
	if h.gfpFlags != "" {
		t.GFPFlags = strings.Split(h.gfpFlags, "|")
	}
	p.r.Trigger = t
	p.r.Nodemask = h.nodemask
	if !h.hasOrder || !h.hasAdj {
		p.problem("header line without order or oom_score_adj")
	}
}

// killed is a Killed or already-exiting line.
type killed struct {
	v       report.Victim
	exiting bool // an "already exiting" line: v holds its pid, comm and message
}

// parseKilledOrExiting parses a Killed or already-exiting line.
func parseKilledOrExiting(line string) (killed, bool) {
	if v, ok, whole := parseKilledFields(line); ok && (whole || !strings.Contains(line, "total-vm:")) {
		return killed{v: v}, true // whole, or of 2.6.2x, which prints no sizes
	}
	if e, ok := parseExiting(line); ok {
		return killed{v: report.Victim{PID: e.PID, Comm: e.Comm, Message: e.Message}, exiting: true}, true
	}
	return killed{}, false
}

// bareVictim starts a partial report from a Killed / already-exiting line.
func (p *Parser) bareVictim(line string) bool {
	k, ok := parseKilledOrExiting(line)
	if !ok {
		if strings.Contains(line, killedMarker) {
			p.malformed(line, "Killed process")
		}
		return false
	}
	p.openPartial()
	p.addVictim(k)
	return true
}

// bareKill starts a partial report from a "Kill process ... or sacrifice child" line.
func (p *Parser) bareKill(line string) bool {
	c, ok := parseKill(line)
	if !ok {
		return false
	}
	p.openPartial()
	p.choose(c, line)
	return true
}

// choose records the task a "Kill process ... or sacrifice child" line
// selected, and the line's message prefix ("Memory cgroup out of memory"):
// on kernels <= 5.0 the Killed line that follows carries none.
func (p *Parser) choose(c report.Chosen, line string) {
	p.chosen = &c
	p.chosenMsg = ""
	if i := strings.Index(line, killMarker); i > 0 {
		p.chosenMsg = strings.TrimSuffix(line[:i], ": ")
	}
	p.state = stKill
}

// bareOther handles the remaining report lines met without a header:
// their header was lost, so the report is incomplete as well as partial.
func (p *Parser) bareOther(k kind, line string) {
	switch k {
	case kGroup:
		path, _ := parseGroup(line)
		p.openPartial()
		p.r.OOMGroup = path
		p.r.Incomplete = true
		p.problem("memory.oom.group line without the victim line before it")
	case kNoKillable:
		p.openPartial()
		p.r.NoKillable = true
		p.r.Incomplete = true
		p.problem("\"no killable processes\" without the report header (it is never rate limited: records were lost)")
	default:
		return
	}
	p.state = stVictims
	p.victimMono = p.lastMono
}

// openPartial opens a report that starts without its header.
func (p *Parser) openPartial() {
	p.open()
	p.use()
	p.r.Partial = true
	if p.cur != nil && p.cur.HasMono {
		p.lastMono, p.hasMono = p.cur.Mono, true
	}
	p.problem("the kernel rate limited this report: only the victim line was printed")
}

// victimLine handles the lines that end a report's dump: summary, Kill,
// Killed, already exiting, oom.group, reaper, no killable, mm pinned.
func (p *Parser) victimLine(dst []report.Report, k kind, line string) (bool, []report.Report) {
	switch k {
	case kSummary:
		s, ok := parseSummaryNamed(line, p.taskName)
		if !ok {
			p.malformed(line, "oom-kill summary")
			return true, dst
		}
		p.use()
		p.applySummary(s)
		if p.state != stVictims {
			p.state = stKill
		}
	case kReaper:
		pid, comm, r, ok := parseReaper(line)
		if !ok {
			p.malformed(line, "oom_reaper")
			return true, dst
		}
		for i := range p.r.Victims {
			if p.r.Victims[i].PID == pid {
				p.use()
				rr := r
				p.r.Victims[i].Reaper = &rr
				return true, dst
			}
		}
		switch {
		case p.attachHeld(pid, r): // an earlier report's, still held
		case p.delivered.has(pid) && !p.chose(pid):
			// An earlier report's, already delivered: late, swallowed.
			p.lateReaper++
		default: // or one never seen
			p.inferVictim(pid, comm, r)
		}
	case kKilled, kExiting:
		dst = p.killedLine(dst, line)
	case kKill, kSharing:
		dst = p.killLine(dst, line)
	case kGroup:
		path, _ := parseGroup(line)
		p.use()
		p.r.OOMGroup = path
		p.state = stVictims
	case kNoKillable:
		p.use()
		p.r.NoKillable = true
		p.enterVictims()
	case kPinned:
		v, by, ok := parsePinned(line)
		if !ok {
			p.malformed(line, "mm pinned")
			return true, dst
		}
		p.use()
		for i := range p.r.Victims {
			if p.r.Victims[i].PID == v.PID {
				b := by
				p.r.Victims[i].PinnedBy = &b
			}
		}
	case kPanic:
		p.use()
		p.r.Panic = strings.TrimPrefix(line, "Kernel panic - not syncing: ")
		p.enterVictims()
	case kSuppressed:
		n, _ := parseSuppressed(line)
		p.suppressed += n
	default:
		return false, dst
	}
	return true, dst
}

// killedLine handles "Killed process" and "already exiting" lines.
func (p *Parser) killedLine(dst []report.Report, line string) []report.Report {
	k, ok := parseKilledOrExiting(line)
	if !ok {
		p.malformed(line, "Killed process")
		return dst
	}
	return p.kill(dst, k)
}

// kill adds a killed (or already exiting) task to the open report, or to
// the next, rate-limited one.
func (p *Parser) kill(dst []report.Report, k killed) []report.Report {
	if p.state == stVictims && p.r.OOMGroup == "" {
		// A second kill without memory.oom.group: the next, rate-limited report.
		dst = p.emit(dst, "")
		p.openPartial()
		p.addVictim(k)
		return dst
	}
	p.use()
	if p.r.OOMGroup != "" && !k.exiting {
		k.v.GroupMember = true
		for i := range p.r.Victims {
			if p.r.Victims[i].PID == k.v.PID {
				p.r.Victims[i].GroupMember = true // the victim, printed again as a member
				return dst
			}
		}
	}
	p.addVictim(k)
	return dst
}

// inferVictim names the victim of a report whose Killed line is missing
// from an oom_reaper line about the process the report says it chose (the
// summary's pid, or the Kill line's): the reaper only reaps a killed
// process. A reaper line about another pid names nobody.
func (p *Parser) inferVictim(pid int, comm string, rp report.Reaper) {
	if len(p.r.Victims) > 0 || !p.chose(pid) {
		return
	}
	p.use()
	v := report.Victim{PID: pid, Comm: comm, Inferred: "oom_reaper"}
	rr := rp
	v.Reaper = &rr
	p.problem("no Killed line: the victim is named by its oom_reaper line (sizes unknown)")
	p.r.Incomplete = true
	p.addVictim(killed{v: v})
}

// chose reports whether the open report says it chose pid (the summary's
// pid, or the Kill line's).
func (p *Parser) chose(pid int) bool {
	sv, c := p.r.SummaryVictim, p.chosen
	return sv != nil && sv.PID == pid || c != nil && c.PID == pid
}

// killLine handles "Kill process ... or sacrifice child" (<= 5.0) and
// "Kill process ... sharing same memory" (3.x).
func (p *Parser) killLine(dst []report.Report, line string) []report.Report {
	if s, ok := parseSharing(line); ok {
		p.use()
		if n := len(p.r.Victims); n > 0 {
			v := &p.r.Victims[n-1]
			if len(v.SharedMM) >= maxSharedMM {
				p.overflow(secSharedMM, maxSharedMM)
				return dst
			}
			s.Comm = clipBytes(s.Comm, maxNameBytes)
			v.SharedMM = append(v.SharedMM, s)
		}
		return dst
	}
	c, ok := parseKill(line)
	if !ok {
		p.malformed(line, "Kill process")
		return dst
	}
	if p.state == stVictims {
		dst = p.emit(dst, "")
		p.openPartial()
	}
	p.use()
	p.choose(c, line)
	return dst
}

// addVictim appends a killed (or already exiting) task to the open report
// and enters the victims state.
func (p *Parser) addVictim(k killed) {
	v := k.v
	if p.cur != nil && p.cur.HasSeq {
		v.Seq = p.cur.Seq
	}
	if len(p.r.Victims)+len(p.r.AlreadyExiting) >= p.cfg.maxTasks {
		p.overflow(secVictims, p.cfg.maxTasks)
		p.enterVictims()
		return
	}
	v.Comm = clipBytes(v.Comm, maxNameBytes)
	v.Message = clipBytes(v.Message, maxNameBytes)
	if k.exiting {
		// Chosen but not killed: not a victim.
		p.r.AlreadyExiting = append(p.r.AlreadyExiting, report.ExitingTask{PID: v.PID, Comm: v.Comm, Message: v.Message, Seq: v.Seq})
		p.enterVictims()
		return
	}
	if p.chosen != nil {
		v.Chosen, p.chosen = p.chosen, nil
		if v.Message == "" {
			v.Message = p.chosenMsg
		}
	}
	p.r.Victims = append(p.r.Victims, v)
	p.enterVictims()
}

func (p *Parser) enterVictims() {
	p.state = stVictims
	p.lingered = 0
	if p.cur != nil && p.cur.HasMono {
		p.victimMono = p.cur.Mono
		p.lastMono, p.hasMono = p.cur.Mono, true
	}
}

// applySummary copies the oom-kill: line into the report.
func (p *Parser) applySummary(s summary) {
	r := p.r
	if s.ambiguous {
		p.problem("a process name or cgroup path in the oom-kill summary holds the line's own keys: the values it could belong to are left out")
	}
	r.Constraint = s.constraint
	if s.nodemask != "" {
		r.Nodemask = s.nodemask
	}
	if s.cpuset != "" {
		r.Cpuset = s.cpuset
	}
	if s.mems != "" {
		r.MemsAllowed = s.mems
	}
	if s.oomMemcg != "" {
		r.OOMMemcg = s.oomMemcg
	}
	if s.taskMemcg != "" {
		r.TaskMemcg = s.taskMemcg
	}
	if s.task != "" || s.hasPID {
		sv := report.SummaryVictim{Comm: s.task, PID: s.pid}
		if s.hasUID {
			u := s.uid
			sv.UID = &u
		}
		r.SummaryVictim = &sv
	}
}

// taskName is the name of pid's row in the open report's task table.
func (p *Parser) taskName(pid int) (string, bool) {
	for _, t := range p.tasks.rows {
		if t.PID == pid {
			return t.Name, true
		}
	}
	return "", false
}

// unknownLine handles a line no parser recognised.
func (p *Parser) unknownLine(dst []report.Report, line string) []report.Report {
	switch p.state {
	case stHeader:
		// Stack dump: registers, "Call Trace:", frames. Opaque, kept bounded.
		p.use()
		if t := p.r.Trigger; t != nil && len(t.CallTrace) < p.cfg.maxCallTrace {
			t.CallTrace = append(t.CallTrace, clipBytes(line, maxTraceBytes))
		}
		p.unrelated++
		if p.tentative && p.unrelated >= tentativeMaxUnrelated {
			return p.emit(dst, "")
		}
	case stVictims:
		p.lingered++
		if p.linger() == 0 || p.lingered >= p.cfg.lingerRecords {
			return p.emit(dst, "")
		}
		return dst
	default:
		if strings.TrimSpace(line) == "" {
			p.use()
			return dst
		}
		p.use()
		p.r.UnparsedLines++
		p.unrelated++
	}
	if p.unrelated >= p.cfg.maxUnrelated {
		return p.emit(dst, "too many records that are not part of it")
	}
	return dst
}

// foreign handles a record printed by another task or CPU while a report is
// open (known from the ",caller=" field).
func (p *Parser) foreign(dst []report.Report) []report.Report {
	if p.state == stVictims {
		p.lingered++
		if p.linger() == 0 || p.lingered >= p.cfg.lingerRecords {
			return p.emit(dst, "")
		}
		return dst
	}
	p.unrelated++
	if p.unrelated >= p.cfg.maxUnrelated {
		return p.emit(dst, "too many records that are not part of it")
	}
	return dst
}

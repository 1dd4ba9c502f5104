package oomparse

import "time"

// This file decides where reports begin when the input does not hold
// their first line: a paste or a grep that starts in the middle, several
// reports whose headers were cut off, a dump of another kind that shares
// generic lines with OOM reports.

const (
	// otherDumpRecords is how many records after a roleNever line (a
	// failed allocation's warning) its generic lines open no report.
	otherDumpRecords = 512
	// tentativeMaxUnrelated ends a tentative report that met this many
	// records of no section.
	tentativeMaxUnrelated = 256
	// tentativeGap: an OOM-specific line that comes later than this
	// after a tentative report's last record (kernel time) is not its
	// continuation; the kernel prints a report in far less.
	tentativeGap = 5 * time.Second
)

// openHeadless opens a report at an OOM-specific line that is not its
// header: the report's beginning is not in the input.
func (p *Parser) openHeadless(s *shape) {
	p.open()
	p.use()
	p.openedBy = s.name
	p.r.Incomplete = true
	p.problem("the report's beginning is not in the input: it starts at its " + s.name + " line")
}

// openTentative opens a report at a generic line (a stack dump's CPU
// line, Mem-Info): it is delivered only if an OOM-specific line follows.
func (p *Parser) openTentative(s *shape) {
	p.open()
	p.use()
	p.openedBy = s.name
	p.tentative = true
}

// confirm makes a tentative report a report at its first OOM-specific
// line, unless that line comes too late to be part of it.
func (p *Parser) confirm() bool {
	if rec := p.cur; rec != nil && rec.HasMono && p.hasMono && rec.Mono > p.lastMono+tentativeGap {
		return false
	}
	p.tentative = false
	p.r.Incomplete = true
	p.problem("the report's beginning is not in the input: it starts at its " + p.openedBy + " line")
	return true
}

// splits reports whether an OOM-specific line of row s cannot belong to
// the open report and starts the next one: a section the report has
// passed (the kernel prints them in order) or a line a report holds once,
// seen again. The header and the victim lines have rules of their own.
func (p *Parser) splits(s *shape) bool {
	switch s.kind {
	case kHeader, kKilled, kExiting, kKill:
		return false
	}
	return s.rank < p.maxRank || s.once && p.seenRow[s.id]
}

// opens reports whether line, of row s, can open a report where none is
// open: it must parse, not only look like its row.
func opens(s *shape, line string) bool {
	switch s.kind {
	case kTaskRow:
		return isTaskRowShape(line)
	case kSummary:
		_, ok := parseSummary(line)
		return ok
	case kTaskIn:
		_, _, ok := parseTaskIn(line)
		return ok
	case kProtection:
		_, ok := parseProtection(line)
		return ok
	case kCounter:
		_, _, ok := parseCounter(line)
		return ok
	case kStack:
		_, ok := parseStackInfo(line)
		return ok
	}
	return true
}

package oomparse

import (
	"strings"

	"github.com/oomscope/oomscope/internal/ascii"
	"github.com/oomscope/oomscope/kmsg"
	"github.com/oomscope/oomscope/report"
)

// This file splits a record into the lines the state machine reads, by
// the kernel's own delimiters. The kernel prints a process name or a
// cgroup path as they are: a name may hold newlines (prctl, /proc/self/comm)
// and text that looks like kernel lines. Such a newline is no line break:
// the record is one printk, so a record whose first line prints a name or
// a path is one line, whatever newlines it holds. Only the kernel's own
// multi-line records are split: the Mem-Info summary and the memory.stat
// dump of 5.3-6.4, whose later lines are read by the open section alone
// and can never be a report line of their own.

// recordText dispatches the text of one record.
func (p *Parser) recordText(dst []report.Report, text string) []report.Report {
	first, rest, multi := strings.Cut(text, "\n")
	if !multi {
		return p.line(dst, first, true)
	}
	if oneLine(text, first) {
		return p.line(dst, text, true)
	}
	dst = p.line(dst, first, false)
	for {
		line, tail, more := strings.Cut(rest, "\n")
		dst = p.contLine(dst, trimSpace(line), !more && p.cur != nil && p.cur.Cut)
		if !more {
			return dst
		}
		rest = tail
	}
}

// contLine handles a later line of one of the kernel's multi-line records:
// only the open section reads it.
func (p *Parser) contLine(dst []report.Report, line string, cut bool) []report.Report {
	if p.r == nil {
		return dst
	}
	if cut {
		var ok bool
		if line, ok = cutShort(nil, line); !ok {
			return dst
		}
	}
	if p.sectionLine(line) {
		p.unrelated = 0
		return dst
	}
	return p.unknownLine(dst, line)
}

// oneLine reports whether a record of several lines is one line whose
// name or path holds newlines: its first line is of a row that prints
// one, or the header's (or the cpuset line's) marker follows a process
// name's worth of bytes that hold a newline.
func oneLine(text, first string) bool {
	if s := classify(first); s != nil && s.names {
		return true
	}
	return nameBefore(text, invokedMarker) || nameBefore(text, " cpuset=") && strings.Contains(text, " mems_allowed=")
}

// nameBefore reports whether marker follows at most a process name in
// text (a header "<comm> invoked oom-killer:", a cpuset line).
func nameBefore(text, marker string) bool {
	return strings.Contains(text[:min(len(text), maxComm+len(marker))], marker)
}

// firstLine is the part of a record's text that decides whether it matters
// where no report is open (see mayMatter): the whole text when it is one
// line, else its first line.
func firstLine(text string) string {
	first, _, multi := strings.Cut(text, "\n")
	if multi && oneLine(text, first) {
		return text
	}
	return first
}

// trimSpace removes a line's trailing white space (a carriage return, the
// spaces a pager or a paste left): it is never part of a value.
func trimSpace(s string) string { return strings.TrimRight(s, " \t\r") }

// renderedSplit reports whether rec continues prev: the kernel's syslog
// rendering (/proc/kmsg, read by rsyslog into kern.log) prints each line
// of a record with the record's own timestamp, so a name or path with a
// newline becomes two lines with the same timestamp, the first of them an
// unclosed line. Sources with sequence numbers (/dev/kmsg, journal) keep
// a record whole and never split it.
func renderedSplit(prev *kmsg.Record, prevText func() string, rec *kmsg.Record) bool {
	if prev.HasSeq || rec.HasSeq || !prev.HasMono || !rec.HasMono || prev.Mono != rec.Mono || prev.Host != rec.Host || rec.Cont {
		return false
	}
	return openLine(prevText(), rec.Text)
}

// openLine reports whether line is a report line cut by a newline inside a
// name or a path that next continues: the delimiter after the name is not
// there yet.
func openLine(line, next string) bool {
	after := func(marker string) (string, bool) { // the text after "<marker>N (", if line has it
		i := strings.Index(line, marker)
		if i < 0 {
			return "", false
		}
		num, tail, ok := strings.Cut(line[i+len(marker):], " (")
		return tail, ok && ascii.IsDigits(num)
	}
	switch {
	case isTaskRow(line):
		// The name ends the row: a short next line that is no row is its
		// tail.
		name := rowName(line)
		return (name == "" || !isTaskRow(next)) && len(name)+1+len(next) <= maxComm
	case strings.HasPrefix(line, summaryPrefix):
		i := strings.LastIndex(line, ",task=")
		return i < 0 || !strings.Contains(line[i:], ",pid=")
	case strings.HasPrefix(line, reaperPrefix):
		if tail, ok := after("reaped process "); ok {
			return !strings.Contains(tail, "), now ")
		}
		if tail, ok := after("unable to reap pid:"); ok {
			return !strings.HasSuffix(tail, ")")
		}
		return false
	case strings.HasPrefix(line, "oom killer "):
		tail, ok := after("oom killer ")
		return ok && (!strings.Contains(tail, ") has mm pinned by ") || !strings.HasSuffix(tail, ")"))
	case strings.HasPrefix(line, "CPU: ") && strings.Contains(line, " Comm: "):
		tail := line[strings.Index(line, " Comm: "):]
		return !strings.Contains(tail, " Not tainted ") && !strings.Contains(tail, " Tainted: ")
	case strings.HasPrefix(line, "Memory cgroup stats for "):
		return !strings.Contains(line, ":")
	case strings.HasPrefix(line, "Task in "):
		return !strings.Contains(line, " killed as a result of limit of ")
	case strings.HasPrefix(line, groupPrefix):
		return !strings.HasSuffix(line, groupSuffix)
	}
	if tail, ok := after(killedMarker); ok {
		return !strings.Contains(tail, ") total-vm:")
	}
	if tail, ok := after(killMarker); ok {
		return !strings.Contains(tail, ") score ") && !strings.Contains(tail, ") sharing same memory")
	}
	if tail, ok := after("OOM victim "); ok {
		return !strings.Contains(tail, exitingMarker)
	}
	return false
}

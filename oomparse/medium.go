package oomparse

import (
	"strconv"
	"strings"
	"time"

	"github.com/oomscope/oomscope/internal/ascii"
	"github.com/oomscope/oomscope/kmsg"
)

// This file repairs report lines that a medium broke: a mail client that
// wrapped them (at 72-78 columns, at a space or, for a long token, inside
// it), and a terminal, "cut -c" or an ellipsis that cut them short. The
// repair goes by what the kernel's own format strings allow: a line whose
// fixed tail is missing is incomplete; an unprefixed line that follows it
// and completes it is its continuation; a line left incomplete is cut, and
// its last, partial value is dropped. A value is never guessed.

// minWrapped is the shortest line a mail client wraps (at 72 columns or
// more, the break at the last space before the limit).
const minWrapped = 50

// tailMissing reports whether line, of row s, lacks the tail every kernel
// prints for its shape: it was wrapped or cut.
func tailMissing(s *shape, line string) bool {
	switch s.kind {
	case kSummary:
		i := strings.LastIndex(line, ",uid=")
		return i < 0 || !isInt(line[i+len(",uid="):])
	case kHeader: // "..., oom_score_adj=N" (2.6.2x: "oomkilladj=N")
		for _, k := range []string{"oom_score_adj=", "oomkilladj="} {
			if i := strings.LastIndex(line, k); i >= 0 && isInt(line[i+len(k):]) {
				return false
			}
		}
		return true
	case kCounter:
		i := strings.LastIndex(line, ", failcnt ")
		return i < 0 || !isInt(line[i+len(", failcnt "):])
	case kReaper:
		if strings.Contains(line, "unable to reap pid:") {
			return !strings.HasSuffix(line, ")")
		}
		return !strings.HasSuffix(line, "kB") || !strings.Contains(line, "shmem-rss:")
	case kKilled:
		if strings.HasSuffix(line, ")") && !strings.Contains(line, "total-vm:") {
			// 2.6.2x: "Killed process N (comm)", no sizes.
			return false
		}
		last := line[strings.LastIndexAny(line, " ,")+1:]
		k, v, ok := strings.Cut(last, ":")
		if !ok || !strings.Contains(line, ") total-vm:") {
			return true
		}
		switch k {
		case "UID", "oom_score_adj":
			return !isInt(v)
		}
		return !strings.HasSuffix(v, "kB")
	case kStatsHeader:
		if i := strings.Index(line, ": "); i >= 0 && firstPairOK(line[i+1:]) {
			return !isInlinePairs(line[i+1:]) // the one-line form: every pair whole
		}
		return !strings.HasSuffix(line, ":") && !strings.HasSuffix(line, "KB")
	case kStack: // the taint, then a release that starts with a digit
		if i := strings.Index(line, " Not tainted "); i >= 0 {
			return i+len(" Not tainted ") == len(line)
		}
		i := strings.Index(line, " Tainted: ")
		return i < 0 || strings.IndexFunc(line[i+len(" Tainted: "):], func(r rune) bool { return r >= '0' && r <= '9' }) < 0
	case kHardware:
		// DMI: "... BIOS <version> MM/DD/YYYY"; device tree: "... (DT)".
		if strings.HasSuffix(line, ")") {
			return false
		}
		d := line[strings.LastIndexByte(line, ' ')+1:]
		return !(len(d) == 10 && d[2] == '/' && d[5] == '/')
	}
	return false
}

// isInt reports whether s is an optionally negative decimal integer.
func isInt(s string) bool {
	s = strings.TrimPrefix(s, "-")
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// wrapJoin returns the line a mail client wrapped into prev and next (an
// unprefixed line), when next completes it: prev is a report line long
// enough to have been wrapped, incomplete, and the join is of the same
// shape and complete, or at least no less complete. The break is at a
// space the client took out, at a space it kept (format=flowed), or,
// inside a token longer than the line, at no space.
func (p *Parser) wrapJoin(prev string, width int, next string) (string, bool) {
	if next == "" || strings.Contains(next, "\n") || strings.Contains(prev, "\n") {
		return "", false
	}
	s := classify(prev)
	if s == nil {
		// A line that starts with a row's own text and lacks the rest
		// of it (a task table header, "Tasks in <path> are going to be
		// killed ..." cut in pieces): joined piece by piece while the
		// pieces are no lines of their own.
		if classify(next) == nil {
			joined := prev + wrapSep(prev, next) + next
			if js := classify(joined); js != nil && js.prefix != "" && strings.HasPrefix(prev, js.prefix) {
				return joined, true // the join is a whole line of the row
			}
			if r := rowOfPrefix(prev); r != nil && rowOfPrefix(joined) == r {
				return joined, true // still a piece of it
			}
		}
		if !wrappedAt(width, next) {
			return "", false
		}
		return p.rowJoin(prev, next)
	}
	switch {
	case s.kind == kTaskRow:
		if !wrappedAt(width, next) {
			return "", false
		}
		return p.rowJoin(prev, next)
	case s.kind == kHardware:
		// Free text: joined only when the join ends as DMI names do (the
		// BIOS date). A name that looks wrapped (a long line) but is not
		// completed so is dropped: a part of it would be a wrong name.
		if !tailMissing(s, prev) || classify(next) != nil {
			return "", false
		}
		if joined := prev + wrapSep(prev, next) + next; !tailMissing(s, joined) {
			return joined, true
		}
		if width >= 64 {
			return "", true
		}
		return "", false
	case s.kind == kStatsHeader && strings.HasSuffix(prev, ":") && isInlinePairs(" "+next):
		// A 5.2- one-line stats record wrapped right after its path.
		return prev + " " + next, true
	case s.kind == kStack && !tailMissing(s, prev) && classify(next) == nil && wrappedAt(width, next) && width <= 80:
		// The release and build end the line: a mail client may have
		// wrapped the build, or the next line may be the stack's own.
		// The build is left out rather than guessed.
		return stackWithoutBuild(prev), true
	}
	if !tailMissing(s, prev) && !continuesFields(s, next) {
		return "", false
	}
	if ns := classify(next); ns != nil && ns.kind != kOther && !tailMissing(ns, next) {
		return "", false // a whole line of its own
	}
	joined := prev + wrapSep(prev, next) + next
	if js := classify(joined); js == nil || js.kind != s.kind {
		return "", false
	}
	return joined, true
}

// rowJoin joins a task-table row that a mail client wrapped: the row does
// not parse with the table's columns, the join does.
func (p *Parser) rowJoin(prev, next string) (string, bool) {
	if p.cols == nil || !isTaskRow(prev) || isTaskRow(next) {
		return "", false
	}
	if _, ok := parseTaskRow(prev, p.cols, func(uint64) *uint64 { return nil }); ok && rowName(prev) != "" {
		return "", false
	}
	joined := prev + wrapSep(prev, next) + next
	if _, ok := parseTaskRow(joined, p.cols, func(uint64) *uint64 { return new(uint64) }); !ok {
		return "", false
	}
	return joined, true
}

// wrapSep is what a wrap took out between prev and next: nothing when prev
// keeps its space (format=flowed) or when the broken token is longer than
// a mail line (a cgroup path), else the space it replaced.
func wrapSep(prev, next string) string {
	if strings.HasSuffix(prev, " ") {
		return ""
	}
	// A client breaks inside a token only when the token is longer than a
	// line: the piece before the break then fills the line.
	if tail := prev[strings.LastIndexAny(prev, " \n")+1:]; len(tail) >= 40 {
		return ""
	}
	return " "
}

// wrapped reports whether rec, an unprefixed record, continues the held one
// (see wrapJoin), and joins it.
func (p *Parser) wrapped(rec *kmsg.Record) bool {
	if !rec.Bare || p.pending.HasSeq && !p.pending.Bare {
		return false
	}
	width := physLen(&p.pending)
	if p.merged {
		width = len(p.pendRaw) - strings.LastIndexByte(string(p.pendRaw), '\n') - 1
	}
	joined, ok := p.wrapJoin(p.pendingText(), width, strings.TrimRight(rec.Text, " \t"))
	if !ok {
		return false
	}
	p.pendText = append(p.pendText[:0], joined...)
	if !p.merged {
		p.pendRaw = append(p.pendRaw[:0], p.pending.Raw...)
		p.merged = true
	}
	p.pendRaw = append(append(p.pendRaw, '\n'), rec.Raw...)
	p.pending.Cut = rec.Cut
	return true
}

// cutShort returns the whole part of a line that was cut short: the line
// without its partial last value. ok is false when nothing whole is left.
// A Killed line cut inside the process name keeps its pid (see
// cutVictim).
func cutShort(s *shape, line string) (string, bool) {
	line = strings.TrimSuffix(strings.TrimSuffix(line, "..."), "…")
	if s != nil {
		switch s.kind {
		case kTaskIn:
			const m = " killed as a result of limit of "
			if i := strings.Index(line, m); i >= 0 {
				return line[:i+len(m)], true // the limiting cgroup's path is cut: absent
			}
			return "", false
		case kStatsHeader:
			i := strings.Index(line, ": ")
			if i < 0 {
				return "Memory cgroup stats:", true // the path is cut: absent
			}
			// Cut in the pairs of the one-line form (5.2-): the pairs
			// before the cut, the form kept by the ": " (see
			// parseStatsHeader).
			head, pairs := line[:i+2], line[i+2:]
			if j := strings.LastIndexByte(pairs, ' '); j >= 0 {
				return head + pairs[:j], true
			}
			return head, true
		case kCounter, kLimitReached, kGroup, kProtection, kTaskHeader, kHardware, kCpuset:
			return "", false
		case kStack:
			// The release and build run to the end of the line: cut,
			// they are not known whole.
			for _, t := range []string{" Not tainted ", " Tainted: "} {
				if i := strings.Index(line, t); i >= 0 {
					return line[:i], true
				}
			}
			return "", false
		case kTaskRow:
			// The name runs to the end: cut, it is not known whole; a
			// row cut before its name has its last number cut.
			if rowName(line) != "" {
				return taskRowNumbers(line), true
			}
		}
	}
	i := strings.LastIndexAny(line, " ,")
	if i <= 0 {
		return "", false
	}
	return strings.TrimRight(line[:i], " ,"), true
}

// cutVictim reads the pid of a Killed line cut before its sizes, and its
// process name when the name is whole: followed by ") " and the start of
// "total-vm:". The process was killed all the same.
func cutVictim(line string) (pid int, comm string, ok bool) {
	i := strings.Index(line, killedMarker)
	if i < 0 {
		return 0, "", false
	}
	num, tail, _ := strings.Cut(line[i+len(killedMarker):], " ")
	if pid, ok = atoiOK(num); !ok || pid <= 0 {
		return 0, "", false
	}
	if rest, found := strings.CutPrefix(tail, "("); found {
		if j := strings.LastIndex(rest, ") "); j >= 0 && j <= maxComm &&
			(strings.HasPrefix("total-vm:", rest[j+2:]) || strings.HasPrefix(rest[j+2:], "total-vm:")) {
			comm = rest[:j]
		}
	}
	return pid, comm, true
}

// isCut reports whether line, of row s (nil for none), was cut short: its
// record says so, it ends in an ellipsis, its fixed tail is missing, or
// its record is as long as the lines found cut (a terminal, "cut -c").
func (p *Parser) isCut(s *shape, line string, last bool) bool {
	rec := p.cur
	switch {
	case rec == nil:
	case last && rec.Cut:
		return true
	case last && p.cutWidth > 0 && physLen(rec) == p.cutWidth:
		return true
	}
	switch {
	case strings.HasSuffix(line, "…"):
		return true
	case strings.HasSuffix(line, "...") && line != noKillable:
		return true
	case s != nil && s.kind != kHardware && tailMissing(s, line):
		// (A hardware name's tail is a weak sign: DMI names end with the
		// BIOS date, others with anything.)
		if last && rec != nil && !rec.HasSeq {
			p.sawCut(physLen(rec))
		}
		return true
	}
	return false
}

// physLen is the length of the line a text record was read from.
func physLen(rec *kmsg.Record) int {
	if rec.Raw != "" {
		return len(rec.Raw)
	}
	return len(rec.Text)
}

// sawCut notes the length of the first line found cut by its missing
// tail: the input's lines are taken as cut at that length (a line left
// whole by mistake loses its last value, never gets a wrong one).
func (p *Parser) sawCut(n int) {
	if p.cutWidth == 0 && n >= minWrapped {
		p.cutWidth = n
	}
}

// killedMessage is the prefix of a Killed line ("Memory cgroup out of
// memory").
func killedMessage(line string) string {
	i := strings.Index(line, killedMarker)
	if i < 0 {
		return ""
	}
	return strings.TrimSuffix(line[:i], ": ")
}

// taskRowNumbers is a task row without its name.
func taskRowNumbers(line string) string {
	name := rowName(line)
	return strings.TrimRight(line[:len(line)-len(name)], " ")
}

// stackWithoutBuild is a stack dump's CPU line up to its release.
func stackWithoutBuild(line string) string {
	start := -1
	if i := strings.Index(line, " Not tainted "); i >= 0 {
		start = i + len(" Not tainted ")
	} else if i := strings.Index(line, " Tainted: "); i >= 0 {
		// The taint flags, then the release, which starts with a digit.
		j := strings.IndexFunc(line[i+len(" Tainted: "):], func(r rune) bool { return r >= '0' && r <= '9' })
		if j < 0 { // the taint flags go on past the line: none is known
			return line[:i]
		}
		start = i + len(" Tainted: ") + j
	}
	if start < 0 {
		return line
	}
	version, _, _ := strings.Cut(line[start:], " ")
	return line[:start] + version
}

// rowOfPrefix is the row whose own opening text line starts with, when
// the row asks more of a line than its start (a marker, an end) and line
// is of no row yet.
func rowOfPrefix(line string) *shape {
	for i := range shapes {
		s := &shapes[i]
		if len(s.prefix) >= 8 && (s.suffix != "" || s.infix != "" || s.test != nil) && strings.HasPrefix(line+" ", s.prefix) {
			return s
		}
	}
	return nil
}

// cutShortOr is cutShort, or "" when nothing whole is left.
func cutShortOr(s *shape, line string) string {
	whole, _ := cutShort(s, line)
	return whole
}

// lineFields are the "key:" and "key=" fields of the lines that end with
// optional ones: a wrapped line's next line that starts with one of them
// continues it.
var lineFields = map[kind][]string{
	kKilled: {"total-vm:", "anon-rss:", "file-rss:", "shmem-rss:", "UID:", "pgtables:", "oom_score_adj:"},
	kHeader: {"gfp_mask=", "nodemask=", "order=", "oom_score_adj=", "oom_adj="},
	kReaper: {"now", "anon-rss:", "file-rss:", "shmem-rss:"},
}

// continuesFields reports whether next starts with a field of a row s
// line.
func continuesFields(s *shape, next string) bool {
	for _, f := range lineFields[s.kind] {
		if strings.HasPrefix(next, f) {
			return true
		}
	}
	return false
}

// wrappedAt reports whether a line of width bytes followed by next looks
// wrapped by a mail client (at 66 to 80 columns): long already, or too
// long with next's first word.
func wrappedAt(width int, next string) bool {
	head, _, _ := strings.Cut(next, " ")
	return width >= minWrapped || width+1+len(head) > 66
}

// lateCut is a value a line ended with, kept to be taken back if the line
// turns out to have been cut: the input's cut width is known from the
// first line found cut by its tail, and lines before it may have been
// cut at that width too, in a value that looked whole (a number cut in
// two).
type lateCut struct {
	width int    // the length of the line the value ended
	undo  func() // takes the value back
}

// maxLateCuts bounds the values a report keeps for lateCut.
const maxLateCuts = 16

// mayBeCut notes that the current record's line ended with a value that
// undo takes back, should the line prove cut.
func (p *Parser) mayBeCut(undo func()) {
	rec := p.cur
	if rec == nil || rec.HasSeq || p.cutWidth > 0 || len(p.lateCuts) >= maxLateCuts {
		return
	}
	p.lateCuts = append(p.lateCuts, lateCut{width: physLen(rec), undo: undo})
}

// undoLateCuts takes back the values of lines as long as the cut width
// found after them.
func (p *Parser) undoLateCuts() {
	if p.cutWidth == 0 {
		return
	}
	for _, c := range p.lateCuts {
		if c.width == p.cutWidth {
			c.undo()
			p.problem("a line as long as the lines found cut: its last value dropped")
		}
	}
	p.lateCuts = p.lateCuts[:0]
}

// maxGlueGap bounds how much later than its record a glued record's own
// timestamp may be: the records of one report are a few seconds apart.
const maxGlueGap = 60 * time.Second

// glued finds a record glued to the end of rec by the medium: a dmesg
// timestamp "[ sec.usec] " inside the text, after a whole line (the
// bracket is no part of a value: not inside a process name's parentheses,
// not after an unclosed line), no earlier than rec and soon after it. It
// returns the text before it, and the glued record.
func glued(rec *kmsg.Record) (string, kmsg.Record, bool) {
	if rec.HasSeq || !rec.HasMono {
		return "", kmsg.Record{}, false
	}
	text := rec.Text
	for from := 1; from < len(text); {
		i := strings.IndexByte(text[from:], '[')
		if i < 0 {
			return "", kmsg.Record{}, false
		}
		i += from
		from = i + 1
		end := strings.IndexByte(text[i:], ']')
		if end < 0 || end > 24 || i+end+1 >= len(text) || text[i+end+1] != ' ' {
			continue
		}
		mono, ok := monoStamp(text[i+1 : i+end])
		if !ok || mono < rec.Mono || mono > rec.Mono+maxGlueGap {
			continue
		}
		before := strings.TrimRight(text[:i], " ")
		if before == "" || strings.Count(before, "(") != strings.Count(before, ")") || strings.Contains(before, "\n") {
			continue
		}
		if s := classify(before); s != nil && (s.kind != kHardware && tailMissing(s, before) || s.kind == kTaskRow && rowName(before) == "") {
			continue
		}
		next := kmsg.Record{Text: text[i+end+2:], Raw: text[i:], Mono: mono, HasMono: true, Host: rec.Host, Priority: -1}
		return before, next, true
	}
	return "", kmsg.Record{}, false
}

// monoStamp parses the inside of a dmesg timestamp: "  76.086772".
func monoStamp(s string) (time.Duration, bool) {
	s = strings.TrimLeft(s, " ")
	sec, frac, ok := strings.Cut(s, ".")
	if !ok || !ascii.IsDigits(sec) || !ascii.IsDigits(frac) || len(sec) > 10 || len(frac) > 9 {
		return 0, false
	}
	n, _ := strconv.ParseInt(sec, 10, 64)
	f, _ := strconv.ParseInt((frac + "000000000")[:9], 10, 64)
	return time.Duration(n)*time.Second + time.Duration(f), true
}

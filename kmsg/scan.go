package kmsg

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// DefaultMaxLineBytes is the longest line, and the largest record, a
// [Scanner] keeps unless [WithMaxLineBytes] says otherwise. The kernel's
// own limit is a few KiB per record.
const DefaultMaxLineBytes = 64 << 10

// ScanOption configures a [Scanner]. An option given a value out of range
// makes the Scanner read nothing: its first [Scanner.Scan] returns false
// and [Scanner.Err] returns the error, which wraps [ErrInvalidOption].
type ScanOption func(*scanConfig) error

// ErrInvalidOption is wrapped by [Scanner.Err] when a [ScanOption] was
// given a value out of range.
var ErrInvalidOption = errors.New("kmsg: invalid scanner option")

type scanConfig struct {
	format  Format
	year    int
	ref     time.Time
	loc     *time.Location
	maxLine int
	follow  bool
}

// WithFormat makes the Scanner read format f instead of detecting it.
// [FormatAuto] (the default) detects. A value that is no [Format] is an
// error.
func WithFormat(f Format) ScanOption {
	return func(c *scanConfig) error {
		if f != FormatAuto && f.family() == famNone {
			return fmt.Errorf("%w: format %v", ErrInvalidOption, f)
		}
		c.format = f
		return nil
	}
}

// MinYear and MaxYear bound the year given to [WithYear]: a time outside
// them has no RFC 3339 (JSON) form.
const (
	MinYear = 1
	MaxYear = 9999
)

// WithYear places the first year-less syslog timestamp ("Apr 27 22:56:09")
// in year. Later records follow it, moving to the next year when the
// timestamps jump back by more than half a year (December to January).
// It overrides [WithReference]. A year outside [MinYear, MaxYear] is an
// error.
func WithYear(year int) ScanOption {
	return func(c *scanConfig) error {
		if year < MinYear || year > MaxYear {
			return fmt.Errorf("%w: year %d is not in %d..%d", ErrInvalidOption, year, MinYear, MaxYear)
		}
		c.year = year
		return nil
	}
}

// WithReference places the first year-less syslog timestamp in the latest
// year that does not put it after ref (give the file's modification time).
// Later records follow as with [WithYear]. The default (and a zero ref) is
// the time NewScanner is called.
func WithReference(ref time.Time) ScanOption {
	return func(c *scanConfig) error {
		c.ref = ref
		return nil
	}
}

// WithLocation sets the time zone of timestamps printed without one
// (syslog, journalctl short and short-precise, dmesg -T) and the location
// every Record.Wall is reported in. The default is time.Local; nil is an
// error.
func WithLocation(loc *time.Location) ScanOption {
	return func(c *scanConfig) error {
		if loc == nil {
			return fmt.Errorf("%w: nil location", ErrInvalidOption)
		}
		c.loc = loc
		return nil
	}
}

// WithMaxLineBytes sets the longest line the Scanner keeps, and the largest
// record it assembles (Raw, first line and continuation lines together).
// Longer lines are cut to n bytes and the record is flagged (see
// [Scanner.Truncated]); continuation lines beyond the limit are dropped
// the same way. The default is [DefaultMaxLineBytes]; n < 1 is an error.
func WithMaxLineBytes(n int) ScanOption {
	return func(c *scanConfig) error {
		if n < 1 {
			return fmt.Errorf("%w: max line bytes must be >= 1, got %d", ErrInvalidOption, n)
		}
		c.maxLine = n
		return nil
	}
}

// WithFollow says the input is live (a pipe from "dmesg -w" or
// "journalctl -f", /dev/kmsg): a record is returned as soon as the input
// has nothing more buffered, without waiting for a line that might
// continue it. A continuation line that comes later is then a record of
// its own.
func WithFollow() ScanOption {
	return func(c *scanConfig) error {
		c.follow = true
		return nil
	}
}

// Scanner reads kernel log records from a text file in one of the formats
// of [Format]: a raw /dev/kmsg dump, dmesg output, a syslog file or
// journalctl output. Successive calls to [Scanner.Scan] step through the
// records; lines that belong to no kernel record (other programs' syslog
// lines, journalctl's markers, garbage) are counted by [Scanner.Skipped].
//
// With [FormatAuto] (the default) every line is read by its own prefix,
// so that a paste may mix formats: first what a paste put before the log
// line is taken off (e-mail quote marks "> ", a line number "1234:" or
// "1234 ", indentation), then the line is read as a /dev/kmsg record, a
// dmesg line ([Detect] lists the shapes), a syslog or journalctl line, a
// journal JSON object, or, when its prefix is of no known format, from
// its kernel anchor on (a "[ sec.usec]" timestamp or a "kernel:" tag
// behind a log shipper's columns). A line with none of these is bare
// kernel text ([Record.Bare]): no file is ever refused. Lines of other
// programs (syslog lines with another tag) and binary junk are skipped.
// A forced format ([WithFormat]) reads only its own lines.
//
// Records of the text formats may span lines: dmesg and journalctl print
// the second and later lines of a record whose text contains '\n' (the
// Mem-Info summary, the memory cgroup statistics of kernels 5.3-6.4)
// indented to the column where the first line's text starts. The Scanner
// joins them into one Record, removing exactly that indentation. A raw
// /dev/kmsg record's dictionary lines (which start with a space) are kept
// in Record.Dict.
//
// Formats other than raw /dev/kmsg carry no sequence numbers: their records
// are numbered from 1 in file order with HasSeq false. Priority is -1 when
// the format does not give it (dmesg without -x or -r, syslog, journalctl
// short). Record.Raw is the record's line(s) as read, joined by '\n',
// without line terminators.
//
// Memory use is bounded by the maximum line length (see
// [WithMaxLineBytes]) whatever the input. Reading a line does not allocate
// per line: the strings of short lines share 16 KiB blocks, so a Record
// kept after the Scanner moved on may keep up to 16 KiB alive; copy
// (strings.Clone) what is kept long if that matters. A Scanner is not safe for
// concurrent use.
type Scanner struct {
	br     *bufio.Reader
	buf    []byte
	block  blockStrings // where line strings are carved from
	cfg    scanConfig
	format Format
	years  yearResolver

	auto        bool  // detect per line (FormatAuto)
	qp          bool  // the input is quoted-printable (an e-mail body)
	journalHint bool  // a journalctl marker line was seen before detection
	numPrev     int64 // the line number candidate of the previous line ...
	numHave     bool  // ... when this is true
	sawText     bool  // a record without a known prefix was returned
	nonBlank    int   // non-blank lines read
	lineNo      int   // lines read
	eof         bool
	rerr        error // the read error, reported once the lines are used up

	pend    textLine // a line read ahead, to be processed next
	hasPend bool

	// the record being assembled
	open      bool
	cur       head
	curFam    family // the open record's parser
	curWs     int    // blanks before the open record's first line (inside the paste's decorations)
	curFirst  string
	curLineNo int
	curLines  int
	curTrunc  bool
	curCut    bool
	curMulti  bool
	curFull   bool // a continuation line was dropped: drop the rest
	curText   strings.Builder
	curRaw    strings.Builder

	rec     Record
	recLine int
	recTrnc bool
	seq     uint64
	skipped int
	err     error
}

// textLine is one line of input, its terminator and leading NUL bytes
// removed.
type textLine struct {
	text  string
	no    int
	trunc bool
	// body is text without what a paste put before the log line (quote
	// marks, a line number); set by [Scanner.decorate] in auto mode.
	body      string
	decorated bool
	// cut: the medium cut the line short (an ellipsis, a column limit).
	cut bool
}

// NewScanner returns a Scanner reading r. Options: [WithFormat],
// [WithYear], [WithReference], [WithLocation], [WithMaxLineBytes],
// [WithFollow]. If an
// option is invalid the Scanner reads nothing and [Scanner.Err] says why
// (the error wraps [ErrInvalidOption]); nil options are ignored.
func NewScanner(r io.Reader, opts ...ScanOption) *Scanner {
	cfg := scanConfig{loc: time.Local, maxLine: DefaultMaxLineBytes}
	var err error
	for _, o := range opts {
		if o == nil {
			continue
		}
		if e := o(&cfg); e != nil && err == nil {
			err = e
		}
	}
	if cfg.ref.IsZero() {
		cfg.ref = time.Now()
	}
	return &Scanner{
		br:     bufio.NewReaderSize(r, min(cfg.maxLine+2, 32<<10)),
		cfg:    cfg,
		format: cfg.format,
		auto:   cfg.format == FormatAuto,
		years:  yearResolver{ref: cfg.ref, year: cfg.year},
		err:    err,
	}
}

// Scan advances to the next record, which [Scanner.Record] then returns. It
// returns false at the end of the input or on a read error; [Scanner.Err]
// tells which.
func (s *Scanner) Scan() bool {
	if s.err != nil {
		return false
	}
	for {
		if s.open && s.cfg.follow && !s.hasPend && !s.eof && s.br.Buffered() == 0 {
			// Live input and nothing read ahead: the record is done as
			// far as anyone can tell; reading on would wait for the next.
			if s.finish() {
				return true
			}
			continue
		}
		ln, ok := s.next()
		if !ok {
			if s.open {
				if s.finish() {
					return true
				}
				continue
			}
			s.end()
			return false
		}
		if !ln.decorated {
			s.decorate(&ln)
		}
		if s.open {
			if s.continues(ln.body) {
				s.appendLine(ln)
				continue
			}
			s.pend, s.hasPend = ln, true
			if s.finish() {
				return true
			}
			continue
		}
		if s.start(ln) {
			return true
		}
	}
}

// Buffered returns the number of input bytes read but not yet scanned: 0
// means the next [Scanner.Scan] reads the input (and may wait for it).
func (s *Scanner) Buffered() int {
	n := s.br.Buffered()
	if s.hasPend {
		n += len(s.pend.text) + 1
	}
	return n
}

// Record returns the record read by the last successful [Scanner.Scan].
func (s *Scanner) Record() Record { return s.rec }

// Truncated reports whether the current record lost bytes to the line or
// record length limit (see [WithMaxLineBytes]).
func (s *Scanner) Truncated() bool { return s.recTrnc }

// Line returns the 1-based line number of the first line of the current
// record.
func (s *Scanner) Line() int { return s.recLine }

// Err returns the error that ended the scan, nil at a clean end of input.
// A read error is wrapped; an invalid option wraps [ErrInvalidOption].
// With [FormatAuto] no input is an error: lines of no known format are
// kernel text.
func (s *Scanner) Err() error { return s.err }

// Format returns the format being read: the one given with [WithFormat], or
// the first one a line identified ([FormatAuto] until a line identifies
// one; [FormatText] at the end of an input none of whose lines had a known
// prefix). With [FormatAuto] every line is read by its own format.
func (s *Scanner) Format() Format { return s.format }

// Skipped returns the number of non-blank lines read so far that are not
// part of any record returned: other programs' syslog and journal lines,
// journalctl's marker and catalog lines, lines that match no format or
// fail to parse as one (garbage, a partial last line).
func (s *Scanner) Skipped() int { return s.skipped }

// next returns the line read ahead, or the next line of input, with what
// the medium did to it undone (see medium.go).
func (s *Scanner) next() (textLine, bool) {
	if s.hasPend {
		s.hasPend = false
		return s.pend, true
	}
	ln, ok := s.readLine()
	if ok && s.auto {
		s.undoMedium(&ln)
	}
	return ln, ok
}

// readLine reads one line, keeping at most maxLine bytes of it.
func (s *Scanner) readLine() (textLine, bool) {
	if s.eof {
		return textLine{}, false
	}
	limit := s.cfg.maxLine + 2 // room for "\r\n"
	s.buf = s.buf[:0]
	trunc := false
	for {
		frag, err := s.br.ReadSlice('\n')
		if err == nil && len(s.buf) == 0 && len(frag) <= limit {
			return s.makeLine(frag, false), true
		}
		if room := limit - len(s.buf); room >= len(frag) {
			s.buf = append(s.buf, frag...)
		} else {
			s.buf = append(s.buf, frag[:max(room, 0)]...)
			trunc = true
		}
		if err == nil {
			break
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		s.eof = true
		if err != io.EOF {
			s.rerr = err
		}
		if len(s.buf) == 0 {
			return textLine{}, false
		}
		break
	}
	return s.makeLine(s.buf, trunc), true
}

func (s *Scanner) makeLine(b []byte, trunc bool) textLine {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	if len(b) > s.cfg.maxLine {
		b, trunc = b[:s.cfg.maxLine], true
	}
	s.lineNo++
	return textLine{text: cleanLine(s.str(b)), no: s.lineNo, trunc: trunc}
}

// str returns b as a string; see [blockStrings].
func (s *Scanner) str(b []byte) string { return s.block.str(b) }

// isBlank reports whether a line holds nothing but spaces and tabs.
func isBlank(s string) bool {
	return strings.Trim(s, " \t") == ""
}

// start handles a line that continues no open record: it opens a record,
// returns a complete one (JSON) or skips the line.
func (s *Scanner) start(ln textLine) bool {
	t := ln.text
	if isBlank(t) {
		return false
	}
	s.nonBlank++
	if s.auto {
		return s.startAuto(ln)
	}
	loc := s.cfg.loc
	var h head
	switch s.format.family() {
	case famKmsg:
		if t[0] == ' ' { // a dictionary line without its record
			s.skipped++
			return false
		}
		h.kernel = true
	case famJSON:
		return s.jsonRecord(ln, t)
	case famDmesg:
		var ok bool
		if h, ok = parseDmesgHead(t, loc); !ok {
			s.skipped++
			return false
		}
	case famShort:
		if isJournalMarker(t) || isJournalCatalog(t) {
			s.skipped++
			return false
		}
		var ok bool
		if h, ok = parseShortHead(t, loc); !ok {
			s.skipped++
			return false
		}
		if h.yearless {
			h.rec.Wall = s.years.resolve(h.bsd, loc)
		}
	case famText:
		h = head{kernel: true, text: t}
		h.rec.Priority = -1
	}
	s.openRecord(ln, h, s.format.family(), 0, t)
	return false
}

// openRecord opens the record whose first line is first (the line without
// the paste's decorations and ws blanks), read by fam.
func (s *Scanner) openRecord(ln textLine, h head, fam family, ws int, first string) {
	s.open, s.cur, s.curFam, s.curWs = true, h, fam, ws
	s.curFirst, s.curLineNo, s.curLines, s.curTrunc = first, ln.no, 1, ln.trunc
	s.curMulti, s.curFull, s.curCut = false, false, ln.cut
}

// jsonRecord returns the journal JSON line t as a record, or skips it.
func (s *Scanner) jsonRecord(ln textLine, t string) bool {
	rec, kernel, ok := parseJournalJSON(t, s.cfg.loc)
	if !ok && ln.trunc {
		// Cut by the line limit: keep the fields read so far.
		if fixed := repairJSON(t); fixed != "" {
			rec, kernel, ok = parseJournalJSON(fixed, s.cfg.loc)
			rec.Raw = t
		}
	}
	if !ok || !kernel {
		s.skipped++
		return false
	}
	s.seq++
	rec.Seq = s.seq
	s.rec, s.recLine, s.recTrnc = rec, ln.no, ln.trunc
	return true
}

// decorate finds what a paste put before the log line: e-mail quote
// marks and a line number. A line number is taken as one when its
// separator says so (':' or a tab), when it follows the previous line's
// number, or when a known prefix follows it; "3351 total pagecache pages"
// stays kernel text.
func (s *Scanner) decorate(ln *textLine) {
	ln.decorated, ln.body = true, ln.text
	if !s.auto {
		return
	}
	body := ln.text[quoteLen(ln.text):]
	num, ok := parseLineNumber(body)
	if !ok {
		s.numHave = false
		ln.body = body
		return
	}
	accept := num.sure || (s.numHave && num.n == s.numPrev+1)
	if !accept {
		rest := body[num.width:]
		accept = Detect(rest[leadingBlanks(rest):]) != FormatAuto
	}
	s.numPrev, s.numHave = num.n, true
	if accept {
		body = body[num.width:]
	}
	ln.body = body
}

// startAuto opens a record from a line read by its own format: a known
// prefix, a kernel anchor behind an unknown prefix, or none (bare kernel
// text). Lines of other programs are skipped.
func (s *Scanner) startAuto(ln textLine) bool {
	ws := leadingBlanks(ln.body)
	t := ln.body[ws:]
	if t == "" {
		return false
	}
	if isJournalMarker(t) {
		s.journalHint = true
		s.skipped++
		return false
	}
	if strings.HasPrefix(t, "░░") || s.format.family() == famShort && isJournalCatalog(t) {
		s.skipped++
		return false
	}
	loc := s.cfg.loc
	if t[0] == '{' || t[0] == 0x1e {
		if isJournalJSON(t) || ln.trunc && repairJSON(t) != "" {
			s.identified(FormatJournalJSON)
			return s.jsonRecord(ln, t)
		}
	}
	if t[0] >= '0' && t[0] <= '9' && isKmsgLine(t) {
		s.identified(FormatKmsg)
		s.openRecord(ln, head{kernel: true}, famKmsg, ws, t)
		return false
	}
	if h, ok := parseDmesgHead(t, loc); ok {
		s.identified(h.format)
		s.openRecord(ln, h, famDmesg, ws, t)
		return false
	}
	if h, ok := parseShortHead(t, loc); ok {
		if h.yearless {
			h.rec.Wall = s.years.resolve(h.bsd, loc)
		}
		f := h.format
		if s.journalHint && f == FormatSyslog {
			f = FormatJournalShort
			if t[0] >= '0' && t[0] <= '9' {
				f = FormatJournalISO
			}
		}
		s.identified(f)
		s.openRecord(ln, h, famShort, ws, t)
		return false
	}
	if foreignTagged(t) || isBinary(t) {
		s.skipped++
		return false
	}
	t = trimBlanksRight(t)
	h, ok := anchoredHead(t, loc, &s.years)
	if !ok {
		h = head{kernel: true, text: t}
		h.rec.Priority = -1
		h.rec.Bare = true
	}
	h.indent = 0 // no continuation lines: the prefix's width is unknown
	s.openRecord(ln, h, famText, ws, t)
	return false
}

// identified records the first format a line identified, for Format.
func (s *Scanner) identified(f Format) {
	if s.format == FormatAuto {
		s.format = f
	}
}

// continues reports whether line t (without the paste's decorations)
// belongs to the open record: a dictionary line of a /dev/kmsg record, or
// a line indented to the text column of a dmesg or journalctl record.
func (s *Scanner) continues(t string) bool {
	switch s.curFam {
	case famKmsg:
		return strings.HasPrefix(t, " ")
	case famText:
		return false
	}
	n := s.curWs + s.cur.indent
	if s.cur.indent <= 0 || len(t) < n {
		return false
	}
	for i := 0; i < n; i++ {
		if t[i] != ' ' && (i >= s.curWs || t[i] != '\t') {
			return false
		}
	}
	return true
}

// appendLine adds a continuation line to the open record.
func (s *Scanner) appendLine(ln textLine) {
	s.curLines++
	if !s.cur.kernel {
		return
	}
	line := ln.body
	add := line
	if s.curFam != famKmsg {
		add = line[s.curWs+s.cur.indent:]
		line = line[s.curWs:]
	}
	if !s.curMulti {
		s.curMulti = true
		s.curText.Reset()
		s.curRaw.Reset()
		s.curText.WriteString(s.cur.text)
		s.curRaw.WriteString(s.curFirst)
	}
	if s.curFull || s.curRaw.Len()+1+len(line) > s.cfg.maxLine {
		s.curTrunc, s.curFull = true, true
		return
	}
	s.curTrunc = s.curTrunc || ln.trunc
	s.curCut = s.curCut || ln.cut
	s.curText.WriteByte('\n')
	s.curText.WriteString(add)
	s.curRaw.WriteByte('\n')
	s.curRaw.WriteString(line)
}

// finish closes the open record. It returns true with the record in s.rec,
// or false if the record is to be skipped.
func (s *Scanner) finish() bool {
	s.open = false
	if !s.cur.kernel {
		s.skipped += s.curLines
		return false
	}
	text, raw := s.cur.text, s.curFirst
	if s.curMulti {
		text, raw = s.curText.String(), s.curRaw.String()
		s.curText.Reset()
		s.curRaw.Reset()
	}
	var rec Record
	switch s.curFam {
	case famKmsg:
		var err error
		if rec, err = ParseRecord(raw); err != nil {
			s.skipped += s.curLines
			return false
		}
	case famDmesg, famText:
		rec = s.cur.rec
		rec.Text, rec.Raw = Unescape(text), raw
		s.sawText = s.sawText || s.curFam == famText
	default:
		rec = s.cur.rec
		rec.Text, rec.Raw = text, raw
	}
	if !rec.HasSeq {
		s.seq++
		rec.Seq = s.seq
	}
	rec.Cut = s.curCut
	s.rec, s.recLine, s.recTrnc = rec, s.curLineNo, s.curTrunc
	return true
}

// end records why the scan ended.
func (s *Scanner) end() {
	switch {
	case s.rerr != nil:
		s.err = fmt.Errorf("kmsg: reading line %d: %w", s.lineNo+1, s.rerr)
	case s.format != FormatAuto:
	case s.journalHint:
		s.format = FormatJournalShort
	case s.sawText:
		s.format = FormatText
	}
}

// yearResolver places year-less syslog timestamps in years.
type yearResolver struct {
	ref     time.Time
	year    int // the first record's year; 0 to derive it from ref
	cur     int
	last    time.Time
	started bool
}

// resolve returns st in the year that follows the records before it: the
// year moves on when a timestamp is more than half a year before the
// previous one, and back when it is more than half a year after it.
func (y *yearResolver) resolve(st bsdStamp, loc *time.Location) time.Time {
	if !y.started {
		y.started = true
		if y.year != 0 {
			y.cur = y.year
		} else {
			ref := y.ref.In(loc)
			y.cur = ref.Year()
			if st.date(y.cur, loc).After(ref.Add(48 * time.Hour)) {
				y.cur--
			}
		}
		y.last = st.date(y.cur, loc)
		return y.last
	}
	const half = 183 * 24 * time.Hour
	t := st.date(y.cur, loc)
	if t.Before(y.last.Add(-half)) {
		y.cur++
		t = st.date(y.cur, loc)
	} else if t.After(y.last.Add(half)) {
		y.cur--
		t = st.date(y.cur, loc)
	}
	y.last = t
	return t
}

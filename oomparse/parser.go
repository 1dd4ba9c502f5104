package oomparse

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"time"

	"github.com/oomscope/oomscope/internal/ascii"
	"github.com/oomscope/oomscope/report"

	"github.com/oomscope/oomscope/kmsg"
)

// state is where the parser is within a report.
type state uint8

const (
	stIdle    state = iota // no report open
	stHeader               // after "invoked oom-killer": cpuset line, stack dump
	stMemcg                // memory cgroup counters
	stStats                // "Memory cgroup stats for" key/value lines
	stMemInfo              // node-wide "Mem-Info:" dump
	stSlab                 // "Unreclaimable slab info:"
	stTasks                // task table
	stKill                 // dump done (summary or "Kill process" seen), waiting for the victim
	stVictims              // victim seen: group members, reaper lines may follow
)

var stateNames = [...]string{"idle", "header", "memcg", "stats", "meminfo", "slab", "tasks", "kill", "victims"}

// String returns the state's name.
func (s state) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

const (
	// contGrace is the default of how long a record is held back waiting
	// for a continuation fragment ('c' record) of the same caller.
	contGrace = DefaultContinuationGrace
	// maxMerged bounds a record rebuilt from continuation fragments.
	maxMerged = 64 << 10
	// maxProblems bounds Report.Problems.
	maxProblems = 32
	// maxHeld is how many finished reports wait for late oom_reaper lines
	// at most; the oldest is delivered when a newer one would exceed it.
	maxHeld = 16
	// maxDelivered is how many victim pids of delivered reports are
	// remembered, so that their late oom_reaper lines are known as such.
	maxDelivered = 64

	// Bounds on what one report keeps, whatever the input: the kernel never
	// prints more, so only corrupt or hostile input reaches them. What is
	// dropped is counted in Problems (once per section).
	maxMemInfoLines = 1024 // Mem-Info lines (nodes, zones, free areas, ...)
	maxStatLines    = 4096 // "Memory cgroup stats" headers and values
	maxSlabRows     = 1024 // "Unreclaimable slab info:" rows
	maxSharedMM     = 64   // "sharing same memory" lines per victim
	maxNameBytes    = 64   // task and victim names (the kernel's comm is <= 15 bytes)
	maxPathBytes    = 4096 // cgroup paths (PATH_MAX)
	maxTraceBytes   = 512  // one call-trace line
	maxOtherBytes   = 1024 // one raw Mem-Info line
)

// section identifies a bounded part of a report, for [Parser.overflow].
type section uint8

const (
	secMemInfo section = iota
	secStats
	secSlab
	secVictims
	secSharedMM
	numSections
)

var sectionNames = [numSections]string{"Mem-Info", "memory cgroup stats", "unreclaimable slab", "victim", "shared-memory victim"}

// Parser is a streaming state machine that rebuilds oom-killer reports from
// kernel log records. Feed it records in order; it returns each report as
// soon as the report is finished.
//
// A Parser is not safe for concurrent use: one goroutine owns it. It never
// blocks, reads no clock and does no I/O; time comes from the records' own
// kernel timestamps and from the now passed to [Parser.Expire].
type Parser struct {
	cfg   config
	state state
	r     *report.Report // the open report, nil when idle

	// per-report builder state
	hash       hash.Hash
	tasks      taskTable
	cols       []column
	stats      int // index of the open MemcgStats block, -1 if none
	caller     string
	lastMono   time.Duration
	hasMono    bool
	victimMono time.Duration
	unrelated  int // consecutive unparsed records
	lingered   int // unrelated records seen after the victim
	recUsed    bool
	cur        *kmsg.Record
	tentative  bool   // opened by a generic line: dropped unless an OOM-specific line follows
	openedBy   string // the row name of the line that opened a report without its header
	era        *era   // the column set of a task table read without its header
	maxRank    rank   // the furthest section of the report seen
	seenRow    [len(shapes)]bool
	chosen     *report.Chosen // "Kill process ... or sacrifice child" awaiting its Killed line
	chosenMsg  string         // that line's message prefix
	last       lastStamp
	hbuf       []byte   // reused for hashing
	u64s       []uint64 // chunk that task-row pointer fields point into
	rawBytes   int      // bytes kept in r.Raw
	memInfoN   int      // Mem-Info lines kept
	statN      int      // stats lines kept
	overflowed [numSections]bool

	// stream state
	pending    kmsg.Record
	hasPending bool
	merged     bool        // pendText/pendRaw hold the pending record's text
	pendText   []byte      // the pending record's text with its fragments, reused
	pendRaw    []byte      // the same for its raw form
	pendPrev   shortRecord // the short record before the pending one
	curPrev    shortRecord // the same, for the record being processed
	short      shortRecord // the last record fed, when short
	lastSeq    uint64
	haveSeq    bool
	suppressed int
	otherDump  int           // records left during which generic lines open nothing (see roleNever)
	cutWidth   int           // the length at which the input's lines were cut, 0 if unknown (medium.go)
	lateCuts   []lateCut     // values to take back if their lines prove cut
	now        time.Duration // the latest kernel time seen (records, Expire)
	hasNow     bool
	held       []heldReport // finished reports waiting for reaper lines, in order
	delivered  pidRing      // victim pids of the latest delivered reports
	lateReaper uint64       // oom_reaper lines about them (LateReaperLines)
}

// pidRing remembers the latest pids put in it, at most maxDelivered.
type pidRing struct {
	pids [maxDelivered]int
	n    int // pids put in so far
}

func (r *pidRing) put(pid int) {
	r.pids[r.n%maxDelivered] = pid
	r.n++
}

func (r *pidRing) has(pid int) bool {
	for i := range min(r.n, maxDelivered) {
		if r.pids[i] == pid {
			return true
		}
	}
	return false
}

// LateReaperLines returns how many oom_reaper lines came after the report
// of their victim had been delivered: they are swallowed (not attached, and
// never a victim of their own). With [WithLiveTiming] that is most of them.
func (p *Parser) LateReaperLines() uint64 { return p.lateReaper }

// heldReport is a finished report waiting, until due, for oom_reaper lines
// about its victims: the reaper runs asynchronously (2 s later on >= 5.15)
// and its line often comes after the next report has started.
type heldReport struct {
	r        *report.Report
	hash     hash.Hash // for the id, computed on delivery
	rawBytes int
	now      bool          // deliver as soon as the reports before it are
	due      time.Duration // deliver at this kernel time, when hasDue
	hasDue   bool
}

// New returns a Parser. Options:
//   - [WithMaxTasks]: task-table rows kept per report (default [DefaultMaxTasks]).
//   - [WithMaxLines]: raw records kept per report (default [DefaultMaxLines]).
//   - [WithMaxRawBytes]: raw bytes kept per report (default [DefaultMaxRawBytes]).
//   - [WithMaxUnrelated]: consecutive foreign records that end an unfinished report.
//   - [WithIdleTimeout]: kernel time after which [Parser.Expire] ends an unfinished report.
//   - [WithVictimLinger]: how long a finished report waits for oom.group and reaper lines.
//   - [WithGroupLinger]: how long a memory.oom.group report waits for its next member.
//   - [WithContinuationGrace]: how long a record waits for a continuation fragment.
//   - [WithLiveTiming]: the three above for a reader of the live kernel log.
//   - [WithBootID], [WithHost]: identity put in reports.
//   - [WithoutRaw]: do not keep raw records.
//   - [WithErrorHandler]: called with every [*LineError].
//
// Errors wrap [ErrInvalidOption].
func New(opts ...Option) (*Parser, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	return &Parser{cfg: cfg, stats: -1}, nil
}

// Feed processes one record and appends to dst the reports it completed.
// A record flagged as a continuation is joined to the record before it.
func (p *Parser) Feed(dst []report.Report, rec kmsg.Record) []report.Report {
	if !rec.HasSeq && rec.HasMono && len(rec.Text) > 1 && strings.IndexByte(rec.Text[1:], '[') >= 0 {
		if before, next, ok := glued(&rec); ok {
			// Records glued on one line by the medium: one at a time.
			rec.Text, rec.Raw = before, strings.TrimSuffix(rec.Raw, next.Raw)
			dst = p.Feed(dst, rec)
			return p.Feed(dst, next)
		}
	}
	if p.hasPending {
		if rec.Cont && rec.Caller == p.pending.Caller && p.mergeable(&rec) {
			if !p.merged {
				p.pendText = append(p.pendText[:0], p.pending.Text...)
				p.pendRaw = append(p.pendRaw[:0], p.pending.Raw...)
				p.merged = true
			}
			p.pendText = append(p.pendText, rec.Text...)
			p.pendRaw = append(append(p.pendRaw, '\n'), rec.Raw...)
			return dst
		}
		if p.mergeable(&rec) && p.wrapped(&rec) {
			return dst
		}
		if renderedSplit(&p.pending, p.pendingText, &rec) && p.mergeable(&rec) {
			// One record the kernel's syslog rendering printed as two
			// lines with the same timestamp: a name or path held a
			// newline.
			if !p.merged {
				p.pendText = append(p.pendText[:0], p.pending.Text...)
				p.pendRaw = append(p.pendRaw[:0], p.pending.Raw...)
				p.merged = true
			}
			p.pendText = append(append(p.pendText, '\n'), rec.Text...)
			p.pendRaw = append(append(p.pendRaw, '\n'), rec.Raw...)
			return dst
		}
		dst = p.flushPending(dst)
	}
	prev := p.short
	switch {
	case rec.HasSeq || !rec.HasMono || len(rec.Text) > maxComm:
		p.short = shortRecord{}
	case prev.ok && prev.mono == rec.Mono && prev.host == rec.Host && len(prev.text)+1+len(rec.Text) <= maxComm:
		// Several lines of one name, each printed on its own.
		p.short.text = prev.text + "\n" + rec.Text
	default:
		p.short = shortRecord{text: rec.Text, mono: rec.Mono, host: rec.Host, ok: true}
	}
	if p.state == stIdle && !mayMatter(rec.Text) {
		// The quiet path: no report open and nothing that could start one.
		// Only the sequence number matters; rec must not escape here, so
		// that a healthy node's stream costs no allocation.
		p.trackSeq(rec.HasSeq, rec.Seq)
		if rec.HasMono {
			p.advance(rec.Mono)
		}
		if p.otherDump > 0 {
			p.otherDump--
		}
		if len(p.held) > 0 {
			dst = p.deliverDue(dst)
		}
		return dst
	}
	p.pending, p.hasPending, p.pendPrev = rec, true, prev
	if rec.HasSeq && wholeKillLine(rec.Text) {
		// The kernel prints this line in one printk, newline included: no
		// continuation fragment can follow it, so it is parsed now rather
		// than held for the grace (in a storm, most records of a live
		// report are this one line).
		dst = p.flushPending(dst)
	}
	return dst
}

// wholeKillLine reports whether text is a "Killed process" line as
// kernels >= 4.19 print it, to its last field: "... oom_score_adj:%hd".
func wholeKillLine(text string) bool {
	const adj = " oom_score_adj:"
	i := strings.LastIndex(text, adj)
	if i < 0 || !strings.Contains(text[:i], "Killed process ") {
		return false
	}
	return ascii.IsDigits(strings.TrimPrefix(text[i+len(adj):], "-"))
}

// pendingText is the text of the held record, with its fragments.
func (p *Parser) pendingText() string {
	if p.merged {
		return string(p.pendText)
	}
	return p.pending.Text
}

// shortRecord is a record of a text format short enough to be the start
// of a process name that the kernel's syslog rendering printed on a line
// of its own (a name holding a newline, before a header).
type shortRecord struct {
	text string
	mono time.Duration
	host string
	ok   bool
}

// advance moves the parser's idea of the kernel clock forward to t.
func (p *Parser) advance(t time.Duration) {
	if !p.hasNow || t > p.now {
		p.now, p.hasNow = t, true
	}
}

// Flush ends the stream: it processes any held record and returns the open
// report, flagged incomplete if it has no victim yet. The parser is then
// idle and may be fed again.
func (p *Parser) Flush(dst []report.Report) []report.Report {
	if p.hasPending {
		dst = p.flushPending(dst)
	}
	if p.r != nil {
		dst = p.emit(dst, "the input ended")
	}
	for len(p.held) > 0 {
		dst = p.deliverHead(dst)
	}
	return dst
}

// Release delivers, without waiting any longer, the finished reports that
// wait for late lines (oom_reaper, memory.oom.group members) and the open
// report if it has its victim; an unfinished report stays open. A live
// source calls it when the input has been quiet for a while: the kernel
// prints no more of those reports.
func (p *Parser) Release(dst []report.Report) []report.Report {
	if p.hasPending {
		dst = p.flushPending(dst)
	}
	if p.r != nil && p.state == stVictims {
		dst = p.emit(dst, "")
	}
	for len(p.held) > 0 {
		dst = p.deliverHead(dst)
	}
	return dst
}

// Expire tells the parser the kernel clock now reads now (time since boot,
// the records' timebase). It returns a finished report whose linger time is
// over, or an unfinished one that went idle for longer than the idle
// timeout (flagged incomplete).
func (p *Parser) Expire(dst []report.Report, now time.Duration) []report.Report {
	if p.hasPending && (!p.pending.HasMono || now >= p.pending.Mono+p.cfg.contGrace) {
		dst = p.flushPending(dst)
	}
	p.advance(now)
	if p.r != nil && p.hasMono {
		if p.state == stVictims {
			if now >= p.victimMono+p.linger() {
				dst = p.emit(dst, "")
			}
		} else if now >= p.lastMono+p.cfg.idleTimeout {
			dst = p.emit(dst, fmt.Sprintf("no new record for %v", p.cfg.idleTimeout))
		}
	}
	return p.deliverDue(dst)
}

// mergeable reports whether the continuation fragment rec still fits the
// held record: the text and the raw form are both bounded, so that a flood
// of (even empty) fragments cannot grow it.
func (p *Parser) mergeable(rec *kmsg.Record) bool {
	text, raw := len(p.pending.Text), len(p.pending.Raw)
	if p.merged {
		text, raw = len(p.pendText), len(p.pendRaw)
	}
	return text+len(rec.Text) <= maxMerged && raw+1+len(rec.Raw) <= 2*maxMerged
}

// flushPending processes the held record, joined with its fragments.
func (p *Parser) flushPending(dst []report.Report) []report.Report {
	if p.merged {
		p.pending.Text, p.pending.Raw = string(p.pendText), string(p.pendRaw)
		p.pendText, p.pendRaw, p.merged = p.pendText[:0], p.pendRaw[:0], false
	}
	p.curPrev = p.pendPrev
	dst = p.process(dst, &p.pending)
	p.hasPending, p.pending, p.pendPrev, p.curPrev = false, kmsg.Record{}, shortRecord{}, shortRecord{}
	return dst
}

// Deadline returns the kernel time at which [Parser.Expire] next has work
// to do, and false when it has none (no open report, or records without
// kernel timestamps).
func (p *Parser) Deadline() (time.Duration, bool) {
	var d time.Duration
	ok := false
	at := func(t time.Duration) {
		if !ok || t < d {
			d, ok = t, true
		}
	}
	if p.hasPending && p.pending.HasMono {
		at(p.pending.Mono + p.cfg.contGrace)
	}
	if p.r != nil && p.hasMono {
		if p.state == stVictims {
			at(p.victimMono + p.linger())
		} else {
			at(p.lastMono + p.cfg.idleTimeout)
		}
	}
	if len(p.held) > 0 {
		switch h := p.held[0]; {
		case h.hasDue:
			at(h.due)
		case h.now && p.hasNow:
			at(p.now)
		}
	}
	return d, ok
}

// Idle reports whether no report is open or waiting to be delivered and no
// record is held: everything fed so far has come out.
func (p *Parser) Idle() bool { return p.r == nil && !p.hasPending && len(p.held) == 0 }

// process handles one (possibly multi-line) record.
func (p *Parser) process(dst []report.Report, rec *kmsg.Record) []report.Report {
	var skip bool
	if dst, skip = p.checkSeq(dst, rec); skip {
		return dst
	}
	if rec.HasMono {
		p.advance(rec.Mono)
	}
	if len(p.held) > 0 {
		dst = p.deliverDue(dst)
	}
	if p.r == nil && p.otherDump > 0 {
		p.otherDump--
	}
	if p.r == nil && !mayMatter(rec.Text) {
		return dst
	}
	if p.state == stVictims && rec.HasMono && p.hasMono && rec.Mono >= p.victimMono+p.linger() {
		dst = p.emit(dst, "")
	}
	p.cur, p.recUsed = rec, false
	if p.r != nil && p.caller != "" && rec.Caller != "" && rec.Caller != p.caller && !fromOtherContext(rec.Text) {
		// Another task's or CPU's record interleaved into the report: the
		// kernel prints a report from one task, so only the lines other
		// contexts print about OOM kills can belong to it.
		dst = p.foreign(dst)
	} else {
		dst = p.recordText(dst, rec.Text)
	}
	if p.r != nil && p.recUsed && rec.HasMono {
		p.lastMono, p.hasMono = rec.Mono, true
	}
	p.cur = nil
	if len(p.held) > 0 {
		dst = p.deliverDue(dst)
	}
	return dst
}

// checkSeq tracks kernel sequence numbers: it flags gaps and drops records
// seen before.
func (p *Parser) checkSeq(dst []report.Report, rec *kmsg.Record) ([]report.Report, bool) {
	if !rec.HasSeq {
		return dst, false
	}
	if p.r == nil {
		return dst, p.trackSeq(true, rec.Seq)
	}
	defer func() { p.lastSeq, p.haveSeq = rec.Seq, true }()
	switch {
	case !p.haveSeq || rec.Seq == p.lastSeq+1:
	case rec.Seq == p.lastSeq:
		return dst, true
	case rec.Seq > p.lastSeq:
		lost := rec.Seq - p.lastSeq - 1
		err := fmt.Errorf("%w: %d records between seq %d and %d", ErrGap, lost, p.lastSeq, rec.Seq)
		p.report(&LineError{Seq: rec.Seq, Err: err})
		if p.r != nil {
			p.r.Gap = true
			p.r.LostRecords += lost
			if p.state == stVictims {
				p.problem(fmt.Sprintf("%d records lost after the victim line (seq %d to %d): oom.group members or reaper lines may be missing", lost, p.lastSeq+1, rec.Seq-1))
			} else {
				p.r.Incomplete = true
				p.problem(fmt.Sprintf("%d records lost inside the report (seq %d to %d)", lost, p.lastSeq+1, rec.Seq-1))
			}
		}
	default:
		if p.r != nil {
			dst = p.emit(dst, fmt.Sprintf("sequence numbers went back from %d to %d (a new boot or a different stream)", p.lastSeq, rec.Seq))
		}
	}
	return dst, false
}

// trackSeq follows sequence numbers while no report is open: it reports
// gaps to the error handler and says whether seq is a duplicate.
func (p *Parser) trackSeq(hasSeq bool, seq uint64) (dup bool) {
	if !hasSeq {
		return false
	}
	last, have := p.lastSeq, p.haveSeq
	p.lastSeq, p.haveSeq = seq, true
	switch {
	case have && seq == last:
		return true
	case have && seq > last+1 && p.cfg.onError != nil:
		p.report(&LineError{Seq: seq, Err: fmt.Errorf("%w: %d records between seq %d and %d", ErrGap, seq-last-1, last, seq)})
	}
	return false
}

// use marks the current record as part of the open report.
func (p *Parser) use() {
	if p.r == nil || p.recUsed || p.cur == nil {
		return
	}
	p.recUsed = true
	rec := p.cur
	if p.r.First.Seq == 0 && p.r.First.MonoUsec == nil && p.r.First.Wall == nil {
		p.r.First = stamp(rec)
		if p.r.Host == "" {
			p.r.Host = rec.Host
		}
		if p.r.Host == "" {
			p.r.Host = p.cfg.host
		}
		p.caller = rec.Caller
		if rec.HasMono {
			p.hbuf = append(strconv.AppendInt(p.hbuf[:0], rec.Mono.Microseconds(), 10), '\n')
			p.hash.Write(p.hbuf)
		}
	}
	if p.r.Host == "" && rec.Host != "" {
		p.r.Host = rec.Host
	}
	p.last = lastStamp{seq: rec.Seq, hasSeq: rec.HasSeq, mono: rec.Mono, hasMono: rec.HasMono, wall: rec.Wall}
	p.hbuf = append(append(p.hbuf[:0], rec.Text...), '\n')
	p.hash.Write(p.hbuf)
	if !p.cfg.keepRaw {
		return
	}
	raw := rec.Raw
	if raw == "" {
		raw = rec.Text
	}
	if len(p.r.Raw) < p.cfg.maxLines && p.rawBytes+len(raw) <= p.cfg.maxRawBytes {
		p.r.Raw = append(p.r.Raw, raw)
		p.rawBytes += len(raw)
	} else {
		p.r.RawDropped++
	}
}

// overflow notes, once per section, that the open report dropped lines of
// sec because it reached its bound, and counts the line as unparsed.
func (p *Parser) overflow(sec section, limit int) {
	if p.r == nil {
		return
	}
	p.use()
	p.r.UnparsedLines++
	if !p.overflowed[sec] {
		p.overflowed[sec] = true
		p.problem(fmt.Sprintf("more than %d %s lines: the rest were dropped", limit, sectionNames[sec]))
	}
}

// clipBytes cuts s to at most n bytes (at a UTF-8 boundary).
func clipBytes(s string, n int) string { return ascii.Cut(s, n) }

// lastStamp is the last record of the open report, made a [Stamp] only
// when the report is emitted (a Stamp holds pointers: one allocation each).
type lastStamp struct {
	seq     uint64
	hasSeq  bool
	mono    time.Duration
	hasMono bool
	wall    time.Time
}

func (l lastStamp) stamp() report.Stamp {
	return stamp(&kmsg.Record{Seq: l.seq, HasSeq: l.hasSeq, Mono: l.mono, HasMono: l.hasMono, Wall: l.wall})
}

func stamp(rec *kmsg.Record) report.Stamp {
	var s report.Stamp
	if rec.HasSeq {
		s.Seq = rec.Seq
	}
	if rec.HasMono {
		us := rec.Mono.Microseconds()
		s.MonoUsec = &us
	}
	if !rec.Wall.IsZero() && rec.Wall.Year() >= 0 && rec.Wall.Year() <= 9999 {
		// Outside those years a time has no JSON form: a garbled source
		// timestamp must not make the whole report unwritable.
		w := rec.Wall
		s.Wall = &w
	}
	return s
}

// open starts a new report.
func (p *Parser) open() {
	p.r = &report.Report{Schema: report.Schema, Kind: report.KindUnknown, BootID: p.cfg.bootID}
	p.hash = sha256.New()
	p.tasks = taskTable{max: p.cfg.maxTasks}
	p.cols, p.stats, p.caller, p.chosen = nil, -1, "", nil
	p.tentative, p.openedBy, p.era, p.maxRank, p.seenRow = false, "", nil, rankHeader, [len(shapes)]bool{}
	p.otherDump, p.lateCuts = 0, p.lateCuts[:0]
	p.hasMono, p.unrelated, p.lingered = false, 0, 0
	p.recUsed = false
	p.rawBytes, p.memInfoN, p.statN, p.overflowed = 0, 0, 0, [numSections]bool{}
	p.state = stHeader
	if p.suppressed > 0 {
		p.r.SuppressedBefore, p.suppressed = p.suppressed, 0
	}
}

// problem records a problem on the open report, bounded.
func (p *Parser) problem(s string) {
	if p.r == nil {
		return
	}
	switch {
	case len(p.r.Problems) < maxProblems:
		p.r.Problems = append(p.r.Problems, s)
	case len(p.r.Problems) == maxProblems:
		p.r.Problems = append(p.r.Problems, "more problems not listed")
	}
}

// report passes an error to the handler.
func (p *Parser) report(e *LineError) {
	if p.cfg.onError != nil {
		if len(e.Line) > 200 {
			e.Line = e.Line[:200] + "..."
		}
		p.cfg.onError(e)
	}
}

// malformed records a line that looked like part of a report but did not parse.
func (p *Parser) malformed(line, what string) {
	var seq uint64
	if p.cur != nil {
		seq = p.cur.Seq
	}
	p.report(&LineError{Seq: seq, Line: line, Err: fmt.Errorf("%w: %s", ErrMalformed, what)})
	if p.r != nil {
		p.use()
		p.r.UnparsedLines++
		p.problem(fmt.Sprintf("unparsable %s line: %q", what, clip(line)))
	}
}

// clip shortens s for a problem message.
func clip(s string) string { return ascii.Clip(s, 120) }

// emit finishes the open report and queues it for delivery (see
// [heldReport]); reports that are due are appended to dst. reason says why
// an unfinished report ended; it is used only when the report has no victim.
func (p *Parser) emit(dst []report.Report, reason string) []report.Report {
	r := p.r
	if r == nil {
		return dst
	}
	p.undoLateCuts()
	if p.tentative {
		// Only generic lines: no OOM report (a stack or memory dump of
		// another kind). Nothing is delivered.
		p.r, p.hash, p.state, p.cols, p.stats, p.tentative = nil, nil, stIdle, nil, -1, false
		p.tasks = taskTable{}
		return p.deliverDue(dst)
	}
	if p.chosen != nil {
		// A Kill line whose Killed line is missing: the chosen task, not
		// necessarily the one killed.
		c := *p.chosen
		c.Message = p.chosenMsg
		r.Chosen = &c
		p.chosen = nil
		p.problem("the Killed line after the Kill process line is missing: the chosen task is kept apart, the kernel may have killed a child instead")
	}
	if len(r.Victims) == 0 && len(r.AlreadyExiting) == 0 && !r.NoKillable && r.Panic == "" {
		r.Incomplete = true
		if reason == "" {
			reason = "the report ended"
		}
		p.problem("no victim line: " + reason)
	}
	r.Last = p.last.stamp()
	r.Tasks = p.tasks.tasks()
	// A stats header cut inside its path with no stats after it holds
	// nothing: not even its form is known.
	kept := r.MemcgStats[:0]
	for _, ms := range r.MemcgStats {
		if ms.Path != "" || len(ms.Stats) > 0 {
			kept = append(kept, ms)
		}
	}
	if r.MemcgStats = kept; len(kept) == 0 {
		r.MemcgStats = nil
	}
	if r.Victims == nil {
		r.Victims = []report.Victim{}
	}
	r.Kind = kindOf(r)
	r.Derived = derive(r)
	h := heldReport{r: r, hash: p.hash, rawBytes: p.rawBytes}
	switch {
	case len(r.Victims) == 0 || p.linger() == 0 || !p.hasMono:
		// Without kernel timestamps there is no clock to wait by: the
		// report waited for its late lines by records (lingerRecords).
		h.now = true
	default:
		h.due, h.hasDue = p.victimMono+p.linger(), true
	}
	p.held = append(p.held, h)
	p.r, p.hash, p.state, p.cols, p.stats = nil, nil, stIdle, nil, -1
	p.tasks = taskTable{}
	if len(p.held) > maxHeld {
		dst = p.deliverHead(dst)
	}
	return p.deliverDue(dst)
}

// deliverDue appends to dst the held reports that are due, in order.
func (p *Parser) deliverDue(dst []report.Report) []report.Report {
	for len(p.held) > 0 {
		h := &p.held[0]
		if !h.now && !(h.hasDue && p.hasNow && p.now >= h.due) {
			break
		}
		dst = p.deliverHead(dst)
	}
	return dst
}

// linger is how long the open report waits after its latest victim line:
// the group linger once its memory.oom.group line was read.
func (p *Parser) linger() time.Duration {
	if p.r != nil && p.r.OOMGroup != "" && p.cfg.hasGroup {
		return p.cfg.groupLinger
	}
	return p.cfg.victimLinger
}

// deliverHead appends the oldest held report to dst, with its id.
func (p *Parser) deliverHead(dst []report.Report) []report.Report {
	h := p.held[0]
	h.r.ID = p.id(h.r, h.hash)
	for i := range h.r.Victims {
		p.delivered.put(h.r.Victims[i].PID)
	}
	dst = append(dst, *h.r)
	copy(p.held, p.held[1:])
	p.held[len(p.held)-1] = heldReport{}
	p.held = p.held[:len(p.held)-1]
	return dst
}

// attachHeld attaches an oom_reaper outcome to the victim pid of a held
// report, newest first, with the current record. It reports whether one
// matched.
func (p *Parser) attachHeld(pid int, rp report.Reaper) bool {
	for i := len(p.held) - 1; i >= 0; i-- {
		h := &p.held[i]
		for j := range h.r.Victims {
			v := &h.r.Victims[j]
			if v.PID != pid || v.Reaper != nil {
				continue
			}
			rr := rp
			v.Reaper = &rr
			if rec := p.cur; rec != nil {
				h.r.Last = stamp(rec)
				h.hash.Write([]byte(rec.Text))
				h.hash.Write([]byte{'\n'})
				raw := rec.Raw
				if raw == "" {
					raw = rec.Text
				}
				switch {
				case !p.cfg.keepRaw:
				case len(h.r.Raw) < p.cfg.maxLines && h.rawBytes+len(raw) <= p.cfg.maxRawBytes:
					h.r.Raw = append(h.r.Raw, raw)
					h.rawBytes += len(raw)
				default:
					h.r.RawDropped++
				}
			}
			return true
		}
	}
	return false
}

func (p *Parser) id(r *report.Report, h hash.Hash) string {
	if p.cfg.bootID != "" && r.First.Seq != 0 {
		return p.cfg.bootID + "/" + strconv.FormatUint(r.First.Seq, 10)
	}
	sum := h.Sum([]byte(r.Host))
	return "sha256:" + hex.EncodeToString(sha256Sum(sum))[:32]
}

func sha256Sum(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}

// kindOf classifies the report from what it holds.
func kindOf(r *report.Report) string {
	switch r.Constraint {
	case "CONSTRAINT_MEMCG":
		return report.KindMemcg
	case "CONSTRAINT_NONE":
		return report.KindGlobal
	case "CONSTRAINT_CPUSET":
		return report.KindCpuset
	case "CONSTRAINT_MEMORY_POLICY":
		return report.KindMempolicy
	}
	switch {
	case r.Memory != nil || r.OOMMemcg != "" || len(r.MemcgStats) > 0:
		return report.KindMemcg
	case r.MemInfo != nil:
		return report.KindGlobal
	}
	msgs := make([]string, 0, len(r.Victims)+len(r.AlreadyExiting)+1)
	for _, v := range r.Victims {
		msgs = append(msgs, v.Message)
	}
	for _, e := range r.AlreadyExiting {
		msgs = append(msgs, e.Message)
	}
	if r.Chosen != nil {
		msgs = append(msgs, r.Chosen.Message)
	}
	for _, m := range msgs {
		switch {
		case strings.HasPrefix(m, "Memory cgroup out of memory"):
			return report.KindMemcg
		case strings.HasPrefix(m, "Out of memory"):
			return report.KindGlobal
		}
	}
	return report.KindUnknown
}

package oomparse

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"time"

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
	// contGrace is how long a record is held back waiting for a
	// continuation fragment ('c' record) of the same caller.
	contGrace = 20 * time.Millisecond
	// maxMerged bounds a record rebuilt from continuation fragments.
	maxMerged = 64 << 10
	// maxProblems bounds Report.Problems.
	maxProblems = 32
	// recentVictims is how many emitted victim pids are remembered, so that
	// late oom_reaper lines are recognised and dropped quietly.
	recentVictims = 64
)

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
	r     *Report // the open report, nil when idle

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
	chosen     *Chosen // "Kill process ... or sacrifice child" awaiting its Killed line

	// stream state
	pending    kmsg.Record
	hasPending bool
	lastSeq    uint64
	haveSeq    bool
	suppressed int
	recent     [recentVictims]int
	recentN    int
}

// New returns a Parser. Options:
//   - [WithMaxTasks]: task-table rows kept per report (default [DefaultMaxTasks]).
//   - [WithMaxLines]: raw records kept per report (default [DefaultMaxLines]).
//   - [WithMaxUnrelated]: consecutive foreign records that end an unfinished report.
//   - [WithIdleTimeout]: kernel time after which [Parser.Expire] ends an unfinished report.
//   - [WithVictimLinger]: how long a finished report waits for oom.group and reaper lines.
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
func (p *Parser) Feed(dst []Report, rec kmsg.Record) []Report {
	if p.hasPending {
		if rec.Cont && rec.Caller == p.pending.Caller && len(p.pending.Text)+len(rec.Text) <= maxMerged {
			p.pending.Text += rec.Text
			p.pending.Raw += "\n" + rec.Raw
			return dst
		}
		dst = p.process(dst, &p.pending)
		p.hasPending, p.pending = false, kmsg.Record{}
	}
	if p.state == stIdle && !mayStart(rec.Text) {
		return p.process(dst, &rec)
	}
	p.pending, p.hasPending = rec, true
	return dst
}

// Flush ends the stream: it processes any held record and returns the open
// report, flagged incomplete if it has no victim yet. The parser is then
// idle and may be fed again.
func (p *Parser) Flush(dst []Report) []Report {
	if p.hasPending {
		dst = p.process(dst, &p.pending)
		p.hasPending, p.pending = false, kmsg.Record{}
	}
	if p.r != nil {
		dst = p.emit(dst, "the input ended")
	}
	return dst
}

// Expire tells the parser the kernel clock now reads now (time since boot,
// the records' timebase). It returns a finished report whose linger time is
// over, or an unfinished one that went idle for longer than the idle
// timeout (flagged incomplete).
func (p *Parser) Expire(dst []Report, now time.Duration) []Report {
	if p.hasPending && (!p.pending.HasMono || now >= p.pending.Mono+contGrace) {
		dst = p.process(dst, &p.pending)
		p.hasPending, p.pending = false, kmsg.Record{}
	}
	if p.r == nil || !p.hasMono {
		return dst
	}
	if p.state == stVictims {
		if now >= p.victimMono+p.cfg.victimLinger {
			dst = p.emit(dst, "")
		}
	} else if now >= p.lastMono+p.cfg.idleTimeout {
		dst = p.emit(dst, fmt.Sprintf("no new record for %v", p.cfg.idleTimeout))
	}
	return dst
}

// Deadline returns the kernel time at which [Parser.Expire] next has work
// to do, and false when it has none (no open report, or records without
// kernel timestamps).
func (p *Parser) Deadline() (time.Duration, bool) {
	if p.hasPending && p.pending.HasMono {
		return p.pending.Mono + contGrace, true
	}
	if p.r == nil || !p.hasMono {
		return 0, false
	}
	if p.state == stVictims {
		return p.victimMono + p.cfg.victimLinger, true
	}
	return p.lastMono + p.cfg.idleTimeout, true
}

// Idle reports whether no report is open and no record is held.
func (p *Parser) Idle() bool { return p.r == nil && !p.hasPending }

// mayStart is the quiet-stream filter: can a line of this text begin or
// belong to a report? It must be true for every line that idleLine acts on.
func mayStart(text string) bool {
	return strings.Contains(text, "oom") || strings.Contains(text, "ill process ") ||
		strings.Contains(text, "OOM victim ") || strings.Contains(text, "Out of memory")
}

// process handles one (possibly multi-line) record.
func (p *Parser) process(dst []Report, rec *kmsg.Record) []Report {
	var skip bool
	if dst, skip = p.checkSeq(dst, rec); skip {
		return dst
	}
	if p.r == nil && !mayStart(rec.Text) {
		return dst
	}
	if p.state == stVictims && rec.HasMono && p.hasMono && rec.Mono >= p.victimMono+p.cfg.victimLinger {
		dst = p.emit(dst, "")
	}
	p.cur, p.recUsed = rec, false
	if p.r != nil && p.caller != "" && rec.Caller != "" && rec.Caller != p.caller && !mayStart(rec.Text) {
		// Another task's or CPU's record interleaved into the report.
		dst = p.foreign(dst)
	} else {
		text := rec.Text
		for {
			line, rest, more := strings.Cut(text, "\n")
			dst = p.line(dst, strings.TrimRight(line, "\r"))
			if !more {
				break
			}
			text = rest
		}
	}
	if p.r != nil && p.recUsed && rec.HasMono {
		p.lastMono, p.hasMono = rec.Mono, true
	}
	p.cur = nil
	return dst
}

// checkSeq tracks kernel sequence numbers: it flags gaps and drops records
// seen before.
func (p *Parser) checkSeq(dst []Report, rec *kmsg.Record) ([]Report, bool) {
	if !rec.HasSeq {
		return dst, false
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
			fmt.Fprintf(p.hash, "%d\n", rec.Mono.Microseconds())
		}
	}
	p.r.Last = stamp(rec)
	p.hash.Write([]byte(rec.Text))
	p.hash.Write([]byte{'\n'})
	if !p.cfg.keepRaw {
		return
	}
	if len(p.r.Raw) < p.cfg.maxLines {
		raw := rec.Raw
		if raw == "" {
			raw = rec.Text
		}
		p.r.Raw = append(p.r.Raw, raw)
	} else {
		p.r.RawDropped++
	}
}

func stamp(rec *kmsg.Record) Stamp {
	var s Stamp
	if rec.HasSeq {
		s.Seq = rec.Seq
	}
	if rec.HasMono {
		us := rec.Mono.Microseconds()
		s.MonoUsec = &us
	}
	if !rec.Wall.IsZero() {
		w := rec.Wall
		s.Wall = &w
	}
	return s
}

// open starts a new report.
func (p *Parser) open() {
	p.r = &Report{Schema: Schema, Kind: KindUnknown, BootID: p.cfg.bootID}
	p.hash = sha256.New()
	p.tasks = taskTable{max: p.cfg.maxTasks}
	p.cols, p.stats, p.caller, p.chosen = nil, -1, "", nil
	p.hasMono, p.unrelated, p.lingered = false, 0, 0
	p.recUsed = false
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

func clip(s string) string {
	if len(s) > 120 {
		return s[:120] + "..."
	}
	return s
}

// emit finishes the open report and appends it to dst. reason says why an
// unfinished report ended; it is used only when the report has no victim.
func (p *Parser) emit(dst []Report, reason string) []Report {
	r := p.r
	if r == nil {
		return dst
	}
	if len(r.Victims) == 0 && !r.NoKillable && r.Panic == "" {
		r.Incomplete = true
		if reason == "" {
			reason = "the report ended"
		}
		p.problem("no victim line: " + reason)
	}
	r.Tasks = p.tasks.tasks()
	if r.Victims == nil {
		r.Victims = []Victim{}
	}
	r.Kind = kindOf(r)
	r.ID = p.id(r)
	r.Derived = derive(r)
	for _, v := range r.Victims {
		p.recent[p.recentN%recentVictims] = v.PID
		p.recentN++
	}
	dst = append(dst, *r)
	p.r, p.hash, p.state, p.cols, p.stats = nil, nil, stIdle, nil, -1
	p.tasks = taskTable{}
	return dst
}

func (p *Parser) id(r *Report) string {
	if p.cfg.bootID != "" && r.First.Seq != 0 {
		return p.cfg.bootID + "/" + strconv.FormatUint(r.First.Seq, 10)
	}
	sum := p.hash.Sum([]byte(r.Host))
	return "sha256:" + hex.EncodeToString(sha256Sum(sum))[:32]
}

func sha256Sum(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}

// recentVictim reports whether pid was a victim of a recently emitted report.
func (p *Parser) recentVictim(pid int) bool {
	n := min(p.recentN, recentVictims)
	for i := 0; i < n; i++ {
		if p.recent[i] == pid {
			return true
		}
	}
	return false
}

// kindOf classifies the report from what it holds.
func kindOf(r *Report) string {
	switch r.Constraint {
	case "CONSTRAINT_MEMCG":
		return KindMemcg
	case "CONSTRAINT_NONE":
		return KindGlobal
	case "CONSTRAINT_CPUSET":
		return KindCpuset
	case "CONSTRAINT_MEMORY_POLICY":
		return KindMempolicy
	}
	switch {
	case r.Memory != nil || r.OOMMemcg != "" || len(r.MemcgStats) > 0:
		return KindMemcg
	case r.MemInfo != nil:
		return KindGlobal
	}
	for _, v := range r.Victims {
		switch {
		case strings.HasPrefix(v.Message, "Memory cgroup out of memory"):
			return KindMemcg
		case strings.HasPrefix(v.Message, "Out of memory"):
			return KindGlobal
		}
	}
	return KindUnknown
}

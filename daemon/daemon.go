// Package daemon is oomscope's live pipeline: it tails /dev/kmsg
// (package kmsg), rebuilds OOM reports (package oomparse), enriches them
// (package enrich) and publishes them (package sink), keeping a checkpoint
// so that a restart resumes where it stopped without losing or repeating a
// report.
//
// Exactly-once rules: the checkpoint only moves past a record when the
// parser holds no open report and every report completed so far has been
// published. A restart in the same boot resumes after the checkpoint, so a
// report that was open at shutdown is read again from its first line; a
// report that was published but whose checkpoint did not reach the disk is
// parsed again and gets the same id (boot id + first sequence number),
// which every sink treats as already delivered.
package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/rs/zerolog"

	"github.com/oomscope/oomscope/enrich/procattr"
	"github.com/oomscope/oomscope/kmsg"
	"github.com/oomscope/oomscope/oomparse"
	"github.com/oomscope/oomscope/report"
	"github.com/oomscope/oomscope/sink"
)

// Start says where reading begins.
type Start string

// Start values.
const (
	// StartResume resumes after the checkpoint of the same boot; without
	// one (first run, or a new boot) it reads the whole ring buffer.
	StartResume Start = "resume"
	// StartBeginning reads the whole ring buffer, ignoring the checkpoint.
	StartBeginning Start = "beginning"
	// StartEnd reads only records written from now on.
	StartEnd Start = "end"
)

// ParseStart converts a flag value to a Start.
func ParseStart(s string) (Start, error) {
	switch Start(s) {
	case StartResume, StartBeginning, StartEnd:
		return Start(s), nil
	}
	return "", fmt.Errorf("daemon: unknown start %q (want resume, beginning or end)", s)
}

// Source is the kernel log the daemon reads; *kmsg.Reader is one. Records
// must carry kernel sequence numbers for the checkpoint to work. The
// daemon reads and handles records in one goroutine.
type Source interface {
	// Read appends to dst the records the source has, waiting until it
	// has one or until deadline (the zero time: no deadline; one passed:
	// no wait). It returns with none appended only when the source has
	// no record left that it has not delivered: the daemon ends a report
	// by its deadline only then. After Close, or once the context it was
	// opened with is done, it returns kmsg.ErrClosed; io.EOF at the end
	// of a finite log; any other error ends the daemon.
	Read(dst []kmsg.Record, deadline time.Time) ([]kmsg.Record, error)
	// Lost counts records the source lost (ring-buffer overruns).
	Lost() uint64
	Close() error
}

// PositionMode says where a [Source] starts.
type PositionMode int

// PositionMode values.
const (
	// FromBeginning reads every record still in the ring buffer.
	FromBeginning PositionMode = iota
	// FromEnd reads only records written from now on.
	FromEnd
	// AfterSeq reads the records after sequence number Position.Seq.
	AfterSeq
)

// Position is where a [Source] starts.
type Position struct {
	Mode PositionMode
	Seq  uint64
}

// OpenFunc opens the daemon's [Source] at pos.
type OpenFunc func(ctx context.Context, pos Position) (Source, error)

// KernelLog is the OpenFunc of the kernel log device (empty: /dev/kmsg).
func KernelLog(device string, log zerolog.Logger) OpenFunc {
	return func(ctx context.Context, pos Position) (Source, error) {
		opts := []kmsg.LiveOption{kmsg.WithLogger(log)}
		if device != "" {
			opts = append(opts, kmsg.WithDevice(device))
		}
		switch pos.Mode {
		case FromEnd:
			opts = append(opts, kmsg.WithStartAtEnd())
		case AfterSeq:
			opts = append(opts, kmsg.WithResumeAfter(pos.Seq))
		default:
			opts = append(opts, kmsg.WithStartAtBeginning())
		}
		r, err := kmsg.OpenReader(ctx, opts...)
		if err != nil {
			return nil, err
		}
		return r, nil
	}
}

// Enricher turns a parsed report into an enriched one; *enrich.Enricher is
// one.
type Enricher interface {
	Enrich(ctx context.Context, r *report.Report) *report.Enriched
}

// Config configures [Run].
type Config struct {
	// Device is the kmsg device; empty means /dev/kmsg. Ignored when Open
	// is set.
	Device string
	// Open opens the record source; nil opens Device with [KernelLog].
	Open OpenFunc
	// BootID returns the running boot's id; nil reads the kernel's.
	BootID func() (string, error)
	// Clock is the kernel log's clock (CLOCK_MONOTONIC, as the records'
	// timestamps); nil reads the kernel's.
	Clock func() time.Duration
	// Start says where to begin; empty means StartResume.
	Start Start
	// StatePath is the checkpoint file; empty disables checkpoints.
	StatePath string
	// Host names the node in reports.
	Host string
	// Queue receives every report: the durable outbox, whose sinks deliver
	// on their own. A report counts as published for the checkpoint once
	// Queue stored it.
	Queue Queue
	// Sink, when Queue is nil, receives every report directly (tests, and
	// tools that need no outbox): the daemon then waits for it.
	Sink sink.Sink
	// Enricher enriches reports; nil publishes them as parsed.
	Enricher Enricher
	// ParserOptions are passed to oomparse.New (after the boot id,
	// oomparse.WithLiveTiming and the host).
	ParserOptions []oomparse.Option
	// Logger receives the daemon's logs.
	Logger zerolog.Logger
	// CheckpointEvery bounds how long a moved checkpoint stays unsaved;
	// zero means 2s.
	CheckpointEvery time.Duration
	// RetryMax caps the backoff between attempts to publish; zero means 30s.
	RetryMax time.Duration
	// AcceptUserspace feeds the parser records that user space wrote to
	// /dev/kmsg (facility other than kern). By default their text is
	// ignored: the kernel's own reports always carry facility 0, which no
	// writer can use, so a record of another facility is at best a test
	// and at worst a forged report. Set it to replay logs into /dev/kmsg.
	AcceptUserspace bool
	// Metrics, if set, counts records and reports.
	Metrics *Metrics
	// Victims, if set, reads the cgroup of every victim from /proc the
	// moment its "Killed process" line is read, for the reports the kernel
	// rate-limits to that line (give the same Tracker to the enricher).
	Victims *procattr.Tracker
	// Counters, if set, sees every kernel record after Victims: at each
	// "Killed process" line it reads the kernel's OOM-kill counters
	// (*counterattr.Tracker; give the same one to the enricher).
	Counters RecordObserver
	// DrainTimeout is how long, once ctx is done, the reports already read
	// may still take to be enriched and stored (SIGTERM drains them into
	// the outbox); zero means 10s. Reports still open in the parser are
	// not drained: the checkpoint stays before them and the next start
	// reads them again.
	DrainTimeout time.Duration
	// OnReady, if set, is called once the kernel log is open and reading
	// (a readiness signal).
	OnReady func()
}

// RecordObserver looks at the kernel's records as the daemon reads them,
// before the parser.
type RecordObserver interface {
	Observe(rec kmsg.Record)
}

// Run runs the pipeline until ctx is done (then it returns nil after saving
// the checkpoint) or the kernel log cannot be read.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Sink == nil && cfg.Queue == nil {
		return errors.New("daemon: no queue or sink configured")
	}
	if cfg.Start == "" {
		cfg.Start = StartResume
	}
	if cfg.CheckpointEvery <= 0 {
		cfg.CheckpointEvery = 2 * time.Second
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = 30 * time.Second
	}
	log := cfg.Logger

	var cp Checkpoint
	var haveCP bool
	if cfg.StatePath != "" {
		var err error
		if cp, haveCP, err = LoadCheckpoint(cfg.StatePath); err != nil {
			// A corrupt checkpoint must not stop the daemon: reading the
			// whole buffer again is safe because sinks deduplicate by id.
			log.Error().Err(err).Msg("ignoring checkpoint")
			haveCP = false
		}
	}

	if cfg.BootID == nil {
		cfg.BootID = kmsg.ReadBootID
	}
	if cfg.Clock == nil {
		cfg.Clock = kernelClock()
	}
	if cfg.Open == nil {
		cfg.Open = KernelLog(cfg.Device, log)
	}
	bootID, err := cfg.BootID()
	if err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	resumed := false
	var pos Position
	switch {
	case cfg.Start == StartEnd:
		pos = Position{Mode: FromEnd}
		log.Info().Msg("reading kernel log from its end")
	case cfg.Start == StartResume && haveCP && cp.BootID == bootID:
		resumed = true
		pos = Position{Mode: AfterSeq, Seq: cp.Seq}
		log.Info().Uint64("after_seq", cp.Seq).Msg("resuming kernel log after checkpoint")
	default:
		pos = Position{Mode: FromBeginning}
		log.Info().Str("start", string(cfg.Start)).Bool("checkpoint", haveCP).Msg("reading the whole kernel ring buffer")
	}
	if !haveCP || cp.BootID != bootID {
		cp = Checkpoint{BootID: bootID}
	}

	live, err := cfg.Open(ctx, pos)
	if err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	defer live.Close()
	// A Read waiting for records returns when the source is closed.
	defer context.AfterFunc(ctx, func() { live.Close() })()

	// The live kernel log: a report leaves the parser a few milliseconds
	// after its victim line (its late oom_reaper line is counted and
	// dropped), unless ParserOptions say otherwise.
	popts := append([]oomparse.Option{oomparse.WithBootID(bootID), oomparse.WithLiveTiming()}, cfg.ParserOptions...)
	if cfg.Host != "" {
		popts = append(popts, oomparse.WithHost(cfg.Host))
	}
	p, err := oomparse.New(popts...)
	if err != nil {
		return fmt.Errorf("daemon: %w", err)
	}

	r := &runner{cfg: cfg, log: log, cp: cp}
	if resumed {
		r.lostBase = cp.Lost // the count is per boot, across restarts
	}
	defer r.saveCheckpoint()
	if cfg.OnReady != nil {
		cfg.OnReady()
	}

	// Reports in hand are stored on a context that outlives ctx by the
	// drain timeout.
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 10 * time.Second
	}
	drain, stopDrain := context.WithCancel(context.WithoutCancel(ctx))
	defer stopDrain()
	stopAfter := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(cfg.DrainTimeout, stopDrain)
		context.AfterFunc(drain, func() { t.Stop() })
	})
	defer stopAfter()

	// One goroutine reads the kernel log and handles what it reads: Read
	// waits until the parser's deadline or the checkpoint's, whichever is
	// first, and a report is ended by its deadline only when Read came
	// back with nothing (the kernel had no record left for us: a starved
	// daemon reads the records that continue the report first). An idle
	// daemon has no periodic wake-up: the checkpoint's deadline is set
	// only when it moved.
	var (
		recs   []kmsg.Record
		saveAt time.Time
	)
	for {
		if r.dirty && saveAt.IsZero() {
			saveAt = time.Now().Add(cfg.CheckpointEvery)
		}
		due, hasDue := p.Deadline()
		var deadline time.Time
		if hasDue {
			deadline = time.Now().Add(due - cfg.Clock())
		}
		if !saveAt.IsZero() && (deadline.IsZero() || saveAt.Before(deadline)) {
			deadline = saveAt
		}
		var err error
		recs, err = live.Read(recs[:0], deadline)
		if errors.Is(err, kmsg.ErrClosed) || ctx.Err() != nil {
			return nil
		}
		st := r.batch(drain, p, recs)
		if err == nil && hasDue {
			if now := cfg.Clock(); now >= due && (len(recs) == 0 || now > due+maxPostpone) {
				st.merge(r.expire(drain, p, now))
			}
		}
		if st.stopped {
			return nil // ctx done while retrying; checkpoint not moved
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("daemon: reading kernel log: %w", err)
		}
		// Reports published straight to a sink move the checkpoint at once:
		// the checkpoint is what keeps a restart from publishing them
		// again. Stored in the outbox, they need not: the outbox refuses
		// an id it holds or has delivered (outbox.Config.RememberIDs), so
		// the checkpoint is saved at most CheckpointEvery later and a
		// crash re-reads at most that much of the log, publishing nothing
		// twice — one save every 2 s in a storm instead of one a report.
		if st.reports && r.cfg.Queue == nil || !saveAt.IsZero() && !time.Now().Before(saveAt) {
			saveAt = time.Time{}
			r.cp.Lost = r.lostBase + live.Lost()
			r.cfg.Metrics.setLost(r.cp.Lost)
			r.saveCheckpointIfDirty()
		}
	}
}

// maxPostpone bounds how long past its deadline a report waits while the
// kernel log keeps giving records (a flood): then it is ended anyway.
const maxPostpone = 10 * time.Second

// step is what one turn of the loop did.
type step struct {
	reports bool // reports were published
	stopped bool // ctx was done while publishing
}

// batch feeds recs, publishing the reports each completes before the next
// is fed, as if each had been a turn of the loop: the checkpoint moves at
// the same records.
func (r *runner) batch(ctx context.Context, p *oomparse.Parser, recs []kmsg.Record) step {
	var st step
	for i := range recs {
		st.merge(r.handle(ctx, p, r.feed(p, r.buf[:0], recs[i])))
		if st.stopped {
			return st
		}
	}
	return st
}

// expire tells the parser the time and publishes what it hands out.
func (r *runner) expire(ctx context.Context, p *oomparse.Parser, now time.Duration) step {
	return r.handle(ctx, p, p.Expire(r.buf[:0], now))
}

// handle publishes reports and moves the checkpoint when the parser holds
// nothing.
func (r *runner) handle(ctx context.Context, p *oomparse.Parser, reports []report.Report) step {
	r.buf = reports[:0]
	if n := p.LateReaperLines(); n != r.late {
		r.cfg.Metrics.lateReaper(n - r.late)
		r.late = n
	}
	for i := range reports {
		if err := r.publish(ctx, &reports[i]); err != nil {
			return step{stopped: true}
		}
	}
	if p.Idle() && r.haveLast && r.lastSeq != r.cp.Seq {
		r.cp.Seq = r.lastSeq
		r.cp.After = nil
		r.dirty = true
	}
	return step{reports: len(reports) > 0}
}

func (s *step) merge(o step) {
	s.reports = s.reports || o.reports
	s.stopped = s.stopped || o.stopped
}

type runner struct {
	cfg   Config
	log   zerolog.Logger
	cp    Checkpoint
	dirty bool
	// lastSeq is the sequence number of the last record fed.
	lastSeq  uint64
	haveLast bool
	// lostBase is the checkpoint's lost count when resuming in the same boot.
	lostBase uint64
	// buf is the parser's output slice, reused.
	buf []report.Report
	// late is the parser's count of late oom_reaper lines, as counted.
	late uint64
}

// feed passes rec to the parser (blanked when user space wrote it) and
// returns the reports it completed.
func (r *runner) feed(p *oomparse.Parser, dst []report.Report, rec kmsg.Record) []report.Report {
	if rec.Facility != 0 && !r.cfg.AcceptUserspace {
		// Not the kernel's: fed blank, so that its sequence number still
		// counts and no gap is seen.
		rec.Text, rec.Raw, rec.Dict = "", "", nil
	}
	if rec.HasSeq {
		r.lastSeq, r.haveLast = rec.Seq, true
	}
	if rec.Facility == 0 {
		r.cfg.Victims.Observe(rec.Text)
		if r.cfg.Counters != nil {
			r.cfg.Counters.Observe(rec)
		}
	}
	if r.cfg.Metrics == nil {
		return p.Feed(dst, rec)
	}
	began := time.Now()
	dst = p.Feed(dst, rec)
	r.cfg.Metrics.record(time.Since(began))
	return dst
}

// publish enriches and publishes rep, retrying with backoff until it
// succeeds or ctx is done.
func (r *runner) publish(ctx context.Context, parsed *report.Report) error {
	// The parser's output slice is reused for the next records: sinks get
	// a report of their own, safe to keep.
	rep := new(report.Report)
	*rep = *parsed
	if r.cp.published(rep.ID) {
		// Published before the restart, while a later report was open.
		return nil
	}
	if r.cfg.Queue != nil {
		if _, err := store(ctx, r.cfg.Queue, r.cfg.Enricher, rep, r.log, r.cfg.RetryMax, r.cfg.Metrics, true); err != nil {
			return err // stopping: not stored, the checkpoint does not move
		}
		r.published(rep.ID)
		return nil
	}
	var er *report.Enriched
	if r.cfg.Enricher != nil {
		er = r.cfg.Enricher.Enrich(ctx, rep)
		if err := ctx.Err(); err != nil {
			// Stopping: the enrichment may have been cut short (a pod
			// lookup cancelled). Not published, the checkpoint does not
			// move, the next start reads the report again.
			return err
		}
	} else {
		er = &report.Enriched{Report: rep}
	}
	backoff := 500 * time.Millisecond
	for {
		err := r.cfg.Sink.Publish(ctx, sink.Delivery{Report: er, Queued: time.Now()})
		if err == nil {
			r.published(rep.ID)
			logPublished(r.log, rep, true)
			return nil
		}
		r.log.Error().Err(err).Str("id", rep.ID).Dur("retry_in", backoff).Msg("publishing failed")
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, r.cfg.RetryMax)
	}
}

// published records in the checkpoint that the report id was published.
func (r *runner) published(id string) {
	r.cp.Published++
	if len(r.cp.After) < maxAfter {
		r.cp.After = append(r.cp.After, id)
	}
	r.dirty = true
}

// logPublished logs a published report: one line per report, with its id.
func logPublished(log zerolog.Logger, rep *report.Report, added bool) {
	ev := log.Info().Str("id", rep.ID).Str("kind", rep.Kind).Bool("partial", rep.Partial).Bool("incomplete", rep.Incomplete)
	if len(rep.Victims) > 0 {
		// Process names and cgroup paths are the workload's own words:
		// escaped, so that a console log line cannot be forged or hidden.
		ev = ev.Int("victim_pid", rep.Victims[0].PID).Str("victim_comm", report.Escape(rep.Victims[0].Comm, 64))
	}
	msg := "published OOM report"
	if !added {
		msg = "OOM report already in the outbox"
	}
	ev.Str("oom_memcg", report.Escape(rep.OOMMemcg, 512)).Msg(msg)
}

// marshalReport is the report as the outbox stores it: the JSON every sink
// decodes, raw kernel lines included.
func marshalReport(er *report.Enriched) ([]byte, error) {
	b, err := json.Marshal(er)
	if err != nil {
		return nil, fmt.Errorf("daemon: encoding report %s: %w", er.ID, err)
	}
	return b, nil
}

func (r *runner) saveCheckpointIfDirty() {
	if r.dirty {
		r.saveCheckpoint()
	}
}

func (r *runner) saveCheckpoint() {
	if r.cfg.StatePath == "" {
		r.dirty = false
		return
	}
	if err := r.cp.Save(r.cfg.StatePath); err != nil {
		r.log.Error().Err(err).Msg("saving checkpoint")
		return
	}
	r.dirty = false
}

// monoNow is the kernel log's clock; zero if it cannot be read (then
// nothing expires early: deadlines are in the future).
func monoNow() time.Duration {
	d, err := kmsg.KernelClock()
	if err != nil {
		return 0
	}
	return d
}

// kernelClock returns the kernel log's clock read once through the kernel
// and then through Go's own monotonic clock, which is the same clock
// (CLOCK_MONOTONIC) read through the vDSO: the loop asks for the time
// after every record while a report is open, and a clock_gettime system
// call each time was a tenth of the reader's CPU in a storm.
func kernelClock() func() time.Duration {
	base, t0 := monoNow(), time.Now()
	if base == 0 {
		return monoNow
	}
	return func() time.Duration { return base + time.Since(t0) }
}

package kmsg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// DefaultDevice is the kernel log device [OpenLive] reads unless
// [WithDevice] says otherwise.
const DefaultDevice = "/dev/kmsg"

// bootIDPath holds the random id of the running boot.
const bootIDPath = "/proc/sys/kernel/random/boot_id"

// liveRecordBuffer is the capacity of the channel returned by
// [Live.Records]: an OOM report is about a hundred records, so a burst of
// reports does not stall the reader while the consumer catches up (the
// kernel's ring buffer keeps the rest).
const liveRecordBuffer = 512

// readBufferSize is the size of the buffer each record is read into.
// /dev/kmsg returns one record per read(2) and fails with EINVAL when the
// buffer cannot hold it; the kernel's largest record
// (CONSOLE_EXT_LOG_MAX) is 8 KiB.
const readBufferSize = 16 << 10

// offsetResample is how long a sampled realtime-monotonic offset is used
// before it is sampled again, so that NTP slewing and clock steps reach
// the Wall times of later records.
const offsetResample = time.Second

// startMode is where a [Live] starts reading.
type startMode int

const (
	startEnd startMode = iota
	startBeginning
	startAfter
)

// device is what [Live] reads records from: /dev/kmsg, or a stand-in in
// tests. Each Read returns one record; Close must make a blocked Read
// return.
type device interface {
	io.ReadCloser
	io.Seeker
}

// LiveOption configures [OpenLive]. An option returns an error for a
// value it cannot use, and OpenLive fails with that error, which names the
// option: a misconfigured reader must not start reading something else.
//
// The start options ([WithStartAtEnd], [WithStartAtBeginning],
// [WithResumeAfter]) exclude each other: two different ones are an error,
// since which records to read is the caller's decision, not the order of
// the list (a resume point overridden by a later WithStartAtBeginning, or
// the other way round, would re-read or drop records silently). The same
// one given twice is allowed.
type LiveOption func(*liveConfig) error

type liveConfig struct {
	device   string
	log      zerolog.Logger
	start    startMode
	after    uint64
	startOpt string // the start option given, as written: "WithResumeAfter(7)"
	open     func(path string) (device, error)
	clock    func(clockid int32) (time.Duration, error)
	probe    func(path string) (prober, error)
	bootID   string // path of the boot id file
}

// newLiveConfig is the defaults with opts applied (nil options skipped).
func newLiveConfig(opts []LiveOption) (liveConfig, error) {
	cfg := liveConfig{
		device: DefaultDevice,
		log:    zerolog.Nop(),
		open:   openDevice,
		clock:  clockGettime,
		probe:  openProbe,
		bootID: bootIDPath,
	}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&cfg); err != nil {
			return liveConfig{}, err
		}
	}
	return cfg, nil
}

// setStart records a start option, refusing a different one given before.
func (c *liveConfig) setStart(mode startMode, after uint64, opt string) error {
	if c.startOpt != "" && c.startOpt != opt {
		return fmt.Errorf("%s: conflicts with %s given before: give one start option", opt, c.startOpt)
	}
	c.start, c.after, c.startOpt = mode, after, opt
	return nil
}

// WithDevice reads path instead of [DefaultDevice]. An empty path is an
// error: leave the option out to read the default.
func WithDevice(path string) LiveOption {
	return func(c *liveConfig) error {
		if path == "" {
			return errors.New("WithDevice: empty device path")
		}
		c.device = path
		return nil
	}
}

// WithLogger sets the logger for lost records, malformed records and read
// errors. The default discards everything.
func WithLogger(l zerolog.Logger) LiveOption {
	return func(c *liveConfig) error { c.log = l; return nil }
}

// WithStartAtEnd returns only the records written after [OpenLive]. This is
// the default.
func WithStartAtEnd() LiveOption {
	return func(c *liveConfig) error { return c.setStart(startEnd, 0, "WithStartAtEnd()") }
}

// WithStartAtBeginning returns every record still in the kernel's ring
// buffer, then the new ones.
func WithStartAtBeginning() LiveOption {
	return func(c *liveConfig) error { return c.setStart(startBeginning, 0, "WithStartAtBeginning()") }
}

// WithResumeAfter returns the records whose sequence number is greater than
// seq: those after a checkpoint. If record seq+1 is no longer in the ring
// buffer, reading starts at the oldest record and the records in between
// count as lost (see [Live.Lost]). Sequence numbers restart at every boot:
// give a seq of the running boot (compare [Live.BootID]); a seq after the
// newest record, as one from an earlier boot usually is, is logged and the
// whole ring buffer is read instead.
func WithResumeAfter(seq uint64) LiveOption {
	return func(c *liveConfig) error {
		return c.setStart(startAfter, seq, fmt.Sprintf("WithResumeAfter(%d)", seq))
	}
}

// withOpener replaces os.Open for the device (tests).
func withOpener(open func(path string) (device, error)) LiveOption {
	return func(c *liveConfig) error {
		if open == nil {
			return errors.New("withOpener: nil opener")
		}
		c.open = open
		return nil
	}
}

// withNewest replaces newestSeq (tests).
func withNewest(newest func(path string) (uint64, bool, error)) LiveOption {
	return func(c *liveConfig) error {
		if newest == nil {
			return errors.New("withNewest: nil function")
		}
		c.probe = func(path string) (prober, error) { return funcProbe{path: path, f: newest}, nil }
		return nil
	}
}

// withClock replaces clock_gettime (tests).
func withClock(clock func(clockid int32) (time.Duration, error)) LiveOption {
	return func(c *liveConfig) error {
		if clock == nil {
			return errors.New("withClock: nil clock")
		}
		c.clock = clock
		return nil
	}
}

// Live reads kernel log records from /dev/kmsg (or [WithDevice]'s path)
// as the kernel writes them, one record per read(2), each parsed with
// [ParseRecord] (flags, caller, exact microseconds, \xNN escapes decoded,
// dictionary lines apart, Raw kept).
//
// Records arrive on [Live.Records] in the order read, which is the
// kernel's sequence order, from the start point the options chose
// (default: only records written after [OpenLive]).
//
// When the kernel overwrites records before they are read, reading goes on
// at the oldest record still there: [Live.Lost] counts the records lost
// (exactly, from the gaps in sequence numbers), each gap is logged, and
// the Records keep their Seq so a consumer sees the gap too. [Live.Behind]
// tells whether records are still waiting to be read.
//
// [Live.Records] is closed when the context passed to [OpenLive] is done,
// when [Live.Close] is called, or on a read error; [Live.Err] is that
// error, nil for the first two. Close waits for the reader goroutine to
// exit and may be called more than once. A Live is safe for concurrent
// use.
//
// Record.Mono is the kernel's stamp (CLOCK_MONOTONIC, so it stops during
// suspend); Record.Wall adds the current CLOCK_REALTIME − CLOCK_MONOTONIC
// offset, resampled every second, and is good to about a millisecond
// (older records get the wall time today's clock gives them, as dmesg -T).
//
// The strings of the Records share 16 KiB blocks (no allocation per
// record): a Record kept long keeps its block alive, so strings.Clone what
// is archived if that matters.
//
// Design notes: docs/kmsg-live.md.
type Live struct {
	cfg    liveConfig
	dev    device
	probe  prober // the newest record, for Behind; nil if it could not be opened
	log    zerolog.Logger
	out    chan Record
	bootID string

	done     chan struct{} // closed to stop the reader
	finished chan struct{} // closed when the reader has exited
	stopOnce sync.Once
	closeErr error
	stopCtx  func() bool

	lost    atomic.Uint64
	next    atomic.Uint64 // sequence number of the next record the device will give
	epipe   atomic.Uint64
	badRecs atomic.Uint64

	mu  sync.Mutex
	err error

	// reader state, owned by the reader goroutine
	strs     blockStrings // record strings share blocks: no allocation per record
	last     uint64
	haveLast bool
	offset   time.Duration // CLOCK_REALTIME − CLOCK_MONOTONIC
	sampled  time.Time     // when offset was sampled (monotonic reading)
}

// OpenLive opens the kernel log device and starts reading it in a
// goroutine. By default only records written after OpenLive returns are
// delivered (see [WithStartAtBeginning], [WithResumeAfter]). An invalid
// option fails it before anything is opened (see [LiveOption]).
func OpenLive(ctx context.Context, opts ...LiveOption) (*Live, error) {
	cfg, err := newLiveConfig(opts)
	if err != nil {
		return nil, fmt.Errorf("kmsg: OpenLive: option %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("kmsg: opening %s: %w", cfg.device, err)
	}
	l := &Live{
		cfg:      cfg,
		log:      cfg.log.With().Str("device", cfg.device).Logger(),
		out:      make(chan Record, liveRecordBuffer),
		done:     make(chan struct{}),
		finished: make(chan struct{}),
	}
	if b, err := os.ReadFile(cfg.bootID); err == nil {
		l.bootID = strings.TrimSpace(string(b))
	} else {
		l.log.Warn().Err(err).Msg("kmsg: cannot read the boot id")
	}
	off, err := sampleOffset(cfg.clock, 8)
	if err != nil {
		return nil, fmt.Errorf("kmsg: sampling the clocks: %w", err)
	}
	l.offset, l.sampled = off, time.Now()

	dev, err := cfg.open(cfg.device)
	if err != nil {
		return nil, fmt.Errorf("kmsg: opening %s: %w", cfg.device, err)
	}
	whence := io.SeekStart
	if cfg.start == startEnd {
		whence = io.SeekEnd
	}
	if _, err := dev.Seek(0, whence); err != nil {
		dev.Close()
		return nil, fmt.Errorf("kmsg: seeking %s: %w", cfg.device, err)
	}
	l.dev = dev
	probe, probeErr := cfg.probe(cfg.device)
	if probeErr != nil {
		l.log.Warn().Err(probeErr).Msg("kmsg: cannot open a second descriptor: Behind will say false")
	} else {
		l.probe = probe
	}
	newest := func() (uint64, bool, error) {
		if l.probe == nil {
			return 0, false, probeErr
		}
		return l.probe.newest()
	}
	if cfg.start == startEnd {
		// Positioned after the newest record: [Live.Behind] must not count
		// the records before it as unread.
		if newest, ok, err := newest(); err == nil && ok {
			l.next.Store(newest + 1)
		}
	}
	if cfg.start == startAfter {
		// A resume point beyond the newest record is from another boot
		// (or made up): waiting for the numbering to pass it would drop
		// every record until then, so read everything instead.
		if newest, ok, err := newest(); err != nil {
			l.log.Warn().Err(err).Msg("kmsg: cannot find the newest sequence number")
		} else if ok && cfg.after > newest {
			l.log.Warn().Uint64("after_seq", cfg.after).Uint64("newest_seq", newest).
				Msg("kmsg: resume point is after the newest record (another boot?); reading the whole ring buffer")
			l.cfg.start = startBeginning
		}
	}
	if l.cfg.start == startAfter {
		l.last, l.haveLast = cfg.after, true
	}
	l.stopCtx = context.AfterFunc(ctx, l.stop)
	go l.run()
	return l, nil
}

// openDevice opens path for reading. Opened with os.Open, /dev/kmsg is
// non-blocking and registered with the runtime's poller, so Close makes a
// pending Read return.
func openDevice(path string) (device, error) {
	return os.Open(path)
}

// Records returns the records in the order read. The channel is closed
// when the context is done, [Live.Close] is called, or reading fails.
func (l *Live) Records() <-chan Record { return l.out }

// Err returns the error that closed [Live.Records]: nil when the context
// was done or [Live.Close] was called, and nil while reading goes on.
func (l *Live) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// Lost returns the number of records lost so far: the sum of the gaps in
// the sequence numbers read, including the one before the first record
// read when resuming after a record no longer in the ring buffer.
func (l *Live) Lost() uint64 { return l.lost.Load() }

// Behind reports whether records are waiting: in the channel of
// [Live.Records], or in the kernel's ring buffer not yet read. The kernel
// is asked through a non-blocking descriptor of Live's own that reads,
// each call, only the records written since the call before (the first
// call reads the whole buffer): about one extra read(2) per record written,
// plus one per call. A consumer that was starved of CPU uses it to tell
// "the kernel wrote nothing" from "I have not read it yet". It is exact
// for the records written before the call, including one the reader has
// read from the device but not yet put in the channel.
func (l *Live) Behind() bool {
	// next first: it moves past a record only once the record is in the
	// channel, so a record read meanwhile is seen in the channel, or is
	// still at or after next in the kernel.
	next := l.next.Load()
	if len(l.out) > 0 {
		return true
	}
	if l.probe == nil {
		return false
	}
	newest, ok, err := l.probe.newest()
	if err != nil || !ok {
		return false
	}
	return newest >= next
}

// BootID returns the random id of the running boot, read from
// /proc/sys/kernel/random/boot_id at [OpenLive] ("" if unreadable).
func (l *Live) BootID() string { return l.bootID }

// Close stops reading, closes the device and waits for the reader
// goroutine to exit. It is safe to call more than once; later calls return
// the first call's result.
func (l *Live) Close() error {
	l.stopCtx()
	l.stop()
	<-l.finished
	if l.probe != nil {
		l.probe.close()
	}
	if l.closeErr != nil {
		return fmt.Errorf("kmsg: closing %s: %w", l.cfg.device, l.closeErr)
	}
	return nil
}

// stop asks the reader to stop and closes the device, which makes a
// pending Read return.
func (l *Live) stop() {
	l.stopOnce.Do(func() {
		close(l.done)
		l.closeErr = l.dev.Close()
	})
}

// stopping reports whether stop was called.
func (l *Live) stopping() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// maxReadBatch bounds the records read from the device before they are
// sent on: a report is 30-80 records written within a millisecond.
const maxReadBatch = 256

// run is the reader goroutine. It reads the device until it has no record
// left (EAGAIN) and then sends what it read, so that the consumer is woken
// once for the records of a burst rather than once per record.
func (l *Live) run() {
	defer close(l.finished)
	defer close(l.out)
	buf := make([]byte, readBufferSize)
	var rc syscall.RawConn
	if sc, ok := l.dev.(syscall.Conn); ok {
		if c, err := sc.SyscallConn(); err == nil {
			rc = c
		}
	}
	var raws []string
	for {
		var err error
		if rc != nil {
			raws, err = l.readBatch(rc, buf, raws[:0])
		} else {
			raws, err = l.readOne(buf, raws[:0])
		}
		for _, raw := range raws {
			if !l.send(raw) {
				return
			}
		}
		if err != nil {
			if l.stopping() {
				return
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			l.fail(fmt.Errorf("kmsg: reading %s: %w", l.cfg.device, err))
			return
		}
	}
}

// readBatch appends to raws the records the device has, read through rc
// until EAGAIN (at most maxReadBatch), waiting in the runtime's poller
// while it has none.
func (l *Live) readBatch(rc syscall.RawConn, buf []byte, raws []string) ([]string, error) {
	var rerr error
	err := rc.Read(func(fd uintptr) bool {
		for len(raws) < maxReadBatch {
			n, err := syscall.Read(int(fd), buf)
			switch {
			case err == syscall.EAGAIN:
				return len(raws) > 0 // none yet: wait until readable
			case err == syscall.EINTR:
				continue
			case err == syscall.EPIPE:
				l.overrun()
				continue
			case err != nil:
				rerr = err
				return true
			case n <= 0:
				rerr = io.EOF
				return true
			}
			raws = append(raws, l.strs.str(buf[:n]))
		}
		return true
	})
	if err == nil {
		err = rerr
	}
	return raws, err
}

// readOne appends to raws the record of one Read of a device that is not a
// file (tests).
func (l *Live) readOne(buf []byte, raws []string) ([]string, error) {
	n, err := l.dev.Read(buf)
	switch {
	case errors.Is(err, syscall.EPIPE):
		l.overrun()
		return raws, nil
	case errors.Is(err, syscall.EINTR) || errors.Is(err, syscall.EAGAIN):
		return raws, nil
	case err != nil:
		return raws, err
	case n == 0:
		return raws, nil
	}
	return append(raws, l.strs.str(buf[:n])), nil
}

// overrun counts an EPIPE: the device continues at the oldest record; the
// gap in sequence numbers tells how many were lost.
func (l *Live) overrun() {
	c := l.epipe.Add(1)
	l.log.Debug().Uint64("overruns", c).Msg("kmsg: ring buffer overrun (EPIPE)")
}

// send parses a record read and puts it in the channel. It returns false
// when stopping.
func (l *Live) send(raw string) bool {
	rec, err := ParseRecord(raw)
	if err != nil {
		c := l.badRecs.Add(1)
		l.log.Warn().Err(err).Uint64("malformed", c).Msg("kmsg: skipping malformed record")
		return true
	}
	if !l.track(rec.Seq) {
		l.next.Store(rec.Seq + 1)
		return true
	}
	rec.Wall = l.wall(rec.Mono)
	select {
	case l.out <- rec:
		// Only now: until the record is in the channel, Behind must
		// still see it as unread in the kernel.
		l.next.Store(rec.Seq + 1)
		return true
	case <-l.done:
		return false
	}
}

// track checks seq against the previous record's, counting and logging a
// gap. It returns false for a record to drop: one at or before the
// WithResumeAfter point.
func (l *Live) track(seq uint64) bool {
	if !l.haveLast {
		l.last, l.haveLast = seq, true
		return true
	}
	switch {
	case seq == l.last+1:
	case seq > l.last:
		n := seq - l.last - 1
		total := l.lost.Add(n)
		l.log.Warn().
			Uint64("lost", n).
			Uint64("lost_total", total).
			Uint64("after_seq", l.last).
			Uint64("next_seq", seq).
			Msg("kmsg: records lost: overwritten in the ring buffer before they were read")
	case l.cfg.start == startAfter && l.last == l.cfg.after && seq <= l.cfg.after:
		return false // still before the resume point
	default:
		// The sequence went backwards: the device was reset or is no
		// /dev/kmsg. Follow the new numbering.
		l.log.Warn().Uint64("after_seq", l.last).Uint64("next_seq", seq).
			Msg("kmsg: sequence number went backwards")
	}
	l.last = seq
	return true
}

// wall returns the wall-clock time of kernel timestamp mono, resampling
// the clock offset when it is older than offsetResample.
func (l *Live) wall(mono time.Duration) time.Time {
	if time.Since(l.sampled) > offsetResample {
		if off, err := sampleOffset(l.cfg.clock, 4); err == nil {
			l.offset = off
		} else {
			l.log.Warn().Err(err).Msg("kmsg: sampling the clocks")
		}
		l.sampled = time.Now()
	}
	return time.Unix(0, 0).Add(l.offset + mono)
}

// fail records the error that ends reading.
func (l *Live) fail(err error) {
	l.log.Error().Err(err).Msg("kmsg: reading stopped")
	l.mu.Lock()
	l.err = err
	l.mu.Unlock()
}

// Clock ids of clock_gettime(2).
const (
	clockRealtime  int32 = unix.CLOCK_REALTIME
	clockMonotonic int32 = unix.CLOCK_MONOTONIC
)

// KernelClock returns the clock the kernel stamps its records with
// (CLOCK_MONOTONIC, see [Live]): the "now" to compare Record.Mono with.
func KernelClock() (time.Duration, error) {
	return clockGettime(clockMonotonic)
}

// ReadBootID returns the id of the running boot, which names the ring
// buffer that sequence numbers count in.
func ReadBootID() (string, error) {
	b, err := os.ReadFile(bootIDPath)
	if err != nil {
		return "", fmt.Errorf("kmsg: reading the boot id: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// clockGettime reads clock id with clock_gettime(2), as time since the
// clock's epoch. It is the default of the clock seam ([withClock]).
func clockGettime(id int32) (time.Duration, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(id, &ts); err != nil {
		return 0, fmt.Errorf("clock_gettime(%d): %w", id, err)
	}
	return time.Duration(ts.Nano()), nil
}

// sampleOffset returns CLOCK_REALTIME − CLOCK_MONOTONIC from the tightest
// of n triples (monotonic, realtime, monotonic): the triple whose
// monotonic readings are closest, its realtime reading paired with their
// midpoint.
func sampleOffset(clock func(int32) (time.Duration, error), n int) (time.Duration, error) {
	best, bestSpan := time.Duration(0), time.Duration(-1)
	for range max(n, 1) {
		m1, err := clock(clockMonotonic)
		if err != nil {
			return 0, err
		}
		r, err := clock(clockRealtime)
		if err != nil {
			return 0, err
		}
		m2, err := clock(clockMonotonic)
		if err != nil {
			return 0, err
		}
		span := m2 - m1
		if span < 0 {
			continue
		}
		if bestSpan < 0 || span < bestSpan {
			best, bestSpan = r-(m1+span/2), span
		}
	}
	if bestSpan < 0 {
		return 0, errors.New("monotonic clock went backwards in every sample")
	}
	return best, nil
}

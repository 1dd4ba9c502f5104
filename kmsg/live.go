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
		clock:  goClock(),
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
// dictionary lines apart, Raw kept), in a goroutine of its own: it is a
// [Reader] whose records arrive on a channel.
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
	*Reader
	probe prober // the newest record, for Behind; nil if it could not be opened
	out   chan Record

	finished chan struct{} // closed when the reader goroutine has exited
	next     atomic.Uint64 // sequence number of the next record the device will give

	mu  sync.Mutex
	err error
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
	r, probe, err := openReader(ctx, cfg)
	if err != nil {
		return nil, err
	}
	l := &Live{
		Reader:   r,
		probe:    probe,
		out:      make(chan Record, liveRecordBuffer),
		finished: make(chan struct{}),
	}
	// A record dropped before the resume point is not unread.
	r.dropped = func(seq uint64) { l.next.Store(seq + 1) }
	if cfg.start == startEnd && probe != nil {
		// Positioned after the newest record: [Live.Behind] must not count
		// the records before it as unread.
		if newest, ok, err := probe.newest(); err == nil && ok {
			l.next.Store(newest + 1)
		}
	}
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

// Behind reports whether records are waiting: in the channel of
// [Live.Records], or in the kernel's ring buffer not yet read. The kernel
// is asked through a non-blocking descriptor of Live's own that reads,
// each call, only the records written since the call before (the first
// call reads the whole buffer): about one extra read(2) per record written,
// plus one per call. A consumer that was starved of CPU uses it to tell
// "the kernel wrote nothing" from "I have not read it yet". It is exact
// for the records written before the call, including one the reader has
// read from the device but not yet put in the channel. (A consumer that
// reads in its own goroutine uses a [Reader], which needs no such
// question.)
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

// Close stops reading, closes the device and waits for the reader
// goroutine to exit. It is safe to call more than once; later calls return
// the first call's result.
func (l *Live) Close() error {
	err := l.Reader.Close()
	<-l.finished
	if l.probe != nil {
		l.probe.close()
	}
	return err
}

// run is the reader goroutine. It reads the device until it has no record
// left (EAGAIN) and then sends what it read, so that the consumer is woken
// once for the records of a burst rather than once per record.
func (l *Live) run() {
	defer close(l.finished)
	defer close(l.out)
	var recs []Record
	for {
		var err error
		recs, err = l.Read(recs[:0], time.Time{})
		for _, rec := range recs {
			select {
			case l.out <- rec:
				// Only now: until the record is in the channel, Behind
				// must still see it as unread in the kernel.
				l.next.Store(rec.Seq + 1)
			case <-l.closed:
				return
			}
		}
		if err != nil {
			if errors.Is(err, ErrClosed) {
				return
			}
			l.fail(err)
			return
		}
	}
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

// goClock returns the default clock seam: CLOCK_REALTIME and
// CLOCK_MONOTONIC read through Go's own clocks, which read the same two
// clocks through the vDSO, without a system call — the monotonic one as
// one clock_gettime(2) reading taken now plus the time Go's monotonic
// clock says has passed since (the pair is taken within a microsecond).
// Through clock_gettime(2) (golang.org/x/sys/unix does not use the vDSO),
// the resampling of the offset once a second cost a reader in a storm
// twelve system calls a second, each waking the runtime's sysmon thread.
// Any other clock id, or a failing first reading, goes to clock_gettime.
func goClock() func(int32) (time.Duration, error) {
	base, err := clockGettime(clockMonotonic)
	t0 := time.Now()
	if err != nil {
		return clockGettime
	}
	return func(id int32) (time.Duration, error) {
		switch id {
		case clockMonotonic:
			return base + time.Since(t0), nil
		case clockRealtime:
			return time.Duration(time.Now().UnixNano()), nil
		}
		return clockGettime(id)
	}
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

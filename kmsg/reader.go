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
	"unsafe"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// ErrClosed is what [Reader.Read] returns once the reader was closed, or
// the context given to [OpenReader] is done.
var ErrClosed = errors.New("kmsg: reader closed")

// Reader reads kernel log records from /dev/kmsg (or [WithDevice]'s path)
// in the caller's goroutine: [Reader.Read] returns the records the kernel
// has, waiting in the runtime's poller until there is one or a deadline
// passes. It is [Live] without Live's goroutine and channel, for a
// consumer that reads and handles records in one goroutine: a burst of
// records wakes one goroutine, not a reader and then its consumer, and
// when Read returns none the kernel had none left for it (no need to ask
// as [Live.Behind] does).
//
// Records, starting points, lost records (counted by [Reader.Lost]),
// Record.Wall and the strings' blocks are as for [Live], and the same
// options apply. Read must not be called from two goroutines at once;
// Close, Lost and BootID may be called from any.
type Reader struct {
	cfg    liveConfig
	dev    device
	rc     syscall.RawConn // the device's, nil for a device that is not a file
	setDL  func(time.Time) error
	dl     time.Time // the deadline set on the device
	log    zerolog.Logger
	bootID string

	closed   chan struct{} // closed by stop
	stopOnce sync.Once
	closeErr error
	stopCtx  func() bool

	lost    atomic.Uint64
	epipe   atomic.Uint64
	badRecs atomic.Uint64

	// reading state, owned by the goroutine that reads
	buf      []byte
	raws     []string
	strs     blockStrings // record strings share blocks: no allocation per record
	last     uint64
	haveLast bool
	offset   time.Duration    // CLOCK_REALTIME − CLOCK_MONOTONIC
	sampled  time.Time        // when offset was sampled (monotonic reading)
	dropped  func(seq uint64) // called for a record dropped before the resume point; nil: none
}

// OpenReader opens the kernel log device for [Reader.Read]. The options
// are [OpenLive]'s; an invalid one fails it before anything is opened.
// When ctx is done the device is closed and Read returns [ErrClosed].
func OpenReader(ctx context.Context, opts ...LiveOption) (*Reader, error) {
	cfg, err := newLiveConfig(opts)
	if err != nil {
		return nil, fmt.Errorf("kmsg: OpenReader: option %w", err)
	}
	r, probe, err := openReader(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if probe != nil {
		probe.close()
	}
	return r, nil
}

// openReader opens the device as cfg says and positions it. The prober it
// used to find the newest record is returned open (nil if it could not be
// opened) for [Live.Behind]; next is the sequence number the device gives
// next when starting at the end (0: unknown).
func openReader(ctx context.Context, cfg liveConfig) (r *Reader, probe prober, err error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("kmsg: opening %s: %w", cfg.device, err)
	}
	r = &Reader{
		cfg:    cfg,
		log:    cfg.log.With().Str("device", cfg.device).Logger(),
		closed: make(chan struct{}),
		buf:    make([]byte, readBufferSize),
	}
	if b, err := os.ReadFile(cfg.bootID); err == nil {
		r.bootID = strings.TrimSpace(string(b))
	} else {
		r.log.Warn().Err(err).Msg("kmsg: cannot read the boot id")
	}
	off, err := sampleOffset(cfg.clock, 8)
	if err != nil {
		return nil, nil, fmt.Errorf("kmsg: sampling the clocks: %w", err)
	}
	r.offset, r.sampled = off, time.Now()

	dev, err := cfg.open(cfg.device)
	if err != nil {
		return nil, nil, fmt.Errorf("kmsg: opening %s: %w", cfg.device, err)
	}
	whence := io.SeekStart
	if cfg.start == startEnd {
		whence = io.SeekEnd
	}
	if _, err := dev.Seek(0, whence); err != nil {
		dev.Close()
		return nil, nil, fmt.Errorf("kmsg: seeking %s: %w", cfg.device, err)
	}
	r.dev = dev
	if sc, ok := dev.(syscall.Conn); ok {
		if c, err := sc.SyscallConn(); err == nil {
			r.rc = c
		}
	}
	if d, ok := dev.(interface{ SetReadDeadline(time.Time) error }); ok && r.rc != nil {
		r.setDL = d.SetReadDeadline
	}
	probe, probeErr := cfg.probe(cfg.device)
	if probeErr != nil {
		r.log.Warn().Err(probeErr).Msg("kmsg: cannot open a second descriptor: Behind will say false")
		probe = nil
	}
	if r.cfg.start == startAfter {
		// A resume point beyond the newest record is from another boot
		// (or made up): waiting for the numbering to pass it would drop
		// every record until then, so read everything instead.
		if probe == nil {
			r.log.Warn().Err(probeErr).Msg("kmsg: cannot find the newest sequence number")
		} else if newest, ok, err := probe.newest(); err != nil {
			r.log.Warn().Err(err).Msg("kmsg: cannot find the newest sequence number")
		} else if ok && cfg.after > newest {
			r.log.Warn().Uint64("after_seq", cfg.after).Uint64("newest_seq", newest).
				Msg("kmsg: resume point is after the newest record (another boot?); reading the whole ring buffer")
			r.cfg.start = startBeginning
		}
	}
	if r.cfg.start == startAfter {
		r.last, r.haveLast = cfg.after, true
	}
	r.stopCtx = context.AfterFunc(ctx, r.stop)
	return r, probe, nil
}

// Read appends to dst the records the kernel has for the reader, at most
// a few hundred (a report is 30–80 records written within a millisecond),
// and returns it. When the kernel has none it waits until it has, or
// until deadline (the zero time: no deadline), and then returns dst with
// nothing appended and a nil error: the kernel had no record left for
// the reader at that moment. A deadline already past makes Read take
// only what is there, without waiting. Records at or before a
// [WithResumeAfter] point and malformed ones are not returned (the
// latter are counted and logged).
//
// After [Reader.Close], or once the context given to [OpenReader] is
// done, Read returns [ErrClosed]; a read error ends reading for good. A
// device that is not a file (a test's stand-in) has no deadlines: Read
// waits until it returns a record.
func (r *Reader) Read(dst []Record, deadline time.Time) ([]Record, error) {
	for {
		wait := deadline.IsZero() || time.Now().Before(deadline)
		var err error
		if r.rc != nil {
			r.raws, err = r.readBatch(r.raws[:0], wait, deadline)
		} else {
			r.raws, err = r.readOne(r.raws[:0])
		}
		n := len(dst)
		for _, raw := range r.raws {
			if rec, ok := r.decode(raw); ok {
				dst = append(dst, rec)
			}
		}
		switch {
		case r.stopping():
			return dst, ErrClosed
		case errors.Is(err, os.ErrDeadlineExceeded):
			return dst, nil
		case err == io.EOF:
			return dst, fmt.Errorf("kmsg: reading %s: %w", r.cfg.device, io.ErrUnexpectedEOF)
		case err != nil:
			return dst, fmt.Errorf("kmsg: reading %s: %w", r.cfg.device, err)
		case len(dst) > n || !wait:
			return dst, nil
		}
		// Only dropped records: wait on.
	}
}

// Lost returns the number of records lost so far, as [Live.Lost].
func (r *Reader) Lost() uint64 { return r.lost.Load() }

// BootID returns the random id of the running boot, read from
// /proc/sys/kernel/random/boot_id when opening ("" if unreadable).
func (r *Reader) BootID() string { return r.bootID }

// Close closes the device; a Read in progress returns [ErrClosed]. It is
// safe to call more than once; later calls return the first call's
// result.
func (r *Reader) Close() error {
	r.stopCtx()
	r.stop()
	if r.closeErr != nil {
		return fmt.Errorf("kmsg: closing %s: %w", r.cfg.device, r.closeErr)
	}
	return nil
}

// stop closes the device, which makes a pending read return.
func (r *Reader) stop() {
	r.stopOnce.Do(func() {
		close(r.closed)
		r.closeErr = r.dev.Close()
	})
}

// stopping reports whether stop was called.
func (r *Reader) stopping() bool {
	select {
	case <-r.closed:
		return true
	default:
		return false
	}
}

// maxReadBatch bounds the records one Read takes from the device.
const maxReadBatch = 256

// readBatch appends to raws the records the device has, read through the
// raw descriptor until EAGAIN (at most maxReadBatch). With wait it waits
// in the runtime's poller, until deadline, while the device has none.
func (r *Reader) readBatch(raws []string, wait bool, deadline time.Time) ([]string, error) {
	if !wait {
		deadline = time.Time{} // a deadline passed would fail the read before it is tried
	}
	if r.setDL != nil && !deadline.Equal(r.dl) {
		if err := r.setDL(deadline); err != nil {
			return raws, err
		}
		r.dl = deadline
	}
	var rerr error
	err := r.rc.Read(func(fd uintptr) bool {
		for len(raws) < maxReadBatch {
			n, err := readRaw(int(fd), r.buf)
			switch {
			case err == syscall.EAGAIN:
				return len(raws) > 0 || !wait // none yet: wait until readable
			case err == syscall.EINTR:
				continue
			case err == syscall.EPIPE:
				r.overrun()
				continue
			case err != nil:
				rerr = err
				return true
			case n <= 0:
				rerr = io.EOF
				return true
			}
			raws = append(raws, r.strs.str(r.buf[:n]))
		}
		return true
	})
	if err == nil {
		err = rerr
	}
	return raws, err
}

// readRaw is read(2) without the runtime's system-call bookkeeping
// (RawSyscall: no entersyscall/exitsyscall). The descriptor is
// non-blocking, so the call never blocks and takes about a microsecond;
// through syscall.Read, the first read after each wake-up also woke the
// runtime's sysmon thread, which then polled every 20 µs until the process
// was idle again: a fifth of the reader's CPU in a storm.
func readRaw(fd int, p []byte) (int, error) {
	r, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// readOne appends to raws the record of one Read of a device that is not a
// file (tests).
func (r *Reader) readOne(raws []string) ([]string, error) {
	n, err := r.dev.Read(r.buf)
	switch {
	case errors.Is(err, syscall.EPIPE):
		r.overrun()
		return raws, nil
	case errors.Is(err, syscall.EINTR) || errors.Is(err, syscall.EAGAIN):
		return raws, nil
	case err != nil:
		return raws, err
	case n == 0:
		return raws, nil
	}
	return append(raws, r.strs.str(r.buf[:n])), nil
}

// overrun counts an EPIPE: the device continues at the oldest record; the
// gap in sequence numbers tells how many were lost.
func (r *Reader) overrun() {
	c := r.epipe.Add(1)
	r.log.Debug().Uint64("overruns", c).Msg("kmsg: ring buffer overrun (EPIPE)")
}

// decode parses a record read, counting a gap before it. It returns false
// for a record not to hand out: a malformed one (counted and logged), or
// one at or before the WithResumeAfter point (then rec.Seq is its number).
func (r *Reader) decode(raw string) (rec Record, ok bool) {
	rec, err := ParseRecord(raw)
	if err != nil {
		c := r.badRecs.Add(1)
		r.log.Warn().Err(err).Uint64("malformed", c).Msg("kmsg: skipping malformed record")
		return Record{}, false
	}
	if !r.track(rec.Seq) {
		if r.dropped != nil {
			r.dropped(rec.Seq)
		}
		return rec, false
	}
	rec.Wall = r.wall(rec.Mono)
	return rec, true
}

// track checks seq against the previous record's, counting and logging a
// gap. It returns false for a record to drop: one at or before the
// WithResumeAfter point.
func (r *Reader) track(seq uint64) bool {
	if !r.haveLast {
		r.last, r.haveLast = seq, true
		return true
	}
	switch {
	case seq == r.last+1:
	case seq > r.last:
		n := seq - r.last - 1
		total := r.lost.Add(n)
		r.log.Warn().
			Uint64("lost", n).
			Uint64("lost_total", total).
			Uint64("after_seq", r.last).
			Uint64("next_seq", seq).
			Msg("kmsg: records lost: overwritten in the ring buffer before they were read")
	case r.cfg.start == startAfter && r.last == r.cfg.after && seq <= r.cfg.after:
		return false // still before the resume point
	default:
		// The sequence went backwards: the device was reset or is no
		// /dev/kmsg. Follow the new numbering.
		r.log.Warn().Uint64("after_seq", r.last).Uint64("next_seq", seq).
			Msg("kmsg: sequence number went backwards")
	}
	r.last = seq
	return true
}

// wall returns the wall-clock time of kernel timestamp mono, resampling
// the clock offset when it is older than offsetResample.
func (r *Reader) wall(mono time.Duration) time.Time {
	if time.Since(r.sampled) > offsetResample {
		if off, err := sampleOffset(r.cfg.clock, 4); err == nil {
			r.offset = off
		} else {
			r.log.Warn().Err(err).Msg("kmsg: sampling the clocks")
		}
		r.sampled = time.Now()
	}
	return time.Unix(0, 0).Add(r.offset + mono)
}

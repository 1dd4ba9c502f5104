package counterattr

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/oomscope/oomscope/enrich/cgroupfs"
	"github.com/oomscope/oomscope/kmsg"
)

// readBuffer holds one /dev/kmsg record: the kernel refuses a read(2)
// smaller than the record (EINVAL); records are at most 8 KiB of text
// plus the header and dictionary.
const readBuffer = 16 << 10

// KernelLog is a [Log] on a /dev/kmsg descriptor of its own, opened
// non-blocking and positioned after the newest record. It waits for
// records in the Go runtime's poller (the descriptor's read deadline),
// not in a poll(2) system call: a thread blocked in a system call keeps
// the runtime's sysmon polling every 20 µs, and the tracker waits
// [DefaultSettle] at every kill line — about a hundred wake-ups per kill
// in a storm, when poll(2) did the waiting.
type KernelLog struct {
	f   *os.File
	rc  syscall.RawConn
	buf []byte
	dl  bool // a read deadline is set (Wait's)
}

// OpenKernelLog opens the kernel log device (usually /dev/kmsg).
func OpenKernelLog(device string) (*KernelLog, error) {
	fd, err := unix.Open(device, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("counterattr: open %s: %w", device, err)
	}
	if _, err := unix.Seek(fd, 0, unix.SEEK_END); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("counterattr: seek to the end of %s: %w", device, err)
	}
	// Non-blocking, so os.NewFile registers it with the runtime's poller.
	f := os.NewFile(uintptr(fd), device)
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("counterattr: %s: %w", device, err)
	}
	return &KernelLog{f: f, rc: rc, buf: make([]byte, readBuffer)}, nil
}

// Read implements [Log]: one read(2) per record until EAGAIN. A record
// that does not parse is skipped (it cannot be a kill line the parser
// would take either).
func (l *KernelLog) Read(dst []kmsg.Record) ([]kmsg.Record, bool, error) {
	lost := false
	if l.dl {
		// Wait's deadline, passed by now, would fail the read untried.
		if err := l.f.SetReadDeadline(time.Time{}); err != nil {
			return dst, false, fmt.Errorf("counterattr: reading the kernel log: %w", err)
		}
		l.dl = false
	}
	var rerr error
	err := l.rc.Read(func(fd uintptr) bool {
		for {
			n, err := unix.Read(int(fd), l.buf)
			switch {
			case errors.Is(err, unix.EAGAIN):
				return true
			case errors.Is(err, unix.EINTR):
				continue
			case errors.Is(err, unix.EPIPE):
				// Overwritten before read: the descriptor moved on to
				// the oldest record still there.
				lost = true
				continue
			case err != nil:
				rerr = err
				return true
			case n == 0:
				return true
			}
			rec, perr := kmsg.ParseRecord(string(l.buf[:n]))
			if perr != nil {
				continue
			}
			rec.Raw = "" // not kept: only the text is looked at
			dst = append(dst, rec)
		}
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return dst, lost, fmt.Errorf("counterattr: reading the kernel log: %w", err)
	}
	return dst, lost, nil
}

// Wait implements [Log]: it parks the goroutine in the runtime's poller
// until the descriptor turns readable or d has passed. It may return
// early (a readiness left from before the last Read); the tracker reads
// and looks at the time after every Wait.
func (l *KernelLog) Wait(d time.Duration) error {
	if err := l.f.SetReadDeadline(time.Now().Add(d)); err != nil {
		return fmt.Errorf("counterattr: waiting for the kernel log: %w", err)
	}
	l.dl = true
	waited := false
	err := l.rc.Read(func(uintptr) bool {
		// The first call says "not yet", so that the runtime waits for
		// readability; the next, after it, ends the wait.
		if !waited {
			waited = true
			return false
		}
		return true
	})
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("counterattr: waiting for the kernel log: %w", err)
	}
	return nil
}

// Close implements [Log].
func (l *KernelLog) Close() error { return l.f.Close() }

// KernelCounters is [Counters] on a procfs and a cgroup filesystem.
type KernelCounters struct {
	procRoot string
	fs       *cgroupfs.FS
}

// NewKernelCounters reads the node's counter from procRoot/vmstat and the
// cgroups' from fs.
func NewKernelCounters(procRoot string, fs *cgroupfs.FS) *KernelCounters {
	return &KernelCounters{procRoot: procRoot, fs: fs}
}

// Node implements [Counters].
func (k *KernelCounters) Node() (uint64, error) { return cgroupfs.NodeOOMKills(k.procRoot) }

// Cgroup implements [Counters].
func (k *KernelCounters) Cgroup(path string) (cgroupfs.OOMKillCounter, error) {
	return k.fs.OOMKills(path)
}

// Children implements [Counters].
func (k *KernelCounters) Children(path string, max int) ([]string, error) {
	return k.fs.Children(path, max)
}

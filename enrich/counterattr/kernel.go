package counterattr

import (
	"errors"
	"fmt"
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
// non-blocking and positioned after the newest record.
type KernelLog struct {
	fd  int
	buf []byte
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
	return &KernelLog{fd: fd, buf: make([]byte, readBuffer)}, nil
}

// Read implements [Log]: one read(2) per record until EAGAIN. A record
// that does not parse is skipped (it cannot be a kill line the parser
// would take either).
func (l *KernelLog) Read(dst []kmsg.Record) ([]kmsg.Record, bool, error) {
	lost := false
	for {
		n, err := unix.Read(l.fd, l.buf)
		switch {
		case errors.Is(err, unix.EAGAIN):
			return dst, lost, nil
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EPIPE):
			// Overwritten before read: the descriptor moved on to the
			// oldest record still there.
			lost = true
			continue
		case err != nil:
			return dst, lost, fmt.Errorf("counterattr: reading the kernel log: %w", err)
		case n == 0:
			return dst, lost, nil
		}
		rec, perr := kmsg.ParseRecord(string(l.buf[:n]))
		if perr != nil {
			continue
		}
		rec.Raw = "" // not kept: only the text is looked at
		dst = append(dst, rec)
	}
}

// Wait implements [Log] with poll(2).
func (l *KernelLog) Wait(d time.Duration) error {
	ms := int((d + time.Millisecond - 1) / time.Millisecond)
	fds := []unix.PollFd{{Fd: int32(l.fd), Events: unix.POLLIN}}
	for {
		_, err := unix.Poll(fds, ms)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("counterattr: waiting for the kernel log: %w", err)
		}
		return nil
	}
}

// Close implements [Log].
func (l *KernelLog) Close() error { return unix.Close(l.fd) }

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

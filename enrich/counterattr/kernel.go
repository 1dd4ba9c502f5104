package counterattr

import (
	"context"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/oomscope/oomscope/enrich/cgroupfs"
	"github.com/oomscope/oomscope/kmsg"
)

// KernelLog is a [Log] on a [kmsg.Reader] of its own, positioned after
// the newest record when opened: the same reading as the daemon's (read(2)
// without the runtime's system-call bookkeeping until EAGAIN, waiting in
// the runtime's poller, not in a poll(2) system call). The tracker waits
// [DefaultSettle] at every kill line, and a thread blocked in a system
// call keeps the runtime's sysmon polling every 20 µs.
type KernelLog struct {
	r       *kmsg.Reader
	pending []kmsg.Record // read by Wait, returned by the next Read
	lost    uint64        // r.Lost() when Read last looked
}

// past is a deadline already passed: Read takes what is there.
var past = time.Unix(0, 1)

// OpenKernelLog opens the kernel log device (usually /dev/kmsg).
func OpenKernelLog(device string) (*KernelLog, error) {
	// The daemon's own reader logs malformed records and overruns; this
	// one reports its losses to the tracker (the "lost" batch outcome).
	r, err := kmsg.OpenReader(context.Background(), kmsg.WithDevice(device), kmsg.WithStartAtEnd(), kmsg.WithLogger(zerolog.Nop()))
	if err != nil {
		return nil, fmt.Errorf("counterattr: %w", err)
	}
	return &KernelLog{r: r}, nil
}

// Read implements [Log]: every record up to the log's end (a Reader's
// Read takes at most a few hundred). Malformed records are skipped (they
// cannot be a kill line the parser would take either).
func (l *KernelLog) Read(dst []kmsg.Record) ([]kmsg.Record, bool, error) {
	dst = append(dst, l.pending...)
	l.pending = l.pending[:0]
	var err error
	for {
		n := len(dst)
		if dst, err = l.r.Read(dst, past); err != nil || len(dst) == n {
			break
		}
	}
	lost := l.r.Lost() != l.lost
	l.lost = l.r.Lost()
	if err != nil {
		return dst, lost, fmt.Errorf("counterattr: reading the kernel log: %w", err)
	}
	return dst, lost, nil
}

// Wait implements [Log]: it returns once records arrived (kept for the
// next Read) or d has passed.
func (l *KernelLog) Wait(d time.Duration) error {
	if len(l.pending) > 0 {
		return nil
	}
	var err error
	if l.pending, err = l.r.Read(l.pending, time.Now().Add(d)); err != nil {
		return fmt.Errorf("counterattr: waiting for the kernel log: %w", err)
	}
	return nil
}

// Close implements [Log].
func (l *KernelLog) Close() error { return l.r.Close() }

// KernelCounters is [Counters] on a procfs and a cgroup filesystem.
type KernelCounters struct {
	node *cgroupfs.NodeKills
	fs   *cgroupfs.FS
}

// NewKernelCounters reads the node's counter from procRoot/vmstat and the
// cgroups' from fs.
func NewKernelCounters(procRoot string, fs *cgroupfs.FS) *KernelCounters {
	return &KernelCounters{node: cgroupfs.NewNodeKills(procRoot), fs: fs}
}

// Node implements [Counters].
func (k *KernelCounters) Node() (uint64, error) { return k.node.Read() }

// Cgroup implements [Counters].
func (k *KernelCounters) Cgroup(path string) (cgroupfs.OOMKillCounter, error) {
	return k.fs.OOMKills(path)
}

// Children implements [Counters].
func (k *KernelCounters) Children(path string, max int) ([]string, error) {
	return k.fs.Children(path, max)
}

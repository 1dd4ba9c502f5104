package cgroupfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

// maxVmstatBytes bounds the buffer NodeKills reads /proc/vmstat into
// (about 4 KB on 6.x kernels).
const maxVmstatBytes = 1 << 20

// NodeKills reads the node's OOM-kill counter, procRoot/vmstat oom_kill,
// through a descriptor it keeps open: the counters read it at every kill
// of a storm, and a pread(2) at offset 0 of the open file makes the
// kernel generate it afresh for a third of the cost of opening, reading
// and closing it (docs/performance.md). Only the oom_kill line is parsed.
//
// NodeKills is safe for concurrent use. The descriptor is opened on the
// first Read, again after a failed one, and closed by Close.
type NodeKills struct {
	path string

	mu  sync.Mutex
	f   *os.File
	buf []byte
}

// NewNodeKills returns a reader of procRoot/vmstat oom_kill.
func NewNodeKills(procRoot string) *NodeKills {
	return &NodeKills{path: filepath.Join(procRoot, "vmstat")}
}

// Read returns the counter now.
func (n *NodeKills) Read() (uint64, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	b, err := n.read()
	if err != nil {
		return 0, fmt.Errorf("read node OOM kill counter: %w", err)
	}
	return vmstatOOMKill(b, n.path)
}

// read returns the whole file as the kernel generates it now, in n.buf.
func (n *NodeKills) read() ([]byte, error) {
	if n.f == nil {
		f, err := os.Open(n.path)
		if err != nil {
			return nil, err
		}
		n.f = f
	}
	if n.buf == nil {
		n.buf = make([]byte, 8<<10)
	}
	for {
		k, err := n.f.ReadAt(n.buf, 0)
		if err != nil && !errors.Is(err, io.EOF) {
			n.f.Close()
			n.f = nil
			return nil, err
		}
		if k == len(n.buf) && len(n.buf) < maxVmstatBytes {
			// Perhaps more than the buffer: the counter might be past it.
			n.buf = make([]byte, 2*len(n.buf))
			continue
		}
		return n.buf[:k], nil
	}
}

// Close closes the descriptor.
func (n *NodeKills) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.f == nil {
		return nil
	}
	err := n.f.Close()
	n.f = nil
	return err
}

// nodeOOMKills reads the node's OOM-kill counter, procRoot/vmstat
// oom_kill, once (see [NodeKills] to read it repeatedly).
func nodeOOMKills(procRoot string) (uint64, error) {
	p := filepath.Join(procRoot, "vmstat")
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, fmt.Errorf("read node OOM kill counter: %w", err)
	}
	return vmstatOOMKill(b, p)
}

// vmstatOOMKill finds the "oom_kill N" line of a vmstat file. procfs has
// no /proc/vmstat parser (only sysfs's per-NUMA-node vmstat).
func vmstatOOMKill(b []byte, path string) (uint64, error) {
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		v, ok := bytes.CutPrefix(line, []byte("oom_kill "))
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("read node OOM kill counter: %s: oom_kill %q: %w", path, v, err)
		}
		return n, nil
	}
	return 0, fmt.Errorf("read node OOM kill counter: %s has no oom_kill (kernel older than 4.13?)", path)
}

package kmsg

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
)

// maxProbeRecords bounds the records one probe call reads: a ring buffer
// holds a few ten thousand at most.
const maxProbeRecords = 1 << 20

// prober tells the sequence number of the newest record of the kernel log
// device. [Live.Behind] asks it every time; it is not called concurrently.
type prober interface {
	// newest returns the newest sequence number; ok is false if the device
	// has given no record yet.
	newest() (seq uint64, ok bool, err error)
	close() error
}

// seqProbe is the prober of /dev/kmsg: a non-blocking descriptor of its
// own, opened at the oldest record, that each call reads from where the
// last one stopped until the device reports EAGAIN. The first call reads
// the whole ring buffer; later ones only the records written since, plus
// the read that says there are none: about one extra read(2) per record,
// however often it is asked. What it says is exact for the records
// written before the call: the device has none left for it, so the last
// one it read is the newest.
type seqProbe struct {
	path string
	mu   sync.Mutex // guards fd and buf against close during a call
	fd   int        // -1 once closed
	buf  []byte
	seq  uint64
	ok   bool
}

// openProbe opens path for a [seqProbe].
func openProbe(path string) (prober, error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	return &seqProbe{path: path, fd: fd, buf: make([]byte, readBufferSize)}, nil
}

var errProbeClosed = errors.New("probe closed")

func (p *seqProbe) newest() (uint64, bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fd < 0 {
		return 0, false, errProbeClosed
	}
	for range maxProbeRecords {
		n, err := syscall.Read(p.fd, p.buf)
		switch {
		case err == syscall.EAGAIN || err == nil && n <= 0:
			return p.seq, p.ok, nil
		case err == syscall.EPIPE || err == syscall.EINTR:
			// EPIPE: records were overwritten before this descriptor
			// read them; it goes on at the oldest one, and the newest is
			// still ahead.
			continue
		case err != nil:
			return 0, false, fmt.Errorf("reading %s: %w", p.path, err)
		}
		head, _, found := strings.Cut(string(p.buf[:n]), ";")
		var rec Record
		if found && parseHeader(head, &rec) == nil {
			p.seq, p.ok = rec.Seq, true
		}
	}
	return p.seq, p.ok, nil
}

func (p *seqProbe) close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fd < 0 {
		return nil
	}
	err := syscall.Close(p.fd)
	p.fd = -1
	return err
}

// funcProbe is a prober of a function (tests, through [withNewest]).
type funcProbe struct {
	path string
	f    func(path string) (uint64, bool, error)
}

func (p funcProbe) newest() (uint64, bool, error) { return p.f(p.path) }
func (funcProbe) close() error                    { return nil }

// newestSeq returns the sequence number of the newest record of the
// kernel log device at path, reading the whole buffer through a
// descriptor of its own. ok is false if no record could be read.
func newestSeq(path string) (seq uint64, ok bool, err error) {
	p, err := openProbe(path)
	if err != nil {
		return 0, false, err
	}
	defer p.close()
	return p.newest()
}

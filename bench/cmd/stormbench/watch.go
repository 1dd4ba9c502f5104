package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/oomscope/oomscope/kmsg"
)

// watcher is the harness's own reader of the kernel log: for each victim
// pid the kernel timestamp of its "Killed process" line (the start of
// every latency), and what the kernel printed: report headers (the
// oom-kill: summary) per victim cgroup, and bare victim lines.
type watcher struct {
	live *kmsg.Live
	done chan struct{}

	mu       sync.Mutex
	killed   map[int]victimLine // pid -> its victim line
	summary  map[string]int     // task_memcg of oom-kill: summaries -> count
	lastOOM  time.Duration      // newest oom-killer record's stamp
	hasOOM   bool
	records  uint64
	minDelay time.Duration // min over records of (arrival - stamp): the clock check
	hasDelay bool
}

type victimLine struct {
	mono time.Duration
	seq  uint64
}

func startWatcher(ctx context.Context, log zerolog.Logger) (*watcher, error) {
	last, ok, err := lastOOMInRing()
	if err != nil {
		return nil, err
	}
	live, err := kmsg.OpenLive(ctx, kmsg.WithStartAtEnd(), kmsg.WithLogger(log))
	if err != nil {
		return nil, err
	}
	w := &watcher{live: live, done: make(chan struct{}), killed: map[int]victimLine{}, summary: map[string]int{}, lastOOM: last, hasOOM: ok}
	go w.run()
	return w, nil
}

func (w *watcher) stop() {
	_ = w.live.Close()
	<-w.done
}

func (w *watcher) run() {
	defer close(w.done)
	for rec := range w.live.Records() {
		now := monoNow()
		w.mu.Lock()
		w.records++
		if rec.HasMono {
			if d := now - rec.Mono; !w.hasDelay || d < w.minDelay {
				w.minDelay, w.hasDelay = d, true
			}
		}
		if rec.Facility == 0 {
			w.line(rec)
		}
		w.mu.Unlock()
	}
}

// line notes one kernel record (w.mu held).
func (w *watcher) line(rec kmsg.Record) {
	t := rec.Text
	if pid, ok := killedPID(t); ok {
		w.killed[pid] = victimLine{mono: rec.Mono, seq: rec.Seq}
		w.lastOOM, w.hasOOM = max(w.lastOOM, rec.Mono), true
		return
	}
	if strings.Contains(t, "invoked oom-killer") {
		w.lastOOM, w.hasOOM = max(w.lastOOM, rec.Mono), true
		return
	}
	if strings.HasPrefix(t, "oom-kill:") {
		if _, rest, ok := strings.Cut(t, ",task_memcg="); ok {
			cg, _, _ := strings.Cut(rest, ",task=")
			w.summary[cg]++
		}
	}
}

// killedPID reads the victim pid of a "... Killed process <pid> (comm) ..."
// line.
func killedPID(text string) (int, bool) {
	const marker = "Killed process "
	i := strings.Index(text, marker)
	if i < 0 {
		return 0, false
	}
	s := text[i+len(marker):]
	j := 0
	for j < len(s) && s[j] >= '0' && s[j] <= '9' {
		j++
	}
	pid, err := strconv.Atoi(s[:j])
	return pid, err == nil && pid > 0
}

// victim returns the victim line of pid.
func (w *watcher) victim(pid int) (victimLine, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	v, ok := w.killed[pid]
	return v, ok
}

// counts returns how many victim lines of pids the kernel printed and how
// many report headers (summaries) it printed for cgroups.
func (w *watcher) counts(pids map[int]string, cgroups []string) (victims, headers int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for pid := range pids {
		if _, ok := w.killed[pid]; ok {
			victims++
		}
	}
	for _, cg := range cgroups {
		headers += w.summary[cg]
	}
	return victims, headers
}

// clock returns the smallest delay seen between a record's kernel stamp
// and its arrival here (a negative one would mean that the kernel's
// timestamps run ahead of CLOCK_MONOTONIC).
func (w *watcher) clock() (time.Duration, uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.minDelay, w.records
}

// waitFreshRatelimit waits until the newest oom-killer record is more
// than 5 s old: the kernel's rate limit of report headers (10 per 5 s)
// then starts a new window with the next OOM.
func (w *watcher) waitFreshRatelimit(ctx context.Context) error {
	w.mu.Lock()
	last, ok := w.lastOOM, w.hasOOM
	w.mu.Unlock()
	if !ok {
		return nil
	}
	wait := last + 5300*time.Millisecond - monoNow()
	if wait <= 0 {
		return nil
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(wait):
		return nil
	}
}

func monoNow() time.Duration {
	d, err := kmsg.KernelClock()
	if err != nil {
		panic(fmt.Sprintf("clock_gettime: %v", err)) // never fails on Linux
	}
	return d
}

// lastOOMInRing scans the ring buffer (non-blocking) for the newest
// oom-killer record.
func lastOOMInRing() (time.Duration, bool, error) {
	fd, err := syscall.Open("/dev/kmsg", syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return 0, false, fmt.Errorf("open /dev/kmsg: %w", err)
	}
	defer syscall.Close(fd)
	buf := make([]byte, 16<<10)
	var last time.Duration
	var found bool
	for {
		n, err := syscall.Read(fd, buf)
		switch {
		case errors.Is(err, syscall.EAGAIN):
			return last, found, nil
		case errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.EINTR):
			continue
		case err != nil:
			return 0, false, fmt.Errorf("read /dev/kmsg: %w", err)
		case n == 0:
			return last, found, nil
		}
		rec, err := kmsg.ParseRecord(string(buf[:n]))
		if err != nil {
			continue
		}
		if strings.Contains(rec.Text, "invoked oom-killer") || strings.Contains(rec.Text, "Killed process") {
			last, found = rec.Mono, true
		}
	}
}

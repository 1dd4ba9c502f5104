package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/oomscope/oomscope/bench/internal/wire"
)

// child is one reader process.
type child struct {
	name  string
	cmd   *exec.Cmd
	ready chan struct{}
	done  chan struct{} // closed when the process was waited for
	log   *os.File

	readyOnce sync.Once
	mu        sync.Mutex
	lines     []wire.Line
	badLines  int
	waitErr   error
	state     *os.ProcessState
}

// childSpec says how to start a reader and how to tell it is ready.
type childSpec struct {
	name, bin string
	args      []string
	// wire: stdout is bench/internal/wire lines (ready on EventReady);
	// otherwise stdout goes to the log and readyText on stderr says ready.
	wire      bool
	readyText string
	env       []string // added to the harness's environment
}

func startChild(dir string, s childSpec) (*child, error) {
	logf, err := os.Create(filepath.Join(dir, s.name+".log"))
	if err != nil {
		return nil, err
	}
	c := &child{name: s.name, ready: make(chan struct{}), done: make(chan struct{}), log: logf}
	cmd := exec.Command(s.bin, s.args...)
	cmd.Env = append(os.Environ(), s.env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", s.name, err)
	}
	c.cmd = cmd
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if s.wire {
			c.readWire(stdout)
		} else {
			c.copyLog(stdout, "")
		}
	}()
	go func() {
		defer wg.Done()
		c.copyLog(stderr, s.readyText)
	}()
	go func() {
		wg.Wait()
		err := cmd.Wait()
		c.mu.Lock()
		c.waitErr, c.state = err, cmd.ProcessState
		c.mu.Unlock()
		logf.Close()
		close(c.done)
	}()
	return c, nil
}

func (c *child) setReady() { c.readyOnce.Do(func() { close(c.ready) }) }

func (c *child) readWire(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var l wire.Line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			c.mu.Lock()
			c.badLines++
			c.mu.Unlock()
			continue
		}
		if l.Event == wire.EventReady {
			c.setReady()
			continue
		}
		c.mu.Lock()
		c.lines = append(c.lines, l)
		c.mu.Unlock()
	}
}

func (c *child) copyLog(r io.Reader, readyText string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		c.mu.Lock()
		fmt.Fprintln(c.log, line)
		c.mu.Unlock()
		if readyText != "" && strings.Contains(line, readyText) {
			c.setReady()
		}
	}
}

// waitReady waits until the reader said it is reading.
func (c *child) waitReady(ctx context.Context, d time.Duration) error {
	select {
	case <-c.ready:
		return nil
	case <-c.done:
		return fmt.Errorf("%s exited before it was ready: %v (log: %s)", c.name, c.waitErr, c.log.Name())
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return fmt.Errorf("%s not ready after %v (log: %s)", c.name, d, c.log.Name())
	}
}

// reports returns the report lines so far.
func (c *child) reports() []wire.Line {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []wire.Line
	for _, l := range c.lines {
		if l.Event == wire.EventReport {
			out = append(out, l)
		}
	}
	return out
}

// stats returns the reader's last line (oomreader), if it printed one.
func (c *child) stats() (wire.Line, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := len(c.lines) - 1; i >= 0; i-- {
		if c.lines[i].Event == wire.EventStats {
			return c.lines[i], true
		}
	}
	return wire.Line{}, false
}

// stop sends SIGTERM, waits up to d, then kills.
func (c *child) stop(d time.Duration) error {
	select {
	case <-c.done:
	default:
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(d):
			_ = c.cmd.Process.Kill()
			<-c.done
			return fmt.Errorf("%s did not stop within %v of SIGTERM; killed", c.name, d)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var ee *exec.ExitError
	if c.waitErr != nil && !(errors.As(c.waitErr, &ee) && ee.Sys().(syscall.WaitStatus).Signaled() && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGTERM) {
		return fmt.Errorf("%s: %v (log: %s)", c.name, c.waitErr, c.log.Name())
	}
	return nil
}

// kill ends the process at once (errors, Ctrl-C).
func (c *child) kill() {
	select {
	case <-c.done:
	default:
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// cpuLife is the rusage of the exited process: user+system CPU.
//
// Its ru_maxrss is no measure of the process's peak RSS: Go starts a
// child with clone(CLONE_VM|CLONE_VFORK), and at execve the kernel keeps
// the high-water mark of the mm the child leaves, which is the harness's
// (the readers all showed the harness's RSS). See peakRSS.
func (c *child) cpuLife() (cpu time.Duration, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == nil {
		return 0, false
	}
	return c.state.UserTime() + c.state.SystemTime(), true
}

// peakRSS is the running process's peak RSS so far: VmHWM of
// /proc/<pid>/status, the high-water mark of the mm it exec'd.
func (c *child) peakRSS() (int64, error) { return vmHWM(c.cmd.Process.Pid) }

func vmHWM(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/%d/status: VmHWM %q", pid, v)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmHWM", pid)
}

// cpuNow is the CPU time the running process used so far: the sum of its
// threads' run time (/proc/<pid>/task/*/schedstat, ns; Go's threads live
// as long as the process), or /proc/<pid>/stat (10 ms ticks) when
// schedstat is missing.
func (c *child) cpuNow() (cpuSample, error) {
	return processCPU(c.cmd.Process.Pid)
}

// cpuSample is a process's CPU time and the number of times its threads
// were put on a CPU (schedstat's run count: wake-ups and preemptions).
type cpuSample struct {
	cpu    time.Duration
	slices int64
}

func processCPU(pid int) (cpuSample, error) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err == nil && len(tasks) > 0 {
		var s cpuSample
		for _, t := range tasks {
			b, err := os.ReadFile(t)
			if err != nil {
				continue // the thread exited meanwhile
			}
			f := strings.Fields(string(b))
			if len(f) < 3 {
				continue
			}
			ns, err1 := strconv.ParseInt(f[0], 10, 64)
			n, err2 := strconv.ParseInt(f[2], 10, 64)
			if err1 != nil || err2 != nil {
				return cpuSample{}, fmt.Errorf("%s: %q", t, b)
			}
			s.cpu += time.Duration(ns)
			s.slices += n
		}
		return s, nil
	}
	cpu, err := statCPU(pid)
	return cpuSample{cpu: cpu}, err
}

// statCPU is utime+stime of /proc/<pid>/stat (USER_HZ = 100 on Linux).
func statCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, b)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, b)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, b)
	}
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}

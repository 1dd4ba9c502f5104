package live_test

import (
	"bufio"
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
	"testing"
	"time"

	"github.com/oomscope/oomscope/internal/cgscratch"
)

// buildAlloc builds the allocator helper into a temporary directory and
// links it under every name in names (a process's comm is the base name of
// the file it executed), returning name -> path.
func buildAlloc(t *testing.T, names ...string) map[string]string {
	t.Helper()
	dir := t.TempDir()
	first := filepath.Join(dir, names[0])
	cmd := exec.Command("go", "build", "-o", first, "github.com/oomscope/oomscope/e2e/alloc")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build e2e/alloc: %v\n%s", err, out)
	}
	paths := map[string]string{names[0]: first}
	for _, n := range names[1:] {
		p := filepath.Join(dir, n)
		if err := os.Link(first, p); err != nil {
			t.Fatalf("link %s: %v", p, err)
		}
		paths[n] = p
	}
	return paths
}

// proc is one allocator process tree: the parent and the children it
// started, as reported on its stdout.
type proc struct {
	cmd   *exec.Cmd
	pid   int
	comm  string
	stdin io.WriteCloser

	exited  chan struct{}
	waitErr error

	mu        sync.Mutex
	changed   chan struct{}
	children  map[int]string // pid -> comm, from "ready ... role=child"
	allocated map[int]bool
	output    []string
}

// startProc starts bin with args (-gate is added), waits for its ready
// line, moves it into cg and opens the gate: every child it starts is
// born in cg.
func startProc(t *testing.T, bin string, cg *cgscratch.Cgroup, args ...string) *proc {
	t.Helper()
	p, err := spawn(bin, cg, args...)
	if err != nil {
		t.Fatalf("start %s %v in %s: %v", filepath.Base(bin), args, cg.Path, err)
	}
	t.Cleanup(p.kill)
	return p
}

func spawn(bin string, cg *cgscratch.Cgroup, args ...string) (*proc, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, append([]string{"-gate"}, args...)...)
	cmd.Stdout, cmd.Stderr = w, w
	// If the test dies, so does the allocator (its children stay in the
	// scratch cgroup, which the next run removes: cgscratch.RemoveStale).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		r.Close()
		w.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, err
	}
	w.Close()
	p := &proc{
		cmd: cmd, pid: cmd.Process.Pid, stdin: stdin, exited: make(chan struct{}),
		changed: make(chan struct{}, 1), children: map[int]string{}, allocated: map[int]bool{},
	}
	go p.read(r)
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
		p.notify()
	}()
	// The ready line comes before the gate.
	if err := p.waitFor(10*time.Second, "its ready line", func() bool { return len(p.output) > 0 }); err != nil {
		p.kill()
		return nil, err
	}
	if err := cg.AddProc(p.pid); err != nil {
		p.kill()
		return nil, err
	}
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", p.pid))
	if err != nil {
		p.kill()
		return nil, fmt.Errorf("read comm: %w", err)
	}
	p.comm = strings.TrimSpace(string(comm))
	if err := p.release(); err != nil {
		p.kill()
		return nil, err
	}
	return p, nil
}

// read collects the tree's output lines.
func (p *proc) read(r io.ReadCloser) {
	defer r.Close()
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		f := fields(line)
		pid, _ := strconv.Atoi(f["pid"])
		var comm string
		if strings.HasPrefix(line, "ready ") && f["role"] == "child" {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
			comm = strings.TrimSpace(string(b))
		}
		p.mu.Lock()
		p.output = append(p.output, line)
		switch {
		case strings.HasPrefix(line, "ready ") && f["role"] == "child":
			p.children[pid] = comm
		case strings.HasPrefix(line, "allocated "):
			p.allocated[pid] = true
		}
		p.mu.Unlock()
		p.notify()
	}
}

func (p *proc) notify() {
	select {
	case p.changed <- struct{}{}:
	default:
	}
}

// waitFor waits until cond (called with p.mu held) is true.
func (p *proc) waitFor(timeout time.Duration, what string, cond func() bool) error {
	deadline := time.After(timeout)
	for {
		p.mu.Lock()
		ok := cond()
		out := strings.Join(p.output, "\n")
		p.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-p.changed:
		case <-deadline:
			return fmt.Errorf("pid %d: no %s within %v; output:\n%s", p.pid, what, timeout, out)
		case <-p.exited:
			p.mu.Lock()
			ok := cond()
			p.mu.Unlock()
			if ok {
				return nil
			}
			// Output may still be in flight: give it a moment.
			select {
			case <-p.changed:
				continue
			case <-time.After(200 * time.Millisecond):
			}
			p.mu.Lock()
			ok = cond()
			p.mu.Unlock()
			if ok {
				return nil
			}
			return fmt.Errorf("pid %d exited (%v) before %s; output:\n%s", p.pid, p.waitErr, what, out)
		}
	}
}

// release sends a line to the process's gate.
func (p *proc) release() error {
	if _, err := io.WriteString(p.stdin, "go\n"); err != nil {
		return fmt.Errorf("open the gate of pid %d: %w", p.pid, err)
	}
	return nil
}

// waitAllocated waits until the parent printed its "allocated" line.
func (p *proc) waitAllocated(t *testing.T) {
	t.Helper()
	if err := p.waitFor(10*time.Second, "allocated line", func() bool { return p.allocated[p.pid] }); err != nil {
		t.Fatal(err)
	}
}

// waitChildren waits until n children printed their ready line and returns
// them (pid -> comm).
func (p *proc) waitChildren(t *testing.T, n int) map[int]string {
	t.Helper()
	if err := p.waitFor(30*time.Second, fmt.Sprintf("%d children", n), func() bool { return len(p.children) >= n }); err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[int]string, len(p.children))
	for k, v := range p.children {
		out[k] = v
	}
	return out
}

// waitExit waits for the parent to exit and reports whether SIGKILL ended it.
func (p *proc) waitExit(timeout time.Duration) (killed bool, err error) {
	select {
	case <-p.exited:
	case <-time.After(timeout):
		return false, fmt.Errorf("pid %d (%s) still running after %v", p.pid, p.comm, timeout)
	}
	var ee *exec.ExitError
	if errors.As(p.waitErr, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return ws.Signal() == syscall.SIGKILL, nil
		}
	}
	return false, nil
}

// alive reports whether the parent has not exited.
func (p *proc) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// kill kills the parent (children are killed with their cgroup).
func (p *proc) kill() {
	if p.alive() {
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// fields parses "k=v k=v" words.
func fields(line string) map[string]string {
	m := map[string]string{}
	for _, w := range strings.Fields(line) {
		if k, v, ok := strings.Cut(w, "="); ok {
			m[k] = v
		}
	}
	return m
}

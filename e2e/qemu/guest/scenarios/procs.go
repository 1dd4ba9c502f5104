//go:build linux

package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// allocPath is the allocator inside the initramfs.
const allocPath = "/bin/alloc"

// exitInfo is what wait4 reported for one pid.
type exitInfo struct {
	status syscall.WaitStatus
	monoUs int64
}

func (e exitInfo) String() string {
	switch {
	case e.status.Signaled():
		return "signal:" + sigName(e.status.Signal())
	case e.status.Exited():
		return "exit:" + strconv.Itoa(e.status.ExitStatus())
	}
	return fmt.Sprintf("status:%#x", uint32(e.status))
}

func sigName(s syscall.Signal) string {
	switch s {
	case syscall.SIGKILL:
		return "SIGKILL"
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGSEGV:
		return "SIGSEGV"
	}
	return strconv.Itoa(int(s))
}

// procTable tracks every process the runner started and every process that
// got reparented to it (the runner is a child subreaper, so an allocator's
// children are reaped here once their parent died).
type procTable struct {
	mu     sync.Mutex
	procs  map[int]*Proc
	order  []*Proc
	exits  map[int]exitInfo
	killed map[int]bool // pids the runner itself signalled
	log    func(format string, args ...any)
}

func newProcTable(log func(string, ...any)) *procTable {
	t := &procTable{procs: map[int]*Proc{}, exits: map[int]exitInfo{}, killed: map[int]bool{}, log: log}
	go t.reap()
	return t
}

func monoUs() int64 {
	var ts syscall.Timespec
	// CLOCK_MONOTONIC = 1
	_, _, _ = syscall.RawSyscall(syscall.SYS_CLOCK_GETTIME, 1, uintptr(unsafe.Pointer(&ts)), 0)
	return ts.Sec*1e6 + ts.Nsec/1e3
}

// reap waits for any child forever.
func (t *procTable) reap() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, 0, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil { // ECHILD: nothing to wait for yet
			time.Sleep(20 * time.Millisecond)
			continue
		}
		t.mu.Lock()
		t.exits[pid] = exitInfo{status: ws, monoUs: monoUs()}
		t.mu.Unlock()
	}
}

// spawn starts the allocator in cg via a shell that moves itself into the
// cgroup (writing its cgroup.procs), resets oom_score_adj to 0 (the
// runner runs at -1000 and children inherit it) and execs the allocator, so
// the pid is the allocator's from its first instruction.
func (t *procTable) spawn(cg *Cg, args ...string) (*Proc, error) {
	script := `echo $$ > "$0" && echo 0 > /proc/self/oom_score_adj && exec ` + allocPath + ` "$@"`
	return t.spawnScript(cg, script, append([]string{allocPath}, args...), args...)
}

// spawnDD starts busybox dd reading size bytes from /dev/zero into one
// buffer (a cheap allocator: no Go runtime to start) in cg, after it read
// one line from the FIFO gate, so that many can be released at once.
func (t *procTable) spawnDD(cg *Cg, gate, size string) (*Proc, error) {
	script := `echo $$ > "$0" && echo 0 > /proc/self/oom_score_adj && read x < "$1"; exec dd if=/dev/zero of=/dev/null bs="$2" count=1`
	p, err := t.spawnScript(cg, script, []string{"dd", "if=/dev/zero", "of=/dev/null", "bs=" + size, "count=1"}, gate, size)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	p.Comm, p.Ready = "dd", true
	t.mu.Unlock()
	return p, nil
}

// spawnScript runs script with sh -c in cg (the script moves itself into
// cgroup.procs, passed as $0, then args as $1...); recArgv is what the
// truth records as the process's command line. busybox runs applets such as
// dd without links (standalone shell).
func (t *procTable) spawnScript(cg *Cg, script string, recArgv []string, args ...string) (*Proc, error) {
	procsFile := cg.FSPath + "/cgroup.procs"
	argv := append([]string{"sh", "-c", script, procsFile}, args...)
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	devnull, err := os.Open("/dev/null")
	if err != nil {
		return nil, err
	}
	pid, err := syscall.ForkExec("/bin/sh", argv, &syscall.ProcAttr{
		Env:   []string{"PATH=/bin:/sbin", "GOTRACEBACK=none"},
		Files: []uintptr{devnull.Fd(), w.Fd(), w.Fd()},
	})
	w.Close()
	devnull.Close()
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("start allocator: %w", err)
	}
	p := &Proc{Pid: pid, Role: "parent", Cgroup: cg.Path, Argv: recArgv}
	t.mu.Lock()
	t.procs[pid] = p
	t.order = append(t.order, p)
	t.mu.Unlock()
	go t.readOutput(r, p)
	return p, nil
}

// readOutput parses the allocator's "ready ..." and "allocated ..." lines
// (its children share the pipe).
func (t *procTable) readOutput(r *os.File, parent *Proc) {
	defer r.Close()
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		f := fields(line)
		switch {
		case strings.HasPrefix(line, "ready "):
			pid, _ := strconv.Atoi(f["pid"])
			idx, _ := strconv.Atoi(f["index"])
			mib, _ := strconv.Atoi(f["mib"])
			comm, _ := os.ReadFile("/proc/" + f["pid"] + "/comm")
			t.mu.Lock()
			p := t.procs[pid]
			if p == nil {
				p = &Proc{Pid: pid, ParentPid: parent.Pid, Cgroup: parent.Cgroup}
				t.procs[pid] = p
				t.order = append(t.order, p)
			}
			p.Role, p.Index, p.MiB, p.Ready = f["role"], idx, mib, true
			p.Comm = strings.TrimSpace(string(comm))
			t.mu.Unlock()
		case strings.HasPrefix(line, "allocated "):
			pid, _ := strconv.Atoi(f["pid"])
			t.mu.Lock()
			if p := t.procs[pid]; p != nil {
				p.Allocated = true
			}
			t.mu.Unlock()
		default:
			t.log("alloc[%d]: %s", parent.Pid, line)
		}
	}
}

func fields(line string) map[string]string {
	m := map[string]string{}
	for _, kv := range strings.Fields(line) {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// exited reports whether pid has been reaped.
func (t *procTable) exited(pid int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.exits[pid]
	return ok
}

func (t *procTable) allocated(pid int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.procs[pid]
	return p != nil && p.Allocated
}

// pidsOf returns the pids (parent first, then children as they reported
// ready) belonging to the given top-level allocators.
func (t *procTable) family(parents ...*Proc) []*Proc {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*Proc
	for _, p := range t.order {
		for _, q := range parents {
			if p.Pid == q.Pid || p.ParentPid == q.Pid {
				out = append(out, p)
			}
		}
	}
	return out
}

// readyCount counts procs in family that printed "ready".
func (t *procTable) count(ps []*Proc, pred func(*Proc) bool) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, p := range ps {
		if pred(p) {
			n++
		}
	}
	return n
}

// settle fills Exit/KilledByKernel for every known proc. It must run before
// cleanup so that SIGKILL deaths can only be the kernel's.
func (t *procTable) settle(ps []*Proc) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, p := range ps {
		e, ok := t.exits[p.Pid]
		if !ok {
			continue
		}
		p.Exit = e.String()
		p.ExitMonoUs = e.monoUs
		p.KilledByKernel = e.status.Signaled() && e.status.Signal() == syscall.SIGKILL && !t.killed[p.Pid]
	}
}

// cleanup SIGKILLs survivors and waits until they are reaped.
func (t *procTable) cleanup(ps []*Proc) {
	t.mu.Lock()
	var live []*Proc
	for _, p := range ps {
		if _, ok := t.exits[p.Pid]; !ok {
			t.killed[p.Pid] = true
			p.KilledByRunner = true
			live = append(live, p)
		}
	}
	t.mu.Unlock()
	for _, p := range live {
		_ = syscall.Kill(p.Pid, syscall.SIGKILL)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, p := range live {
		for !t.exited(p.Pid) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
}

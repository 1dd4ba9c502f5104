//go:build linux

// Command scenarios is the init of the qemu OOM matrix guest: it runs every
// OOM scenario of one boot and reports what it knows on a serial port, framed
// (see package frame), for the host to check against the kernel's own report.
//
// The initramfs's /init (a busybox shell script, see hack/initramfs.sh) mounts
// /proc, /sys, /dev and /run, sets its oom_score_adj to -1000 and execs this
// program as PID 1. It then:
//
//   - starts /bin/kmsgdump, which copies every /dev/kmsg record to the frame
//     port as 'K' frames from the start of the ring buffer until the record
//     "oomscope-e2e: done";
//   - when /bin/oomscope exists and has a working `run` command, also starts
//     `oomscope run --start beginning --stdout` and relays each JSON line it
//     prints as an 'R' frame (the host then checks oomscope's own reports;
//     otherwise the host parses the 'K' frames with oomparse itself);
//   - runs the scenarios named by oomscope.scenarios= on the kernel command
//     line (default: all, in the order of [allScenarios]), each between two
//     marker records "oomscope-e2e: begin NAME" / "oomscope-e2e: end NAME"
//     written to /dev/kmsg, and prints each scenario's ground truth as a 'T'
//     frame (see [Truth]);
//   - writes "oomscope-e2e: done", waits for the readers and powers off.
//
// Kernel command line parameters it reads:
//
//	oomscope.scenarios=a,b,c   scenarios to run (default all)
//	oomscope.out=/dev/ttyS1    the frame port (default /dev/ttyS1)
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/oomscope/oomscope/e2e/qemu/internal/frame"
)

// Marker texts written to /dev/kmsg around scenarios and at the end.
const (
	beginMarker = "oomscope-e2e: begin "
	endMarker   = "oomscope-e2e: end "
	doneMarker  = "oomscope-e2e: done"
)

// out writes frames to the frame port. It is the port's only writer; its
// mutex keeps each frame whole even when a write(2) is cut short by a
// signal and continued.
type out struct {
	mu  sync.Mutex
	f   *os.File
	buf []byte
}

func (o *out) frame(kind frame.Kind, payload []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf = frame.Append(o.buf[:0], kind, payload)
	_, _ = o.f.Write(o.buf)
}

// raw writes an already framed line (kmsgdump's output) as it is.
func (o *out) raw(line []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf = append(append(o.buf[:0], line...), '\n')
	_, _ = o.f.Write(o.buf)
}

func (o *out) logf(format string, args ...any) {
	o.frame(frame.Log, []byte(fmt.Sprintf(format, args...)))
}

func main() {
	cmdline, _ := os.ReadFile("/proc/cmdline")
	params := parseCmdline(string(cmdline))
	port := params["oomscope.out"]
	if port == "" {
		port = "/dev/ttyS1"
	}
	f, err := openPort(port)
	if err != nil {
		fmt.Fprintf(os.Stderr, "scenarios: %v (falling back to stdout)\n", err)
		f = os.Stdout
	}
	o := &out{f: f}
	r := &runner{out: o, cmdline: strings.TrimSpace(string(cmdline))}
	if err := r.run(params["oomscope.scenarios"]); err != nil {
		o.logf("runner: FATAL: %v", err)
	}
	o.logf("runner: powering off")
	syscall.Sync()
	_ = syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF)
	_ = syscall.Reboot(syscall.LINUX_REBOOT_CMD_RESTART)
	select {}
}

// openPort opens the frame port for blocking writes (os.OpenFile would put
// the tty in non-blocking mode for Go's poller, and every full tty buffer
// would split a write). Only the runner writes to it (see startKmsgdump).
func openPort(port string) (*os.File, error) {
	fd, err := syscall.Open(port, syscall.O_WRONLY|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", port, err)
	}
	return os.NewFile(uintptr(fd), port), nil
}

func parseCmdline(s string) map[string]string {
	m := map[string]string{}
	for _, f := range strings.Fields(s) {
		k, v, _ := strings.Cut(f, "=")
		m[k] = v
	}
	return m
}

// runner holds the state of one boot.
type runner struct {
	out     *out
	cmdline string
	procs   *procTable
	kernel  Kernel
	memKB   int64
	v2      *hierarchy
	v2Err   error // why cgroup2's memory controller is unusable
}

func (r *runner) run(names string) error {
	_ = writeFile("/proc/self/oom_score_adj", "-1000")
	// Keep the kernel console quiet: records still reach /dev/kmsg.
	_ = writeFile("/proc/sys/kernel/printk", "1 4 1 7")
	r.procs = newProcTable(r.out.logf)
	r.kernel = readKernel(r.cmdline)
	r.memKB = memTotalKB()
	r.out.logf("runner: kernel %s, MemTotal %d kB", r.kernel.Release, r.memKB)

	var relay sync.WaitGroup
	dumpPid, err := r.startKmsgdump(&relay)
	if err != nil {
		return err
	}
	oomscopePid := r.startOomscope(&relay)

	list, err := selectScenarios(names)
	if err != nil {
		r.out.logf("runner: %v", err)
	}
	for _, s := range list {
		r.runScenario(s)
	}

	if err := kmsgWrite(doneMarker); err != nil {
		r.out.logf("runner: write done marker: %v", err)
	}
	// kmsgdump exits once it read the done marker; should it not (the
	// marker lost), SIGTERM makes it drain what is pending and exit.
	if !r.waitPid(dumpPid, 15*time.Second, "kmsgdump") {
		_ = syscall.Kill(dumpPid, syscall.SIGTERM)
		if !r.waitPid(dumpPid, 15*time.Second, "kmsgdump after SIGTERM") {
			_ = syscall.Kill(dumpPid, syscall.SIGKILL)
		}
	}
	if oomscopePid > 0 {
		// Give oomscope time to read the tail, then stop it.
		time.Sleep(3 * time.Second)
		_ = syscall.Kill(oomscopePid, syscall.SIGTERM)
		if !r.waitPid(oomscopePid, 20*time.Second, "oomscope") {
			_ = syscall.Kill(oomscopePid, syscall.SIGKILL)
		}
	}
	relay.Wait()
	r.out.logf("runner: done")
	r.out.frame(frame.Event, []byte("done"))
	return nil
}

// waitPid waits until pid was reaped; false on timeout.
func (r *runner) waitPid(pid int, d time.Duration, what string) bool {
	deadline := time.Now().Add(d)
	for !r.procs.exited(pid) {
		if time.Now().After(deadline) {
			r.out.logf("runner: %s (pid %d) did not exit within %s", what, pid, d)
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// startKmsgdump starts /bin/kmsgdump and relays its frames to the port.
//
// The runner is the port's only writer: a tty write(2) interrupted by a
// signal returns after a partial write (seen: 8192 of 8307 bytes while
// children exited), so frames of two writers could interleave.
func (r *runner) startKmsgdump(relay *sync.WaitGroup) (int, error) {
	devnull, err := os.Open("/dev/null")
	if err != nil {
		return 0, fmt.Errorf("open /dev/null: %w", err)
	}
	defer devnull.Close()
	rd, wr, err := os.Pipe()
	if err != nil {
		return 0, fmt.Errorf("pipe: %w", err)
	}
	pid, err := syscall.ForkExec("/bin/kmsgdump", []string{"kmsgdump", "-until", doneMarker}, &syscall.ProcAttr{
		Env:   []string{"PATH=/bin"},
		Files: []uintptr{devnull.Fd(), wr.Fd(), wr.Fd()},
	})
	wr.Close()
	if err != nil {
		rd.Close()
		return 0, fmt.Errorf("start kmsgdump: %w", err)
	}
	relay.Add(1)
	go func() {
		defer relay.Done()
		defer rd.Close()
		sc := bufio.NewScanner(rd)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			r.out.raw(sc.Bytes())
		}
	}()
	return pid, nil
}

// startOomscope starts `oomscope run --stdout` when the initramfs has a
// working oomscope, relaying its stdout as 'R' frames and its stderr as 'L'
// frames. It returns 0 when oomscope is not available.
func (r *runner) startOomscope(relay *sync.WaitGroup) int {
	const bin = "/bin/oomscope"
	if !exists(bin) {
		r.out.logf("runner: %s not in the initramfs: the host parses the raw kmsg frames", bin)
		return 0
	}
	_ = os.MkdirAll("/run/oomscope", 0o755)
	rout, wout, err := os.Pipe()
	if err != nil {
		r.out.logf("runner: pipe: %v", err)
		return 0
	}
	rerr, werr, err := os.Pipe()
	if err != nil {
		r.out.logf("runner: pipe: %v", err)
		return 0
	}
	devnull, _ := os.Open("/dev/null")
	argv := []string{"oomscope", "run", "--start", "beginning", "--stdout", "--raw",
		"--state-dir", "/run/oomscope", "--archive-dir", "-", "--host", "qemu-guest"}
	pid, err := syscall.ForkExec(bin, argv, &syscall.ProcAttr{
		Env:   []string{"PATH=/bin"},
		Files: []uintptr{devnull.Fd(), wout.Fd(), werr.Fd()},
	})
	devnull.Close()
	wout.Close()
	werr.Close()
	if err != nil {
		r.out.logf("runner: start oomscope: %v", err)
		rout.Close()
		rerr.Close()
		return 0
	}
	r.out.logf("runner: started %s", strings.Join(argv, " "))
	pipe := func(rd io.ReadCloser, kind frame.Kind, prefix string) {
		defer relay.Done()
		defer rd.Close()
		sc := bufio.NewScanner(rd)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			r.out.frame(kind, append([]byte(prefix), sc.Bytes()...))
		}
	}
	relay.Add(2)
	go pipe(rout, frame.Report, "")
	go pipe(rerr, frame.Log, "oomscope: ")
	return pid
}

// kmsgWrite injects one record into the kernel log. The text ends with a
// newline: without one the kernel keeps the record open for continuation,
// and the next write from the same task is appended to it instead of
// becoming a record of its own (seen: the done marker never appeared as a
// record after the last end marker).
func kmsgWrite(text string) error {
	f, err := os.OpenFile("/dev/kmsg", os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("open /dev/kmsg: %w", err)
	}
	defer f.Close()
	if _, err := f.Write([]byte(text + "\n")); err != nil {
		return fmt.Errorf("write /dev/kmsg: %w", err)
	}
	return nil
}

func readKernel(cmdline string) Kernel {
	var u syscall.Utsname
	_ = syscall.Uname(&u)
	str := func(a [65]int8) string {
		b := make([]byte, 0, len(a))
		for _, c := range a {
			if c == 0 {
				break
			}
			b = append(b, byte(c))
		}
		return string(b)
	}
	return Kernel{Release: str(u.Release), Version: str(u.Version), Cmdline: cmdline}
}

func memTotalKB() int64 {
	kv := readKV("/proc/meminfo")
	// readKV wants "key value": /proc/meminfo has "MemTotal: N kB".
	if v := kv["MemTotal:"]; v != nil {
		return *v
	}
	b, _ := os.ReadFile("/proc/meminfo")
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "MemTotal:" {
			var n int64
			fmt.Sscan(f[1], &n)
			return n
		}
	}
	return 0
}

func readSysctls() Sysctls {
	rd := func(n string) string {
		b, _ := os.ReadFile("/proc/sys/vm/" + n)
		return strings.TrimSpace(string(b))
	}
	return Sysctls{
		OOMDumpTasks:          rd("oom_dump_tasks"),
		OOMKillAllocatingTask: rd("oom_kill_allocating_task"),
		PanicOnOOM:            rd("panic_on_oom"),
		OvercommitMemory:      rd("overcommit_memory"),
	}
}

func vmstatOOMKill() int64 {
	b, _ := os.ReadFile("/proc/vmstat")
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "oom_kill" {
			var n int64
			fmt.Sscan(f[1], &n)
			return n
		}
	}
	return -1
}

func (r *runner) emitTruth(t *Truth) {
	b, err := json.Marshal(t)
	if err != nil {
		r.out.logf("runner: marshal truth of %s: %v", t.Scenario, err)
		return
	}
	r.out.frame(frame.Truth, b)
}

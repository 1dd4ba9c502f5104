package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkParseSyslog1GB runs the oomscope binary's parse on a syslog
// file of OOMSCOPE_BENCH_BYTES (default 1 GiB) generated in a temporary
// directory: kernel and other programs' chatter with a real three-kill
// report every 20,000 lines. It reports the throughput and the peak
// resident memory of the process, and those of "cat file > /dev/null" for
// scale (the file is in the page cache for both).
//
//	go test -run '^$' -bench ParseSyslog1GB -benchtime 1x ./cmd/oomscope
func BenchmarkParseSyslog1GB(b *testing.B) {
	size := int64(1 << 30)
	if s := os.Getenv("OOMSCOPE_BENCH_BYTES"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		size = n
	}
	dir := b.TempDir()
	log := filepath.Join(dir, "kern.log")
	reports := writeSyslog(b, log, size)
	bin := filepath.Join(dir, "oomscope")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	runCmd(b, "cat", log) // warm the page cache
	var parse, cat runStats
	for b.Loop() {
		parse = runCmd(b, bin, "parse", "--year", "2024", log)
		cat = runCmd(b, "cat", log)
	}
	if parse.lines != reports {
		b.Errorf("%d reports, want %d", parse.lines, reports)
	}
	mb := float64(size) / 1e6
	b.ReportMetric(mb/parse.wall.Seconds(), "MB/s")
	b.ReportMetric(float64(parse.maxRSS)/(1<<20), "peak-RSS-MiB")
	b.ReportMetric(parse.cpu.Seconds(), "cpu-s")
	b.ReportMetric(mb/cat.wall.Seconds(), "cat-MB/s")
	b.ReportMetric(float64(cat.maxRSS)/(1<<20), "cat-peak-RSS-MiB")
}

// runStats is what one run of a command cost.
type runStats struct {
	wall, cpu time.Duration
	maxRSS    int64 // bytes
	lines     int   // lines of output
}

// runCmd runs a command with its output counted and discarded. The peak
// resident memory is the child's VmHWM, read from /proc while it runs: the
// rusage of a child started by a Go process counts the parent's memory
// too (the child shares it until exec), which would make cat look as big
// as the test binary.
func runCmd(b *testing.B, name string, args ...string) runStats {
	b.Helper()
	cmd := exec.Command(name, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	peak := make(chan int64, 1)
	go func() {
		var max int64
		status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			if hwm := vmHWM(status); hwm > max {
				max = hwm
			}
			select {
			case <-done:
				peak <- max
				return
			case <-tick.C:
			}
		}
	}()
	lines := 0
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		lines++
	}
	close(done)
	st := runStats{maxRSS: <-peak}
	if err := cmd.Wait(); err != nil {
		b.Fatalf("%s: %v", name, err)
	}
	st.wall, st.lines = time.Since(start), lines
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		st.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return st
}

// vmHWM is the VmHWM line of a /proc/<pid>/status file in bytes, 0 when it
// cannot be read (the process has not exec'd yet or has exited).
func vmHWM(status string) int64 {
	data, err := os.ReadFile(status)
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(v)
			if len(f) == 2 && f[1] == "kB" {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n * 1024
			}
		}
	}
	return 0
}

// writeSyslog writes a syslog file of about size bytes and returns how
// many OOM reports it holds.
func writeSyslog(b *testing.B, path string, size int64) int {
	b.Helper()
	sample, err := os.ReadFile("../../kmsg/testdata/host-6.18-3-kills.kern.log")
	if err != nil {
		b.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	chatter := []string{
		"Apr 27 22:56:%02d node-7 kernel: [%5d.%06d] EXT4-fs (nvme0n1p1): mounted filesystem with ordered data mode. Quota mode: none.\n",
		"Apr 27 22:56:%02d node-7 kernel: [%5d.%06d] IPv6: ADDRCONF(NETDEV_CHANGE): veth3a2b1c4d: link becomes ready\n",
		"Apr 27 22:56:%02d node-7 containerd[812]: time=\"2024-04-27T22:56:09.123456789Z\" level=info msg=\"StartContainer for 3f9a7c2d returns successfully\"\n",
		"Apr 27 22:56:%02d node-7 kernel: [%5d.%06d] cni0: port 7(veth3a2b1c4d) entered forwarding state\n",
		"Apr 27 22:56:%02d node-7 kubelet[1044]: I0427 22:56:09.123456    1044 kubelet.go:2419] \"SyncLoop (PLEG): event for pod\" pod=\"default/web-7d9\"\n",
	}
	var n int64
	reports := 0
	for t := 0; n < size; t++ {
		if t%20000 == 19999 {
			m, _ := w.Write(sample)
			n += int64(m)
			reports += 3
			continue
		}
		c := chatter[t%len(chatter)]
		var m int
		if t%len(chatter) == 2 || t%len(chatter) == 4 {
			m, _ = fmt.Fprintf(w, c, t%60)
		} else {
			m, _ = fmt.Fprintf(w, c, t%60, t/1000000, t%1000000)
		}
		n += int64(m)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return reports
}

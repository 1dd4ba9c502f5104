package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/oomscope/oomscope/kmsg"
	"github.com/oomscope/oomscope/oomparse"
	"github.com/oomscope/oomscope/report"
)

// floorResult is the cost of the kernel interface itself against
// oomscope's.
type floorResult struct {
	records, bytes, inReports int // the ring buffer as read
	reports                   int
	passes                    int
	rows                      []floorRow // per record, median over passes
	syslog                    *syslogResult
}

// floorRow is one way of going through the ring buffer's records.
type floorRow struct {
	name     string
	cpu      time.Duration // per record
	wall     time.Duration // per record
	multiple float64       // cpu / the bare read's cpu
}

// measureFloor reads the whole ring buffer in several ways, then parses
// a generated syslog file.
func (e *env) measureFloor(ctx context.Context) (*floorResult, error) {
	raw, err := readRing()
	if err != nil {
		return nil, err
	}
	if len(raw) < 100 {
		return nil, fmt.Errorf("the ring buffer holds only %d records", len(raw))
	}
	fr := &floorResult{records: len(raw)}
	for _, r := range raw {
		fr.bytes += len(r)
	}
	recs := make([]kmsg.Record, len(raw))
	for i, r := range raw {
		if recs[i], err = kmsg.ParseRecord(r); err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
	}
	if reps, err := oomparse.ParseAll(&sliceSource{recs: recs}); err == nil {
		fr.reports = len(reps)
		for _, r := range reps {
			fr.inReports += len(r.Raw) + r.RawDropped
		}
	}
	lastSeq := recs[len(recs)-1].Seq

	type way struct {
		name string
		pass func() (n int, err error)
	}
	var sink []report.Report
	ways := []way{
		{"bare `read(2)` loop on /dev/kmsg (non-blocking, until EAGAIN)", func() (int, error) {
			return bareRead()
		}},
		{"`kmsg.ParseRecord` of each record (in memory)", func() (int, error) {
			for _, r := range raw {
				if _, err := kmsg.ParseRecord(r); err != nil {
					return 0, err
				}
			}
			return len(raw), nil
		}},
		{"`kmsg.ParseRecord` + `oomparse.Parser.Feed` (in memory)", func() (int, error) {
			p, err := oomparse.New()
			if err != nil {
				return 0, err
			}
			for _, r := range raw {
				rec, err := kmsg.ParseRecord(r)
				if err != nil {
					return 0, err
				}
				sink = p.Feed(sink[:0], rec)
			}
			sink = p.Flush(sink[:0])
			return len(raw), nil
		}},
		{"`oomparse.Parser.Feed` alone (records parsed beforehand)", func() (int, error) {
			p, err := oomparse.New()
			if err != nil {
				return 0, err
			}
			for _, rec := range recs {
				sink = p.Feed(sink[:0], rec)
			}
			sink = p.Flush(sink[:0])
			return len(recs), nil
		}},
		{"the live path: `kmsg.OpenReader` from the beginning + `Feed` (as oomreader)", func() (int, error) {
			return livePass(ctx, lastSeq)
		}},
	}
	// Passes interleave the ways (the machine's noise then hits each way
	// alike): at least 5, then until 20 s have passed, at most 200.
	samples := make([][]float64, len(ways))
	walls := make([][]float64, len(ways))
	begin := time.Now()
	for pass := 0; pass < 200 && ctx.Err() == nil; pass++ {
		for i, w := range ways {
			c0, t0 := rusageSelf(), time.Now()
			n, err := w.pass()
			c1, t1 := rusageSelf(), time.Now()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", w.name, err)
			}
			if n == 0 {
				return nil, fmt.Errorf("%s: no records", w.name)
			}
			samples[i] = append(samples[i], float64(c1-c0)/float64(n))
			walls[i] = append(walls[i], float64(t1.Sub(t0))/float64(n))
		}
		fr.passes = pass + 1
		if fr.passes >= 5 && time.Since(begin) > 20*time.Second {
			break
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for i, w := range ways {
		fr.rows = append(fr.rows, floorRow{name: w.name, cpu: time.Duration(median(samples[i])), wall: time.Duration(median(walls[i]))})
	}
	for i := range fr.rows {
		fr.rows[i].multiple = float64(fr.rows[i].cpu) / float64(fr.rows[0].cpu)
	}
	e.log.Info().Int("records", fr.records).Int("passes", fr.passes).Msg("floor: ring buffer measured")

	if fr.syslog, err = e.measureSyslog(ctx); err != nil {
		return nil, err
	}
	return fr, nil
}

// rusageSelf is the CPU time of the harness itself (user + system, every
// thread: the garbage collector's and the live reader goroutine's work
// included).
func rusageSelf() time.Duration {
	var ru unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// readRing returns every record in the ring buffer, as read(2) gives them.
func readRing() ([]string, error) {
	fd, err := syscall.Open("/dev/kmsg", syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer syscall.Close(fd)
	buf := make([]byte, 16<<10)
	var out []string
	for {
		n, err := syscall.Read(fd, buf)
		switch {
		case errors.Is(err, syscall.EAGAIN) || err == nil && n == 0:
			return out, nil
		case errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.EINTR):
			continue
		case err != nil:
			return nil, err
		}
		out = append(out, string(buf[:n]))
	}
}

// bareRead is the floor: open /dev/kmsg, read(2) every record into one
// buffer until EAGAIN, close.
func bareRead() (records int, err error) {
	fd, err := syscall.Open("/dev/kmsg", syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer syscall.Close(fd)
	buf := make([]byte, 16<<10)
	for {
		n, err := syscall.Read(fd, buf)
		switch {
		case errors.Is(err, syscall.EAGAIN) || err == nil && n == 0:
			return records, nil
		case errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.EINTR):
			continue
		case err != nil:
			return 0, err
		}
		records++
	}
}

// livePass reads the ring buffer through kmsg.OpenReader from its
// beginning, as the daemon reads (one goroutine reads and parses), and
// feeds a parser, until the record lastSeq.
func livePass(ctx context.Context, lastSeq uint64) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	live, err := kmsg.OpenReader(ctx, kmsg.WithStartAtBeginning())
	if err != nil {
		return 0, err
	}
	defer live.Close()
	p, err := oomparse.New(oomparse.WithBootID(live.BootID()))
	if err != nil {
		return 0, err
	}
	var (
		out  []report.Report
		recs []kmsg.Record
	)
	n := 0
	for {
		recs, err = live.Read(recs[:0], time.Time{})
		if err != nil {
			if ctx.Err() != nil {
				return n, errors.New("live pass: the last record did not come within 30s")
			}
			return n, err
		}
		for _, rec := range recs {
			n++
			if rec.Facility != 0 {
				rec.Text, rec.Raw, rec.Dict = "", "", nil
			}
			out = p.Feed(out[:0], rec)
			if rec.Seq >= lastSeq {
				return n, nil
			}
		}
	}
}

// sliceSource is an oomparse.RecordSource over records in memory.
type sliceSource struct {
	recs []kmsg.Record
	i    int
}

func (s *sliceSource) Scan() bool {
	if s.i >= len(s.recs) {
		return false
	}
	s.i++
	return true
}
func (s *sliceSource) Record() kmsg.Record { return s.recs[s.i-1] }
func (s *sliceSource) Err() error          { return nil }

// syslogResult is `oomscope parse` of a generated syslog file against cat.
type syslogResult struct {
	gen                 genStats
	runs                int
	catWall, catCPU     time.Duration // medians
	parseWall, parseCPU time.Duration
	parseRSS            int64
	reportsOut          int
}

func (e *env) measureSyslog(ctx context.Context) (*syslogResult, error) {
	file := e.tmp + "/kern.log"
	defer os.Remove(file)
	gs, err := generateSyslog(e.root, file, int64(e.cfg.syslogMiB)<<20)
	if err != nil {
		return nil, fmt.Errorf("generating %s: %w", file, err)
	}
	e.log.Info().Int64("bytes", gs.bytes).Int("reports", gs.reports).Msg("floor: syslog file generated")
	sr := &syslogResult{gen: gs, runs: 3}
	var cw, cc, pw, pc []float64
	for range sr.runs {
		w, c, _, _, err := timeCmd(ctx, nil, "cat", file)
		if err != nil {
			return nil, err
		}
		cw, cc = append(cw, float64(w)), append(cc, float64(c))
		lines := &lineCounter{}
		w, c, rss, _, err := timeCmd(ctx, lines, e.bins.oomscope, "parse", file)
		if err != nil {
			return nil, err
		}
		pw, pc = append(pw, float64(w)), append(pc, float64(c))
		sr.parseRSS = max(sr.parseRSS, rss)
		sr.reportsOut = lines.n
		e.log.Info().Dur("cat", time.Duration(cw[len(cw)-1]).Round(time.Millisecond)).Dur("parse", w.Round(time.Millisecond)).Int("reports", lines.n).Msg("floor: syslog pass")
	}
	sr.catWall, sr.catCPU = time.Duration(median(cw)), time.Duration(median(cc))
	sr.parseWall, sr.parseCPU = time.Duration(median(pw)), time.Duration(median(pc))
	return sr, nil
}

// timeCmd runs name args with stdout to out (nil: /dev/null) and returns
// its wall time, CPU time and peak RSS.
func timeCmd(ctx context.Context, out io.Writer, name string, args ...string) (wall, cpu time.Duration, maxRSS int64, code int, err error) {
	cmd := exec.CommandContext(ctx, name, args...)
	if out == nil {
		null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		if err != nil {
			return 0, 0, 0, 0, err
		}
		defer null.Close()
		cmd.Stdout = null
	} else {
		cmd.Stdout = out
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, 0, 0, err
	}
	// The peak RSS: VmHWM, polled (ru_maxrss holds the harness's; see
	// child.cpuLife), the last reading before the exit.
	done := make(chan struct{})
	polled := make(chan int64, 1)
	go func() {
		var hwm int64
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			if v, err := vmHWM(cmd.Process.Pid); err == nil {
				hwm = max(hwm, v)
			}
			select {
			case <-done:
				polled <- hwm
				return
			case <-t.C:
			}
		}
	}()
	err = cmd.Wait()
	wall = time.Since(start)
	close(done)
	maxRSS = <-polled
	if err != nil {
		return 0, 0, 0, 0, fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	st := cmd.ProcessState
	return wall, st.UserTime() + st.SystemTime(), maxRSS, st.ExitCode(), nil
}

// lineCounter counts the lines written to it.
type lineCounter struct{ n int }

func (l *lineCounter) Write(p []byte) (int, error) {
	for _, b := range p {
		if b == '\n' {
			l.n++
		}
	}
	return len(p), nil
}

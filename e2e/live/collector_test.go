package live_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/oomscope/oomscope/daemon"
	"github.com/oomscope/oomscope/enrich"
	"github.com/oomscope/oomscope/enrich/cgroupfs"
	"github.com/oomscope/oomscope/enrich/counterattr"
	"github.com/oomscope/oomscope/enrich/procattr"
	"github.com/oomscope/oomscope/kmsg"
	"github.com/oomscope/oomscope/report"
	"github.com/oomscope/oomscope/sink"
)

// collector runs the daemon's own pipeline (daemon.Run: the live
// /dev/kmsg source, the parser, expiry on the kernel clock, and the
// daemon's filter of records user space wrote to /dev/kmsg, which other
// tests inject in parallel) with a sink that keeps every report. A second
// reader of the kernel log keeps the raw kernel records for the captures.
type collector struct {
	live   *kmsg.Live
	cancel context.CancelFunc
	done   chan struct{} // closed when both goroutines are done

	mu      sync.Mutex
	records []kmsg.Record
	reports []report.Report
	// attributed holds, per report id, how its victim's cgroup was known
	// and that cgroup (enrichment with /proc attribution, as run does).
	attributed map[string][2]string
	errs       []error
	// injected counts records not from the kernel (facility != 0).
	injected int
}

// Name implements sink.Sink.
func (c *collector) Name() string { return "test-collector" }

// Publish implements sink.Sink.
func (c *collector) Publish(_ context.Context, d sink.Delivery) error {
	r := d.Report
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reports = append(c.reports, *r.Report)
	victim := ""
	if r.Cgroups != nil && r.Cgroups.Victim != nil {
		victim = r.Cgroups.Victim.Path
	}
	c.attributed[r.ID] = [2]string{r.Attribution, victim}
	return nil
}

func startCollector(t *testing.T, log zerolog.Logger) *collector {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	live, err := kmsg.OpenLive(ctx, kmsg.WithStartAtEnd(), kmsg.WithLogger(log))
	if err != nil {
		cancel()
		t.Fatalf("open live kernel log: %v", err)
	}
	c := &collector{live: live, cancel: cancel, done: make(chan struct{}), attributed: map[string][2]string{}}
	victims := procattr.New("/proc")
	// The kill counters, as `oomscope run` wires them: a descriptor of
	// their own on /dev/kmsg, opened before the daemon's reader.
	fs, err := cgroupfs.Open(cgroupfs.DefaultCgroupRoot)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	kl, err := counterattr.OpenKernelLog("/dev/kmsg")
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	counters, err := counterattr.New(counterattr.Config{Log: kl, Counters: counterattr.NewKernelCounters("/proc", fs), Logger: log, Proc: victims})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { counters.Close() })
	enricher, err := enrich.New(enrich.WithVictimCgroups(victims), enrich.WithVictimCgroups(counters))
	if err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		err := daemon.Run(ctx, daemon.Config{
			Start:    daemon.StartEnd,
			Sink:     c,
			Enricher: enricher,
			Victims:  victims,
			Counters: counters,
			Logger:   log,
			OnReady:  func() { close(ready) },
		})
		if err != nil {
			c.mu.Lock()
			c.errs = append(c.errs, err)
			c.mu.Unlock()
		}
	}()
	go func() {
		defer wg.Done()
		for rec := range live.Records() {
			c.mu.Lock()
			if rec.Facility != 0 {
				c.injected++
			} else {
				c.records = append(c.records, rec)
			}
			c.mu.Unlock()
		}
		if err := live.Err(); err != nil && !errors.Is(err, context.Canceled) {
			c.mu.Lock()
			c.errs = append(c.errs, err)
			c.mu.Unlock()
		}
	}()
	go func() { wg.Wait(); close(c.done) }()
	select {
	case <-ready:
	case <-c.done:
		t.Fatalf("daemon stopped before it was ready: %v", c.errs)
	case <-time.After(10 * time.Second):
		t.Fatal("daemon not ready after 10s")
	}
	t.Cleanup(c.stop)
	return c
}

// stop ends the collection.
func (c *collector) stop() {
	c.cancel()
	<-c.done
	_ = c.live.Close()
}

// snapshot returns copies of the reports so far.
func (c *collector) snapshot() []report.Report {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]report.Report(nil), c.reports...)
}

// waitVictims waits until every pid has a report naming it as a victim
// and the parser is idle.
func (c *collector) waitVictims(timeout time.Duration, pids []int) ([]report.Report, error) {
	deadline := time.Now().Add(timeout)
	for {
		reps := c.snapshot()
		seen := map[int]bool{}
		for _, r := range reps {
			for _, v := range r.Victims {
				seen[v.PID] = true
			}
		}
		var missing []int
		for _, pid := range pids {
			if !seen[pid] {
				missing = append(missing, pid)
			}
		}
		if len(missing) == 0 {
			return reps, nil
		}
		if time.Now().After(deadline) {
			return reps, fmt.Errorf("after %v: no report for victims %v (%d reports, %d records lost)", timeout, missing, len(reps), c.live.Lost())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// recordsBetween returns the records with first <= seq <= last.
func (c *collector) recordsBetween(first, last uint64) []kmsg.Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []kmsg.Record
	for _, r := range c.records {
		if r.Seq >= first && r.Seq <= last {
			out = append(out, r)
		}
	}
	return out
}

// monoNow is the kernel's clock for the records' timestamps.
func monoNow() time.Duration {
	d, _ := kmsg.KernelClock()
	return d
}

// lastOOMKill scans the kernel ring buffer (non-blocking) for the newest
// oom-killer record and returns its timestamp.
func lastOOMKill() (time.Duration, bool, error) {
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

// attribution returns how report id's victim cgroup was known, and it.
func (c *collector) attribution(id string) (how, cgroup string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.attributed[id]
	return a[0], a[1]
}

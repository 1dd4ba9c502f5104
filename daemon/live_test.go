package daemon_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/oomscope/oomscope/daemon"
	"github.com/oomscope/oomscope/kmsg"
	"github.com/oomscope/oomscope/sink"
)

// stepSource is a kernel log the test writes record by record: the
// kernel's clock, and whether it holds records not yet delivered (behind:
// then Read does not come back empty), are the test's.
type stepSource struct {
	ch     chan kmsg.Record
	behind atomic.Bool
	asked  atomic.Int64 // deadlines reached while asked whether behind
	done   chan struct{}
	once   sync.Once
}

func (s *stepSource) Read(dst []kmsg.Record, deadline time.Time) ([]kmsg.Record, error) {
	return chanRead(s.ch, s.done, dst, deadline, func() bool { s.asked.Add(1); return s.behind.Load() })
}
func (s *stepSource) Lost() uint64 { return 0 }
func (s *stepSource) Close() error { s.once.Do(func() { close(s.done) }); return nil }

// victimSink keeps the victim pids of every report, in order.
type victimSink struct {
	mu      sync.Mutex
	reports [][]int
	at      []time.Time
}

func (v *victimSink) Name() string { return "victims" }
func (v *victimSink) Publish(_ context.Context, d sink.Delivery) error {
	var pids []int
	for _, x := range d.Report.Victims {
		pids = append(pids, x.PID)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.reports = append(v.reports, pids)
	v.at = append(v.at, time.Now())
	return nil
}

func (v *victimSink) snapshot() [][]int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([][]int(nil), v.reports...)
}

// groupReport is a 6.12 memcg report with memory.oom.group: victim 11,
// the group line, members 11 (again) and 12; seq from 10, stamps from
// base, 100 µs apart.
func groupReport(t *testing.T, base time.Duration) []kmsg.Record {
	t.Helper()
	lines := []string{
		"a invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
		"memory: usage 10240kB, limit 10240kB, failcnt 1",
		"oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/g,task_memcg=/g,task=a,pid=11,uid=0",
		"Memory cgroup out of memory: Killed process 11 (a) total-vm:12000kB, anon-rss:9000kB, file-rss:100kB, shmem-rss:0kB, UID:0 pgtables:60kB oom_score_adj:0",
		"Tasks in /g are going to be killed due to memory.oom.group set",
		"Memory cgroup out of memory: Killed process 11 (a) total-vm:12000kB, anon-rss:9000kB, file-rss:100kB, shmem-rss:0kB, UID:0 pgtables:60kB oom_score_adj:0",
		"Memory cgroup out of memory: Killed process 12 (b) total-vm:12000kB, anon-rss:9000kB, file-rss:100kB, shmem-rss:0kB, UID:0 pgtables:60kB oom_score_adj:0",
	}
	var out []kmsg.Record
	for i, l := range lines {
		rec, err := kmsg.ParseRecord(fmt.Sprintf("3,%d,%d,-;%s", 10+i, (base + time.Duration(i)*100*time.Microsecond).Microseconds(), l))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rec)
	}
	return out
}

// runStep starts the daemon on src with the kernel clock clk and returns
// a stop function that waits for Run to return.
func runStep(t *testing.T, src *stepSource, clk *atomic.Int64, s sink.Sink, m *daemon.Metrics) func() {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cfg := daemon.Config{
		Open:    func(context.Context, daemon.Position) (daemon.Source, error) { return src, nil },
		BootID:  func() (string, error) { return "8f5b1c2d-3e4f-4071-8293-a4b5c6d7e8f9", nil },
		Clock:   func() time.Duration { return time.Duration(clk.Load()) },
		Sink:    s,
		Metrics: m,
	}
	errc := make(chan error, 1)
	go func() { errc <- daemon.Run(ctx, cfg) }()
	return func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached in 10s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestLiveReportLeavesAtOnce: the daemon publishes a report as soon as the
// kernel clock passes its victim line by the live linger (no 3 s wait, no
// grace before the expiry), and all of a memory.oom.group report's
// members are in it.
func TestLiveReportLeavesAtOnce(t *testing.T) {
	src := &stepSource{ch: make(chan kmsg.Record, 64), done: make(chan struct{})}
	var clk atomic.Int64
	base := 100 * time.Second
	recs := groupReport(t, base)
	clk.Store(int64(base))
	vs := &victimSink{}
	stop := runStep(t, src, &clk, vs, nil)
	defer stop()
	for _, r := range recs {
		src.ch <- r
	}
	// The kernel's clock passes the last member by 1 s: the report is
	// due (the group linger is 100 ms); it must leave without a record
	// after it.
	clk.Store(int64(recs[len(recs)-1].Mono + time.Second))
	start := time.Now()
	waitFor(t, "the report published", func() bool { return len(vs.snapshot()) == 1 })
	if got := fmt.Sprint(vs.snapshot()); got != "[[11 12]]" {
		t.Errorf("reports %s, want one with victims 11 and 12", got)
	}
	// The clock of the test stood still until Store: the report waited for
	// a timer armed ~100 ms ahead at most, not the 250 ms grace of old
	// plus a 3 s linger. Not a performance test: a bound of seconds only
	// catches a wait for the offline linger.
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("report published %v after it was due", d)
	}
}

// TestLiveExpiryWaitsWhileBehind: when the deadline passes while the
// kernel holds records the daemon has not received (a starved reader), the
// report is not ended: the daemon ends it only when Read came back with
// nothing, so the group member that the kernel printed in time joins it
// when it arrives, instead of becoming a report of its own.
func TestLiveExpiryWaitsWhileBehind(t *testing.T) {
	src := &stepSource{ch: make(chan kmsg.Record, 64), done: make(chan struct{})}
	var clk atomic.Int64
	recs := groupReport(t, 100*time.Second)
	vs := &victimSink{}
	stop := runStep(t, src, &clk, vs, nil)
	defer stop()
	last := recs[len(recs)-1]
	src.behind.Store(true)
	for _, r := range recs[:len(recs)-1] {
		src.ch <- r
	}
	clk.Store(int64(last.Mono + 10*time.Second)) // long past every deadline
	waitFor(t, "the daemon waiting past the deadline", func() bool { return src.asked.Load() >= 3 || len(vs.snapshot()) > 0 })
	if n := len(vs.snapshot()); n != 0 {
		t.Fatalf("%d reports published while the kernel log was behind", n)
	}
	src.ch <- last
	src.behind.Store(false)
	waitFor(t, "the report published", func() bool { return len(vs.snapshot()) >= 1 })
	time.Sleep(50 * time.Millisecond) // a split would publish a second report now
	if got := fmt.Sprint(vs.snapshot()); got != "[[11 12]]" {
		t.Errorf("reports %s, want one with victims 11 and 12", got)
	}
}

// TestLiveLateReaperCounted: the oom_reaper line that comes 2 s after its
// report was published is counted and dropped: no second report.
func TestLiveLateReaperCounted(t *testing.T) {
	src := &stepSource{ch: make(chan kmsg.Record, 64), done: make(chan struct{})}
	var clk atomic.Int64
	recs := groupReport(t, 100*time.Second)
	reg := prometheus.NewRegistry()
	m, err := daemon.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	vs := &victimSink{}
	stop := runStep(t, src, &clk, vs, m)
	defer stop()
	for _, r := range recs {
		src.ch <- r
	}
	clk.Store(int64(recs[len(recs)-1].Mono + time.Second))
	waitFor(t, "the report published", func() bool { return len(vs.snapshot()) == 1 })
	late, err := kmsg.ParseRecord(fmt.Sprintf("6,17,%d,-;oom_reaper: reaped process 12 (b), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB", (recs[len(recs)-1].Mono + 2*time.Second).Microseconds()))
	if err != nil {
		t.Fatal(err)
	}
	clk.Store(int64(late.Mono + time.Second))
	src.ch <- late
	waitFor(t, "the late line counted", func() bool {
		return testutil.ToFloat64(m.LateReaperForTest()) == 1
	})
	time.Sleep(50 * time.Millisecond)
	if got := fmt.Sprint(vs.snapshot()); got != "[[11 12]]" || strings.Contains(got, "] [") {
		t.Errorf("reports %s, want only the group report", got)
	}
}

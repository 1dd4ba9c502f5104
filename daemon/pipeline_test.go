package daemon_test

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/oomscope/oomscope/daemon"
	"github.com/oomscope/oomscope/kmsg"
	"github.com/oomscope/oomscope/oomparse"
	"github.com/oomscope/oomscope/report"
	"github.com/oomscope/oomscope/sink"
)

// These tests run the daemon's pipeline on canned records, as any user:
// the source, boot id and clock are the test's. The same pipeline against
// the real /dev/kmsg is tested in e2e/daemon (root).

const capture = "../testdata/captures/host-6.18-cgroupv1-memcg-pod-limit-3-kills.kmsg"

// captureRecords reads the real capture's raw /dev/kmsg records.
func captureRecords(t *testing.T) []kmsg.Record {
	t.Helper()
	f, err := os.Open(capture)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []kmsg.Record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		rec, err := kmsg.ParseRecord(sc.Text())
		if err != nil {
			continue
		}
		out = append(out, rec)
	}
	if len(out) < 200 {
		t.Fatalf("capture gave %d records", len(out))
	}
	return out
}

// cannedSource serves records as a kernel log would from a position, then
// stays open (as /dev/kmsg does) until closed.
type cannedSource struct {
	ch        chan kmsg.Record
	once      sync.Once
	done      chan struct{}
	openedPos daemon.Position
}

// kernelClock is the canned kernel's clock: just after the last record
// served, and, once the source has served everything and the log has gone
// quiet, far later (so lingering reports expire).
type kernelClock struct {
	now    atomic.Int64
	served atomic.Int64 // records served so far
}

func (c *kernelClock) read() time.Duration { return time.Duration(c.now.Load()) }

// openCanned serves recs; with quietAtEnd the clock runs on after the last
// record, without it the kernel's time stands just after it (the daemon is
// stopped before the log goes idle).
func openCanned(recs []kmsg.Record, clk *kernelClock, quietAtEnd bool, opened *[]daemon.Position) daemon.OpenFunc {
	return func(ctx context.Context, pos daemon.Position) (daemon.Source, error) {
		*opened = append(*opened, pos)
		s := &cannedSource{ch: make(chan kmsg.Record), done: make(chan struct{}), openedPos: pos}
		go func() {
			for _, r := range recs {
				if pos.Mode == daemon.AfterSeq && r.Seq <= pos.Seq {
					continue
				}
				clk.now.Store(int64(r.Mono + 100*time.Millisecond))
				select {
				case s.ch <- r:
					clk.served.Add(1)
				case <-s.done:
					return
				}
			}
			if quietAtEnd && len(recs) > 0 {
				clk.now.Store(int64(recs[len(recs)-1].Mono + time.Minute))
			}
			<-s.done
			close(s.ch)
		}()
		return s, nil
	}
}

func (s *cannedSource) Read(dst []kmsg.Record, deadline time.Time) ([]kmsg.Record, error) {
	return chanRead(s.ch, s.done, dst, deadline, nil)
}
func (s *cannedSource) Lost() uint64 { return 0 }
func (s *cannedSource) Close() error { s.once.Do(func() { close(s.done) }); return nil }

// recorder is a sink that keeps every report it was given, in order.
type recorder struct {
	mu  sync.Mutex
	ids []string
}

func (r *recorder) Name() string { return "recorder" }
func (r *recorder) Publish(_ context.Context, d sink.Delivery) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ids = append(r.ids, d.Report.ID)
	return nil
}
func (r *recorder) snapshot() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.ids...)
}

// runUntil runs the daemon until cond holds (or fails after 10 s) and stops it.
func runUntil(t *testing.T, cfg daemon.Config, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- daemon.Run(ctx, cfg) }()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			cancel()
			<-errc
			t.Fatal("condition not reached in 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Give the daemon a moment to save its checkpoint after the last publish.
	time.Sleep(50 * time.Millisecond)
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func baseConfig(t *testing.T, open daemon.OpenFunc, clk *kernelClock, s sink.Sink, state string) daemon.Config {
	return daemon.Config{
		Open:      open,
		BootID:    func() (string, error) { return "8f5b1c2d-3e4f-4071-8293-a4b5c6d7e8f9", nil },
		Clock:     clk.read,
		StatePath: state,
		Host:      "node-a",
		Sink:      s,
		Logger:    zerolog.New(zerolog.NewTestWriter(t)),
	}
}

// TestPipelineCannedRecords: every report of the real capture published
// once, with the boot id in its id; the checkpoint ends at the last record.
func TestPipelineCannedRecords(t *testing.T) {
	recs := captureRecords(t)
	state := filepath.Join(t.TempDir(), "checkpoint.json")
	var opened []daemon.Position
	clk := &kernelClock{}
	rec := &recorder{}
	runUntil(t, baseConfig(t, openCanned(recs, clk, true, &opened), clk, rec, state), func() bool { return len(rec.snapshot()) == 3 })
	ids := rec.snapshot()
	want := []string{"8f5b1c2d-3e4f-4071-8293-a4b5c6d7e8f9/423"}
	if ids[0] != want[0] {
		t.Errorf("first id = %s, want %s", ids[0], want[0])
	}
	cp, ok, err := daemon.LoadCheckpoint(state)
	if err != nil || !ok {
		t.Fatalf("checkpoint: %v %v", ok, err)
	}
	if last := recs[len(recs)-1].Seq; cp.Seq != last || cp.Published != 3 {
		t.Errorf("checkpoint = %+v, want seq %d, 3 published", cp, last)
	}
	if len(opened) != 1 || opened[0].Mode != daemon.FromBeginning {
		t.Errorf("opened at %+v, want from the beginning (no checkpoint)", opened)
	}
}

// TestPipelineResumeCutReport: a restart in the middle of a report reads
// it again from its first line (the checkpoint stayed before it), and no
// report is published twice across the restart.
func TestPipelineResumeCutReport(t *testing.T) {
	recs := captureRecords(t)
	// The first run sees the records up to the middle of the second report.
	var second int
	for i, r := range recs {
		if i > 0 && r.Seq > recs[0].Seq && len(r.Text) > 0 && strings.Contains(r.Text, "invoked oom-killer") {
			second = i
			break
		}
	}
	if second == 0 {
		t.Fatal("no second report in the capture")
	}
	cut := second + 30
	state := filepath.Join(t.TempDir(), "checkpoint.json")
	var opened []daemon.Position
	clk := &kernelClock{}
	rec := &recorder{}
	runUntil(t, baseConfig(t, openCanned(recs[:cut], clk, false, &opened), clk, rec, state), func() bool { return clk.served.Load() == int64(cut) })
	cp, _, _ := daemon.LoadCheckpoint(state)
	if cp.Seq >= recs[second].Seq {
		t.Fatalf("checkpoint %d moved into the open report starting at %d", cp.Seq, recs[second].Seq)
	}
	// The restart reads everything after the checkpoint.
	t.Logf("after first run: ids %v checkpoint %+v, second report at %d", rec.snapshot(), cp, recs[second].Seq)
	runUntil(t, baseConfig(t, openCanned(recs, clk, true, &opened), clk, rec, state), func() bool { return len(rec.snapshot()) == 3 })
	if len(opened) != 2 || opened[1].Mode != daemon.AfterSeq || opened[1].Seq != cp.Seq {
		t.Errorf("second open at %+v, want after seq %d", opened, cp.Seq)
	}
	seen := map[string]int{}
	for _, id := range rec.snapshot() {
		seen[id]++
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("report %s published %d times", id, n)
		}
	}
	if len(seen) != 3 {
		t.Errorf("%d distinct reports, want 3: %v", len(seen), seen)
	}
}

// TestPipelineUserspaceRecordsIgnored: records user space wrote into the
// kernel log (facility ≠ kern) never become reports.
func TestPipelineUserspaceRecordsIgnored(t *testing.T) {
	recs := captureRecords(t)
	for i := range recs {
		recs[i].Facility = 1 // user
	}
	var opened []daemon.Position
	clk := &kernelClock{}
	rec := &recorder{}
	state := filepath.Join(t.TempDir(), "checkpoint.json")
	cfg := baseConfig(t, openCanned(recs, clk, true, &opened), clk, rec, state)
	runUntil(t, cfg, func() bool {
		cp, ok, _ := daemon.LoadCheckpoint(state)
		return ok && cp.Seq == recs[len(recs)-1].Seq
	})
	if ids := rec.snapshot(); len(ids) != 0 {
		t.Errorf("user-space records published as reports: %v", ids)
	}
}

// slowEnricher takes a while, as a pod lookup waiting for the API can.
type slowEnricher struct {
	entered chan struct{}
	once    sync.Once
}

func (s *slowEnricher) Enrich(ctx context.Context, r *report.Report) *report.Enriched {
	s.once.Do(func() { close(s.entered) })
	select {
	case <-time.After(300 * time.Millisecond):
	case <-ctx.Done():
	}
	return &report.Enriched{Report: r}
}

// TestPipelineStopDrainsReportsInHand: a stop (SIGTERM) while a finished
// report is being enriched still stores it, within the drain timeout, and
// the checkpoint is saved.
func TestPipelineStopDrainsReportsInHand(t *testing.T) {
	recs := captureRecords(t)
	state := filepath.Join(t.TempDir(), "checkpoint.json")
	var opened []daemon.Position
	clk := &kernelClock{}
	rec := &recorder{}
	se := &slowEnricher{entered: make(chan struct{})}
	cfg := baseConfig(t, openCanned(recs, clk, true, &opened), clk, rec, state)
	cfg.Enricher = se
	cfg.DrainTimeout = 5 * time.Second
	// The offline linger: the capture's three reports all wait for their
	// reaper lines and leave the parser together, at the quiet end.
	cfg.ParserOptions = []oomparse.Option{oomparse.WithVictimLinger(oomparse.DefaultVictimLinger)}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- daemon.Run(ctx, cfg) }()
	select {
	case <-se.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("no report reached the enricher")
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	// The three reports of the capture were all in hand (complete, the
	// first in enrichment) when the stop came: all are stored.
	if ids := rec.snapshot(); len(ids) != 3 {
		t.Fatalf("published %v after a stop during enrichment, want the 3 reports in hand", ids)
	}
	cp, ok, err := daemon.LoadCheckpoint(state)
	if err != nil || !ok || cp.Published != 3 {
		t.Errorf("checkpoint after the stop: %+v %v %v, want 3 published", cp, ok, err)
	}
}

// TestKernelClockMatchesTheKernel: the daemon's clock (read once from the
// kernel, then from Go's monotonic clock) stays with CLOCK_MONOTONIC.
func TestKernelClockMatchesTheKernel(t *testing.T) {
	clock := daemon.KernelClockForTest()
	for range 5 {
		time.Sleep(20 * time.Millisecond)
		k, err := kmsg.KernelClock()
		if err != nil {
			t.Fatal(err)
		}
		if d := clock() - k; d < -time.Millisecond || d > time.Millisecond {
			t.Fatalf("daemon clock %v, kernel %v: %v apart", clock(), k, d)
		}
	}
}

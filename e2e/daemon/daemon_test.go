package daemon_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/oomscope/oomscope/daemon"
	"github.com/oomscope/oomscope/e2e/kernellock"
	"github.com/oomscope/oomscope/internal/syncbuf"
	"github.com/oomscope/oomscope/kmsg"
	"github.com/oomscope/oomscope/report"
	"github.com/oomscope/oomscope/sink"
)

// collector is a sink that remembers every report it was given.
type collector struct {
	mu  sync.Mutex
	ids []string
	got map[string]*report.Enriched
	tag string // only reports whose victim comm carries tag are kept
}

func (c *collector) Name() string { return "collector" }

func (c *collector) Publish(_ context.Context, d sink.Delivery) error {
	r := d.Report
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(r.Victims) == 0 || !strings.Contains(r.Victims[0].Comm, c.tag) {
		return nil // somebody else's OOM on this machine
	}
	c.ids = append(c.ids, r.ID)
	c.got[r.ID] = r
	return nil
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.ids)
}

// reportTexts returns the texts of the first OOM report of the real 6.18
// capture, with the victim's and trigger's comm replaced by comm.
func reportTexts(t *testing.T, comm string) []string {
	t.Helper()
	f, err := os.Open("../../testdata/captures/host-6.18-cgroupv1-memcg-pod-limit-3-kills.kmsg")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rec, err := kmsg.ParseRecord(sc.Text())
		if err != nil {
			continue
		}
		out = append(out, strings.ReplaceAll(rec.Text, "python3", comm))
		if strings.Contains(rec.Text, "Killed process") {
			break
		}
	}
	if len(out) < 50 {
		t.Fatalf("capture gave %d lines", len(out))
	}
	return out
}

// inject writes each text as one record to the real /dev/kmsg. The kernel
// rate-limits writers to 10 records per 5 s per open file, so a file is
// opened for every few records.
func inject(t *testing.T, texts []string) {
	t.Helper()
	for len(texts) > 0 {
		n := min(len(texts), 8)
		f, err := os.OpenFile("/dev/kmsg", os.O_WRONLY, 0)
		if err != nil {
			t.Fatalf("opening /dev/kmsg for writing (the daemon tests need root): %v", err)
		}
		for _, s := range texts[:n] {
			if _, err := f.WriteString("<4>" + s + "\n"); err != nil {
				f.Close()
				t.Fatalf("writing /dev/kmsg: %v", err)
			}
		}
		f.Close()
		texts = texts[n:]
	}
}

// lastSeq returns the sequence number of a marker record written now.
func lastSeq(t *testing.T) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := kmsg.OpenLive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	marker := fmt.Sprintf("oomscope-daemon-test marker %d", rand.Int64())
	inject(t, []string{marker})
	for rec := range l.Records() {
		if rec.Text == marker {
			return rec.Seq
		}
	}
	t.Fatalf("marker not read back: %v", l.Err())
	return 0
}

// checkpointNow writes a checkpoint at a marker record written now, so
// that a daemon resuming from it reads only what the test writes after,
// whatever the ring buffer held before. It returns the marker's seq.
func checkpointNow(t *testing.T, state string) uint64 {
	t.Helper()
	bootID, err := kmsg.ReadBootID()
	if err != nil {
		t.Fatal(err)
	}
	seq := lastSeq(t)
	if err := (daemon.Checkpoint{BootID: bootID, Seq: seq}).Save(state); err != nil {
		t.Fatal(err)
	}
	return seq
}

type instance struct {
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, cfg daemon.Config) *instance {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{cancel: cancel, done: make(chan error, 1)}
	go func() { in.done <- daemon.Run(ctx, cfg) }()
	return in
}

func (in *instance) stop(t *testing.T) {
	t.Helper()
	in.cancel()
	select {
	case err := <-in.done:
		if err != nil {
			t.Fatalf("daemon.Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("daemon did not stop within 10s of cancel")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestResumeNeverTwice runs the daemon against the real /dev/kmsg: a report
// is published once; a restart resumes after it; a report cut in half by a
// restart is read again from its first line and published whole, once; and
// a restart without checkpoint re-reads the whole buffer while the archive
// keeps exactly one file per report.
func TestResumeNeverTwice(t *testing.T) {
	kernellock.Acquire(t)
	tag := fmt.Sprintf("oomt%06d", rand.IntN(1e6))
	dir := t.TempDir()
	state := filepath.Join(dir, "checkpoint.json")
	archive, err := sink.NewArchive(filepath.Join(dir, "archive"))
	if err != nil {
		t.Fatal(err)
	}
	col := &collector{got: map[string]*report.Enriched{}, tag: tag}
	checkpointNow(t, state)
	cfg := daemon.Config{
		StatePath: state, Sink: sink.Multi{archive, col}, Host: "test-node",
		Logger: zerolog.New(zerolog.NewTestWriter(t)), CheckpointEvery: 50 * time.Millisecond,
		// The reports are injected through /dev/kmsg, as user space.
		AcceptUserspace: true,
	}

	// 1. One report, published once.
	a := reportTexts(t, tag+"a")
	d := start(t, cfg)
	inject(t, a)
	waitFor(t, "report A", func() bool { return col.count() == 1 })
	// 2. Half of report B, then stop before it ends.
	b := reportTexts(t, tag+"b")
	inject(t, b[:len(b)/2])
	time.Sleep(300 * time.Millisecond)
	d.stop(t)
	if n := col.count(); n != 1 {
		t.Fatalf("after the first run: %d reports, want 1 (A)", n)
	}
	cp, ok, err := daemon.LoadCheckpoint(state)
	if err != nil || !ok {
		t.Fatalf("checkpoint: ok=%v err=%v", ok, err)
	}
	idA := col.ids[0]
	var seqA uint64
	fmt.Sscanf(idA[strings.LastIndexByte(idA, '/')+1:], "%d", &seqA)
	if cp.Seq < seqA || cp.Seq >= seqA+uint64(len(a))+uint64(len(b)) {
		t.Errorf("checkpoint seq %d: want at or after report A (first seq %d) and before report B ends", cp.Seq, seqA)
	}

	// 3. The rest of B while the daemon is down; the restart resumes.
	inject(t, b[len(b)/2:])
	d = start(t, cfg)
	waitFor(t, "report B", func() bool { return col.count() == 2 })
	time.Sleep(200 * time.Millisecond)
	d.stop(t)
	rb := col.got[col.ids[1]]
	if col.ids[0] == col.ids[1] {
		t.Fatalf("report A published twice: %v", col.ids)
	}
	if rb.Incomplete || rb.Partial {
		t.Errorf("report B after restart: incomplete=%v partial=%v, want a whole report (%v)", rb.Incomplete, rb.Partial, rb.Problems)
	}
	if got, want := len(rb.Raw), len(b); got != want {
		t.Errorf("report B has %d raw lines, want %d", got, want)
	}
	if rb.Victims[0].Comm != tag+"b" {
		t.Errorf("report B victim %q", rb.Victims[0].Comm)
	}

	// 4. Without a checkpoint the whole buffer is read again: the archive
	// still holds exactly one file per report.
	if err := os.Remove(state); err != nil {
		t.Fatal(err)
	}
	d = start(t, cfg)
	waitFor(t, "re-read of A and B", func() bool { return col.count() >= 4 })
	d.stop(t)
	for _, id := range col.ids[:2] {
		p := archive.Path(col.got[id])
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("archive file for %s: %v", id, err)
		}
		var back map[string]any
		if err := json.Unmarshal(raw, &back); err != nil || back["id"] != id {
			t.Errorf("archive %s: id %v err %v", p, back["id"], err)
		}
		if _, ok := back["raw"]; !ok {
			t.Errorf("archive %s has no raw lines", p)
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "archive", "*", "*.json"))
	mine := 0
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if strings.Contains(string(b), tag) {
			mine++
		}
	}
	if mine != 2 {
		t.Errorf("archive holds %d files of this test, want 2", mine)
	}
}

// TestIgnoresUserspaceRecords checks that, by default, a report written to
// /dev/kmsg by a process (not the kernel) is not published.
func TestIgnoresUserspaceRecords(t *testing.T) {
	kernellock.Acquire(t)
	tag := fmt.Sprintf("oomf%06d", rand.IntN(1e6))
	dir := t.TempDir()
	state := filepath.Join(dir, "checkpoint.json")
	col := &collector{got: map[string]*report.Enriched{}, tag: tag}
	checkpointNow(t, state)
	ready := make(chan struct{})
	d := start(t, daemon.Config{
		StatePath: state, Sink: col, Logger: zerolog.New(zerolog.NewTestWriter(t)),
		CheckpointEvery: 20 * time.Millisecond, OnReady: func() { close(ready) },
	})
	<-ready
	inject(t, reportTexts(t, tag))
	end := lastSeq(t)
	waitFor(t, "checkpoint past the injected report", func() bool {
		cp, ok, _ := daemon.LoadCheckpoint(state)
		return ok && cp.Seq >= end
	})
	d.stop(t)
	if n := col.count(); n != 0 {
		t.Errorf("published %d reports forged from user space, want 0", n)
	}
}

// lockedBuf is a bytes.Buffer safe for the goroutines under test and the test.
type lockedBuf = syncbuf.Buffer

// TestNotTwiceWhileNextReportOpen stops the daemon after report A ended
// but while report B was still open: the checkpoint cannot move past B's
// start, so A is parsed again after the restart, and must not reach any
// sink again — not even standard output, which remembers nothing.
func TestNotTwiceWhileNextReportOpen(t *testing.T) {
	kernellock.Acquire(t)
	tag := fmt.Sprintf("oomd%06d", rand.IntN(1e6))
	dir := t.TempDir()
	state := filepath.Join(dir, "checkpoint.json")
	checkpointNow(t, state)
	col := &collector{got: map[string]*report.Enriched{}, tag: tag}
	var out1, out2 lockedBuf
	cfg := func(w *lockedBuf) daemon.Config {
		return daemon.Config{
			StatePath: state, Sink: sink.Multi{sink.NewJSONLines(w, false), col}, Host: "test-node",
			Logger: zerolog.New(zerolog.NewTestWriter(t)), CheckpointEvery: 50 * time.Millisecond, AcceptUserspace: true,
		}
	}
	a, b := reportTexts(t, tag+"a"), reportTexts(t, tag+"b")
	d := start(t, cfg(&out1))
	inject(t, append(append([]string{}, a...), b[:len(b)/2]...))
	waitFor(t, "report A", func() bool { return col.count() == 1 })
	time.Sleep(300 * time.Millisecond)
	d.stop(t)
	cp, _, err := daemon.LoadCheckpoint(state)
	if err != nil || len(cp.After) != 1 || cp.After[0] != col.ids[0] {
		t.Fatalf("checkpoint after run 1: %+v, %v; want A's id %s in after", cp, err, col.ids[0])
	}

	inject(t, b[len(b)/2:])
	d = start(t, cfg(&out2))
	waitFor(t, "report B", func() bool { return col.count() >= 2 })
	time.Sleep(500 * time.Millisecond)
	d.stop(t)
	if n := strings.Count(out2.String(), tag+"a"); n != 0 {
		t.Errorf("report A printed again on stdout after the restart (%d times)", n)
	}
	if strings.Count(out1.String(), tag+"a") == 0 || strings.Count(out2.String(), tag+"b") == 0 {
		t.Errorf("stdout: run 1 should print A, run 2 B:\n%s\n---\n%s", out1.String(), out2.String())
	}
	if len(col.ids) != 2 || col.ids[0] == col.ids[1] {
		t.Errorf("published ids %v, want A then B once each", col.ids)
	}
	cp, _, _ = daemon.LoadCheckpoint(state)
	if len(cp.After) != 0 {
		t.Errorf("checkpoint after run 2 still lists %v (the parser was idle: it should have moved)", cp.After)
	}
}

// slowEnricher blocks like a pod lookup waiting for an informer, until
// the daemon is stopped.
type slowEnricher struct{ entered chan struct{} }

func (s slowEnricher) Enrich(ctx context.Context, r *report.Report) *report.Enriched {
	close(s.entered)
	<-ctx.Done()
	return &report.Enriched{Report: r, Enrichment: report.Enrichment{Errors: []string{"lookup: " + ctx.Err().Error()}}}
}

// TestStopDuringEnrichment stops the daemon while a report is being
// enriched: the half-enriched report must not be published, and the next
// start must publish it.
func TestStopDuringEnrichment(t *testing.T) {
	kernellock.Acquire(t)
	tag := fmt.Sprintf("oomc%06d", rand.IntN(1e6))
	dir := t.TempDir()
	state := filepath.Join(dir, "checkpoint.json")
	checkpointNow(t, state)
	col := &collector{got: map[string]*report.Enriched{}, tag: tag}
	se := slowEnricher{entered: make(chan struct{})}
	logger := zerolog.New(zerolog.NewTestWriter(t))
	d := start(t, daemon.Config{StatePath: state, Sink: col, Enricher: se, Logger: logger, AcceptUserspace: true, DrainTimeout: 500 * time.Millisecond})
	inject(t, reportTexts(t, tag))
	select {
	case <-se.entered:
	case <-time.After(15 * time.Second):
		t.Fatal("the report never reached the enricher")
	}
	d.stop(t)
	if n := col.count(); n != 0 {
		t.Fatalf("published %d report(s) enriched with a cancelled context", n)
	}
	d = start(t, daemon.Config{StatePath: state, Sink: col, Logger: logger, AcceptUserspace: true})
	waitFor(t, "the report after the restart", func() bool { return col.count() == 1 })
	d.stop(t)
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/oomscope/oomscope/kmsg"
	"github.com/oomscope/oomscope/oomparse"
	"github.com/oomscope/oomscope/outbox"
	"github.com/oomscope/oomscope/report"
)

// BenchmarkRunDelivery is the part of `oomscope run` after enrichment, as
// the daemon wires it: reports Put into the outbox in a state dir and
// delivered to the archive and to the embedded NATS server with JetStream
// (sync always), in batches of 3 reports at once as in the storm of
// stormbench. One op is one report stored and confirmed by both sinks.
// It reports the process's CPU per report (all goroutines: the outbox, the
// sinks, the NATS server, the garbage collector).
//
//	go test -run '^$' -bench RunDelivery -benchtime 300x ./cmd/oomscope
func BenchmarkRunDelivery(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	state := b.TempDir()
	c := runConfig{
		StateDir: state, NATSListen: "127.0.0.1:0", Host: "node-a", Kubeconfig: "none",
		LogLevel: zerolog.WarnLevel, LogFormat: "json",
	}
	log := zerolog.Nop()
	reg := prometheus.NewRegistry()
	ob, err := outbox.Open(filepath.Join(state, "outbox.db"), outbox.Config{Logger: log, Registerer: reg})
	if err != nil {
		b.Fatal(err)
	}
	defer ob.Close()
	sinks, cleanup, err := buildSinks(ctx, io.Discard, c, log, reg, &healthState{stateDir: state})
	if err != nil {
		b.Fatal(err)
	}
	defer cleanup()
	var confirmed atomic.Int64
	done := make(chan struct{}, 1)
	for i, s := range sinks {
		sinks[i] = countingSink{s, &confirmed, done}
	}
	runCtx, stopRun := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- ob.Run(runCtx, sinks...) }()
	defer func() { stopRun(); <-ran }()

	er := benchReport(b)
	const batch = 3
	want := int64(0)
	put := func(i int) {
		er.ID = fmt.Sprintf("3caa4962-9eb7-4da4-a1df-415db9a5f520/%d", i)
		body, err := json.Marshal(er)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := ob.Put(er.ID, body); err != nil {
			b.Fatal(err)
		}
	}
	wait := func() {
		for confirmed.Load() < want {
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				b.Fatalf("%d of %d confirmations after 10s", confirmed.Load(), want)
			}
		}
	}
	put(-1) // the first report opens the archive's boot directory and the stream's first block
	want = int64(len(sinks))
	wait()
	cpu0 := processCPU(b)
	b.ResetTimer()
	n := 0
	for n < b.N {
		k := min(batch, b.N-n)
		for range k {
			put(n)
			n++
		}
		want += int64(k * len(sinks))
		wait()
	}
	b.StopTimer()
	b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N)/1e6, "cpu-ms/report")
	if body, err := json.Marshal(er); err == nil {
		b.ReportMetric(float64(len(body)), "body-B")
	}
}

// countingSink counts the entries its sink confirmed.
type countingSink struct {
	outbox.Sink
	n    *atomic.Int64
	done chan struct{}
}

func (c countingSink) Deliver(ctx context.Context, e outbox.Entry) error {
	err := c.Sink.Deliver(ctx, e)
	if err == nil {
		c.n.Add(1)
		select {
		case c.done <- struct{}{}:
		default:
		}
	}
	return err
}

// benchReport is the report of a real container-limit kill on this
// project's VM, raw kernel lines included, with the enrichment of a
// report whose cgroup is gone (no snapshot).
func benchReport(b *testing.B) *report.Enriched {
	b.Helper()
	f, err := os.Open("../../testdata/live/host-6.18.44-cgroupv1-container-limit.kmsg")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	reps, err := oomparse.ParseAll(kmsg.NewScanner(f), oomparse.WithHost("node-a"))
	if err != nil || len(reps) == 0 {
		b.Fatalf("parsing the capture: %d reports, %v", len(reps), err)
	}
	return &report.Enriched{Report: &reps[0]}
}

// processCPU is this process's user + system CPU time in ns.
func processCPU(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkDeliverySyncFloor is what storing one report durably in the
// daemon's three stores costs in system calls alone, with no encoding, no
// goroutines, no NATS protocol: the floor under BenchmarkRunDelivery.
// Per report, as the stores do it (docs/performance.md):
//
//   - the outbox (bbolt): the report's pages written and fdatasync'd, then
//     the meta page written and fdatasync'd;
//   - the archive: a temporary file created, written, fsync'd, renamed
//     into place, and the directory fsync'd;
//   - JetStream (SyncAlways): the message appended to the block file and
//     fsync'd.
//
// "one-by-one" is what the daemon does; "groups-of-3" is the best a group
// commit could do in stormbench's storm (3 kills at once): one outbox
// commit and one directory sync for the 3, the file and JetStream syncs
// still one per report. It reports the process's CPU per report.
//
//	go test -run '^$' -bench DeliverySyncFloor -benchtime 300x ./cmd/oomscope
func BenchmarkDeliverySyncFloor(b *testing.B) {
	for _, group := range []int{1, 3} {
		name := "one-by-one"
		if group > 1 {
			name = fmt.Sprintf("groups-of-%d", group)
		}
		b.Run(name, func(b *testing.B) { benchSyncFloor(b, group) })
	}
}

func benchSyncFloor(b *testing.B, group int) {
	dir := b.TempDir()
	body := make([]byte, 9876) // BenchmarkRunDelivery's report
	for i := range body {
		body[i] = 'a' + byte(i%26)
	}
	indented := append(append([]byte{}, body...), body[:2500]...) // the archive's indented copy
	must := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	db, err := os.OpenFile(filepath.Join(dir, "outbox.db"), os.O_RDWR|os.O_CREATE, 0o600)
	must(err)
	defer db.Close()
	blk, err := os.OpenFile(filepath.Join(dir, "1.blk"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	must(err)
	defer blk.Close()
	arch := filepath.Join(dir, "archive")
	must(os.Mkdir(arch, 0o755))
	ad, err := os.Open(arch)
	must(err)
	defer ad.Close()
	pages := make([]byte, 3*4096*group) // each report's pages
	copy(pages, body)
	meta := make([]byte, 4096)
	var off int64 = 4 * 4096
	report := func(i int) {
		// The archive's file.
		tmp := filepath.Join(arch, fmt.Sprintf(".r%d.tmp", i))
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		must(err)
		_, err = f.Write(indented)
		must(err)
		must(f.Sync())
		must(f.Close())
		must(os.Rename(tmp, filepath.Join(arch, fmt.Sprintf("r%d.json", i))))
		// JetStream's message.
		_, err = blk.Write(body)
		must(err)
		must(blk.Sync())
	}
	commit := func(k int) {
		_, err := db.WriteAt(pages[:3*4096*k], off)
		must(err)
		off += int64(3 * 4096 * k)
		must(syscall.Fdatasync(int(db.Fd())))
		_, err = db.WriteAt(meta, 0)
		must(err)
		must(syscall.Fdatasync(int(db.Fd())))
		must(ad.Sync())
	}
	cpu0 := processCPU(b)
	b.ResetTimer()
	for n := 0; n < b.N; {
		k := min(group, b.N-n)
		for range k {
			report(n)
			n++
		}
		commit(k)
	}
	b.StopTimer()
	b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N)/1e6, "cpu-ms/report")
}

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

package natssink

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/oomscope/oomscope/sink"
)

// TestRestart10k publishes 10,000 reports from four workers while the
// server is stopped and started again twice (same store, same port). Each
// worker stands in for the outbox: it retries a report until Publish
// returns nil. The stream must end with every report exactly once.
func TestRestart10k(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 publishes")
	}
	const n, workers = 10000, 4
	ts := newServer(t, nil)
	reg := prometheus.NewRegistry()
	cfg := testConfig(t, ts)
	cfg.Registerer = reg
	cfg.PublishTimeout = 2 * time.Second
	cfg.Logger = zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	s := newSink(t, cfg)

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var done, failures atomic.Int64
	jobs := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for i := range jobs {
				d := sink.Delivery{Report: testReport(bootID(i)), Queued: time.Now()}
				for s.Publish(ctx, d) != nil {
					failures.Add(1)
					if ctx.Err() != nil {
						return
					}
					time.Sleep(10 * time.Millisecond) // the outbox's backoff
				}
				done.Add(1)
			}
		})
	}
	go func() {
		defer close(jobs)
		for i := range n {
			select {
			case jobs <- i:
			case <-ctx.Done():
				return
			}
		}
	}()

	connected := func() float64 {
		return testutil.ToFloat64(s.metrics[0])
	}
	var outages []time.Duration
	for _, at := range []int64{n / 3, 2 * n / 3} {
		for done.Load() < at {
			if ctx.Err() != nil {
				t.Fatalf("stuck at %d reports", done.Load())
			}
			time.Sleep(time.Millisecond)
		}
		down := time.Now()
		ts.stop()
		for connected() != 0 {
			time.Sleep(time.Millisecond)
		}
		before := done.Load()
		time.Sleep(300 * time.Millisecond)
		if got := done.Load(); got > before+workers {
			t.Errorf("%d reports delivered while the server was down", got-before)
		}
		ts.start()
		for done.Load() == before {
			if ctx.Err() != nil {
				t.Fatal("no report delivered after the restart")
			}
			time.Sleep(time.Millisecond)
		}
		outages = append(outages, time.Since(down))
	}
	wg.Wait()
	if done.Load() != n {
		t.Fatalf("%d of %d reports delivered", done.Load(), n)
	}
	elapsed := time.Since(start)

	_, js := ts.client()
	msgs := readAll(t, js, StreamName)
	seen := make(map[string]int, n)
	for _, m := range msgs {
		seen[m.Header.Get("Nats-Msg-Id")]++
	}
	for i := range n {
		switch c := seen[bootID(i)]; c {
		case 1:
		case 0:
			t.Errorf("report %d missing", i)
		default:
			t.Errorf("report %d stored %d times", i, c)
		}
	}
	if len(msgs) != n || len(seen) != n {
		t.Errorf("%d messages with %d ids, want %d", len(msgs), len(seen), n)
	}
	if failures.Load() == 0 {
		t.Error("no publish failed: the outages were not seen")
	}
	if got := testutil.ToFloat64(s.metrics[1]); got != 2 {
		t.Errorf("oomscope_nats_reconnects_total = %v, want 2", got)
	}
	if connected() != 1 {
		t.Error("oomscope_nats_connected is not 1 at the end")
	}
	t.Logf("%d reports in %v (%.0f/s with %d workers, -race=%v), %d failed attempts, outages until the next delivery %v; the stream holds %d, server duplicates %v",
		n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), workers, raceEnabled, failures.Load(), outages,
		len(msgs), testutil.ToFloat64(s.pubs.WithLabelValues(OutcomeDuplicate)))
}

// Package delivery_test proves the delivery half of oomscope against real
// servers and real faults: reports go into the durable outbox and reach
// NATS JetStream through its own sink while the server is stopped and
// started again.
package delivery_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/oomscope/oomscope/natsd"
	"github.com/oomscope/oomscope/outbox"
	"github.com/oomscope/oomscope/report"
	"github.com/oomscope/oomscope/sink"
	"github.com/oomscope/oomscope/sink/natssink"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func reportJSON(t testing.TB, i int) (string, []byte) {
	id := fmt.Sprintf("8f5b1c2d-3e4f-4071-8293-a4b5c6d7e8f9/%d", 1000+i)
	r := &report.Enriched{
		Report: &report.Report{Schema: report.Schema, ID: id, Host: "node-a", Kind: report.KindMemcg,
			Victims: []report.Victim{{PID: 4000 + i%1000, Comm: "stress"}}},
		Pod: &report.Pod{Namespace: "shop", Name: fmt.Sprintf("web-%d", i%7), UID: "0b7e3c1e-5a42-4c1b-9d7a-2f1f8c3e9a11"},
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return id, b
}

// counter is a sink that counts the reports it was given.
type counter struct{ n atomic.Int64 }

func (c *counter) Name() string                                 { return "counter" }
func (c *counter) Publish(context.Context, sink.Delivery) error { c.n.Add(1); return nil }

// TestTenThousandThroughTwoNATSRestarts: 10,000 reports put into the
// outbox while the NATS server is stopped and started again twice; the
// stream ends with exactly 10,000 messages, none missing, none twice, and
// the other sink is never held up by the outage.
func TestTenThousandThroughTwoNATSRestarts(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 reports through a real NATS server")
	}
	const n = 10000
	addr, store := freeAddr(t), t.TempDir()
	start := func() *natsd.Server {
		srv, err := natsd.Start(context.Background(), natsd.Config{Listen: addr, StoreDir: store, SyncAlways: true})
		if err != nil {
			t.Fatal(err)
		}
		return srv
	}
	srv := start()
	defer func() { srv.Shutdown() }()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.ErrorLevel)
	ns, err := natssink.New(ctx, natssink.Config{URLs: "nats://" + addr, Node: "node-a", CreateStream: true, PublishTimeout: 2 * time.Second, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	ob, err := outbox.Open(filepath.Join(t.TempDir(), "outbox.db"), outbox.Config{MinBackoff: 20 * time.Millisecond, MaxBackoff: 300 * time.Millisecond, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	local := &counter{}
	runCtx, stopRun := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- ob.Run(runCtx, sink.ForOutbox(ns), sink.ForOutbox(local)) }()

	putsDone := make(chan time.Duration, 1)
	var put atomic.Int64
	go func() {
		began := time.Now()
		for i := range n {
			id, body := reportJSON(t, i)
			if _, err := ob.Put(id, body); err != nil {
				t.Error(err)
				break
			}
			put.Add(1)
		}
		putsDone <- time.Since(began)
	}()
	for _, at := range []int{n / 3, 2 * n / 3} {
		// Stop the server once NATS confirmed a third (two thirds) of them.
		for {
			pending, _ := ob.Pending("nats")
			if int(put.Load())-pending >= at || ctx.Err() != nil {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		srv.Shutdown()
		down := local.n.Load()
		time.Sleep(1500 * time.Millisecond)
		if gained := local.n.Load() - down; gained == 0 && local.n.Load() < n {
			t.Errorf("the local sink delivered nothing while NATS was down")
		}
		srv = start()
	}
	putTime := <-putsDone
	if err := ob.WaitDrained(ctx); err != nil {
		t.Fatalf("outbox not drained: %v", err)
	}
	stopRun()
	<-ran
	t.Logf("10,000 puts in %v (%.0f/s) while NATS restarted twice", putTime, n/putTime.Seconds())

	nc, err := nats.Connect("nats://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	cons, err := js.OrderedConsumer(ctx, natssink.StreamName, jetstream.OrderedConsumerConfig{HeadersOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for len(seen) < n {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for m := range batch.Messages() {
			seen[m.Headers().Get("Nats-Msg-Id")]++
			got++
		}
		if got == 0 {
			break
		}
	}
	st, _ := js.Stream(ctx, natssink.StreamName)
	info, _ := st.Info(ctx)
	if info.State.Msgs != n || len(seen) != n {
		t.Errorf("stream holds %d messages, %d distinct ids; want %d", info.State.Msgs, len(seen), n)
	}
	for id, c := range seen {
		if c != 1 {
			t.Errorf("report %s stored %d times", id, c)
		}
	}
	if local.n.Load() != n {
		t.Errorf("local sink got %d reports, want %d", local.n.Load(), n)
	}
}

// BenchmarkPutWhileRemoteSinksDown measures what reading the kernel log
// can go on doing while the remote sinks are down: storing reports in the
// outbox, with the NATS sink's server stopped (its deliveries fail and are
// retried in their own goroutine) against the same with NATS up.
//
//	go test -run '^$' -bench PutWhile -benchtime 2000x ./e2e/delivery
func BenchmarkPutWhileRemoteSinksDown(b *testing.B) {
	for _, down := range []bool{false, true} {
		name := "nats-up"
		if down {
			name = "nats-down"
		}
		b.Run(name, func(b *testing.B) {
			addr := freeAddrB(b)
			srv, err := natsd.Start(context.Background(), natsd.Config{Listen: addr, StoreDir: b.TempDir(), SyncAlways: true})
			if err != nil {
				b.Fatal(err)
			}
			defer srv.Shutdown()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ns, err := natssink.New(ctx, natssink.Config{URLs: "nats://" + addr, Node: "node-a", CreateStream: true, PublishTimeout: time.Second})
			if err != nil {
				b.Fatal(err)
			}
			defer ns.Close()
			if down {
				srv.Shutdown()
			}
			ob, err := outbox.Open(filepath.Join(b.TempDir(), "outbox.db"), outbox.Config{MaxBackoff: time.Second})
			if err != nil {
				b.Fatal(err)
			}
			defer ob.Close()
			go ob.Run(ctx, sink.ForOutbox(ns))
			bodies := make([][]byte, b.N)
			ids := make([]string, b.N)
			for i := range b.N {
				ids[i], bodies[i] = reportJSON(b, i)
			}
			b.ResetTimer()
			for i := range b.N {
				if _, err := ob.Put(ids[i], bodies[i]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reports/s")
			b.StopTimer()
			cancel()
		})
	}
}

func freeAddrB(b *testing.B) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

package natssink

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/oomscope/oomscope/report"
	"github.com/oomscope/oomscope/sink"
)

// testServer is an in-process nats-server with JetStream on a temporary
// store, listening on 127.0.0.1 at a port fixed when it was made, so that
// a restart comes back at the same address with the same data.
type testServer struct {
	t    testing.TB
	opts server.Options
	srv  *server.Server
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func newServer(t testing.TB, mod func(*server.Options)) *testServer {
	t.Helper()
	ts := &testServer{t: t, opts: server.Options{
		ServerName: "test",
		Host:       "127.0.0.1",
		Port:       freePort(t),
		JetStream:  true,
		StoreDir:   t.TempDir(),
		NoLog:      true,
		NoSigs:     true,
	}}
	if mod != nil {
		mod(&ts.opts)
	}
	ts.start()
	t.Cleanup(ts.stop)
	return ts
}

func (ts *testServer) start() {
	ts.t.Helper()
	s, err := server.NewServer(ts.opts.Clone())
	if err != nil {
		ts.t.Fatalf("nats-server: %v", err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		ts.t.Fatal("nats-server not ready")
	}
	ts.srv = s
}

func (ts *testServer) stop() {
	if ts.srv != nil {
		ts.srv.Shutdown()
		ts.srv.WaitForShutdown()
		ts.srv = nil
	}
}

func (ts *testServer) url() string {
	scheme := "nats"
	if ts.opts.TLSConfig != nil {
		scheme = "tls"
	}
	return scheme + "://" + net.JoinHostPort(ts.opts.Host, strconv.Itoa(ts.opts.Port))
}

// client connects a plain client (no sink) for checks.
func (ts *testServer) client(opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	ts.t.Helper()
	nc, err := nats.Connect(ts.url(), opts...)
	if err != nil {
		ts.t.Fatal(err)
	}
	ts.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		ts.t.Fatal(err)
	}
	return nc, js
}

// testConfig is a sink config for ts that creates the stream and logs to t.
func testConfig(t testing.TB, ts *testServer) Config {
	return Config{
		URLs:             ts.url(),
		Node:             "node-1",
		CreateStream:     true,
		ConnectWait:      10 * time.Second,
		ReconnectWait:    20 * time.Millisecond,
		ReconnectMaxWait: 200 * time.Millisecond,
		Logger:           zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel),
	}
}

func newSink(t testing.TB, cfg Config) *Sink {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// storedMsg is one message read back from the stream.
type storedMsg struct {
	Subject string
	Header  nats.Header
	Data    []byte
}

// readAll reads every message of the stream in order.
func readAll(t testing.TB, js jetstream.JetStream, stream string) []storedMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	total := st.CachedInfo().State.Msgs
	if total == 0 {
		return nil
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var out []storedMsg
	for uint64(len(out)) < total {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			out = append(out, storedMsg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()})
		}
		if err := batch.Error(); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Fatalf("read %d of %d messages, then nothing", len(out), total)
		}
	}
	return out
}

// testReport returns a pod report with id id.
func testReport(id string) *report.Enriched {
	return &report.Enriched{
		Report: &report.Report{
			Schema: report.Schema,
			ID:     id,
			Host:   "node-1",
			Kind:   report.KindMemcg,
			Raw:    []string{"6,1234,5678,-;memhog invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0"},
		},
		Pod: &report.Pod{Namespace: "default", Name: "memhog-7d9f", UID: "0b7c3d2e-1111-2222-3333-444455556666"},
	}
}

func delivery(id string) sink.Delivery {
	return sink.Delivery{Report: testReport(id), Queued: time.Now()}
}

func bootID(i int) string {
	return fmt.Sprintf("6f1b6d3c-0000-4000-8000-%012d/%d", i/1000, i)
}

func itoa(i int) string { return strconv.Itoa(i) }

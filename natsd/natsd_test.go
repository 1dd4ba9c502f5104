package natsd

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/oomscope/oomscope/internal/syncbuf"
	"github.com/oomscope/oomscope/report"
	"github.com/oomscope/oomscope/sink"
	"github.com/oomscope/oomscope/sink/natssink"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func testLogger(t *testing.T) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
}

func start(t *testing.T, cfg Config) *Server {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	s, err := Start(ctxT(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// TestRestartKeepsReports publishes through the NATS sink, stops the
// server and starts a new one on the same store: the report is still there.
func TestRestartKeepsReports(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "nats")
	s := start(t, Config{StoreDir: dir, SyncAlways: true, Logger: testLogger(t)})
	if !s.Ready() {
		t.Fatal("not ready after Start")
	}
	if err := s.WaitReady(time.Second); err != nil {
		t.Fatal(err)
	}
	if js := s.srv.JetStreamConfig(); !js.SyncAlways || js.StoreDir != filepath.Join(dir, "jetstream") {
		t.Fatalf("JetStream config %+v", js)
	}
	if !strings.HasPrefix(s.ClientURL(), "nats://127.0.0.1:") || strings.HasSuffix(s.ClientURL(), ":0") {
		t.Fatalf("ClientURL %q", s.ClientURL())
	}
	snk, err := natssink.New(ctxT(t), natssink.Config{URLs: s.ClientURL(), Node: "node-1", CreateStream: true, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	r := &report.Enriched{Report: &report.Report{Schema: report.Schema, ID: "boot/1", Host: "node-1", Kind: report.KindGlobal}}
	if err := snk.Publish(ctxT(t), sink.Delivery{Report: r, Queued: time.Now()}); err != nil {
		t.Fatal(err)
	}
	snk.Close()
	s.Shutdown()
	s.Shutdown()
	if s.Ready() {
		t.Error("Ready after Shutdown")
	}
	if err := s.WaitReady(50 * time.Millisecond); err == nil {
		t.Error("WaitReady after Shutdown = nil")
	}

	s2 := start(t, Config{StoreDir: dir, SyncAlways: true, Logger: testLogger(t)})
	nc, err := nats.Connect(s2.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctxT(t), natssink.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetLastMsgForSubject(ctxT(t), natssink.Subject(r))
	if err != nil {
		t.Fatal(err)
	}
	var back report.Enriched
	if err := json.Unmarshal(m.Data, &back); err != nil || back.ID != "boot/1" || m.Header.Get(jetstream.MsgIDHeader) != "boot/1" {
		t.Fatalf("after restart: %s, %v", m.Data, err)
	}
	if n := st.CachedInfo().State.Msgs; n != 1 {
		t.Errorf("%d messages", n)
	}
}

func TestPortTaken(t *testing.T) {
	s := start(t, Config{StoreDir: t.TempDir(), Logger: testLogger(t)})
	addr := strings.TrimPrefix(s.ClientURL(), "nats://")
	_, err := Start(ctxT(t), Config{Listen: addr, StoreDir: t.TempDir(), Logger: testLogger(t)})
	if err == nil || !strings.Contains(err.Error(), "cannot listen on "+addr) || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("second Start = %v", err)
	}
	t.Logf("second Start: %v", err)

	// Something else holds the port.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := Start(ctxT(t), Config{Listen: l.Addr().String(), StoreDir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("Start on a taken port = %v", err)
	}
}

func TestStoreDirInUse(t *testing.T) {
	dir := t.TempDir()
	start(t, Config{StoreDir: dir, Logger: testLogger(t)})
	_, err := Start(ctxT(t), Config{Listen: "127.0.0.1:0", StoreDir: dir})
	if err == nil || !strings.Contains(err.Error(), "is in use by another server") {
		t.Fatalf("second Start on the store = %v", err)
	}
}

func TestListenValidation(t *testing.T) {
	for _, tc := range []struct{ listen, want string }{
		{"4222", "missing port"},
		{":4222", "has no host"},
		{"127.0.0.1", "missing port"},
		{"127.0.0.1:http", "is not a number"},
		{"127.0.0.1:65536", "is not a number"},
		{"127.0.0.1:-1", "is not a number"},
		{"[::1:4222", "missing ']'"},
	} {
		_, err := Start(ctxT(t), Config{Listen: tc.listen, StoreDir: t.TempDir()})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Listen %q: %v, want %q", tc.listen, err, tc.want)
		}
	}
	if _, err := Start(ctxT(t), Config{Listen: "127.0.0.1:0"}); err == nil || !strings.Contains(err.Error(), "no store directory") {
		t.Errorf("no store dir: %v", err)
	}
	if _, err := Start(ctxT(t), Config{Listen: "127.0.0.1:0", StoreDir: t.TempDir(), Monitor: "8222"}); err == nil || !strings.Contains(err.Error(), "monitor") {
		t.Errorf("bad monitor: %v", err)
	}
	if host, port, err := parseListen(DefaultListen); err != nil || host != "127.0.0.1" || port != 4222 {
		t.Errorf("default: %s %d %v", host, port, err)
	}
}

func TestIPv6AndMonitor(t *testing.T) {
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skip("no IPv6 loopback")
	}
	l.Close()
	s := start(t, Config{Listen: "[::1]:0", StoreDir: t.TempDir(), Monitor: "127.0.0.1:0"})
	if !strings.HasPrefix(s.ClientURL(), "nats://[::1]:") {
		t.Fatalf("ClientURL %q", s.ClientURL())
	}
	if s.srv.MonitorAddr() == nil {
		t.Error("no monitoring listener")
	}
}

func TestNoMonitorByDefault(t *testing.T) {
	s := start(t, Config{StoreDir: t.TempDir()})
	if s.srv.MonitorAddr() != nil {
		t.Errorf("monitoring on %v", s.srv.MonitorAddr())
	}
}

// syncBuffer is a bytes.Buffer safe for the goroutines under test and the test.
type syncBuffer = syncbuf.Buffer

func TestLogger(t *testing.T) {
	var buf syncBuffer
	fatal := make(chan string, 1)
	l := &logger{log: zerolog.New(&buf).Level(zerolog.TraceLevel), fatal: fatal}
	l.Noticef("n %d", 1)
	l.Warnf("w")
	l.Errorf("e")
	l.Debugf("d")
	l.Tracef("t")
	l.Fatalf("f %s", "x")
	l.Fatalf("second") // does not block
	if got := <-fatal; got != "f x" {
		t.Errorf("fatal = %q", got)
	}
	var lines []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, m)
	}
	want := [][2]string{{"info", "n 1"}, {"warn", "w"}, {"error", "e"}, {"debug", "d"}, {"trace", "t"}, {"error", "f x"}, {"error", "second"}}
	if len(lines) != len(want) {
		t.Fatalf("%d lines: %s", len(lines), buf.String())
	}
	for i, w := range want {
		if lines[i]["level"] != w[0] || lines[i]["message"] != w[1] {
			t.Errorf("line %d = %v, want %v", i, lines[i], w)
		}
	}
	if lines[5]["fatal"] != true {
		t.Error("fatal not marked")
	}

	// A real server's log arrives level-mapped.
	var srvLog syncBuffer
	start(t, Config{StoreDir: t.TempDir(), Logger: zerolog.New(&srvLog).Level(zerolog.InfoLevel)})
	out := srvLog.String()
	if !strings.Contains(out, `"level":"info","component":"nats-server","message":"Starting nats-server"`) ||
		strings.Contains(out, `"level":"debug"`) {
		t.Errorf("server log:\n%s", out)
	}
}

// TestServerFailure is a failure only the server sees: its JetStream store
// cannot be made. Start returns the server's own message at once.
func TestServerFailure(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "jetstream"), []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	_, err := Start(ctxT(t), Config{Listen: "127.0.0.1:0", StoreDir: dir, Logger: testLogger(t)})
	if err == nil || !strings.Contains(err.Error(), "failed to start") || !strings.Contains(err.Error(), "JetStream") {
		t.Fatalf("Start = %v", err)
	}
	if el := time.Since(begin); el > 5*time.Second {
		t.Errorf("took %v", el)
	}
	t.Logf("Start: %v", err)
	// The lock was released: a good start on the same directory works
	// once the obstacle is gone.
	if err := os.Remove(filepath.Join(dir, "jetstream")); err != nil {
		t.Fatal(err)
	}
	start(t, Config{StoreDir: dir})
}

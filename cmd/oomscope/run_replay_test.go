package main

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/oomscope/oomscope/natsd"
)

// TestRunReplayTwice: `run --source FILE` sends a saved log's reports
// through the outbox to the archive and to a real NATS JetStream server;
// replaying the same file again publishes nothing twice.
func TestRunReplayTwice(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := natsd.Start(ctx, natsd.Config{Listen: "127.0.0.1:0", StoreDir: t.TempDir(), SyncAlways: true})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	state := t.TempDir()
	c := runConfig{
		Source: "../../testdata/captures/host-6.18-cgroupv1-memcg-pod-limit-3-kills.kmsg", StateDir: state,
		Host: "node-a", MaxTasks: 100, LogLevel: zerolog.WarnLevel, LogFormat: "json", Kubeconfig: "none",
		NATSURL: srv.ClientURL(), NATSCreate: true, DrainTimeout: 30 * time.Second,
		CgroupRoot: "/nonexistent", ProcRoot: "/proc",
	}
	for i := range 2 {
		var out, errb bytes.Buffer
		if err := runDaemon(ctx, &out, &errb, c); err != nil {
			t.Fatalf("run %d: %v\n%s", i+1, err, errb.String())
		}
	}
	files, _ := filepath.Glob(filepath.Join(state, "archive", "files", "*.json"))
	if len(files) != 3 {
		t.Errorf("archive holds %d reports, want 3", len(files))
	}
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, "OOMSCOPE")
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 3 {
		t.Errorf("stream holds %d messages after two replays, want 3", info.State.Msgs)
	}
}

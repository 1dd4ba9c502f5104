package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
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

// TestRunNATSAuth: run publishes to a NATS server that requires a user and
// password given as --nats-user and OOMSCOPE_NATS_PASSWORD, and refuses a
// half-given pair at start, naming the settings.
func TestRunNATSAuth(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opts := &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), Username: "oomscope", Password: "s3cret"}
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	defer srv.Shutdown()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	base := runConfig{
		Source: "../../testdata/captures/host-6.18-cgroupv1-memcg-pod-limit-3-kills.kmsg", StateDir: t.TempDir(),
		Host: "node-a", MaxTasks: 100, LogLevel: zerolog.WarnLevel, LogFormat: "json", Kubeconfig: "none",
		NATSURL: srv.ClientURL(), NATSCreate: true, DrainTimeout: 30 * time.Second, ArchiveDir: "-",
		CgroupRoot: "/nonexistent", ProcRoot: "/proc",
	}
	half := base
	half.NATSAuth.User = "oomscope"
	var out, errb bytes.Buffer
	if err := runDaemon(ctx, &out, &errb, half); err == nil || !strings.Contains(err.Error(), "password") {
		t.Errorf("user without password: %v", err)
	}
	ok := base
	ok.NATSAuth.User, ok.NATSAuth.Password = "oomscope", "s3cret"
	if err := runDaemon(ctx, &out, &errb, ok); err != nil {
		t.Fatalf("run with user/password: %v\n%s", err, errb.String())
	}
	nc, err := nats.Connect(srv.ClientURL(), nats.UserInfo("oomscope", "s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	st, err := js.Stream(ctx, "OOMSCOPE")
	if err != nil {
		t.Fatal(err)
	}
	if info, _ := st.Info(ctx); info.State.Msgs != 3 {
		t.Errorf("stream holds %d messages, want 3", info.State.Msgs)
	}
}

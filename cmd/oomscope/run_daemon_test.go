package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/oomscope/oomscope/daemon"
)

// TestRunOneDaemonPerStateDirAndHealth: a daemon on /dev/kmsg answers
// /healthz, /readyz (once the kernel log is open) and /metrics; a second
// one on the same state dir exits at once naming the reason; SIGTERM (the
// context) stops the first cleanly.
func TestRunOneDaemonPerStateDirAndHealth(t *testing.T) {
	if testing.Short() {
		t.Skip("reads /dev/kmsg")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	state := t.TempDir()
	c := runConfig{
		Source: "/dev/kmsg", Start: daemon.StartEnd, StateDir: state, Host: "node-a", MaxTasks: 100,
		LogLevel: zerolog.WarnLevel, LogFormat: "json", Kubeconfig: "none", NATSURL: "none",
		CgroupRoot: "/nonexistent", ProcRoot: "/proc", Metrics: addr, ShutdownGrace: time.Second,
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var errb1 bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- runDaemon(ctx, io.Discard, &errb1, c) }()

	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body := get("/readyz")
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz never ready: %d %s\n%s", code, body, errb1.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d", code)
	}
	code, metrics := get("/metrics")
	for _, name := range []string{"oomscope_kmsg_records_read_total", "oomscope_outbox_depth", "oomscope_outbox_put_total", "go_goroutines"} {
		if code != http.StatusOK || !strings.Contains(metrics, name) {
			t.Errorf("/metrics (%d) lacks %s", code, name)
		}
	}

	second := c
	second.Metrics = ""
	var errb2 bytes.Buffer
	sctx, scancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer scancel()
	began := time.Now()
	err = runDaemon(sctx, io.Discard, &errb2, second)
	if err == nil || !strings.Contains(err.Error(), "in use by another oomscope") {
		t.Errorf("second daemon on the same state dir: %v", err)
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Errorf("the second daemon took %v to give up", d)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("first daemon: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the first daemon did not stop")
	}
}

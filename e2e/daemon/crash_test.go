package daemon_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/oomscope/oomscope/daemon"
	"github.com/oomscope/oomscope/e2e/kernellock"
	"github.com/oomscope/oomscope/outbox"
)

// crashChildEnv makes the test binary the daemon of TestCrashBeforeCheckpoint:
// its value is the state directory.
const crashChildEnv = "OOMSCOPE_TEST_CRASH_CHILD"

// TestMain runs the crash test's daemon when the test binary is started as
// one, and the tests otherwise.
func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		os.Exit(crashChild(dir))
	}
	os.Exit(m.Run())
}

// crashChild is daemon.Run as `oomscope run` wires it, without the sinks:
// the real outbox as its queue, a checkpoint that is saved only every
// hour (so that a SIGKILL lands after the report is stored and before the
// checkpoint moves), user-space records accepted (the test writes the
// report), logs as JSON on stderr.
func crashChild(dir string) int {
	log := zerolog.New(os.Stderr).With().Timestamp().Logger()
	ob, err := outbox.Open(filepath.Join(dir, "outbox.db"), outbox.Config{})
	if err != nil {
		log.Error().Err(err).Msg("outbox")
		return 1
	}
	defer ob.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	err = daemon.Run(ctx, daemon.Config{
		StatePath:       filepath.Join(dir, "checkpoint.json"),
		Queue:           ob,
		Logger:          log,
		AcceptUserspace: true,
		CheckpointEvery: time.Hour,
		OnReady:         func() { log.Info().Msg("crash child ready") },
	})
	if err != nil {
		log.Error().Err(err).Msg("run")
		return 1
	}
	return 0
}

// crashDaemon is a running crash child and the lines of its log.
type crashDaemon struct {
	cmd   *exec.Cmd
	lines chan string
}

func startCrashChild(t *testing.T, dir string) *crashDaemon {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &crashDaemon{cmd: cmd, lines: make(chan string, 1024)}
	go func() {
		defer close(d.lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			d.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	d.waitLine(t, "crash child ready")
	return d
}

// waitLine returns the first log line holding want, failing after 15 s.
func (d *crashDaemon) waitLine(t *testing.T, want string) string {
	t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case l, ok := <-d.lines:
			if !ok {
				t.Fatalf("the daemon exited before logging %q", want)
			}
			if strings.Contains(l, want) {
				return l
			}
		case <-timeout:
			t.Fatalf("the daemon did not log %q within 15s", want)
		}
	}
}

// TestCrashBeforeCheckpoint: with the outbox as its queue the daemon saves
// the checkpoint every CheckpointEvery, not after each report. Killed with
// SIGKILL after storing a report and before the checkpoint moved, it reads
// the report again when restarted, and the outbox refuses it: it is
// stored once.
func TestCrashBeforeCheckpoint(t *testing.T) {
	kernellock.Acquire(t)
	dir := t.TempDir()
	state := filepath.Join(dir, "checkpoint.json")
	marker := checkpointNow(t, state)
	tag := fmt.Sprintf("crash%d", os.Getpid()%100000)

	d := startCrashChild(t, dir)
	inject(t, reportTexts(t, tag))
	stored := d.waitLine(t, "published OOM report")
	if !strings.Contains(stored, tag) {
		t.Fatalf("stored another report: %s", stored)
	}
	if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	d.cmd.Wait()
	cp, ok, err := daemon.LoadCheckpoint(state)
	if err != nil || !ok || cp.Seq != marker {
		t.Fatalf("checkpoint after the SIGKILL: %+v %v %v; want it still at the marker %d (saved hourly)", cp, ok, err, marker)
	}

	d = startCrashChild(t, dir)
	again := d.waitLine(t, "OOM report already in the outbox")
	if !strings.Contains(again, tag) {
		t.Fatalf("another report read again: %s", again)
	}
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for l := range d.lines {
		if strings.Contains(l, "published OOM report") {
			t.Errorf("published again after the restart: %s", l)
		}
	}
	if err := d.cmd.Wait(); err != nil {
		t.Fatalf("the restarted daemon: %v", err)
	}
	cp, ok, err = daemon.LoadCheckpoint(state)
	if err != nil || !ok || cp.Seq <= marker {
		t.Errorf("checkpoint after SIGTERM: %+v %v %v; want it moved past the report (saved at the end)", cp, ok, err)
	}
	ob, err := outbox.Open(filepath.Join(dir, "outbox.db"), outbox.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	if n, _ := ob.Pending("any"); n != 1 {
		t.Errorf("the outbox holds %d reports, want the one, once", n)
	}
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/oomscope/oomscope/archive"
	"github.com/oomscope/oomscope/daemon"
	"github.com/oomscope/oomscope/enrich/cgroupfs"
	"github.com/oomscope/oomscope/internal/cgscratch"
	"github.com/oomscope/oomscope/natsd"
	"github.com/oomscope/oomscope/report"
	"github.com/oomscope/oomscope/sink/natssink"
)

// demoLimit is the memory limit of the demo's container cgroup.
const demoLimit = 64 << 20

func newDemoCmd() *cobra.Command {
	var keep bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Cause one real OOM kill in a scratch cgroup and show its report arriving (root)",
		Long: `Creates a Kubernetes-shaped scratch memory cgroup below oomscope's own
(…/kubepods/burstable/pod<uid>/<container id>, limit 64 MiB), starts the
daemon's whole pipeline on /dev/kmsg with an embedded NATS server and a
local archive, runs a process in the cgroup that allocates until the
kernel's OOM killer kills it, and shows the report as it arrives: the
post-mortem text, the NATS subject it was published on, and the archive
file. The cgroup is kept until the report (with its post-kill snapshot)
is read, then removed.

Needs root and a writable memory controller (cgroup v1, or v2 with the
memory controller enabled for the children of oomscope's own cgroup).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDemo(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), keep, timeout)
		},
	}
	cmd.Flags().BoolVar(&keep, "keep-state", false, "keep the demo's state directory (archive, outbox, NATS store) and print where it is")
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "give up when no report arrived by then")
	return cmd
}

// newDemoAllocCmd is the demo's allocating process (hidden): it waits for
// a line on stdin (the demo moves it into the cgroup meanwhile), then
// allocates and touches memory until the OOM killer kills it.
func newDemoAllocCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "demo-alloc",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			runtime.LockOSThread()
			if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
				return fmt.Errorf("demo-alloc: %w", err)
			}
			var keep [][]byte
			for range 4096 { // 4 GiB at most, far above the limit
				b, err := syscall.Mmap(-1, 0, 1<<20, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
				if err != nil {
					return fmt.Errorf("demo-alloc: mmap: %w", err)
				}
				for i := 0; i < len(b); i += 4096 {
					b[i] = 1
				}
				keep = append(keep, b)
			}
			return errors.New("demo-alloc: allocated 4 GiB without being killed: is the limit set?")
		},
	}
}

// demoPreflight refuses a demo that cannot work, before it touches anything.
func demoPreflight(euid int) error {
	if euid != 0 {
		return errors.New("oomscope demo needs root: it creates a memory cgroup and reads /dev/kmsg (try: sudo oomscope demo)")
	}
	return nil
}

func runDemo(ctx context.Context, stdout, stderr io.Writer, keep bool, timeout time.Duration) error {
	if err := demoPreflight(os.Geteuid()); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	say := func(format string, a ...any) { fmt.Fprintf(stdout, "==> "+format+"\n", a...) }

	h, err := cgscratch.New(ctx)
	if err != nil {
		return fmt.Errorf("oomscope demo needs a writable memory cgroup controller below its own cgroup: %w", err)
	}
	defer h.Close(context.WithoutCancel(ctx))
	uid, cid := cgscratch.NewPodUID(), cgscratch.NewContainerID()
	cg, err := h.Create(cgscratch.CgroupfsContainer(cgscratch.QoSBurstable, uid, cid))
	if err != nil {
		return fmt.Errorf("demo: creating the scratch cgroup: %w", err)
	}
	if _, err := cg.SetLimit(demoLimit); err != nil {
		return fmt.Errorf("demo: setting the memory limit: %w", err)
	}
	say("scratch cgroup (cgroup %s) %s, memory limit 64 MiB", h.Version(), cg.Path)

	state, err := os.MkdirTemp("", "oomscope-demo-")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(state)
	}
	srv, err := natsd.Start(ctx, natsd.Config{Listen: "127.0.0.1:0", StoreDir: filepath.Join(state, "nats"), SyncAlways: true})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer srv.Shutdown()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer nc.Close()
	msgs := make(chan *nats.Msg, 16)
	if _, err := nc.ChanSubscribe("oomscope.v1.>", msgs); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	say("embedded NATS server at %s, subscribed to oomscope.v1.>", srv.ClientURL())

	ready := make(chan struct{})
	var logs bytes.Buffer
	runCtx, stopRun := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() {
		ran <- runDaemon(runCtx, stdout, &logs, runConfig{
			Source: "/dev/kmsg", Start: daemon.StartEnd, StateDir: state,
			Host: defaultHost(), MaxTasks: 100, LogLevel: zerolog.WarnLevel, LogFormat: "json",
			Kubeconfig: "none", NATSURL: srv.ClientURL(), NATSCreate: true,
			CgroupRoot: cgroupfs.DefaultCgroupRoot, ProcRoot: cgroupfs.DefaultProcRoot,
			ShutdownGrace: 5 * time.Second, onReady: func() { close(ready) },
		})
	}()
	defer func() {
		stopRun()
		if err := <-ran; err != nil {
			fmt.Fprintf(stderr, "demo: the pipeline ended with: %v\n%s", err, logs.String())
		}
	}()
	select {
	case <-ready:
	case err := <-ran:
		ran <- err
		return fmt.Errorf("demo: the pipeline did not start: %v\n%s", err, logs.String())
	case <-ctx.Done():
		return fmt.Errorf("demo: the pipeline did not start in time\n%s", logs.String())
	}
	say("oomscope is reading /dev/kmsg; starting a process that allocates past the limit")

	self, err := os.Executable()
	if err != nil {
		return err
	}
	alloc := exec.CommandContext(ctx, self, "demo-alloc")
	gate, err := alloc.StdinPipe()
	if err != nil {
		return err
	}
	if err := alloc.Start(); err != nil {
		return fmt.Errorf("demo: starting the allocator: %w", err)
	}
	if err := cg.AddProc(alloc.Process.Pid); err != nil {
		alloc.Process.Kill()
		alloc.Wait()
		return fmt.Errorf("demo: moving the allocator into the cgroup: %w", err)
	}
	io.WriteString(gate, "go\n")
	werr := alloc.Wait()
	if ws, ok := alloc.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		return fmt.Errorf("demo: the allocator (pid %d) was not OOM-killed: %v", alloc.Process.Pid, werr)
	}
	say("the kernel killed pid %d (SIGKILL); waiting for its report", alloc.Process.Pid)

	// Other kills on this machine may be published too: ours is the one
	// on our pod's subject.
	for {
		var m *nats.Msg
		select {
		case m = <-msgs:
		case <-ctx.Done():
			return fmt.Errorf("demo: no report within %v\n%s", timeout, logs.String())
		}
		if !strings.HasSuffix(m.Subject, "."+natssink.Token(uid)) {
			continue
		}
		var r report.Enriched
		if err := json.Unmarshal(m.Data, &r); err != nil || r.Report == nil {
			return fmt.Errorf("demo: the NATS message is not a report: %v", err)
		}
		fmt.Fprintln(stdout)
		if err := writeText(stdout, &r, ""); err != nil {
			return err
		}
		fmt.Fprintln(stdout)
		say("report published on NATS subject %s (%d bytes, Nats-Msg-Id %s)", m.Subject, len(m.Data), m.Header.Get("Nats-Msg-Id"))
		// Each sink delivers on its own: the archive may confirm a moment
		// after NATS.
		path := archive.Path(filepath.Join(state, "archive"), r.ID)
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if _, err := os.Stat(path); err == nil {
				say("archived with its raw kernel lines at %s", path)
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("demo: the report reached NATS but not the archive (%s) within 10s", path)
			}
		}
		break
	}
	if keep {
		say("state kept in %s (oomscope archive list --archive-dir %s/archive)", state, state)
	}
	say("done: the scratch cgroup is removed")
	return nil
}

// Command cadvisorreader is reader (3) of stormbench: cAdvisor's
// utils/oomparser, as the kubelet runs it (oomparser.New, then StreamOoms
// in a goroutine), printing one JSON line (bench/internal/wire) per OOM
// instance with the victim pid and command, the container name and the
// victim container name, stamped with CLOCK_MONOTONIC when the instance
// left StreamOoms.
//
// Like the kubelet, it reads the whole ring buffer first (kmsgparser
// starts at the oldest record), then follows the log. SIGTERM or SIGINT
// stops it.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/google/cadvisor/utils/oomparser"
	"golang.org/x/sys/unix"

	"github.com/oomscope/oomscope/bench/internal/wire"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "cadvisorreader:", err)
		os.Exit(1)
	}
}

func monoNS() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

func run() error {
	p, err := oomparser.New()
	if err != nil {
		return err
	}
	ooms := make(chan *oomparser.OomInstance, 10)
	go p.StreamOoms(ooms)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	out := bufio.NewWriter(os.Stdout)
	enc := json.NewEncoder(out)
	if err := enc.Encode(wire.Line{Event: wire.EventReady}); err != nil {
		return err
	}
	if err := out.Flush(); err != nil {
		return err
	}
	n := 0
	for {
		select {
		case <-sig:
			if err := enc.Encode(wire.Line{Event: wire.EventStats, Reports: n}); err != nil {
				return err
			}
			return out.Flush()
		case o := <-ooms:
			t := monoNS()
			n++
			l := wire.Line{
				Event: wire.EventReport, TNS: t, PID: o.Pid, Comm: o.ProcessName,
				Cgroup: o.ContainerName, Limiting: o.VictimContainerName,
			}
			if o.Pid > 0 {
				l.Fields |= wire.FieldPID
			}
			if o.ProcessName != "" {
				l.Fields |= wire.FieldComm
			}
			// StreamOoms starts both names at "/" and overwrites them
			// from the oom-kill: summary (or the pre-5.0 "Task in"
			// line) when the report has one.
			if o.ContainerName != "/" || o.VictimContainerName != "/" {
				l.Fields |= wire.FieldCgroup
			}
			if err := enc.Encode(l); err != nil {
				return err
			}
			if err := out.Flush(); err != nil {
				return err
			}
		}
	}
}

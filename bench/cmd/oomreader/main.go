// Command oomreader is reader (1) of stormbench: oomscope's live source and
// parser and nothing else — kmsg.OpenReader from the end of the kernel log,
// oomparse.Parser with the daemon's options (WithLiveTiming, and
// WithMemoryCgroupV1 on a cgroup v1 memory controller), fed and
// expired on the kernel clock by daemon.Run's loop (kmsg.Reader: one
// goroutine reads and parses) — printing one JSON line (bench/internal/wire) per victim of
// every report, with the latency from the victim line's kernel timestamp
// (Record.Mono) to CLOCK_MONOTONIC when the report left the parser.
//
// Records written by user space (facility != 0) are fed blank, as the
// daemon feeds them. SIGTERM or SIGINT stops it; the last line carries the
// records read. -cpuprofile writes a runtime/pprof CPU profile of the
// whole run (at -profile-hz samples per second).
//
// Profile method: stormbench passes -cpuprofile in its storm phases;
// `go tool pprof -top FILE...` merges them.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/oomscope/oomscope/bench/internal/wire"
	"github.com/oomscope/oomscope/kmsg"
	"github.com/oomscope/oomscope/oomparse"
	"github.com/oomscope/oomscope/report"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "oomreader:", err)
		os.Exit(1)
	}
}

// seqRing maps the sequence numbers of the latest records to their kernel
// timestamps, to find the victim line's stamp of a report.
type seqRing struct {
	seq  [1 << 14]uint64
	mono [1 << 14]time.Duration
}

func (r *seqRing) put(seq uint64, mono time.Duration) {
	i := seq % uint64(len(r.seq))
	r.seq[i], r.mono[i] = seq, mono
}

func (r *seqRing) get(seq uint64) (time.Duration, bool) {
	i := seq % uint64(len(r.seq))
	return r.mono[i], r.seq[i] == seq && seq != 0
}

func run() error {
	profile := flag.String("cpuprofile", "", "write a CPU profile to this file")
	hz := flag.Int("profile-hz", 200, "CPU profile samples per second: at most the kernel's CONFIG_HZ (CPU-time timers fire on ticks; a faster rate loses samples)")
	memV1 := flag.Bool("memory-cgroup-v1", false, "the host's memory controller is on cgroup v1 (oomparse.WithMemoryCgroupV1, as `oomscope run` detects it)")
	flag.Parse()

	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			return err
		}
		defer f.Close()
		// Set before StartCPUProfile, which then keeps this rate (and
		// prints a warning that it cannot set its own): at the default
		// 100 Hz a storm costs the reader too few samples. Above the
		// kernel's tick rate (CONFIG_HZ) samples are lost: 1000 Hz on a
		// HZ=250 kernel recorded a quarter of the CPU time.
		runtime.SetCPUProfileRate(*hz)
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	live, err := kmsg.OpenReader(ctx, kmsg.WithStartAtEnd())
	if err != nil {
		return err
	}
	defer live.Close()
	popts := []oomparse.Option{oomparse.WithBootID(live.BootID()), oomparse.WithLiveTiming()}
	if *memV1 {
		popts = append(popts, oomparse.WithMemoryCgroupV1()) // as `oomscope run` on such a host
	}
	p, err := oomparse.New(popts...)
	if err != nil {
		return err
	}
	out := bufio.NewWriter(os.Stdout)
	enc := json.NewEncoder(out)
	if err := enc.Encode(wire.Line{Event: wire.EventReady}); err != nil {
		return err
	}
	if err := out.Flush(); err != nil {
		return err
	}

	var (
		ring    = new(seqRing)
		records uint64
		nrep    int
		reports []report.Report
	)
	emit := func() error {
		if len(reports) == 0 {
			return nil
		}
		now, err := kmsg.KernelClock()
		if err != nil {
			return err
		}
		for i := range reports {
			r := &reports[i]
			nrep++
			for j := range r.Victims {
				v := &r.Victims[j]
				l := wire.Line{
					Event: wire.EventReport, TNS: int64(now), ID: r.ID, PID: v.PID, Comm: v.Comm,
					Seq: v.Seq, Cgroup: r.TaskMemcg, Limiting: r.OOMMemcg, Partial: r.Partial,
					Fields: wire.Of(r, v),
				}
				mono, ok := ring.get(v.Seq)
				if !ok && r.Last.MonoUsec != nil {
					mono, ok = time.Duration(*r.Last.MonoUsec)*time.Microsecond, true
				}
				if ok {
					l.VictimMonoUS = mono.Microseconds()
					l.LatencyUS = (now - mono).Microseconds()
				}
				if err := enc.Encode(l); err != nil {
					return err
				}
			}
		}
		return out.Flush()
	}

	// The loop of daemon.Run: one goroutine reads the kernel log
	// (kmsg.Reader) and parses, waiting for records until the parser's
	// deadline; when the kernel has none left, the parser is told the time.
	// The kernel clock is read through Go's monotonic clock.
	clock := kernelClock()
	feed := func(rec kmsg.Record) {
		records++
		if rec.HasSeq && rec.HasMono {
			ring.put(rec.Seq, rec.Mono)
		}
		if rec.Facility != 0 {
			rec.Text, rec.Raw, rec.Dict = "", "", nil
		}
		reports = p.Feed(reports, rec)
	}
	var recs []kmsg.Record
	for {
		var dl time.Time
		d, due := p.Deadline()
		if due {
			dl = time.Now().Add(d - clock())
		}
		var err error
		recs, err = live.Read(recs[:0], dl)
		if errors.Is(err, kmsg.ErrClosed) {
			break
		}
		if err != nil {
			return err
		}
		reports = reports[:0]
		for _, rec := range recs {
			feed(rec)
		}
		if due && (len(recs) == 0 || clock() > d+10*time.Second) {
			reports = p.Expire(reports, clock())
		}
		if err := emit(); err != nil {
			return err
		}
	}
	if err := enc.Encode(wire.Line{Event: wire.EventStats, Records: records, Lost: live.Lost(), Reports: nrep}); err != nil {
		return err
	}
	return out.Flush()
}

// kernelClock is daemon.Run's clock: CLOCK_MONOTONIC read once through the
// kernel, then through Go's monotonic clock (the same clock, by the vDSO).
func kernelClock() func() time.Duration {
	base, err := kmsg.KernelClock()
	t0 := time.Now()
	if err != nil {
		return func() time.Duration { d, _ := kmsg.KernelClock(); return d }
	}
	return func() time.Duration { return base + time.Since(t0) }
}

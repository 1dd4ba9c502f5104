// Command stormbench makes real memory-cgroup OOM kills on this machine and
// reads them, in the same run, on the same kernel, from the same live
// /dev/kmsg, with three readers side by side, each in a process of its own:
//
//  1. oomreader: oomscope's live source and parser alone (kmsg.OpenReader at
//     the end of the log + oomparse), latency to the report leaving the
//     parser;
//  2. the whole `oomscope run` pipeline (built from ../cmd/oomscope with the
//     main module's go.mod): --start end, the archive and the embedded NATS
//     server on, no Kubernetes API; reports are counted from a NATS
//     subscription to oomscope.v1.>, latency to their arrival there;
//  3. cadvisorreader: github.com/google/cadvisor/utils/oomparser, as the
//     kubelet runs it.
//
// The kills happen in a scratch cgroup below the harness's own memory
// cgroup, shaped as a Kubernetes container's
// (.../kubepods/burstable/pod<uid>/<64-hex id>, see e2e/cgscratch), in two
// phases: steady (one kill a second) and storm (several allocators at once,
// in a loop: the kernel prints the report header at most 10 times per 5 s,
// the other kills are bare "Killed process" lines). The ground truth is the
// kernel's own oom_kill counter of the cgroup. Each phase gets fresh reader
// processes, so that their CPU time and peak RSS are the phase's.
//
// With -floor it also measures the floor: a bare read(2) loop over the
// kernel ring buffer against the live source and the parser, and
// `oomscope parse` of a generated syslog file against cat.
//
// It prints one Markdown table per phase and writes them into
// docs/performance.md (-doc). It needs root and a writable memory cgroup
// controller, and removes every cgroup it created, also on errors and
// Ctrl-C. Run it from the bench module: `make bench-live` (full form) or
// `make bench-live SHORT=1` (-short, for CI: exits 1 when oomscope
// reported fewer kills than the kernel counted, attributed one to another
// cgroup, or `oomscope run` attributed fewer than 95 % of a storm's kills
// to their container).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/oomscope/oomscope/e2e/kernellock"
	"github.com/oomscope/oomscope/internal/cgscratch"
)

// config is what the flags say.
type config struct {
	short           bool
	runs            int
	steadyKills     int
	stormKills      int
	stormMax        time.Duration
	stormBatch      int
	stormInterval   time.Duration
	stormAlive      int
	splitContainers int
	limitMiB        int
	allocMiB        int
	drain           time.Duration
	floor           bool
	syslogMiB       int
	doc             string
	pprofDir        string
	timeout         time.Duration
	lockWait        time.Duration
	verbose         bool
	phases          []phaseKind
	childEnv        []string
	command         string // the command line, for the doc
}

func parseFlags(args []string) (config, error) {
	fs := flag.NewFlagSet("stormbench", flag.ContinueOnError)
	var c config
	fs.BoolVar(&c.short, "short", false, "the short form, for CI: 1 run, 10 steady kills, 60 storm kills, no floor, a bound of 3 minutes")
	fs.IntVar(&c.runs, "runs", 0, "runs of both phases (tables show the median of each figure; default 3, short 1)")
	fs.IntVar(&c.steadyKills, "steady-kills", 0, "kills of the steady phase, one a second (default 60, short 10)")
	fs.IntVar(&c.stormKills, "storm-kills", 0, "kills of the storm (default 330, short 60)")
	fs.DurationVar(&c.stormMax, "storm-max", 60*time.Second, "the storm stops starting allocators after this long")
	fs.IntVar(&c.stormBatch, "storm-batch", 3, "allocators started at once in the storm")
	fs.DurationVar(&c.stormInterval, "storm-interval", 500*time.Millisecond, "time between two batches of the storm")
	fs.IntVar(&c.stormAlive, "storm-alive", 8, "at most this many allocators alive at once (per container)")
	fs.IntVar(&c.splitContainers, "split-containers", 2, "containers (each its own pod) the split phase's storm is split across, all killing at once")
	fs.IntVar(&c.limitMiB, "limit-mib", 32, "memory limit of the container cgroup")
	fs.IntVar(&c.allocMiB, "alloc-mib", 256, "MiB each allocator tries to allocate (more than the limit: it is killed)")
	fs.DurationVar(&c.drain, "drain", 45*time.Second, "how long after the last kill to wait for the readers' reports")
	fs.BoolVar(&c.floor, "floor", true, "also measure the floor (read(2) loop, parser cost, parse of a syslog file); off with -short")
	fs.IntVar(&c.syslogMiB, "syslog-mib", 1024, "size of the generated syslog file of the floor")
	fs.StringVar(&c.doc, "doc", "", "Markdown file to write the tables into (default ../docs/performance.md; \"-\": none)")
	fs.StringVar(&c.pprofDir, "pprof-dir", "", "keep the CPU profiles of oomreader (and the binaries) in this directory")
	fs.DurationVar(&c.timeout, "timeout", 0, "bound on the run after the builds (default 30m, short 3m; the builds have a bound of 15m)")
	fs.DurationVar(&c.lockWait, "lock-wait", 10*time.Minute, "how long to wait for other kernel-log tests to finish (e2e/kernellock)")
	fs.BoolVar(&c.verbose, "v", false, "log more")
	phases := fs.String("phases", "steady,storm", "the phases of each run, in order: steady, storm, split (the storm split across -split-containers containers)")
	childEnv := fs.String("reader-env", "", "extra environment of the three readers, comma-separated KEY=VALUE (e.g. GOMAXPROCS=1)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	def := func(v *int, full, short int) {
		if *v == 0 {
			*v = full
			if c.short {
				*v = short
			}
		}
	}
	def(&c.runs, 3, 1)
	def(&c.steadyKills, 60, 10)
	def(&c.stormKills, 330, 60)
	if c.timeout == 0 {
		c.timeout = 30 * time.Minute
		if c.short {
			c.timeout = 3 * time.Minute
		}
	}
	if c.short && !set["floor"] {
		c.floor = false
	}
	if c.short && !set["drain"] {
		c.drain = 30 * time.Second
	}
	for _, p := range strings.Split(*phases, ",") {
		switch k := phaseKind(strings.TrimSpace(p)); k {
		case phaseSteady, phaseStorm, phaseSplit:
			c.phases = append(c.phases, k)
		default:
			return c, fmt.Errorf("-phases: unknown phase %q (steady, storm, split)", p)
		}
	}
	if *childEnv != "" {
		for _, kv := range strings.Split(*childEnv, ",") {
			if !strings.Contains(kv, "=") {
				return c, fmt.Errorf("-reader-env: %q is not KEY=VALUE", kv)
			}
			c.childEnv = append(c.childEnv, kv)
		}
	}
	if c.doc == "" {
		c.doc = filepath.Join("..", "docs", "performance.md")
	}
	if c.runs < 1 || c.steadyKills < 1 || c.stormKills < 1 || c.stormBatch < 1 || c.stormAlive < 1 || c.splitContainers < 1 {
		return c, errors.New("-runs, -steady-kills, -storm-kills, -storm-batch, -storm-alive and -split-containers must be >= 1")
	}
	if c.allocMiB <= c.limitMiB {
		return c, fmt.Errorf("-alloc-mib %d must exceed -limit-mib %d", c.allocMiB, c.limitMiB)
	}
	c.command = "stormbench " + strings.Join(args, " ")
	return c, nil
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "stormbench:", err)
		os.Exit(2)
	}
	code, err := run(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "stormbench:", err)
		if code == 0 {
			code = 2
		}
	}
	os.Exit(code)
}

// run returns 1 when oomscope missed kills, 2 on errors.
func run(cfg config) (int, error) {
	level := zerolog.InfoLevel
	if cfg.verbose {
		level = zerolog.DebugLevel
	}
	log := zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: "15:04:05"}).Level(level).With().Timestamp().Logger()

	sigCtx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()

	if os.Geteuid() != 0 {
		return 2, errors.New("needs root (a writable memory cgroup controller and /dev/kmsg)")
	}
	// The builds have a bound of their own (a cold build cache takes
	// minutes on a small machine); -timeout bounds the rest.
	env, err := newEnv(sigCtx, cfg, log)
	if err != nil {
		return 2, err
	}
	defer env.close()
	ctx, cancel := context.WithTimeout(sigCtx, cfg.timeout)
	defer cancel()

	unlock, err := lockKernelLog(ctx, cfg.lockWait, log)
	if err != nil {
		return 2, err
	}
	defer unlock()

	h, err := cgscratch.New(ctx, cgscratch.WithLogger(log))
	if err != nil {
		return 2, fmt.Errorf("scratch cgroups: %w", err)
	}
	defer func() {
		// Not ctx: it may be done (Ctrl-C, timeout); cleaning up must not be.
		cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer ccancel()
		if err := h.Close(cctx); err != nil {
			log.Error().Err(err).Msg("removing the scratch cgroups")
		} else {
			log.Info().Str("cgroup", h.Root().Path).Msg("scratch cgroups removed")
		}
	}()
	if h.Version() != cgscratch.V1 {
		log.Warn().Msg("cgroup v2: the kernel counter read is memory.events.local oom_kill")
	}
	env.h = h
	log.Info().Str("version", h.Version().String()).Str("root", h.Root().Path).Msg("scratch cgroup")

	var results []*phaseResult
	missed := false
	var failed []string
	for i := 1; i <= cfg.runs && ctx.Err() == nil; i++ {
		for _, ph := range cfg.phases {
			res, err := env.runPhase(ctx, i, ph)
			if err != nil {
				return 2, fmt.Errorf("run %d, %s: %w", i, ph, err)
			}
			results = append(results, res)
			fmt.Println(res.markdown())
			if res.oomscopeMissed() {
				missed = true
				log.Error().Int("run", i).Str("phase", string(ph)).Msg("oomscope reported fewer kills than the kernel counted")
			}
			if why := res.oomscopeFailed(); why != "" {
				failed = append(failed, why)
				log.Error().Int("run", i).Str("phase", string(ph)).Msg(why)
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return 2, fmt.Errorf("stopped: %w", context.Cause(ctx))
	}
	var fl *floorResult
	if cfg.floor {
		fl, err = env.measureFloor(ctx)
		if err != nil {
			return 2, fmt.Errorf("floor: %w", err)
		}
		fmt.Println(fl.markdown())
	}
	sum := summarize(cfg, env.machine, results, fl)
	sum.cgroup = h.Version().String()
	sum.clock, sum.records = env.watch.clock()
	var profiles []string
	for _, r := range results {
		if r.profile != "" {
			profiles = append(profiles, r.profile)
		}
	}
	if len(profiles) > 0 {
		sum.top, sum.topErr = pprofTop(ctx, profiles)
		if sum.topErr == nil {
			fmt.Println("oomreader, storm CPU profile:\n" + sum.top)
		}
	}
	fmt.Println(sum.medianTables())
	if cfg.doc != "-" {
		if err := writeDoc(cfg.doc, cfg, sum); err != nil {
			return 2, err
		}
		log.Info().Str("file", cfg.doc).Msg("tables written")
	}
	if missed {
		return 1, errors.New("oomscope reported fewer kills than the kernel counted (see the tables)")
	}
	if len(failed) > 0 {
		return 1, fmt.Errorf("attribution: %s", strings.Join(failed, "; "))
	}
	return 0, nil
}

// lockKernelLog takes the machine-wide lock of the tests that put OOM
// reports into the kernel log (e2e/kernellock), so that no other run's
// kills interleave with ours.
func lockKernelLog(ctx context.Context, wait time.Duration, log zerolog.Logger) (func(), error) {
	f, err := os.OpenFile(kernellock.Path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("kernel log lock: %w", err)
	}
	deadline := time.Now().Add(wait)
	logged := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("kernel log lock %s: %w", kernellock.Path, err)
		}
		if !logged {
			log.Info().Str("lock", kernellock.Path).Msg("another test is making OOM kills; waiting")
			logged = true
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("kernel log lock %s still held after %v", kernellock.Path, wait)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

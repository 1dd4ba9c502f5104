package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/oomscope/oomscope/archive"
	"github.com/oomscope/oomscope/daemon"
	"github.com/oomscope/oomscope/enrich"
	"github.com/oomscope/oomscope/enrich/cgroupfs"
	"github.com/oomscope/oomscope/enrich/counterattr"
	"github.com/oomscope/oomscope/enrich/kubepods"
	"github.com/oomscope/oomscope/enrich/procattr"
	"github.com/oomscope/oomscope/kmsg"
	"github.com/oomscope/oomscope/kube"
	"github.com/oomscope/oomscope/natsd"
	"github.com/oomscope/oomscope/oomparse"
	"github.com/oomscope/oomscope/outbox"
	"github.com/oomscope/oomscope/report"
	"github.com/oomscope/oomscope/sink"
	"github.com/oomscope/oomscope/sink/kubeevents"
	"github.com/oomscope/oomscope/sink/natssink"
)

// runConfig is what the run command's flags say.
type runConfig struct {
	Device string
	// Source is the kernel log device or a saved log file ("-": stdin).
	Source        string
	NATSURL       string
	NATSListen    string
	NATSCreate    bool
	DrainTimeout  time.Duration
	ShutdownGrace time.Duration
	// NATSAuth holds the connection settings of --nats-url (auth and TLS).
	NATSAuth natssink.Config
	// onReady, if set, is called once the kernel log is open (the demo).
	onReady    func()
	Start      daemon.Start
	StateDir   string
	ArchiveDir string
	Stdout     bool
	Output     string
	Raw        bool
	Host       string
	MaxTasks   int
	LogLevel   zerolog.Level
	LogFormat  string
	Kubeconfig string
	PodLookup  podLookupFunc
	PodLabels  []string
	CgroupRoot string
	ProcRoot   string
	Metrics    string
	// Pprof is the address of the Go profiling endpoints (hidden flag
	// --pprof-addr, for measuring the daemon); empty: none.
	Pprof string
	// KeepStartupPages leaves the executable's start-up pages resident
	// (hidden flag --keep-startup-pages, for measuring; see
	// releaseExecutablePages).
	KeepStartupPages bool
}

func newRunCmd(lookup podLookupFunc) *cobra.Command {
	var (
		c                  runConfig
		start, level, lfmt string
		configFile, output string
	)
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Watch the kernel log and publish every OOM-kill report (the node daemon)",
		Long: `Tails /dev/kmsg, rebuilds every oom-killer report, enriches it (pod,
container, QoS, cgroup snapshot, diagnosis) and publishes it through a
durable outbox in --state-dir to every output:

  archive            one JSON file per report with the raw kernel lines
                     (STATE-DIR/archive; "oomscope archive list|show")
  NATS JetStream     subject oomscope.v1.kill.<node>.<namespace>.<pod>:
                     an embedded server on --nats-listen unless --nats-url
  Kubernetes Events  reason OOMKilling on the Pod or the Node, in a cluster
                     or with --kubeconfig
  standard output    with --stdout, JSON lines or (-o text) the post-mortem

An output that is down slows nothing else and loses nothing: each has its
own cursor in the outbox and retries until it confirmed. A checkpoint
records how far the kernel log was read; after a restart in the same boot,
reading resumes there, and no report is published twice. Only one oomscope
runs per --state-dir. Needs read access to /dev/kmsg (root or CAP_SYSLOG).

With --source FILE, a saved log is replayed through the same pipeline and
run exits once every output confirmed every report.

Every flag can also be set as an environment variable OOMSCOPE_<FLAG>
(--nats-url: OOMSCOPE_NATS_URL) or as a key of the YAML file named by
--config ("nats-url: nats://…"); the command line wins over the
environment, which wins over the file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if configFile == "" {
				configFile = os.Getenv(envName("config"))
			}
			if err := applyConfig(cmd, configFile); err != nil {
				return usageError{err}
			}
			var err error
			if output != "json" && output != "text" {
				return usageError{fmt.Errorf("-o/--output %q: want json or text", output)}
			}
			c.Output = output
			if c.Start, err = daemon.ParseStart(start); err != nil {
				return usageError{err}
			}
			if c.LogLevel, err = zerolog.ParseLevel(level); err != nil {
				return usageError{fmt.Errorf("--log-level: %w", err)}
			}
			if lfmt != "json" && lfmt != "console" {
				return usageError{fmt.Errorf("--log-format %q: want json or console", lfmt)}
			}
			c.LogFormat = lfmt
			c.PodLookup = lookup
			if c.MaxTasks < 1 {
				return usageError{fmt.Errorf("--max-tasks must be >= 1, got %d", c.MaxTasks)}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runDaemon(ctx, cmd.OutOrStdout(), cmd.ErrOrStderr(), c)
		},
	}
	f := cmd.Flags()
	f.StringVar(&c.Source, "source", "/dev/kmsg", "the kernel log device, or a saved log file in any format \"oomscope parse\" reads (\"-\": standard input): its reports go through enrichment, the outbox and every sink, then run exits")
	f.StringVar(&c.Device, "kmsg", "", "kernel log device (deprecated: use --source)")
	_ = f.MarkHidden("kmsg")
	f.StringVar(&c.NATSURL, "nats-url", "", "NATS server URL(s) to publish to, comma separated; empty starts the embedded server at --nats-listen; \"none\" disables NATS")
	f.StringVar(&c.NATSListen, "nats-listen", "127.0.0.1:4222", "address of the embedded NATS server (used when --nats-url is empty)")
	natsAuthFlags(f, &c.NATSAuth) // used with --nats-url
	f.BoolVar(&c.NATSCreate, "nats-create-stream", false, "create or update the OOMSCOPE stream on --nats-url (the embedded server's is always created)")
	f.DurationVar(&c.ShutdownGrace, "shutdown-grace", 10*time.Second, "on SIGTERM, how long the reports already read may take to reach the outbox before oomscope exits (a DaemonSet's terminationGracePeriodSeconds should be longer)")
	f.DurationVar(&c.DrainTimeout, "drain-timeout", time.Minute, "with --source FILE: how long to wait for every sink to confirm every report before exiting non-zero")
	f.StringVar(&start, "start", string(daemon.StartResume), "where to start reading: resume (after the checkpoint; whole buffer when there is none), beginning, or end")
	f.StringVar(&c.StateDir, "state-dir", "/var/lib/oomscope", "directory for the checkpoint (and the archive unless --archive-dir)")
	f.StringVar(&c.ArchiveDir, "archive-dir", "", "post-mortem archive directory (default STATE-DIR/archive; \"-\" disables it)")
	f.StringVar(&configFile, "config", "", "YAML file of settings, keys are flag names (env OOMSCOPE_CONFIG)")
	f.BoolVar(&c.Stdout, "stdout", false, "also print each report on standard output (see -o)")
	f.StringVarP(&output, "output", "o", "json", "--stdout format: json (one JSON line per report) or text (the post-mortem)")
	f.BoolVar(&c.Raw, "raw", false, "include raw kernel lines in --stdout output (the archive always has them)")
	f.StringVar(&c.Host, "node-name", defaultHost(), "node name written into reports (default $NODE_NAME or the host name)")
	f.StringVar(&c.Host, "host", defaultHost(), "alias of --node-name")
	_ = f.MarkHidden("host")
	f.IntVar(&c.MaxTasks, "max-tasks", oomparse.DefaultMaxTasks, "task-table rows kept per report (the largest by rss)")
	f.StringVar(&c.Kubeconfig, "kubeconfig", "", "kubeconfig file for the pod lookup and the Kubernetes Events (default: the in-cluster configuration when running in a pod; \"none\" disables both)")
	f.StringSliceVar(&c.PodLabels, "pod-labels", kubepods.DefaultLabelKeys, "pod labels copied into reports")
	f.StringVar(&c.CgroupRoot, "cgroup-root", cgroupfs.DefaultCgroupRoot, "where the host's cgroup filesystems are mounted (a DaemonSet mounts them at /host/sys/fs/cgroup)")
	f.StringVar(&c.ProcRoot, "proc-root", cgroupfs.DefaultProcRoot, "where the host's procfs is mounted")
	f.StringVar(&c.Metrics, "metrics-addr", "", "serve Prometheus metrics on this address (e.g. :9101); empty disables")
	f.StringVar(&c.Pprof, "pprof-addr", "", "serve Go's profiling endpoints (/debug/pprof/) on this address, for measuring (keep it on loopback); empty disables")
	_ = f.MarkHidden("pprof-addr")
	f.BoolVar(&c.KeepStartupPages, "keep-startup-pages", false, "do not release the executable's pages that start-up used from the resident set (for measuring)")
	_ = f.MarkHidden("keep-startup-pages")
	f.StringVar(&level, "log-level", "info", "log level: debug, info, warn, error")
	f.StringVar(&lfmt, "log-format", "json", "log format: json or console")
	return cmd
}

// startPodLookup starts the Kubernetes pod lookup in the background, so
// that an API server that is slow or down does not keep the daemon from
// reading the kernel log: until the informer has synced, lookups find
// nothing and reports are enriched from their cgroup paths. It returns nil
// when no API server is configured (not in a pod and no --kubeconfig).
func startPodLookup(ctx context.Context, c runConfig, log zerolog.Logger) enrich.PodLookup {
	if c.Kubeconfig == kube.KubeconfigNone || c.PodLookup == nil {
		return nil
	}
	if c.Kubeconfig == "" && os.Getenv("KUBERNETES_SERVICE_HOST") == "" {
		log.Info().Msg("no Kubernetes API server: reports are enriched from cgroup paths only")
		return nil
	}
	l := &asyncLookup{}
	go func() {
		for ctx.Err() == nil {
			pods, err := c.PodLookup(ctx, c.Kubeconfig, c.Host, c.PodLabels)
			if err == nil {
				l.ready.Store(&pods)
				log.Info().Str("node", c.Host).Msg("Kubernetes pod lookup ready")
				return
			}
			log.Error().Err(err).Msg("Kubernetes pod lookup: retrying in 10s")
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Second):
			}
		}
	}()
	return l
}

// asyncLookup is a PodLookup that becomes available once started.
type asyncLookup struct {
	ready atomic.Pointer[enrich.PodLookup]
}

// errLookupNotReady tells that the pod lookup has not synced yet.
var errLookupNotReady = errors.New("the Kubernetes pod lookup has not synced yet")

func (a *asyncLookup) Lookup(ctx context.Context, podUID, containerID string) (*report.Pod, *report.Container, error) {
	l := a.ready.Load()
	if l == nil {
		return nil, nil, errLookupNotReady
	}
	return (*l).Lookup(ctx, podUID, containerID)
}

// runGCPercent is the garbage collector's target of `oomscope run` unless
// GOGC is set (docs/performance.md, "`oomscope run`").
const runGCPercent = 50

// liveWindow is how old a report may be and still be enriched as live:
// with a snapshot of its cgroup and a comparison with the kernel's kill
// counters. Older reports (read from the ring buffer at start-up, or after
// a backlog) get neither: their cgroup may be gone or reused.
const liveWindow = 30 * time.Second

func defaultHost() string {
	if n := os.Getenv("NODE_NAME"); n != "" {
		return n
	}
	h, _ := os.Hostname()
	return h
}

// runDaemon builds the sinks and runs the daemon until ctx is done.
func runDaemon(ctx context.Context, stdout, stderr io.Writer, c runConfig) error {
	var lw io.Writer = stderr
	if c.LogFormat == "console" {
		lw = zerolog.ConsoleWriter{Out: stderr, TimeFormat: time.RFC3339, NoColor: !isTerminal(stderr)}
	}
	// The daemon logs from several goroutines (reader, outbox sinks, NATS
	// callbacks): one line is one write, never interleaved.
	log := zerolog.New(zerolog.SyncWriter(lw)).Level(c.LogLevel).With().Timestamp().Str("component", "oomscope").Logger()
	releasePages := func(after string) {
		if c.KeepStartupPages {
			return
		}
		n, err := releaseExecutablePages()
		if err != nil {
			log.Warn().Err(err).Msg("releasing start-up pages")
			return
		}
		log.Debug().Int64("bytes", n).Str("after", after).Msg("released the executable's pages from the resident set")
	}
	releasePages("package initialisation")
	if os.Getenv("GOGC") == "" {
		// The daemon's live heap is small (7-8 MiB in a storm, a third of
		// it JetStream's write cache): collecting at 1.5x of it instead of
		// 2x keeps ~4 MiB off the resident set for ~3 ms of CPU per extra
		// cycle. GOGC (and GOMEMLIMIT) in the environment win.
		debug.SetGCPercent(runGCPercent)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	victims := procattr.New(c.ProcRoot)
	base := []enrich.Option{enrich.WithCgroupRoot(c.CgroupRoot), enrich.WithProcRoot(c.ProcRoot), enrich.WithLogger(log), enrich.WithVictimCgroups(victims)}
	var counters *counterattr.Tracker
	if strings.HasPrefix(c.Source, "/dev/") {
		// Opened before the daemon's own reader: kills printed from here
		// on are the tracker's.
		if counters = counterAttribution(c.Source, c.CgroupRoot, c.ProcRoot, victims, reg, log); counters != nil {
			defer counters.Close()
			base = append(base, enrich.WithVictimCgroups(counters))
		}
	}
	if pods := startPodLookup(ctx, c, log); pods != nil {
		base = append(base, enrich.WithPodLookup(pods))
	}
	enricher, err := enrich.New(append(base, enrich.WithSnapshot(true), enrich.WithKillCounters(reg), enrich.WithLiveWindow(liveWindow))...)
	if err != nil {
		return fmt.Errorf("enrichment: %w", err)
	}
	health := &healthState{stateDir: c.StateDir}
	if c.Metrics != "" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
		mux.HandleFunc("/readyz", health.serveReady)
		srv := &http.Server{Addr: c.Metrics, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error().Err(err).Str("addr", c.Metrics).Msg("metrics server")
			}
		}()
		defer srv.Close()
	}
	if c.Pprof != "" {
		srv := &http.Server{Addr: c.Pprof, Handler: pprofMux(), ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error().Err(err).Str("addr", c.Pprof).Msg("pprof server")
			}
		}()
		defer srv.Close()
	}
	metrics, err := daemon.NewMetrics(reg)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	if c.Device != "" {
		c.Source = c.Device
	}
	if err := os.MkdirAll(c.StateDir, 0o755); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	ob, err := outbox.Open(filepath.Join(c.StateDir, "outbox.db"), outbox.Config{Logger: log, Registerer: reg})
	if err != nil {
		if errors.Is(err, outbox.ErrLocked) {
			return fmt.Errorf("state dir %s is in use by another oomscope: %w", c.StateDir, err)
		}
		return err
	}
	defer ob.Close()
	sinks, cleanup, err := buildSinks(ctx, stdout, c, log, reg, health)
	if err != nil {
		return err
	}
	defer cleanup()
	deliverCtx, stopDelivery := context.WithCancel(context.WithoutCancel(ctx))
	delivered := make(chan error, 1)
	go func() { delivered <- ob.Run(deliverCtx, sinks...) }()
	defer func() { stopDelivery(); <-delivered }()

	names := make([]string, len(sinks))
	for i, s := range sinks {
		names[i] = s.Name()
	}
	log.Info().Strs("sinks", names).Str("source", c.Source).Str("state_dir", c.StateDir).Str("node", c.Host).Msg("starting")
	releasePages("start-up") // the NATS server, the store, the archive are up
	popts := []oomparse.Option{oomparse.WithMaxTasks(c.MaxTasks)}
	if c.Source != "/dev/kmsg" && !strings.HasPrefix(c.Source, "/dev/") {
		return replayFile(ctx, ob, enricher, popts, c, log, metrics)
	}
	if memoryCgroupV1(c.CgroupRoot) {
		// No memory.oom.group on this kernel's hierarchy: a report is
		// finished at its victim line.
		popts = append(popts, oomparse.WithMemoryCgroupV1())
	}
	err = daemon.Run(ctx, daemon.Config{
		Device:        c.Source,
		Start:         c.Start,
		StatePath:     filepath.Join(c.StateDir, "checkpoint.json"),
		Host:          c.Host,
		Queue:         ob,
		Enricher:      enricher,
		ParserOptions: popts,
		Logger:        log,
		Metrics:       metrics,
		Victims:       victims,
		Counters:      counterObserver(counters),
		DrainTimeout:  c.ShutdownGrace,
		OnReady: func() {
			health.kmsg.Store(true)
			if c.onReady != nil {
				c.onReady()
			}
		},
	})
	if err != nil {
		return err
	}
	log.Info().Msg("stopped")
	return nil
}

// replayFile sends a saved log's reports through enrichment and the outbox,
// then waits until every sink confirmed them (at most c.DrainTimeout).
func replayFile(ctx context.Context, ob *outbox.Outbox, e daemon.Enricher, popts []oomparse.Option, c runConfig, log zerolog.Logger, m *daemon.Metrics) error {
	var r io.Reader = os.Stdin
	name := "standard input"
	if c.Source != "-" {
		f, err := os.Open(c.Source)
		if err != nil {
			return fmt.Errorf("--source: %w", err)
		}
		defer f.Close()
		r, name = f, c.Source
	}
	if c.Host != "" {
		popts = append(popts, oomparse.WithHost(c.Host))
	}
	read, added, err := daemon.Replay(ctx, kmsg.NewScanner(r), daemon.ReplayConfig{Queue: ob, Enricher: e, ParserOptions: popts, Logger: log, Metrics: m})
	if err != nil {
		return fmt.Errorf("replaying %s: %w", name, err)
	}
	log.Info().Str("source", name).Int("reports", read).Int("new", added).Msg("log replayed; waiting for the sinks")
	wctx, cancel := context.WithTimeout(ctx, c.DrainTimeout)
	defer cancel()
	if err := ob.WaitDrained(wctx); err != nil {
		return fmt.Errorf("replaying %s: not every sink confirmed every report within --drain-timeout %v: %w", name, c.DrainTimeout, err)
	}
	log.Info().Str("source", name).Msg("every sink confirmed every report")
	return nil
}

// buildSinks returns the outbox sinks run publishes to, and what to close
// once the outbox stopped delivering.
func buildSinks(ctx context.Context, stdout io.Writer, c runConfig, log zerolog.Logger, reg prometheus.Registerer, health *healthState) ([]outbox.Sink, func(), error) {
	var sinks []sink.Sink
	var closers []func()
	cleanup := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	archive := c.ArchiveDir
	if archive == "" {
		archive = filepath.Join(c.StateDir, "archive")
	}
	if archive != "-" {
		cfg := archiveConfig(archive)
		cfg.Logger = log
		cfg.Registerer = reg
		a, err := sink.OpenArchive(ctx, cfg)
		if err != nil {
			return nil, cleanup, err
		}
		closers = append(closers, func() { a.Close() })
		sinks = append(sinks, a)
	}
	if c.Stdout {
		if c.Output == "text" {
			sinks = append(sinks, &textSink{w: stdout})
		} else {
			sinks = append(sinks, sink.NewJSONLines(stdout, c.Raw))
		}
	}
	url, create := c.NATSURL, c.NATSCreate
	var embedded *natsd.Server
	if url == "" {
		srv, err := natsd.Start(ctx, natsd.Config{Listen: c.NATSListen, StoreDir: filepath.Join(c.StateDir, "nats"), SyncAlways: true, Logger: log.With().Str("component", "nats-server").Logger()})
		if err != nil {
			return nil, cleanup, fmt.Errorf("embedded NATS server (--nats-listen %s; or give --nats-url, or --nats-url none): %w", c.NATSListen, err)
		}
		closers = append(closers, srv.Shutdown)
		health.nats.Store(srv)
		url, create, embedded = srv.ClientURL(), true, srv
		log.Info().Str("url", url).Msg("embedded NATS server with JetStream ready")
	}
	if url != "none" {
		nc := c.NATSAuth // the embedded server needs none: it listens on loopback only
		if embedded != nil {
			// Through a pipe, not the loopback socket the server also
			// listens on for `oomscope tail` and other consumers.
			nc = natssink.Config{InProcess: embedded}
		}
		nc.URLs, nc.Node, nc.CreateStream, nc.Logger, nc.Registerer = url, c.Host, create, log, reg
		if err := nc.Validate(); err != nil {
			cleanup()
			return nil, func() {}, usageError{fmt.Errorf("NATS settings: %w", err)}
		}
		ns, err := natssink.New(ctx, nc)
		if err != nil {
			cleanup()
			return nil, func() {}, fmt.Errorf("NATS: %w", err)
		}
		closers = append(closers, func() { ns.Close() })
		sinks = append(sinks, ns)
	}
	if ks, err := kubeEventSink(c, log, reg); err != nil {
		cleanup()
		return nil, func() {}, err
	} else if ks != nil {
		sinks = append(sinks, ks)
	}
	if len(sinks) == 0 {
		return nil, cleanup, usageError{fmt.Errorf("nothing to publish to: the archive and NATS are disabled and --stdout is not set")}
	}
	// One decoding of each stored report for all the sinks.
	return sink.ForOutboxAll(sinks...), cleanup, nil
}

// pprofMux serves net/http/pprof's handlers under /debug/pprof/.
func pprofMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// isTerminal reports whether w is a terminal (colour codes only there).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// archiveConfig is the archive's configuration: the defaults (retention
// of 30 days and 1 GiB) at dir.
func archiveConfig(dir string) archive.Config { return archive.DefaultConfig(dir) }

// textSink prints each report as the post-mortem text (`run --stdout -o
// text`): what a person watching a terminal reads.
type textSink struct {
	mu sync.Mutex
	w  io.Writer
}

func (t *textSink) Name() string { return "stdout" }

func (t *textSink) Publish(_ context.Context, d sink.Delivery) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := writeText(t.w, d.Report, ""); err != nil {
		return fmt.Errorf("stdout: %w", err)
	}
	_, err := io.WriteString(t.w, "\n")
	return err
}

// healthState answers /readyz: ready once the kernel log is open, the state
// dir (the outbox's) is writable and the embedded NATS server, when there
// is one, is ready.
type healthState struct {
	stateDir string
	kmsg     atomic.Bool
	nats     atomic.Pointer[natsd.Server]
}

func (h *healthState) serveReady(w http.ResponseWriter, _ *http.Request) {
	var problems []string
	if !h.kmsg.Load() {
		problems = append(problems, "kernel log not open")
	}
	if err := unix.Access(h.stateDir, unix.W_OK); err != nil {
		problems = append(problems, "state dir (outbox) not writable: "+err.Error())
	}
	if s := h.nats.Load(); s != nil && !s.Ready() {
		problems = append(problems, "embedded NATS server not ready")
	}
	if len(problems) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, strings.Join(problems, "\n")+"\n")
		return
	}
	io.WriteString(w, "ok\n")
}

// kubeEventSink is the Kubernetes Event sink when an API server is
// configured (--kubeconfig, or the in-cluster service account); nil when
// there is none, said once in the log.
func kubeEventSink(c runConfig, log zerolog.Logger, reg prometheus.Registerer) (sink.Sink, error) {
	cfg, err := kube.LoadRESTConfig(c.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubernetes events: %w", err)
	}
	if cfg == nil {
		log.Info().Msg("no Kubernetes API server (not in a cluster, no --kubeconfig, or --kubeconfig none): no Kubernetes Events")
		return nil, nil
	}
	client, err := kube.NewClientset(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes events: %w", err)
	}
	l := log.With().Str("sink", "kubernetes-events").Logger()
	ks, err := kubeevents.New(client, kubeevents.Config{NodeName: c.Host, Registerer: reg, Logger: &l})
	if err != nil {
		return nil, fmt.Errorf("kubernetes events: %w", err)
	}
	return ks, nil
}

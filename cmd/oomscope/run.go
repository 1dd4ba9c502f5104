package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/oomscope/oomscope/daemon"
	"github.com/oomscope/oomscope/enrich"
	"github.com/oomscope/oomscope/enrich/cgroupfs"
	"github.com/oomscope/oomscope/enrich/kubepods"
	"github.com/oomscope/oomscope/kube"
	"github.com/oomscope/oomscope/oomparse"
	"github.com/oomscope/oomscope/report"
	"github.com/oomscope/oomscope/sink"
)

// runConfig is what the run command's flags say.
type runConfig struct {
	Device     string
	Start      daemon.Start
	StateDir   string
	ArchiveDir string
	Stdout     bool
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
}

func newRunCmd(lookup podLookupFunc) *cobra.Command {
	var (
		c                  runConfig
		start, level, lfmt string
	)
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Watch the kernel log and publish every OOM-kill report (the node daemon)",
		Long: `Tails /dev/kmsg, rebuilds every oom-killer report, enriches it and publishes
it to the local post-mortem archive (one JSON file per report, raw kernel
lines included) and, with --stdout, as JSON lines on standard output.

A checkpoint in --state-dir records how far the kernel log was read; after a
restart in the same boot, reading resumes there, and no report is published
twice. Needs read access to /dev/kmsg (root or CAP_SYSLOG).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
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
	f.StringVar(&c.Device, "kmsg", "/dev/kmsg", "kernel log device")
	f.StringVar(&start, "start", string(daemon.StartResume), "where to start reading: resume (after the checkpoint; whole buffer when there is none), beginning, or end")
	f.StringVar(&c.StateDir, "state-dir", "/var/lib/oomscope", "directory for the checkpoint (and the archive unless --archive-dir)")
	f.StringVar(&c.ArchiveDir, "archive-dir", "", "post-mortem archive directory (default STATE-DIR/archive; \"-\" disables it)")
	f.BoolVar(&c.Stdout, "stdout", false, "also print each report as a JSON line on standard output")
	f.BoolVar(&c.Raw, "raw", false, "include raw kernel lines in --stdout output (the archive always has them)")
	f.StringVar(&c.Host, "host", defaultHost(), "node name written into reports (default $NODE_NAME or the host name)")
	f.IntVar(&c.MaxTasks, "max-tasks", oomparse.DefaultMaxTasks, "task-table rows kept per report (the largest by rss)")
	f.StringVar(&c.Kubeconfig, "kubeconfig", "", "kubeconfig file for the pod lookup (default: the in-cluster configuration when running in a pod; \"none\" disables the lookup)")
	f.StringSliceVar(&c.PodLabels, "pod-labels", kubepods.DefaultLabelKeys, "pod labels copied into reports")
	f.StringVar(&c.CgroupRoot, "cgroup-root", cgroupfs.DefaultCgroupRoot, "where the host's cgroup filesystems are mounted (a DaemonSet mounts them at /host/sys/fs/cgroup)")
	f.StringVar(&c.ProcRoot, "proc-root", cgroupfs.DefaultProcRoot, "where the host's procfs is mounted")
	f.StringVar(&c.Metrics, "metrics-addr", "", "serve Prometheus metrics on this address (e.g. :9101); empty disables")
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
		lw = zerolog.ConsoleWriter{Out: stderr, TimeFormat: time.RFC3339}
	}
	log := zerolog.New(lw).Level(c.LogLevel).With().Timestamp().Str("component", "oomscope").Logger()

	var sinks sink.Multi
	archive := c.ArchiveDir
	if archive == "" {
		archive = filepath.Join(c.StateDir, "archive")
	}
	if archive != "-" {
		a, err := sink.NewArchive(archive)
		if err != nil {
			return err
		}
		sinks = append(sinks, a)
	}
	if c.Stdout {
		sinks = append(sinks, sink.NewJSONLines(stdout, c.Raw))
	}
	if len(sinks) == 0 {
		return usageError{fmt.Errorf("nothing to publish to: the archive is disabled and --stdout is not set")}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	base := []enrich.Option{enrich.WithCgroupRoot(c.CgroupRoot), enrich.WithProcRoot(c.ProcRoot), enrich.WithLogger(log)}
	if pods := startPodLookup(ctx, c, log); pods != nil {
		base = append(base, enrich.WithPodLookup(pods))
	}
	enricher, err := enrich.New(append(base, enrich.WithSnapshot(true), enrich.WithKillCounters(reg), enrich.WithLiveWindow(liveWindow))...)
	if err != nil {
		return fmt.Errorf("enrichment: %w", err)
	}
	if c.Metrics != "" {
		srv := &http.Server{Addr: c.Metrics, Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error().Err(err).Str("addr", c.Metrics).Msg("metrics server")
			}
		}()
		defer srv.Close()
	}
	log.Info().Str("archive", archive).Bool("stdout", c.Stdout).Str("state_dir", c.StateDir).Str("host", c.Host).Msg("starting")
	err = daemon.Run(ctx, daemon.Config{
		Device:        c.Device,
		Start:         c.Start,
		StatePath:     filepath.Join(c.StateDir, "checkpoint.json"),
		Host:          c.Host,
		Sink:          sinks,
		Enricher:      enricher,
		ParserOptions: []oomparse.Option{oomparse.WithMaxTasks(c.MaxTasks)},
		Logger:        log,
	})
	if err != nil {
		return err
	}
	log.Info().Msg("stopped")
	return nil
}

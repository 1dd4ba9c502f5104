package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/oomscope/oomscope/enrich"
	"github.com/oomscope/oomscope/kmsg"
	"github.com/oomscope/oomscope/oomparse"
	"github.com/oomscope/oomscope/report"
)

// podLookupFunc starts a pod lookup from a kubeconfig file ("" for the
// in-cluster configuration) over the pods of node ("" for every node),
// copying the pod labels named in labels. The lookup stops when ctx ends.
type podLookupFunc func(ctx context.Context, kubeconfig, node string, labels []string) (enrich.PodLookup, error)

// kubePodLookup is the podLookupFunc of the real binary: the node-scoped
// informer of enrich.PodCache, synced before it returns.
func kubePodLookup(ctx context.Context, kubeconfig, node string, labels []string) (enrich.PodLookup, error) {
	c, err := enrich.StartPodCache(ctx, kubeconfig, node, enrich.WithPodLabelKeys(labels...))
	if err != nil {
		return nil, err
	}
	if c == nil { // a nil *PodCache in an interface is not a nil interface
		return nil, errors.New("no Kubernetes API server configured")
	}
	return c, nil
}

// parseConfig is what the parse command's flags say.
type parseConfig struct {
	Files    []string
	Output   string
	Format   kmsg.Format
	Raw      bool
	MaxTasks int
	Year     int
	Host     string
	// Kubeconfig, when set, enables the Kubernetes pod lookup.
	Kubeconfig string
	// PodLookup starts the pod lookup for Kubeconfig.
	PodLookup podLookupFunc
	// PodLabels are the pod labels copied into reports.
	PodLabels []string
}

func newParseCmd(lookup podLookupFunc) *cobra.Command {
	var (
		output, format string
		raw            bool
		maxTasks, year int
		host           string
		kubeconfig     string
		podLabels      []string
	)
	cmd := &cobra.Command{
		Use:   "parse [FILE...|-]",
		Short: "Print every OOM-kill report found in kernel logs",
		Long: `Reads kernel logs — a raw /dev/kmsg dump, dmesg, dmesg -T, syslog / kern.log,
journalctl -k (short, short-precise, short-iso) or journalctl -o json, or kernel
text pasted without any prefix; the format is detected line by line, so a paste
may mix them, be quoted or numbered — and prints every oom-killer report in them, enriched with what
the cgroup paths say (pod UID, QoS class, container id and runtime) and a
diagnosis. With --kubeconfig the pods are also looked up in the Kubernetes
API. With no FILE, or when FILE is -, reads standard input.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := parseArgs(args, output, format, raw, maxTasks, year, host)
			if err != nil {
				return usageError{err}
			}
			cfg.Kubeconfig, cfg.PodLookup, cfg.PodLabels = kubeconfig, lookup, podLabels
			return runParse(cmd.Context(), cmd.InOrStdin(), cmd.OutOrStdout(), cfg)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&output, "output", "o", "json", "output: json (one report per line), pretty, or text")
	f.StringVar(&format, "format", "auto", "input format: auto (per line), kmsg, dmesg, dmesg-t, syslog, journal-short, journal-precise, journal-iso, journal-json, text")
	f.BoolVar(&raw, "raw", false, "include the raw kernel records of each report in JSON output")
	f.IntVar(&maxTasks, "max-tasks", oomparse.DefaultMaxTasks, "task-table rows kept per report (the largest by rss)")
	f.IntVar(&year, "year", 0, "year of syslog timestamps that carry none (default: the current year)")
	f.StringVar(&host, "host", "", "host name for records that carry none")
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file: also look the pods up in the Kubernetes API")
	f.StringSliceVar(&podLabels, "pod-labels", enrich.DefaultLabelKeys, "pod labels copied into reports (with --kubeconfig)")
	return cmd
}

// parseArgs validates the parse command's flags into a parseConfig.
func parseArgs(args []string, output, format string, raw bool, maxTasks, year int, host string) (parseConfig, error) {
	cfg := parseConfig{Files: args, Output: output, Raw: raw, MaxTasks: maxTasks, Year: year, Host: host}
	switch output {
	case "json", "pretty", "text":
	default:
		return cfg, fmt.Errorf("--output %q: want json, pretty or text", output)
	}
	f, err := kmsg.ParseFormat(format)
	if err != nil {
		return cfg, fmt.Errorf("--format: %w", err)
	}
	cfg.Format = f
	if maxTasks < 1 {
		return cfg, fmt.Errorf("--max-tasks must be >= 1, got %d", maxTasks)
	}
	if year != 0 && (year < kmsg.MinYear || year > kmsg.MaxYear) {
		return cfg, fmt.Errorf("--year must be in %d..%d, got %d", kmsg.MinYear, kmsg.MaxYear, year)
	}
	if len(cfg.Files) == 0 {
		cfg.Files = []string{"-"}
	}
	return cfg, nil
}

// newParseEnricher returns the enricher of saved logs: cgroup paths only
// (their cgroups are gone or reused: no snapshot, no kill counters), plus
// the pod lookup with --kubeconfig.
func newParseEnricher(ctx context.Context, cfg parseConfig) (*enrich.Enricher, error) {
	var opts []enrich.Option
	if cfg.Kubeconfig != "" {
		// Saved logs may come from any node: look at every pod.
		l, err := cfg.PodLookup(ctx, cfg.Kubeconfig, "", cfg.PodLabels)
		if err != nil {
			return nil, fmt.Errorf("--kubeconfig %s: Kubernetes pod lookup: %w", cfg.Kubeconfig, err)
		}
		opts = append(opts, enrich.WithPodLookup(l))
	}
	e, err := enrich.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("enricher: %w", err)
	}
	return e, nil
}

// runParse parses every input and writes its reports, enriched.
func runParse(ctx context.Context, stdin io.Reader, stdout io.Writer, cfg parseConfig) error {
	if ctx == nil {
		ctx = context.Background()
	}
	// Ends the pod lookup (its informer) when parsing is done.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	en, err := newParseEnricher(ctx, cfg)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(stdout)
	defer w.Flush()
	opts := []oomparse.Option{oomparse.WithMaxTasks(cfg.MaxTasks)}
	if cfg.Host != "" {
		opts = append(opts, oomparse.WithHost(cfg.Host))
	}
	for _, name := range cfg.Files {
		reports, err := parseInput(stdin, name, cfg, opts)
		for i := range reports {
			if werr := writeReport(w, en.Enrich(ctx, &reports[i]), cfg); werr != nil {
				return fmt.Errorf("writing output: %w", werr)
			}
		}
		if err != nil {
			return err
		}
	}
	return w.Flush()
}

func parseInput(stdin io.Reader, name string, cfg parseConfig, opts []oomparse.Option) ([]report.Report, error) {
	var r io.Reader = stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("cannot read %s: %w", name, err)
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil && st.IsDir() {
			return nil, fmt.Errorf("cannot read %s: is a directory", name)
		}
		r = f
	}
	sopts := []kmsg.ScanOption{kmsg.WithFormat(cfg.Format)}
	if cfg.Year != 0 {
		sopts = append(sopts, kmsg.WithYear(cfg.Year))
	} else {
		sopts = append(sopts, kmsg.WithReference(time.Now()))
	}
	reports, err := oomparse.ParseAll(kmsg.NewScanner(r, sopts...), opts...)
	if err != nil {
		return reports, fmt.Errorf("%s: %w", name, err)
	}
	return reports, nil
}

func writeReport(w io.Writer, r *report.Enriched, cfg parseConfig) error {
	if !cfg.Raw && cfg.Output != "text" {
		r = r.WithoutRaw()
	}
	switch cfg.Output {
	case "text":
		return writeText(w, r)
	case "pretty":
		b, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", safeJSON(b))
		return err
	default:
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", safeJSON(b))
		return err
	}
}

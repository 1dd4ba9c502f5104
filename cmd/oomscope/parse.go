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
	"time"

	"github.com/spf13/cobra"

	"github.com/oomscope/oomscope/enrich"
	"github.com/oomscope/oomscope/enrich/kubepods"
	"github.com/oomscope/oomscope/kmsg"
	"github.com/oomscope/oomscope/oomparse"
	"github.com/oomscope/oomscope/report"
)

// podLookupFunc starts a pod lookup from a kubeconfig file ("" for the
// in-cluster configuration) over the pods of node ("" for every node),
// copying the pod labels named in labels. The lookup stops when ctx ends.
type podLookupFunc func(ctx context.Context, kubeconfig, node string, labels []string) (enrich.PodLookup, error)

// kubePodLookup is the podLookupFunc of the real binary: the node-scoped
// informer of kubepods.PodCache, synced before it returns.
func kubePodLookup(ctx context.Context, kubeconfig, node string, labels []string) (enrich.PodLookup, error) {
	c, err := kubepods.StartPodCache(ctx, kubeconfig, node, kubepods.WithPodLabelKeys(labels...))
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
API. With no FILE, or when FILE is -, reads standard input.

A FILE may also hold oomscope reports as JSON — a file of the archive
("oomscope run" writes them), or "parse -o json" output: they are printed
as they are, in the chosen output.`,
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
	f.StringSliceVar(&podLabels, "pod-labels", kubepods.DefaultLabelKeys, "pod labels copied into reports (with --kubeconfig)")
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
		reports, archived, err := parseInput(stdin, name, cfg, opts)
		for i := range reports {
			if werr := writeReport(w, en.Enrich(ctx, &reports[i]), cfg); werr != nil {
				return fmt.Errorf("writing output: %w", werr)
			}
		}
		for _, r := range archived {
			if werr := writeReport(w, r, cfg); werr != nil {
				return fmt.Errorf("writing output: %w", werr)
			}
		}
		if err != nil {
			return err
		}
	}
	return w.Flush()
}

// parseInput reads one input: kernel log lines, parsed into reports, or
// oomscope reports as JSON (an archive file, parse -o json output), returned
// as they are in archived.
func parseInput(stdin io.Reader, name string, cfg parseConfig, opts []oomparse.Option) (reports []report.Report, archived []*report.Enriched, err error) {
	var r io.Reader = stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, nil, fmt.Errorf("cannot read %s: %w", name, err)
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil && st.IsDir() {
			return nil, nil, fmt.Errorf("cannot read %s: is a directory", name)
		}
		r = f
	}
	br := bufio.NewReaderSize(r, reportPeek)
	if isReportJSON(br) {
		archived, err := readReportsJSON(br)
		if err != nil {
			return nil, archived, fmt.Errorf("%s: %w", name, err)
		}
		return nil, archived, nil
	}
	r = br
	sopts := []kmsg.ScanOption{kmsg.WithFormat(cfg.Format)}
	if cfg.Year != 0 {
		sopts = append(sopts, kmsg.WithYear(cfg.Year))
	} else {
		sopts = append(sopts, kmsg.WithReference(time.Now()))
	}
	reports, err = oomparse.ParseAll(kmsg.NewScanner(r, sopts...), opts...)
	if err != nil {
		return reports, nil, fmt.Errorf("%s: %w", name, err)
	}
	return reports, nil, nil
}

// reportPeek is how much of an input is looked at to tell an oomscope
// report from a kernel log.
const reportPeek = 64 << 10

// isReportJSON tells whether the input is oomscope reports as JSON: its
// first value is an object whose "schema" key (the first key oomscope
// writes) is report.Schema. journalctl -o json, the other JSON input,
// has no such key.
func isReportJSON(br *bufio.Reader) bool {
	b, _ := br.Peek(512)
	if b = bytes.TrimLeft(b, " \t\r\n"); len(b) == 0 || b[0] != '{' {
		return false
	}
	b, _ = br.Peek(reportPeek)
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return false
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return false
		}
		if key == "schema" {
			v, err := dec.Token()
			return err == nil && v == report.Schema
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return false
		}
	}
	return false
}

// readReportsJSON reads oomscope reports as JSON: one archive file (one
// indented object) or parse -o json output (one object per line).
//
// The reports are printed as they are, not parsed again from their raw
// kernel lines: an archived report holds what cannot be had again later —
// the pod and container as the Kubernetes API showed them at the kill, the
// cgroup snapshot read right after it, the kills the kernel counted
// without a report — and its raw lines may be capped (raw_dropped) or
// missing (parse output without --raw). --host, --max-tasks and
// --kubeconfig do not apply to them; -o and --raw do.
func readReportsJSON(br *bufio.Reader) ([]*report.Enriched, error) {
	dec := json.NewDecoder(br)
	var out []*report.Enriched
	for n := 1; ; n++ {
		var er report.Enriched
		err := dec.Decode(&er)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("report %d: not an oomscope report: %w", n, err)
		}
		if er.Report == nil || er.Schema != report.Schema {
			return out, fmt.Errorf("report %d: not an oomscope report (schema %q, want %q)", n, er.Schema, report.Schema)
		}
		out = append(out, &er)
	}
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
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	default:
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
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
	// Quiet is how long a live input may be silent before the reports
	// waiting for late lines are released (0: quietRelease).
	Quiet time.Duration
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
			return runParse(cmd.Context(), cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr(), cfg)
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

// runParse parses every input and writes its reports, enriched, each as
// soon as it is complete. An input that cannot be read gets one message on
// stderr and the others are still parsed; the error then says how many
// failed. It stops at once when ctx ends (Ctrl-C, SIGTERM).
func runParse(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer, cfg parseConfig) error {
	if ctx == nil {
		ctx = context.Background()
	}
	// Ends the pod lookup (its informer) and the readers when parsing is done.
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
	failed := 0
	for _, name := range cfg.Files {
		emitEnriched := func(er *report.Enriched) error {
			if err := writeReport(w, er, cfg, name); err != nil {
				return outputError{err}
			}
			if err := w.Flush(); err != nil { // a report is out as soon as it is complete
				return outputError{err}
			}
			return nil
		}
		emit := func(r *report.Report) error {
			return emitEnriched(en.Enrich(ctx, r))
		}
		err := parseInput(ctx, stdin, name, cfg, opts, emit, emitEnriched)
		var out outputError
		switch {
		case ctx.Err() != nil:
			return errInterrupted
		case errors.As(err, &out):
			return fmt.Errorf("writing output: %w", out.err)
		case err != nil:
			failed++
			fmt.Fprintf(stderr, "oomscope: parse: %v\n", err)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d inputs could not be parsed (see above)", failed, len(cfg.Files))
	}
	return w.Flush()
}

// errInterrupted is returned when parsing was stopped (Ctrl-C, SIGTERM).
var errInterrupted = errors.New("interrupted")

// outputError is an error writing the output: it ends the whole run.
type outputError struct{ err error }

func (e outputError) Error() string { return e.err.Error() }

// parseInput parses one input (a file name, or "-" for stdin) and passes
// its reports to emit as they are completed. An input of oomscope reports
// as JSON (an archive file, parse -o json output) goes to emitEnriched as
// it is.
func parseInput(ctx context.Context, stdin io.Reader, name string, cfg parseConfig, opts []oomparse.Option, emit func(*report.Report) error, emitEnriched func(*report.Enriched) error) error {
	r, live, closeFn, err := openInput(stdin, name)
	if err != nil {
		return err
	}
	defer closeFn()
	br := bufio.NewReaderSize(r, reportPeek)
	if !live && isReportJSON(br) {
		return readReportsJSON(br, emitEnriched)
	}
	if !live { // a live input's first bytes may be long in coming
		if err := sniffInput(br); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	sopts := []kmsg.ScanOption{kmsg.WithFormat(cfg.Format)}
	if cfg.Year != 0 {
		sopts = append(sopts, kmsg.WithYear(cfg.Year))
	} else {
		sopts = append(sopts, kmsg.WithReference(time.Now()))
	}
	if live {
		sopts = append(sopts, kmsg.WithFollow())
	}
	quiet := cfg.Quiet
	if quiet <= 0 {
		quiet = quietRelease
	}
	if !live {
		quiet = 0 // a file is never quiet: its reports wait for their late lines
	}
	if err := streamReports(ctx, kmsg.NewScanner(br, sopts...), opts, quiet, emit); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
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
func readReportsJSON(br *bufio.Reader, emit func(*report.Enriched) error) error {
	dec := json.NewDecoder(br)
	for n := 1; ; n++ {
		var er report.Enriched
		err := dec.Decode(&er)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("report %d: not an oomscope report: %w", n, err)
		}
		if er.Report == nil || er.Schema != report.Schema {
			return fmt.Errorf("report %d: not an oomscope report (schema %q, want %q)", n, er.Schema, report.Schema)
		}
		if err := emit(&er); err != nil {
			return err
		}
	}
}

// openInput opens a named input, or stdin for "-". live says it is not a
// regular file (a pipe, a terminal, /dev/kmsg): its records are passed on
// as they come.
func openInput(stdin io.Reader, name string) (r io.Reader, live bool, closeFn func(), err error) {
	if name == "-" {
		if f, ok := stdin.(*os.File); ok {
			if st, err := f.Stat(); err == nil {
				live = st.Mode()&(os.ModeNamedPipe|os.ModeCharDevice|os.ModeSocket|os.ModeDevice) != 0
			}
		}
		return stdin, live, func() {}, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, false, nil, fmt.Errorf("cannot read %s: %w", name, pathErr(err))
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, false, nil, fmt.Errorf("cannot read %s: %w", name, pathErr(err))
	}
	if st.IsDir() {
		f.Close()
		return nil, false, nil, fmt.Errorf("cannot read %s: is a directory", name)
	}
	return f, !st.Mode().IsRegular(), func() { f.Close() }, nil
}

// pathErr drops the operation and path an *fs.PathError repeats.
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// sniffInput refuses an input that is plainly no kernel log: compressed,
// or a JSON document (oomscope's own reports, say) rather than journalctl's
// one JSON object per line.
func sniffInput(br *bufio.Reader) error {
	head, _ := br.Peek(512)
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return errors.New("gzip-compressed, not a kernel log (decompress it first: zcat)")
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return errors.New("zstd-compressed, not a kernel log (decompress it first: zstdcat)")
	case bytes.HasPrefix(head, []byte("BZh")) && len(head) > 3 && head[3] >= '1' && head[3] <= '9':
		return errors.New("bzip2-compressed, not a kernel log (decompress it first: bzcat)")
	case bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return errors.New("xz-compressed, not a kernel log (decompress it first: xzcat)")
	}
	t := bytes.TrimLeft(head, " \t\r\n\ufeff")
	if len(t) > 0 && (t[0] == '[' || t[0] == '{') {
		first, _, _ := bytes.Cut(t, []byte("\n"))
		if first = bytes.TrimSpace(first); len(first) <= 1 || bytes.HasPrefix(first, []byte(`[{`)) || bytes.HasPrefix(first, []byte(`{"schema"`)) {
			return errors.New("a JSON document (oomscope reports?), not a kernel log")
		}
	}
	return nil
}

// quietRelease is how long a live input may be silent before the reports
// that wait for late lines (the oom_reaper's, 2 s late from 5.15 on) are
// released; quietFlush, before an unfinished report is ended too.
const (
	quietRelease = oomparse.DefaultVictimLinger
	quietFlush   = oomparse.DefaultIdleTimeout
)

// streamReports reads sc to its end and passes each report to emit as soon
// as it is complete. Records are read in a goroutine, so that ctx ends the
// parse at once even while a read blocks (a pipe, /dev/kmsg) and so that
// a live input that goes quiet releases its finished reports.
//
// quiet > 0 (a live input) is how long the input may be silent before the
// finished reports are released; after quietFlush/quietRelease times as
// long, unfinished ones are ended too.
func streamReports(ctx context.Context, sc *kmsg.Scanner, opts []oomparse.Option, quiet time.Duration, emit func(*report.Report) error) error {
	d, err := oomparse.NewDemux(opts...)
	if err != nil {
		return err
	}
	full, free := make(chan []kmsg.Record, 4), make(chan []kmsg.Record, 6)
	for i := 0; i < cap(free); i++ {
		free <- make([]kmsg.Record, 0, recordBatch)
	}
	readErr := make(chan error, 1)
	go readRecords(ctx, sc, full, free, readErr)
	var out []report.Report
	flush := func() error {
		for i := range out {
			if err := emit(&out[i]); err != nil {
				return err
			}
		}
		out = out[:0]
		return nil
	}
	timer := time.NewTimer(max(quiet, time.Hour))
	defer timer.Stop()
	if quiet <= 0 {
		timer.Stop()
	} else {
		timer.Reset(quiet)
	}
	released := false
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case batch, ok := <-full:
			if !ok {
				out = d.Flush(out)
				if err := flush(); err != nil {
					return err
				}
				return <-readErr
			}
			for _, rec := range batch {
				if out, err = d.Feed(out, rec); err != nil {
					return err
				}
			}
			free <- batch[:0]
			if err := flush(); err != nil {
				return err
			}
			if quiet > 0 {
				timer.Reset(quiet)
				released = false
			}
		case <-timer.C:
			// A live input went quiet: what waits for late lines is out.
			if !released {
				out, released = d.Release(out), true
				timer.Reset(quiet * (quietFlush / quietRelease))
			} else {
				out = d.Flush(out)
			}
			if err := flush(); err != nil {
				return err
			}
		}
	}
}

// recordBatch is how many records the reader hands over at once at most.
const recordBatch = 512

// readRecords scans records into batches taken from free and sends them
// on full, a batch as soon as the input has nothing more buffered (a live
// input's record is not kept waiting); it closes full at the end and then
// sends the scanner's error.
func readRecords(ctx context.Context, sc *kmsg.Scanner, full chan<- []kmsg.Record, free <-chan []kmsg.Record, errc chan<- error) {
	defer close(full)
	var batch []kmsg.Record
	send := func() bool {
		if len(batch) == 0 {
			return true
		}
		select {
		case full <- batch:
			batch = nil
			return true
		case <-ctx.Done():
			return false
		}
	}
	for sc.Scan() {
		if batch == nil {
			select {
			case batch = <-free:
			case <-ctx.Done():
				errc <- ctx.Err()
				return
			}
		}
		batch = append(batch, sc.Record())
		if (len(batch) == cap(batch) || sc.Buffered() == 0) && !send() {
			errc <- ctx.Err()
			return
		}
	}
	if !send() {
		errc <- ctx.Err()
		return
	}
	if err := sc.Err(); err != nil {
		errc <- fmt.Errorf("reading records: %w", err)
		return
	}
	errc <- nil
}

func writeReport(w io.Writer, r *report.Enriched, cfg parseConfig, source string) error {
	if !cfg.Raw && cfg.Output != "text" {
		r = r.WithoutRaw()
	}
	switch cfg.Output {
	case "text":
		return writeText(w, r, source)
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

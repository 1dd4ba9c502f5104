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
	"sync"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/oomscope/oomscope/natsread"
	"github.com/oomscope/oomscope/report"
	"github.com/oomscope/oomscope/sink/natssink"
)

// natsReadFlags are the flags of the commands that read the stream (tail,
// history): the server, its authentication (the settings of
// natssink.Config) and which reports.
type natsReadFlags struct {
	cfg    natssink.Config
	filter natsread.Filter
}

// register adds the flags to fs.
func (f *natsReadFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.cfg.URLs, "nats-url", natsread.DefaultURL, "NATS server URL(s), comma separated (nats://, tls://); the default is where \"oomscope run\" starts its embedded server")
	fs.StringVar(&f.cfg.Stream, "nats-stream", natssink.StreamName, "the JetStream stream the reports are in")
	natsAuthFlags(fs, &f.cfg)
	fs.DurationVar(&f.cfg.ConnectWait, "nats-connect-timeout", natsread.DefaultConnectTimeout, "how long to wait for each server to answer the first connection")
	fs.StringVar(&f.filter.Node, "node", "", "only reports of this node")
	fs.StringVar(&f.filter.Namespace, "namespace", "", "only reports of pods of this namespace")
	fs.StringVar(&f.filter.Pod, "pod", "", "only reports of this pod (name, or UID for a pod known only by its UID)")
}

// natsAuthFlags adds the NATS authentication and TLS flags of run, tail
// and history to fs.
func natsAuthFlags(fs *pflag.FlagSet, cfg *natssink.Config) {
	fs.StringVar(&cfg.CredsFile, "nats-creds", "", "NATS credentials file (user JWT and NKey seed)")
	fs.StringVar(&cfg.NKeySeedFile, "nats-nkey", "", "file holding a NATS user NKey seed (SU...)")
	fs.StringVar(&cfg.Token, "nats-token", "", "NATS authentication token (default $OOMSCOPE_NATS_TOKEN)")
	fs.StringVar(&cfg.User, "nats-user", "", "NATS user name (with --nats-password)")
	fs.StringVar(&cfg.Password, "nats-password", "", "NATS password (default $OOMSCOPE_NATS_PASSWORD)")
	fs.StringVar(&cfg.TLSCAFile, "nats-tls-ca", "", "PEM file of the CAs that sign the server's certificate (makes TLS required)")
	fs.StringVar(&cfg.TLSCertFile, "nats-tls-cert", "", "PEM client certificate for mutual TLS (with --nats-tls-key)")
	fs.StringVar(&cfg.TLSKeyFile, "nats-tls-key", "", "PEM key of --nats-tls-cert")
}

// connect checks the flags and connects; extra are more client options.
func (f *natsReadFlags) connect(ctx context.Context, name string, extra ...nats.Option) (*nats.Conn, jetstream.JetStream, error) {
	cfg := f.cfg
	if cfg.Token == "" && cfg.CredsFile == "" && cfg.NKeySeedFile == "" && cfg.User == "" {
		cfg.Token = os.Getenv("OOMSCOPE_NATS_TOKEN")
	}
	if cfg.User != "" && cfg.Password == "" {
		cfg.Password = os.Getenv("OOMSCOPE_NATS_PASSWORD")
	}
	if cfg.ConnectWait <= 0 {
		return nil, nil, usageError{fmt.Errorf("--nats-connect-timeout must be positive, got %v", cfg.ConnectWait)}
	}
	if err := cfg.Validate(); err != nil {
		return nil, nil, usageError{err}
	}
	nc, err := natsread.Connect(ctx, cfg, name, extra...)
	if err != nil {
		if cfg.URLs == natsread.DefaultURL && errors.Is(err, nats.ErrNoServers) {
			err = fmt.Errorf("%w (that is where \"oomscope run\" starts its embedded server: is it running on this machine? Otherwise pass --nats-url)", err)
		}
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("JetStream on %s: %w", natsread.RedactURLs(cfg.URLs), err)
	}
	return nc, js, nil
}

// lockedWriter serialises writes from the connection's callbacks and the
// command.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) printf(format string, a ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, format, a...)
}

func newTailCmd() *cobra.Command {
	var (
		f             natsReadFlags
		output, since string
	)
	cmd := &cobra.Command{
		Use:   "tail",
		Short: "Print OOM-kill reports as they arrive on NATS",
		Long: `Follows the OOMSCOPE JetStream stream that "oomscope run" publishes to and
prints each report as it arrives: the post-mortem text of "oomscope parse -o
text" by default, or with -o json the report's JSON as published, one per
line. Without --nats-url it reads the embedded server that "oomscope run"
starts on 127.0.0.1:4222.

--node, --namespace and --pod select the reports: each becomes a token of
the subject filter oomscope.v1.kill.<node>.<namespace>.<pod> (a name left
out matches every value), and the report's own names are checked exactly.
Without --since only reports published after tail started are printed;
--since 1h first prints the last hour's.

Untrusted names (process names, pod names, cgroup paths) are shown with
control characters, bidirectional overrides and line breaks as visible
escapes. A message on the stream that is not a report is reported on
standard error and skipped. Ctrl-C or SIGTERM stops at once; after a lost
connection the client reconnects and resumes after the last report printed.`,
		Example: `  oomscope tail
  oomscope tail --namespace shop -o json
  oomscope tail --nats-url nats://nats.example:4222 --nats-creds reader.creds --node worker-3 --since 30m`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "text" && output != "json" {
				return usageError{fmt.Errorf("--output %q: want text or json", output)}
			}
			var from time.Time
			if since != "" {
				t, err := natsread.ParseSince(since, time.Now())
				if err != nil {
					return usageError{err}
				}
				from = t
			}
			return runTail(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), &f, output, from)
		},
	}
	fl := cmd.Flags()
	f.register(fl)
	fl.StringVarP(&output, "output", "o", "text", "output: text (the post-mortem) or json (one report per line, as published)")
	fl.StringVar(&since, "since", "", "also print the reports published since this long ago (30m, 24h, 7d) or this time (2006-01-02, RFC 3339); default: only new ones")
	return cmd
}

// runTail follows the stream until ctx ends.
func runTail(ctx context.Context, stdout, stderr io.Writer, f *natsReadFlags, output string, since time.Time) error {
	if ctx == nil {
		ctx = context.Background()
	}
	errw := &lockedWriter{w: stderr}
	nc, js, err := f.connect(ctx, "oomscope tail",
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				errw.printf("oomscope tail: NATS disconnected: %v; reconnecting\n", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			errw.printf("oomscope tail: NATS reconnected to %s\n", nc.ConnectedUrlRedacted())
		}),
	)
	if err != nil {
		return err
	}
	defer nc.Close()
	q := natsread.Query{Stream: f.cfg.Stream, Filter: f.filter, Since: since}
	w := bufio.NewWriterSize(stdout, 64<<10)
	ready := func() {
		from := "new reports"
		if !since.IsZero() {
			from = "reports since " + since.Local().Format(time.DateTime)
		}
		errw.printf("oomscope tail: following %s on stream %s at %s (%s; Ctrl-C to stop)\n",
			report.Escape(q.Filter.Subject(), 0), report.Escape(f.cfg.Stream, 64), nc.ConnectedUrlRedacted(), from)
	}
	err = natsread.Follow(ctx, js, q, ready, func(m natsread.Message) error {
		r, err := natsread.Decode(m.Data)
		if err != nil {
			errw.printf("oomscope tail: skipped message %d on %s: %v\n", m.Seq, report.Escape(m.Subject, 200), err)
			return nil
		}
		if !q.Filter.Match(r) {
			return nil // a token shared with another name
		}
		if err := writeStreamReport(w, r, m.Data, output); err != nil {
			return fmt.Errorf("writing output: %w", err)
		}
		if err := w.Flush(); err != nil {
			return fmt.Errorf("writing output: %w", err)
		}
		return nil
	})
	if ferr := w.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("writing output: %w", ferr)
	}
	return err
}

// writeStreamReport writes a report read from the stream: the post-mortem
// text of r, every string escaped (r is changed), or its payload data as
// one line of terminal-safe JSON.
func writeStreamReport(w io.Writer, r *report.Enriched, data []byte, output string) error {
	if output == "json" {
		line, err := terminalJSON(data)
		if err != nil {
			return err
		}
		_, err = w.Write(append(line, '\n'))
		return err
	}
	return writeText(w, r, "") // writeText escapes every value it prints
}

// terminalJSON returns JSON text on one line (compacted) that means the
// same as data and shows safely on a terminal: DEL, C1 controls, format
// characters (bidirectional overrides among them), the line and paragraph
// separators and bytes that are not UTF-8 — which JSON allows raw inside
// strings — become \u escapes (U+FFFD for a bad byte). JSON itself keeps
// C0 controls escaped. It fails when data is not JSON.
func terminalJSON(data []byte) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(len(data))
	if err := json.Compact(&buf, data); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	i := 0
	for i < len(b) && b[i] < 0x7f {
		i++
	}
	if i == len(b) {
		return b, nil
	}
	out := make([]byte, i, len(b)+64)
	copy(out, b[:i])
	for i < len(b) {
		r, size := utf8.DecodeRune(b[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			out = append(out, `\ufffd`...)
		case r == 0x7f || (r >= 0x80 && unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp)):
			if r > 0xffff {
				r1, r2 := utf16.EncodeRune(r)
				out = fmt.Appendf(out, `\u%04x\u%04x`, r1, r2)
			} else {
				out = fmt.Appendf(out, `\u%04x`, r)
			}
		default:
			out = append(out, b[i:i+size]...)
		}
		i += size
	}
	return out, nil
}

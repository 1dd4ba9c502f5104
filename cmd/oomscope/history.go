package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/oomscope/oomscope/natsread"
	"github.com/oomscope/oomscope/report"
)

// defaultHistoryTimeout bounds the whole read of `oomscope history`.
const defaultHistoryTimeout = time.Minute

// maxSkippedShown is how many messages that are not reports history names
// one by one on standard error; the rest are counted.
const maxSkippedShown = 10

func newHistoryCmd() *cobra.Command {
	var (
		f             natsReadFlags
		output, since string
		timeout       time.Duration
	)
	cmd := &cobra.Command{
		Use:   "history",
		Short: "Which pods were OOM-killed, on every node, from the NATS stream",
		Long: `The fleet view: every node's "oomscope run" publishes to the same JetStream
stream, and history reads it from --since (by when the server stored each
report) to its end, with the subject filter that --node, --namespace and
--pod make (oomscope.v1.kill.<node>.<namespace>.<pod>; a name left out
matches every value; the report's own names are then checked exactly).
Without --nats-url it reads the embedded server that "oomscope run" starts
on 127.0.0.1:4222.

It prints one row per kill, sorted by the kill's time (the kernel's wall
clock, or when the server stored the report if the report has none): time
(local), node, namespace/pod/container, victim (comm and pid), scope (which
limit: container, pod, node, ...), the limit, main/child (whether the
container's main process was killed, so the container restarted, or a
child, which Kubernetes never shows) and the report id, then a total line
"N kills, M pods, K nodes". Names are shown with control characters,
bidirectional overrides and line breaks as visible escapes, and cut when
very long. -o json prints each report as published instead, one per line,
in the same order (the total goes to standard error). A message that is not
a report is reported on standard error and skipped (the table reads only the
keys it shows; -o json checks that the whole payload is JSON).`,
		Example: `  oomscope history
  oomscope history --nats-url nats://nats.example:4222 --nats-creds reader.creds --since 7d --namespace shop
  oomscope history --node worker-3 --since 2026-03-01 -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "table" && output != "json" {
				return usageError{fmt.Errorf("--output %q: want table or json", output)}
			}
			from, err := natsread.ParseSince(since, time.Now())
			if err != nil {
				return usageError{err}
			}
			if timeout <= 0 {
				return usageError{fmt.Errorf("--timeout must be positive, got %v", timeout)}
			}
			return runHistory(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), &f, output, from, timeout)
		},
	}
	fl := cmd.Flags()
	f.register(fl)
	fl.StringVar(&since, "since", "24h", "the reports stored since this long ago (90m, 24h, 7d) or this time (2006-01-02, 2006-01-02 15:04:05, RFC 3339)")
	fl.StringVarP(&output, "output", "o", "table", "output: table, or json (one report per line, as published)")
	fl.DurationVar(&timeout, "timeout", defaultHistoryTimeout, "give up when reading the stream takes longer than this")
	return cmd
}

// historyReport is the part of a report the history table shows. Decoding
// only these keys, not the task table, memory statistics and raw kernel
// lines, makes reading a large stream several times faster.
type historyReport struct {
	Schema string `json:"schema"`
	ID     string `json:"id"`
	Host   string `json:"host"`
	Kind   string `json:"kind"`
	First  struct {
		Wall *time.Time `json:"wall"`
	} `json:"first"`
	Memory        *report.Counter   `json:"memory"`
	Victims       []historyVictim   `json:"victims"`
	SummaryVictim *historyVictim    `json:"summary_victim"`
	Pod           *report.Pod       `json:"pod"`
	Container     *report.Container `json:"container"`
	// Scope, LimitBytes and MainProcessKilled are the diagnosis's.
	Scope             string
	LimitBytes        *uint64
	MainProcessKilled *bool
}

type historyVictim struct {
	PID  int    `json:"pid"`
	Comm string `json:"comm"`
}

// decodeHistoryReport decodes the table's part of a payload, failing as
// natsread.Decode does for a message that is not a report. It walks the
// top-level object and decodes only the keys of historyReport; the other
// values (the task table, memory statistics, raw kernel lines: most of the
// 12 KB of a report) are skipped by their structure alone, which is about
// ten times faster than decoding or validating them.
func decodeHistoryReport(data []byte) (*historyReport, error) {
	var r historyReport
	err := decodeMembers(data, map[string]any{
		"schema": &r.Schema, "id": &r.ID, "host": &r.Host, "kind": &r.Kind, "first": &r.First,
		"memory": &r.Memory, "victims": &r.Victims, "summary_victim": &r.SummaryVictim,
		"pod": &r.Pod, "container": &r.Container,
		"diagnosis": map[string]any{
			"scope": &r.Scope, "limit_bytes": &r.LimitBytes, "main_process_killed": &r.MainProcessKilled,
		},
	})
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: %w", natsread.ErrNotReport, err)
	case r.Schema == "":
		return nil, fmt.Errorf("%w: no schema", natsread.ErrNotReport)
	case r.Schema != report.Schema:
		return nil, fmt.Errorf("%w: schema %q, want %s", natsread.ErrNotReport, report.Escape(r.Schema, 64), report.Schema)
	case r.ID == "":
		return nil, fmt.Errorf("%w: no id", natsread.ErrNotReport)
	}
	return &r, nil
}

// decodeMembers decodes the members of the JSON object data that fields
// names: into the pointer it gives with encoding/json, or, for a nested
// map, member by member again (a null object is left alone).
func decodeMembers(data []byte, fields map[string]any) error {
	return jsonMembers(data, func(key, val []byte) error {
		var err error
		switch p := fields[string(key)].(type) {
		case nil:
			return nil
		case map[string]any:
			if string(val) != "null" {
				err = decodeMembers(val, p)
			}
		default:
			err = json.Unmarshal(val, p)
		}
		if err != nil {
			return fmt.Errorf("key %q: %w", key, err)
		}
		return nil
	})
}

// errJSONCut is jsonMembers' error for a value or object that does not end.
var errJSONCut = errors.New("JSON cut short")

// jsonMembers calls fn with the key and the raw value of each member of
// the JSON object data, in order. Values are delimited by their structure
// (strings, brackets and braces), not validated: fn validates the ones it
// decodes. It fails when data is not an object or is cut short.
func jsonMembers(data []byte, fn func(key, val []byte) error) error {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return errors.New("not a JSON object")
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return trailing(data, i+1)
	}
	for {
		if i >= len(data) || data[i] != '"' {
			return fmt.Errorf("want a key at byte %d", i)
		}
		end, err := skipJSONValue(data, i)
		if err != nil {
			return err
		}
		key := data[i+1 : end-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			var k string
			if err := json.Unmarshal(data[i:end], &k); err != nil {
				return err
			}
			key = []byte(k)
		}
		i = skipSpace(data, end)
		if i >= len(data) || data[i] != ':' {
			return fmt.Errorf("want ':' at byte %d", i)
		}
		i = skipSpace(data, i+1)
		end, err = skipJSONValue(data, i)
		if err != nil {
			return err
		}
		if err := fn(key, data[i:end]); err != nil {
			return err
		}
		i = skipSpace(data, end)
		if i >= len(data) {
			return errJSONCut
		}
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
		case '}':
			return trailing(data, i+1)
		default:
			return fmt.Errorf("want ',' or '}' at byte %d", i)
		}
	}
}

// trailing fails when anything but white space follows the object.
func trailing(data []byte, i int) error {
	if i = skipSpace(data, i); i != len(data) {
		return fmt.Errorf("data after the object at byte %d", i)
	}
	return nil
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// skipJSONValue returns the end of the JSON value that starts at data[i].
func skipJSONValue(data []byte, i int) (int, error) {
	if i >= len(data) {
		return 0, errJSONCut
	}
	switch data[i] {
	case '"':
		return skipJSONString(data, i)
	case '{', '[':
		depth := 0
		for i < len(data) {
			switch data[i] {
			case '"':
				end, err := skipJSONString(data, i)
				if err != nil {
					return 0, err
				}
				i = end
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, nil
				}
			}
			i++
		}
		return 0, errJSONCut
	}
	start := i
	for i < len(data) {
		if c := data[i]; c == ',' || c == '}' || c == ']' || c == ' ' || c == '\t' || c == '\r' || c == '\n' {
			break
		}
		i++
	}
	if i == start {
		return 0, fmt.Errorf("want a value at byte %d", i)
	}
	return i, nil
}

// skipJSONString returns the end of the JSON string that starts at data[i]:
// after the first quote not escaped by an odd number of backslashes.
func skipJSONString(data []byte, i int) (int, error) {
	i++
	for {
		j := bytes.IndexByte(data[i:], '"')
		if j < 0 {
			return 0, errJSONCut
		}
		i += j
		n := 0
		for k := i - 1; k >= 0 && data[k] == '\\'; k-- {
			n++
		}
		i++
		if n%2 == 0 {
			return i, nil
		}
	}
}

// enriched returns the names of r as a report, for natsread.Filter.Match.
func (r *historyReport) enriched() *report.Enriched {
	return &report.Enriched{Report: &report.Report{Host: r.Host}, Pod: r.Pod}
}

// historyKill is one row of the history.
type historyKill struct {
	at    time.Time
	seq   uint64
	node  string // "" when unknown
	pod   string // a key for the pod, "" for none
	cells []string
	line  []byte // the payload as one line of terminal-safe JSON, for -o json
}

// Table columns and the most bytes a cell of each shows.
var historyColumns = []struct {
	name string
	max  int
}{
	{"TIME", 19}, {"NODE", 40}, {"NAMESPACE/POD/CONTAINER", 90}, {"VICTIM", 40},
	{"SCOPE", 16}, {"LIMIT", 10}, {"MAIN/CHILD", 10}, {"ID", 80},
}

// newHistoryKill makes the row of r, stored at stored.
func newHistoryKill(r *historyReport, m natsread.Message) historyKill {
	k := historyKill{at: m.Time, seq: m.Seq, node: natsread.NodeOf(r.enriched())}
	if r.First.Wall != nil && !r.First.Wall.IsZero() {
		k.at = *r.First.Wall
	}
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	var who []string
	if p := r.Pod; p != nil {
		switch {
		case p.Name != "":
			who = append(who, dash(p.Namespace), p.Name)
			k.pod = p.Namespace + "/" + p.Name
		case p.UID != "":
			who = append(who, "pod "+truncateBytes(p.UID, 8))
			k.pod = "uid " + p.UID
		}
	}
	if c := r.Container; c != nil {
		switch {
		case c.Name != "":
			who = append(who, c.Name)
		case c.ID != "":
			who = append(who, "container "+truncateBytes(c.ID, 12))
		}
	}
	victim := "-"
	switch {
	case len(r.Victims) > 0:
		victim = fmt.Sprintf("%s %d", r.Victims[0].Comm, r.Victims[0].PID)
		if len(r.Victims) > 1 {
			victim += fmt.Sprintf(" +%d", len(r.Victims)-1)
		}
	case r.SummaryVictim != nil:
		victim = fmt.Sprintf("%s %d", r.SummaryVictim.Comm, r.SummaryVictim.PID)
	}
	scope, limit, role := r.Kind, "-", "-"
	if r.Scope != "" {
		scope = r.Scope
	}
	if r.LimitBytes != nil {
		limit = human(*r.LimitBytes)
	}
	if r.MainProcessKilled != nil {
		role = map[bool]string{true: "main", false: "child"}[*r.MainProcessKilled]
	}
	if limit == "-" && r.Memory != nil && !r.Memory.Unlimited {
		limit = human(r.Memory.LimitBytes)
	}
	k.cells = []string{
		k.at.Local().Format(time.DateTime), dash(k.node), dash(strings.Join(who, "/")), victim,
		dash(scope), limit, role, r.ID,
	}
	for i, c := range k.cells {
		k.cells[i] = report.Escape(c, historyColumns[i].max)
	}
	return k
}

// truncateBytes returns at most the first n bytes of s (it is escaped
// afterwards, so a cut character shows as an escape).
func truncateBytes(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// runHistory reads the stream and writes the table (or JSON lines).
func runHistory(ctx context.Context, stdout, stderr io.Writer, f *natsReadFlags, output string, since time.Time, timeout time.Duration) error {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	nc, js, err := f.connect(ctx, "oomscope history")
	if err != nil {
		return err
	}
	defer nc.Close()
	q := natsread.Query{Stream: f.cfg.Stream, Filter: f.filter, Since: since}
	var (
		kills   []historyKill
		skipped int
	)
	_, err = natsread.Read(ctx, js, q, func(m natsread.Message) error {
		r, err := decodeHistoryReport(m.Data)
		var line []byte
		if err == nil && output == "json" {
			// Validates the whole payload, which the table does not need.
			if line, err = terminalJSON(m.Data); err != nil {
				err = fmt.Errorf("%w: %w", natsread.ErrNotReport, err)
			}
		}
		if err != nil {
			skipped++
			if skipped <= maxSkippedShown {
				fmt.Fprintf(stderr, "oomscope history: skipped message %d on %s: %v\n", m.Seq, report.Escape(m.Subject, 200), err)
			}
			return nil
		}
		if !q.Filter.Match(r.enriched()) {
			return nil
		}
		k := newHistoryKill(r, m)
		k.line = line
		kills = append(kills, k)
		return nil
	})
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("reading stream %s took longer than --timeout %v (%d reports read): %w", f.cfg.Stream, timeout, len(kills), err)
	}
	if err != nil {
		return err
	}
	if skipped > maxSkippedShown {
		fmt.Fprintf(stderr, "oomscope history: skipped %d messages that are not reports in all\n", skipped)
	}
	slices.SortStableFunc(kills, func(a, b historyKill) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return cmp.Compare(a.seq, b.seq)
	})
	w := bufio.NewWriterSize(stdout, 64<<10)
	total := historyTotal(kills)
	if output == "json" {
		for _, k := range kills {
			if _, err := w.Write(append(k.line, '\n')); err != nil {
				return fmt.Errorf("writing output: %w", err)
			}
		}
		fmt.Fprintln(stderr, total)
	} else {
		if err := writeHistoryTable(w, kills); err != nil {
			return fmt.Errorf("writing output: %w", err)
		}
		fmt.Fprintln(w, total)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("writing output: %w", err)
	}
	return nil
}

// historyTotal is the total line: "N kills, M pods, K nodes".
func historyTotal(kills []historyKill) string {
	pods, nodes := map[string]bool{}, map[string]bool{}
	for _, k := range kills {
		if k.pod != "" {
			pods[k.pod] = true
		}
		if k.node != "" {
			nodes[k.node] = true
		}
	}
	plural := func(n int, one string) string {
		if n == 1 {
			return fmt.Sprintf("%d %s", n, one)
		}
		return fmt.Sprintf("%d %ss", n, one)
	}
	return plural(len(kills), "kill") + ", " + plural(len(pods), "pod") + ", " + plural(len(nodes), "node")
}

// writeHistoryTable writes the rows as an aligned table, one line per kill
// whatever the names hold (every cell is escaped).
func writeHistoryTable(w io.Writer, kills []historyKill) error {
	if len(kills) == 0 {
		return nil
	}
	head := make([]string, len(historyColumns))
	width := make([]int, len(historyColumns))
	for i, c := range historyColumns {
		head[i] = c.name
		width[i] = len(c.name)
	}
	for _, k := range kills {
		for i, c := range k.cells {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	row := func(cells []string) error {
		b.Reset()
		for i, c := range cells {
			b.WriteString(c)
			if i < len(cells)-1 {
				b.WriteString(strings.Repeat(" ", width[i]-utf8.RuneCountInString(c)+2))
			}
		}
		b.WriteByte('\n')
		_, err := io.WriteString(w, b.String())
		return err
	}
	if err := row(head); err != nil {
		return err
	}
	for _, k := range kills {
		if err := row(k.cells); err != nil {
			return err
		}
	}
	return nil
}

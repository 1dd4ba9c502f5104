package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/oomscope/oomscope/archive"
	"github.com/oomscope/oomscope/report"
)

// defaultStateDir is the daemon's default --state-dir (see run).
const defaultStateDir = "/var/lib/oomscope"

// archiveFlags are the flags every archive subcommand shares.
type archiveFlags struct {
	stateDir, archiveDir string
}

// dir returns the archive directory the flags name.
func (f *archiveFlags) dir(cmd *cobra.Command) (string, error) {
	state, arch := cmd.Flags().Lookup("state-dir"), cmd.Flags().Lookup("archive-dir")
	if state != nil && arch != nil && state.Changed && arch.Changed {
		return "", usageError{errors.New("--state-dir and --archive-dir: give one of them")}
	}
	if f.archiveDir != "" {
		return f.archiveDir, nil
	}
	return filepath.Join(f.stateDir, "archive"), nil
}

func newArchiveCmd() *cobra.Command {
	f := &archiveFlags{}
	cmd := &cobra.Command{
		Use:   "archive",
		Short: "List and show the reports of the node's post-mortem archive",
		Long: `Reads the post-mortem archive that "oomscope run" writes (one JSON file per
report, raw kernel lines included, and an index), also while the daemon is
writing it. The archive is STATE-DIR/archive unless --archive-dir names it.`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.stateDir, "state-dir", defaultStateDir, "the daemon's state directory; the archive is STATE-DIR/archive")
	pf.StringVar(&f.archiveDir, "archive-dir", "", "the archive directory (instead of --state-dir)")
	cmd.AddCommand(newArchiveListCmd(f), newArchiveShowCmd(f), newArchiveReindexCmd(f))
	return cmd
}

func newArchiveListCmd(af *archiveFlags) *cobra.Command {
	var (
		since, output string
		filter        archive.Filter
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the archived reports, oldest first",
		Long: `Lists the archived reports, oldest first: time (local), node,
namespace/pod/container, victim (comm and pid), scope, the limit that was
hit, flags (partial, incomplete) and id. Names are shown with control
characters, bidirectional overrides and line breaks as visible escapes, and
cut when very long; -o json prints the index entries exactly, one per line.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := af.dir(cmd)
			if err != nil {
				return err
			}
			if output != "table" && output != "json" {
				return usageError{fmt.Errorf("--output %q: want table or json", output)}
			}
			if since != "" {
				if filter.Since, err = parseSince(since, time.Now()); err != nil {
					return usageError{err}
				}
			}
			r, err := archive.Open(cmd.Context(), archive.Config{Dir: dir})
			if err != nil {
				return err
			}
			entries := r.List(filter)
			w := bufio.NewWriterSize(cmd.OutOrStdout(), 64<<10)
			if output == "json" {
				err = writeEntriesJSON(w, entries)
			} else {
				err = writeEntriesTable(w, entries)
			}
			if err != nil {
				return fmt.Errorf("writing output: %w", err)
			}
			if err := w.Flush(); err != nil {
				return fmt.Errorf("writing output: %w", err)
			}
			if len(entries) == 0 && output == "table" {
				fmt.Fprintf(cmd.ErrOrStderr(), "no reports (of %d) in %s\n", r.Len(), dir)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&since, "since", "", "only reports since this long ago (24h, 90m, 7d) or this time (2006-01-02, RFC 3339)")
	fl.StringVar(&filter.Namespace, "namespace", "", "only reports of pods of this namespace")
	fl.StringVar(&filter.Pod, "pod", "", "only reports of this pod (name or UID)")
	fl.StringVar(&filter.Node, "node", "", "only reports of this node")
	fl.StringVarP(&output, "output", "o", "table", "output: table, or json (one index entry per line)")
	return cmd
}

// parseSince reads --since: a duration back from now (Go syntax, plus
// days: "7d", "1d12h"), a date or an RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	d := s
	var days int64
	if i := strings.IndexByte(d, 'd'); i > 0 {
		n, err := strconv.ParseInt(d[:i], 10, 32)
		if err == nil {
			days, d = n, d[i+1:]
		}
	}
	if dur, err := time.ParseDuration(d); err == nil || (d == "" && days > 0) {
		return now.Add(-time.Duration(days)*24*time.Hour - dur), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation("2006-01-02", s, time.Local); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation("2006-01-02 15:04:05", s, time.Local); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--since %q: want a duration (24h, 7d), a date (2006-01-02) or an RFC 3339 time", s)
}

// writeEntriesJSON writes one index entry per line.
func writeEntriesJSON(w io.Writer, entries []archive.Entry) error {
	for _, e := range entries {
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		if _, err := w.Write(append(archive.EscapeJSON(b), '\n')); err != nil {
			return err
		}
	}
	return nil
}

// Table columns and the most characters a cell of each shows.
var listColumns = []struct {
	name string
	max  int
}{
	{"TIME", 19}, {"NODE", 40}, {"NAMESPACE/POD/CONTAINER", 90}, {"VICTIM", 40},
	{"SCOPE", 16}, {"LIMIT", 10}, {"FLAGS", 20}, {"ID", 80},
}

// writeEntriesTable writes the entries as an aligned table, one line per
// report whatever the names hold. It makes two passes over the entries —
// column widths, then the lines — filling the same cell buffers each time:
// with 100,000 reports, formatting must not cost more than reading the
// index.
func writeEntriesTable(w io.Writer, entries []archive.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	var c tableCells
	width := make([]int, len(listColumns))
	for i, col := range listColumns {
		width[i] = utf8.RuneCountInString(col.name)
	}
	for _, e := range entries {
		c.fill(e)
		for i := range c.cell {
			width[i] = max(width[i], utf8.RuneCount(c.cell[i]))
		}
	}
	line := make([]byte, 0, 512)
	pad := func(n int) {
		for range n {
			line = append(line, ' ')
		}
	}
	for i, col := range listColumns {
		line = append(line, col.name...)
		if i < len(listColumns)-1 {
			pad(width[i] - utf8.RuneCountInString(col.name) + 2)
		}
	}
	line = append(line, '\n')
	if _, err := w.Write(line); err != nil {
		return err
	}
	for _, e := range entries {
		c.fill(e)
		line = line[:0]
		for i, cell := range c.cell {
			line = append(line, cell...)
			if i < len(c.cell)-1 {
				pad(width[i] - utf8.RuneCount(cell) + 2)
			}
		}
		line = append(line, '\n')
		if _, err := w.Write(line); err != nil {
			return err
		}
	}
	return nil
}

// tableCells holds the cells of one table row, reused from row to row.
type tableCells struct {
	cell   [8][]byte
	limits map[uint64]string // human(limit): a few limits repeat
}

// fill sets the cells of e's row, escaped and bounded.
func (c *tableCells) fill(e archive.Entry) {
	for i := range c.cell {
		c.cell[i] = c.cell[i][:0]
	}
	orDash := func(b []byte) []byte {
		if len(b) == 0 {
			return append(b, '-')
		}
		return b
	}
	c.cell[0] = e.Time.Local().AppendFormat(c.cell[0], time.DateTime)
	c.cell[1] = orDash(append(c.cell[1], e.Node...))
	who := c.cell[2]
	switch {
	case e.Pod != "":
		if e.Namespace == "" {
			who = append(who, '-')
		}
		who = append(append(append(who, e.Namespace...), '/'), e.Pod...)
	case e.PodUID != "":
		who = append(append(who, "pod "...), shorten(e.PodUID, 8)...)
	}
	if e.Container != "" {
		if len(who) > 0 {
			who = append(who, '/')
		}
		who = append(who, e.Container...)
	}
	c.cell[2] = orDash(who)
	if e.Comm != "" || e.PID != 0 {
		c.cell[3] = strconv.AppendInt(append(append(c.cell[3], e.Comm...), ' '), int64(e.PID), 10)
	} else {
		c.cell[3] = append(c.cell[3], '-')
	}
	scope := e.Scope
	if scope == "" {
		scope = e.Kind
	}
	c.cell[4] = orDash(append(c.cell[4], scope...))
	if e.LimitBytes != nil {
		h, ok := c.limits[*e.LimitBytes]
		if !ok {
			h = human(*e.LimitBytes)
			if c.limits == nil {
				c.limits = make(map[uint64]string)
			}
			if len(c.limits) < 4096 {
				c.limits[*e.LimitBytes] = h
			}
		}
		c.cell[5] = append(c.cell[5], h...)
	} else {
		c.cell[5] = append(c.cell[5], '-')
	}
	flags := c.cell[6]
	if e.Partial {
		flags = append(flags, "partial"...)
	}
	if e.Incomplete {
		if len(flags) > 0 {
			flags = append(flags, ',')
		}
		flags = append(flags, "incomplete"...)
	}
	c.cell[6] = orDash(flags)
	c.cell[7] = append(c.cell[7], e.ID...)
	for i, b := range c.cell {
		if !plainWithin(b, listColumns[i].max) {
			// Index fields are escaped already, unless the index was
			// written by hand: escape again (a no-op on escaped text) and
			// bound.
			c.cell[i] = append(b[:0], archive.Escape(string(b), listColumns[i].max)...)
		}
	}
}

// plainWithin tells whether b is printable ASCII of at most max bytes.
func plainWithin(b []byte, max int) bool {
	if len(b) > max {
		return false
	}
	for _, c := range b {
		if c < 0x20 || c >= 0x7f {
			return false
		}
	}
	return true
}

func shorten(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func newArchiveShowCmd(af *archiveFlags) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show one archived report",
		Long: `Shows the archived report whose id is ID, or whose id begins with ID
("sha256:" may be left out): -o text (the default) is the post-mortem of
"oomscope parse -o text" followed by the raw kernel records, with control
characters, bidirectional overrides and line breaks in names shown as
visible escapes; -o json is the whole report as archived.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := af.dir(cmd)
			if err != nil {
				return err
			}
			if output != "text" && output != "json" {
				return usageError{fmt.Errorf("--output %q: want text or json", output)}
			}
			er, err := archive.Find(cmd.Context(), archive.Config{Dir: dir}, args[0])
			if err != nil {
				return err
			}
			w := bufio.NewWriter(cmd.OutOrStdout())
			if output == "json" {
				err = writeReportJSON(w, er)
			} else {
				err = writeArchivedText(w, er)
			}
			if err != nil {
				return fmt.Errorf("writing output: %w", err)
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output: text or json")
	return cmd
}

// writeReportJSON writes the report as indented JSON, terminal-safe.
func writeReportJSON(w io.Writer, er *report.Enriched) error {
	b, err := json.MarshalIndent(er, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(archive.EscapeJSON(b), '\n'))
	return err
}

// maxTextField bounds each text of a report shown as text (a kernel
// record is at most about 1000 characters).
const maxTextField = 2048

// writeArchivedText writes the post-mortem text of an archived report (the
// renderer of parse -o text, given a copy of the report whose every string
// is escaped) and its raw kernel records.
func writeArchivedText(w io.Writer, er *report.Enriched) error {
	safe, err := escapedCopy(er)
	if err != nil {
		return err
	}
	if err := writeText(w, er, ""); err != nil { // writeText escapes what it prints
		return err
	}
	if len(safe.Raw) == 0 {
		return nil
	}
	dropped := ""
	if safe.RawDropped > 0 {
		dropped = fmt.Sprintf(", %d more not kept", safe.RawDropped)
	}
	if _, err := fmt.Fprintf(w, "  raw kernel records (%d%s):\n", len(safe.Raw), dropped); err != nil {
		return err
	}
	for _, l := range safe.Raw {
		if _, err := fmt.Fprintf(w, "    %s\n", l); err != nil {
			return err
		}
	}
	return nil
}

// escapedCopy returns a deep copy of er with every string (map keys
// included) passed through archive.Escape.
func escapedCopy(er *report.Enriched) (*report.Enriched, error) {
	b, err := json.Marshal(er)
	if err != nil {
		return nil, err
	}
	var c report.Enriched
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, err
	}
	if c.Report == nil {
		c.Report = &report.Report{}
	}
	escapeStrings(reflect.ValueOf(&c).Elem())
	return &c, nil
}

func escapeStrings(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			escapeStrings(v.Elem())
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if f := v.Field(i); f.CanSet() {
				escapeStrings(f)
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			escapeStrings(v.Index(i))
		}
	case reflect.Map:
		if v.IsNil() || !v.CanSet() {
			return
		}
		m := reflect.MakeMapWithSize(v.Type(), v.Len())
		it := v.MapRange()
		for it.Next() {
			k := reflect.New(v.Type().Key()).Elem()
			k.Set(it.Key())
			escapeStrings(k)
			val := reflect.New(v.Type().Elem()).Elem()
			val.Set(it.Value())
			escapeStrings(val)
			m.SetMapIndex(k, val)
		}
		v.Set(m)
	case reflect.String:
		if v.CanSet() {
			v.SetString(archive.Escape(v.String(), maxTextField))
		}
	}
}

func newArchiveReindexCmd(af *archiveFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "reindex",
		Short: "Rebuild the archive's index from its report files",
		Long: `Rebuilds the archive's index by reading every report file, and removes
the temporary files an interrupted write left. Not needed after a crash: the
daemon repairs the index when it starts, and readers find reports the index
misses. Fails while the daemon holds the archive.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := af.dir(cmd)
			if err != nil {
				return err
			}
			t0 := time.Now()
			n, err := archive.Reindex(cmd.Context(), archive.Config{Dir: dir})
			if errors.Is(err, archive.ErrLocked) {
				return fmt.Errorf("%w: the daemon is running on this archive (it repairs the index itself when it starts)", err)
			}
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "indexed %d reports in %s (%v)\n", n, dir, time.Since(t0).Round(time.Millisecond))
			return err
		},
	}
}

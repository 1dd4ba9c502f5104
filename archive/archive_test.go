package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/oomscope/oomscope/internal/atomicfile"
	"github.com/oomscope/oomscope/report"
)

// clock is a settable clock for Config.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

func openWriter(t *testing.T, cfg Config) *Writer {
	t.Helper()
	w, err := OpenWriter(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func put(t *testing.T, w *Writer, er *report.Enriched) {
	t.Helper()
	if _, err := w.Put(context.Background(), er); err != nil {
		t.Fatal(err)
	}
}

func openReader(t *testing.T, dir string) *Reader {
	t.Helper()
	r, err := Open(context.Background(), Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func ids(entries []Entry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.ID)
	}
	return out
}

// indexLines returns the index file's lines.
func indexLines(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// allFiles lists every file below dir, relative, sorted.
func allFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	slices.Sort(out)
	return out
}

func TestWriteReadLookup(t *testing.T) {
	dir := t.TempDir()
	now := benchStart.Add(time.Hour)
	w := openWriter(t, Config{Dir: dir, Now: func() time.Time { return now }})
	// Written out of time order: the reader sorts by time.
	for _, i := range []int{3, 0, 2, 1, 4} {
		put(t, w, synthReport(i, benchStart))
	}
	noWall := synthReport(5, benchStart)
	noWall.ID, noWall.First.Wall, noWall.Last.Wall = "sha256:00ff00ff", nil, nil
	put(t, w, noWall)
	if w.Len() != 6 {
		t.Errorf("Len %d", w.Len())
	}
	r := openReader(t, dir)
	got := ids(r.List(Filter{}))
	var want []string
	for i := range 5 {
		want = append(want, synthReport(i, benchStart).ID)
	}
	want = append(want, "sha256:00ff00ff") // archived at now, after the others
	if !slices.Equal(got, want) {
		t.Fatalf("list %v\nwant %v", got, want)
	}
	if r.Unindexed() != 0 {
		t.Errorf("Unindexed %d", r.Unindexed())
	}
	e, err := r.Lookup(want[2])
	if err != nil {
		t.Fatal(err)
	}
	src := synthReport(2, benchStart)
	if e.Namespace != src.Pod.Namespace || e.Pod != src.Pod.Name || e.Container != "app" || e.Comm != src.Victims[0].Comm ||
		e.PID != src.Victims[0].PID || e.Scope != "container" || *e.LimitBytes != *src.Diagnosis.LimitBytes || e.Node != src.Pod.Node ||
		!e.Time.Equal(*src.First.Wall) || !e.Archived.Equal(now) || e.File != RelPath(src.ID) || e.Kind != "memcg" {
		t.Errorf("entry %+v", e)
	}
	back, err := r.Load(e)
	if err != nil {
		t.Fatal(err)
	}
	b1, _ := json.Marshal(src)
	b2, _ := json.Marshal(back)
	if !bytes.Equal(b1, b2) {
		t.Errorf("loaded report differs from the one archived")
	}
	if len(back.Raw) != 30 {
		t.Errorf("raw lines: %d", len(back.Raw))
	}
	// Prefixes.
	if e, err := r.Lookup("sha256:00ff"); err != nil || e.ID != "sha256:00ff00ff" {
		t.Errorf("prefix: %v %v", e.ID, err)
	}
	if e, err := r.Lookup("00ff"); err != nil || e.ID != "sha256:00ff00ff" {
		t.Errorf("prefix without sha256: %v %v", e.ID, err)
	}
	if _, err := r.Lookup("0"); !errors.Is(err, ErrAmbiguous) { // 0c1f6b6e-.../1000 and sha256:00ff00ff
		t.Errorf("ambiguous prefix: %v", err)
	}
	if _, err := r.Lookup("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown id: %v", err)
	}
	if _, err := r.Lookup(""); !errors.Is(err, ErrNotFound) {
		t.Errorf("empty id: %v", err)
	}
	ctx := context.Background()
	if er, err := Find(ctx, Config{Dir: dir}, want[1]); err != nil || er.ID != want[1] {
		t.Errorf("Find(full id) = %v, %v", er, err)
	}
	if er, err := Find(ctx, Config{Dir: dir}, "00ff0"); err != nil || er.ID != "sha256:00ff00ff" {
		t.Errorf("Find(prefix) = %v, %v", er, err)
	}
	if _, err := Find(ctx, Config{Dir: dir}, "deadbeef"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Find(unknown) = %v", err)
	}
	// Filters.
	if got := r.List(Filter{Namespace: src.Pod.Namespace}); len(got) != 1 || got[0].ID != src.ID {
		t.Errorf("namespace filter: %v", ids(got))
	}
	if got := r.List(Filter{Pod: src.Pod.UID}); len(got) != 1 || got[0].ID != src.ID {
		t.Errorf("pod uid filter: %v", ids(got))
	}
	if got := r.List(Filter{Node: "node-03", Pod: synthReport(3, benchStart).Pod.Name}); len(got) != 1 {
		t.Errorf("node+pod filter: %v", ids(got))
	}
	if got := r.List(Filter{Since: benchStart.Add(3 * time.Minute)}); len(got) != 3 {
		t.Errorf("since filter: %v", ids(got))
	}
}

func TestPutIdempotent(t *testing.T) {
	dir := t.TempDir()
	w := openWriter(t, Config{Dir: dir})
	r := synthReport(0, benchStart)
	if added, err := w.Put(context.Background(), r); !added || err != nil {
		t.Fatalf("first Put: %v %v", added, err)
	}
	p := Path(dir, r.ID)
	b1, _ := os.ReadFile(p)
	r2 := synthReport(0, benchStart)
	r2.Victims[0].Comm = "changed"
	if added, err := w.Put(context.Background(), r2); added || err != nil {
		t.Fatalf("second Put: %v %v", added, err)
	}
	b2, _ := os.ReadFile(p)
	if !bytes.Equal(b1, b2) {
		t.Error("a second Put rewrote the report")
	}
	if n := len(indexLines(t, dir)); n != 1 {
		t.Errorf("%d index lines, want 1", n)
	}
	// Across a restart too.
	w.Close()
	w = openWriter(t, Config{Dir: dir})
	if added, err := w.Put(context.Background(), r2); added || err != nil {
		t.Fatalf("Put after reopen: %v %v", added, err)
	}
	if n := len(indexLines(t, dir)); n != 1 {
		t.Errorf("%d index lines, want 1", n)
	}
	if _, err := w.Put(context.Background(), &report.Enriched{}); err == nil {
		t.Error("Put of a nil report succeeded")
	}
}

func TestPermissionsAndLayout(t *testing.T) {
	dir := t.TempDir()
	w := openWriter(t, Config{Dir: dir})
	r := synthReport(0, benchStart)
	put(t, w, r)
	want := []string{LockFile, RelPath(r.ID), IndexFile}
	slices.Sort(want)
	if got := allFiles(t, dir); !slices.Equal(got, want) {
		t.Errorf("files %v, want %v", got, want)
	}
	for _, cases := range []struct{ id, want string }{
		{"8f5b1c2d-3e4f-4071-8293-a4b5c6d7e8f9/423", "8f5b1c2d-3e4f-4071-8293-a4b5c6d7e8f9/423.json"},
		{"boot/7", "files/boot-7.json"},
		{"ab/../x", "files/ab-..-x.json"},
		{"../../etc/x", "files/_.-..-etc-x.json"},
		{".oomscope-tmp-x", "files/_oomscope-tmp-x.json"}, // never hidden, never taken for a temporary file
		{"sha256:00ff", "files/sha256-00ff.json"},
		{"", "files/no-id.json"},
	} {
		if got := RelPath(cases.id); got != cases.want || !validRel(got) || !isRelPathOf(got, cases.id) || isRelPathOf(got+"x", cases.id) {
			t.Errorf("RelPath(%q) = %q (valid %v), want %q", cases.id, got, validRel(got), cases.want)
		}
	}
}

// TestReaderWhileWriting reads the archive while a writer holds it: the
// reader neither blocks nor changes anything, and finds a report whose file
// is in place but whose index line is not written yet.
func TestReaderWhileWriting(t *testing.T) {
	dir := t.TempDir()
	w := openWriter(t, Config{Dir: dir})
	for i := range 3 {
		put(t, w, synthReport(i, benchStart))
	}
	// A write between rename and index append, as the reader can see it.
	pending := synthReport(3, benchStart)
	b, _ := json.MarshalIndent(pending, "", "  ")
	if err := atomicfile.WriteFile(Path(dir, pending.ID), b); err != nil {
		t.Fatal(err)
	}
	// And one under way: its temporary file.
	tmp := filepath.Join(filepath.Dir(Path(dir, pending.ID)), atomicfile.TempPrefix+"x.json-123")
	os.WriteFile(tmp, []byte("{"), 0o600)
	before := allFiles(t, dir)
	done := make(chan *Reader)
	go func() {
		r, err := Open(context.Background(), Config{Dir: dir})
		if err != nil {
			t.Error(err)
		}
		done <- r
	}()
	var r *Reader
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Open blocked while a writer holds the archive")
	}
	if r.Len() != 4 || r.Unindexed() != 1 {
		t.Errorf("reader: %d reports, %d unindexed; want 4, 1", r.Len(), r.Unindexed())
	}
	if _, err := r.Lookup(pending.ID); err != nil {
		t.Errorf("the unindexed report: %v", err)
	}
	if after := allFiles(t, dir); !slices.Equal(before, after) {
		t.Errorf("the reader changed the archive:\n%v\n%v", before, after)
	}
}

// TestCrashLeftovers is what a writer killed at each step leaves, and what
// the next OpenWriter makes of it.
func TestCrashLeftovers(t *testing.T) {
	dir := t.TempDir()
	var logs bytes.Buffer
	cfg := Config{Dir: dir, Logger: zerolog.New(&logs)}
	w := openWriter(t, cfg)
	a, b, c := synthReport(0, benchStart), synthReport(1, benchStart), synthReport(2, benchStart)
	put(t, w, a)
	put(t, w, b)
	w.Close()
	// Killed after renaming c's file, before its index line.
	bc, _ := json.MarshalIndent(c, "", "  ")
	if err := atomicfile.WriteFile(Path(dir, c.ID), append(bc, '\n')); err != nil {
		t.Fatal(err)
	}
	// Killed while appending: half a line.
	f, _ := os.OpenFile(filepath.Join(dir, IndexFile), os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"time":"2026-01-01T00:0`)
	f.Close()
	// Killed before renaming: temporary files, ours and an older
	// version's, next to files that are not ours.
	boot := filepath.Dir(Path(dir, a.ID))
	ours := []string{
		filepath.Join(boot, atomicfile.TempPrefix+"1040.json-2961"),
		filepath.Join(dir, atomicfile.TempPrefix+IndexFile+"-77"),
		filepath.Join(boot, ".tmp-3172089"),
	}
	foreign := []string{filepath.Join(boot, ".tmp-editor.swp"), filepath.Join(boot, "NOTES.txt"), filepath.Join(dir, "README")}
	for _, p := range append(slices.Clone(ours), foreign...) {
		os.WriteFile(p, []byte("x"), 0o600)
	}
	// Removed by hand.
	os.Remove(Path(dir, b.ID))

	w = openWriter(t, cfg)
	for _, p := range ours {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("temporary file %s left after open", p)
		}
	}
	for _, p := range foreign {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s (not ours) was removed: %v", p, err)
		}
	}
	lines := indexLines(t, dir)
	var got []string
	for _, l := range lines {
		var e Entry
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Errorf("index line %q: %v", l, err)
		}
		got = append(got, e.ID)
	}
	if want := []string{a.ID, c.ID}; !slices.Equal(got, want) {
		t.Errorf("index after open: %v, want %v", got, want)
	}
	if !strings.Contains(logs.String(), "index repaired") || !strings.Contains(logs.String(), "temporary files") {
		t.Errorf("logs: %s", logs.String())
	}
	if w.Len() != 2 {
		t.Errorf("Len %d", w.Len())
	}
}

// TestDamagedIndex reads an index with garbage, duplicate lines and lines
// that point outside the archive: those are ignored, the reader never
// follows them, and every directory is read for what the index misses.
func TestDamagedIndex(t *testing.T) {
	dir := t.TempDir()
	w := openWriter(t, Config{Dir: dir})
	a, b := synthReport(0, benchStart), synthReport(1, benchStart)
	put(t, w, a)
	put(t, w, b)
	w.Close()
	ix := filepath.Join(dir, IndexFile)
	lines := indexLines(t, dir)
	secret := filepath.Join(t.TempDir(), "secret.json")
	os.WriteFile(secret, []byte(`{"schema":"oomscope.report/v1","id":"stolen","kind":"memcg"}`), 0o600)
	evil := []string{
		"not json",
		`{"id":"x","file":"../../../../` + strings.TrimPrefix(secret, "/") + `"}`,
		`{"id":"stolen","file":"files/stolen.json"}`, // valid shape, no file: listed, not loadable
		lines[0], // duplicate
		"",
	}
	damaged := []byte(lines[0] + "\n" + strings.Join(evil, "\n") + "\n") // b's line lost
	os.WriteFile(ix, damaged, 0o600)
	// A writer repairs the index when it opens.
	w = openWriter(t, Config{Dir: dir})
	if got := indexLines(t, dir); len(got) != 2 || got[0] != lines[0] || !strings.Contains(got[1], `"id":"`+b.ID+`"`) {
		t.Errorf("index repaired by the writer: %q", got)
	}
	// Damaged again while the writer holds the archive: the reader cannot
	// repair it, it reads every directory instead.
	os.WriteFile(ix, damaged, 0o600)
	r := openReader(t, dir)
	got := ids(r.List(Filter{}))
	slices.Sort(got)
	want := []string{a.ID, b.ID, "stolen"}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("reader: %v, want %v", got, want)
	}
	if e, err := r.Lookup("stolen"); err != nil {
		t.Error(err)
	} else if _, err := r.Load(e); !errors.Is(err, ErrNotFound) {
		t.Errorf("loading a report whose file is gone: %v", err)
	}
	if _, err := r.Lookup("x"); err == nil {
		t.Error("a line pointing outside the archive was accepted")
	}
}

// TestReaderRepairsMissingIndex: an archive without an index (written by
// an older version) gets one from the first reader when no writer holds it.
func TestReaderRepairsMissingIndex(t *testing.T) {
	dir := t.TempDir()
	for i := range 3 {
		er := synthReport(i, benchStart)
		b, _ := json.MarshalIndent(er, "", "  ")
		if err := atomicfile.WriteFile(Path(dir, er.ID), b); err != nil {
			t.Fatal(err)
		}
	}
	old := filepath.Join(filepath.Dir(Path(dir, synthReport(0, benchStart).ID)), ".tmp-12345")
	os.WriteFile(old, nil, 0o600)
	r := openReader(t, dir)
	if r.Len() != 3 || r.Unindexed() != 3 {
		t.Errorf("reader: %d reports, %d unindexed", r.Len(), r.Unindexed())
	}
	if n := len(indexLines(t, dir)); n != 3 {
		t.Errorf("index rebuilt with %d lines, want 3", n)
	}
	if _, err := os.Stat(old); err == nil {
		t.Error("old temporary file left")
	}
	r = openReader(t, dir)
	if r.Len() != 3 || r.Unindexed() != 0 {
		t.Errorf("second reader: %d reports, %d unindexed", r.Len(), r.Unindexed())
	}
	// A directory that is not an archive is left alone.
	empty := t.TempDir()
	if r := openReader(t, empty); r.Len() != 0 {
		t.Error("reports in an empty directory")
	}
	if got := allFiles(t, empty); len(got) != 0 {
		t.Errorf("reader created %v in an empty directory", got)
	}
	if _, err := Open(context.Background(), Config{Dir: filepath.Join(empty, "missing")}); err == nil {
		t.Error("Open of a missing directory succeeded")
	}
}

func TestLock(t *testing.T) {
	dir := t.TempDir()
	w := openWriter(t, Config{Dir: dir})
	if _, err := OpenWriter(context.Background(), Config{Dir: dir}); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), fmt.Sprintf("locked by writer, pid %d", os.Getpid())) {
		t.Errorf("second writer: %v", err)
	}
	// A writer waits for the lock up to LockWait (a reader may hold it
	// while it rebuilds the index).
	held := w
	go func() {
		time.Sleep(300 * time.Millisecond)
		held.Close()
	}()
	t0 := time.Now()
	w2, err := OpenWriter(context.Background(), Config{Dir: dir, LockWait: 10 * time.Second})
	if err != nil {
		t.Fatalf("waiting writer: %v", err)
	}
	if d := time.Since(t0); d < 250*time.Millisecond {
		t.Errorf("the second writer did not wait (%v)", d)
	}
	w2.Close()
	w = openWriter(t, Config{Dir: dir})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := OpenWriter(ctx, Config{Dir: dir, LockWait: time.Hour}); !errors.Is(err, ErrLocked) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiting writer, context ends: %v", err)
	}
	if _, err := Reindex(context.Background(), Config{Dir: dir}); !errors.Is(err, ErrLocked) {
		t.Errorf("reindex under a writer: %v", err)
	}
	put(t, w, synthReport(0, benchStart))
	w.Close()
	if _, err := w.Put(context.Background(), synthReport(1, benchStart)); err == nil {
		t.Error("Put after Close succeeded")
	}
	os.Remove(filepath.Join(dir, IndexFile))
	n, err := Reindex(context.Background(), Config{Dir: dir})
	if err != nil || n != 1 {
		t.Errorf("reindex: %d, %v", n, err)
	}
	if _, err := OpenWriter(context.Background(), Config{}); err == nil {
		t.Error("OpenWriter without a directory succeeded")
	}
}

// removedCount reads the removal counter from reg.
func removedCount(t *testing.T, reg *prometheus.Registry, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "oomscope_archive_reports_removed_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no removal counter for %q", reason)
	return 0
}

func TestRetentionByAge(t *testing.T) {
	dir := t.TempDir()
	var logs bytes.Buffer
	reg := prometheus.NewRegistry()
	clk := &clock{t: benchStart.Add(time.Hour)}
	cfg := Config{Dir: dir, MaxAge: 24 * time.Hour, Registerer: reg, Logger: zerolog.New(&logs), Now: clk.Now}
	w := openWriter(t, cfg)
	// Reports at 0, 1, 2, ... 9 hours.
	for i := range 10 {
		er := synthReport(i, benchStart)
		wall := benchStart.Add(time.Duration(i) * time.Hour)
		er.First.Wall = &wall
		put(t, w, er)
	}
	// A day and 4.5 hours later the reports of hours 0-4 are too old; the
	// next write sweeps (the last sweep was more than MaxAge/10 ago).
	clk.Set(benchStart.Add(28*time.Hour + 30*time.Minute))
	late := synthReport(10, benchStart)
	wall := clk.Now()
	late.First.Wall = &wall
	put(t, w, late)
	r := openReader(t, dir)
	if r.Len() != 6 {
		t.Fatalf("%d reports after the sweep, want 6: %v", r.Len(), ids(r.List(Filter{})))
	}
	for i := range 5 {
		id := synthReport(i, benchStart).ID
		if _, err := os.Stat(Path(dir, id)); err == nil {
			t.Errorf("report %s (hour %d) not removed", id, i)
		}
		if !strings.Contains(logs.String(), `"id":"`+id+`"`) {
			t.Errorf("removal of %s not logged", id)
		}
	}
	if n := len(indexLines(t, dir)); n != 6 {
		t.Errorf("index has %d lines, want 6 (compacted)", n)
	}
	if got := removedCount(t, reg, ReasonAge); got != 5 {
		t.Errorf("removed{age} = %v, want 5", got)
	}
	// A report already too old is not written at all.
	ancient := synthReport(11, benchStart)
	if added, err := w.Put(context.Background(), ancient); added || err != nil {
		t.Errorf("Put of a report older than MaxAge: %v %v", added, err)
	}
	if _, err := os.Stat(Path(dir, ancient.ID)); err == nil {
		t.Error("a report older than MaxAge was written")
	}
	// On open, without a write.
	w.Close()
	clk.Set(benchStart.Add(33*time.Hour + 30*time.Minute)) // hours 5-9 expire
	w = openWriter(t, cfg)
	if w.Len() != 1 {
		t.Errorf("after reopen: %d reports, want 1", w.Len())
	}
	if got := removedCount(t, reg, ReasonAge); got != 10 {
		t.Errorf("removed{age} = %v, want 10 (the same registry, the counter registered once)", got)
	}
	// Every boot folder whose reports all went is gone too.
	dirs, _ := reportDirs(dir)
	if len(dirs) != 1 {
		t.Errorf("report folders left: %v", dirs)
	}
}

func TestRetentionBySize(t *testing.T) {
	dir := t.TempDir()
	reg := prometheus.NewRegistry()
	var logs bytes.Buffer
	one := func() int64 {
		b, _ := json.MarshalIndent(synthReport(0, benchStart), "", "  ")
		return int64(len(b) + 1)
	}()
	cfg := Config{Dir: dir, MaxBytes: 10 * one, Registerer: reg, Logger: zerolog.New(&logs)}
	w := openWriter(t, cfg)
	for i := range 40 {
		put(t, w, synthReport(i, benchStart))
		if w.Bytes() > cfg.MaxBytes+one/10 { // report sizes vary by a few bytes
			t.Fatalf("after report %d: %d bytes, max %d", i, w.Bytes(), cfg.MaxBytes)
		}
	}
	r := openReader(t, dir)
	got := ids(r.List(Filter{}))
	// The newest reports are kept, without gaps.
	if len(got) < 8 || len(got) > 10 {
		t.Fatalf("%d reports kept", len(got))
	}
	for k, id := range got {
		if want := synthReport(40-len(got)+k, benchStart).ID; id != want {
			t.Errorf("kept %v: not the newest", got)
			break
		}
	}
	if got := removedCount(t, reg, ReasonSize); int(got) != 40-r.Len() {
		t.Errorf("removed{size} = %v, want %d", got, 40-r.Len())
	}
	if c := strings.Count(logs.String(), "report removed by retention"); c != 40-r.Len() {
		t.Errorf("%d removals logged, want %d", c, 40-r.Len())
	}
	var total int64
	for _, e := range r.List(Filter{}) {
		st, err := os.Stat(Path(dir, e.ID))
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() != e.Size {
			t.Errorf("%s: index says %d bytes, file has %d", e.ID, e.Size, st.Size())
		}
		total += e.Size
	}
	if total != w.Bytes() {
		t.Errorf("writer counts %d bytes, files hold %d", w.Bytes(), total)
	}
}

func TestEscape(t *testing.T) {
	cases := []struct {
		in   string
		max  int
		want string
	}{
		{"python3", 0, "python3"},
		{"a\nb", 0, `a\nb`},
		{"\x1b[31mred\x1b[0m", 0, `\x1b[31mred\x1b[0m`},
		{"tab\there\r", 0, `tab\there\r`},
		{"del\x7f", 0, `del\x7f`},
		{"c1\u0085\u009b", 0, `c1\u0085\u009b`},
		{"evil\u202egnp.exe", 0, `evil\u202egnp.exe`},
		{"iso\u2066x\u2069", 0, `iso\u2066x\u2069`},
		{"line\u2028sep", 0, `line\u2028sep`},
		{"bad\xffutf8", 0, `bad\xffutf8`},
		{"tag\U000E0041", 0, `tag\U000e0041`},
		{"héllo wörld ☃", 0, "héllo wörld ☃"},
		{`back\slash`, 0, `back\slash`},
		{"abcdefghij", 5, "abcd…"},
		{"abcde", 5, "abcde"},
		{"abc\x1bdef", 5, "abc…"}, // never cut inside an escape
		{"ab\ncd", 4, "ab…"},
		{"ab\n", 4, `ab\n`},
	}
	for _, c := range cases {
		if got := Escape(c.in, c.max); got != c.want {
			t.Errorf("Escape(%q, %d) = %q, want %q", c.in, c.max, got, c.want)
		}
	}
	hostile := "x\x1b]0;pwned\x07\n\u202e\u0085\x7f\U000E0041\xff"
	if got := Escape(Escape(hostile, 0), 0); got != Escape(hostile, 0) {
		t.Error("Escape is not idempotent")
	}
	// EscapeJSON keeps the JSON valid and its value unchanged.
	b, _ := json.Marshal(map[string]string{"comm": hostile + "\u2028é"})
	safe := EscapeJSON(b)
	if !json.Valid(safe) {
		t.Fatalf("not JSON: %s", safe)
	}
	for _, bad := range []string{"\x1b", "\n", "\u202e", "\u0085", "\x7f", "\U000E0041", "\u2028"} {
		if bytes.Contains(safe, []byte(bad)) {
			t.Errorf("%q left in %s", bad, safe)
		}
	}
	var m1, m2 map[string]string
	json.Unmarshal(b, &m1)
	json.Unmarshal(safe, &m2)
	if !reflect.DeepEqual(m1, m2) {
		t.Errorf("value changed: %q vs %q", m1, m2)
	}
}

// hostileReport is a report whose attacker-controlled names try to move
// the cursor, fake lines and reorder text.
func hostileReport() *report.Enriched {
	er := synthReport(0, benchStart)
	er.ID = "sha256:0badc0de"
	er.Victims[0].Comm = "sh\x1b[2J\x1b[H"
	er.Pod.Name = "web\nFAKE 2026-01-01 evil row"
	er.Pod.Namespace = "ns\u202eevil"
	er.Container.Name = strings.Repeat("c", 1000)
	er.Host = "node\x07"
	er.Pod.Node = ""
	return er
}

func TestHostileIndex(t *testing.T) {
	dir := t.TempDir()
	w := openWriter(t, Config{Dir: dir})
	er := hostileReport()
	put(t, w, er)
	raw, _ := os.ReadFile(filepath.Join(dir, IndexFile))
	for _, bad := range []string{"\x1b", "\u202e", "\x07"} {
		if bytes.Contains(raw, []byte(bad)) {
			t.Errorf("raw %q in the index: %s", bad, raw)
		}
	}
	if n := bytes.Count(raw, []byte("\n")); n != 1 {
		t.Errorf("index has %d lines for one report", n)
	}
	r := openReader(t, dir)
	e, err := r.Lookup(er.ID)
	if err != nil {
		t.Fatal(err)
	}
	if e.Comm != `sh\x1b[2J\x1b[H` || e.Pod != `web\nFAKE 2026-01-01 evil row` || e.Node != `node\x07` ||
		len([]rune(e.Container)) != MaxField {
		t.Errorf("entry %+v", e)
	}
	// Filters take names as they really are.
	if got := r.List(Filter{Namespace: "ns\u202eevil", Pod: "web\nFAKE 2026-01-01 evil row"}); len(got) != 1 {
		t.Errorf("filter by the real names: %d", len(got))
	}
	// The report file keeps the exact names.
	back, err := r.Load(e)
	if err != nil || back.Victims[0].Comm != er.Victims[0].Comm {
		t.Errorf("report file: %v %v", back, err)
	}
}

func TestDecodeFastMatchesJSON(t *testing.T) {
	limit := uint64(1 << 30)
	entries := []Entry{
		EntryFor(synthReport(7, benchStart), 1234, benchStart),
		EntryFor(hostileReport(), 99, benchStart.Add(time.Nanosecond)),
		{ID: "sha256:00", File: "files/sha256-00.json"},
		{ID: "sha256:b1", File: "files/sha256-b1.json", Time: time.Date(2026, 5, 6, 7, 8, 9, 123, time.FixedZone("x", 3600)), LimitBytes: &limit, Partial: true, Incomplete: true, PID: -1, Comm: "héllo"},
	}
	for _, e := range entries {
		line, err := encodeLine(e)
		if err != nil {
			t.Fatal(err)
		}
		var viaJSON, viaLine Entry
		if err := json.Unmarshal(line, &viaJSON); err != nil {
			t.Fatal(err)
		}
		if st := decodeLine(line, &viaLine, &interner{}); st != lineOK {
			t.Errorf("decodeLine(%s) = %v", line, st)
		}
		if !reflect.DeepEqual(viaJSON, viaLine) {
			t.Errorf("decoders disagree on %s:\n%+v\n%+v", line, viaJSON, viaLine)
		}
	}
}

// FuzzDecodeFast checks that the fast index decoder, when it accepts a
// line, decodes it exactly as encoding/json does.
func FuzzDecodeFast(f *testing.F) {
	for _, e := range []Entry{EntryFor(synthReport(1, benchStart), 10, benchStart), EntryFor(hostileReport(), 1, benchStart)} {
		line, _ := encodeLine(e)
		f.Add(line)
	}
	f.Add([]byte(`{"id":"a","file":"files/a.json","pid":01}`))
	f.Add([]byte(`{"id":"a","id":"b","time":"2026-01-01T00:00:00+01:00"}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		var fast Entry
		if !decodeFast(line, &fast, &interner{}) {
			return
		}
		var slow Entry
		if err := json.Unmarshal(line, &slow); err != nil {
			t.Fatalf("fast accepted what encoding/json rejects (%v): %q", err, line)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("decoders disagree on %q:\n%+v\n%+v", line, fast, slow)
		}
	})
}

// validRel tells whether rel is a path the archive lists as a report: a
// report directory and a report file (not hidden, .json).
func validRel(rel string) bool {
	d, f, ok := strings.Cut(rel, "/")
	return ok && isReportDir(d) && isReportFile(f) && !strings.Contains(f, "/") && path.Clean(rel) == rel
}

// PutJSON writes, from the report's compact JSON, the very bytes Put
// writes from the report; the index lines are the same too.
func TestPutJSONSameFile(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	now := func() time.Time { return benchStart }
	wa, wb := openWriter(t, Config{Dir: a, Now: now}), openWriter(t, Config{Dir: b, Now: now})
	for i := range 3 {
		r := synthReport(i, benchStart)
		r.Victims[0].Comm = "evil\u202e\x7f\"name" // escaped by Enriched's own JSON
		js, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if added, err := wa.Put(context.Background(), r); !added || err != nil {
			t.Fatalf("Put: %v %v", added, err)
		}
		if added, err := wb.PutJSON(context.Background(), r, js); !added || err != nil {
			t.Fatalf("PutJSON: %v %v", added, err)
		}
		fa, _ := os.ReadFile(Path(a, r.ID))
		fb, err := os.ReadFile(Path(b, r.ID))
		if err != nil || !bytes.Equal(fa, fb) {
			t.Fatalf("report %d: PutJSON wrote %d bytes (%v), Put %d; they differ", i, len(fb), err, len(fa))
		}
	}
	if la, lb := indexLines(t, a), indexLines(t, b); !slices.Equal(la, lb) {
		t.Errorf("index lines differ:\n%q\n%q", la, lb)
	}
	if _, err := wb.PutJSON(context.Background(), synthReport(9, benchStart), []byte("{not json")); err == nil {
		t.Error("PutJSON of bad JSON succeeded")
	}
}

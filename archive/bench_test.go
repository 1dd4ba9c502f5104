package archive

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// benchStart is the time of the first synthetic report.
var benchStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// buildSynthArchive writes n synthetic reports into dir as the writer lays
// them out (without the writer's fsyncs: this is a fixture, not a
// measurement of writing) and indexes them with Reindex.
func buildSynthArchive(tb testing.TB, dir string, n int) {
	tb.Helper()
	for i := range n {
		er := synthReport(i, benchStart)
		b, err := json.MarshalIndent(er, "", "  ")
		if err != nil {
			tb.Fatal(err)
		}
		p := Path(dir, er.ID)
		if i < len(synthBoots) {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				tb.Fatal(err)
			}
		}
		if err := os.WriteFile(p, append(b, '\n'), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	t0 := time.Now()
	got, err := Reindex(context.Background(), Config{Dir: dir})
	if err != nil {
		tb.Fatal(err)
	}
	if got != n {
		tb.Fatalf("reindex: %d reports, want %d", got, n)
	}
	tb.Logf("reindexed %d reports in %v", n, time.Since(t0).Round(time.Millisecond))
}

// TestBuildLargeArchive is the harness behind the figures in
// docs/archive.md, not a unit test: with OOMSCOPE_ARCHIVE_BUILD=DIR it
// writes OOMSCOPE_ARCHIVE_REPORTS (default 100000) synthetic reports into
// DIR, for timing `oomscope archive` against:
//
//	OOMSCOPE_ARCHIVE_BUILD=/tmp/big go test -run TestBuildLargeArchive -v -timeout 30m ./archive
//	time oomscope archive list --archive-dir /tmp/big >/dev/null
func TestBuildLargeArchive(t *testing.T) {
	dir := os.Getenv("OOMSCOPE_ARCHIVE_BUILD")
	if dir == "" {
		t.Skip("set OOMSCOPE_ARCHIVE_BUILD=DIR to build a large archive in DIR")
	}
	n := 100000
	if s := os.Getenv("OOMSCOPE_ARCHIVE_REPORTS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			t.Fatal(err)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) > 0 {
		t.Fatalf("%s is not empty", dir)
	}
	buildSynthArchive(t, dir, n)
}

// benchArchive returns the archive the benchmarks read: OOMSCOPE_ARCHIVE_BENCH
// when set (e.g. one built by TestBuildLargeArchive), else 10,000 synthetic
// reports built once per process.
func benchArchive(b *testing.B) string {
	if d := os.Getenv("OOMSCOPE_ARCHIVE_BENCH"); d != "" {
		return d
	}
	benchOnce.Do(func() {
		d, err := os.MkdirTemp("", "oomscope-archive-bench-")
		if err != nil {
			b.Fatal(err)
		}
		buildSynthArchive(b, d, 10000)
		benchDir = d
	})
	if benchDir == "" {
		b.Fatal("no benchmark archive")
	}
	return benchDir
}

var (
	benchOnce sync.Once
	benchDir  string
)

// TestMain removes the benchmarks' archive when they built one.
func TestMain(m *testing.M) {
	code := m.Run()
	if benchDir != "" {
		os.RemoveAll(benchDir)
	}
	os.Exit(code)
}

// BenchmarkOpen measures reading the index (what `archive list` does
// before printing).
func BenchmarkOpen(b *testing.B) {
	dir := benchArchive(b)
	ctx := context.Background()
	for b.Loop() {
		r, err := Open(ctx, Config{Dir: dir})
		if err != nil {
			b.Fatal(err)
		}
		if r.Len() == 0 {
			b.Fatal("empty")
		}
	}
}

// BenchmarkFindPrefix measures `archive show PREFIX`: the index is read to
// resolve the prefix.
func BenchmarkFindPrefix(b *testing.B) {
	dir := benchArchive(b)
	ctx := context.Background()
	r, err := Open(ctx, Config{Dir: dir})
	if err != nil {
		b.Fatal(err)
	}
	id := r.entries[r.Len()/2].ID
	prefix := id[:len(id)-1]
	for b.Loop() {
		// Several ids may share the prefix (ErrAmbiguous): what is measured
		// is the lookup.
		_, _ = Find(ctx, Config{Dir: dir}, prefix)
	}
}

// BenchmarkFindID measures `archive show ID` with a full id: its file is
// read directly.
func BenchmarkFindID(b *testing.B) {
	dir := benchArchive(b)
	ctx := context.Background()
	r, err := Open(ctx, Config{Dir: dir})
	if err != nil {
		b.Fatal(err)
	}
	id := r.entries[r.Len()/2].ID
	for b.Loop() {
		if _, err := Find(ctx, Config{Dir: dir}, id); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpenWriter measures the daemon's start: the writer lock, the
// temporary-file sweep and reconciling the index with every report
// directory (retention off, so that nothing is removed).
func BenchmarkOpenWriter(b *testing.B) {
	dir := benchArchive(b)
	ctx := context.Background()
	for b.Loop() {
		w, err := OpenWriter(ctx, Config{Dir: dir})
		if err != nil {
			b.Fatal(err)
		}
		w.Close()
	}
}

// BenchmarkOpenBehind measures Open when a report directory changed after
// the index was last written, as it does while the daemon writes (a report
// is renamed into place before its index line is appended): that
// directory is read to find reports not indexed yet.
func BenchmarkOpenBehind(b *testing.B) {
	dir := benchArchive(b)
	ctx := context.Background()
	r, err := Open(ctx, Config{Dir: dir})
	if err != nil {
		b.Fatal(err)
	}
	boot := filepath.Dir(Path(dir, r.entries[r.Len()-1].ID))
	for b.Loop() {
		b.StopTimer()
		future := time.Now().Add(time.Hour)
		if err := os.Chtimes(boot, future, future); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := Open(ctx, Config{Dir: dir}); err != nil {
			b.Fatal(err)
		}
	}
}

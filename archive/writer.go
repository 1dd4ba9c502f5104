package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/oomscope/oomscope/internal/atomicfile"
	"github.com/oomscope/oomscope/report"
)

// Defaults of [DefaultConfig].
const (
	DefaultMaxAge   = 30 * 24 * time.Hour
	DefaultMaxBytes = 1 << 30 // 1 GiB
	// DefaultLockWait is how long a starting daemon waits for the
	// archive's lock: a reader may hold it for as long as it takes to
	// rebuild a missing index.
	DefaultLockWait = 2 * time.Minute
)

// Config configures an archive.
type Config struct {
	// Dir is the archive's root directory. Required.
	Dir string
	// MaxAge is how long a report is kept, by its [Entry.Time]; 0 keeps
	// reports forever. A report already older when it is published is
	// not written at all.
	MaxAge time.Duration
	// MaxBytes bounds the total size of the report files; 0 means no
	// bound. When the archive grows past it, the oldest reports are
	// removed until it is below 90% of it, so that the index is not
	// rewritten on every write.
	MaxBytes int64
	// Registerer, when set, gets the writer's counter
	// oomscope_archive_reports_removed_total{reason="age"|"size"}.
	Registerer prometheus.Registerer
	// Logger gets the writer's messages: each removal at info with the
	// report id, repairs of the index after a crash. The zero Logger
	// writes nothing.
	Logger zerolog.Logger
	// LockWait is how long OpenWriter waits for the writer lock while
	// another process holds it before failing with [ErrLocked]; 0 fails
	// at once.
	LockWait time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// DefaultConfig returns the configuration of the archive at dir with the
// default retention, 30 days and 1 GiB, and lock wait, 2 minutes.
func DefaultConfig(dir string) Config {
	return Config{Dir: dir, MaxAge: DefaultMaxAge, MaxBytes: DefaultMaxBytes, LockWait: DefaultLockWait}
}

func (c Config) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Removal reasons (the reason label of the removal counter).
const (
	ReasonAge  = "age"
	ReasonSize = "size"
)

// slot is what the writer keeps in memory of each archived report.
type slot struct {
	time int64 // Entry.Time, Unix nanoseconds
	size int64
	id   string
}

// Writer writes the archive: report files, the index, retention. One
// process at a time writes an archive (a lock file says which); any number
// read it meanwhile with [Open]. Its methods are safe for concurrent use.
type Writer struct {
	cfg     Config
	log     zerolog.Logger
	removed *prometheus.CounterVec

	mu        sync.Mutex
	lock      *os.File
	index     *os.File // index.jsonl, O_APPEND
	needNL    bool     // an append failed: start the next line on a new line
	slots     []slot   // in index order
	ids       map[string]struct{}
	total     int64
	lastSweep time.Time
	closed    bool
	// dirs holds the directories reports were written into open (a boot's
	// folder: one for the whole boot), so that a write does not open its
	// directory again to sync it. Retention closes them.
	dirs map[string]*atomicfile.Dir
}

// OpenWriter opens the archive at cfg.Dir for writing, creating it when
// needed. It takes the writer lock (waiting up to cfg.LockWait, then
// failing with [ErrLocked], while another process holds it), removes the temporary files a crash left, brings the
// index in line with the report files (a report written just before a
// crash, before its index line, is indexed now; lines of files that are
// gone are dropped; a cut last line is discarded) and enforces retention.
func OpenWriter(ctx context.Context, cfg Config) (*Writer, error) {
	if cfg.Dir == "" {
		return nil, errors.New("archive: directory is empty")
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("archive: creating directory: %w", err)
	}
	w := &Writer{cfg: cfg, log: cfg.Logger, ids: map[string]struct{}{}}
	if err := w.registerMetrics(); err != nil {
		return nil, err
	}
	lock, err := lockDirWait(ctx, cfg.Dir, "writer", cfg.LockWait)
	if err != nil {
		return nil, err
	}
	w.lock = lock
	if err := w.open(ctx); err != nil {
		unlock(lock)
		if w.index != nil {
			w.index.Close()
		}
		return nil, err
	}
	return w, nil
}

func (w *Writer) registerMetrics() error {
	w.removed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "oomscope", Subsystem: "archive", Name: "reports_removed_total",
		Help: "Reports removed from the post-mortem archive by retention, by reason: age (older than the maximum age) or size (the archive outgrew its maximum size).",
	}, []string{"reason"})
	w.removed.WithLabelValues(ReasonAge)
	w.removed.WithLabelValues(ReasonSize)
	if w.cfg.Registerer == nil {
		return nil
	}
	if err := w.cfg.Registerer.Register(w.removed); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return fmt.Errorf("archive: registering metrics: %w", err)
		}
		cv, ok := are.ExistingCollector.(*prometheus.CounterVec)
		if !ok {
			return fmt.Errorf("archive: registering metrics: %w", err)
		}
		w.removed = cv
	}
	return nil
}

func (w *Writer) open(ctx context.Context) error {
	if err := w.load(ctx); err != nil {
		return err
	}
	_, err := w.enforce(ctx, true)
	return err
}

// load removes the temporary files of crashed writes, reads the index,
// reconciles it with the files and opens it for appending.
func (w *Writer) load(ctx context.Context) error {
	dir := w.cfg.Dir
	files, temps, err := scanDisk(ctx, dir, true)
	if len(temps) > 0 {
		w.log.Info().Int("count", len(temps)).Strs("files", temps).Msg("archive: removed temporary files left by an interrupted write")
	}
	if err != nil {
		return err
	}
	ixPath := filepath.Join(dir, IndexFile)
	ix, err := readIndex(ixPath)
	if err != nil {
		return err
	}
	rc, err := reconcile(ctx, dir, ix, files, false)
	if err != nil {
		return err
	}
	if len(rc.skipped) > 0 {
		w.log.Warn().Int("count", len(rc.skipped)).Str("first", describeSkipped(rc.skipped)).Msg("archive: files that are not readable reports were left out of the index")
	}
	if rc.rewrite {
		if err := writeIndex(ixPath, rc.entries); err != nil {
			return err
		}
		if ix.exists {
			w.log.Info().Int("added", rc.added).Int("dropped", rc.dropped).Int("damaged_lines", ix.damaged).Int("duplicate_lines", ix.dups).
				Msg("archive: index repaired (reports written but not indexed before a crash, files removed by hand, a cut line)")
		}
	}
	if w.index != nil {
		w.index.Close()
	}
	f, err := os.OpenFile(ixPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("archive: opening index: %w", err)
	}
	w.index, w.needNL = f, false
	w.slots, w.ids, w.total = w.slots[:0], make(map[string]struct{}, len(rc.entries)), 0
	for _, e := range rc.entries {
		w.addSlot(e)
	}
	return nil
}

func (w *Writer) addSlot(e Entry) {
	w.slots = append(w.slots, slot{time: e.Time.UnixNano(), size: e.Size, id: e.ID})
	w.ids[e.ID] = struct{}{}
	w.total += e.Size
}

// Dir returns the archive's root directory.
func (w *Writer) Dir() string { return w.cfg.Dir }

// Len returns the number of reports in the archive.
func (w *Writer) Len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.slots)
}

// Bytes returns the total size of the report files.
func (w *Writer) Bytes() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.total
}

// Put archives er: its report file (pretty JSON, raw kernel lines
// included) written atomically — a temporary file in the same directory,
// fsync, rename, fsync of the directory — then its index line appended
// (not synced: an opening writer rebuilds a line a crash lost from the
// file). It returns true when it wrote the report, false when the
// archive already held a report of that id (left as it is) or the report
// is older than MaxAge. When Put returns nil the report is durable.
func (w *Writer) Put(ctx context.Context, er *report.Enriched) (bool, error) {
	return w.PutJSON(ctx, er, nil)
}

// PutJSON is [Writer.Put] of er given also as its JSON, what
// json.Marshal(er) gives (the outbox's body): the file is that JSON
// indented, byte for byte what Put writes, without encoding er again. A
// nil js is Put.
func (w *Writer) PutJSON(ctx context.Context, er *report.Enriched, js []byte) (bool, error) {
	if er == nil || er.Report == nil {
		return false, errors.New("archive: nil report")
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return false, errors.New("archive: writer is closed")
	}
	id := er.ID
	if _, ok := w.ids[id]; ok {
		return false, nil
	}
	rel := RelPath(id)
	path := filepath.Join(w.cfg.Dir, filepath.FromSlash(rel))
	now := w.cfg.now()
	if _, err := os.Stat(path); err == nil {
		// Written, not indexed: an index append failed (the caller
		// retries). Index the file as it is on disk.
		e, err := loadEntry(w.cfg.Dir, rel)
		if err != nil {
			return false, fmt.Errorf("archive: report %s: %w", id, err)
		}
		if e.ID != id {
			return false, fmt.Errorf("archive: report %s: its file %s holds report %s", id, rel, e.ID)
		}
		if _, ok := w.ids[e.ID]; ok {
			return false, nil
		}
		return false, w.append(e)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("archive: %w", err)
	}
	b, err := indented(er, js)
	if err != nil {
		return false, fmt.Errorf("archive: encoding report %s: %w", id, err)
	}
	e := EntryFor(er, int64(len(b)), now)
	if w.cfg.MaxAge > 0 && e.Time.Before(now.Add(-w.cfg.MaxAge)) {
		w.log.Info().Str("id", id).Time("time", e.Time).Dur("max_age", w.cfg.MaxAge).Msg("archive: report older than the retention, not archived")
		return false, nil
	}
	if err := w.writeFile(path, b); err != nil {
		return false, fmt.Errorf("archive: report %s: %w", id, err)
	}
	if err := w.append(e); err != nil {
		return false, err
	}
	if _, err := w.enforce(ctx, false); err != nil {
		// The report is durable; retention runs again after the next
		// write.
		w.log.Error().Err(err).Msg("archive: retention")
	}
	return true, nil
}

// indented is er as pretty JSON and a newline, from js (er's compact JSON)
// when given: json.MarshalIndent is json.Marshal, then json.Indent.
func indented(er *report.Enriched, js []byte) ([]byte, error) {
	if js == nil {
		b, err := json.MarshalIndent(er, "", "  ")
		return append(b, '\n'), err
	}
	var buf bytes.Buffer
	buf.Grow(len(js) + len(js)/2)
	if err := json.Indent(&buf, js, "", "  "); err != nil {
		return nil, err
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

// writeFile writes a report file atomically through its open directory.
func (w *Writer) writeFile(path string, b []byte) error {
	dir := filepath.Dir(path)
	d := w.dirs[dir]
	if d == nil {
		var err error
		if d, err = atomicfile.OpenDir(dir); err != nil {
			return err
		}
		if w.dirs == nil {
			w.dirs = map[string]*atomicfile.Dir{}
		}
		w.dirs[dir] = d
	}
	return d.WriteFile(filepath.Base(path), b)
}

// closeDirs closes the directories writeFile keeps open.
func (w *Writer) closeDirs() error {
	var errs []error
	for p, d := range w.dirs {
		errs = append(errs, d.Close())
		delete(w.dirs, p)
	}
	return errors.Join(errs...)
}

// append appends e's index line. It does not fsync the index: the index
// is derived from the report files, which are synced before it, and an
// opening writer adds any report file a crash left without its line (and
// skips a cut one); readers find such reports too (see [Open]). Until a
// crash, readers see the line at once, from the page cache.
func (w *Writer) append(e Entry) error {
	line, err := encodeLine(e)
	if err != nil {
		return err
	}
	if w.needNL {
		// The previous append may have left a cut line: end it, so that
		// this line stays whole (readers skip the damaged one).
		line = append([]byte{'\n'}, line...)
	}
	if _, err := w.index.Write(line); err != nil {
		w.needNL = true
		return fmt.Errorf("archive: appending to index: %w", err)
	}
	w.needNL = false
	w.addSlot(e)
	return nil
}

// sweepInterval is how often, at most, retention by age rewrites the index
// after a write: a report outlives MaxAge by at most this.
func (w *Writer) sweepInterval() time.Duration {
	return min(time.Hour, w.cfg.MaxAge/10)
}

// sweepDue tells, cheaply, whether retention has something to remove;
// unless force, reports past MaxAge count only once per sweepInterval.
func (w *Writer) sweepDue(now time.Time, force bool) bool {
	if w.cfg.MaxBytes > 0 && w.total > w.cfg.MaxBytes {
		return true
	}
	if w.cfg.MaxAge <= 0 || (!force && now.Sub(w.lastSweep) < w.sweepInterval()) {
		return false
	}
	cutoff := now.Add(-w.cfg.MaxAge).UnixNano()
	for _, s := range w.slots {
		if s.time < cutoff {
			return true
		}
	}
	w.lastSweep = now // nothing to do until the next interval
	return false
}

// Enforce applies retention now: reports older than MaxAge are removed,
// then, while the archive is larger than MaxBytes, the oldest reports,
// until it is below 90% of it. It returns how many reports it removed.
// Put calls it when due; a long-running writer with rare writes may call
// it periodically.
func (w *Writer) Enforce(ctx context.Context) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return 0, errors.New("archive: writer is closed")
	}
	return w.enforce(ctx, true)
}

// enforce removes what retention says: first the index lines (the index is
// rewritten without them), then the files. A crash in between leaves files
// without index lines, which the next open indexes and removes again.
func (w *Writer) enforce(ctx context.Context, force bool) (int, error) {
	now := w.cfg.now()
	if !w.sweepDue(now, force) {
		return 0, nil
	}
	w.lastSweep = now
	order := make([]int, len(w.slots))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		sa, sb := w.slots[a], w.slots[b]
		switch {
		case sa.time < sb.time:
			return -1
		case sa.time > sb.time:
			return 1
		}
		return 0
	})
	reason := make(map[string]string)
	total := w.total
	if w.cfg.MaxAge > 0 {
		cutoff := now.Add(-w.cfg.MaxAge).UnixNano()
		for _, i := range order {
			if s := w.slots[i]; s.time < cutoff {
				reason[s.id] = ReasonAge
				total -= s.size
			}
		}
	}
	if w.cfg.MaxBytes > 0 && total > w.cfg.MaxBytes {
		low := w.cfg.MaxBytes - w.cfg.MaxBytes/10
		for _, i := range order {
			if total <= low {
				break
			}
			s := w.slots[i]
			if _, gone := reason[s.id]; gone {
				continue
			}
			reason[s.id] = ReasonSize
			total -= s.size
		}
	}
	if len(reason) == 0 {
		return 0, nil
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	// 1. The index without them.
	ixPath := filepath.Join(w.cfg.Dir, IndexFile)
	ix, err := readIndex(ixPath)
	if err != nil {
		return 0, err
	}
	keep := ix.entries[:0]
	for _, e := range ix.entries {
		if _, gone := reason[e.ID]; !gone {
			keep = append(keep, e)
		}
	}
	if err := writeIndex(ixPath, keep); err != nil {
		return 0, err
	}
	f, err := os.OpenFile(ixPath, os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, fmt.Errorf("archive: opening index: %w", err)
	}
	w.index.Close()
	w.index, w.needNL = f, false
	// 2. The files.
	var errs []error
	dirs := map[string]struct{}{}
	slots := w.slots[:0]
	for _, s := range w.slots {
		why, gone := reason[s.id]
		if !gone {
			slots = append(slots, s)
			continue
		}
		rel := RelPath(s.id)
		p := filepath.Join(w.cfg.Dir, filepath.FromSlash(rel))
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("archive: removing %s: %w", p, err))
		}
		dirs[filepath.Dir(p)] = struct{}{}
		delete(w.ids, s.id)
		w.total -= s.size
		w.removed.WithLabelValues(why).Inc()
		w.log.Info().Str("id", s.id).Str("reason", why).Str("file", rel).Time("time", time.Unix(0, s.time)).
			Msg("archive: report removed by retention")
	}
	w.slots = slots
	errs = append(errs, w.closeDirs()) // a boot's folder may go below
	for d := range dirs {
		if err := atomicfile.SyncDir(d); err != nil {
			errs = append(errs, err)
		}
		_ = os.Remove(d) // a boot's folder once empty; fails while it is not
	}
	// The directories changed after the index: touch it so that readers
	// do not look for unindexed reports in them.
	t := time.Now()
	_ = os.Chtimes(ixPath, t, t)
	return len(reason), errors.Join(errs...)
}

// Reindex rebuilds the index from the report files alone (each one read),
// after removing temporary files a crash left. It takes the writer lock:
// it fails with [ErrLocked] while a writer (the daemon) has the archive
// open — a writer reconciles the index itself when it opens. It returns
// the number of reports indexed.
func Reindex(ctx context.Context, cfg Config) (int, error) {
	if cfg.Dir == "" {
		return 0, errors.New("archive: directory is empty")
	}
	if _, err := os.Stat(cfg.Dir); err != nil {
		return 0, fmt.Errorf("archive: %w", err)
	}
	lock, err := lockDirWait(ctx, cfg.Dir, "oomscope archive reindex", cfg.LockWait)
	if err != nil {
		return 0, err
	}
	defer unlock(lock)
	files, temps, err := scanDisk(ctx, cfg.Dir, true)
	if len(temps) > 0 {
		cfg.Logger.Info().Int("count", len(temps)).Strs("files", temps).Msg("archive: removed temporary files left by an interrupted write")
	}
	if err != nil {
		return 0, err
	}
	ixPath := filepath.Join(cfg.Dir, IndexFile)
	ix, err := readIndex(ixPath)
	if err != nil {
		return 0, err
	}
	rc, err := reconcile(ctx, cfg.Dir, ix, files, true)
	if err != nil {
		return 0, err
	}
	if len(rc.skipped) > 0 {
		cfg.Logger.Warn().Int("count", len(rc.skipped)).Str("first", describeSkipped(rc.skipped)).Msg("archive: files that are not readable reports were left out of the index")
	}
	if err := writeIndex(ixPath, rc.entries); err != nil {
		return 0, err
	}
	return len(rc.entries), nil
}

// Close closes the index and releases the writer lock.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	var errs []error
	if w.index != nil {
		errs = append(errs, w.index.Close())
	}
	errs = append(errs, w.closeDirs(), unlock(w.lock))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("archive: closing: %w", err)
	}
	return nil
}

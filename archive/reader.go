package archive

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/oomscope/oomscope/report"
)

// Errors of [Reader.Lookup] and [Find].
var (
	// ErrNotFound: no report has this id or id prefix.
	ErrNotFound = errors.New("no such report")
	// ErrAmbiguous: more than one report has this id prefix.
	ErrAmbiguous = errors.New("ambiguous report id prefix")
)

// Reader is a view of an archive: its index as it was when opened, plus
// the reports written but not indexed yet. It never blocks a writer and
// needs no write access.
type Reader struct {
	dir       string
	entries   []Entry // by time
	unindexed int
}

// Open reads the archive at cfg.Dir (only Dir and Logger matter) while a
// writer may be writing it in another process. It reads the index and
// looks for reports it does not list yet only in the report directories
// that changed after the index was last written — a report file is in
// place before its index line, so a report written but not indexed yet
// (or whose writer crashed before indexing it) is found there. When the
// index is missing or damaged, every directory is read; then, if no writer
// holds the archive, the index is rebuilt on disk (and the temporary files
// of crashed writes removed) so that the next Open is fast again.
func Open(ctx context.Context, cfg Config) (*Reader, error) {
	dir := cfg.Dir
	if dir == "" {
		return nil, errors.New("archive: directory is empty")
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("archive: no archive at %s: %w", dir, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("archive: %s is not a directory", dir)
	}
	ixPath := filepath.Join(dir, IndexFile)
	ix, err := readIndex(ixPath)
	if err != nil {
		return nil, err
	}
	if !ix.exists {
		dirs, err := reportDirs(dir)
		if err != nil {
			return nil, err
		}
		if len(dirs) == 0 { // empty, or not an archive: leave it as it is
			return &Reader{dir: dir}, nil
		}
	}
	if !ix.exists || ix.damaged > 0 {
		if r, ok := repair(ctx, cfg); ok {
			return r, nil
		}
	}
	extra, err := unindexed(ctx, dir, ix)
	if err != nil {
		return nil, err
	}
	r := &Reader{dir: dir, unindexed: len(extra)}
	r.entries = append(ix.entries, extra...)
	sortEntries(r.entries)
	return r, nil
}

// repair rebuilds the index on disk when no writer holds the archive and
// the directory is writable, and returns the reader of the result. It is
// only an optimisation: when it cannot, it returns false and logs why at
// debug.
func repair(ctx context.Context, cfg Config) (*Reader, bool) {
	lock, err := lockDir(cfg.Dir, "a reader rebuilding the index")
	if err != nil {
		cfg.Logger.Debug().Err(err).Msg("archive: index not rebuilt")
		return nil, false
	}
	defer unlock(lock)
	var ix index
	files, _, err := scanDisk(ctx, cfg.Dir, true)
	if err == nil {
		ix, err = readIndex(filepath.Join(cfg.Dir, IndexFile)) // again, under the lock
	}
	if err != nil {
		cfg.Logger.Debug().Err(err).Msg("archive: index not rebuilt")
		return nil, false
	}
	rc, err := reconcile(ctx, cfg.Dir, ix, files, false)
	if err == nil && rc.rewrite {
		err = writeIndex(filepath.Join(cfg.Dir, IndexFile), rc.entries)
	}
	if err != nil {
		cfg.Logger.Debug().Err(err).Msg("archive: index not rebuilt")
		return nil, false
	}
	r := &Reader{dir: cfg.Dir, entries: rc.entries, unindexed: rc.added}
	sortEntries(r.entries)
	return r, true
}

// Dir returns the archive's root directory.
func (r *Reader) Dir() string { return r.dir }

// Len returns the number of reports.
func (r *Reader) Len() int { return len(r.entries) }

// Unindexed returns how many reports were found on disk without an index
// line when the reader was opened.
func (r *Reader) Unindexed() int { return r.unindexed }

// List returns the entries that pass f, by time (oldest first).
func (r *Reader) List(f Filter) []Entry {
	f.Namespace, f.Pod, f.Node = Escape(f.Namespace, MaxField), Escape(f.Pod, MaxField), Escape(f.Node, MaxField)
	if f == (Filter{}) {
		return slices.Clone(r.entries)
	}
	var out []Entry
	for _, e := range r.entries {
		if f.match(e) {
			out = append(out, e)
		}
	}
	return out
}

// Lookup returns the entry of the report whose id is id, or, failing that,
// the one report whose id begins with id ("sha256:" may be left out).
func (r *Reader) Lookup(id string) (Entry, error) {
	if id == "" {
		return Entry{}, fmt.Errorf("archive: %w: empty id", ErrNotFound)
	}
	var matches []Entry
	for _, e := range r.entries {
		if e.ID == id {
			return e, nil
		}
		if strings.HasPrefix(e.ID, id) || strings.HasPrefix(strings.TrimPrefix(e.ID, "sha256:"), id) {
			matches = append(matches, e)
		}
	}
	switch len(matches) {
	case 0:
		return Entry{}, fmt.Errorf("archive: %w: %q", ErrNotFound, id)
	case 1:
		return matches[0], nil
	}
	var ids []string
	for i, e := range matches {
		if i == 5 {
			ids = append(ids, fmt.Sprintf("and %d more", len(matches)-5))
			break
		}
		ids = append(ids, Escape(e.ID, MaxField))
	}
	return Entry{}, fmt.Errorf("archive: %w: %q matches %d reports: %s", ErrAmbiguous, id, len(matches), strings.Join(ids, ", "))
}

// Load reads the report of e from its file.
func (r *Reader) Load(e Entry) (*report.Enriched, error) {
	return load(r.dir, e.ID)
}

// load reads the report with this id.
func load(dir, id string) (*report.Enriched, error) {
	rel := RelPath(id)
	er, _, err := readReport(dir, rel)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("archive: report %s: %w (its file %s is gone: removed by retention?)", id, ErrNotFound, rel)
	}
	if err != nil {
		return nil, fmt.Errorf("archive: report %s: %w", id, err)
	}
	if er.ID != id {
		return nil, fmt.Errorf("archive: report %s: its file %s holds report %q", id, rel, er.ID)
	}
	return er, nil
}

// Find returns the report whose id is id or begins with id, as
// [Reader.Lookup] finds it. A full id is read from its file directly,
// without the index.
func Find(ctx context.Context, cfg Config, id string) (*report.Enriched, error) {
	if id != "" {
		if er, err := load(cfg.Dir, id); err == nil {
			return er, nil
		}
	}
	r, err := Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	e, err := r.Lookup(id)
	if err != nil {
		return nil, err
	}
	return r.Load(e)
}

// match is Match with f's fields already escaped.
func (f Filter) match(e Entry) bool {
	if !f.Since.IsZero() && e.Time.Before(f.Since) {
		return false
	}
	if f.Namespace != "" && e.Namespace != f.Namespace {
		return false
	}
	if f.Pod != "" && e.Pod != f.Pod && e.PodUID != f.Pod {
		return false
	}
	if f.Node != "" && e.Node != f.Node {
		return false
	}
	return true
}

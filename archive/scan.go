package archive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/oomscope/oomscope/internal/atomicfile"
	"github.com/oomscope/oomscope/report"
)

// reportDir is a directory of reports at the archive's root.
type reportDir struct {
	name  string
	mtime time.Time
}

// reportDirs lists the report directories at the archive's root.
func reportDirs(dir string) ([]reportDir, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("archive: reading %s: %w", dir, err)
	}
	var out []reportDir
	for _, e := range ents {
		if !e.IsDir() || !isReportDir(e.Name()) {
			continue
		}
		st, err := os.Stat(filepath.Join(dir, e.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed since (retention)
		}
		if err != nil {
			return nil, fmt.Errorf("archive: %w", err)
		}
		out = append(out, reportDir{e.Name(), st.ModTime()})
	}
	return out, nil
}

// reportFiles lists the report files of one report directory as paths
// relative to the archive's root.
func reportFiles(dir, name string) ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("archive: reading %s: %w", filepath.Join(dir, name), err)
	}
	var out []string
	for _, e := range ents {
		if e.Type().IsRegular() && isReportFile(e.Name()) {
			out = append(out, name+"/"+e.Name())
		}
	}
	return out, nil
}

// allReportFiles lists every report file of the archive.
func allReportFiles(ctx context.Context, dir string) ([]string, error) {
	dirs, err := reportDirs(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, d := range dirs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		files, err := reportFiles(dir, d.name)
		if err != nil {
			return nil, err
		}
		out = append(out, files...)
	}
	return out, nil
}

// errMisplaced tells that a file holds a report that belongs elsewhere.
var errMisplaced = errors.New("the report in it belongs at another path")

// readReport reads and decodes the report file at rel.
func readReport(dir, rel string) (*report.Enriched, fs.FileInfo, error) {
	p := filepath.Join(dir, filepath.FromSlash(rel))
	f, err := os.Open(p)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	var er report.Enriched
	if err := json.NewDecoder(f).Decode(&er); err != nil {
		return nil, nil, fmt.Errorf("%s: not a report: %w", p, err)
	}
	if er.Report == nil || er.Schema != report.Schema {
		return nil, nil, fmt.Errorf("%s: not an oomscope report (schema %q)", p, er.Schema)
	}
	return &er, st, nil
}

// loadEntry reads the report file at rel and returns its index entry.
func loadEntry(dir, rel string) (Entry, error) {
	er, st, err := readReport(dir, rel)
	if err != nil {
		return Entry{}, err
	}
	if RelPath(er.ID) != rel {
		return Entry{}, fmt.Errorf("%s holds report %q: %w (%s)", rel, er.ID, errMisplaced, RelPath(er.ID))
	}
	return EntryFor(er, st.Size(), st.ModTime()), nil
}

// removeTemps removes the temporary files of crashed writes at the root and
// in every report directory: atomicfile's (".oomscope-tmp-*"), and in report
// directories those of oomscope versions before it (".tmp-<digits>", the
// names os.CreateTemp made from ".tmp-*"). Nothing else is touched. The
// caller holds the writer lock: no write can be under way.
func removeTemps(dir string) ([]string, error) {
	removed, err := atomicfile.RemoveTemps(dir)
	if err != nil {
		return removed, fmt.Errorf("archive: %w", err)
	}
	dirs, err := reportDirs(dir)
	if err != nil {
		return removed, err
	}
	var errs []error
	for _, d := range dirs {
		sub := filepath.Join(dir, d.name)
		r, err := atomicfile.RemoveTemps(sub)
		for _, n := range r {
			removed = append(removed, d.name+"/"+n)
		}
		if err != nil {
			errs = append(errs, err)
		}
		ents, err := os.ReadDir(sub)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, e := range ents {
			if n := e.Name(); e.Type().IsRegular() && isLegacyTemp(n) {
				if err := os.Remove(filepath.Join(sub, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
					errs = append(errs, err)
					continue
				}
				removed = append(removed, d.name+"/"+n)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return removed, fmt.Errorf("archive: %w", err)
	}
	return removed, nil
}

// sortEntries sorts entries by time, then id.
func sortEntries(entries []Entry) {
	slices.SortFunc(entries, func(a, b Entry) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
}

// isLegacyTemp tells whether name is a temporary file of the archive
// before atomicfile.TempPrefix: ".tmp-" and decimal digits.
func isLegacyTemp(name string) bool {
	rest, ok := strings.CutPrefix(name, ".tmp-")
	return ok && isDigits(rest)
}

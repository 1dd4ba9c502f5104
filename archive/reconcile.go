package archive

import (
	"context"
	"fmt"
	"strings"
)

// reconciled is an index brought in line with the report files on disk.
type reconciled struct {
	entries []Entry
	// added counts report files that had no index line, dropped index
	// lines whose file is gone.
	added, dropped int
	// skipped are the files that are not readable reports, one error each.
	skipped []error
	// rewrite is true when the index file differs from entries.
	rewrite bool
}

// reconcile compares the index with every report file on disk: index lines
// whose file is gone are dropped, files without a line are read and added
// (in time order, after the others). With reread every file is read again
// and the index rebuilt from the files alone, in time order (keeping the
// archiving time the old index knew). The caller holds the writer lock.
func reconcile(ctx context.Context, dir string, ix index, files []string, reread bool) (reconciled, error) {
	var rc reconciled
	onDisk := make(map[string]struct{}, len(files))
	for _, f := range files {
		onDisk[f] = struct{}{}
	}
	indexed := make(map[string]int, len(ix.entries)) // file -> position in ix.entries
	if !reread {
		rc.entries = make([]Entry, 0, len(ix.entries))
	}
	for i, e := range ix.entries {
		if _, ok := onDisk[e.File]; !ok {
			rc.dropped++
			continue
		}
		indexed[e.File] = i
		if !reread {
			rc.entries = append(rc.entries, e)
		}
	}
	var added []Entry
	for i, f := range files {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return rc, err
			}
		}
		pos, known := indexed[f]
		if known && !reread {
			continue
		}
		e, err := loadEntry(dir, f)
		if err != nil {
			rc.skipped = append(rc.skipped, err)
			continue
		}
		if known {
			e.Archived = ix.entries[pos].Archived
		} else {
			rc.added++
		}
		added = append(added, e)
	}
	sortEntries(added)
	if reread {
		rc.entries = added
	} else {
		rc.entries = append(rc.entries, added...)
	}
	rc.rewrite = reread || !ix.exists || ix.damaged > 0 || ix.dups > 0 || rc.dropped > 0 || rc.added > 0
	return rc, nil
}

// unindexed returns the entries of report files in the directories that
// changed since the index was last written (every directory when the index
// is missing or damaged) and have no index line: reports written by a
// writer that has not indexed them yet, or that crashed before it could.
// It changes nothing on disk.
func unindexed(ctx context.Context, dir string, ix index) ([]Entry, error) {
	dirs, err := reportDirs(dir)
	if err != nil {
		return nil, err
	}
	all := !ix.exists || ix.damaged > 0
	var behind []string
	for _, d := range dirs {
		// >=: a rename and the index append after it can fall in the
		// same tick of the file system's clock.
		if all || !d.mtime.Before(ix.mtime) {
			behind = append(behind, d.name)
		}
	}
	if len(behind) == 0 {
		return nil, nil
	}
	var out []Entry
	for _, name := range behind {
		files, _, err := reportFiles(dir, name, false)
		if err != nil {
			return nil, err
		}
		// The index entries of this directory only: a boot's directory
		// holds a fraction of the reports.
		indexed := make(map[string]struct{}, len(files))
		prefix := name + "/"
		for _, e := range ix.entries {
			if strings.HasPrefix(e.File, prefix) {
				indexed[e.File] = struct{}{}
			}
		}
		for _, f := range files {
			if _, ok := indexed[f]; ok {
				continue
			}
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			e, err := loadEntry(dir, f)
			if err != nil {
				continue // removed meanwhile, or not a report: nothing to list
			}
			out = append(out, e)
		}
	}
	return out, nil
}

// describeSkipped summarises files that are not readable reports.
func describeSkipped(errs []error) string {
	if len(errs) == 0 {
		return ""
	}
	s := errs[0].Error()
	if len(errs) > 1 {
		s += fmt.Sprintf(" (and %d more)", len(errs)-1)
	}
	return s
}

package sink

import (
	"context"
	"errors"
	"fmt"

	"github.com/oomscope/oomscope/archive"
	"github.com/oomscope/oomscope/report"
)

// Archive is the sink of the local post-mortem archive (package
// [archive]): one pretty-printed JSON file per report, raw kernel lines
// included, at <dir>/<boot id>/<seq>.json for a report read from the
// kernel log (id "<boot id>/<seq>") or <dir>/files/sha256-<hex>.json for
// any other; an index of one line per report for `oomscope archive`; and
// retention by age and size. The path depends on the id alone, so the same
// report is never stored twice. A report file is written to a temporary
// name, synced and renamed, and indexed after that, so a crash never leaves
// a half-written report behind; the temporary files of a crash are removed
// when the archive is next opened.
type Archive struct {
	w *archive.Writer
}

// NewArchive returns the archive sink rooted at dir, creating it when
// needed, with the default retention ([archive.DefaultConfig]: 30 days,
// 1 GiB) and no logger or metrics. It is OpenArchive with that
// configuration.
func NewArchive(dir string) (*Archive, error) {
	if dir == "" {
		return nil, errors.New("sink: archive directory is empty")
	}
	return OpenArchive(context.Background(), archive.DefaultConfig(dir))
}

// OpenArchive opens the archive of cfg for writing (see
// [archive.OpenWriter]: it takes the archive's writer lock, repairs what a
// crash left, enforces retention) and returns its sink. Close releases it.
func OpenArchive(ctx context.Context, cfg archive.Config) (*Archive, error) {
	w, err := archive.OpenWriter(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("sink: archive: %w", err)
	}
	return &Archive{w: w}, nil
}

// Name implements [Sink].
func (a *Archive) Name() string { return "archive" }

// Path returns where the archive keeps r.
func (a *Archive) Path(r *report.Enriched) string {
	id := ""
	if r.Report != nil {
		id = r.ID
	}
	return archive.Path(a.w.Dir(), id)
}

// FileName turns a report id into a safe file name: "/" and ":" become "-",
// anything outside [A-Za-z0-9._-] becomes "_". It is [archive.FileName].
func FileName(id string) string { return archive.FileName(id) }

// Publish implements [Sink]. A report already in the archive is left as
// is. When Publish returns nil the report file and its index line are on
// disk, synced.
func (a *Archive) Publish(ctx context.Context, d Delivery) error {
	r := d.Report
	if r == nil || r.Report == nil {
		return errors.New("sink: nil report")
	}
	if _, err := a.w.PutJSON(ctx, r, d.Body); err != nil {
		return fmt.Errorf("sink: %w", err)
	}
	return nil
}

// Writer returns the archive's writer (for Enforce, Len, Bytes).
func (a *Archive) Writer() *archive.Writer { return a.w }

// Close releases the archive (its index file and writer lock).
func (a *Archive) Close() error { return a.w.Close() }

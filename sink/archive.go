package sink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/oomscope/oomscope/internal/atomicfile"
	"github.com/oomscope/oomscope/report"
)

// Archive is the local post-mortem archive: one pretty-printed JSON file per
// report, raw kernel lines included. A report read from the kernel log
// (id "<boot id>/<seq>") is kept at <dir>/<boot id>/<seq>.json, one folder
// per boot; any other (id "sha256:<hex>", from a file) at
// <dir>/files/sha256-<hex>.json. The path depends on the id alone, so the
// same report is never stored twice. Files are written to a temporary name,
// synced and renamed, so a crash never leaves a half-written report behind.
type Archive struct {
	dir string
}

// NewArchive returns an archive rooted at dir, creating it when needed.
func NewArchive(dir string) (*Archive, error) {
	if dir == "" {
		return nil, errors.New("sink: archive directory is empty")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("sink: creating archive directory: %w", err)
	}
	return &Archive{dir: dir}, nil
}

// Name implements [Sink].
func (a *Archive) Name() string { return "archive" }

// Path returns where the archive keeps r.
func (a *Archive) Path(r *report.Enriched) string {
	id := ""
	if r.Report != nil {
		id = r.ID
	}
	if boot, seq, ok := strings.Cut(id, "/"); ok && isBootID(boot) && isDigits(seq) {
		return filepath.Join(a.dir, boot, seq+".json")
	}
	return filepath.Join(a.dir, "files", FileName(id)+".json")
}

func isBootID(s string) bool {
	return s != "" && strings.Trim(s, "0123456789abcdefABCDEF-") == ""
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// FileName turns a report id into a safe file name: "/" and ":" become "-",
// anything outside [A-Za-z0-9._-] becomes "_".
func FileName(id string) string {
	if id == "" {
		return "no-id"
	}
	return strings.Map(func(c rune) rune {
		switch {
		case c == '/' || c == ':':
			return '-'
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
			return c
		}
		return '_'
	}, id)
}

// Publish implements [Sink]. A report already in the archive is left as is.
func (a *Archive) Publish(_ context.Context, d Delivery) error {
	r := d.Report
	if r == nil || r.Report == nil {
		return errors.New("sink: nil report")
	}
	path := a.Path(r)
	if _, err := os.Stat(path); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("sink: archive: %w", err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("sink: archive: encoding report %s: %w", r.ID, err)
	}
	if err := atomicfile.WriteFile(path, append(b, '\n')); err != nil {
		return fmt.Errorf("sink: archive: %w", err)
	}
	return nil
}

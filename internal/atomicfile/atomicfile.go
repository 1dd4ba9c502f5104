// Package atomicfile writes files so that a crash leaves either the old
// content or the new, never a mix: through a synced temporary file in the
// same directory, a rename, and a sync of the directory.
//
// A process killed in the middle of [WriteFile] leaves its temporary file
// behind. Temporary names begin with [TempPrefix], so whoever owns the
// directory can recognise them ([IsTemp]) and remove them when no writer
// can be running ([RemoveTemps]).
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// TempPrefix begins the name of every temporary file [WriteFile] creates:
// ".oomscope-tmp-<target name>-<random digits>".
const TempPrefix = ".oomscope-tmp-"

// IsTemp tells whether name (a base name) is a temporary file of
// [WriteFile].
func IsTemp(name string) bool {
	return strings.HasPrefix(name, TempPrefix) && len(name) > len(TempPrefix)
}

// WriteFile writes b to path atomically, creating the directory when needed.
func WriteFile(path string, b []byte) error {
	d, err := OpenDir(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.WriteFile(filepath.Base(path), b)
}

// Dir is an open directory that files are written into atomically: a
// writer of many files into one directory keeps it open, and each
// [Dir.WriteFile] syncs it through the descriptor it holds instead of
// opening it again.
type Dir struct {
	path string
	f    *os.File
}

// OpenDir opens the directory at path, creating it when needed.
func OpenDir(path string) (*Dir, error) {
	if err := os.MkdirAll(path, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", path, err)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening directory %s: %w", path, err)
	}
	return &Dir{path: path, f: f}, nil
}

// Path is the directory's path.
func (d *Dir) Path() string { return d.path }

// WriteFile writes b atomically to the file name in d: a temporary file,
// fsync, rename, fsync of the directory.
func (d *Dir) WriteFile(name string, b []byte) error {
	path := filepath.Join(d.path, name)
	f, err := os.CreateTemp(d.path, TempPrefix+strings.ReplaceAll(name, "*", "_")+"-*")
	if err != nil {
		return fmt.Errorf("creating a temporary file for %s: %w", path, err)
	}
	tmp := f.Name()
	renamed := false
	defer func() {
		if !renamed {
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("syncing %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("renaming %s: %w", tmp, err)
	}
	renamed = true
	if err := d.f.Sync(); err != nil && !errors.Is(err, fs.ErrInvalid) {
		return fmt.Errorf("syncing directory %s: %w", d.path, err)
	}
	return nil
}

// Close closes the directory.
func (d *Dir) Close() error { return d.f.Close() }

// SyncDir fsyncs the directory dir, making the creation, renaming and
// removal of its entries durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("opening directory %s: %w", dir, err)
	}
	err = d.Sync()
	d.Close()
	if err != nil && !errors.Is(err, fs.ErrInvalid) {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}

// RemoveTemps removes the temporary files of [WriteFile] directly in dir
// (not below it) and returns their names. Only call it when no WriteFile
// into dir can be running, in this process or another: it cannot tell a
// crashed writer's file from a live one's. Files of any other name are left
// alone. A directory that does not exist holds none.
func RemoveTemps(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading directory %s: %w", dir, err)
	}
	var removed []string
	var errs []error
	for _, e := range ents {
		if !IsTemp(e.Name()) || !e.Type().IsRegular() {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("removing %s: %w", filepath.Join(dir, e.Name()), err))
			continue
		}
		removed = append(removed, e.Name())
	}
	if len(removed) > 0 {
		if err := SyncDir(dir); err != nil {
			errs = append(errs, err)
		}
	}
	return removed, errors.Join(errs...)
}

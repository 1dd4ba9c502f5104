package archive

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/oomscope/oomscope/internal/atomicfile"
)

// index is the content of index.jsonl.
type index struct {
	// entries holds one entry per id, in the order of the file (a later
	// line for the same id replaces the earlier one in its place).
	entries []Entry
	// exists is false when there is no index file.
	exists bool
	// mtime is the index file's modification time, read before its content.
	mtime time.Time
	// damaged counts lines that are not a valid entry, a cut last line
	// included; dups counts lines of an id seen before.
	damaged, dups int
}

// readIndex reads the index file at path.
func readIndex(path string) (index, error) {
	var ix index
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return ix, nil
	}
	if err != nil {
		return ix, fmt.Errorf("archive: index: %w", err)
	}
	ix.exists, ix.mtime = true, st.ModTime()
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) { // replaced since the stat: read it again
		return readIndex(path)
	}
	if err != nil {
		return ix, fmt.Errorf("archive: reading index: %w", err)
	}
	ix.entries, ix.damaged, ix.dups = parseIndex(b)
	return ix, nil
}

// parseIndex decodes index lines. Lines are decoded in parallel: the index
// of a large archive is tens of megabytes of JSON.
func parseIndex(b []byte) (entries []Entry, damaged, dups int) {
	if n := len(b); n > 0 && b[n-1] != '\n' {
		// The last line was being written (or was cut by a crash).
		cut := bytes.LastIndexByte(b, '\n') + 1
		b = b[:cut]
		damaged++
	}
	lines := bytes.Count(b, []byte{'\n'})
	all := make([]Entry, lines)
	state := make([]lineState, lines)
	workers := min(runtime.GOMAXPROCS(0), 8, 1+lines/4096)
	// Split at line boundaries into one chunk per worker.
	type chunk struct {
		b     []byte
		first int
	}
	chunks := make([]chunk, 0, workers)
	for rest, first := b, 0; len(rest) > 0; {
		end := len(rest)
		if left := workers - len(chunks); left > 1 {
			end = len(rest) / left
			if i := bytes.IndexByte(rest[end:], '\n'); i >= 0 {
				end += i + 1
			} else {
				end = len(rest)
			}
		}
		chunks = append(chunks, chunk{rest[:end], first})
		first += bytes.Count(rest[:end], []byte{'\n'})
		rest = rest[end:]
	}
	var wg sync.WaitGroup
	for _, c := range chunks {
		wg.Go(func() {
			var in interner
			i := c.first
			for line := range bytes.Lines(c.b) {
				state[i] = decodeLine(line, &all[i], &in)
				i++
			}
		})
	}
	wg.Wait()
	pos := make(map[string]int, lines)
	entries = all[:0]
	for i := range all {
		switch state[i] {
		case lineBlank:
			continue
		case lineDamaged:
			damaged++
			continue
		}
		e := all[i]
		if p, seen := pos[e.ID]; seen {
			entries[p] = e
			dups++
			continue
		}
		pos[e.ID] = len(entries)
		entries = append(entries, e)
	}
	return entries, damaged, dups
}

type lineState uint8

const (
	lineOK lineState = iota
	lineBlank
	lineDamaged
)

// decodeLine decodes one index line into e. A line is valid when it
// decodes, has an id, and its file is where that id is kept: an index
// cannot send a reader to a file outside the archive.
func decodeLine(line []byte, e *Entry, in *interner) lineState {
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return lineBlank
	}
	if !decodeFast(line, e, in) {
		*e = Entry{}
		if err := json.Unmarshal(line, e); err != nil {
			*e = Entry{}
			return lineDamaged
		}
	}
	if e.ID == "" || !isRelPathOf(e.File, e.ID) {
		*e = Entry{}
		return lineDamaged
	}
	return lineOK
}

// encodeLine returns e as an index line, newline included.
func encodeLine(e Entry) ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("archive: encoding index entry %s: %w", e.ID, err)
	}
	return append(b, '\n'), nil
}

// writeIndex replaces the index file at path with entries, atomically.
func writeIndex(path string, entries []Entry) error {
	var buf bytes.Buffer
	buf.Grow(len(entries) * 400)
	for _, e := range entries {
		b, err := encodeLine(e)
		if err != nil {
			return err
		}
		buf.Write(b)
	}
	if err := atomicfile.WriteFile(path, buf.Bytes()); err != nil {
		return fmt.Errorf("archive: writing index: %w", err)
	}
	return nil
}

package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/oomscope/oomscope/internal/atomicfile"
)

// Checkpoint is where the daemon stopped: every report that began at or
// before Seq in boot BootID has been published. On restart in the same boot
// the daemon resumes reading after Seq; in a new boot it reads the whole
// ring buffer of the new boot.
type Checkpoint struct {
	BootID string `json:"boot_id"`
	Seq    uint64 `json:"seq"`
	// Published counts reports published in this boot (for operators).
	Published uint64 `json:"published"`
	// Lost counts kernel records lost to ring-buffer overruns in this boot.
	Lost uint64 `json:"lost"`
	// After lists the ids of reports published that began after Seq: a
	// report can end while the next one is still open, and the checkpoint
	// cannot move past the open one. After a restart these are parsed
	// again and are not published a second time. Cleared when Seq moves
	// (the parser is idle then, so every published report is before it).
	After []string `json:"after,omitempty"`
}

// maxAfter bounds Checkpoint.After: reports completed while one stays open.
const maxAfter = 1024

// published reports whether id is in After.
func (c *Checkpoint) published(id string) bool {
	for _, a := range c.After {
		if a == id {
			return true
		}
	}
	return false
}

// LoadCheckpoint reads the checkpoint at path. A missing file is not an
// error: it returns ok false.
func LoadCheckpoint(path string) (c Checkpoint, ok bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Checkpoint{}, false, nil
	}
	if err != nil {
		return Checkpoint{}, false, fmt.Errorf("daemon: reading checkpoint: %w", err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return Checkpoint{}, false, fmt.Errorf("daemon: checkpoint %s is corrupt: %w", path, err)
	}
	return c, c.BootID != "", nil
}

// Save writes the checkpoint to path atomically (temporary file, fsync,
// rename).
func (c Checkpoint) Save(path string) error {
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("daemon: encoding checkpoint: %w", err)
	}
	if err := atomicfile.WriteFile(path, append(b, '\n')); err != nil {
		return fmt.Errorf("daemon: saving checkpoint: %w", err)
	}
	return nil
}

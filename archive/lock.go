package archive

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ErrLocked is returned when another process holds the archive's writer
// lock: a writer (the daemon, `archive reindex`) or, briefly, a reader
// rebuilding a missing index.
var ErrLocked = errors.New("archive: another process holds the archive")

// lockDir takes the archive's writer lock without waiting: an exclusive
// flock on LockFile, released by unlock or when the process ends, however
// it ends. The lock belongs to the open file, so a second lock in the same
// process fails too. The holder writes who it is into the file, for the
// error message of the next one.
func lockDir(dir, role string) (*os.File, error) {
	p := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("archive: opening lock file: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		holder := make([]byte, 128)
		n, _ := f.ReadAt(holder, 0)
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			h := strings.TrimSpace(string(holder[:n]))
			if h == "" {
				h = "another process"
			}
			return nil, fmt.Errorf("%w (%s is locked by %s)", ErrLocked, p, Escape(h, 80))
		}
		return nil, fmt.Errorf("archive: locking %s: %w", p, err)
	}
	if f.Truncate(0) == nil {
		_, _ = fmt.Fprintf(f, "%s, pid %d\n", role, os.Getpid())
	}
	return f, nil
}

// lockDirWait is lockDir retried while another process holds the lock, for
// at most wait (and while ctx lasts).
func lockDirWait(ctx context.Context, dir, role string, wait time.Duration) (*os.File, error) {
	deadline := time.Now().Add(wait)
	for {
		f, err := lockDir(dir, role)
		if err == nil || !errors.Is(err, ErrLocked) || !time.Now().Before(deadline) {
			return f, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %w", err, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// unlock releases a lock taken by lockDir.
func unlock(f *os.File) error {
	if f == nil {
		return nil
	}
	return f.Close() // closing the last descriptor releases the flock
}

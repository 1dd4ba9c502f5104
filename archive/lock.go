package archive

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// ErrLocked is returned when another writer holds the archive.
var ErrLocked = errors.New("archive: another process is writing the archive")

// lockDir takes the archive's writer lock without waiting: an exclusive
// flock on LockFile, released by unlock or when the process ends, however
// it ends. The lock belongs to the open file, so a second lock in the same
// process fails too.
func lockDir(dir string) (*os.File, error) {
	p := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("archive: opening lock file: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (%s is locked)", ErrLocked, p)
		}
		return nil, fmt.Errorf("archive: locking %s: %w", p, err)
	}
	return f, nil
}

// unlock releases a lock taken by lockDir.
func unlock(f *os.File) error {
	if f == nil {
		return nil
	}
	return f.Close() // closing the last descriptor releases the flock
}

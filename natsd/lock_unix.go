//go:build unix

package natsd

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockName is the lock file in a store directory.
const lockName = "oomscope-natsd.lock"

// lockDir takes an exclusive lock on dir for this process, failing at once
// when another holds it.
func lockDir(dir string) (func(), error) {
	path := filepath.Join(dir, lockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("natsd: store lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("natsd: store directory %s is in use by another server: %w", dir, err)
	}
	return func() { f.Close() }, nil
}

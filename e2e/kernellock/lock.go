// Package kernellock serialises the tests that put OOM reports into this
// machine's kernel log — real kills (e2e/live) or injected records
// (daemon) — across test binaries. `go test ./...` runs packages in
// parallel; two such tests at once would interleave their reports in the
// one ring buffer and each would see the other's lines inside its own.
package kernellock

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Path is the lock file, shared by every test binary of the module.
var Path = filepath.Join(os.TempDir(), "oomscope-kernel-log.lock")

// Acquire blocks until tb holds the machine-wide kernel-log lock and
// releases it when tb ends.
func Acquire(tb testing.TB) {
	tb.Helper()
	f, err := os.OpenFile(Path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		tb.Fatalf("kernellock: %v", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		tb.Fatalf("kernellock: locking %s: %v", Path, err)
	}
	fmt.Fprintf(f, "%d\n", os.Getpid())
	tb.Cleanup(func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	})
}

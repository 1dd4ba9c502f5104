package outbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A full disk makes Put fail with the error (ENOSPC, wrapped) and nothing
// else: what was acknowledged stays, the store stays consistent, and once
// space returns the same outbox takes Puts again and delivers everything.
// On a real 1 MiB tmpfs mounted for the test.
func TestDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	mnt := filepath.Join(t.TempDir(), "small")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mount -t tmpfs -o size=1m tmpfs %s: %v", mnt, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(mnt, 0); err != nil {
			t.Errorf("umount %s: %v", mnt, err)
		}
	})
	path := filepath.Join(mnt, "outbox.db")
	logs := &logBuf{}
	o := openAt(t, path, fastRetry(Config{Logger: logs.logger()})) // closed before the unmount
	body := []byte(strings.Repeat("z", 8<<10))
	var acked []string
	for i := range 5 {
		id := fmt.Sprintf("before-%d", i)
		put(t, o, id, string(body))
		acked = append(acked, id)
	}

	// Fill the rest of the tmpfs.
	filler := filepath.Join(mnt, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the tmpfs: %v", err)
			}
			break
		}
	}
	f.Close()

	// Puts go on while bbolt finds free pages in the file, then fail.
	var putErr error
	failed := ""
	for i := range 200 {
		id := fmt.Sprintf("full-%d", i)
		added, err := o.Put(id, body)
		if err != nil {
			putErr, failed = err, id
			break
		}
		if !added {
			t.Fatalf("Put(%s) not added", id)
		}
		acked = append(acked, id)
	}
	if putErr == nil {
		t.Fatal("200 Puts of 8 KiB succeeded on a full 1 MiB tmpfs")
	}
	t.Logf("Put on a full disk after %d more: %v", len(acked)-5, putErr)
	if !errors.Is(putErr, syscall.ENOSPC) {
		t.Errorf("Put error %v does not wrap ENOSPC", putErr)
	}
	if _, err := o.Put(failed, body); err == nil {
		t.Error("Put succeeded again on the still full disk")
	}
	// Use up the free pages left in the file with small Puts, so that the
	// cursor commits below find none either.
	for i := range 1000 {
		id := fmt.Sprintf("small-%d", i)
		if _, err := o.Put(id, []byte("{}")); err != nil {
			break
		}
		acked = append(acked, id)
	}
	if got := heldIDs(t, o); !slices.Equal(got, acked) {
		t.Fatalf("on the full disk, held %v, want %v", got, acked)
	}

	// Deliveries go on while the disk is full (committing the cursor may
	// fail meanwhile: Run retries it).
	s := newRec("archive")
	stop := startRun(t, o, s)
	waitFor(t, 10*time.Second, "the deliveries on the full disk", func() bool { return s.count() == len(acked) })

	// Space returns: the same outbox takes Puts again, the failed id first
	// (it was not added), and delivers everything once, in order.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{failed, "after-1", "after-2"} {
		put(t, o, id, string(body))
		acked = append(acked, id)
	}
	drain(t, o)
	stop()
	t.Logf("cursor commits that failed on the full disk and were retried: %d", len(logs.lines(t, "error")))
	if got := s.ids(); !slices.Equal(got, acked) {
		t.Errorf("delivered %v, want %v", got, acked)
	}
	if got := heldIDs(t, o); len(got) != 0 {
		t.Errorf("held after delivery: %v", got)
	}
}

package counterattr

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/oomscope/oomscope/e2e/kernellock"
)

// TestKernelLogWait checks KernelLog against the real /dev/kmsg (root):
// Wait returns by its bound when nothing is written, returns early when a
// record is written while it waits, and Read then returns that record.
func TestKernelLogWait(t *testing.T) {
	kernellock.Acquire(t)
	l, err := OpenKernelLog("/dev/kmsg")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	drain := func() string {
		var b strings.Builder
		recs, _, err := l.Read(nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			b.WriteString(r.Text + "\n")
		}
		return b.String()
	}
	drain()

	// Nothing of ours: Wait lasts about its bound (others may log; retry).
	var quiet time.Duration
	for range 5 {
		drain()
		began := time.Now()
		if err := l.Wait(50 * time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if quiet = time.Since(began); quiet >= 40*time.Millisecond {
			break
		}
	}
	if quiet < 40*time.Millisecond || quiet > 2*time.Second {
		t.Errorf("Wait(50ms) with nothing written returned after %v", quiet)
	}

	// A record written while it waits ends the wait early.
	tag := fmt.Sprintf("oomscope-test counterattr-wait %d-%d", os.Getpid(), time.Now().UnixNano())
	drain()
	go func() {
		time.Sleep(20 * time.Millisecond)
		f, err := os.OpenFile("/dev/kmsg", os.O_WRONLY, 0)
		if err != nil {
			return
		}
		fmt.Fprintf(f, "<6>%s\n", tag)
		f.Close()
	}()
	began := time.Now()
	got := ""
	for !strings.Contains(got, tag) && time.Since(began) < 5*time.Second {
		if err := l.Wait(5 * time.Second); err != nil {
			t.Fatal(err)
		}
		got += drain()
	}
	if !strings.Contains(got, tag) {
		t.Fatal("the record written while Wait waited was not read")
	}
	if d := time.Since(began); d > 2*time.Second {
		t.Errorf("Wait(5s) returned %v after the write, not at it", d)
	}
}

// TestKernelLogReadToEnd: one Read returns every record written before it,
// also more than one kmsg.Reader.Read takes at once.
func TestKernelLogReadToEnd(t *testing.T) {
	kernellock.Acquire(t)
	l, err := OpenKernelLog("/dev/kmsg")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, _, err := l.Read(nil); err != nil {
		t.Fatal(err)
	}
	tag := fmt.Sprintf("oomscope-test counterattr-read %d-%d", os.Getpid(), time.Now().UnixNano())
	const n = 600
	for i := range n {
		// One open per write: the kernel rate-limits each open file.
		f, err := os.OpenFile("/dev/kmsg", os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, err = fmt.Fprintf(f, "<6>%s %d\n", tag, i)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	recs, lost, err := l.Read(nil)
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for _, r := range recs {
		if strings.HasPrefix(r.Text, tag+" ") {
			got++
		}
	}
	if got != n && !lost {
		t.Fatalf("one Read returned %d of the %d records written before it", got, n)
	}
}

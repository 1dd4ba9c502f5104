package cgroupfs

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNodeKillsProcfs reads the real /proc/vmstat: the same counter as a
// fresh open, and a second pread(2) of the open descriptor shows the
// kernel's counters as they are then, not the first read's (pgfault rises
// when the test faults pages in between).
func TestNodeKillsProcfs(t *testing.T) {
	if _, err := os.Stat("/proc/vmstat"); err != nil {
		t.Skip("no /proc/vmstat")
	}
	n := NewNodeKills("/proc")
	defer n.Close()
	got, err := n.Read()
	if err != nil {
		t.Fatal(err)
	}
	want, err := nodeOOMKills("/proc")
	if err != nil {
		t.Fatal(err)
	}
	if got > want {
		t.Fatalf("NodeKills read %d, a fresh open then %d: the counter never falls", got, want)
	}
	pgfault := func() string {
		t.Helper()
		n.mu.Lock()
		defer n.mu.Unlock()
		b, err := n.read()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "pgfault ") {
				return l
			}
		}
		t.Fatalf("no pgfault in %q", b)
		return ""
	}
	first := pgfault()
	for i := 0; i < 100 && pgfault() == first; i++ {
		p := bytes.Repeat([]byte{1}, 4<<20) // fault fresh pages in
		_ = p[len(p)-1]
	}
	if pgfault() == first {
		t.Fatalf("pgfault stayed %q over 100 re-reads of the open descriptor with pages faulted in between: pread at 0 does not regenerate the file", first)
	}
}

func TestNodeKillsFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "vmstat")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	n := NewNodeKills(dir)
	defer n.Close()
	if _, err := n.Read(); err == nil {
		t.Fatal("no vmstat: no error")
	}
	write("pgfault 1\noom_kill 7\npgmajfault 2\n")
	if v, err := n.Read(); err != nil || v != 7 {
		t.Fatalf("got %d, %v; want 7", v, err)
	}
	// Rewritten in place (the descriptor stays open): the new value.
	write("pgfault 1\noom_kill 9\n")
	if v, err := n.Read(); err != nil || v != 9 {
		t.Fatalf("after rewrite: got %d, %v; want 9", v, err)
	}
	// Larger than the first buffer, the counter at the end, no newline.
	var b strings.Builder
	for i := range 2000 {
		fmt.Fprintf(&b, "counter_%d %d\n", i, i)
	}
	b.WriteString("oom_kill 12")
	write(b.String())
	if v, err := n.Read(); err != nil || v != 12 {
		t.Fatalf("large file: got %d, %v; want 12", v, err)
	}
	// A prefix of another key is not the counter; none: an error naming the file.
	write("oom_kill_other 3\n")
	if _, err := n.Read(); err == nil || !strings.Contains(err.Error(), "has no oom_kill") {
		t.Fatalf("no oom_kill line: %v", err)
	}
	write("oom_kill x\n")
	if _, err := n.Read(); err == nil {
		t.Fatal("oom_kill x: no error")
	}
}

// BenchmarkNodeKills is the node counter read at each kill of a storm:
// the open descriptor read again, against a fresh open, read and close.
func BenchmarkNodeKills(b *testing.B) {
	b.Run("pread", func(b *testing.B) {
		n := NewNodeKills("/proc")
		defer n.Close()
		for b.Loop() {
			if _, err := n.Read(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("open", func(b *testing.B) {
		for b.Loop() {
			if _, err := nodeOOMKills("/proc"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("open+parseKV", func(b *testing.B) {
		for b.Loop() {
			if _, err := readKVFile("/proc/vmstat"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

package sink

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/oomscope/oomscope/archive"
	"github.com/oomscope/oomscope/internal/atomicfile"
	"github.com/oomscope/oomscope/report"
)

func newTestArchive(t *testing.T, dir string) *Archive {
	t.Helper()
	a, err := NewArchive(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

func TestArchivePathsAndIdempotence(t *testing.T) {
	dir := t.TempDir()
	a := newTestArchive(t, dir)
	cases := []struct{ id, want string }{
		{"8f5b1c2d-3e4f-4071-8293-a4b5c6d7e8f9/423", "8f5b1c2d-3e4f-4071-8293-a4b5c6d7e8f9/423.json"},
		{"boot/7", "files/boot-7.json"},
		{"ab/../x", "files/ab-..-x.json"},
		{"sha256:00ff", "files/sha256-00ff.json"},
		{"../../etc/x", "files/_.-..-etc-x.json"},
		{"", "files/no-id.json"},
	}
	for _, c := range cases {
		r := testReport(c.id)
		if got := a.Path(r); got != filepath.Join(dir, c.want) {
			t.Errorf("Path(%q) = %s, want %s", c.id, got, c.want)
		}
		if !strings.HasPrefix(a.Path(r), dir+string(os.PathSeparator)) {
			t.Errorf("Path(%q) escapes the archive: %s", c.id, a.Path(r))
		}
		if name, ok := strings.CutPrefix(c.want, "files/"); ok && FileName(c.id)+".json" != name {
			t.Errorf("FileName(%q) = %s", c.id, FileName(c.id))
		}
	}
	ctx := context.Background()
	r := testReport("8f5b1c2d-3e4f-4071-8293-a4b5c6d7e8f9/7")
	if err := a.Publish(ctx, Delivery{Report: r}); err != nil {
		t.Fatal(err)
	}
	b1, err := os.ReadFile(a.Path(r))
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(b1, &back); err != nil {
		t.Fatal(err)
	}
	if back["id"] != "8f5b1c2d-3e4f-4071-8293-a4b5c6d7e8f9/7" || back["raw"] == nil {
		t.Errorf("archived report: id %v raw %v", back["id"], back["raw"])
	}
	// A second publish of the same id writes nothing.
	r2 := testReport("8f5b1c2d-3e4f-4071-8293-a4b5c6d7e8f9/7")
	r2.Victims[0].Comm = "changed"
	if err := a.Publish(ctx, Delivery{Report: r2}); err != nil {
		t.Fatal(err)
	}
	b2, _ := os.ReadFile(a.Path(r))
	if !bytes.Equal(b1, b2) {
		t.Error("publishing an archived id again rewrote the file")
	}
	if left := strays(t, dir); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	// Indexed: `oomscope archive list` sees it.
	rd, err := archive.Open(ctx, archive.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if rd.Len() != 1 || rd.Unindexed() != 0 {
		t.Errorf("index: %d reports, %d unindexed", rd.Len(), rd.Unindexed())
	}
}

func TestArchiveErrors(t *testing.T) {
	if _, err := NewArchive(""); err == nil {
		t.Error("NewArchive(\"\") succeeded")
	}
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o644)
	if _, err := NewArchive(filepath.Join(f, "sub")); err == nil {
		t.Error("NewArchive below a file succeeded")
	}
	dir := t.TempDir()
	a := newTestArchive(t, dir)
	if err := a.Publish(context.Background(), Delivery{Report: &report.Enriched{}}); err == nil {
		t.Error("publishing a nil report succeeded")
	}
	// One writer per archive: a second daemon on the same state directory
	// fails instead of interleaving writes.
	cfg := archive.DefaultConfig(dir)
	cfg.LockWait = 0
	if _, err := OpenArchive(context.Background(), cfg); !errors.Is(err, archive.ErrLocked) {
		t.Errorf("second archive on the same directory: %v", err)
	}
}

// strays lists the temporary files below dir.
func strays(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (atomicfile.IsTemp(d.Name()) || strings.HasPrefix(d.Name(), ".tmp-")) {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// Environment of the child process of TestArchiveSurvivesKill.
const (
	crashDirEnv   = "OOMSCOPE_TEST_ARCHIVE_CRASH_DIR"
	crashStartEnv = "OOMSCOPE_TEST_ARCHIVE_CRASH_START"
	crashAck      = "published "
)

// crashReport is report i of the crash test, about 50 KiB (500 raw lines).
func crashReport(i int) *report.Enriched {
	r := testReport(fmt.Sprintf("3c6e0b8a-0f1d-4e5a-9b7c-112233445566/%d", 1000+i))
	r.Raw = make([]string, 500)
	for j := range r.Raw {
		r.Raw[j] = fmt.Sprintf("6,%d,%d,-;report %d line %d: Tasks state (memory values in pages): %s", 1000+i+j, j, i, j, strings.Repeat("x", 40))
	}
	return r
}

// TestArchiveCrashChild is the child process of TestArchiveSurvivesKill:
// it publishes reports in a loop, printing each id once Publish returned,
// until it is killed.
func TestArchiveCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("the child process of TestArchiveSurvivesKill")
	}
	start, _ := strconv.Atoi(os.Getenv(crashStartEnv))
	a, err := NewArchive(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	for i := start; ; i++ {
		r := crashReport(i)
		if err := a.Publish(context.Background(), Delivery{Report: r, Queued: time.Now()}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		fmt.Fprintf(os.Stdout, "%s%s\n", crashAck, r.ID) // one write(2): unbuffered
	}
}

// TestArchiveSurvivesKill SIGKILLs a process that is publishing reports,
// at a random moment, several times over, and opens the archive after
// each kill as the restarted daemon would: it opens, every report whose
// Publish returned is there, whole and indexed, and no temporary file is
// left. Each run restarts a few reports before the last acknowledged one,
// as the outbox retries.
func TestArchiveSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	dir := t.TempDir()
	boot := filepath.Dir(archive.Path(dir, crashReport(0).ID))
	if err := os.MkdirAll(boot, 0o755); err != nil {
		t.Fatal(err)
	}
	acked := map[string]int{} // id -> report number
	next, withLeftovers := 0, 0
	// Even rounds kill at a random moment of a Publish; odd rounds the
	// moment a temporary file appears (inotify), between its creation and
	// its rename. At least 6 kills, more (up to 20) until one has left a
	// temporary file behind.
	for round := 0; round < 20 && (round < 6 || withLeftovers == 0); round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestArchiveCrashChild$")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashStartEnv+"="+strconv.Itoa(max(0, next-3)))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var armed atomic.Bool
		onTemp := round%2 == 1
		stop := func() {}
		if onTemp {
			stop = onTempFile(t, boot, func() {
				if armed.Load() {
					cmd.Process.Kill() // SIGKILL
				}
			})
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		killAfter := 3 + rand.IntN(4)
		sc := bufio.NewScanner(out)
		n := 0
		var first time.Time
		for sc.Scan() {
			id, ok := strings.CutPrefix(sc.Text(), crashAck)
			if !ok {
				continue
			}
			var seq int
			fmt.Sscanf(id[strings.LastIndexByte(id, '/')+1:], "%d", &seq)
			acked[id] = seq - 1000
			next = max(next, seq-1000+1)
			switch n++; {
			case n == 1:
				first = time.Now()
			case n == killAfter && onTemp:
				armed.Store(true) // killed in the next Publish's write
			case n == killAfter:
				// After a random fraction of the time one Publish takes.
				time.Sleep(rand.N(time.Since(first) / time.Duration(n-1)))
				cmd.Process.Kill() // SIGKILL
			}
		}
		err = cmd.Wait()
		stop()
		if n < killAfter {
			t.Fatalf("round %d: the child stopped after %d reports: %v\n%s", round, n, err, stderr.String())
		}
		left := strays(t, dir)
		if len(left) > 0 {
			withLeftovers++
		}
		// A reader (`oomscope archive list`) before the daemon restarts:
		// it sees every acknowledged report, indexed or not yet.
		rd, err := archive.Open(context.Background(), archive.Config{Dir: dir})
		if err != nil {
			t.Fatalf("round %d: reading after the kill: %v", round, err)
		}
		for id := range acked {
			if _, err := rd.Lookup(id); err != nil {
				t.Fatalf("round %d: reader after the kill: %v", round, err)
			}
		}
		t.Logf("round %d: killed after %d acknowledged reports; %d temporary files left by the kill; %d reports not indexed yet",
			round, n, len(left), rd.Unindexed())

		// Restart: the archive opens, repairs, and holds every report.
		a, err := NewArchive(dir)
		if err != nil {
			t.Fatalf("round %d: opening after the kill: %v", round, err)
		}
		if left := strays(t, dir); len(left) != 0 {
			t.Errorf("round %d: temporary files after open: %v", round, left)
		}
		rd, err = archive.Open(context.Background(), archive.Config{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		if rd.Unindexed() != 0 {
			t.Errorf("round %d: %d reports not indexed after the writer opened", round, rd.Unindexed())
		}
		for id, i := range acked {
			e, err := rd.Lookup(id)
			if err != nil {
				t.Fatalf("round %d: acknowledged report %s: %v", round, id, err)
			}
			er, err := rd.Load(e)
			if err != nil {
				t.Fatalf("round %d: acknowledged report %s: %v", round, id, err)
			}
			if want := crashReport(i); er.ID != id || !slices.Equal(er.Raw, want.Raw) {
				t.Fatalf("round %d: report %s is not intact", round, id)
			}
		}
		// Nothing but reports, the index and the lock.
		filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			if rel != archive.IndexFile && rel != archive.LockFile && !strings.HasSuffix(rel, ".json") {
				t.Errorf("round %d: stray file %s", round, rel)
			}
			return nil
		})
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d reports acknowledged; %d kills left temporary files", len(acked), withLeftovers)
	if withLeftovers == 0 {
		t.Error("no kill landed between creating a temporary file and renaming it: the test did not test that")
	}
}

// onTempFile calls f each time a temporary file of atomicfile is created
// in dir, until the returned stop is called.
func onTempFile(t *testing.T, dir string, f func()) (stop func()) {
	t.Helper()
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		t.Fatalf("inotify: %v", err)
	}
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_CREATE); err != nil {
		unix.Close(fd)
		t.Fatalf("inotify: %v", err)
	}
	file := os.NewFile(uintptr(fd), "inotify") // non-blocking: Close ends the Read
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64*1024)
		for {
			n, err := file.Read(buf)
			if err != nil {
				return
			}
			for off := 0; off+unix.SizeofInotifyEvent <= n; {
				ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
				name := strings.TrimRight(string(buf[off+unix.SizeofInotifyEvent:off+unix.SizeofInotifyEvent+int(ev.Len)]), "\x00")
				if atomicfile.IsTemp(name) {
					f()
				}
				off += unix.SizeofInotifyEvent + int(ev.Len)
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { file.Close(); <-done }) }
}

// TestArchiveReadWhileWriting reads the archive from this process while a
// child process publishes into it: every Open returns at once (the writer's
// lock does not block readers) and lists every report whose Publish had
// returned before it began, whole.
func TestArchiveReadWhileWriting(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestArchiveCrashChild$")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashStartEnv+"=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	sc := bufio.NewScanner(out)
	var acked []string
	var slowest time.Duration
	for len(acked) < 20 && sc.Scan() {
		id, ok := strings.CutPrefix(sc.Text(), crashAck)
		if !ok {
			continue
		}
		acked = append(acked, id)
		t0 := time.Now()
		rd, err := archive.Open(context.Background(), archive.Config{Dir: dir})
		if err != nil {
			t.Fatalf("Open while the child writes: %v", err)
		}
		slowest = max(slowest, time.Since(t0))
		for _, id := range acked {
			e, err := rd.Lookup(id)
			if err != nil {
				t.Fatalf("after %d reports: %v", len(acked), err)
			}
			if _, err := rd.Load(e); err != nil {
				t.Fatalf("after %d reports: %v", len(acked), err)
			}
		}
	}
	if len(acked) < 20 {
		t.Fatalf("the child stopped after %d reports: %s", len(acked), stderr.String())
	}
	t.Logf("20 reads while writing; slowest Open %v", slowest)
}

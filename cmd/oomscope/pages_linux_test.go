package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// rssFile is the RssFile line of /proc/self/status, in KiB.
func rssFile(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "RssFile:"); ok {
			n, err := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no RssFile in /proc/self/status")
	return 0
}

// Releasing the executable's read-only pages shrinks the resident set by
// most of the binary, and the program runs on (its code faults back in).
func TestReleaseExecutablePages(t *testing.T) {
	before := rssFile(t)
	advised, err := releaseExecutablePages()
	if err != nil {
		t.Fatal(err)
	}
	after := rssFile(t)
	t.Logf("advised %d KiB of mappings; RssFile %d KiB -> %d KiB", advised>>10, before, after)
	if advised == 0 {
		t.Fatal("no mapping of the executable was found")
	}
	if after >= before {
		t.Errorf("RssFile %d KiB after releasing, %d KiB before: nothing was released", after, before)
	}
	// Code and read-only data are back on use.
	if s := strconv.Itoa(12345) + strings.Repeat("x", 2); s != "12345xx" {
		t.Fatalf("got %q", s)
	}
}

// A position-independent build keeps relocated pointers in read-only
// pages (RELRO, copied on write by the loader): releasing those would map
// the unrelocated file pages back. Seen: a -buildmode=pie oomscope died
// with SIGSEGV at start-up. Such a build must run `run` to the end.
func TestReleaseExecutablePagesPIE(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "oomscope-pie")
	build := exec.Command("go", "build", "-buildmode=pie", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build -buildmode=pie: %v\n%s", err, out)
	}
	run := exec.Command(bin, "run", "--log-level", "debug", "--source", "../../testdata/live/host-6.18.44-cgroupv1-container-limit.kmsg",
		"--state-dir", t.TempDir(), "--nats-url", "none", "--kubeconfig", "none", "--stdout")
	var stdout, stderr strings.Builder
	run.Stdout, run.Stderr = &stdout, &stderr
	if err := run.Run(); err != nil {
		t.Fatalf("PIE oomscope run: %v\n%s", err, stderr.String())
	}
	if n := strings.Count(stdout.String(), "\n"); n != 1 {
		t.Errorf("PIE oomscope run printed %d reports, want 1", n)
	}
	if !strings.Contains(stderr.String(), "released the executable's pages") {
		t.Errorf("no page release logged:\n%s", stderr.String())
	}
}

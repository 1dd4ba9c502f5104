package main

import (
	"os"
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

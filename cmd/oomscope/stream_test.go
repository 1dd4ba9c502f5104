package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oomscope/oomscope/internal/syncbuf"
)

// syncBuffer is a bytes.Buffer safe for the goroutines under test and the test.
type syncBuffer = syncbuf.Buffer

// waitFor polls until cond holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, cond func() bool) bool {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return false
}

// TestParseStreams: on a live input (a pipe that stays open, as from
// "dmesg -w") each report is printed as soon as it is complete, not at the
// end of the input.
func TestParseStreams(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	cfg, err := parseArgs([]string{"-"}, "json", "auto", false, 100, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Quiet = 200 * time.Millisecond
	var out, errb syncBuffer
	done := make(chan error, 1)
	go func() { done <- runParse(context.Background(), pr, &out, &errb, cfg) }()
	if _, err := io.WriteString(pw, readFile(t, captureV2)); err != nil {
		t.Fatal(err)
	}
	if !waitFor(t, 5*time.Second, func() bool { return strings.Count(out.String(), "\n") == 1 }) {
		t.Fatalf("no report printed while the input stays open; output %q, stderr %q", out.String(), errb.String())
	}
	if r := jsonLines(t, out.String()); r[0]["victims"].([]any)[0].(map[string]any)["pid"] != json85 {
		t.Errorf("report %v", r[0]["victims"])
	}
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// json85 is the victim pid of captureV2 as decoded from JSON.
const json85 = float64(85)

// TestParseInterrupt: the end of the context (Ctrl-C, SIGTERM) stops parse
// at once, even while it waits for input.
func TestParseInterrupt(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	cfg, err := parseArgs([]string{"-"}, "json", "auto", false, 100, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runParse(ctx, pr, io.Discard, io.Discard, cfg) }()
	io.WriteString(pw, "[    1.000000] eth0: link up\n")
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, errInterrupted) {
			t.Errorf("err = %v, want %v", err, errInterrupted)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("parse did not stop when the context ended")
	}
}

// TestParseManyFiles: an input that cannot be read, or that is no kernel
// log, gets one message on stderr; the others are still parsed; the exit
// status says something failed.
func TestParseManyFiles(t *testing.T) {
	dir := t.TempDir()
	gz := filepath.Join(dir, "kern.log.gz")
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(readFile(t, captureV2)))
	zw.Close()
	golden := filepath.Join(dir, "case.golden.json")
	for name, data := range map[string][]byte{gz: b.Bytes(), golden: []byte("[\n  {\n    \"schema\": \"oomscope.report/v1\"\n  }\n]\n")} {
		if err := os.WriteFile(name, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	missing := filepath.Join(dir, "nope.log")
	code, out, errs := run(t, "", "parse", capturePod, dir, gz, golden, missing, captureV2)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if n := len(jsonLines(t, out)); n != 4 {
		t.Errorf("%d reports, want the 3 + 1 of the two logs", n)
	}
	for _, want := range []string{"cannot read " + dir + ": is a directory", gz + ": gzip-compressed", golden + ": a JSON document", "cannot read " + missing + ": no such file or directory\n", "4 of 6 inputs could not be parsed"} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr does not say %q:\n%s", want, errs)
		}
	}
	if n := strings.Count(errs, "\n"); n != 5 {
		t.Errorf("%d lines on stderr, want one per failed input and the summary:\n%s", n, errs)
	}
}

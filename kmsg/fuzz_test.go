package kmsg

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fuzzSeeds returns seed inputs from the sample files in testdata/: the
// first lines of each file as one input, and a few single lines.
func fuzzSeeds(t testing.TB) (files [][]byte, lines []string) {
	paths, err := filepath.Glob(filepath.Join("testdata", "*.*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 4096 {
			if i := bytes.LastIndexByte(b[:4096], '\n'); i > 0 {
				b = b[:i+1]
			}
		}
		files = append(files, b)
		ls := strings.Split(string(b), "\n")
		for i := 0; i < len(ls) && i < 40; i += 7 {
			lines = append(lines, ls[i])
		}
	}
	return files, lines
}

// FuzzScanner feeds arbitrary input to a Scanner, detecting or forced to a
// format, with a small or the default line limit. It must not panic, must
// end, and what it returns must be bounded by the input.
func FuzzScanner(f *testing.F) {
	files, _ := fuzzSeeds(f)
	for i, b := range files {
		f.Add(b, uint8(0), uint16(i%3*40))
	}
	f.Add([]byte("6,1,10,-;a\\x0ab\r\n SUBSYSTEM=x\n\x00\xff\n"), uint8(1), uint16(0))
	f.Add([]byte("Dec 31 23:59:59 h kernel: a\nJan  1 00:00:01 h kernel: b\n"), uint8(0), uint16(0))
	f.Add([]byte("[    1.000000] a\n               b\n"), uint8(2), uint16(20))
	f.Fuzz(func(t *testing.T, in []byte, format uint8, maxLine uint16) {
		opts := []ScanOption{WithLocation(time.UTC), WithReference(time.Date(2025, 1, 2, 0, 0, 0, 0, time.UTC))}
		opts = append(opts, WithFormat(Format(int(format)%int(numFormats+1))))
		limit := DefaultMaxLineBytes
		if maxLine > 0 {
			limit = int(maxLine)
			opts = append(opts, WithMaxLineBytes(limit))
		}
		sc := NewScanner(bytes.NewReader(in), opts...)
		lines := bytes.Count(in, []byte("\n")) + 1
		n, text, lastLine := 0, 0, 0
		for sc.Scan() {
			n++
			r := sc.Record()
			if n > lines {
				t.Fatalf("%d records from %d lines", n, lines)
			}
			if len(r.Raw) > limit {
				t.Fatalf("Raw of %d bytes, limit %d", len(r.Raw), limit)
			}
			// JSON may turn one invalid byte into U+FFFD (3 bytes).
			text += len(r.Text)
			if text > 3*len(in) {
				t.Fatalf("%d bytes of text from %d bytes of input", text, len(in))
			}
			if sc.Line() <= lastLine && !(sc.Format() == FormatJournalJSON && sc.Line() == lastLine) {
				t.Fatalf("record at line %d after line %d", sc.Line(), lastLine)
			}
			lastLine = sc.Line()
			if !r.HasSeq && r.Seq != uint64(n) {
				t.Fatalf("record %d numbered %d", n, r.Seq)
			}
		}
		if n+sc.Skipped() > lines {
			t.Fatalf("%d records + %d skipped > %d lines", n, sc.Skipped(), lines)
		}
		if sc.Scan() {
			t.Fatal("Scan returned true after returning false")
		}
	})
}

// FuzzDetect checks Detect on arbitrary lines: it must not panic, ignore
// the line terminator, and agree with the Scanner: a line Detect assigns to
// a kernel-only format is one record of that format.
func FuzzDetect(f *testing.F) {
	_, lines := fuzzSeeds(f)
	for _, l := range lines {
		f.Add(l)
	}
	f.Add("<6>[   76.086772] x")
	f.Add("kern  :info  : [   76.086772] x")
	f.Add("[Sat Apr 27 22:56:09 2019] x")
	f.Add("2019-04-27T22:56:09,123456+00:00 x")
	f.Fuzz(func(t *testing.T, line string) {
		got := Detect(line)
		if strings.ContainsAny(line, "\r\n") {
			return
		}
		if again := Detect(line + "\r\n"); again != got {
			t.Fatalf("Detect(%q) = %v, with CRLF %v", line, got, again)
		}
		switch got.family() {
		case famKmsg, famDmesg:
		default:
			return
		}
		sc := NewScanner(strings.NewReader(line), WithLocation(time.UTC))
		if !sc.Scan() {
			t.Fatalf("Detect(%q) = %v but the Scanner reads no record (Err %v, format %v)", line, got, sc.Err(), sc.Format())
		}
		if sc.Format() != got {
			t.Fatalf("Detect(%q) = %v, Scanner format %v", line, got, sc.Format())
		}
		if got == FormatKmsg {
			if _, err := ParseRecord(cleanLine(line)); err != nil {
				t.Fatalf("Detect(%q) = kmsg but ParseRecord: %v", line, err)
			}
		}
		if sc.Scan() {
			t.Fatalf("one line, two records: %q", line)
		}
	})
}

// FuzzRepairJSON checks that repairJSON returns "" or valid JSON, and that
// every prefix of a journal line it repairs keeps the fields read so far.
func FuzzRepairJSON(f *testing.F) {
	f.Add(`{"_TRANSPORT":"kernel","MESSAGE":"a\u00e9\\b\"c","X":[1,2,{"y":null}]}`, 30)
	f.Add("\x1e"+`{"MESSAGE":[104,105]}`, 12)
	f.Fuzz(func(t *testing.T, line string, cut int) {
		if cut < 0 || cut > len(line) {
			return
		}
		out := repairJSON(line[:cut])
		if out == "" {
			return
		}
		if !json.Valid([]byte(strings.TrimPrefix(out, "\x1e"))) {
			t.Fatalf("repairJSON(%q) = %q, not valid JSON", line[:cut], out)
		}
	})
}

// FuzzLineDetect checks the per-line detection on arbitrary lines: it
// must not panic, read at most one record from one line, and read the same
// text from a line of a known prefix behind what a paste puts before it
// (quote marks, a grep -n line number, indentation).
func FuzzLineDetect(f *testing.F) {
	_, lines := fuzzSeeds(f)
	for _, l := range lines {
		f.Add(l)
	}
	f.Add("[   76.086772] dd invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0")
	f.Add("2024-05-01T10:00:00.123Z node-7 kern warning [   12.345678] Killed process 5 (a)")
	f.Add("2023-12-04T10:49:30.127Z In(05) vcpu-5 - Guest: <6>[39291577.009360] x")
	f.Add("[六 4月 27 22:56:09 2019] x")
	f.Add("> > 12: Apr 27 22:56:09  kernel: [    1.000000] x")
	f.Fuzz(func(t *testing.T, line string) {
		if strings.ContainsAny(line, "\r\n") {
			return
		}
		read := func(in string) []Record {
			sc := NewScanner(strings.NewReader(in+"\n"), WithLocation(time.UTC), WithYear(2024))
			var recs []Record
			for sc.Scan() {
				recs = append(recs, sc.Record())
			}
			if len(recs) > 1 && !strings.Contains(in, "=") {
				t.Fatalf("%q: %d records from one line", in, len(recs))
			}
			return recs
		}
		plain := read(line)
		if Detect(line) == FormatAuto || Detect(line) == FormatJournalJSON || strings.Contains(line, "=") || strings.HasSuffix(line, "…") {
			return
		}
		for _, deco := range []string{"> ", "12: ", "    "} {
			got := read(deco + line)
			if len(got) != len(plain) || len(got) == 1 && got[0].Text != plain[0].Text {
				t.Fatalf("%q behind %q reads %q, alone %q", line, deco, texts(got), texts(plain))
			}
		}
	})
}

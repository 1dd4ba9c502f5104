package kmsg

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func TestDetect(t *testing.T) {
	tests := []struct {
		line string
		want Format
	}{
		{"6,372,76086772,-;Memory cgroup stats", FormatKmsg},
		{"4,1,0,c,caller=T1;x", FormatKmsg},
		{"12,5,7,-;", FormatKmsg},
		{"6,372,76086772;missing flags", FormatAuto},
		{"6,x,1,-;bad seq", FormatAuto},
		{"[   76.086772] dd invoked oom-killer", FormatDmesg},
		{"[76.086772] no padding", FormatDmesg},
		{"[   76.086772 <    0.000010>] dmesg -d", FormatDmesg},
		{"[   76.086772] [  T123] with caller", FormatDmesg},
		{"kern  :info  : [   76.086772] dmesg -x", FormatDmesg},
		{"kern  :err   : dmesg -x -t", FormatDmesg},
		{"<6>[   76.086772] dmesg -r", FormatDmesg},
		{"<6>dmesg -r -t", FormatDmesg},
		{"[Sat Apr 27 22:56:09 2019] dmesg -T", FormatDmesgT},
		{"[Sat Apr  7 02:56:09 2019] padded day", FormatDmesgT},
		{"2019-04-27T22:56:09,123456+00:00 dmesg iso", FormatDmesgISO},
		{"Apr 27 22:56:09 host kernel: [   76.086772] imklog", FormatSyslog},
		{"Apr 27 22:56:09 host sshd[12]: Accepted publickey", FormatSyslog},
		{"Apr  7 22:56:09 host kernel: journal short", FormatJournalShort},
		{"Apr 27 22:56:09 kernel: no hostname", FormatJournalShort},
		{"Apr 27 22:56:09.123456 host kernel: precise", FormatJournalPrecise},
		{"2019-04-27T22:56:09+0000 host kernel: short-iso", FormatJournalISO},
		{"2019-04-27T22:56:09.123456+00:00 host kernel: rsyslog rfc3339", FormatSyslog},
		{`{"__REALTIME_TIMESTAMP":"1","MESSAGE":"x","_TRANSPORT":"kernel"}`, FormatJournalJSON},
		{"\x1e" + `{"MESSAGE":"json-seq"}`, FormatJournalJSON},
		{`{"MESSAGE":"truncated`, FormatAuto},
		{`{"other":"object"}`, FormatAuto},
		{"\ufeff[   76.086772] after a BOM", FormatDmesg},
		{"\x00\x00\x00[   76.086772] after NULs", FormatDmesg},
		{"[   76.086772] CRLF\r", FormatDmesg},
		{"-- Logs begin at Tue 2024-12-31 23:59:58 UTC. --", FormatAuto},
		{"   indented continuation", FormatAuto},
		{"\tindented continuation", FormatAuto},
		{"", FormatAuto},
		{"hello world", FormatAuto},
		{"\xff\xfe\x00garbage", FormatAuto},
		{"[", FormatAuto},
		{"[]", FormatAuto},
		{"Apr", FormatAuto},
		{"Apr 27", FormatAuto},
		{"Foo 27 22:56:09 host kernel: bad month", FormatAuto},
		{"Apr 27 25:56:09 host kernel: bad hour", FormatAuto},
		{"2019-13-27T22:56:09+0000 host kernel: bad month", FormatAuto},
		{"<9999>[   1.0] bad priority", FormatAuto},
		// Fuzz crasher: a host name and nothing after it.
		{"0000-01-01T00:00:00+0000 0", FormatAuto},
		{"Apr 27 22:56:09 host", FormatAuto},
		{"Apr 27 22:56:09 host ", FormatAuto},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%.30q", tt.line), func(t *testing.T) {
			if got := Detect(tt.line); got != tt.want {
				t.Errorf("Detect(%q) = %v, want %v", tt.line, got, tt.want)
			}
		})
	}
}

// scanAll reads every record of input.
func scanAll(t *testing.T, input string, opts ...ScanOption) ([]Record, *Scanner) {
	t.Helper()
	sc := NewScanner(strings.NewReader(input), append([]ScanOption{WithLocation(time.UTC)}, opts...)...)
	var recs []Record
	for sc.Scan() {
		recs = append(recs, sc.Record())
	}
	return recs, sc
}

func texts(recs []Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.Text
	}
	return out
}

func TestScanEdgeCases(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		opts    []ScanOption
		format  Format
		texts   []string
		skipped int
		errIs   error // nil: Err() must be nil
	}{
		{name: "empty", input: "", format: FormatAuto},
		{name: "blank lines", input: "\n  \n\t\n\n", format: FormatAuto},
		// No line has a known prefix: bare kernel text, never an error.
		{name: "text only", input: "hello\nworld\n", format: FormatText, texts: []string{"hello", "world"}},
		{name: "binary garbage", input: "\x00\x01\x02\xff\xfe\n\x7fELF\x02\x01\n", format: FormatAuto, skipped: 2},
		{
			name:    "lines of no format before records are text",
			input:   "\xff\xfegarbage\nnot a line\n6,1,10,-;one\n6,2,20,-;two\n",
			format:  FormatKmsg,
			texts:   []string{"not a line", "one", "two"},
			skipped: 1,
		},
		{
			name:    "text between kmsg records",
			input:   "6,1,10,-;one\n\x00\x01\x02\n6,2,20,-;two\nno header\n",
			format:  FormatKmsg,
			texts:   []string{"one", "two", "no header"},
			skipped: 1,
		},
		{
			name:   "CRLF kmsg",
			input:  "6,1,10,-;one\r\n SUBSYSTEM=x\r\n6,2,20,-;two\r\n",
			format: FormatKmsg,
			texts:  []string{"one", "two"},
		},
		{
			name:   "CRLF dmesg with continuation",
			input:  "[    1.000000] Mem-Info:\r\n               active_anon:1\r\n[    2.000000] next\r\n",
			format: FormatDmesg,
			texts:  []string{"Mem-Info:\nactive_anon:1", "next"},
		},
		{
			name:   "no final newline",
			input:  "[    1.000000] a\n[    2.000000] b",
			format: FormatDmesg,
			texts:  []string{"a", "b"},
		},
		{
			name:    "syslog other programs skipped and counted",
			input:   "Apr 27 22:56:09 h CRON[1]: x\nApr 27 22:56:09 h kernel: [    1.000000] a\nApr 27 22:56:10 h sshd[2]: y\nApr 27 22:56:11 h kernel: [    2.000000] b\n",
			format:  FormatSyslog,
			texts:   []string{"a", "b"},
			skipped: 2,
		},
		{
			name:    "journal marker makes short syslog a journal",
			input:   "-- Logs begin at Sat 2019-04-27 22:56:09 UTC. --\nApr 27 22:56:09 h kernel: a\n-- Boot 0123 --\nApr 27 22:56:10 h kernel: b\n",
			format:  FormatJournalShort,
			texts:   []string{"a", "b"},
			skipped: 2,
		},
		{
			name:    "journal no entries",
			input:   "-- No entries --\n",
			format:  FormatJournalShort,
			skipped: 1,
		},
		{
			name:    "forced format skips other lines",
			input:   "[    1.000000] dmesg line\n6,1,10,-;kmsg\n",
			opts:    []ScanOption{WithFormat(FormatKmsg)},
			format:  FormatKmsg,
			texts:   []string{"kmsg"},
			skipped: 1,
		},
		{
			name:    "json: other transports skipped, bad lines skipped",
			input:   `{"MESSAGE":"k","_TRANSPORT":"kernel"}` + "\n" + `{"MESSAGE":"u","_TRANSPORT":"journal"}` + "\n{broken\n" + `{"MESSAGE":[104,105],"_TRANSPORT":"kernel"}` + "\n",
			format:  FormatJournalJSON,
			texts:   []string{"k", "{broken", "hi"},
			skipped: 1,
		},
		{
			name:   "kmsg escapes decoded",
			input:  `6,1,10,-;a\x0ab\x5cc\x` + "\n",
			format: FormatKmsg,
			texts:  []string{"a\nb\\c\\x"},
		},
		{
			name:   "kmsg dictionary line without record",
			input:  " SUBSYSTEM=orphan\n6,1,10,-;one\n",
			format: FormatKmsg,
			texts:  []string{"SUBSYSTEM=orphan", "one"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, sc := scanAll(t, tt.input, tt.opts...)
			err := sc.Err()
			if tt.errIs == nil && err != nil || tt.errIs != nil && !errors.Is(err, tt.errIs) {
				t.Errorf("Err() = %v, want %v", err, tt.errIs)
			}
			if sc.Format() != tt.format {
				t.Errorf("Format() = %v, want %v", sc.Format(), tt.format)
			}
			if got := texts(recs); fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tt.texts) && !(len(got) == 0 && len(tt.texts) == 0) {
				t.Errorf("texts = %q, want %q", got, tt.texts)
			}
			if sc.Skipped() != tt.skipped {
				t.Errorf("Skipped() = %d, want %d", sc.Skipped(), tt.skipped)
			}
			for i, r := range recs {
				if strings.ContainsAny(r.Raw, "\r") {
					t.Errorf("record %d: Raw %q keeps a CR", i, r.Raw)
				}
				if tt.format != FormatKmsg && (r.HasSeq || r.Seq != uint64(i+1)) {
					t.Errorf("record %d: Seq %d HasSeq %v, want file order", i, r.Seq, r.HasSeq)
				}
			}
		})
	}
}

func TestScanKmsgFields(t *testing.T) {
	in := "3,41,2500000,c,caller=T7;x\n SUBSYSTEM=mem\n DEVICE=+mem:1\n14,42,2600001,-;y\n"
	recs, sc := scanAll(t, in)
	if sc.Err() != nil || len(recs) != 2 {
		t.Fatalf("%d records, Err %v", len(recs), sc.Err())
	}
	r := recs[0]
	if !r.HasSeq || r.Seq != 41 || r.Priority != 3 || !r.Cont || r.Caller != "T7" || r.Mono != 2500*time.Millisecond ||
		fmt.Sprint(r.Dict) != "[SUBSYSTEM=mem DEVICE=+mem:1]" || r.Raw != "3,41,2500000,c,caller=T7;x\n SUBSYSTEM=mem\n DEVICE=+mem:1" {
		t.Errorf("record = %+v", r)
	}
	if r := recs[1]; r.Seq != 42 || r.Facility != 1 || r.Priority != 6 || r.Cont || sc.Line() != 4 {
		t.Errorf("record = %+v line %d", r, sc.Line())
	}
}

func TestScanSyslogYears(t *testing.T) {
	rollover := "Dec 31 23:59:59 h kernel: [    1.000000] a\nJan  1 00:00:01 h kernel: [    3.000000] b\n"
	tests := []struct {
		name  string
		input string
		opts  []ScanOption
		want  []string
	}{
		{"year given, rollover", rollover, []ScanOption{WithYear(2024)},
			[]string{"2024-12-31T23:59:59Z", "2025-01-01T00:00:01Z"}},
		{"reference after the file", rollover, []ScanOption{WithReference(time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC))},
			[]string{"2024-12-31T23:59:59Z", "2025-01-01T00:00:01Z"}},
		// A December line read in January belongs to the year before.
		{"reference in the next January", "Dec 30 10:00:00 h kernel: x\n", []ScanOption{WithReference(time.Date(2025, 1, 2, 0, 0, 0, 0, time.UTC))},
			[]string{"2024-12-30T10:00:00Z"}},
		{"reference same year", "Apr 27 22:56:09 h kernel: x\n", []ScanOption{WithReference(time.Date(2019, 5, 1, 0, 0, 0, 0, time.UTC))},
			[]string{"2019-04-27T22:56:09Z"}},
		{"WithYear overrides reference", "Apr 27 22:56:09 h kernel: x\n",
			[]ScanOption{WithReference(time.Date(2030, 5, 1, 0, 0, 0, 0, time.UTC)), WithYear(2019)},
			[]string{"2019-04-27T22:56:09Z"}},
		{"out of order by minutes stays in the year", "Dec 31 23:59:59 h kernel: a\nDec 31 23:58:00 h kernel: b\n", []ScanOption{WithYear(2024)},
			[]string{"2024-12-31T23:59:59Z", "2024-12-31T23:58:00Z"}},
		{"two rollovers", "Dec 31 23:59:59 h kernel: a\nJul  1 00:00:00 h kernel: b\nDec 31 00:00:00 h kernel: c\nJan  1 00:00:00 h kernel: d\n",
			[]ScanOption{WithYear(2023)},
			[]string{"2023-12-31T23:59:59Z", "2024-07-01T00:00:00Z", "2024-12-31T00:00:00Z", "2025-01-01T00:00:00Z"}},
		{"leap day", "Feb 29 12:00:00 h kernel: x\n", []ScanOption{WithYear(2024)}, []string{"2024-02-29T12:00:00Z"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, sc := scanAll(t, tt.input, tt.opts...)
			if sc.Err() != nil {
				t.Fatal(sc.Err())
			}
			var got []string
			for _, r := range recs {
				got = append(got, r.Wall.Format(time.RFC3339))
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("walls = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestScanDmesgT(t *testing.T) {
	in := "[Sat Apr 27 22:56:09 2019] first\n[Sun Apr 28 00:00:01 2019] second\n                           more\n"
	loc := time.FixedZone("X", 2*3600)
	sc := NewScanner(strings.NewReader(in), WithLocation(loc))
	var recs []Record
	for sc.Scan() {
		recs = append(recs, sc.Record())
	}
	if sc.Err() != nil || sc.Format() != FormatDmesgT || len(recs) != 2 {
		t.Fatalf("Err %v format %v %d records", sc.Err(), sc.Format(), len(recs))
	}
	if want := time.Date(2019, 4, 27, 22, 56, 9, 0, loc); !recs[0].Wall.Equal(want) || recs[0].HasMono {
		t.Errorf("record 0: Wall %v HasMono %v, want %v false", recs[0].Wall, recs[0].HasMono, want)
	}
	if recs[1].Text != "second\nmore" || recs[1].Priority != -1 {
		t.Errorf("record 1: %+v", recs[1])
	}
}

func TestScanMixedHosts(t *testing.T) {
	in := "Apr 27 22:56:09 a kernel: [    1.000000] from a\n" +
		"Apr 27 22:56:09 b kernel: [  100.000000] from b\n" +
		"Apr 27 22:56:10 a kernel: [    2.000000] a again\n"
	recs, sc := scanAll(t, in, WithYear(2019))
	if sc.Err() != nil || len(recs) != 3 {
		t.Fatalf("Err %v, %d records", sc.Err(), len(recs))
	}
	var got []string
	for _, r := range recs {
		got = append(got, fmt.Sprintf("%s/%v", r.Host, r.Mono))
	}
	if want := "[a/1s b/1m40s a/2s]"; fmt.Sprint(got) != want {
		t.Errorf("host/mono = %v, want %v", got, want)
	}
}

func TestScanLongLines(t *testing.T) {
	long := strings.Repeat("x", 200)
	tests := []struct {
		name      string
		input     string
		max       int
		wantTexts []string
		wantTrunc []bool
	}{
		{"kmsg line cut", "6,1,10,-;" + long + "\n6,2,20,-;short\n", 64,
			[]string{strings.Repeat("x", 64-len("6,1,10,-;")), "short"}, []bool{true, false}},
		{"dmesg line cut", "[    1.000000] " + long + "\n[    2.000000] short\n", 50,
			[]string{strings.Repeat("x", 50-15), "short"}, []bool{true, false}},
		{"continuation beyond the record limit dropped", "[    1.000000] head\n" +
			strings.Repeat("               "+strings.Repeat("y", 20)+"\n", 10) + "[    2.000000] next\n", 100,
			[]string{"head\n" + strings.Repeat("y", 20) + "\n" + strings.Repeat("y", 20), "next"}, []bool{true, false}},
		{"line longer than the read buffer", "[    1.000000] " + strings.Repeat("z", 100<<10) + "\n[    2.000000] after\n", 0,
			[]string{strings.Repeat("z", DefaultMaxLineBytes-15), "after"}, []bool{true, false}},
		{"exactly the limit", "6,1,10,-;" + strings.Repeat("x", 55) + "\n", 64,
			[]string{strings.Repeat("x", 55)}, []bool{false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []ScanOption
			if tt.max > 0 {
				opts = append(opts, WithMaxLineBytes(tt.max))
			}
			sc := NewScanner(strings.NewReader(tt.input), opts...)
			var got []string
			var trunc []bool
			for sc.Scan() {
				got = append(got, sc.Record().Text)
				trunc = append(trunc, sc.Truncated())
				if n := len(sc.Record().Raw); n > max(tt.max, DefaultMaxLineBytes*boolInt(tt.max <= 0)) {
					t.Errorf("Raw is %d bytes, limit %d", n, tt.max)
				}
			}
			if sc.Err() != nil {
				t.Fatal(sc.Err())
			}
			if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tt.wantTexts) {
				t.Errorf("texts = %.200q, want %.200q", got, tt.wantTexts)
			}
			if fmt.Sprint(trunc) != fmt.Sprint(tt.wantTrunc) {
				t.Errorf("truncated = %v, want %v", trunc, tt.wantTrunc)
			}
		})
	}
}

func TestScanReadError(t *testing.T) {
	boom := errors.New("disk on fire")
	r := io.MultiReader(strings.NewReader("6,1,10,-;one\n6,2,20,-;two\n"), iotest.ErrReader(boom))
	sc := NewScanner(r)
	var got []string
	for sc.Scan() {
		got = append(got, sc.Record().Text)
	}
	if fmt.Sprint(got) != "[one two]" {
		t.Errorf("records before the error = %q", got)
	}
	if err := sc.Err(); !errors.Is(err, boom) || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("Err() = %v, want it to wrap %v and name line 3", err, boom)
	}
	if sc.Scan() {
		t.Error("Scan after the error returned true")
	}

	// An error in the middle of a line: the partial line is still a
	// record, then the error.
	r = io.MultiReader(strings.NewReader("[    1.000000] partial"), iotest.ErrReader(boom))
	sc = NewScanner(r)
	got = got[:0]
	for sc.Scan() {
		got = append(got, sc.Record().Text)
	}
	if fmt.Sprint(got) != "[partial]" || !errors.Is(sc.Err(), boom) {
		t.Errorf("records %q, Err %v", got, sc.Err())
	}

	// One byte at a time (a slow pipe) reads the same records.
	in := "[    1.000000] Mem-Info:\n               a:1\n[    2.000000] b\n"
	sc = NewScanner(iotest.OneByteReader(strings.NewReader(in)))
	got = got[:0]
	for sc.Scan() {
		got = append(got, sc.Record().Text)
	}
	if fmt.Sprintf("%q", got) != `["Mem-Info:\na:1" "b"]` || sc.Err() != nil {
		t.Errorf("one byte reader: %q, Err %v", got, sc.Err())
	}
}

func TestScanOptionErrors(t *testing.T) {
	tests := []struct {
		name string
		opt  ScanOption
		bad  bool
	}{
		{"max line 12", WithMaxLineBytes(12), false},
		{"max line 0", WithMaxLineBytes(0), true},
		{"max line negative", WithMaxLineBytes(-5), true},
		{"year 1", WithYear(MinYear), false},
		{"year 9999", WithYear(MaxYear), false},
		{"year 0", WithYear(0), true},
		{"year 10000", WithYear(10000), true},
		{"year negative", WithYear(-2024), true},
		{"format auto", WithFormat(FormatAuto), false},
		{"format kmsg", WithFormat(FormatKmsg), false},
		{"format out of range", WithFormat(numFormats), true},
		{"format negative", WithFormat(Format(-1)), true},
		{"nil location", WithLocation(nil), true},
		{"zero reference", WithReference(time.Time{}), false},
		{"nil option", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := NewScanner(strings.NewReader("6,1,10,-;one\n"), tt.opt)
			got := sc.Scan()
			err := sc.Err()
			if tt.bad {
				if got || !errors.Is(err, ErrInvalidOption) {
					t.Errorf("Scan() = %v, Err() = %v; want false and an ErrInvalidOption", got, err)
				}
				return
			}
			if !got || err != nil || sc.Record().Text != "one" {
				t.Errorf("Scan() = %v, Err() = %v, record %q", got, err, sc.Record().Text)
			}
		})
	}
}

func TestParseFormatRoundTrip(t *testing.T) {
	for f := FormatAuto; f < numFormats; f++ {
		got, err := ParseFormat(f.String())
		if err != nil || got != f {
			t.Errorf("ParseFormat(%q) = %v, %v", f.String(), got, err)
		}
	}
	if _, err := ParseFormat("nope"); !errors.Is(err, ErrUnknownFormat) {
		t.Errorf("ParseFormat(nope) = %v", err)
	}
}

func TestRecordLevel(t *testing.T) {
	for p, want := range map[int8]string{-1: "", 0: "emerg", 3: "err", 4: "warning", 6: "info", 7: "debug", 8: ""} {
		if got := (Record{Priority: p}).Level(); got != want {
			t.Errorf("Level(%d) = %q, want %q", p, got, want)
		}
	}
}

func TestScanDmesgDecodePrefix(t *testing.T) {
	tests := []struct {
		line      string
		fac, prio int
		text      string
	}{
		{"kern  :emerg : [    1.000000] a", 0, 0, "a"},
		{"kern  :alert : [    1.000000] a", 0, 1, "a"},
		{"kern  :crit  : [    1.000000] a", 0, 2, "a"},
		{"kern  :err   : [    1.000000] a", 0, 3, "a"},
		{"kern  :warn  : [    1.000000] a", 0, 4, "a"},
		{"kern  :notice: [    1.000000] a", 0, 5, "a"},
		{"user  :info  : [    1.000000] a", 1, 6, "a"},
		{"daemon:debug : [    1.000000] a", 3, 7, "a"},
		{"mail  :info  : [    1.000000] a", 2, 6, "a"},
		{"auth  :info  : [    1.000000] a", 4, 6, "a"},
		{"syslog:info  : [    1.000000] a", 5, 6, "a"},
		{"lpr   :info  : [    1.000000] a", 6, 6, "a"},
		{"news  :info  : [    1.000000] a", 7, 6, "a"},
		{"uucp  :info  : [    1.000000] a", 8, 6, "a"},
		{"cron  :info  : [    1.000000] a", 9, 6, "a"},
		{"authpriv:info  : [    1.000000] a", 10, 6, "a"},
		{"ftp   :info  : [    1.000000] a", 11, 6, "a"},
		{"res2  :info  : [    1.000000] a", 14, 6, "a"},
		{"local7:info  : [    1.000000] a", 23, 6, "a"},
		{"kern  :info  : no timestamp", 0, 6, "no timestamp"},
		{"<14>[    1.000000] a", 1, 6, "a"},
	}
	for _, tt := range tests {
		recs, sc := scanAll(t, tt.line+"\n")
		if sc.Err() != nil || len(recs) != 1 {
			t.Errorf("%q: %d records, Err %v", tt.line, len(recs), sc.Err())
			continue
		}
		r := recs[0]
		if int(r.Facility) != tt.fac || int(r.Priority) != tt.prio || r.Text != tt.text {
			t.Errorf("%q: facility %d priority %d text %q, want %d %d %q", tt.line, r.Facility, r.Priority, r.Text, tt.fac, tt.prio, tt.text)
		}
	}
	for _, bad := range []string{"kern  :loud  : [    1.000000] a", "nope  :info  : [    1.000000] a"} {
		if f := Detect(bad); f != FormatAuto {
			t.Errorf("Detect(%q) = %v, want auto", bad, f)
		}
	}
}

func TestScanJournalJSONFields(t *testing.T) {
	tests := []struct {
		name   string
		line   string
		kernel bool
		text   string
		host   string
		prio   int8
		mono   time.Duration
		dict   string
	}{
		{"string fields", `{"MESSAGE":"m","_TRANSPORT":"kernel","_HOSTNAME":"h","PRIORITY":"3","_SOURCE_MONOTONIC_TIMESTAMP":"1500000"}`, true, "m", "h", 3, 1500 * time.Millisecond, "[]"},
		{"byte array message", `{"MESSAGE":[104,105,10,0],"_TRANSPORT":"kernel"}`, true, "hi\n\x00", "", -1, 0, "[]"},
		{"repeated field takes the first", `{"MESSAGE":["a","b"],"_TRANSPORT":"kernel"}`, true, "a", "", -1, 0, "[]"},
		{"repeated byte-array field", `{"MESSAGE":[[104],[105]],"_TRANSPORT":"kernel"}`, true, "h", "", -1, 0, "[]"},
		{"null message (too large)", `{"MESSAGE":null,"_TRANSPORT":"kernel"}`, true, "", "", -1, 0, "[]"},
		{"numbers", `{"MESSAGE":"m","_TRANSPORT":"kernel","PRIORITY":6,"_SOURCE_MONOTONIC_TIMESTAMP":42}`, true, "m", "", 6, 42 * time.Microsecond, "[]"},
		{"bad priority", `{"MESSAGE":"m","_TRANSPORT":"kernel","PRIORITY":"9"}`, true, "m", "", -1, 0, "[]"},
		{"identifier fallback", `{"MESSAGE":"m","SYSLOG_IDENTIFIER":"kernel"}`, true, "m", "", -1, 0, "[]"},
		{"other identifier", `{"MESSAGE":"m","SYSLOG_IDENTIFIER":"kubelet"}`, false, "", "", -1, 0, "[]"},
		{"other transport", `{"MESSAGE":"m","_TRANSPORT":"stdout"}`, false, "", "", -1, 0, "[]"},
		{"device fields", `{"MESSAGE":"m","_TRANSPORT":"kernel","_KERNEL_SUBSYSTEM":"usb","_KERNEL_DEVICE":"c189:1"}`, true, "m", "", -1, 0, "[SUBSYSTEM=usb DEVICE=c189:1]"},
		{"odd values", `{"MESSAGE":true,"_TRANSPORT":"kernel","_HOSTNAME":{"x":1},"PRIORITY":[],"SYSLOG_FACILITY":[true]}`, true, "", "", -1, 0, "[]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, sc := scanAll(t, tt.line+"\n", WithFormat(FormatJournalJSON))
			if sc.Err() != nil {
				t.Fatal(sc.Err())
			}
			if !tt.kernel {
				if len(recs) != 0 || sc.Skipped() != 1 {
					t.Errorf("%d records, %d skipped; want 0, 1", len(recs), sc.Skipped())
				}
				return
			}
			if len(recs) != 1 {
				t.Fatalf("%d records", len(recs))
			}
			r := recs[0]
			if r.Text != tt.text || r.Host != tt.host || r.Priority != tt.prio || r.Mono != tt.mono || fmt.Sprint(r.Dict) != tt.dict {
				t.Errorf("record %+v", r)
			}
		})
	}
}

func TestRepairJSON(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"_TRANSPORT":"kernel","MESSAGE":"abc`, `{"_TRANSPORT":"kernel","MESSAGE":"abc"}`},
		{`{"_TRANSPORT":"kernel","MESSAGE":"ab\`, `{"_TRANSPORT":"kernel","MESSAGE":"ab"}`},
		{`{"_TRANSPORT":"kernel","MESSAGE":"ab\\`, `{"_TRANSPORT":"kernel","MESSAGE":"ab\\"}`},
		{`{"_TRANSPORT":"kernel","MESSAGE":"ab\u00`, `{"_TRANSPORT":"kernel","MESSAGE":"ab"}`},
		{`{"_TRANSPORT":"kernel","MESSAGE":"ab\\u00`, `{"_TRANSPORT":"kernel","MESSAGE":"ab\\u00"}`},
		{`{"_TRANSPORT":"kernel","MESSAGE":"ab\u00e9`, `{"_TRANSPORT":"kernel","MESSAGE":"ab\u00e9"}`},
		{`{"_TRANSPORT":"kernel","MESSAGE":[104,105`, `{"_TRANSPORT":"kernel","MESSAGE":[104,105]}`},
		{`{"_TRANSPORT":"kernel","MESSAGE":[104,`, `{"_TRANSPORT":"kernel"}`},
		{`{"_TRANSPORT":"kernel","MESS`, `{"_TRANSPORT":"kernel"}`},
		{`{"_TRANSPORT":"kernel","MESSAGE":`, `{"_TRANSPORT":"kernel"}`},
		{`{"_TRANSPORT":"kernel","PRIORITY":tr`, `{"_TRANSPORT":"kernel"}`},
		{`{"_TRANSPORT":"kernel","PRIORITY":6`, `{"_TRANSPORT":"kernel","PRIORITY":6}`},
		{`{"a":{"b":"c`, `{"a":{"b":"c"}}`},
		{"\x1e" + `{"MESSAGE":"x`, "\x1e" + `{"MESSAGE":"x"}`},
		{`{"MESS`, ``},
		{`{"a":1}`, ``},
		{`{"a":1]`, ``},
		{`not json`, ``},
		{``, ``},
	}
	for _, tt := range tests {
		if got := repairJSON(tt.in); got != tt.want {
			t.Errorf("repairJSON(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestScanJSONLongLine(t *testing.T) {
	long := strings.Repeat("y", 300)
	in := `{"_TRANSPORT":"kernel","PRIORITY":"6","MESSAGE":"[ 12] 0 12 ` + long + `","_HOSTNAME":"h"}` + "\n" +
		`{"_TRANSPORT":"kernel","MESSAGE":"next"}` + "\n"
	for _, opts := range [][]ScanOption{{WithMaxLineBytes(100)}, {WithMaxLineBytes(100), WithFormat(FormatJournalJSON)}} {
		sc := NewScanner(strings.NewReader(in), opts...)
		var got []string
		var trunc []bool
		for sc.Scan() {
			got = append(got, sc.Record().Text)
			trunc = append(trunc, sc.Truncated())
		}
		if sc.Err() != nil || sc.Format() != FormatJournalJSON {
			t.Fatalf("Err %v, format %v", sc.Err(), sc.Format())
		}
		if len(got) != 2 || !strings.HasPrefix(got[0], "[ 12] 0 12 yyy") || len(got[0]) >= 100 || got[1] != "next" ||
			fmt.Sprint(trunc) != "[true false]" {
			t.Errorf("texts %q truncated %v", got, trunc)
		}
	}
}

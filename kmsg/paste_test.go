package kmsg

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// TestScanPastes: lines as people paste them are read line by line, by
// their own prefix, and never fail the file.
func TestScanPastes(t *testing.T) {
	type rec struct {
		text string
		mono time.Duration // -1: none
		wall string        // RFC 3339 in UTC, "" for none
		bare bool
	}
	const none = -1
	tests := []struct {
		name    string
		input   string
		want    []rec
		skipped int
		format  Format
	}{
		{"bare lines", "Killed process 5 (a) total-vm:1kB\n  Mem-Info:  \n", []rec{
			{"Killed process 5 (a) total-vm:1kB", none, "", true}, {"Mem-Info:", none, "", true}}, 0, FormatText},
		{"indented dmesg with its continuation", "    [    1.000000] Mem-Info:\n                   active_anon:1\n    [    2.000000] b\n", []rec{
			{"Mem-Info:\nactive_anon:1", time.Second, "", false}, {"b", 2 * time.Second, "", false}}, 0, FormatDmesg},
		{"quoted, several levels", "> [    1.000000] a\n>> [    2.000000] b\n> > [    3.000000] c\n>\n>[    4.000000] d\n", []rec{
			{"a", time.Second, "", false}, {"b", 2 * time.Second, "", false}, {"c", 3 * time.Second, "", false}, {"d", 4 * time.Second, "", false}}, 0, FormatDmesg},
		{"quoted continuation", "> [    1.000000] Mem-Info:\n>                active_anon:1\n", []rec{
			{"Mem-Info:\nactive_anon:1", time.Second, "", false}}, 0, FormatDmesg},
		{"grep -n and cat -n numbers", "12:[    1.000000] a\n13: [    2.000000] b\n     7\t[    3.000000] c\n", []rec{
			{"a", time.Second, "", false}, {"b", 2 * time.Second, "", false}, {"c", 3 * time.Second, "", false}}, 0, FormatDmesg},
		{"space-separated numbers: before a prefix or counting up", "100 [    1.000000] a\n101 bare text\n102 more\n3351 total pagecache pages\n", []rec{
			{"a", time.Second, "", false}, {"bare text", none, "", true}, {"more", none, "", true}, {"3351 total pagecache pages", none, "", true}}, 0, FormatDmesg},
		{"kernel text that starts with a number", "3351 total pagecache pages\n0 pages in swap cache\n", []rec{
			{"3351 total pagecache pages", none, "", true}, {"0 pages in swap cache", none, "", true}}, 0, FormatText},
		{"a log shipper's columns before the bracket", "2024-05-01T10:00:00.123Z node-7 kern warning [   12.345678] Killed process 5 (a)\n", []rec{
			{"Killed process 5 (a)", 12345678 * time.Microsecond, "2024-05-01T10:00:00.123Z", false}}, 0, FormatText},
		{"ISO date with a space, host, kernel tag", "2024-05-01 10:00:00 node-7 kernel: oom-kill:x\n", []rec{
			{"oom-kill:x", none, "2024-05-01T10:00:00Z", false}}, 0, FormatText},
		{"a hypervisor's log around a guest's dmesg -r line", "2023-12-04T10:49:30.127Z In(05) vcpu-5 - Guest: <6>[39291577.009360] x\n", []rec{
			{"x", 39291577009360 * time.Microsecond, "2023-12-04T10:49:30.127Z", false}}, 0, FormatText},
		{"parentheses before a bracket without a date are kernel text", "Killed process 5 ((a) [1.0] x) total-vm:1kB\n", []rec{
			{"Killed process 5 ((a) [1.0] x) total-vm:1kB", none, "", true}}, 0, FormatText},
		{"kernel tag and bracket", "node-7 kernel: [    1.500000] x\n", []rec{
			{"x", 1500 * time.Millisecond, "", false}}, 0, FormatText},
		{"syslog with an empty host name", "Apr 27 22:56:09  kernel: [    1.000000] x\n", []rec{
			{"x", time.Second, "2019-04-27T22:56:09Z", false}}, 0, FormatSyslog},
		{"another program behind an unknown prefix", "2024-05-01 10:00:00,123 node-7 sshd[12]: Accepted\n", nil, 1, FormatAuto},
		{"a process name with an anchor never cuts its line", "Killed process 5 (x [1.0] y) total-vm:1kB\n[    5]     0     5     1000      100    65536        0             0 a kernel: b\n", []rec{
			{"Killed process 5 (x [1.0] y) total-vm:1kB", none, "", true},
			{"[    5]     0     5     1000      100    65536        0             0 a kernel: b", none, "", true}}, 0, FormatText},
		{"mixed prefixes in one paste", "[    1.000000] a\nb\nApr 27 22:56:09 h kernel: [    2.000000] c\n6,9,3000000,-;d\n", []rec{
			{"a", time.Second, "", false}, {"b", none, "", true}, {"c", 2 * time.Second, "2019-04-27T22:56:09Z", false}, {"d", 3 * time.Second, "", false}}, 0, FormatDmesg},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, sc := scanAll(t, tt.input, WithYear(2019))
			if sc.Err() != nil {
				t.Fatal(sc.Err())
			}
			var got []rec
			for _, r := range recs {
				g := rec{text: r.Text, mono: none, bare: r.Bare}
				if r.HasMono {
					g.mono = r.Mono
				}
				if !r.Wall.IsZero() {
					g.wall = r.Wall.UTC().Format(time.RFC3339Nano)
				}
				got = append(got, g)
			}
			if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", tt.want) {
				t.Errorf("records\n got %+v\nwant %+v", got, tt.want)
			}
			if sc.Skipped() != tt.skipped {
				t.Errorf("Skipped() = %d, want %d", sc.Skipped(), tt.skipped)
			}
			if sc.Format() != tt.format {
				t.Errorf("Format() = %v, want %v", sc.Format(), tt.format)
			}
		})
	}
}

// TestDmesgTLocales: "dmesg -T" in any locale is a dmesg line; its date is
// read when the month is, and left unknown otherwise.
func TestDmesgTLocales(t *testing.T) {
	tests := []struct{ line, wall string }{
		{"[Sat Apr 27 22:56:09 2019] x", "2019-04-27T22:56:09Z"},
		{"[六 4月 27 22:56:09 2019] x", "2019-04-27T22:56:09Z"},
		{"[土  4月 27 22:56:09 2019] x", "2019-04-27T22:56:09Z"},
		{"[토 4월 27 22:56:09 2019] x", "2019-04-27T22:56:09Z"},
		{"[Sa Apr 27 22:56:09 2019] x", "2019-04-27T22:56:09Z"},
		{"[Mi Mär  6 10:00:00 2024] x", "2024-03-06T10:00:00Z"},
		{"[sam. avril 27 22:56:09 2019] x", "2019-04-27T22:56:09Z"},
		{"[сб апр 27 22:56:09 2019] x", "2019-04-27T22:56:09Z"},
		{"[xyz qqq 27 22:56:09 2019] x", ""},
		{"[Sat Feb 31 22:56:09 2019] x", ""},
	}
	for _, tt := range tests {
		if f := Detect(tt.line); f != FormatDmesgT {
			t.Errorf("Detect(%q) = %v, want %v", tt.line, f, FormatDmesgT)
		}
		recs, sc := scanAll(t, tt.line+"\n")
		if sc.Err() != nil || len(recs) != 1 || recs[0].Text != "x" {
			t.Errorf("%q: %d records, Err %v", tt.line, len(recs), sc.Err())
			continue
		}
		got := ""
		if !recs[0].Wall.IsZero() {
			got = recs[0].Wall.UTC().Format(time.RFC3339)
		}
		if got != tt.wall {
			t.Errorf("%q: wall %q, want %q", tt.line, got, tt.wall)
		}
	}
}

// TestScanFollow: on live input a record is returned as soon as nothing
// more is buffered, not when the next line arrives.
func TestScanFollow(t *testing.T) {
	pr, pw := io.Pipe()
	sc := NewScanner(pr, WithFollow(), WithLocation(time.UTC))
	got := make(chan string)
	go func() {
		for sc.Scan() {
			got <- sc.Record().Text
		}
		close(got)
	}()
	for _, line := range []string{"[    1.000000] one", "[    2.000000] two"} {
		if _, err := io.WriteString(pw, line+"\n"); err != nil {
			t.Fatal(err)
		}
		select {
		case text := <-got:
			if !strings.HasSuffix(line, text) {
				t.Fatalf("got %q for %q", text, line)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%q not returned before the next line", line)
		}
	}
	pw.Close()
	if _, ok := <-got; ok {
		t.Fatal("a record after the end")
	}
}

// TestScanMedium: quoted-printable mail bodies are decoded (soft line
// breaks joined) and a line cut with an ellipsis is marked.
func TestScanMedium(t *testing.T) {
	in := "[    1.000000] dd invoked oom-killer: gfp_mask=3D0xcc0(GFP_KERNEL), ord=\ner=3D0, oom_score_adj=3D0\n" +
		"[    2.000000] Memory cgroup out of memory: Killed process 85 (dd) total-vm:1=\n" +
		"33332kB, anon-rss:32616kB\n" +
		"Apr 27 22:56:09 h kernel: [    3.000000] oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpus…\n"
	recs, sc := scanAll(t, in, WithYear(2019))
	if sc.Err() != nil || len(recs) != 3 {
		t.Fatalf("%d records, Err %v: %q", len(recs), sc.Err(), texts(recs))
	}
	want := []string{
		"dd invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
		"Memory cgroup out of memory: Killed process 85 (dd) total-vm:133332kB, anon-rss:32616kB",
		"oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpus",
	}
	for i, w := range want {
		if recs[i].Text != w {
			t.Errorf("record %d = %q, want %q", i, recs[i].Text, w)
		}
	}
	if recs[0].Cut || recs[1].Cut || !recs[2].Cut {
		t.Errorf("cut = %v %v %v, want only the last", recs[0].Cut, recs[1].Cut, recs[2].Cut)
	}
}

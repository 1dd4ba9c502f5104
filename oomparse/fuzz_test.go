package oomparse

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oomscope/oomscope/report"

	"github.com/oomscope/oomscope/kmsg"
)

// Bounds the fuzz parsers are built with: small, so that the fuzzer reaches
// them with small inputs.
const (
	fuzzMaxTasks    = 8
	fuzzMaxLines    = 16
	fuzzMaxRawBytes = 4096
)

// fuzzSeedMax is the largest case file used as a seed: bigger ones slow
// the fuzzer down without adding shapes.
const fuzzSeedMax = 32 << 10

// FuzzFeed feeds arbitrary bytes to the parser, both through the format
// detecting kmsg.Scanner and line by line through kmsg.ParseRecord, and
// checks that it never panics, that every report is well formed and
// bounded, and that the state the parser holds between records is bounded.
func FuzzFeed(f *testing.F) {
	for _, pattern := range []string{"../testdata/cases/*.log", "../testdata/captures/*.kmsg", "../testdata/fuzz/seeds/*"} {
		files, _ := filepath.Glob(pattern)
		for _, name := range files {
			b, err := os.ReadFile(name)
			if err != nil {
				f.Fatal(err)
			}
			if len(b) <= fuzzSeedMax {
				f.Add(b)
			}
		}
	}
	f.Add([]byte("3,1,1,-;Killed process 1 (a) total-vm:1kB, anon-rss:1kB, file-rss:1kB\n"))
	f.Add([]byte("4,1,1,-;x invoked oom-killer: gfp_mask=0x0, order=0, oom_score_adj=0\n4,2,2,c;more\n"))
	f.Add([]byte("[    1.000000] Tasks in /a are going to be killed due to memory.oom.group set\n"))

	f.Fuzz(fuzzOne)
}

// fuzzOne is the body of FuzzFeed.
func fuzzOne(t *testing.T, data []byte) {
	{
		opts := []Option{
			WithMaxTasks(fuzzMaxTasks), WithMaxLines(fuzzMaxLines), WithMaxRawBytes(fuzzMaxRawBytes),
			WithMaxUnrelated(20), WithIdleTimeout(time.Second), WithVictimLinger(100 * time.Millisecond),
			WithErrorHandler(func(e *LineError) {
				if e.Err == nil {
					t.Errorf("LineError without an error: %+v", e)
				}
			}),
		}

		p, err := New(opts...)
		if err != nil {
			t.Fatal(err)
		}
		sc := kmsg.NewScanner(bytes.NewReader(data), kmsg.WithYear(2026), kmsg.WithLocation(time.UTC))
		for sc.Scan() {
			feedChecked(t, p, sc.Record(), len(data))
		}
		checkReports(t, p.Flush(nil))
		if !p.Idle() {
			t.Fatal("parser not idle after Flush")
		}

		p, err = New(opts...)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			rec, err := kmsg.ParseRecord(line)
			if err != nil {
				continue
			}
			feedChecked(t, p, rec, len(data))
		}
		checkReports(t, p.Flush(nil))
	}
}

// feedChecked feeds one record, then lets the record's own time pass, and
// checks the reports and the parser's state.
func feedChecked(t *testing.T, p *Parser, rec kmsg.Record, inputLen int) {
	t.Helper()
	out := p.Feed(nil, rec)
	if rec.HasMono {
		out = p.Expire(out, rec.Mono)
		if d, ok := p.Deadline(); ok {
			out = p.Expire(out, d)
		}
	}
	checkReports(t, out)
	checkState(t, p, inputLen)
}

// checkState asserts the bounds of what a parser holds between records.
func checkState(t *testing.T, p *Parser, inputLen int) {
	t.Helper()
	if p.hasPending && len(p.pending.Text) > maxMerged+inputLen {
		t.Fatalf("held record grew to %d bytes", len(p.pending.Text))
	}
	if len(p.held) > maxHeld {
		t.Fatalf("%d reports held, cap %d", len(p.held), maxHeld)
	}
	for i := range p.held {
		checkBounds(t, p.held[i].r)
	}
	if p.r == nil {
		if p.state != stIdle {
			t.Fatalf("no open report in state %v", p.state)
		}
		return
	}
	if p.state == stIdle {
		t.Fatal("open report in the idle state")
	}
	if n := len(p.tasks.rows); n > fuzzMaxTasks {
		t.Fatalf("%d task rows held, cap %d", n, fuzzMaxTasks)
	}
	checkBounds(t, p.r)
}

// checkReports asserts that every emitted report is well formed and bounded.
func checkReports(t *testing.T, reports []report.Report) {
	t.Helper()
	for i := range reports {
		r := &reports[i]
		if r.Schema != report.Schema {
			t.Fatalf("report %d: schema %q", i, r.Schema)
		}
		if r.ID == "" {
			t.Fatalf("report %d: no id", i)
		}
		if r.Victims == nil {
			t.Fatalf("report %d: nil victims", i)
		}
		if len(r.Victims) == 0 && len(r.AlreadyExiting) == 0 && !r.NoKillable && r.Panic == "" && !r.Incomplete {
			t.Fatalf("report %d: no victim but not flagged incomplete", i)
		}
		for _, v := range r.Victims {
			if v.Exiting {
				t.Fatalf("report %d: victim %d was not killed (exiting)", i, v.PID)
			}
			if v.Inferred != "" && (v.TotalVM != nil || v.AnonRSS != nil || v.FileRSS != nil) {
				t.Fatalf("report %d: inferred victim %d with sizes", i, v.PID)
			}
		}
		if r.Derived == nil {
			t.Fatalf("report %d: no derived facts", i)
		}
		if len(r.Tasks) > fuzzMaxTasks {
			t.Fatalf("report %d: %d tasks, cap %d", i, len(r.Tasks), fuzzMaxTasks)
		}
		if len(r.Tasks)+r.TasksDropped != r.TasksTotal {
			t.Fatalf("report %d: %d tasks kept + %d dropped != %d total", i, len(r.Tasks), r.TasksDropped, r.TasksTotal)
		}
		checkBounds(t, r)
		if _, err := json.Marshal(r); err != nil {
			t.Fatalf("report %d: %v", i, err)
		}
	}
}

// checkBounds asserts the per-report caps.
func checkBounds(t *testing.T, r *report.Report) {
	t.Helper()
	if len(r.Raw) > fuzzMaxLines {
		t.Fatalf("%d raw lines, cap %d", len(r.Raw), fuzzMaxLines)
	}
	n := 0
	for _, l := range r.Raw {
		n += len(l)
	}
	if n > fuzzMaxRawBytes {
		t.Fatalf("%d raw bytes, cap %d", n, fuzzMaxRawBytes)
	}
	if len(r.Victims)+len(r.AlreadyExiting) > fuzzMaxTasks {
		t.Fatalf("%d victims and %d exiting, cap %d", len(r.Victims), len(r.AlreadyExiting), fuzzMaxTasks)
	}
	for _, v := range r.Victims {
		if len(v.Comm) > maxNameBytes || len(v.SharedMM) > maxSharedMM {
			t.Fatalf("victim %d: comm %d bytes, %d shared", v.PID, len(v.Comm), len(v.SharedMM))
		}
	}
	if len(r.Problems) > maxProblems+1 {
		t.Fatalf("%d problems", len(r.Problems))
	}
	if len(r.Slab) > maxSlabRows {
		t.Fatalf("%d slab rows", len(r.Slab))
	}
	if m := r.MemInfo; m != nil && len(m.Other)+len(m.Nodes)+len(m.Zones) > maxMemInfoLines {
		t.Fatalf("%d Mem-Info lines", len(m.Other)+len(m.Nodes)+len(m.Zones))
	}
	if len(r.MemcgStats) > maxStatLines {
		t.Fatalf("%d stats blocks", len(r.MemcgStats))
	}
	if tr := r.Trigger; tr != nil && len(tr.CallTrace) > DefaultMaxCallTrace {
		t.Fatalf("%d call-trace lines", len(tr.CallTrace))
	}
	for _, tk := range r.Tasks {
		if len(tk.Name) > maxNameBytes {
			t.Fatalf("task %d: name %d bytes", tk.PID, len(tk.Name))
		}
	}
}

// FuzzLineRepair checks the repairs of lines a medium broke on arbitrary
// lines: a wrap join only ever puts the two lines together (or drops
// them), a cut line keeps a part of itself, a glued record is split into
// the two parts of its text, and a completed task header keeps its start.
func FuzzLineRepair(f *testing.F) {
	for _, pair := range [][2]string{
		{"Memory cgroup out of memory: Killed process 412377 (python3)", "total-vm:280440kB, anon-rss:258516kB, file-rss:408kB,"},
		{"Tasks in /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod", "5f95.slice are going to be killed due to memory.oom.group set"},
		{"oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=cri-containe", "rd-ab12.scope,task=python3,pid=412377,uid=0"},
		{"CPU: 2 PID: 412377 Comm: python3 Not tainted", "5.10.0-32-cloud-amd64 #1 Debian 5.10.223-1"},
		{"[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents", "oom_score_adj name"},
		{"Hardware name: Google Google Compute Engine/Google", "Compute Engine, BIOS Google 06/27/2024"},
		{"Memory cgroup stats for /kubepods/pod1: cache:0KB rss:", "40KB"},
	} {
		f.Add(pair[0], pair[1], uint8(72))
	}
	f.Fuzz(func(t *testing.T, prev, next string, width uint8) {
		p, err := New()
		if err != nil {
			t.Fatal(err)
		}
		p.cols = []column{colUID, colTGID, colTotalVM, colRSS, colPgtables, colSwapEnts, colOOMScoreAdj}
		if joined, ok := p.wrapJoin(prev, int(width), next); ok && joined != "" &&
			joined != prev+next && joined != prev+" "+next && !strings.HasPrefix(prev, joined) {
			t.Fatalf("wrapJoin(%q, %q) = %q: not the two lines", prev, next, joined)
		}
		line := trimSpace(prev)
		if whole, ok := cutShort(classify(line), line); ok && whole != "Memory cgroup stats:" &&
			!strings.HasPrefix(strings.TrimSuffix(strings.TrimSuffix(line, "..."), "…"), strings.TrimRight(whole, ": ")) {
			t.Fatalf("cutShort(%q) = %q: not a part of the line", line, whole)
		}
		if h, ok := completeTaskHeader(line); ok && !strings.HasPrefix(h, line[:strings.IndexByte(line, ']')+1]) {
			t.Fatalf("completeTaskHeader(%q) = %q", line, h)
		}
		rec := kmsg.Record{Text: prev + " " + next, HasMono: true, Mono: time.Second}
		if before, g, ok := glued(&rec); ok && (!strings.HasPrefix(rec.Text, before) || !strings.HasSuffix(rec.Text, g.Text) || g.Mono < rec.Mono) {
			t.Fatalf("glued(%q) = %q + %q", rec.Text, before, g.Text)
		}
	})
}

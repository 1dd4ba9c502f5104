package main

import (
	"strings"
	"testing"
	"time"

	"github.com/oomscope/oomscope/bench/internal/wire"
)

func TestKilledPID(t *testing.T) {
	tests := []struct {
		text string
		pid  int
		ok   bool
	}{
		{"Memory cgroup out of memory: Killed process 4242 (stormalloc) total-vm:1kB, anon-rss:2kB", 4242, true},
		{"Out of memory: Killed process 1 (init)", 1, true},
		{"Killed process 77 (x) total-vm:1kB", 77, true},
		{"oom_reaper: reaped process 4242 (stormalloc), now anon-rss:0kB", 0, false},
		{"Memory cgroup out of memory: Kill process 12 (a) score 3 or sacrifice child", 0, false},
		{"Killed process (x)", 0, false},
	}
	for _, tt := range tests {
		pid, ok := killedPID(tt.text)
		if pid != tt.pid || ok != tt.ok {
			t.Errorf("killedPID(%q) = %d, %v; want %d, %v", tt.text, pid, ok, tt.pid, tt.ok)
		}
	}
}

func TestPercentileMedian(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	if got := pct(d, 50); got != 50*time.Millisecond {
		t.Errorf("p50 = %v", got)
	}
	if got := pct(d, 99); got != 99*time.Millisecond {
		t.Errorf("p99 = %v", got)
	}
	if got := pct(d[:1], 99); got != time.Millisecond {
		t.Errorf("p99 of one = %v", got)
	}
	if got := percentile(nil, 50); got != "–" {
		t.Errorf("percentile(nil) = %q", got)
	}
	if got := dur(-1500 * time.Microsecond); got != "−1.5 ms" {
		t.Errorf("dur(-1.5ms) = %q", got)
	}
	if got := median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("median = %v", got)
	}
	if got := median([]float64{4, 1, 2, 3}); got != 2.5 {
		t.Errorf("median = %v", got)
	}
}

func TestScore(t *testing.T) {
	const cg = "/a/kubepods/burstable/pod1/c1"
	full := wire.FieldPID | wire.FieldComm | wire.FieldCgroup | wire.FieldLimit | wire.FieldUsage | wire.FieldRSS | wire.FieldTasks
	bare := wire.FieldPID | wire.FieldComm | wire.FieldRSS
	ks := []kill{
		{pid: 1, cgroup: cg, fields: full, latency: time.Millisecond, hasLat: true},
		{pid: 2, fields: bare, latency: 2 * time.Millisecond, hasLat: true},
		{pid: 3, cgroup: "/elsewhere", fields: full},
		{pid: 2, cgroup: cg, fields: full, latency: time.Second, hasLat: true}, // a second report of pid 2
	}
	tr := &truth{cgOf: map[int]string{1: cg, 2: cg, 3: cg}, cgroups: map[string]bool{cg: true}}
	r := score("x", ks, tr)
	if r.reported != 3 || r.attributed != 2 || r.wrong != 1 || r.dups != 1 {
		t.Errorf("score = reported %d attributed %d wrong %d dups %d; want 3 2 1 1", r.reported, r.attributed, r.wrong, r.dups)
	}
	if r.fields != 7 {
		t.Errorf("fields = %v, want 7 (the fullest report of each kill)", r.fields)
	}
	if len(r.lat) != 2 || r.lat[0]+r.lat[1] != 3*time.Millisecond {
		t.Errorf("latencies %v, want the first report's of each kill", r.lat)
	}
	// Two containers: a kill attributed to the other container is wrong.
	const cg2 = "/a/kubepods/burstable/pod2/c2"
	tr = &truth{cgOf: map[int]string{1: cg, 2: cg2}, cgroups: map[string]bool{cg: true, cg2: true}}
	r = score("x", []kill{{pid: 1, cgroup: cg2, fields: full}, {pid: 2, cgroup: cg2, fields: full}, {pid: 7, cgroup: cg}}, tr)
	if r.reported != 3 || r.attributed != 1 || r.wrong != 2 {
		t.Errorf("two containers: reported %d attributed %d wrong %d; want 3 1 2", r.reported, r.attributed, r.wrong)
	}
}

func TestReplaceBlock(t *testing.T) {
	b, e := markers("full")
	doc := "# Performance\n\nprose\n\n" + b + "\nold\n" + e + "\n\nmore prose\n"
	got := replaceBlock(doc, b, e, b+"\nnew\n"+e)
	if !strings.Contains(got, "\nnew\n") || strings.Contains(got, "old") || !strings.HasSuffix(got, "more prose\n") || !strings.HasPrefix(got, "# Performance\n\nprose") {
		t.Errorf("replaced:\n%s", got)
	}
	got = replaceBlock("# Performance\n", b, e, b+"\nnew\n"+e)
	if got != "# Performance\n\n"+b+"\nnew\n"+e+"\n" {
		t.Errorf("appended:\n%q", got)
	}
}

func TestGenerateSyslog(t *testing.T) {
	file := t.TempDir() + "/kern.log"
	gs, err := generateSyslog("../../..", file, 4<<20)
	if err != nil {
		t.Fatal(err)
	}
	if gs.bytes < 4<<20 || gs.reports == 0 || gs.blocks == 0 || len(gs.sources) == 0 {
		t.Fatalf("generated %+v", gs)
	}
}

func TestMakeCommand(t *testing.T) {
	for _, tt := range []struct {
		cfg  config
		want string
	}{
		{config{command: "stormbench "}, "make bench-live"},
		{config{command: "stormbench -short", short: true}, "make bench-live SHORT=1"},
		{config{command: "stormbench -pprof-dir ../.cache/stormbench"}, `make bench-live BENCH_LIVE_FLAGS="-pprof-dir ../.cache/stormbench"`},
	} {
		if got := makeCommand(tt.cfg); got != tt.want {
			t.Errorf("makeCommand(%q) = %q, want %q", tt.cfg.command, got, tt.want)
		}
	}
}

package cgroupfs

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/oomscope/oomscope/report"
)

// mkReport is a memcg report with n killed victims.
func mkReport(n int) *report.Report {
	r := &report.Report{Kind: report.KindMemcg}
	for i := range n {
		r.Victims = append(r.Victims, report.Victim{PID: 100 + i, Comm: "x"})
	}
	return r
}

// counterTree is a fixture cgroup root and proc root whose counters a test
// moves.
type counterTree struct {
	t              *testing.T
	cgRoot, proc   string
	version        string
	cgroup, cgFile string
}

func newCounterTree(t *testing.T, version, cgroup string) *counterTree {
	t.Helper()
	base := t.TempDir()
	ct := &counterTree{t: t, cgRoot: filepath.Join(base, "cgroup"), proc: filepath.Join(base, "proc"), version: version, cgroup: cgroup}
	mem := ct.cgRoot
	ct.cgFile = "memory.events.local"
	if version == report.CgroupV1 {
		mem = filepath.Join(ct.cgRoot, "memory")
		ct.cgFile = "memory.oom_control"
	}
	for _, d := range []string{filepath.Join(mem, cgroup), ct.proc} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if version == report.CgroupV2 {
		ct.write(filepath.Join(ct.cgRoot, "cgroup.controllers"), "memory\n")
	}
	return ct
}

func (ct *counterTree) write(p, s string) {
	ct.t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		ct.t.Fatal(err)
	}
}

// set moves the counters: node /proc/vmstat oom_kill and the cgroup's
// oom_kill (negative: remove the cgroup).
func (ct *counterTree) set(node uint64, cg int64) {
	ct.t.Helper()
	ct.write(filepath.Join(ct.proc, "vmstat"), fmt.Sprintf("pgfault 12\noom_kill %d\npgmajfault 1\n", node))
	mem := ct.cgRoot
	if ct.version == report.CgroupV1 {
		mem = filepath.Join(ct.cgRoot, "memory")
	}
	dir := filepath.Join(mem, ct.cgroup)
	if cg < 0 {
		if err := os.RemoveAll(dir); err != nil {
			ct.t.Fatal(err)
		}
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		ct.t.Fatal(err)
	}
	if ct.version == report.CgroupV1 {
		ct.write(filepath.Join(dir, ct.cgFile), fmt.Sprintf("oom_kill_disable 0\nunder_oom 0\noom_kill %d\n", cg))
	} else {
		ct.write(filepath.Join(dir, ct.cgFile), fmt.Sprintf("low 0\nhigh 0\nmax 4\noom 2\noom_kill %d\noom_group_kill 0\n", cg))
	}
}

func TestKillCounters(t *testing.T) {
	type step struct {
		sec      int // when the report is checked (seconds from the start)
		node     uint64
		cg       int64 // -1: cgroup removed
		kills    int
		group    bool
		replay   bool // read late: counted, not compared
		old      bool // with replay: the kill happened before the baseline
		wantNode uint64
		wantCg   uint64
	}
	tests := []struct {
		name    string
		version string
		steps   []step
	}{
		{"v2 every kill reported", report.CgroupV2, []step{
			{sec: 0, node: 5, cg: 1, kills: 1},
			{sec: 20, node: 6, cg: 2, kills: 1},
			{sec: 40, node: 8, cg: 4, kills: 2},
			{sec: 60, node: 8, cg: 4, kills: 0},
		}},
		{"v2 kills lost between reports", report.CgroupV2, []step{
			{sec: 0, node: 5, cg: 1, kills: 1},                           // baseline
			{sec: 5, node: 9, cg: 4, kills: 1},                           // 3 node kills, 2 of this cgroup, not reported: maybe still coming
			{sec: 25, node: 10, cg: 5, kills: 1, wantNode: 3, wantCg: 2}, // the reading at 5 s is judged: missed
			{sec: 30, node: 12, cg: 6, kills: 1},                         // another cgroup's kill not reported
			{sec: 45, node: 13, cg: 7, kills: 1, wantNode: 1},            // the reading at 30 s is judged
			{sec: 70, node: 13, cg: 7, kills: 0},                         // a report of an exiting victim: nothing counted
		}},
		{"v1 counters", report.CgroupV1, []step{
			{sec: 0, node: 0, cg: 0, kills: 1},
			{sec: 5, node: 3, cg: 3, kills: 1},
			{sec: 30, node: 4, cg: 4, kills: 1, wantNode: 2, wantCg: 2},
		}},
		{"cgroup recreated resets", report.CgroupV2, []step{
			{sec: 0, node: 1, cg: 3, kills: 1},
			{sec: 20, node: 2, cg: -1, kills: 1},
			{sec: 40, node: 3, cg: 1, kills: 1}, // new cgroup: baseline again
			{sec: 60, node: 4, cg: 0, kills: 1}, // counter went back: reset
			{sec: 80, node: 6, cg: 2, kills: 1},
			{sec: 100, node: 7, cg: 3, kills: 1, wantNode: 1, wantCg: 1},
		}},
		{"oom group resets the baselines", report.CgroupV2, []step{
			{sec: 0, node: 1, cg: 1, kills: 1},
			{sec: 20, node: 6, cg: 9, kills: 4, group: true}, // the kernel counts the chosen victim twice
			{sec: 40, node: 7, cg: 10, kills: 1},
			{sec: 60, node: 8, cg: 11, kills: 1},
		}},
		{"replayed reports count but are not compared", report.CgroupV2, []step{
			{sec: 0, node: 1, cg: 1, kills: 1, replay: true, old: true}, // before any baseline: ignored
			{sec: 20, node: 1, cg: 1, kills: 1},                         // baseline
			{sec: 25, node: 3, cg: 3, kills: 1, replay: true},           // a backlog: counted, not compared
			{sec: 26, node: 3, cg: 3, kills: 1, replay: true},
			{sec: 27, node: 3, cg: 3, kills: 1, replay: true, old: true}, // from before the baseline: not counted
			{sec: 45, node: 4, cg: 4, kills: 1},
			{sec: 70, node: 5, cg: 5, kills: 1},
		}},
	}
	const cg = "/kubepods/burstable/pod" + fixturePodUID + "/" + fixtureCID
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct := newCounterTree(t, tt.version, cg)
			ct.set(0, 0)
			reg := prometheus.NewPedanticRegistry()
			k, err := NewKillCounters(mustFS(t, ct.cgRoot), ct.proc, reg)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
			var clock time.Time
			k.now = func() time.Time { return clock }
			var totalNode, totalCg uint64
			for i, s := range tt.steps {
				clock = start.Add(time.Duration(s.sec) * time.Second)
				ct.set(s.node, s.cg)
				r := mkReport(s.kills)
				if s.group {
					r.OOMGroup = "/kubepods"
				}
				w := clock
				if s.old {
					w = start.Add(-time.Hour)
				}
				r.Last.Wall = &w
				got, errs := k.Check(r, cg, !s.replay)
				if len(errs) != 0 {
					t.Fatalf("step %d: errors %v", i, errs)
				}
				var gotNode, gotCg uint64
				for _, m := range got {
					if m.Cgroup == "" {
						gotNode += m.Count
					} else {
						gotCg += m.Count
						if m.Cgroup != cg || !strings.Contains(m.Counter, "oom_kill") || m.Explanation == "" {
							t.Errorf("step %d: finding %+v", i, m)
						}
					}
				}
				if gotNode != s.wantNode || gotCg != s.wantCg {
					t.Errorf("step %d: missed node %d cgroup %d, want %d %d (%+v)", i, gotNode, gotCg, s.wantNode, s.wantCg, got)
				}
				totalNode += s.wantNode
				totalCg += s.wantCg
			}
			got := gatherMissed(t, reg)
			if len(got) != 2 || got["node"] != float64(totalNode) || got["cgroup"] != float64(totalCg) {
				t.Errorf("metric = %v, want node %d cgroup %d", got, totalNode, totalCg)
			}
		})
	}
}

// TestKillCountersSteadyStream is a workload that is OOM-killed every 3 s
// for 10 minutes, each report published 3 s after its kill, so that every
// counter reading already includes a kill whose report is still on its
// way: nothing may be flagged. Then the same stream with two reports lost
// must flag exactly two.
func TestKillCountersSteadyStream(t *testing.T) {
	for _, lost := range []map[int]bool{{}, {40: true, 120: true}} {
		ct := newCounterTree(t, report.CgroupV2, "/w")
		k, err := NewKillCounters(mustFS(t, ct.cgRoot), ct.proc, nil)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
		var clock time.Time
		k.now = func() time.Time { return clock }
		var flagged uint64
		for i := 1; i < 200; i++ {
			// Kills happen at 0, 3, 6, ... s; at 3i s the report of the
			// kill at 3(i-1) s is checked, and kill i is already counted.
			clock = start.Add(time.Duration(3*i) * time.Second)
			ct.set(uint64(i+1), int64(i+1))
			if lost[i-1] {
				continue // its report never comes
			}
			r := mkReport(1)
			w := start.Add(time.Duration(3*(i-1)) * time.Second)
			r.Last.Wall = &w
			got, errs := k.Check(r, "/w", true)
			if len(errs) != 0 {
				t.Fatal(errs)
			}
			for _, m := range got {
				if m.Cgroup == "/w" {
					flagged += m.Count
				}
			}
		}
		if flagged != uint64(len(lost)) {
			t.Errorf("%d reports lost: %d kills flagged as missed", len(lost), flagged)
		}
	}
}

func TestKillCountersErrors(t *testing.T) {
	ct := newCounterTree(t, report.CgroupV2, "/a")
	k, err := NewKillCounters(mustFS(t, ct.cgRoot), ct.proc, nil)
	if err != nil {
		t.Fatal(err)
	}
	// No /proc/vmstat, no counter file: errors, no findings.
	got, errs := k.Check(mkReport(1), "/a", true)
	if len(got) != 0 || len(errs) != 2 {
		t.Fatalf("got %v, errors %v; want 2 errors", got, errs)
	}
	// A vmstat without oom_kill (kernel < 4.13).
	ct.write(filepath.Join(ct.proc, "vmstat"), "pgfault 1\n")
	if _, errs := k.Check(mkReport(1), "", true); len(errs) != 1 || !strings.Contains(errs[0].Error(), "no oom_kill") {
		t.Errorf("errors %v, want one naming the missing oom_kill", errs)
	}
	// Registering twice on one registry fails.
	reg := prometheus.NewRegistry()
	if _, err := NewKillCounters(nil, ct.proc, reg); err != nil {
		t.Fatal(err)
	}
	if _, err := NewKillCounters(nil, ct.proc, reg); err == nil {
		t.Error("second registration: no error")
	}
}

func TestKillCountersEvictsOldest(t *testing.T) {
	k, err := NewKillCounters(nil, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range maxTrackedCgroups + 10 {
		k.observeCgroup(fmt.Sprintf("/c%d", i), 1, 1, observation{live: true})
	}
	if len(k.cg) != maxTrackedCgroups || len(k.order) != maxTrackedCgroups {
		t.Fatalf("tracked %d/%d, want %d", len(k.cg), len(k.order), maxTrackedCgroups)
	}
	if _, ok := k.cg["/c0"]; ok {
		t.Error("oldest cgroup not evicted")
	}
}

// gatherMissed returns oomscope_missed_oom_kills_total by scope label.
func gatherMissed(t *testing.T, reg prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "oomscope_missed_oom_kills_total" || mf.GetType() != dto.MetricType_COUNTER {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "scope" {
					out[l.GetValue()] = m.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}

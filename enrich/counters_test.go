package enrich

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/oomscope/oomscope/oomparse"
)

// mkReport is a memcg report with n killed victims.
func mkReport(n int) *oomparse.Report {
	r := &oomparse.Report{Kind: oomparse.KindMemcg}
	for i := range n {
		r.Victims = append(r.Victims, oomparse.Victim{PID: 100 + i, Comm: "x"})
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
	if version == CgroupV1 {
		mem = filepath.Join(ct.cgRoot, "memory")
		ct.cgFile = "memory.oom_control"
	}
	for _, d := range []string{filepath.Join(mem, cgroup), ct.proc} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if version == CgroupV2 {
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
	if ct.version == CgroupV1 {
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
	if ct.version == CgroupV1 {
		ct.write(filepath.Join(dir, ct.cgFile), fmt.Sprintf("oom_kill_disable 0\nunder_oom 0\noom_kill %d\n", cg))
	} else {
		ct.write(filepath.Join(dir, ct.cgFile), fmt.Sprintf("low 0\nhigh 0\nmax 4\noom 2\noom_kill %d\noom_group_kill 0\n", cg))
	}
}

func TestKillCounters(t *testing.T) {
	type step struct {
		node           uint64
		cg             int64 // -1: cgroup removed
		kills          int
		group          bool
		wantNode       uint64
		wantCg         uint64
		wantCgroupErrs bool
	}
	tests := []struct {
		name    string
		version string
		steps   []step
	}{
		{"v2 every kill reported", CgroupV2, []step{
			{node: 5, cg: 1, kills: 1},
			{node: 6, cg: 2, kills: 1},
			{node: 8, cg: 4, kills: 2},
		}},
		{"v2 kills lost between reports", CgroupV2, []step{
			{node: 5, cg: 1, kills: 1},                          // baseline
			{node: 9, cg: 4, kills: 1, wantNode: 3, wantCg: 2},  // 3 node kills, 2 of this cgroup, unreported
			{node: 10, cg: 5, kills: 1},                         // back in step
			{node: 12, cg: 5, kills: 1, wantNode: 1},            // another cgroup's kill went missing
			{node: 12, cg: 5, kills: 0},                         // a report of an exiting victim: nothing counted
			{node: 14, cg: 7, kills: 1, wantNode: 1, wantCg: 1}, // one lost
		}},
		{"v1 counters", CgroupV1, []step{
			{node: 0, cg: 0, kills: 1}, // counted before the read: baseline
			{node: 3, cg: 3, kills: 1, wantNode: 2, wantCg: 2},
		}},
		{"counted early then forgiven", CgroupV2, []step{
			{node: 1, cg: 1, kills: 1},
			{node: 3, cg: 3, kills: 1, wantNode: 1, wantCg: 1}, // the next kill already counted
			{node: 3, cg: 3, kills: 1},                         // its own report: not counted twice
		}},
		{"cgroup recreated resets", CgroupV2, []step{
			{node: 1, cg: 3, kills: 1},
			{node: 2, cg: -1, kills: 1},
			{node: 3, cg: 1, kills: 1}, // new cgroup: baseline again
			{node: 4, cg: 0, kills: 1}, // counter went back: reset
			{node: 6, cg: 2, kills: 1, wantNode: 1, wantCg: 1},
		}},
		{"oom group skips the cgroup", CgroupV2, []step{
			{node: 1, cg: 1, kills: 1},
			{node: 4, cg: 9, kills: 3, group: true},
			{node: 5, cg: 10, kills: 1},
		}},
	}
	const cg = "/kubepods/burstable/pod" + fixturePodUID + "/" + fixtureCID
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct := newCounterTree(t, tt.version, cg)
			ct.set(0, 0)
			reg := prometheus.NewPedanticRegistry()
			k, err := newKillCounters(mustFS(t, ct.cgRoot), ct.proc, reg)
			if err != nil {
				t.Fatal(err)
			}
			var totalNode, totalCg uint64
			for i, s := range tt.steps {
				ct.set(s.node, s.cg)
				r := mkReport(s.kills)
				if s.group {
					r.OOMGroup = "/kubepods"
				}
				got, errs := k.check(r, cg)
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

func TestKillCountersErrors(t *testing.T) {
	ct := newCounterTree(t, CgroupV2, "/a")
	k, err := newKillCounters(mustFS(t, ct.cgRoot), ct.proc, nil)
	if err != nil {
		t.Fatal(err)
	}
	// No /proc/vmstat, no counter file: errors, no findings.
	got, errs := k.check(mkReport(1), "/a")
	if len(got) != 0 || len(errs) != 2 {
		t.Fatalf("got %v, errors %v; want 2 errors", got, errs)
	}
	// A vmstat without oom_kill (kernel < 4.13).
	ct.write(filepath.Join(ct.proc, "vmstat"), "pgfault 1\n")
	if _, errs := k.check(mkReport(1), ""); len(errs) != 1 || !strings.Contains(errs[0].Error(), "no oom_kill") {
		t.Errorf("errors %v, want one naming the missing oom_kill", errs)
	}
	// Registering twice on one registry fails.
	reg := prometheus.NewRegistry()
	if _, err := newKillCounters(nil, ct.proc, reg); err != nil {
		t.Fatal(err)
	}
	if _, err := newKillCounters(nil, ct.proc, reg); err == nil {
		t.Error("second registration: no error")
	}
}

func TestKillCountersEvictsOldest(t *testing.T) {
	k, err := newKillCounters(nil, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range maxTrackedCgroups + 10 {
		k.observeCgroup(fmt.Sprintf("/c%d", i), 1, 1)
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

package counterattr

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/oomscope/oomscope/enrich/cgroupfs"
	"github.com/oomscope/oomscope/enrich/procattr"
	"github.com/oomscope/oomscope/kmsg"
	"github.com/oomscope/oomscope/report"
)

// fakeKernel plays the kernel's side: kills raise the counters, then
// print their lines, in that order, as __oom_kill_process does. Unit tests
// only: the live tests (e2e/live, the storm harness) prove the Tracker on
// the real kernel.
type fakeKernel struct {
	node   uint64
	cg     map[string]cgroupfs.OOMKillCounter
	kids   map[string][]string
	queue  []kmsg.Record
	seq    uint64
	lost   bool
	onWait func() // runs at the Tracker's next Wait (a kill printed while it settles)
}

func newFakeKernel(cgroups ...string) *fakeKernel {
	k := &fakeKernel{cg: map[string]cgroupfs.OOMKillCounter{}, kids: map[string][]string{}}
	for i, c := range cgroups {
		k.cg[c] = cgroupfs.OOMKillCounter{Inode: uint64(100 + i), Local: true}
	}
	return k
}

func (k *fakeKernel) print(facility uint8, text string) {
	k.seq++
	k.queue = append(k.queue, kmsg.Record{Seq: k.seq, HasSeq: true, Facility: facility, Text: text})
}

// count raises the counters of a kill in cg (not printed yet).
func (k *fakeKernel) count(cg string) {
	k.node++
	c := k.cg[cg]
	c.Kills++
	k.cg[cg] = c
}

// killLine prints a kill's line.
func (k *fakeKernel) killLine(pid int, comm string) {
	k.print(0, fmt.Sprintf("Memory cgroup out of memory: Killed process %d (%s) total-vm:10000kB, anon-rss:8000kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:100kB oom_score_adj:0", pid, comm))
}

// full is a kill whose report the kernel printed whole.
func (k *fakeKernel) full(oomCg, cg string, pid int, comm string) {
	k.print(0, comm+" invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0")
	k.print(0, fmt.Sprintf("oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=%s,task_memcg=%s,task=%s,pid=%d,uid=0", oomCg, cg, comm, pid))
	k.count(cg)
	k.killLine(pid, comm)
}

// bare is a kill the kernel rate-limited to its line.
func (k *fakeKernel) bare(cg string, pid int, comm string) {
	k.count(cg)
	k.killLine(pid, comm)
}

func (k *fakeKernel) Read(dst []kmsg.Record) ([]kmsg.Record, bool, error) {
	dst = append(dst, k.queue...)
	k.queue = k.queue[:0]
	lost := k.lost
	k.lost = false
	return dst, lost, nil
}

func (k *fakeKernel) Wait(time.Duration) error {
	if f := k.onWait; f != nil {
		k.onWait = nil
		f()
	}
	return nil
}

func (k *fakeKernel) Close() error          { return nil }
func (k *fakeKernel) Node() (uint64, error) { return k.node, nil }
func (k *fakeKernel) Cgroup(p string) (cgroupfs.OOMKillCounter, error) {
	c, ok := k.cg[p]
	if !ok {
		return c, fmt.Errorf("%s: %w", p, cgroupfs.ErrCgroupGone)
	}
	return c, nil
}
func (k *fakeKernel) Children(p string, max int) ([]string, error) { return k.kids[p], nil }

// clock moves by a millisecond at each call, so that settling ends.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { c.t = c.t.Add(time.Millisecond); return c.t }

func newTracker(t *testing.T, k *fakeKernel) (*Tracker, *prometheus.Registry) {
	t.Helper()
	return newTrackerWithProc(t, k, nil)
}

// observe hands the Tracker the daemon's view of the last kill line.
func observe(tr *Tracker, pid int, comm string) {
	tr.Observe(kmsg.Record{Text: fmt.Sprintf("Memory cgroup out of memory: Killed process %d (%s) total-vm:1kB", pid, comm)})
}

const (
	pod = "/kubepods/burstable/pod1"
	cA  = pod + "/aaaa"
	cB  = "/kubepods/burstable/pod2/bbbb"
	cC  = "/kubepods/besteffort/pod3/cccc"
)

func want(t *testing.T, tr *Tracker, pid int, comm, cg string) {
	t.Helper()
	r, ok := tr.Victim(pid, comm)
	switch {
	case cg == "" && ok:
		t.Errorf("pid %d attributed to %s, want no attribution", pid, r.Cgroup)
	case cg != "" && !ok:
		t.Errorf("pid %d not attributed, want %s", pid, cg)
	case ok && (r.Cgroup != cg || r.Source != report.AttributionCounters):
		t.Errorf("pid %d attributed to %s (%s), want %s (counters)", pid, r.Cgroup, r.Source, cg)
	}
}

func outcome(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == name {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func TestStormInOneContainer(t *testing.T) {
	k := newFakeKernel(cA)
	tr, reg := newTracker(t, k)
	k.full(cA, cA, 10, "app")
	observe(tr, 10, "app") // first reading: the baseline
	for pid := 11; pid < 40; pid++ {
		k.bare(cA, pid, "app")
		observe(tr, pid, "app")
	}
	for pid := 11; pid < 40; pid++ {
		want(t, tr, pid, "app", cA)
	}
	want(t, tr, 10, "app", "") // its report names it; the counters do not repeat it
	if got := outcome(t, reg, OutcomeAttributed); got != 29 {
		t.Errorf("attributed batches = %v, want 29", got)
	}
	if n := testutil.CollectAndCount(reg); n == 0 {
		t.Error("no metrics registered")
	}
}

func TestSplitStorm(t *testing.T) {
	k := newFakeKernel(cA, cB)
	tr, _ := newTracker(t, k)
	k.full(cA, cA, 10, "a")
	k.full(cB, cB, 20, "b")
	observe(tr, 10, "a")
	observe(tr, 20, "b")
	for i := 0; i < 20; i++ {
		cg, pid := cA, 100+i
		if i%3 == 0 {
			cg = cB
		}
		k.bare(cg, pid, "same") // the same name in both containers
		observe(tr, pid, "same")
	}
	for i := 0; i < 20; i++ {
		cg := cA
		if i%3 == 0 {
			cg = cB
		}
		want(t, tr, 100+i, "same", cg)
	}
}

func TestTwoKillsInTwoCgroupsBetweenReadingsAreLeft(t *testing.T) {
	k := newFakeKernel(cA, cB)
	tr, reg := newTracker(t, k)
	k.full(cA, cA, 10, "a")
	k.full(cB, cB, 20, "b")
	observe(tr, 10, "a")
	// The daemon was slow: two bare kills before it read either line.
	k.bare(cA, 11, "a")
	k.bare(cB, 21, "b")
	observe(tr, 11, "a")
	observe(tr, 21, "b")
	want(t, tr, 11, "a", "")
	want(t, tr, 21, "b", "")
	if outcome(t, reg, OutcomeAmbiguous) != 1 {
		t.Error("want one ambiguous batch")
	}
	// Two kills in one cgroup between readings are attributed.
	k.bare(cA, 12, "a")
	k.bare(cA, 13, "a")
	observe(tr, 12, "a")
	observe(tr, 13, "a")
	want(t, tr, 12, "a", cA)
	want(t, tr, 13, "a", cA)
}

func TestKillInAnUnwatchedCgroupIsLeft(t *testing.T) {
	k := newFakeKernel(cA, cC)
	tr, reg := newTracker(t, k)
	k.full(cA, cA, 10, "a")
	observe(tr, 10, "a")
	k.bare(cC, 30, "c") // cC was never named by a report
	observe(tr, 30, "c")
	want(t, tr, 30, "c", "")
	if outcome(t, reg, OutcomeAmbiguous) != 1 {
		t.Error("want one ambiguous batch")
	}
}

func TestKillCountedBeforeItsLineIsNotMisattributed(t *testing.T) {
	k := newFakeKernel(cA, cB)
	tr, reg := newTracker(t, k)
	k.full(cA, cA, 10, "a")
	k.full(cB, cB, 20, "b")
	observe(tr, 10, "a")
	observe(tr, 20, "b")
	// A bare kill in cA is printed; then a kill in cB is counted, but its
	// line is printed only after the Tracker's reading and settle time
	// (a preempted killer).
	k.bare(cA, 11, "a")
	k.count(cB)
	observe(tr, 11, "a")
	want(t, tr, 11, "a", "") // cB rose too: the node says 2 kills, 1 line
	if outcome(t, reg, OutcomeMismatch) != 1 {
		t.Error("want one mismatch")
	}
	k.killLine(21, "b")
	observe(tr, 21, "b")
	// The stretch went on: 2 lines, 2 kills, two cgroups rose by one.
	want(t, tr, 11, "a", "")
	want(t, tr, 21, "b", "")
	k.bare(cB, 22, "b")
	observe(tr, 22, "b")
	want(t, tr, 22, "b", cB)
}

func TestKillPrintedWhileSettlingIsNoBoundary(t *testing.T) {
	k := newFakeKernel(cA, cB)
	tr, _ := newTracker(t, k)
	k.full(cA, cA, 10, "a")
	k.full(cB, cB, 20, "b")
	observe(tr, 10, "a")
	observe(tr, 20, "b")
	k.bare(cA, 11, "a")
	// Counted before the reading, printed while the Tracker settles.
	k.count(cB)
	k.onWait = func() { k.killLine(21, "b") }
	observe(tr, 11, "a")
	observe(tr, 21, "b")
	want(t, tr, 11, "a", "")
	want(t, tr, 21, "b", "")
	k.bare(cA, 12, "a")
	observe(tr, 12, "a")
	want(t, tr, 12, "a", cA)
}

func TestLostRecordsGiveUp(t *testing.T) {
	k := newFakeKernel(cA)
	tr, reg := newTracker(t, k)
	k.full(cA, cA, 10, "a")
	observe(tr, 10, "a")
	k.bare(cA, 11, "a")
	k.lost = true
	observe(tr, 11, "a")
	want(t, tr, 11, "a", "")
	if outcome(t, reg, OutcomeLost) != 1 {
		t.Error("want one lost")
	}
	// The reading after the loss is a new baseline.
	k.bare(cA, 12, "a")
	observe(tr, 12, "a")
	want(t, tr, 12, "a", cA)
}

func TestGroupKillMembersAreLeft(t *testing.T) {
	k := newFakeKernel(cA, pod+"/bbbb")
	tr, reg := newTracker(t, k)
	k.full(cA, cA, 10, "a")
	observe(tr, 10, "a")
	k.full(pod, cA, 11, "a")
	k.print(0, "Tasks in "+pod+" are going to be killed due to memory.oom.group set")
	k.bare(pod+"/bbbb", 12, "b")
	observe(tr, 11, "a")
	observe(tr, 12, "b")
	want(t, tr, 12, "b", "")
	if outcome(t, reg, OutcomeGroup) != 1 {
		t.Error("want one oom_group batch")
	}
}

func TestRecreatedCgroupIsNotCompared(t *testing.T) {
	k := newFakeKernel(cA)
	tr, _ := newTracker(t, k)
	k.full(cA, cA, 10, "a")
	observe(tr, 10, "a")
	k.cg[cA] = cgroupfs.OOMKillCounter{Inode: 999, Local: true, Kills: 0} // removed, made again
	k.bare(cA, 11, "a")
	observe(tr, 11, "a")
	want(t, tr, 11, "a", "")
	k.bare(cA, 12, "a")
	observe(tr, 12, "a")
	want(t, tr, 12, "a", cA)
}

func TestChildrenOfTheCgroupUnderOOMAreWatched(t *testing.T) {
	sib := pod + "/bbbb"
	k := newFakeKernel(cA, sib, pod)
	k.kids[pod] = []string{cA, sib}
	tr, _ := newTracker(t, k)
	k.full(pod, cA, 10, "a") // the pod's limit; the report names container a
	observe(tr, 10, "a")
	k.bare(sib, 20, "b") // a kill in the sibling no report named
	observe(tr, 20, "b")
	want(t, tr, 20, "b", sib)
}

func TestUserSpaceRecordsAreIgnored(t *testing.T) {
	k := newFakeKernel(cA)
	tr, _ := newTracker(t, k)
	k.full(cA, cA, 10, "a")
	observe(tr, 10, "a")
	// A forged kill line written to /dev/kmsg by user space (facility 1).
	k.print(1, "Memory cgroup out of memory: Killed process 66 (evil) total-vm:1kB, anon-rss:1kB, file-rss:0kB")
	k.bare(cA, 11, "a")
	observe(tr, 11, "a")
	want(t, tr, 11, "a", cA)
	want(t, tr, 66, "evil", "")
}

func TestHostileNames(t *testing.T) {
	k := newFakeKernel(cA)
	tr, _ := newTracker(t, k)
	k.full(cA, cA, 10, "a")
	observe(tr, 10, "a")
	name := "x) total-vm:1" // a name holding the line's own delimiter
	k.bare(cA, 11, name)
	observe(tr, 11, name)
	r, ok := tr.Victim(11, name)
	if ok && (r.Cgroup != cA || !strings.Contains(r.Comm, "x")) {
		t.Errorf("hostile name attributed to %q as %q", r.Cgroup, r.Comm)
	}
}

func TestNilTracker(t *testing.T) {
	var tr *Tracker
	tr.Observe(kmsg.Record{Text: "Killed process 1 (a)"})
	if _, ok := tr.Victim(1, "a"); ok {
		t.Error("nil tracker attributed")
	}
	if err := tr.Close(); err != nil {
		t.Error(err)
	}
	if _, err := New(Config{}); err == nil {
		t.Error("New without a log: no error")
	}
}

// fakeProc writes a /proc with one process per (pid, comm, cgroup).
func fakeProc(t *testing.T, procs map[int][2]string) string {
	t.Helper()
	root := t.TempDir()
	for pid, pc := range procs {
		d := filepath.Join(root, strconv.Itoa(pid))
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "comm"), []byte(pc[0]+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "cgroup"), []byte("4:memory:"+pc[1]+"\n0::/\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func newTrackerWithProc(t *testing.T, k *fakeKernel, proc *procattr.Tracker) (*Tracker, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	c := &clock{t: time.Unix(1e9, 0)}
	tr, err := New(Config{Log: k, Counters: k, Now: c.now, Registerer: reg, Proc: proc})
	if err != nil {
		t.Fatal(err)
	}
	return tr, reg
}

// TestProcReadingsSeparateTwoKills: two kills in two cgroups between
// readings; /proc still shows one of them, so the counters give the other.
func TestProcReadingsSeparateTwoKills(t *testing.T) {
	k := newFakeKernel(cA, cB)
	proc := procattr.New(fakeProc(t, map[int][2]string{21: {"b", cB}}))
	tr, _ := newTrackerWithProc(t, k, proc)
	k.full(cA, cA, 10, "a")
	k.full(cB, cB, 20, "b")
	observe(tr, 10, "a")
	k.bare(cA, 11, "a") // gone from /proc
	k.bare(cB, 21, "b")
	observe(tr, 11, "a")
	want(t, tr, 11, "a", cA)
	want(t, tr, 21, "b", "") // /proc's to give, not the counters'
	if r, ok := proc.Victim(21, "b"); !ok || r.Cgroup != cB {
		t.Errorf("/proc reading of 21: %+v %v", r, ok)
	}
}

// TestProcReadingTheCountersContradict: /proc says cB, but only cA rose:
// the batch is inconsistent and nothing in it is attributed.
func TestProcReadingTheCountersContradict(t *testing.T) {
	k := newFakeKernel(cA, cB)
	proc := procattr.New(fakeProc(t, map[int][2]string{21: {"b", cB}}))
	tr, reg := newTrackerWithProc(t, k, proc)
	k.full(cA, cA, 10, "a")
	k.full(cB, cB, 20, "b")
	observe(tr, 10, "a")
	k.bare(cA, 11, "a")
	k.bare(cA, 21, "b") // counted in cA, /proc (wrongly) says cB
	observe(tr, 11, "a")
	want(t, tr, 11, "a", "")
	if outcome(t, reg, OutcomeInconsist) != 1 {
		t.Error("want one inconsistent batch")
	}
}

// TestSiblingsOfTheVictimAreWatched: each container of a pod hit its own
// limit; the kernel named the first, a later kill in another container of
// the pod came bare.
func TestSiblingsOfTheVictimAreWatched(t *testing.T) {
	sib := pod + "/bbbb"
	k := newFakeKernel(cA, sib)
	k.kids[pod] = []string{cA, sib}
	tr, _ := newTracker(t, k)
	k.full(cA, cA, 10, "a")
	observe(tr, 10, "a")
	k.bare(sib, 20, "b")
	observe(tr, 20, "b")
	want(t, tr, 20, "b", sib)
}

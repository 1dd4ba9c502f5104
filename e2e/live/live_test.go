// Package live_test runs real OOM kills on the machine the tests run on and
// checks what oomscope's live path (kmsg.OpenLive + oomparse.Parser, as the
// daemon runs them) makes of them against what the test knows in advance and
// against the kernel's own counters.
//
// It needs root, a readable /dev/kmsg and a writable memory cgroup
// controller (cgroup v1, or v2 with the memory controller delegated to the
// test's own cgroup); CI runs it as root. Every cgroup it creates is below
// its own memory cgroup and removed at the end (see package cgscratch).
//
// With OOMSCOPE_E2E_CAPTURE=1 it also saves the raw kernel records of some
// scenarios as golden inputs in testdata/live (regenerate their goldens with
// go test ./oomparse -run TestGolden/live -update).
package live_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/oomscope/oomscope/e2e/kernellock"
	"github.com/oomscope/oomscope/enrich/cgpath"
	"github.com/oomscope/oomscope/internal/cgscratch"
	"github.com/oomscope/oomscope/report"
)

// pageSize is the page size of the machine (x86-64, arm64 with 4k pages).
var pageSize = uint64(os.Getpagesize())

// usageSlack is how far a cgroup's usage printed in an OOM report may be
// from its limit. The failing charge is one page, but the usage counter is
// read while other CPUs charge and uncharge: a charge attempt adds its
// pages before it checks the limit and takes them back when over it
// (page_counter_try_charge), and the per-CPU charge stock (up to
// MEMCG_CHARGE_BATCH = 64 pages per CPU) is drained during the OOM. Seen on
// 6.18: limit+1 page and limit-64 pages. Scenarios with many live processes
// allow more (see manyTasks).
var defaultUsageSlack = 64 * pageSize * uint64(runtime.NumCPU())

// kill is one OOM kill the test caused and what its report must say.
type kill struct {
	scenario    string
	victim      int
	comm        string
	oomMemcg    string // limiting cgroup
	taskMemcg   string // victim's cgroup
	podUID      string
	containerID string
	limit       uint64
	trigger     int
	triggerComm string
	tasks       map[int]string // the task table: every live process of the limiting cgroup's tree
	partialOK   bool           // the kernel may have rate limited the header
	afterBurst  bool           // the first kill after a rate-limited burst
	usageSlack  uint64         // allowed |usage - limit| in the report, 0 = defaultUsageSlack
}

// scenario is one way of getting the kernel to kill.
type scenario struct {
	name    string
	capture string // testdata/live case name prefix when captured, "" = never
	// fresh: wait until the kernel's oom header rate limit (10 per 5 s)
	// has a fresh window before running.
	fresh bool
	run   func(t *testing.T, e *env) []kill
}

// env is what scenarios share.
type env struct {
	h    *cgscratch.Hierarchy
	bins map[string]string
	// leaves are the cgroups with processes of each scenario (kernel
	// counters are read from them).
	leaves map[string][]*cgscratch.Cgroup
}

func (e *env) create(t *testing.T, scenario, rel string, leaf bool) *cgscratch.Cgroup {
	t.Helper()
	cg, err := e.h.Create(rel)
	if err != nil {
		t.Fatalf("scenario %s: %v", scenario, err)
	}
	if leaf {
		e.leaves[scenario] = append(e.leaves[scenario], cg)
	}
	return cg
}

func setLimit(t *testing.T, scenario string, cg *cgscratch.Cgroup, bytes uint64) uint64 {
	t.Helper()
	got, err := cg.SetLimit(bytes)
	if err != nil {
		t.Fatalf("scenario %s: %v", scenario, err)
	}
	return got
}

// mustBeKilled waits for p to die of SIGKILL.
func mustBeKilled(t *testing.T, scenario string, p *proc) {
	t.Helper()
	killed, err := p.waitExit(15 * time.Second)
	if err != nil {
		t.Fatalf("scenario %s: expected pid %d (%s) to be OOM-killed: %v", scenario, p.pid, p.comm, err)
	}
	if !killed {
		t.Fatalf("scenario %s: expected pid %d (%s) to be OOM-killed, it exited with %v", scenario, p.pid, p.comm, p.waitErr)
	}
}

var scenarios = []scenario{
	{name: "container-limit", capture: "container-limit", run: containerLimit},
	{name: "pod-limit-two-containers", capture: "pod-limit-two-containers", run: podLimit},
	{name: "trigger-not-victim", run: triggerNotVictim},
	{name: "hundreds-of-tasks", run: manyTasks},
	{name: "burst-ratelimited", capture: "burst-ratelimited", fresh: true, run: burst},
}

// containerLimit: a container cgroup (cgroupfs driver) with a limit and one
// allocator that exceeds it.
func containerLimit(t *testing.T, e *env) []kill {
	const name = "container-limit"
	uid, id := cgscratch.NewPodUID(), cgscratch.NewContainerID()
	ctr := e.create(t, name, cgscratch.CgroupfsContainer(cgscratch.QoSBurstable, uid, id), true)
	limit := setLimit(t, name, ctr, 64<<20)
	p := startProc(t, e.bins["oomalloc"], ctr, "-mib", "256")
	mustBeKilled(t, name, p)
	return []kill{{
		scenario: name, victim: p.pid, comm: p.comm, oomMemcg: ctr.Path, taskMemcg: ctr.Path,
		podUID: uid, containerID: id, limit: limit, trigger: p.pid, triggerComm: p.comm,
		tasks: map[int]string{p.pid: p.comm},
	}}
}

// podLimit: the limit is on the pod cgroup (systemd driver); a sidecar
// container holds some memory, the app container allocates past the pod's
// limit and is the victim.
func podLimit(t *testing.T, e *env) []kill {
	const name = "pod-limit-two-containers"
	uid, idSide, idApp := cgscratch.NewPodUID(), cgscratch.NewContainerID(), cgscratch.NewContainerID()
	pod := e.create(t, name, cgscratch.SystemdPod(cgscratch.QoSBurstable, uid), false)
	sideCG := e.create(t, name, cgscratch.SystemdContainer(cgscratch.QoSBurstable, uid, idSide), true)
	appCG := e.create(t, name, cgscratch.SystemdContainer(cgscratch.QoSBurstable, uid, idApp), true)
	limit := setLimit(t, name, pod, 96<<20)
	side := startProc(t, e.bins["oomside"], sideCG, "-mib", "16", "-hold")
	side.waitAllocated(t)
	app := startProc(t, e.bins["oomalloc"], appCG, "-mib", "256")
	mustBeKilled(t, name, app)
	if !side.alive() {
		t.Errorf("scenario %s: expected the sidecar pid %d to survive, it exited: %v", name, side.pid, side.waitErr)
	}
	return []kill{{
		scenario: name, victim: app.pid, comm: app.comm, oomMemcg: pod.Path, taskMemcg: appCG.Path,
		podUID: uid, containerID: idApp, limit: limit, trigger: app.pid, triggerComm: app.comm,
		tasks: map[int]string{side.pid: side.comm, app.pid: app.comm},
	}}
}

// triggerNotVictim: a big sleeper and a small one hold memory; a third
// process allocates past the limit and invokes the OOM killer, which kills
// the big sleeper; the allocator then finishes.
func triggerNotVictim(t *testing.T, e *env) []kill {
	const name = "trigger-not-victim"
	uid, id := cgscratch.NewPodUID(), cgscratch.NewContainerID()
	ctr := e.create(t, name, cgscratch.CgroupfsContainer(cgscratch.QoSBestEffort, uid, id), true)
	// Headroom: after the hog is killed the allocator must fit even while
	// part of the hog's memory is still charged (exit_mmap hides the victim
	// from the OOM killer before its last page batch is freed, tens of MiB:
	// with less headroom the kernel sometimes kills the allocator too).
	limit := setLimit(t, name, ctr, 128<<20)
	hog := startProc(t, e.bins["oomhog"], ctr, "-mib", "96", "-hold")
	hog.waitAllocated(t)
	side := startProc(t, e.bins["oomside"], ctr, "-mib", "4", "-hold")
	side.waitAllocated(t)
	al := startProc(t, e.bins["oomalloc"], ctr, "-mib", "40")
	mustBeKilled(t, name, hog)
	if killed, err := al.waitExit(15 * time.Second); killed {
		t.Logf("scenario %s: the kernel also killed the allocator pid %d (the hog's memory was not yet uncharged)", name, al.pid)
	} else if err != nil || al.waitErr != nil {
		t.Errorf("scenario %s: expected the allocator pid %d to finish after the hog was killed: killed=%v err=%v exit=%v", name, al.pid, killed, err, al.waitErr)
	}
	if !side.alive() {
		t.Errorf("scenario %s: expected the small sleeper pid %d to survive, it exited: %v", name, side.pid, side.waitErr)
	}
	return []kill{{
		scenario: name, victim: hog.pid, comm: hog.comm, oomMemcg: ctr.Path, taskMemcg: ctr.Path,
		podUID: uid, containerID: id, limit: limit, trigger: al.pid, triggerComm: al.comm,
		tasks: map[int]string{hog.pid: hog.comm, side.pid: side.comm, al.pid: al.comm},
	}}
}

// manyTasks: a container (systemd driver, Guaranteed pod) with 300 idle
// children and one allocator: the task table has 301 rows.
func manyTasks(t *testing.T, e *env) []kill {
	const name, children = "hundreds-of-tasks", 300
	uid, id := cgscratch.NewPodUID(), cgscratch.NewContainerID()
	ctr := e.create(t, name, cgscratch.SystemdContainer(cgscratch.QoSGuaranteed, uid, id), true)
	p := startProc(t, e.bins["oomalloc"], ctr, "-mib", "512", "-children", fmt.Sprint(children), "-child-mib", "0", "-gate-alloc")
	kids := p.waitChildren(t, children)
	usage, err := ctr.Usage()
	if err != nil {
		t.Fatalf("scenario %s: %v", name, err)
	}
	limit := setLimit(t, name, ctr, (usage+64<<20+pageSize-1)/pageSize*pageSize)
	if err := p.release(); err != nil {
		t.Fatalf("scenario %s: %v", name, err)
	}
	mustBeKilled(t, name, p)
	tasks := map[int]string{p.pid: p.comm}
	for pid, comm := range kids {
		tasks[pid] = comm
	}
	return []kill{{
		scenario: name, victim: p.pid, comm: p.comm, oomMemcg: ctr.Path, taskMemcg: ctr.Path,
		podUID: uid, containerID: id, limit: limit, trigger: p.pid, triggerComm: p.comm, tasks: tasks,
		// 300 Go runtimes return and refault pages (scavenger, page
		// cache of the shared binary reclaimed during the OOM) between
		// the failed charge and the dump: seen 195 pages below the limit.
		usageSlack: 8 << 20,
	}}
}

// burst: 16 allocators are started in one container and wait at their
// gate; then they are released one after the other, each killed before the
// next starts, all within 5 s: the kernel prints the full report for at most
// 10 of them, the rest are bare "Killed process" lines. Each task table
// holds the allocators still alive. A 17th kill after the rate limit
// window must count the suppressed ones.
func burst(t *testing.T, e *env) []kill {
	const name, n = "burst-ratelimited", 16
	uid, id := cgscratch.NewPodUID(), cgscratch.NewContainerID()
	ctr := e.create(t, name, cgscratch.CgroupfsContainer(cgscratch.QoSBurstable, uid, id), true)
	var procs []*proc
	for range n {
		procs = append(procs, startProc(t, e.bins["oomburst"], ctr, "-mib", "64", "-chunk-mib", "4", "-gate-alloc"))
	}
	usage, err := ctr.Usage()
	if err != nil {
		t.Fatalf("scenario %s: %v", name, err)
	}
	// Little headroom: each kill is quick, so that all fit in 5 s even on
	// a busy machine.
	limit := setLimit(t, name, ctr, (usage+12<<20+pageSize-1)/pageSize*pageSize)
	var kills []kill
	start := time.Now()
	for i, p := range procs {
		tasks := map[int]string{}
		for _, q := range procs[i:] {
			tasks[q.pid] = q.comm
		}
		if err := p.release(); err != nil {
			t.Fatalf("scenario %s: %v", name, err)
		}
		mustBeKilled(t, name, p)
		kills = append(kills, kill{
			scenario: name, victim: p.pid, comm: p.comm, oomMemcg: ctr.Path, taskMemcg: ctr.Path,
			podUID: uid, containerID: id, limit: limit, trigger: p.pid, triggerComm: p.comm,
			tasks: tasks, partialOK: true,
		})
	}
	d := time.Since(start)
	if d > 4500*time.Millisecond {
		t.Errorf("scenario %s: %d kills took %v, want them within 5 s so that the kernel rate limits", name, n, d)
	}
	t.Logf("scenario %s: %d kills in %v", name, n, d.Round(time.Millisecond))
	// One more kill once the rate limit window is over: the kernel prints
	// "oom_kill_process: N callbacks suppressed" before its full report.
	waitFreshRatelimit(t)
	p := startProc(t, e.bins["oomburst"], ctr, "-mib", "64", "-chunk-mib", "4")
	mustBeKilled(t, name, p)
	return append(kills, kill{
		scenario: name, victim: p.pid, comm: p.comm, oomMemcg: ctr.Path, taskMemcg: ctr.Path,
		podUID: uid, containerID: id, limit: limit, trigger: p.pid, triggerComm: p.comm,
		tasks: map[int]string{p.pid: p.comm}, afterBurst: true,
	})
}

// waitFreshRatelimit waits until the newest oom-killer record in the ring
// buffer is more than 5 s old: the kernel's report rate limit (10 headers
// per 5 s window) then starts a new window at the next OOM.
func waitFreshRatelimit(t *testing.T) {
	t.Helper()
	last, ok, err := lastOOMKill()
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		return
	}
	if wait := last + 5300*time.Millisecond - monoNow(); wait > 0 {
		t.Logf("waiting %v for a fresh oom-killer rate limit window", wait.Round(time.Millisecond))
		time.Sleep(wait)
	}
}

// TestLiveOOM causes real OOM kills in scratch cgroups while the live
// source and the parser run, then checks each kill's report and reconciles
// the reports with the kernel's oom_kill counters.
func TestLiveOOM(t *testing.T) {
	kernellock.Acquire(t)
	begin := time.Now()
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
	bins := buildAlloc(t, "oomalloc", "oomhog", "oomside", "oomburst")
	ctx := context.Background()
	h, err := cgscratch.New(ctx, cgscratch.WithLogger(log))
	if err != nil {
		t.Fatalf("scratch cgroup hierarchy: %v", err)
	}
	t.Cleanup(func() {
		if err := h.Close(context.Background()); err != nil {
			t.Errorf("remove scratch cgroups: %v", err)
		}
	})
	t.Logf("memory cgroup %s, scratch root %s", h.Version(), h.Root().Path)
	col := startCollector(t, log)
	e := &env{h: h, bins: bins, leaves: map[string][]*cgscratch.Cgroup{}}

	waitFreshRatelimit(t)
	var all []kill
	byScenario := map[string][]kill{}
	scenarioFailed := map[string]bool{}
	for _, sc := range scenarios {
		ok := t.Run(sc.name, func(t *testing.T) {
			if sc.fresh {
				waitFreshRatelimit(t)
			}
			ks := sc.run(t, e)
			byScenario[sc.name] = ks
			all = append(all, ks...)
		})
		scenarioFailed[sc.name] = !ok
	}
	var victims, started []int
	for _, k := range all {
		victims = append(victims, k.victim)
		started = append(started, k.victim)
		for pid := range k.tasks {
			started = append(started, pid)
		}
	}
	_, werr := col.waitVictims(20*time.Second, victims)
	if werr == nil {
		// Extra kills the kernel made (see reconcile) have reports too:
		// wait until the reports of the scratch tree match its counter.
		waitTreeReports(t, col, h, started)
	}
	col.stop()
	reports := col.snapshot()
	if werr != nil {
		t.Error(werr)
	}
	if lost := col.live.Lost(); lost > 0 {
		t.Errorf("the live source lost %d kernel records", lost)
	}
	for _, err := range col.errs {
		t.Errorf("live source: %v", err)
	}

	ours := ourReports(h, reports, started)
	for _, r := range reports {
		t.Log(summary(r, slices.ContainsFunc(ours, func(o report.Report) bool { return o.ID == r.ID })))
	}
	var table resultTable
	t.Cleanup(func() { table.write(t, h.Version()) })
	for _, sc := range scenarios {
		rt := &recordingT{}
		ok := t.Run(sc.name+"/reports", func(t *testing.T) {
			rt.TB = t
			ks := byScenario[sc.name]
			if len(ks) == 0 {
				rt.Fatalf("scenario %s: caused no kill", sc.name)
			}
			for _, k := range ks {
				checkKill(rt, k, ours)
			}
			reconcile(rt, sc.name, e.leaves[sc.name], ks, ours)
			if sc.name == "burst-ratelimited" {
				checkBurst(rt, ks, reports, ours, col)
			}
			if sc.capture != "" && os.Getenv("OOMSCOPE_E2E_CAPTURE") == "1" {
				capture(t, col, h.Version(), sc.capture, ks, ours)
			}
		})
		table.add(sc.name, ok && !scenarioFailed[sc.name], rt.reasons)
	}

	// The kernel's count for the whole scratch tree.
	kernel, err := h.TreeOOMKills()
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, r := range ours {
		seen += len(r.Victims)
	}
	if uint64(seen) != kernel || seen < len(all) {
		t.Errorf("reconcile: the kernel counted %d OOM kills in %s, the parser reported %d victims of ours, the test caused %d",
			kernel, h.Root().Path, seen, len(all))
	}
	t.Logf("%d kills, %d reports of ours, %d reports in all, kernel count %d, %d injected user-space records ignored, %v",
		len(all), len(ours), len(reports), kernel, col.injected, time.Since(begin).Round(time.Millisecond))
}

// waitTreeReports waits (bounded) until the victims reported in the
// scratch tree number what the kernel counted there.
func waitTreeReports(t *testing.T, col *collector, h *cgscratch.Hierarchy, pids []int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		kernel, err := h.TreeOOMKills()
		if err != nil {
			t.Fatal(err)
		}
		seen := 0
		for _, r := range ourReports(h, col.snapshot(), pids) {
			seen += len(r.Victims)
		}
		if uint64(seen) >= kernel {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ourReports keeps the reports about the scratch tree: by cgroup path or,
// for a rate-limited report without paths, by victim pid. Reports of other
// cgroups on the machine are ignored.
func ourReports(h *cgscratch.Hierarchy, reports []report.Report, pids []int) []report.Report {
	prefix := h.Root().Path + "/"
	var out []report.Report
	for _, r := range reports {
		mine := strings.HasPrefix(r.OOMMemcg, prefix) || strings.HasPrefix(r.TaskMemcg, prefix)
		for _, v := range r.Victims {
			mine = mine || slices.Contains(pids, v.PID)
		}
		if mine {
			out = append(out, r)
		}
	}
	return out
}

// checkKill asserts what the one report of a kill must say.
func checkKill(t testing.TB, k kill, reports []report.Report) {
	t.Helper()
	fail := func(what string, want, got any) {
		t.Errorf("scenario %s, kill of pid %d (%s): expected %s %v, parsed %v", k.scenario, k.victim, k.comm, what, want, got)
	}
	var found []report.Report
	for _, r := range reports {
		for _, v := range r.Victims {
			if v.PID == k.victim {
				found = append(found, r)
			}
		}
	}
	if len(found) != 1 {
		fail("number of reports naming the victim", 1, len(found))
		if len(found) == 0 {
			return
		}
	}
	r := found[0]
	if len(r.Victims) != 1 {
		fail("victims", 1, len(r.Victims))
	}
	v := r.Victims[0]
	if v.Comm != k.comm {
		fail("victim comm", k.comm, v.Comm)
	}
	if v.Message != "Memory cgroup out of memory" {
		fail("victim message", "Memory cgroup out of memory", v.Message)
	}
	if r.Kind != report.KindMemcg {
		fail("kind", report.KindMemcg, r.Kind)
	}
	if r.Partial {
		if !k.partialOK {
			fail("a full report, partial", false, r.Partial)
		}
		return
	}
	if r.Incomplete {
		fail("a complete report, incomplete", false, fmt.Sprint(r.Problems))
	}
	if r.Constraint != "CONSTRAINT_MEMCG" {
		fail("constraint", "CONSTRAINT_MEMCG", r.Constraint)
	}
	if r.OOMMemcg != k.oomMemcg {
		fail("oom_memcg (limiting cgroup)", k.oomMemcg, r.OOMMemcg)
	}
	if r.TaskMemcg != k.taskMemcg {
		fail("task_memcg (victim cgroup)", k.taskMemcg, r.TaskMemcg)
	}
	cp := cgpath.Parse(r.TaskMemcg)
	if cp.Level != report.LevelContainer || cp.PodUID != k.podUID || cp.ContainerID != k.containerID {
		fail("victim cgroup level/pod/container", fmt.Sprintf("container/%s/%s", k.podUID, k.containerID),
			fmt.Sprintf("%s/%s/%s", cp.Level, cp.PodUID, cp.ContainerID))
	}
	if r.Memory == nil {
		fail("a memory: counter line", "present", "none")
	} else {
		if r.Memory.LimitBytes != k.limit {
			fail("limit bytes", k.limit, r.Memory.LimitBytes)
		}
		slack := k.usageSlack
		if slack == 0 {
			slack = defaultUsageSlack
		}
		if u := r.Memory.UsageBytes; u > k.limit+slack || u+slack < k.limit {
			fail(fmt.Sprintf("usage within %d bytes of the limit %d", slack, k.limit), "", u)
		}
		if want, ok := rawMemoryUsage(r.Raw); !ok || want != r.Memory.UsageBytes {
			fail("usage bytes = the kB printed on the raw memory: line * 1024", want, r.Memory.UsageBytes)
		}
	}
	if r.SummaryVictim == nil || r.SummaryVictim.PID != k.victim {
		fail("oom-kill summary pid", k.victim, r.SummaryVictim)
	}
	if r.Trigger == nil {
		fail("trigger", k.trigger, nil)
	} else {
		if r.Trigger.Comm != k.triggerComm {
			fail("trigger comm", k.triggerComm, r.Trigger.Comm)
		}
		if r.Trigger.PID == nil || *r.Trigger.PID != k.trigger {
			fail("trigger pid", k.trigger, deref(r.Trigger.PID))
		}
		if (k.trigger == k.victim) != (r.Trigger.PID != nil && *r.Trigger.PID == v.PID) {
			fail("trigger is the victim", k.trigger == k.victim, !(k.trigger == k.victim))
		}
	}
	got := map[int]string{}
	for _, task := range r.Tasks {
		got[task.PID] = task.Name
	}
	if r.TasksTotal != len(k.tasks) || len(got) != len(k.tasks) {
		fail("task table rows", len(k.tasks), fmt.Sprintf("%d (kept %d)", r.TasksTotal, len(got)))
	}
	var missing, wrong, extra []string
	for pid, comm := range k.tasks {
		switch name, ok := got[pid]; {
		case !ok:
			missing = append(missing, fmt.Sprintf("%d(%s)", pid, comm))
		case name != comm:
			wrong = append(wrong, fmt.Sprintf("%d: %s not %s", pid, name, comm))
		}
	}
	for pid, name := range got {
		if _, ok := k.tasks[pid]; !ok {
			extra = append(extra, fmt.Sprintf("%d(%s)", pid, name))
		}
	}
	sort.Strings(missing)
	if len(missing)+len(wrong)+len(extra) > 0 {
		fail("task table = the live processes the test started", "",
			fmt.Sprintf("missing %v, wrong names %v, unexpected %v", clipList(missing), clipList(wrong), clipList(extra)))
	}
}

func clipList(s []string) []string {
	if len(s) > 10 {
		return append(s[:10:10], fmt.Sprintf("... %d more", len(s)-10))
	}
	return s
}

func deref(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}

// reconcile compares a scenario's reports with the kernel's oom_kill
// counters of its cgroups.
func reconcile(t testing.TB, name string, leaves []*cgscratch.Cgroup, ks []kill, reports []report.Report) {
	t.Helper()
	var kernel uint64
	for _, cg := range leaves {
		c, err := cg.Counters()
		if err != nil {
			t.Fatalf("scenario %s: %v", name, err)
		}
		kernel += c.OOMKill
	}
	// Every process the scenario started: the kernel may kill one more
	// than the scenario needs (a victim's memory is uncharged a little
	// after the OOM killer stops waiting for it; under CPU load the next
	// allocation can find the limit still full). Such a kill is real and
	// must have its report too.
	pids := map[int]bool{}
	for _, k := range ks {
		pids[k.victim] = true
		for pid := range k.tasks {
			pids[pid] = true
		}
	}
	seen := 0
	for _, r := range reports {
		for _, v := range r.Victims {
			if pids[v.PID] {
				seen++
			}
		}
	}
	if uint64(seen) != kernel || seen < len(ks) {
		t.Errorf("scenario %s: expected reported victims == kernel oom_kill count >= kills caused; parsed %d, kernel %d, caused %d", name, seen, kernel, len(ks))
	} else if seen > len(ks) {
		t.Logf("scenario %s: the kernel killed %d more of the scenario's processes than it needed to; each has its report", name, seen-len(ks))
	}
}

// checkBurst asserts that the kernel did rate limit the burst, that every
// bare victim line still became its own partial report, and that the report
// after the burst counts the suppressed ones.
func checkBurst(t testing.TB, ks []kill, all, ours []report.Report, col *collector) {
	t.Helper()
	pids := map[int]bool{}
	cgroupOf := map[int]string{}
	var after kill
	for _, k := range ks {
		if k.afterBurst {
			after = k
			continue
		}
		pids[k.victim] = true
		cgroupOf[k.victim] = k.taskMemcg
	}
	partial, full := 0, 0
	attributed := map[string]int{}
	var firstSeq uint64
	for _, r := range ours {
		if len(r.Victims) == 0 || !pids[r.Victims[0].PID] {
			continue
		}
		if firstSeq == 0 {
			firstSeq = r.First.Seq
		}
		if r.Partial {
			partial++
			if r.Trigger != nil || r.Memory != nil || r.OOMMemcg != "" || len(r.Tasks) > 0 {
				t.Errorf("scenario burst-ratelimited: partial report %s of pid %d holds header facts it cannot have", r.ID, r.Victims[0].PID)
			}
			// Attribution from /proc or the kill counters: right or
			// absent, never wrong.
			switch how, cg := col.attribution(r.ID); {
			case (how == report.AttributionProc || how == report.AttributionCounters) && cg == cgroupOf[r.Victims[0].PID]:
				attributed[how]++
			case how != "" || cg != "":
				t.Errorf("scenario burst-ratelimited: partial report %s of pid %d attributed %q to %s, want %s or nothing", r.ID, r.Victims[0].PID, how, cg, cgroupOf[r.Victims[0].PID])
			}
		} else {
			full++
		}
	}
	n := len(pids)
	if full > 10 || partial < n-10 || partial == 0 {
		t.Errorf("scenario burst-ratelimited: expected at most 10 full reports (kernel rate limit 10 per 5 s) and at least %d partial; parsed %d full, %d partial", n-10, full, partial)
	}
	// Every partial report since the burst began, ours or not, is one
	// suppressed header.
	suppressed := 0
	var afterReport *report.Report
	for i, r := range all {
		if r.First.Seq < firstSeq {
			continue
		}
		if len(r.Victims) > 0 && r.Victims[0].PID == after.victim {
			afterReport = &all[i]
			break
		}
		if r.Partial {
			suppressed++
		}
	}
	switch {
	case afterReport == nil:
		t.Errorf("scenario burst-ratelimited: no report for the kill after the burst (pid %d)", after.victim)
	case afterReport.SuppressedBefore != suppressed:
		t.Errorf("scenario burst-ratelimited: expected the report after the burst to count %d suppressed reports (\"callbacks suppressed\"), parsed %d", suppressed, afterReport.SuppressedBefore)
	}
	// The kills came one after the other in one container: between two
	// readings of the counters there is one kill, and only that container's
	// counter rose, so the counters attribute every partial report /proc
	// did not.
	if got := attributed[report.AttributionProc] + attributed[report.AttributionCounters]; got != partial {
		t.Errorf("scenario burst-ratelimited: %d of %d partial reports attributed (%d from /proc, %d from the kill counters), want all", got, partial, attributed[report.AttributionProc], attributed[report.AttributionCounters])
	}
	t.Logf("burst: %d kills, %d full reports, %d partial (attributed to the right cgroup: %d from /proc, %d from the kill counters); the next report counts %d suppressed", n, full, partial, attributed[report.AttributionProc], attributed[report.AttributionCounters], suppressed)
}

// capture saves the scenario's raw records as a golden input.
func capture(t *testing.T, col *collector, version cgscratch.Version, name string, ks []kill, reports []report.Report) {
	t.Helper()
	pids := map[int]bool{}
	for _, k := range ks {
		pids[k.victim] = true
	}
	var first, last uint64
	for _, r := range reports {
		if len(r.Victims) == 0 || !pids[r.Victims[0].PID] {
			continue
		}
		if first == 0 || r.First.Seq < first {
			first = r.First.Seq
		}
		last = max(last, r.Last.Seq)
	}
	if first == 0 {
		t.Errorf("capture %s: no records", name)
		return
	}
	recs := col.recordsBetween(first-1, last)
	if len(recs) > 0 && recs[0].Seq == first-1 && !strings.Contains(recs[0].Text, "callbacks suppressed") {
		recs = recs[1:]
	}
	var b strings.Builder
	for _, r := range recs {
		b.WriteString(r.Raw)
		b.WriteByte('\n')
	}
	release := "unknown"
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		release = strings.TrimSpace(string(data))
		if i := strings.IndexAny(release, "-+"); i > 0 {
			release = release[:i]
		}
	}
	file := filepath.Join("..", "..", "testdata", "live", fmt.Sprintf("host-%s-cgroup%s-%s.kmsg", release, version, name))
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("captured %d records (seq %d-%d) into %s", len(recs), recs[0].Seq, last, file)
}

// summary is a one-line description of a report for the test log.
func summary(r report.Report, ours bool) string {
	var b strings.Builder
	if !ours {
		b.WriteString("(not ours, ignored) ")
	}
	fmt.Fprintf(&b, "report %s kind=%s partial=%v incomplete=%v", r.ID, r.Kind, r.Partial, r.Incomplete)
	for _, v := range r.Victims {
		fmt.Fprintf(&b, " victim=%d(%s)", v.PID, v.Comm)
	}
	if r.Trigger != nil {
		fmt.Fprintf(&b, " trigger=%v(%s)", deref(r.Trigger.PID), r.Trigger.Comm)
	}
	if r.Memory != nil {
		fmt.Fprintf(&b, " usage=%d limit=%d (%+d pages)", r.Memory.UsageBytes, r.Memory.LimitBytes,
			(int64(r.Memory.UsageBytes)-int64(r.Memory.LimitBytes))/int64(pageSize))
	}
	fmt.Fprintf(&b, " tasks=%d oom_memcg=%s task_memcg=%s", r.TasksTotal, r.OOMMemcg, r.TaskMemcg)
	if len(r.Problems) > 0 {
		fmt.Fprintf(&b, " problems=%q", r.Problems)
	}
	return b.String()
}

var memoryLine = regexp.MustCompile(`;memory: usage (\d+)kB, limit (\d+)kB`)

// rawMemoryUsage reads the usage off the raw "memory: usage NkB" record,
// independently of the parser.
func rawMemoryUsage(raw []string) (uint64, bool) {
	for _, line := range raw {
		if m := memoryLine.FindStringSubmatch(line); m != nil {
			kb, err := strconv.ParseUint(m[1], 10, 64)
			return kb * 1024, err == nil
		}
	}
	return 0, false
}

// recordingT keeps the messages of Errorf and Fatalf for the result table.
type recordingT struct {
	testing.TB
	reasons []string
}

func (r *recordingT) Errorf(format string, args ...any) {
	r.TB.Helper()
	r.reasons = append(r.reasons, fmt.Sprintf(format, args...))
	r.TB.Errorf(format, args...)
}

func (r *recordingT) Fatalf(format string, args ...any) {
	r.TB.Helper()
	r.reasons = append(r.reasons, fmt.Sprintf(format, args...))
	r.TB.Fatalf(format, args...)
}

// resultTable is the live part of the e2e matrix: one row per scenario.
type resultTable struct {
	rows []string
}

func (tb *resultTable) add(scenario string, pass bool, reasons []string) {
	switch {
	case pass:
		tb.rows = append(tb.rows, fmt.Sprintf("  %-26s pass", scenario))
	case len(reasons) == 0:
		tb.rows = append(tb.rows, fmt.Sprintf("  %-26s FAIL: the scenario itself failed (see the test log)", scenario))
	default:
		tb.rows = append(tb.rows, fmt.Sprintf("  %-26s FAIL: %s", scenario, strings.Join(reasons, "; ")))
	}
}

// write appends the table to the file named by OOMSCOPE_E2E_LIVE_TABLE
// (make e2e prints it with the qemu matrix) and to the test log.
func (tb *resultTable) write(t *testing.T, v cgscratch.Version) {
	var uts unix.Utsname
	_ = unix.Uname(&uts)
	head := fmt.Sprintf("this machine (live), kernel %s, cgroup %s", unix.ByteSliceToString(uts.Release[:]), v)
	out := head + "\n" + strings.Join(tb.rows, "\n") + "\n"
	t.Log("\n" + out)
	if p := os.Getenv("OOMSCOPE_E2E_LIVE_TABLE"); p != "" {
		if err := os.WriteFile(p, []byte(out), 0o644); err != nil {
			t.Errorf("writing %s: %v", p, err)
		}
	}
}

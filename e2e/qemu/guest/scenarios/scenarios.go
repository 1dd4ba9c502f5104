//go:build linux

package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const mib = 1 << 20

// scenario is one OOM situation the guest provokes.
type scenario struct {
	name string
	desc string
	// mode is the cgroup hierarchy the scenario needs: "v1" or "v2".
	mode string
	run  func(s *sc) error
}

// allScenarios is the list of scenarios, in the default run order.
//
// The memory controller cannot serve cgroup v1 and cgroup2 in one boot: once
// a memory cgroup was used on one hierarchy, its dying (offline but not yet
// freed) memory cgroups keep the controller bound there, and rebinding fails
// (seen on 6.1: the controller did not come back to cgroup2 within 30 s after
// the v1 hierarchy was emptied and unmounted). The host therefore runs the v1
// scenario in a boot of its own (oomscope.scenarios=v1-container).
func allScenarios() []scenario {
	return []scenario{
		{"v1-container", "cgroup v1 memory hierarchy (cgroupfs driver shape), container limit", "v1", runContainer},
		{"v2-container", "cgroup v2, container limit (systemd driver shape)", "v2", runContainer},
		{"v2-pod", "cgroup v2, pod-level limit, two containers, victim in the growing one", "v2", runPod},
		{"v2-oom-group", "cgroup v2, memory.oom.group=1 with 4 processes: one report, all killed", "v2", runOOMGroup},
		{"v2-no-task-dump", "cgroup v2 container limit with vm.oom_dump_tasks=0", "v2", runNoTaskDump},
		{"v2-burst", "16 containers OOM within ~1 s: the kernel rate-limits the report header", "v2", runBurst},
		{"global", "global OOM: no cgroup limit, the VM runs out of memory", "v2", runGlobal},
	}
}

func selectScenarios(names string) ([]scenario, error) {
	all := allScenarios()
	if names == "" || names == "all" {
		return all, nil
	}
	var out []scenario
	var unknown []string
	for _, n := range strings.Split(names, ",") {
		found := false
		for _, s := range all {
			if s.name == n {
				out = append(out, s)
				found = true
			}
		}
		if !found {
			unknown = append(unknown, n)
		}
	}
	if len(unknown) > 0 {
		return out, fmt.Errorf("unknown scenarios %v", unknown)
	}
	return out, nil
}

// sc is one scenario run in progress.
type sc struct {
	r       *runner
	h       *hierarchy
	t       *Truth
	created []*Cg
	parents []*Proc
}

// id returns a stable hex id of n characters for a name within the scenario,
// so captures of different runs name the same cgroups.
func (s *sc) id(what string, n int) string {
	sum := sha256.Sum256([]byte(s.t.Scenario + "/" + what))
	return hex.EncodeToString(sum[:])[:n]
}

// podUID returns a Kubernetes-style pod UID.
func (s *sc) podUID(what string) string {
	h := s.id(what, 32)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// systemdPod returns the systemd-driver cgroup path of a burstable pod.
func (s *sc) systemdPod(uid string) string {
	return "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + strings.ReplaceAll(uid, "-", "_") + ".slice"
}

// cgroup creates path (and ancestors), records them in the truth, writes the
// given control files and reads the counters before anything runs in it.
func (s *sc) cgroup(path, role string, files ...string) (*Cg, error) {
	made, err := s.h.mkdir(path)
	s.created = append(s.created, made...)
	if err != nil {
		return nil, err
	}
	var cg *Cg
	for _, m := range made {
		if m.Path == path {
			cg = m
		}
	}
	if cg == nil {
		return nil, fmt.Errorf("cgroup %s already existed", path)
	}
	cg.Role = role
	for i := 0; i+1 < len(files); i += 2 {
		if err := s.h.set(cg, files[i], files[i+1]); err != nil {
			return nil, err
		}
	}
	cg.Before = s.h.counters(cg)
	s.t.Cgroups = append(s.t.Cgroups, cg)
	return cg, nil
}

func (s *sc) limitFile() string {
	if s.h.Mode == "v1" {
		return "memory.limit_in_bytes"
	}
	return "memory.max"
}

// spawnDD starts a gated busybox dd in cg (see procTable.spawnDD).
func (s *sc) spawnDD(cg *Cg, gate, size string) (*Proc, error) {
	p, err := s.r.procs.spawnDD(cg, gate, size)
	if err != nil {
		return nil, err
	}
	s.parents = append(s.parents, p)
	return p, nil
}

// spawn starts the allocator in cg.
func (s *sc) spawn(cg *Cg, args ...string) (*Proc, error) {
	p, err := s.r.procs.spawn(cg, args...)
	if err != nil {
		return nil, err
	}
	s.parents = append(s.parents, p)
	return p, nil
}

// waitExit waits until every pid exited.
func (s *sc) waitExit(d time.Duration, ps ...*Proc) error {
	deadline := time.Now().Add(d)
	for _, p := range ps {
		for !s.r.procs.exited(p.Pid) {
			if time.Now().After(deadline) {
				return fmt.Errorf("pid %d (%v) still alive after %s", p.Pid, p.Argv, d)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

// waitAllocated waits until the allocator reported "allocated".
func (s *sc) waitAllocated(d time.Duration, p *Proc) error {
	deadline := time.Now().Add(d)
	for !s.r.procs.allocated(p.Pid) {
		if s.r.procs.exited(p.Pid) {
			return fmt.Errorf("pid %d exited before it allocated", p.Pid)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pid %d did not allocate within %s", p.Pid, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// waitFamily waits until n processes of the allocators' families printed
// "ready" (children included).
func (s *sc) waitReady(d time.Duration, n int) error {
	deadline := time.Now().Add(d)
	for {
		fam := s.r.procs.family(s.parents...)
		if s.r.procs.count(fam, func(p *Proc) bool { return p.Ready }) >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d processes ready after %s", len(fam), n, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runScenario runs one scenario between its markers and emits its truth.
func (r *runner) runScenario(def scenario) {
	t := &Truth{
		Scenario:    def.name,
		Description: def.desc,
		Kernel:      r.kernel,
		CgroupMode:  def.mode,
		MemTotalKB:  r.memKB,
		Markers:     Markers{Begin: beginMarker + def.name, End: endMarker + def.name},
		Processes:   []*Proc{},
		Cgroups:     []*Cg{},
	}
	r.out.logf("scenario %s: start", def.name)
	s := &sc{r: r, t: t}
	err := r.hierarchyFor(def.mode, s)
	if err != nil {
		t.Status, t.Error = "unsupported", err.Error()
		if def.mode == "v2" {
			t.Status = "failed"
		}
		r.out.logf("scenario %s: %s: %v", def.name, t.Status, err)
		_ = kmsgWrite(t.Markers.Begin)
		_ = kmsgWrite(t.Markers.End)
		r.emitTruth(t)
		return
	}
	if err := kmsgWrite(t.Markers.Begin); err != nil {
		r.out.logf("scenario %s: %v", def.name, err)
	}
	t.Timing.BeginMonoUs = monoUs()
	t.Vmstat.Before = vmstatOOMKill()
	t.Sysctls = readSysctls()

	runErr := def.run(s)

	// Let the last oom_reaper lines and reaps arrive, then record.
	time.Sleep(300 * time.Millisecond)
	fam := r.procs.family(s.parents...)
	r.procs.settle(fam)
	t.Vmstat.After = vmstatOOMKill()
	t.Vmstat.Delta = t.Vmstat.After - t.Vmstat.Before
	for _, cg := range t.Cgroups {
		cg.After = s.h.counters(cg)
		cg.Delta = delta(cg.After, cg.Before)
		cg.FilesAfter = s.h.filesAfter(cg)
	}
	r.procs.cleanup(fam)
	t.Processes = fam
	t.Expect.Kills = int(t.Vmstat.Delta)
	t.Expect.VictimPids = []int{}
	for _, p := range fam {
		if p.KilledByKernel {
			t.Expect.VictimPids = append(t.Expect.VictimPids, p.Pid)
			if t.Timing.FirstKillMonoUs == 0 || p.ExitMonoUs < t.Timing.FirstKillMonoUs {
				t.Timing.FirstKillMonoUs = p.ExitMonoUs
			}
			if p.ExitMonoUs > t.Timing.LastKillMonoUs {
				t.Timing.LastKillMonoUs = p.ExitMonoUs
			}
		}
	}
	if err := s.h.remove(s.created); err != nil {
		t.Notes = append(t.Notes, "cleanup: "+err.Error())
	}
	if s.h.Mode == "v1" {
		if err := s.h.unmount(); err != nil {
			t.Notes = append(t.Notes, "cleanup: "+err.Error())
		}
	}
	t.Timing.EndMonoUs = monoUs()
	if err := kmsgWrite(t.Markers.End); err != nil {
		r.out.logf("scenario %s: %v", def.name, err)
	}
	t.Status = "ok"
	if runErr != nil {
		t.Status, t.Error = "failed", runErr.Error()
	}
	r.out.logf("scenario %s: %s (kills %d, victims %v) %s", def.name, t.Status, t.Vmstat.Delta, t.Expect.VictimPids, t.Error)
	r.emitTruth(t)
}

// hierarchyFor mounts (or reuses) the hierarchy a scenario needs.
func (r *runner) hierarchyFor(mode string, s *sc) error {
	switch mode {
	case "v1":
		h, err := mountV1("/run/cgroup-v1/memory")
		if err != nil {
			return err
		}
		s.h = h
	default:
		if r.v2 == nil && r.v2Err == nil {
			r.v2, r.v2Err = mountV2("/sys/fs/cgroup", 5*time.Second)
		}
		if r.v2Err != nil {
			return r.v2Err
		}
		s.h = r.v2
	}
	return nil
}

// runContainer: one container cgroup with a 32 MiB limit, one allocator
// asking for 96 MiB. Kubernetes cgroupfs shape on v1, systemd shape on v2.
func runContainer(s *sc) error {
	const limit = 32 * mib
	uid := s.podUID("pod")
	var path string
	if s.h.Mode == "v1" {
		path = "/kubepods/burstable/pod" + uid + "/" + s.id("container", 64)
	} else {
		path = s.systemdPod(uid) + "/cri-containerd-" + s.id("container", 64) + ".scope"
	}
	cg, err := s.cgroup(path, "container", s.limitFile(), strconv.Itoa(limit))
	if err != nil {
		return err
	}
	cg.PodUID, cg.ContainerID = uid, s.id("container", 64)
	p, err := s.spawn(cg, "-mib", "96")
	if err != nil {
		return err
	}
	s.t.Expect = Expect{Constraint: "CONSTRAINT_MEMCG", OOMMemcg: path, TaskMemcg: path, FirstVictimPid: p.Pid, TaskTable: true}
	return s.waitExit(60*time.Second, p)
}

// runNoTaskDump is runContainer with vm.oom_dump_tasks=0.
func runNoTaskDump(s *sc) error {
	if err := writeFile("/proc/sys/vm/oom_dump_tasks", "0"); err != nil {
		return fmt.Errorf("set vm.oom_dump_tasks=0: %w", err)
	}
	defer writeFile("/proc/sys/vm/oom_dump_tasks", "1")
	s.t.Sysctls = readSysctls()
	err := runContainer(s)
	s.t.Expect.TaskTable = false
	return err
}

// runPod: a pod cgroup limited to 64 MiB with two containers; container a
// holds 16 MiB, container b grows until the pod limit is hit. b is the
// largest task: the victim; the limiting cgroup is the pod.
func runPod(s *sc) error {
	const limit = 64 * mib
	uid := s.podUID("pod")
	pod := s.systemdPod(uid)
	pcg, err := s.cgroup(pod, "pod", "memory.max", strconv.Itoa(limit))
	if err != nil {
		return err
	}
	pcg.PodUID = uid
	ca, err := s.cgroup(pod+"/cri-containerd-"+s.id("a", 64)+".scope", "container")
	if err != nil {
		return err
	}
	ca.PodUID, ca.ContainerID = uid, s.id("a", 64)
	cb, err := s.cgroup(pod+"/cri-containerd-"+s.id("b", 64)+".scope", "container")
	if err != nil {
		return err
	}
	cb.PodUID, cb.ContainerID = uid, s.id("b", 64)
	a, err := s.spawn(ca, "-mib", "16", "-hold")
	if err != nil {
		return err
	}
	if err := s.waitAllocated(60*time.Second, a); err != nil {
		return err
	}
	b, err := s.spawn(cb, "-mib", "128")
	if err != nil {
		return err
	}
	s.t.Expect = Expect{Constraint: "CONSTRAINT_MEMCG", OOMMemcg: pod, TaskMemcg: cb.Path, FirstVictimPid: b.Pid, TaskTable: true}
	return s.waitExit(60*time.Second, b)
}

// runOOMGroup: memory.oom.group=1 on a container holding an allocator and
// its 3 children; the parent grows past the limit and the whole group dies.
func runOOMGroup(s *sc) error {
	const limit = 64 * mib
	uid := s.podUID("pod")
	path := s.systemdPod(uid) + "/cri-containerd-" + s.id("container", 64) + ".scope"
	cg, err := s.cgroup(path, "container", "memory.max", strconv.Itoa(limit), "memory.oom.group", "1")
	if err != nil {
		return err
	}
	cg.PodUID, cg.ContainerID = uid, s.id("container", 64)
	p, err := s.spawn(cg, "-mib", "128", "-children", "3", "-child-mib", "6", "-delay", "3s", "-wait-children")
	if err != nil {
		return err
	}
	s.t.Expect = Expect{Constraint: "CONSTRAINT_MEMCG", OOMMemcg: path, TaskMemcg: path, TaskTable: true, GroupKill: true}
	if err := s.waitReady(30*time.Second, 4); err != nil {
		return err
	}
	fam := s.r.procs.family(p)
	return s.waitExit(60*time.Second, fam...)
}

// runBurst: 16 containers of one pod, each limited to 6 MiB (small enough
// that all of them at their limit fit in the VM together), each with a
// busybox dd asking for a 32 MiB buffer, all released at the same moment
// through a FIFO. More than 10 reports within 5 s: the kernel's oom_rs rate
// limit (burst 10, interval 5 s) suppresses the later headers and only the
// victim lines are printed.
func runBurst(s *sc) error {
	const n = 16
	const limit = 6 * mib
	gate := "/run/burst.fifo"
	_ = os.Remove(gate)
	if err := syscall.Mkfifo(gate, 0o600); err != nil {
		return fmt.Errorf("mkfifo %s: %w", gate, err)
	}
	defer os.Remove(gate)
	// O_RDWR never blocks on a FIFO and keeps it open while the readers come.
	fifo, err := os.OpenFile(gate, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", gate, err)
	}
	defer fifo.Close()
	uid := s.podUID("pod")
	pod := "/kubepods/besteffort/pod" + uid
	var ps []*Proc
	for i := 0; i < n; i++ {
		cid := s.id("c"+strconv.Itoa(i), 64)
		cg, err := s.cgroup(pod+"/"+cid, "container", "memory.max", strconv.Itoa(limit))
		if err != nil {
			return err
		}
		cg.PodUID, cg.ContainerID = uid, cid
		p, err := s.spawnDD(cg, gate, "32M")
		if err != nil {
			return err
		}
		ps = append(ps, p)
	}
	// Let every shell reach its read, then release them all.
	time.Sleep(2 * time.Second)
	if _, err := fifo.Write([]byte(strings.Repeat("go\n", n))); err != nil {
		return fmt.Errorf("release the burst: %w", err)
	}
	s.t.Expect = Expect{Constraint: "CONSTRAINT_MEMCG", TaskTable: true, RatelimitBurst: 10, RatelimitIntervalS: 5}
	err = s.waitExit(90*time.Second, ps...)
	first, last := int64(0), int64(0)
	s.r.procs.settle(ps)
	for _, p := range ps {
		if p.ExitMonoUs == 0 {
			continue
		}
		if first == 0 || p.ExitMonoUs < first {
			first = p.ExitMonoUs
		}
		if p.ExitMonoUs > last {
			last = p.ExitMonoUs
		}
	}
	s.t.Expect.RateLimited = last-first < 4e6
	if !s.t.Expect.RateLimited {
		s.t.Notes = append(s.t.Notes, fmt.Sprintf("kills spread over %.1f s: rate limiting not guaranteed", float64(last-first)/1e6))
	}
	// Let the rate limit window (5 s) pass, or the next scenario's report
	// would lose its header too (seen on 6.12 for the global OOM).
	time.Sleep(6 * time.Second)
	return err
}

// runGlobal: an allocator in an unlimited cgroup asks for more than the VM
// has. Everything else of ours runs at oom_score_adj -1000, init is never
// chosen: the allocator is the victim.
func runGlobal(s *sc) error {
	cg, err := s.cgroup("/e2e-global", "unlimited")
	if err != nil {
		return err
	}
	want := s.r.memKB/1024 + 256
	p, err := s.spawn(cg, "-mib", strconv.FormatInt(want, 10))
	if err != nil {
		return err
	}
	s.t.Expect = Expect{Constraint: "CONSTRAINT_NONE", TaskMemcg: cg.Path, FirstVictimPid: p.Pid, TaskTable: true}
	return s.waitExit(120*time.Second, p)
}

// Package truth is the ground truth a qemu OOM matrix guest records for one
// scenario, shared by the guest runner (which fills it) and the host (which
// checks the kernel's report against it).
package truth

// Truth is what the runner knows about one scenario, independent of what the
// kernel printed. It is emitted as one 'T' frame of single-line JSON, and
// the host checks the parsed reports against it.
type Truth struct {
	Scenario    string   `json:"scenario"`
	Description string   `json:"description"`
	Status      string   `json:"status"` // "ok", "failed" or "skipped"
	Error       string   `json:"error,omitempty"`
	Kernel      Kernel   `json:"kernel"`
	CgroupMode  string   `json:"cgroup_mode"` // "v1", "v2"
	MemTotalKB  int64    `json:"mem_total_kb"`
	Sysctls     Sysctls  `json:"sysctls"`
	Markers     Markers  `json:"markers"`
	Cgroups     []*Cg    `json:"cgroups"`
	Processes   []*Proc  `json:"processes"`
	Vmstat      Counter  `json:"vmstat_oom_kill"`
	Expect      Expect   `json:"expect"`
	Timing      Timing   `json:"timing"`
	Notes       []string `json:"notes,omitempty"`
}

// Kernel identifies the running kernel.
type Kernel struct {
	Release string `json:"release"` // uname -r
	Version string `json:"version"` // uname -v
	Cmdline string `json:"cmdline"`
}

// Sysctls are the OOM-related sysctls in force while the scenario ran.
type Sysctls struct {
	OOMDumpTasks          string `json:"vm.oom_dump_tasks"`
	OOMKillAllocatingTask string `json:"vm.oom_kill_allocating_task"`
	PanicOnOOM            string `json:"vm.panic_on_oom"`
	OvercommitMemory      string `json:"vm.overcommit_memory"`
}

// Markers are the texts of the /dev/kmsg records written around the scenario.
// The scenario's capture is every record strictly between them.
type Markers struct {
	Begin string `json:"begin"`
	End   string `json:"end"`
}

// Write is one value written to a cgroup control file, in order.
type Write struct {
	File  string `json:"file"`
	Value string `json:"value"`
}

// Cg is one cgroup the scenario created or relies on.
type Cg struct {
	// Path is the cgroup path as the kernel prints it (relative to the
	// hierarchy root: oom_memcg=, task_memcg=, "Memory cgroup stats for").
	Path        string   `json:"path"`
	FSPath      string   `json:"fs_path"`
	Role        string   `json:"role"` // kubepods, qos, pod, container
	QOS         string   `json:"qos,omitempty"`
	PodUID      string   `json:"pod_uid,omitempty"`
	ContainerID string   `json:"container_id,omitempty"`
	Created     bool     `json:"created"`
	Writes      []Write  `json:"writes,omitempty"`
	Limit       string   `json:"limit,omitempty"`     // memory.max / memory.limit_in_bytes read back
	OOMGroup    string   `json:"oom_group,omitempty"` // memory.oom.group read back (v2)
	Before      Counters `json:"before"`
	After       Counters `json:"after"`
	Delta       Counters `json:"delta"`
	// FilesAfter holds a few raw files read after the kill (memory.events,
	// memory.events.local, memory.oom_control, memory.failcnt, ...).
	FilesAfter map[string]string `json:"files_after,omitempty"`
}

// Counters are the kernel's own OOM counters for one cgroup. v2: memory.events
// oom / oom_kill / oom_group_kill (absent before 5.17 → null). v1:
// memory.oom_control oom_kill and under_oom.
type Counters struct {
	OOM          *int64 `json:"oom,omitempty"`
	OOMKill      *int64 `json:"oom_kill,omitempty"`
	OOMGroupKill *int64 `json:"oom_group_kill,omitempty"`
	Max          *int64 `json:"max,omitempty"`
	UnderOOM     *int64 `json:"under_oom,omitempty"`
}

// Counter is a before/after pair.
type Counter struct {
	Before int64 `json:"before"`
	After  int64 `json:"after"`
	Delta  int64 `json:"delta"`
}

// Proc is one process the scenario started (directly, or as an allocator's child).
type Proc struct {
	Pid       int      `json:"pid"`
	ParentPid int      `json:"parent_pid,omitempty"` // the allocator that started it (children)
	Role      string   `json:"role"`                 // parent | child (alloc's own words)
	Index     int      `json:"index"`
	MiB       int      `json:"mib"`
	Comm      string   `json:"comm,omitempty"` // /proc/<pid>/comm once ready
	Cgroup    string   `json:"cgroup"`
	Argv      []string `json:"argv,omitempty"`
	Ready     bool     `json:"ready"`
	Allocated bool     `json:"allocated"`
	// Exit is how the process ended: "signal:SIGKILL", "exit:0", or "" if it
	// was still alive when the scenario's outcome was recorded.
	Exit string `json:"exit"`
	// KilledByKernel is true for a SIGKILL death the runner did not cause
	// (the runner only signals in cleanup, after recording this).
	KilledByKernel bool `json:"killed_by_kernel"`
	// KilledByRunner marks survivors killed during cleanup.
	KilledByRunner bool  `json:"killed_by_runner,omitempty"`
	ExitMonoUs     int64 `json:"exit_mono_us,omitempty"` // CLOCK_MONOTONIC when reaped
}

// Expect is what the scenario was designed to produce; the host checks the
// capture against it.
type Expect struct {
	Constraint string `json:"constraint"`          // CONSTRAINT_MEMCG | CONSTRAINT_NONE
	OOMMemcg   string `json:"oom_memcg,omitempty"` // limiting cgroup (memcg OOM)
	TaskMemcg  string `json:"task_memcg,omitempty"`
	// Kills is the number of OOM kills the kernel's counters show
	// (vmstat oom_kill delta).
	Kills int `json:"kills"`
	// VictimPids are the pids that died of the kernel's SIGKILL.
	VictimPids []int `json:"victim_pids"`
	// FirstVictimPid is the victim chosen by the (first) report, when known.
	FirstVictimPid int  `json:"first_victim_pid,omitempty"`
	TaskTable      bool `json:"task_table"`
	GroupKill      bool `json:"group_kill"`
	RateLimited    bool `json:"rate_limited"`
	// RatelimitBurst and RatelimitIntervalS describe the kernel's oom_rs
	// (DEFAULT_RATELIMIT_BURST / _INTERVAL) for rate-limited scenarios.
	RatelimitBurst     int `json:"ratelimit_burst,omitempty"`
	RatelimitIntervalS int `json:"ratelimit_interval_s,omitempty"`
}

// Timing is CLOCK_MONOTONIC in microseconds (close to, but not the same
// clock as, the /dev/kmsg timestamp).
type Timing struct {
	BeginMonoUs int64 `json:"begin_mono_us"`
	EndMonoUs   int64 `json:"end_mono_us"`
	// FirstKillMonoUs/LastKillMonoUs span the kernel kills (reap times).
	FirstKillMonoUs int64 `json:"first_kill_mono_us,omitempty"`
	LastKillMonoUs  int64 `json:"last_kill_mono_us,omitempty"`
}

// ScenarioNames are the guest's scenarios in their default run order; the
// host's matrix has one column per name. The guest's tests check that its
// scenario list matches.
var ScenarioNames = []string{"v1-container", "v2-container", "v2-pod", "v2-oom-group", "v2-no-task-dump", "v2-burst", "global"}

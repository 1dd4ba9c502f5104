package report

import "time"

// Cgroup versions (see [Snapshot.Version]).
const (
	CgroupV1 = "v1"
	CgroupV2 = "v2"
)

// Snapshot is a cgroup as read right after a kill.
type Snapshot struct {
	// Path is the cgroup read, relative to the cgroup root.
	Path string `json:"path"`
	// Version is the cgroup version of the memory controller: "v1" or "v2".
	Version string `json:"version"`
	// ReadAt is when the cgroup was read.
	ReadAt time.Time `json:"read_at"`
	// LimitBytes is the memory limit (memory.max, memory.limit_in_bytes);
	// nil when there is none.
	LimitBytes *uint64 `json:"limit_bytes,omitempty"`
	// UsageBytes is the current usage (memory.current, memory.usage_in_bytes).
	UsageBytes uint64 `json:"usage_bytes"`
	// PeakBytes is the high-water mark (memory.peak, memory.max_usage_in_bytes)
	// when the kernel has one.
	PeakBytes *uint64 `json:"peak_bytes,omitempty"`
	// SwapBytes is swap in use (memory.swap.current; cgroup v1: memsw usage
	// minus usage) when accounted.
	SwapBytes *uint64 `json:"swap_bytes,omitempty"`
	// Failcnt is how often the v1 limit was hit (memory.failcnt).
	Failcnt *uint64 `json:"failcnt,omitempty"`
	// Events is cgroup v2 memory.events (hierarchical: this cgroup and its
	// descendants).
	Events *MemoryEvents `json:"events,omitempty"`
	// OOMControl is cgroup v1 memory.oom_control.
	OOMControl *OOMControl `json:"oom_control,omitempty"`
	// OOMGroup is cgroup v2 memory.oom.group: when true the kernel kills
	// every process of the cgroup together.
	OOMGroup *bool `json:"oom_group,omitempty"`
	// Procs is the number of processes left in the cgroup itself (not its
	// descendants), from cgroup.procs.
	Procs *int `json:"procs,omitempty"`
	// Stat is memory.stat, every key as the kernel names it; sizes in bytes.
	Stat map[string]uint64 `json:"stat,omitempty"`
}

// MemoryEvents is cgroup v2 memory.events.
type MemoryEvents struct {
	Low          uint64 `json:"low"`
	High         uint64 `json:"high"`
	Max          uint64 `json:"max"`
	OOM          uint64 `json:"oom"`
	OOMKill      uint64 `json:"oom_kill"`
	OOMGroupKill uint64 `json:"oom_group_kill"`
}

// OOMControl is cgroup v1 memory.oom_control.
type OOMControl struct {
	// OOMKillDisable is true when the OOM killer is disabled for the
	// cgroup (tasks hang instead of being killed).
	OOMKillDisable bool `json:"oom_kill_disable"`
	// UnderOOM is true while the cgroup is out of memory.
	UnderOOM bool `json:"under_oom"`
	// OOMKill counts the processes of this cgroup the OOM killer killed
	// (kernels >= 4.13).
	OOMKill uint64 `json:"oom_kill"`
}

// MissedKills is a count of kills the kernel counted that no report showed.
type MissedKills struct {
	// Cgroup is the cgroup whose counter moved, or "" for the node.
	Cgroup string `json:"cgroup,omitempty"`
	// Counter names the kernel counter compared: "memory.events:oom_kill",
	// "memory.events.local:oom_kill", "memory.oom_control:oom_kill" or
	// "/proc/vmstat:oom_kill".
	Counter string `json:"counter"`
	// Count is how many kills went unreported.
	Count uint64 `json:"count"`
	// Explanation says it in one sentence.
	Explanation string `json:"explanation"`
}

package report

// Derived holds facts computed from a report's own numbers: what every user
// asks first. Every field is omitted when the report lacks what it needs.
type Derived struct {
	// PageSizeBytes is the page size used to convert page counts to bytes.
	PageSizeBytes uint64 `json:"page_size_bytes"`
	// PageSizeSource says how it was found: "victim" (the Killed line's
	// total-vm in kB against the victim's task-table row in pages), or
	// "assumed" (4096, no evidence in the report).
	PageSizeSource string `json:"page_size_source"`

	// MemoryBreakdown is the limiting cgroup's (or the node's) memory at
	// the kill. It is embedded, so its keys are Derived's own in JSON; it
	// is the one place these numbers live (the diagnosis refers to it).
	MemoryBreakdown

	// VictimRSSBytes is the first victim's anon+file+shmem rss at the kill,
	// and VictimShare its fraction of UsageBytes.
	VictimRSSBytes *uint64  `json:"victim_rss_bytes,omitempty"`
	VictimShare    *float64 `json:"victim_share,omitempty"`
	// TopTasks are the largest tasks of the task table by rss.
	TopTasks []TopTask `json:"top_tasks,omitempty"`
}

// MemoryBreakdown is what the memory that ran out was made of, in bytes, as
// the report printed it: the limiting cgroup's stats (memcg OOM) or the
// node's page counters (global, cpuset, mempolicy OOM). Every field is nil
// when the report lacks what it needs.
type MemoryBreakdown struct {
	// Source names the numbers the composition below was computed from:
	// "memcg-v2-stats", "memcg-v1-stats" (total_* keys), "memcg-v1-inline"
	// (summed over the subtree), "meminfo" (node-wide), or "meminfo-nodes"
	// (a cpuset or mempolicy OOM: the Node and zone lines of the nodes the
	// allocation could use; usage is their managed minus free memory).
	Source string `json:"source,omitempty"`
	// UsageBytes is the limiting cgroup's usage (memcg) or the node's used
	// memory, total RAM minus free (global), or the allowed nodes' managed
	// memory minus free ("meminfo-nodes").
	UsageBytes *uint64 `json:"usage_bytes,omitempty"`
	// LimitBytes is the limit that was hit (memcg) or total RAM (global).
	LimitBytes *uint64 `json:"limit_bytes,omitempty"`
	// AnonBytes is anonymous memory (rss), PageCacheBytes the file pages,
	// split into ActiveFileBytes and InactiveFileBytes; ShmemBytes is shared
	// memory / tmpfs (part of the page cache on cgroup v1 and in meminfo);
	// KernelBytes is kernel memory charged (kmem, slab, stacks, page tables);
	// SwapBytes is swap in use.
	AnonBytes         *uint64 `json:"anon_bytes,omitempty"`
	PageCacheBytes    *uint64 `json:"page_cache_bytes,omitempty"`
	ActiveFileBytes   *uint64 `json:"active_file_bytes,omitempty"`
	InactiveFileBytes *uint64 `json:"inactive_file_bytes,omitempty"`
	ShmemBytes        *uint64 `json:"shmem_bytes,omitempty"`
	KernelBytes       *uint64 `json:"kernel_bytes,omitempty"`
	SwapBytes         *uint64 `json:"swap_bytes,omitempty"`
	// FreeBytes is free memory (global OOMs only).
	FreeBytes *uint64 `json:"free_bytes,omitempty"`

	// WorkingSetBytes is usage minus inactive file pages, as kubelet computes
	// container_memory_working_set_bytes (and evicts on).
	WorkingSetBytes *uint64 `json:"working_set_bytes,omitempty"`
	// DockerUsageBytes is usage minus page cache, as `docker stats` shows it.
	DockerUsageBytes *uint64 `json:"docker_usage_bytes,omitempty"`
}

// FileBytes is the page cache as active + inactive file pages when the
// report split it, else PageCacheBytes; nil when it printed neither.
func (m *MemoryBreakdown) FileBytes() *uint64 {
	switch {
	case m == nil:
		return nil
	case m.ActiveFileBytes != nil && m.InactiveFileBytes != nil:
		v := *m.ActiveFileBytes + *m.InactiveFileBytes
		return &v
	case m.PageCacheBytes != nil:
		v := *m.PageCacheBytes
		return &v
	}
	return nil
}

// Component is the byte count of a MemoryComposition.Dominant value (one
// of the Component* constants); nil when unknown.
func (m *MemoryBreakdown) Component(c string) *uint64 {
	if m == nil {
		return nil
	}
	switch c {
	case ComponentAnon:
		return m.AnonBytes
	case ComponentPageCache:
		return m.FileBytes()
	case ComponentShmem:
		return m.ShmemBytes
	case ComponentKernel:
		return m.KernelBytes
	case ComponentSwap:
		return m.SwapBytes
	}
	return nil
}

// TopTask is one of the largest tasks of a report's task table.
type TopTask struct {
	PID      int    `json:"pid"`
	Name     string `json:"name"`
	RSSBytes uint64 `json:"rss_bytes"`
	// Share is RSSBytes / Derived.UsageBytes.
	Share *float64 `json:"share,omitempty"`
	// Victim is true when this task was killed.
	Victim bool `json:"victim,omitempty"`
}

package report

import "time"

// Schema is the value of [Report.Schema] for this version of the format.
const Schema = "oomscope.report/v1"

// Kind values say which OOM path the kernel took (see [Report.Kind]).
const (
	KindMemcg     = "memcg"     // a memory cgroup hit its limit
	KindGlobal    = "global"    // the whole node (or its allowed nodes) ran out
	KindCpuset    = "cpuset"    // CONSTRAINT_CPUSET: the task's cpuset ran out
	KindMempolicy = "mempolicy" // CONSTRAINT_MEMORY_POLICY: an mbind/set_mempolicy node set ran out
	KindUnknown   = "unknown"   // not enough of the report survived to tell
)

// Report is one oom-killer invocation, rebuilt from its kernel log lines:
// from "<comm> invoked oom-killer:" to its last victim line (plus a later
// oom_reaper line when it arrives in time).
//
// Sizes are in bytes unless a field name says pages. Absent facts are left
// at their zero value and omitted from JSON; nothing is invented. A Report
// never holds references into the parser: it is safe to keep and to hand to
// another goroutine.
type Report struct {
	// Schema is always [Schema].
	Schema string `json:"schema"`
	// ID identifies the report: "<boot id>/<first seq>" when the boot id and
	// kernel sequence numbers are known, otherwise "sha256:<hex>" over the
	// host, the first kernel timestamp and the report's line texts, so that
	// the same report read twice (or from dmesg and from /dev/kmsg) gets the
	// same id.
	ID string `json:"id"`
	// Host is the host name when the source carries one (syslog, journal)
	// or the caller set it.
	Host string `json:"host,omitempty"`
	// BootID is the kernel boot id when known.
	BootID string `json:"boot_id,omitempty"`
	// KernelVersion is the release printed in the stack dump ("6.1.0-13-amd64").
	KernelVersion string `json:"kernel_version,omitempty"`
	// KernelBuild is the rest of that line ("#1 SMP Debian 6.1.55-1").
	KernelBuild string `json:"kernel_build,omitempty"`
	// Hardware is the "Hardware name:" line.
	Hardware string `json:"hardware,omitempty"`

	// Kind is one of the Kind* constants.
	Kind string `json:"kind"`
	// Constraint is the kernel's constraint name (CONSTRAINT_MEMCG, ...).
	Constraint string `json:"constraint,omitempty"`
	// OOMMemcg is the memory cgroup whose limit was hit (the limiting cgroup).
	OOMMemcg string `json:"oom_memcg,omitempty"`
	// TaskMemcg is the victim's memory cgroup.
	TaskMemcg string `json:"task_memcg,omitempty"`
	// Nodemask, Cpuset and MemsAllowed come from the header, the cpuset line
	// or the oom-kill: summary, whichever the kernel printed.
	Nodemask    string `json:"nodemask,omitempty"`
	Cpuset      string `json:"cpuset,omitempty"`
	MemsAllowed string `json:"mems_allowed,omitempty"`

	// First and Last are the first and last records of the report.
	First Stamp `json:"first"`
	Last  Stamp `json:"last"`

	// Trigger is the task that invoked the oom-killer (not the victim).
	Trigger *Trigger `json:"trigger,omitempty"`

	// Memory, MemorySwap, Kmem and Swap are the memory cgroup's page
	// counters as printed ("memory:", "memory+swap:", "kmem:" on cgroup v1,
	// "swap:" on cgroup v2).
	Memory     *Counter `json:"memory,omitempty"`
	MemorySwap *Counter `json:"memory_swap,omitempty"`
	Kmem       *Counter `json:"kmem,omitempty"`
	Swap       *Counter `json:"swap,omitempty"`
	// MemcgStats holds one entry per "Memory cgroup stats for" block: one per
	// cgroup of the subtree on kernels up to 5.2, only the limiting cgroup
	// from 5.3 on.
	MemcgStats []MemcgStats `json:"memcg_stats,omitempty"`
	// Protection is the memory.min / memory.low line of the newest kernels.
	Protection *Protection `json:"protection,omitempty"`
	// MemInfo is the node-wide memory dump of a global, cpuset or mempolicy OOM.
	MemInfo *MemInfo `json:"mem_info,omitempty"`
	// Slab is the "Unreclaimable slab info:" table.
	Slab []SlabCache `json:"unreclaimable_slab,omitempty"`

	// TaskColumns are the task table's column names as printed.
	TaskColumns []string `json:"task_columns,omitempty"`
	// Tasks is the task table (vm.oom_dump_tasks). When the table is longer
	// than the parser's cap, the rows with the largest rss are kept, in table
	// order; TasksTotal and TaskRSSPagesTotal always count every row.
	Tasks []Task `json:"tasks,omitempty"`
	// TasksTotal is the number of rows the kernel printed.
	TasksTotal int `json:"tasks_total"`
	// TasksDropped is the number of rows not kept in Tasks.
	TasksDropped int `json:"tasks_dropped,omitempty"`
	// TaskRSSPagesTotal is the sum of the rss column over every row.
	TaskRSSPagesTotal uint64 `json:"task_rss_pages_total,omitempty"`

	// Victims are exactly the processes the kernel killed in this report:
	// more than one under memory.oom.group, none when it killed nothing
	// (no killable process, a panic, a task already exiting) or when the
	// victim lines are missing. A task the kernel skipped because it was
	// already exiting is in AlreadyExiting, not here, so that counting
	// Victims gives the kernel's oom_kill count.
	Victims []Victim `json:"victims"`
	// AlreadyExiting are the tasks the kernel chose but did not kill:
	// "OOM victim N (x) is already exiting. Skip killing the task" (5.9+).
	AlreadyExiting []ExitingTask `json:"already_exiting,omitempty"`
	// Chosen is the task a "Kill process N (x) score S or sacrifice child"
	// line (<= 5.0) selected when no Killed line follows it in the input:
	// the chosen task, not necessarily the one killed (the kernel may kill
	// a child instead). With its Killed line it is Victim.Chosen instead.
	Chosen *Chosen `json:"chosen,omitempty"`
	// SummaryVictim is the victim as the oom-kill: summary names it
	// (task=, pid=, uid=). Its pid can differ from the Killed line's when the
	// victim's main thread had already released its memory.
	SummaryVictim *SummaryVictim `json:"summary_victim,omitempty"`
	// OOMGroup is the cgroup named by "Tasks in <path> are going to be killed
	// due to memory.oom.group set".
	OOMGroup string `json:"oom_group,omitempty"`
	// NoKillable is set by "Out of memory and no killable processes...".
	NoKillable bool `json:"no_killable,omitempty"`
	// Panic is the panic text when the kernel panicked on this OOM.
	Panic string `json:"panic,omitempty"`
	// SuppressedBefore is N from an "oom_kill_process: N callbacks
	// suppressed" line seen just before this report: that many reports were
	// rate limited before it.
	SuppressedBefore int `json:"suppressed_before,omitempty"`

	// Partial is true when the kernel rate limited the report: only the
	// victim line(s) were printed, the header and memory dump were not.
	Partial bool `json:"partial"`
	// Incomplete is true when lines of the report are missing: a sequence
	// gap, a report cut short by a new one, a source that ended or went idle
	// before the victim line. Problems says why.
	Incomplete bool `json:"incomplete"`
	// Gap is true when kernel sequence numbers show records were lost while
	// the report was being read; LostRecords counts them.
	Gap         bool   `json:"gap,omitempty"`
	LostRecords uint64 `json:"lost_records,omitempty"`
	// Problems lists, in words, everything that made the report partial or
	// incomplete and every line that could not be parsed.
	Problems []string `json:"problems,omitempty"`
	// UnparsedLines counts lines inside the report that were not understood
	// (other subsystems' records interleaved, unknown formats).
	UnparsedLines int `json:"unparsed_lines,omitempty"`

	// Derived holds facts computed from the numbers above.
	Derived *Derived `json:"derived,omitempty"`

	// Raw holds the report's records as read (for /dev/kmsg: escapes intact),
	// up to the parser's line cap; RawDropped counts the ones not kept.
	Raw        []string `json:"raw,omitempty"`
	RawDropped int      `json:"raw_dropped,omitempty"`
}

// Stamp is a point in a report: the kernel sequence number and timestamps of
// one record.
type Stamp struct {
	// Seq is the kernel sequence number; omitted when the source has none.
	Seq uint64 `json:"seq,omitempty"`
	// MonoUsec is the kernel timestamp in microseconds since boot.
	MonoUsec *int64 `json:"mono_usec,omitempty"`
	// Wall is the wall-clock time when the source knows it.
	Wall *time.Time `json:"wall,omitempty"`
}

// Trigger is the task that invoked the oom-killer, from the header line and
// the stack dump.
type Trigger struct {
	Comm string `json:"comm"`
	// PID comes from the stack dump's "CPU: N PID: N Comm:" line.
	PID *int `json:"pid,omitempty"`
	UID *int `json:"uid,omitempty"`
	CPU *int `json:"cpu,omitempty"`
	// GFPMask is the allocation mask as printed ("0xcc0"); empty when the
	// header was cut before it.
	GFPMask string `json:"gfp_mask,omitempty"`
	// GFPFlags are its symbolic names (kernels >= 4.6).
	GFPFlags []string `json:"gfp_flags,omitempty"`
	// Order is the allocation order; nil when the header was cut before it.
	Order *int `json:"order,omitempty"`
	// OOMScoreAdj is the trigger's own oom_score_adj.
	// It is nil when the header was cut before it.
	OOMScoreAdj *int `json:"oom_score_adj,omitempty"`
	// Tainted is the taint string ("" for "Not tainted").
	Tainted string `json:"tainted,omitempty"`
	// CompactionDisabled is set by "COMPACTION is disabled!!!".
	CompactionDisabled bool `json:"compaction_disabled,omitempty"`
	// CallTrace holds the stack dump lines (bounded).
	CallTrace []string `json:"call_trace,omitempty"`
}

// Counter is a memory cgroup page counter line:
// "memory: usage 98304kB, limit 98304kB, failcnt 2797".
type Counter struct {
	UsageBytes uint64 `json:"usage_bytes"`
	LimitBytes uint64 `json:"limit_bytes"`
	Failcnt    uint64 `json:"failcnt"`
	// Unlimited is true when the limit is the kernel's "no limit" value.
	Unlimited bool `json:"unlimited,omitempty"`
}

// MemcgStats is one "Memory cgroup stats for <path>:" block.
type MemcgStats struct {
	Path string `json:"path"`
	// Format is "v1-inline" (kernels <= 5.2: one line of key:NKB pairs),
	// or "keys" (5.3+: one "key value" per line, v2 names; 6.5+ on cgroup v1:
	// the v1 memory.stat names including total_*).
	Format string `json:"format"`
	// Stats are the values: memory sizes in bytes, event counters
	// (pgfault, pgscan, workingset_*, thp_*, ...) as counts.
	Stats map[string]uint64 `json:"stats"`
}

// Protection is "Memory cgroup min protection NkB -- low protection NkB".
type Protection struct {
	MinBytes uint64 `json:"min_bytes"`
	LowBytes uint64 `json:"low_bytes"`
}

// MemInfo is the node-wide memory dump (show_mem) of a non-memcg OOM.
type MemInfo struct {
	// Pages are the counters of the "active_anon:N inactive_anon:N ..."
	// summary, in pages.
	Pages map[string]uint64 `json:"pages,omitempty"`
	// Nodes are the per-node "Node N active_anon:...kB" lines.
	Nodes []NodeInfo `json:"nodes,omitempty"`
	// Zones are the per-zone "Node N DMA32 free:...kB min:..." lines.
	Zones []ZoneInfo `json:"zones,omitempty"`
	// Totals are the tail counters: pagecache_pages, swap_cache_pages,
	// free_swap_bytes, total_swap_bytes, ram_pages, highmem_pages,
	// reserved_pages, cma_reserved_pages, hwpoisoned_pages, shared_pages.
	Totals map[string]uint64 `json:"totals,omitempty"`
	// Other keeps the remaining lines (free areas, hugepages, per-cpu) raw.
	Other []string `json:"other,omitempty"`
}

// NodeInfo is a "Node N ..." line of the memory dump, sizes in bytes.
type NodeInfo struct {
	Node             int               `json:"node"`
	Bytes            map[string]uint64 `json:"bytes"`
	AllUnreclaimable *bool             `json:"all_unreclaimable,omitempty"`
}

// ZoneInfo is a zone line of the memory dump, sizes in bytes.
type ZoneInfo struct {
	Node          *int              `json:"node,omitempty"`
	Zone          string            `json:"zone"`
	Bytes         map[string]uint64 `json:"bytes"`
	LowmemReserve []uint64          `json:"lowmem_reserve_pages,omitempty"`
}

// SlabCache is a row of "Unreclaimable slab info:".
type SlabCache struct {
	Name       string `json:"name"`
	UsedBytes  uint64 `json:"used_bytes"`
	TotalBytes uint64 `json:"total_bytes"`
}

// Task is a row of the task table. Memory columns are in pages except
// PgtablesBytes; NrPtes and NrPmds are page-table page counts (old kernels).
type Task struct {
	PID           int     `json:"pid"`
	UID           int     `json:"uid"`
	TGID          int     `json:"tgid"`
	TotalVMPages  uint64  `json:"total_vm_pages"`
	RSSPages      uint64  `json:"rss_pages"`
	RSSAnonPages  *uint64 `json:"rss_anon_pages,omitempty"`
	RSSFilePages  *uint64 `json:"rss_file_pages,omitempty"`
	RSSShmemPages *uint64 `json:"rss_shmem_pages,omitempty"`
	PgtablesBytes *uint64 `json:"pgtables_bytes,omitempty"`
	NrPtes        *uint64 `json:"nr_ptes,omitempty"`
	NrPmds        *uint64 `json:"nr_pmds,omitempty"`
	SwapEnts      uint64  `json:"swapents"`
	OOMScoreAdj   int     `json:"oom_score_adj"`
	Name          string  `json:"name"`
}

// Victim is a process the oom-killer killed.
//
// The sizes of its Killed line are TotalVM, AnonRSS and FileRSS, nil when
// not read (the line was cut short, or the victim is inferred from another
// line). TotalVMBytes, AnonRSSBytes and FileRSSBytes hold the same sizes
// as plain numbers, 0 when not read, for code that adds them up; set both
// with [Victim.SetSizes].
type Victim struct {
	PID  int    `json:"pid"`
	Comm string `json:"comm"`
	// Message is the prefix of the Killed line ("Memory cgroup out of
	// memory", "Out of memory", "Out of memory (oom_kill_allocating_task)");
	// on kernels <= 5.0, whose Killed line has no prefix, the prefix of the
	// "Kill process ... or sacrifice child" line before it.
	Message string `json:"message,omitempty"`
	// TotalVM, AnonRSS and FileRSS are total-vm:, anon-rss: and
	// file-rss:, in bytes; nil when not read.
	TotalVM *uint64 `json:"total_vm_bytes,omitempty"`
	AnonRSS *uint64 `json:"anon_rss_bytes,omitempty"`
	FileRSS *uint64 `json:"file_rss_bytes,omitempty"`
	// TotalVMBytes, AnonRSSBytes and FileRSSBytes are the sizes above as
	// numbers, 0 when not read (not in JSON: there the sizes are the
	// pointers').
	TotalVMBytes uint64 `json:"-"`
	AnonRSSBytes uint64 `json:"-"`
	FileRSSBytes uint64 `json:"-"`
	// Inferred names the line the victim was read from when its Killed
	// line is missing: "oom_reaper" for a reaper line about the pid the
	// report's summary or Kill line names. Its sizes are then unread.
	Inferred string `json:"inferred,omitempty"`
	// ShmemRSSBytes is absent on kernels whose Killed line has no
	// shmem-rss field (before 4.5).
	ShmemRSSBytes *uint64 `json:"shmem_rss_bytes,omitempty"`
	UID           *int    `json:"uid,omitempty"`
	PgtablesBytes *uint64 `json:"pgtables_bytes,omitempty"`
	OOMScoreAdj   *int    `json:"oom_score_adj,omitempty"`
	// Chosen is the "Kill process N (x) score S or sacrifice child" line of
	// kernels <= 5.0: the task selected before a child was sacrificed.
	Chosen *Chosen `json:"chosen,omitempty"`
	// GroupMember is true for a process killed because of memory.oom.group.
	GroupMember bool `json:"group_member,omitempty"`
	// Exiting was set by parsers before AlreadyExiting existed, on an
	// entry for "OOM victim N (x) is already exiting": reports written by
	// them may hold it. This parser never sets it.
	Exiting bool `json:"exiting,omitempty"`
	// SharedMM lists "Kill process N (x) sharing same memory" lines (3.x).
	SharedMM []PIDComm `json:"shared_mm,omitempty"`
	// PinnedBy is "oom killer N (x) has mm pinned by M (y)".
	PinnedBy *PIDComm `json:"mm_pinned_by,omitempty"`
	// Reaper is the oom_reaper outcome when its line arrived in time.
	Reaper *Reaper `json:"reaper,omitempty"`
	// Seq is the sequence number of the Killed line (0 when unknown).
	Seq uint64 `json:"seq,omitempty"`
}

// ExitingTask is a task the oom-killer chose but did not kill because it
// was already exiting.
type ExitingTask struct {
	PID  int    `json:"pid"`
	Comm string `json:"comm"`
	// Message is the line's prefix ("Memory cgroup out of memory").
	Message string `json:"message,omitempty"`
	// Seq is the sequence number of the line (0 when unknown).
	Seq uint64 `json:"seq,omitempty"`
}

// SummaryVictim is the task=, pid=, uid= part of the oom-kill: line.
type SummaryVictim struct {
	PID  int    `json:"pid"`
	Comm string `json:"comm"`
	UID  *int   `json:"uid,omitempty"`
}

// Chosen is the task selected by the badness heuristic (kernels <= 5.0).
type Chosen struct {
	PID   int    `json:"pid"`
	Comm  string `json:"comm"`
	Score int64  `json:"score"`
	// Message is the Kill line's prefix ("Memory cgroup out of memory"),
	// on Report.Chosen (on Victim.Chosen it is the victim's Message).
	Message string `json:"message,omitempty"`
}

// PIDComm names a process.
type PIDComm struct {
	PID  int    `json:"pid"`
	Comm string `json:"comm"`
}

// Reaper is an oom_reaper line for a victim.
type Reaper struct {
	// Reaped is true for "reaped process", false for "unable to reap".
	Reaped bool `json:"reaped"`
	// AnonRSSBytes, FileRSSBytes and ShmemRSSBytes are what the reaper
	// left; nil for "unable to reap" and for a size not read (a line cut
	// short).
	AnonRSSBytes  *uint64 `json:"anon_rss_bytes,omitempty"`
	FileRSSBytes  *uint64 `json:"file_rss_bytes,omitempty"`
	ShmemRSSBytes *uint64 `json:"shmem_rss_bytes,omitempty"`
}

package report

// Scope values (see [Diagnosis.Scope]).
const (
	ScopeContainer     = "container"
	ScopePod           = "pod"
	ScopeKubepods      = "kubepods"
	ScopeNode          = "node"
	ScopeCpuset        = "cpuset"
	ScopeMempolicy     = "mempolicy"
	ScopeSystemService = "system-service"
	ScopeOther         = "other"
)

// Outcome values (see [Diagnosis.Outcome]).
const (
	// OutcomeContainerRestarts: the container's main process died; the
	// container exits with reason OOMKilled and restarts per restartPolicy.
	OutcomeContainerRestarts = "container-restarts"
	// OutcomeChildKilled: a child process died; the container keeps
	// running and Kubernetes shows nothing.
	OutcomeChildKilled = "child-killed"
	// OutcomeSandboxKilled: the pod's pause process died; the kubelet
	// recreates the pod sandbox and every container of the pod.
	OutcomeSandboxKilled = "sandbox-killed"
	// OutcomeProcessKilled: the victim was not in a container.
	OutcomeProcessKilled = "process-killed"
	// OutcomeNothingKilled: no process was killed (none killable, or the
	// victim was already exiting).
	OutcomeNothingKilled = "nothing-killed"
	// OutcomeUnknown: the report does not tell.
	OutcomeUnknown = "unknown"
)

// Diagnosis is the answer an on-call engineer wants from a report. Every
// item is computed from the report's own numbers (and the pod lookup when
// there is one) and explained in one sentence.
type Diagnosis struct {
	// Scope is which limit was hit: container, pod, kubepods, node,
	// cpuset, mempolicy, system-service or other.
	Scope string `json:"scope"`
	// ScopeExplanation says why, in one sentence.
	ScopeExplanation string `json:"scope_explanation"`
	// LimitBytes is the limit that was hit, when the report printed it.
	LimitBytes *uint64 `json:"limit_bytes,omitempty"`
	// MainProcessKilled is true when the container's main process died
	// (the container restarts), false when only a child died; nil when
	// unknown.
	MainProcessKilled *bool `json:"main_process_killed,omitempty"`
	// Outcome is one of the Outcome* values.
	Outcome string `json:"outcome"`
	// OutcomeExplanation says why, in one sentence.
	OutcomeExplanation string `json:"outcome_explanation"`
	// Memory is what the memory was made of at the kill.
	Memory *MemoryComposition `json:"memory,omitempty"`
	// Victim is why this process was chosen.
	Victim *VictimChoice `json:"victim,omitempty"`
	// OOMGroup is set when memory.oom.group killed processes together.
	OOMGroup *OOMGroupKill `json:"oom_group,omitempty"`
	// Summary is the whole answer in one line.
	Summary string `json:"summary"`
}

// MemoryComposition is the limiting cgroup's (or, for a node OOM, the
// node's) memory at the kill.
type MemoryComposition struct {
	// Source is where the numbers come from (oomparse.Derived.Source).
	Source     string  `json:"source,omitempty"`
	UsageBytes uint64  `json:"usage_bytes"`
	LimitBytes *uint64 `json:"limit_bytes,omitempty"`
	// AnonBytes .. SwapBytes are the components, as the report printed
	// them; nil when it did not.
	AnonBytes         *uint64 `json:"anon_bytes,omitempty"`
	ActiveFileBytes   *uint64 `json:"active_file_bytes,omitempty"`
	InactiveFileBytes *uint64 `json:"inactive_file_bytes,omitempty"`
	ShmemBytes        *uint64 `json:"shmem_bytes,omitempty"`
	KernelBytes       *uint64 `json:"kernel_bytes,omitempty"`
	SwapBytes         *uint64 `json:"swap_bytes,omitempty"`
	// AnonShare and FileShare are anon and active+inactive file pages as
	// fractions of the usage.
	AnonShare *float64 `json:"anon_share,omitempty"`
	FileShare *float64 `json:"file_share,omitempty"`
	// WorkingSetBytes is usage − inactive_file, as the kubelet computes it.
	WorkingSetBytes *uint64 `json:"working_set_bytes,omitempty"`
	// ReclaimableBytes is the page cache the kernel could drop
	// (active + inactive file).
	ReclaimableBytes *uint64 `json:"reclaimable_bytes,omitempty"`
	// MostlyReclaimable is true when at least half of the usage was page
	// cache: the limit is too small for the I/O, not a leak.
	MostlyReclaimable bool `json:"mostly_reclaimable"`
	// Dominant names the largest component: anon, page cache, shmem, kernel
	// or swap.
	Dominant string `json:"dominant,omitempty"`
	// Explanation says it in one sentence.
	Explanation string `json:"explanation"`
}

// VictimChoice is why the oom-killer chose its victim.
type VictimChoice struct {
	PID  int    `json:"pid"`
	Comm string `json:"comm"`
	// RSSBytes is the victim's resident memory (anon + file + shmem) and
	// Share its fraction of the usage.
	RSSBytes *uint64  `json:"rss_bytes,omitempty"`
	Share    *float64 `json:"share,omitempty"`
	// BiggestConsumer is true when no task of the table used more memory
	// (rss + swap + page tables, the kernel's badness without
	// oom_score_adj); nil without a task table.
	BiggestConsumer *bool `json:"biggest_consumer,omitempty"`
	// Biggest is the largest task when it is not the victim.
	Biggest *TaskRef `json:"biggest,omitempty"`
	// OOMScoreAdj is the victim's oom_score_adj.
	OOMScoreAdj *int `json:"oom_score_adj,omitempty"`
	// ImpliedQoS is what the kubelet's oom_score_adj values say:
	// Guaranteed, Burstable, BestEffort, pod-sandbox, node-daemon (kubelet,
	// runtime) or not-kubernetes.
	ImpliedQoS string `json:"implied_qos,omitempty"`
	// ExpectedOOMScoreAdj is what the kubelet sets for the pod's QoS
	// class (for Burstable: from the container's memory request and the
	// node's capacity, when both are known).
	ExpectedOOMScoreAdj *int `json:"expected_oom_score_adj,omitempty"`
	// QoSMismatch is true when OOMScoreAdj does not fit the pod's QoS class.
	QoSMismatch bool `json:"qos_mismatch"`
	// Explanation says it in one sentence.
	Explanation string `json:"explanation"`
}

// TaskRef names a task of the task table.
type TaskRef struct {
	PID         int    `json:"pid"`
	Name        string `json:"name"`
	Bytes       uint64 `json:"bytes"`
	OOMScoreAdj int    `json:"oom_score_adj"`
}

// OOMGroupKill is a memory.oom.group kill.
type OOMGroupKill struct {
	// Cgroup is the cgroup whose processes were killed together.
	Cgroup string `json:"cgroup"`
	// Killed is how many processes the report shows killed.
	Killed int `json:"killed"`
	// Explanation says it in one sentence.
	Explanation string `json:"explanation"`
}

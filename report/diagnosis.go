package report

import "time"

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

// ScopeReason values (see [Diagnosis.ScopeReason]): the evidence the scope
// was decided from.
const (
	// ScopeReasonGlobalConstraint: the report is a global OOM
	// (CONSTRAINT_NONE): no cgroup limit, the node ran out.
	ScopeReasonGlobalConstraint = "global-constraint"
	// ScopeReasonCpusetConstraint: CONSTRAINT_CPUSET, the cpuset's memory
	// nodes ran out.
	ScopeReasonCpusetConstraint = "cpuset-constraint"
	// ScopeReasonMempolicyConstraint: CONSTRAINT_MEMORY_POLICY, the
	// mbind/set_mempolicy nodes ran out.
	ScopeReasonMempolicyConstraint = "mempolicy-constraint"
	// ScopeReasonLimitingCgroupLevel: the limiting cgroup's path says
	// what it is (container, pod, QoS, kubepods, systemd unit, other);
	// [DiagnosisFacts.LimitingLevel] is the level.
	ScopeReasonLimitingCgroupLevel = "limiting-cgroup-level"
	// ScopeReasonLimitingCgroupUnnamed: a memory cgroup limit was hit but
	// the report does not name the cgroup.
	ScopeReasonLimitingCgroupUnnamed = "limiting-cgroup-unnamed"
	// ScopeReasonReportCutShort: the lines that say which limit was hit
	// are missing (rate limited, cut short).
	ScopeReasonReportCutShort = "report-cut-short"
	// ScopeReasonNoReport: there was no report to diagnose.
	ScopeReasonNoReport = "no-report"
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

// OutcomeReason values (see [Diagnosis.OutcomeReason]): the evidence the
// outcome was decided from.
const (
	// OutcomeReasonNoReport: there was no report to diagnose.
	OutcomeReasonNoReport = "no-report"
	// OutcomeReasonNoKillable: the kernel found no killable process.
	OutcomeReasonNoKillable = "no-killable"
	// OutcomeReasonNoVictim: the report has no victim line.
	OutcomeReasonNoVictim = "no-victim"
	// OutcomeReasonVictimExiting: the chosen process was already exiting.
	OutcomeReasonVictimExiting = "victim-exiting"
	// OutcomeReasonPauseProcess: the victim is the pod's pause process
	// (its name, or oom_score_adj −998).
	OutcomeReasonPauseProcess = "pause-process"
	// OutcomeReasonVictimCgroupUnknown: the report does not say which
	// cgroup the victim was in.
	OutcomeReasonVictimCgroupUnknown = "victim-cgroup-unknown"
	// OutcomeReasonNotInContainer: the victim's cgroup is not a
	// container's.
	OutcomeReasonNotInContainer = "not-in-container"
	// OutcomeReasonAPITerminatedOOMKilled: the API shows the victim's
	// container instance terminated with reason OOMKilled.
	OutcomeReasonAPITerminatedOOMKilled = "api-terminated-oomkilled"
	// OutcomeReasonAPITerminatedOther: the API shows it terminated with
	// another reason: a child died, then the main process exited.
	OutcomeReasonAPITerminatedOther = "api-terminated-other"
	// OutcomeReasonAPIRunningAfterKill: the API shows the same instance
	// still running well after the kill: a child died.
	OutcomeReasonAPIRunningAfterKill = "api-running-after-kill"
	// OutcomeReasonNoTaskTable: no task table, so main or child is unknown.
	OutcomeReasonNoTaskTable = "no-task-table"
	// OutcomeReasonTaskTableTooWide: the task table covers more than the
	// victim's pod, so it cannot tell.
	OutcomeReasonTaskTableTooWide = "task-table-too-wide"
	// OutcomeReasonTaskTableLowestTGID: the victim has the lowest tgid of
	// the container's task table: the main process.
	OutcomeReasonTaskTableLowestTGID = "task-table-lowest-tgid"
	// OutcomeReasonTaskTableLowerTGID: another task of the container has
	// a lower tgid: the victim was a child.
	OutcomeReasonTaskTableLowerTGID = "task-table-lower-tgid"
	// OutcomeReasonPodTaskTableLowestTGID and
	// OutcomeReasonPodTaskTableLowerTGID: the same from a pod's task table
	// (pause process left out), which makes it most likely, not certain.
	OutcomeReasonPodTaskTableLowestTGID = "pod-task-table-lowest-tgid"
	OutcomeReasonPodTaskTableLowerTGID  = "pod-task-table-lower-tgid"
)

// Component values (see [MemoryComposition.Dominant]).
const (
	ComponentAnon      = "anon"
	ComponentPageCache = "page cache"
	ComponentShmem     = "shmem"
	ComponentKernel    = "kernel"
	ComponentSwap      = "swap"
)

// VictimReason values (see [VictimChoice.Reason]): why the kernel chose
// this victim.
const (
	// VictimReasonBiggestConsumer: no task of the table used more.
	VictimReasonBiggestConsumer = "biggest-consumer"
	// VictimReasonOOMScoreAdj: a bigger task existed, but the victim's
	// higher oom_score_adj outweighed the difference.
	VictimReasonOOMScoreAdj = "oom-score-adj"
	// VictimReasonOOMGroup: memory.oom.group killed the whole group.
	VictimReasonOOMGroup = "oom-group"
	// VictimReasonBadnessRounding: a bigger task existed with no lower
	// oom_score_adj: the kernel's rounding (or an adj the table does not
	// show) favoured the victim.
	VictimReasonBadnessRounding = "badness-rounding"
	// VictimReasonNoTaskTable: the report has no task table (or no row
	// for the victim) to compare with.
	VictimReasonNoTaskTable = "no-task-table"
)

// ImpliedQoS values besides the QoS classes (see [VictimChoice.ImpliedQoS]).
const (
	ImpliedPodSandbox    = "pod-sandbox"
	ImpliedNodeDaemon    = "node-daemon"
	ImpliedNotKubernetes = "not-kubernetes"
)

// QoSCheck values (see [VictimChoice.QoSCheck]).
const (
	// QoSCheckMatch: oom_score_adj fits the pod's QoS class.
	QoSCheckMatch = "match"
	// QoSCheckMismatch: it does not: the process or its runtime changed
	// it, or the kubelet did not start it.
	QoSCheckMismatch = "mismatch"
	// QoSCheckNodeCritical: −997 in a pod that is not Guaranteed: a
	// node-critical pod (system-node-critical, system-cluster-critical)
	// gets it whatever its class. QoSMismatch is true.
	QoSCheckNodeCritical = "node-critical"
	// QoSCheckNotChecked: no pod QoS class to compare with (not in a pod,
	// or no class known).
	QoSCheckNotChecked = "not-checked"
)

// Diagnosis is the answer an on-call engineer wants from a report. It is
// computed in two steps: codes and numbers first (the Scope, Outcome and
// *Reason codes, the byte counts, the victim choice), then sentences (the
// *Explanation fields and Summary), written from the codes and numbers
// alone, so that each output can take what it needs.
type Diagnosis struct {
	// Scope is which limit was hit: container, pod, kubepods, node,
	// cpuset, mempolicy, system-service or other.
	Scope string `json:"scope"`
	// ScopeReason is the evidence Scope was decided from (ScopeReason*).
	ScopeReason string `json:"scope_reason"`
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
	// OutcomeReason is the evidence Outcome was decided from
	// (OutcomeReason*).
	OutcomeReason string `json:"outcome_reason"`
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

	// Facts are the names and figures the sentences cite besides the
	// fields above. Not serialized: each is a key elsewhere in the
	// enriched report or a figure of a decision; nil in a diagnosis
	// decoded from JSON.
	Facts *DiagnosisFacts `json:"-"`
}

// DiagnosisFacts are what the compute step gathered for the render step
// besides the codes and numbers of [Diagnosis], so that rendering reads
// nothing but the diagnosis.
type DiagnosisFacts struct {
	// Kind is the report's kind (Kind* values).
	Kind string
	// OOMMemcg is the limiting cgroup as printed; MemsAllowed and
	// Nodemask the cpuset's and memory policy's nodes.
	OOMMemcg, MemsAllowed, Nodemask string
	// LimitingLevel, LimitingQoS and LimitingUnit describe the limiting
	// cgroup (LimitingUnit falls back to OOMMemcg for a systemd unit).
	LimitingLevel Level
	LimitingQoS   string
	LimitingUnit  string
	// VictimLevel, VictimUnit and VictimPath describe the victim's cgroup.
	VictimLevel Level
	VictimUnit  string
	VictimPath  string

	// Pod and container, as far as known.
	PodNamespace, PodName, PodUID, PodQoS        string
	HasContainer                                 bool
	ContainerName, ContainerID, ContainerRuntime string
	// ContainerLimitBytes is the container's own memory limit; NoContainerLimit
	// is true when the API showed the container without one.
	ContainerLimitBytes *uint64
	NoContainerLimit    bool
	// RestartCount is the container's restart count from the API.
	RestartCount *int32

	// VictimTGID is the victim's tgid (its pid when the table lacks it);
	// MainPID and MainName the task of lowest tgid of the task table the
	// outcome was decided from.
	VictimTGID int
	MainPID    int
	MainName   string
	// APIReason, APIExitCode and APIObservedAfter are the API's view of
	// the victim's container instance, when it decided the outcome.
	APIReason        string
	APIExitCode      int32
	APIObservedAfter time.Duration

	// TasksTotal is the number of tasks the table listed, and
	// VictimTaskBytes the victim's rss + swap + page tables in it.
	TasksTotal      int
	VictimTaskBytes uint64
}

// MemoryComposition is what the limiting cgroup's (or, for a node OOM, the
// node's) memory was made of at the kill. The byte counts themselves are
// the report's derived figures ([Derived]'s [MemoryBreakdown]); this holds
// only what the diagnosis makes of them.
type MemoryComposition struct {
	// AnonShare and FileShare are anon and active+inactive file pages as
	// fractions of the usage.
	AnonShare *float64 `json:"anon_share,omitempty"`
	FileShare *float64 `json:"file_share,omitempty"`
	// ReclaimableBytes is the page cache the kernel could drop
	// (active + inactive file).
	ReclaimableBytes *uint64 `json:"reclaimable_bytes,omitempty"`
	// MostlyReclaimable is true when at least half of the usage was page
	// cache: the limit is too small for the I/O, not a leak.
	MostlyReclaimable bool `json:"mostly_reclaimable"`
	// Dominant names the largest component (Component* values).
	Dominant string `json:"dominant,omitempty"`
	// Explanation says it in one sentence.
	Explanation string `json:"explanation"`

	// Breakdown refers to the numbers the composition was computed from
	// (the report's Derived.MemoryBreakdown). Not serialized: they are
	// the report's derived keys.
	Breakdown *MemoryBreakdown `json:"-"`
}

// VictimChoice is why the oom-killer chose its victim.
type VictimChoice struct {
	PID  int    `json:"pid"`
	Comm string `json:"comm"`
	// RSSBytes is the victim's resident memory (anon + file + shmem) and
	// Share its fraction of the usage.
	RSSBytes *uint64  `json:"rss_bytes,omitempty"`
	Share    *float64 `json:"share,omitempty"`
	// Reason is why the kernel chose it (VictimReason*).
	Reason string `json:"reason"`
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
	// PodQoS is the pod's QoS class OOMScoreAdj was checked against, when
	// it was.
	PodQoS string `json:"pod_qos,omitempty"`
	// ExpectedOOMScoreAdj is what the kubelet sets for the pod's QoS
	// class (for Burstable: from the container's memory request and the
	// node's capacity, when both are known).
	ExpectedOOMScoreAdj *int `json:"expected_oom_score_adj,omitempty"`
	// QoSCheck is the result of checking OOMScoreAdj against PodQoS
	// (QoSCheck*); empty without an oom_score_adj.
	QoSCheck string `json:"qos_check,omitempty"`
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

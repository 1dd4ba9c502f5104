package report

import (
	"time"
)

// Enriched is a parsed OOM report with everything enrichment learned about it.
// It marshals to the report's own JSON object with the enrichment keys
// (pod, container, cgroups, snapshot, missed_kills, diagnosis, enrichment)
// added beside the report's keys.
type Enriched struct {
	*Report

	// Pod is the Kubernetes pod of the victim's cgroup (or, when the
	// victim's cgroup is not a pod's, of the limiting cgroup). Nil when the
	// cgroups are not Kubernetes pods'. From the cgroup path alone only
	// UID and QoSClass are known; the API server fills the rest.
	Pod *Pod `json:"pod,omitempty"`
	// Container is the container of the victim's cgroup. Nil when the
	// victim's cgroup is not a container's.
	Container *Container `json:"container,omitempty"`
	// Cgroups is what the limiting (oom_memcg) and victim (task_memcg)
	// cgroup paths say.
	Cgroups *Cgroups `json:"cgroups,omitempty"`
	// Snapshot is the limiting cgroup as read right after the kill; nil
	// when it no longer existed or the report came from a file.
	Snapshot *Snapshot `json:"snapshot,omitempty"`
	// MissedKills lists kills the kernel counted but no report showed,
	// found since the previous report of the same cgroup (or of the node).
	MissedKills []MissedKills `json:"missed_kills,omitempty"`
	// Diagnosis is the answer: which limit, what was killed, why.
	Diagnosis *Diagnosis `json:"diagnosis,omitempty"`
	// Attribution says how the victim's cgroup (and so its pod) is known:
	// "report" when the kernel printed it in the report, "proc" when the
	// report lacks it (the kernel rate-limited it to its victim line) and
	// the victim's /proc/<pid>/cgroup was read as its line arrived, for a
	// process of the same name, "counters" when the kernel's per-cgroup
	// OOM-kill counters showed where the kill went (enrich/counterattr).
	// Empty when it is not known.
	Attribution string `json:"attribution,omitempty"`
	// Enrichment says which sources were used and what failed.
	Enrichment Enrichment `json:"enrichment"`
}

// WithoutRaw returns r without the raw kernel lines (and their dropped
// count), for outputs that leave them out; r itself is not changed.
func (r *Enriched) WithoutRaw() *Enriched {
	if r == nil || r.Report == nil || (len(r.Raw) == 0 && r.RawDropped == 0) {
		return r
	}
	rep := *r.Report
	rep.Raw, rep.RawDropped = nil, 0
	out := *r
	out.Report = &rep
	return &out
}

// Cgroups is the parsed form of the report's two cgroup paths.
type Cgroups struct {
	// Limiting is the cgroup whose limit was hit (oom_memcg); nil for a
	// global, cpuset or mempolicy OOM.
	Limiting *CgroupPath `json:"limiting,omitempty"`
	// Victim is the victim's own cgroup (task_memcg).
	Victim *CgroupPath `json:"victim,omitempty"`
}

// Pod is a Kubernetes pod's identity and memory settings.
type Pod struct {
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name,omitempty"`
	UID       string `json:"uid"`
	// QoSClass is status.qosClass (Guaranteed, Burstable, BestEffort), or
	// what the cgroup path tells when the API server was not asked.
	QoSClass string `json:"qos_class,omitempty"`
	Node     string `json:"node,omitempty"`
	// Owner is the workload that owns the pod, followed up the chain:
	// ReplicaSet → Deployment, Job → CronJob, StatefulSet, DaemonSet.
	Owner *Owner `json:"owner,omitempty"`
	// Labels is the configured subset of the pod's labels.
	Labels map[string]string `json:"labels,omitempty"`
	// MemoryRequestBytes and MemoryLimitBytes are the sums over the pod's
	// app containers (the pod-level cgroup limit is the sum of limits when
	// every container has one). Nil when not all containers set one.
	MemoryRequestBytes *int64 `json:"memory_request_bytes,omitempty"`
	MemoryLimitBytes   *int64 `json:"memory_limit_bytes,omitempty"`
	// Deleted is true when the pod was resolved from the cache of
	// recently deleted pods.
	Deleted bool `json:"deleted,omitempty"`
}

// Owner is a pod's owning workload.
type Owner struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
}

// Container is a container's identity and memory settings.
type Container struct {
	Name string `json:"name,omitempty"`
	// ID is the runtime's container id, without the runtime:// prefix.
	ID string `json:"id,omitempty"`
	// Runtime is containerd, cri-o, docker or podman, or the API's
	// container id scheme (kata, ...) for another runtime.
	Runtime string `json:"runtime,omitempty"`
	Image   string `json:"image,omitempty"`
	// Kind is "app", "init" or "ephemeral".
	Kind               string `json:"kind,omitempty"`
	MemoryRequestBytes *int64 `json:"memory_request_bytes,omitempty"`
	MemoryLimitBytes   *int64 `json:"memory_limit_bytes,omitempty"`
	// RestartCount is the container's restart count when last seen.
	RestartCount *int32 `json:"restart_count,omitempty"`
	// State is the state of the container instance whose id the cgroup
	// names, as the API showed it at ObservedAt: "running", "waiting" or
	// "terminated" (an instance that was replaced by a restart shows as
	// terminated, from the status's lastState).
	State string `json:"state,omitempty"`
	// StartedAt is when that instance started, when running.
	StartedAt *time.Time `json:"started_at,omitempty"`
	// Termination is how that instance ended, when terminated.
	Termination *Termination `json:"termination,omitempty"`
	// ObservedAt is when the API was asked.
	ObservedAt *time.Time `json:"observed_at,omitempty"`
}

// Termination is how a container instance ended, from its status.
type Termination struct {
	// Reason is the kubelet's reason, "OOMKilled" when the main process
	// was killed by the OOM killer.
	Reason   string     `json:"reason,omitempty"`
	ExitCode int32      `json:"exit_code"`
	Finished *time.Time `json:"finished_at,omitempty"`
}

// Enrichment records which sources an enriched report used.
type Enrichment struct {
	// Sources lists what contributed: "cgroup-path", "kubernetes-api",
	// "cgroup-snapshot", "kernel-counters".
	Sources []string `json:"sources"`
	// Errors lists what was tried and failed, one sentence each.
	Errors []string `json:"errors,omitempty"`
}

// Container kinds (see [Container.Kind]).
const (
	ContainerKindApp       = "app"
	ContainerKindInit      = "init"
	ContainerKindEphemeral = "ephemeral"
)

// Attribution values (see [Enriched.Attribution]).
const (
	AttributionReport   = "report"
	AttributionProc     = "proc"
	AttributionCounters = "counters"
)

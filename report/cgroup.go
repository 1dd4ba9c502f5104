package report

// Level says which layer of the cgroup hierarchy a path names.
type Level string

// Level values (see [CgroupPath.Level]).
const (
	// LevelContainer is one container's cgroup, or a child cgroup below it.
	LevelContainer Level = "container"
	// LevelPod is a Kubernetes pod's cgroup (all of its containers).
	LevelPod Level = "pod"
	// LevelQoS is a Kubernetes QoS class cgroup (kubepods/burstable,
	// kubepods/besteffort); Guaranteed pods have none.
	LevelQoS Level = "qos"
	// LevelKubepods is the kubelet's root for all pods (node allocatable).
	LevelKubepods Level = "kubepods"
	// LevelSystemService is a systemd system unit, e.g. kubelet.service.
	LevelSystemService Level = "system-service"
	// LevelUserSession is anything below user.slice: login sessions and
	// per-user service managers.
	LevelUserSession Level = "user-session"
	// LevelRoot is the root cgroup "/" (or, seen from inside a cgroup
	// namespace, that namespace's root).
	LevelRoot Level = "root"
	// LevelOther is everything else: empty input, unknown layouts, garbage.
	LevelOther Level = "other"
)

// Container runtime names (see [CgroupPath.Runtime]).
const (
	RuntimeContainerd = "containerd"
	RuntimeCRIO       = "cri-o"
	RuntimeDocker     = "docker"
	RuntimePodman     = "podman"
)

// Cgroup driver names (see [CgroupPath.Driver]).
const (
	DriverCgroupfs = "cgroupfs"
	DriverSystemd  = "systemd"
)

// Kubernetes QoS class names, spelled as in a pod's status.qosClass (see
// [CgroupPath.QoS]).
const (
	QoSGuaranteed = "Guaranteed"
	QoSBurstable  = "Burstable"
	QoSBestEffort = "BestEffort"
)

// CgroupPath is what a cgroup path (an OOM report's oom_memcg= or
// task_memcg=, a /proc/<pid>/cgroup line) says about Kubernetes and
// containers. Facts the path does not tell are left empty.
type CgroupPath struct {
	// Path is the input, unchanged.
	Path string `json:"path"`
	// Level is the layer of the hierarchy the path names.
	Level Level `json:"level"`
	// PodUID is the pod's UID: the canonical lowercase dashed UUID
	// (0b7e3c1e-5a42-4c1b-9d7a-2f1f8c3e9a11) whether the path spelled it
	// with dashes (cgroupfs) or underscores (systemd), or, for a static pod,
	// the kubelet's 32-hex config hash as is (the mirror pod carries it in
	// its kubernetes.io/config.mirror annotation). Set for LevelPod and for
	// LevelContainer inside a pod.
	PodUID string `json:"pod_uid,omitempty"`
	// ContainerID is the runtime's container id (64 hex for containerd,
	// CRI-O, Docker and Podman), without any runtime prefix or .scope
	// suffix. Set for LevelContainer.
	ContainerID string `json:"container_id,omitempty"`
	// Runtime is the container runtime that named the container cgroup:
	// one of the Runtime constants, or empty when the name does not tell
	// (cgroupfs containerd and Docker both use the bare id).
	Runtime string `json:"runtime,omitempty"`
	// Driver is the cgroup driver that named the Kubernetes or container
	// cgroups: [DriverCgroupfs] or [DriverSystemd]; empty for other levels.
	Driver string `json:"driver,omitempty"`
	// QoS is the pod's QoS class when the path tells it; empty when it does
	// not (a cgroupfs pod seen without its parent, e.g. from inside a
	// cgroup namespace).
	QoS string `json:"qos,omitempty"`
	// Conmon is true for the cgroup of CRI-O's or Podman's container
	// monitor (crio-conmon-<id>, libpod-conmon-<id>) rather than of the
	// container itself; ContainerID is then the monitored container's.
	Conmon bool `json:"conmon,omitempty"`
	// Prefix is the cleaned path above the Kubernetes hierarchy, without a
	// trailing slash: what lies before the kubepods segment (a custom
	// --cgroup-root such as /kubelet.slice, a k3s/kind/RKE node container,
	// a test runner's root), or before the QoS/pod segment when no kubepods
	// segment is visible. Empty when nothing is there. For a Kubernetes
	// node nested in a container of another cluster's pod, Prefix is that
	// outer container's path and parses in turn.
	Prefix string `json:"prefix,omitempty"`
	// Unit is the systemd unit for LevelSystemService (kubelet.service,
	// init.scope) and LevelUserSession (session-3.scope, or the unit
	// inside user@<uid>.service); empty when the path names a slice.
	Unit string `json:"unit,omitempty"`
}

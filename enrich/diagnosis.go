package enrich

// Diagnosis is the answer an on-call engineer wants from a report.
type Diagnosis struct {
	// Scope is which limit was hit: container, pod, kubepods, node,
	// cpuset, mempolicy, system-service or other.
	Scope string `json:"scope"`
	// MainProcessKilled is true when the container's main process died
	// (the container restarts), false when only a child died; nil when
	// unknown.
	MainProcessKilled *bool `json:"main_process_killed,omitempty"`
	// Summary is the whole answer in one line.
	Summary string `json:"summary"`
}

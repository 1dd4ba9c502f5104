package enrich

// Snapshot is a cgroup as read right after a kill.
type Snapshot struct {
	// Path is the cgroup read, relative to the cgroup root.
	Path string `json:"path"`
}

// MissedKills is a count of kills the kernel counted that no report showed.
type MissedKills struct {
	// Cgroup is the cgroup whose counter moved, or "" for the node.
	Cgroup string `json:"cgroup,omitempty"`
	// Count is how many kills went unreported.
	Count uint64 `json:"count"`
}

package archive

import (
	"time"

	"github.com/oomscope/oomscope/report"
)

// MaxField is the most characters an index field keeps (after escaping):
// Kubernetes names are at most 253 characters.
const MaxField = 256

// Entry is one report in the index: one JSON line of index.jsonl. Text
// fields come from the report, which an attacker can shape (a process
// names itself, a pod is named by whoever creates it): they are escaped
// with [Escape] and cut to [MaxField] characters. ID and File are exact.
type Entry struct {
	// Time is the wall-clock time of the report's first kernel record, or,
	// when the report has none, when it was archived.
	Time time.Time `json:"time"`
	// Archived is when the report was written to the archive (for a report
	// found on disk without an index line: its file's modification time).
	Archived time.Time `json:"archived"`
	// Node is the pod's node, or the report's host.
	Node string `json:"node,omitempty"`
	// Namespace, Pod and PodUID are the victim's pod, when known.
	Namespace string `json:"namespace,omitempty"`
	Pod       string `json:"pod,omitempty"`
	PodUID    string `json:"pod_uid,omitempty"`
	// Container is the container's name, or the first 12 characters of
	// its id when the name is not known.
	Container string `json:"container,omitempty"`
	// Comm and PID are the first victim's (or the oom-kill summary's).
	Comm string `json:"comm,omitempty"`
	PID  int    `json:"pid,omitempty"`
	// Scope is the diagnosis's scope (container, pod, node, ...).
	Scope string `json:"scope,omitempty"`
	// LimitBytes is the limit that was hit, when the report printed it.
	LimitBytes *uint64 `json:"limit_bytes,omitempty"`
	// Kind is the OOM path (memcg, global, cpuset, mempolicy, unknown).
	Kind       string `json:"kind,omitempty"`
	Partial    bool   `json:"partial,omitempty"`
	Incomplete bool   `json:"incomplete,omitempty"`
	// ID is the report's id.
	ID string `json:"id"`
	// File is the report's file relative to the archive's root, always
	// [RelPath] of ID.
	File string `json:"file"`
	// Size is the report file's size in bytes.
	Size int64 `json:"size"`
}

// EntryFor returns the index entry of er, kept in a file of size bytes,
// archived at the given time.
func EntryFor(er *report.Enriched, size int64, archived time.Time) Entry {
	r := er.Report
	e := Entry{
		Time:       archived.UTC(),
		Archived:   archived.UTC(),
		Kind:       Escape(r.Kind, MaxField),
		Partial:    r.Partial,
		Incomplete: r.Incomplete,
		ID:         r.ID,
		File:       RelPath(r.ID),
		Size:       size,
	}
	switch {
	case r.First.Wall != nil:
		e.Time = r.First.Wall.UTC()
	case r.Last.Wall != nil:
		e.Time = r.Last.Wall.UTC()
	}
	node := r.Host
	if p := er.Pod; p != nil {
		e.Namespace = Escape(p.Namespace, MaxField)
		e.Pod = Escape(p.Name, MaxField)
		e.PodUID = Escape(p.UID, MaxField)
		if p.Node != "" {
			node = p.Node
		}
	}
	e.Node = Escape(node, MaxField)
	if c := er.Container; c != nil {
		name := c.Name
		if name == "" {
			name = c.ID
			if len(name) > 12 {
				name = name[:12]
			}
		}
		e.Container = Escape(name, MaxField)
	}
	switch {
	case len(r.Victims) > 0:
		e.Comm, e.PID = Escape(r.Victims[0].Comm, MaxField), r.Victims[0].PID
	case r.SummaryVictim != nil:
		e.Comm, e.PID = Escape(r.SummaryVictim.Comm, MaxField), r.SummaryVictim.PID
	}
	if d := er.Diagnosis; d != nil {
		e.Scope = Escape(d.Scope, MaxField)
		if d.LimitBytes != nil {
			v := *d.LimitBytes
			e.LimitBytes = &v
		}
	}
	if e.LimitBytes == nil && r.Memory != nil && !r.Memory.Unlimited {
		v := r.Memory.LimitBytes
		e.LimitBytes = &v
	}
	return e
}

// Filter selects index entries; zero fields select everything.
type Filter struct {
	// Since keeps reports at or after this time.
	Since time.Time
	// Namespace, Pod and Node keep reports of this namespace, pod (name or
	// UID) and node. They are compared with the escaped index fields after
	// escaping them the same way, so a name given as it really is matches.
	Namespace string
	Pod       string
	Node      string
}

// Match tells whether e passes the filter.
func (f Filter) Match(e Entry) bool {
	f.Namespace, f.Pod, f.Node = Escape(f.Namespace, MaxField), Escape(f.Pod, MaxField), Escape(f.Node, MaxField)
	return f.match(e)
}

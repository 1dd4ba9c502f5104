// Package wire is what the bench's reader programs print, one JSON object
// per line on standard output, and what stormbench reads back: the
// readers stay small, and the harness does all the counting.
package wire

import (
	"math/bits"

	"github.com/oomscope/oomscope/report"
)

// Events of a [Line].
const (
	EventReady  = "ready"  // the reader is reading the kernel log
	EventReport = "report" // one victim of one report (oomreader) or one OOM instance (cadvisorreader)
	EventStats  = "stats"  // the reader's last line, at exit
)

// Line is one output line of oomreader or cadvisorreader.
type Line struct {
	Event string `json:"event"`
	// TNS is CLOCK_MONOTONIC, in ns, when the report left the parser
	// (oomreader) or the OOM instance left StreamOoms (cadvisorreader).
	TNS int64 `json:"t_ns,omitempty"`

	// ID is the report id (oomreader).
	ID string `json:"id,omitempty"`
	// PID and Comm are the victim's.
	PID  int    `json:"pid,omitempty"`
	Comm string `json:"comm,omitempty"`
	// Seq and VictimMonoUS are the victim line's sequence number and
	// kernel timestamp (oomreader), LatencyUS is TNS minus that stamp.
	Seq          uint64 `json:"seq,omitempty"`
	VictimMonoUS int64  `json:"victim_mono_us,omitempty"`
	LatencyUS    int64  `json:"latency_us,omitempty"`
	// Cgroup is the victim's cgroup as the reader knows it: the report's
	// task_memcg (oomreader) or cAdvisor's ContainerName.
	Cgroup string `json:"cgroup,omitempty"`
	// Limiting is the limiting cgroup: oom_memcg, or cAdvisor's
	// VictimContainerName (sic: cAdvisor fills it from oom_memcg).
	Limiting string `json:"limiting,omitempty"`
	Partial  bool   `json:"partial,omitempty"`
	// Fields is the [Mask] of what the reader knows about the kill.
	Fields Mask `json:"fields"`

	// Stats (the last line).
	Records uint64 `json:"records,omitempty"` // kernel log records read
	Lost    uint64 `json:"lost,omitempty"`    // records lost (sequence gaps)
	Reports int    `json:"reports,omitempty"` // reports (oomreader) or OOM instances
}

// Mask says which facts about one kill a reader delivered.
type Mask uint8

// The facts counted as "fields per kill".
const (
	FieldPID    Mask = 1 << iota // the victim's pid
	FieldComm                    // the victim's command name
	FieldCgroup                  // the victim's (or the limiting) cgroup
	FieldLimit                   // the limit that was hit
	FieldUsage                   // the usage at the kill
	FieldRSS                     // the victim's rss
	FieldTasks                   // the task table
	NumFields   = 7
)

// Count is the number of facts in m.
func (m Mask) Count() int { return bits.OnesCount8(uint8(m)) }

// Of is what report r says about its victim v.
func Of(r *report.Report, v *report.Victim) Mask {
	var m Mask
	if v.PID > 0 {
		m |= FieldPID
	}
	if v.Comm != "" {
		m |= FieldComm
	}
	if r.TaskMemcg != "" || r.OOMMemcg != "" {
		m |= FieldCgroup
	}
	if r.Memory != nil && r.Memory.LimitBytes > 0 {
		m |= FieldLimit
	}
	if r.Memory != nil && r.Memory.UsageBytes > 0 {
		m |= FieldUsage
	}
	if v.AnonRSSBytes > 0 || v.FileRSSBytes > 0 || (v.ShmemRSSBytes != nil && *v.ShmemRSSBytes > 0) {
		m |= FieldRSS
	}
	if len(r.Tasks) > 0 || r.TasksTotal > 0 {
		m |= FieldTasks
	}
	return m
}

package diagnose

import (
	"fmt"
	"strings"

	"github.com/oomscope/oomscope/report"
)

// Bounds on each untrusted field of a headline, in bytes after escaping.
const (
	headlineComm = 64  // a comm is 15 bytes; escapes make it longer
	headlineName = 128 // a pod, namespace, container or unit name
	headlinePath = 160 // a cgroup path
)

// Headline is the diagnosis on one line, for outputs that want it short
// and safe (a Kubernetes Event message, a log line): what was killed
// (comm, pid), main process or child, which limit and its value, the usage
// and what filled it, and where. It is built from the codes and numbers of
// e's diagnosis (computed when e has none), in "; "-separated parts, for
// example
//
//	killed python3 (pid 15901); child process, container keeps running; pod limit 96Mi; usage 96Mi = 99% anon; pod shop/web-0 container "python"
//
// Every string that comes from the node or the API (comm, names, cgroup
// paths) is escaped with [report.Escape] and bounded.
func Headline(e *report.Enriched) string {
	var d *report.Diagnosis
	if e != nil {
		d = e.Diagnosis
	}
	if d == nil || d.Facts == nil {
		d = Compute(e, 0)
	}
	if d.ScopeReason == report.ScopeReasonNoReport {
		return "no report"
	}
	f := d.Facts
	parts := []string{headlineVictim(d)}
	if s := headlineRole(d, f); s != "" {
		parts = append(parts, s)
	}
	parts = append(parts, headlineLimit(d, f))
	if m := d.Memory; m != nil && m.Breakdown != nil && m.Breakdown.UsageBytes != nil {
		u := *m.Breakdown.UsageBytes
		s := "usage " + Quantity(u)
		if c := m.Breakdown.Component(m.Dominant); c != nil && u > 0 {
			s += " = " + pct(float64(*c)/float64(u)) + " " + m.Dominant
		}
		parts = append(parts, s)
	}
	if s := headlineWhere(f); s != "" {
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

func headlineVictim(d *report.Diagnosis) string {
	v := d.Victim
	switch {
	case d.OutcomeReason == report.OutcomeReasonNoKillable:
		return "nothing killed: no killable process"
	case v == nil:
		return "victim unknown"
	case d.OutcomeReason == report.OutcomeReasonVictimExiting:
		return fmt.Sprintf("nothing killed: %s (pid %d) already exiting", report.Escape(v.Comm, headlineComm), v.PID)
	}
	s := fmt.Sprintf("killed %s (pid %d)", report.Escape(v.Comm, headlineComm), v.PID)
	if d.OOMGroup != nil && d.OOMGroup.Killed > 1 {
		s += fmt.Sprintf(" and %d more (memory.oom.group)", d.OOMGroup.Killed-1)
	}
	return s
}

func headlineRole(d *report.Diagnosis, f *report.DiagnosisFacts) string {
	switch d.Outcome {
	case report.OutcomeContainerRestarts:
		if d.MainProcessKilled != nil && !*d.MainProcessKilled {
			return "child process, then the main process exited, container restarts"
		}
		return "main process, container restarts"
	case report.OutcomeChildKilled:
		return "child process, container keeps running"
	case report.OutcomeSandboxKilled:
		return "pause process, pod sandbox restarts"
	case report.OutcomeProcessKilled:
		return "not in a container"
	case report.OutcomeUnknown:
		if f.HasContainer || f.VictimLevel == report.LevelContainer {
			return "main or child process unknown"
		}
	}
	return ""
}

func headlineLimit(d *report.Diagnosis, f *report.DiagnosisFacts) string {
	l := limitText(d.LimitBytes)
	switch d.Scope {
	case report.ScopeContainer:
		return "container limit" + l
	case report.ScopePod:
		return "pod limit" + l
	case report.ScopeKubepods:
		if f.LimitingLevel == report.LevelQoS {
			return report.Escape(f.LimitingQoS, headlineName) + " QoS limit" + l
		}
		return "kubepods (node allocatable) limit" + l
	case report.ScopeNode:
		return "node memory (global OOM)"
	case report.ScopeCpuset:
		return "cpuset memory nodes " + report.Escape(orUnknown(f.MemsAllowed), headlineName)
	case report.ScopeMempolicy:
		return "mempolicy memory nodes " + report.Escape(orUnknown(f.Nodemask), headlineName)
	case report.ScopeSystemService:
		return "service limit" + l + " of " + report.Escape(f.LimitingUnit, headlineName)
	}
	if f.OOMMemcg != "" {
		return "cgroup limit" + l + " of " + report.Escape(f.OOMMemcg, headlinePath)
	}
	if f.Kind == report.KindMemcg || d.LimitBytes != nil {
		return "cgroup limit" + l
	}
	return "unknown limit"
}

func headlineWhere(f *report.DiagnosisFacts) string {
	var parts []string
	switch {
	case f.PodName != "":
		parts = append(parts, "pod "+report.Escape(f.PodNamespace, headlineName)+"/"+report.Escape(f.PodName, headlineName))
	case f.PodUID != "":
		parts = append(parts, "pod "+report.Escape(short(f.PodUID, 8), headlineName))
	}
	switch {
	case f.ContainerName != "":
		parts = append(parts, `container "`+report.Escape(f.ContainerName, headlineName)+`"`)
	case f.ContainerID != "":
		parts = append(parts, "container "+report.Escape(short(f.ContainerID, 12), headlineName))
	}
	if len(parts) > 0 {
		return strings.Join(parts, " ")
	}
	switch {
	case f.VictimUnit != "" && (f.VictimLevel == report.LevelSystemService || f.VictimLevel == report.LevelUserSession):
		return "unit " + report.Escape(f.VictimUnit, headlineName)
	case f.VictimPath != "":
		return "cgroup " + report.Escape(f.VictimPath, headlinePath)
	}
	return ""
}

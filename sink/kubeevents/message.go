package kubeevents

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/oomscope/oomscope/enrich/diagnose"
	"github.com/oomscope/oomscope/report"
)

// MaxMessageBytes is the longest message an Event gets: the API server
// rejects an Event with eventTime set and a longer message.
const MaxMessageBytes = 1024

// Bounds on the untrusted parts of a message, in characters before
// escaping.
const (
	maxComm      = 64  // the kernel's comm is 15 bytes; a report file can say anything
	maxName      = 253 // pod, namespace, node names (DNS subdomains when they come from the API)
	maxContainer = 64  // container names are DNS labels (63)
	maxPath      = 160 // cgroup paths and unit names
	maxID        = 128 // report ids are at most 71 characters (sha256:<64 hex>)
	maxNodes     = 64  // cpuset / nodemask lists
)

// placement says which object an Event is about, which decides how much
// the message must say about where the kill was: an Event on the Pod need
// not name the pod, one on the Node must.
type placement int

const (
	onPod placement = iota
	onNode
)

// Message renders the message of the Event oomscope writes for r: one line
// saying what was killed (command and pid), whether it was the container's
// main process, which limit was hit and its value, the usage and what
// filled it, and the report id at the end. It is the message of an Event
// on the pod when r names one, else of an Event on the node. Untrusted text
// (command names, pod, container and cgroup names) is escaped and bounded;
// the result is at most [MaxMessageBytes] long, cut with "…" before the id
// when needed.
func Message(r *report.Enriched) string {
	p := onNode
	if podAddressable(r) {
		p = onPod
	}
	return killMessage(r, p)
}

func killMessage(r *report.Enriched, p placement) string {
	suffix := newLine(maxID + 16)
	suffix.lit("; report ")
	suffix.field(reportID(r), maxID)
	body := newLine(MaxMessageBytes - len(suffix.String()))
	writeKill(body, r, p)
	return body.String() + suffix.String()
}

// aggregateMessage renders an aggregate Event's message: how many kills
// were folded into it and since when, the last one's message without its
// id, and the first and last folded report ids at the end.
func aggregateMessage(n int, subject string, since time.Time, last *report.Enriched, p placement, firstID, lastID string) string {
	suffix := newLine(2*maxID + 16)
	if n == 1 {
		suffix.lit("; id ")
		suffix.field(firstID, maxID)
	} else {
		suffix.lit("; ids ")
		suffix.field(firstID, maxID)
		suffix.atom(ellipsis)
		suffix.field(lastID, maxID)
	}
	body := newLine(MaxMessageBytes - len(suffix.String()))
	kills := "kills"
	if n == 1 {
		kills = "kill"
	}
	body.litf("%d more OOM %s in ", n, kills)
	body.atom(subject) // already escaped, and at most 512 bytes: it fits
	body.litf(" since %s, last: ", since.UTC().Format(time.RFC3339))
	if last != nil && last.Report != nil {
		writeKill(body, last, p)
	} else {
		body.lit("unknown")
	}
	return body.String() + suffix.String()
}

func reportID(r *report.Enriched) string {
	if r == nil || r.Report == nil {
		return ""
	}
	return r.ID
}

func podKnown(r *report.Enriched) bool {
	return r != nil && r.Pod != nil && r.Pod.Name != "" && r.Pod.Namespace != ""
}

// victim is the process the message names.
type victim struct {
	pid     int
	comm    string
	exiting bool
}

func firstVictim(r *report.Enriched) *victim {
	if d := r.Diagnosis; d != nil && d.Victim != nil && (d.Victim.PID != 0 || d.Victim.Comm != "") {
		v := &victim{pid: d.Victim.PID, comm: d.Victim.Comm}
		for _, rv := range r.Victims {
			if rv.PID == v.pid {
				v.exiting = rv.Exiting
				break
			}
		}
		return v
	}
	if len(r.Victims) > 0 {
		return &victim{pid: r.Victims[0].PID, comm: r.Victims[0].Comm, exiting: r.Victims[0].Exiting}
	}
	if s := r.SummaryVictim; s != nil {
		return &victim{pid: s.PID, comm: s.Comm}
	}
	return nil
}

// writeKill writes one kill, from the report's codes and numbers: what was
// killed, where, which process it was, which limit, the usage and what
// filled it.
func writeKill(l *line, r *report.Enriched, p placement) {
	d := r.Diagnosis
	outcome := ""
	if d != nil {
		outcome = d.Outcome
	}

	// What was killed.
	v := firstVictim(r)
	switch {
	case v == nil && r.NoKillable:
		l.lit("No killable process")
	case v == nil:
		l.lit("Victim unknown")
	case v.exiting || outcome == report.OutcomeNothingKilled:
		l.litf("Process %d ", v.pid)
		l.quoted(v.comm, maxComm)
		l.lit(" already exiting, nothing killed")
	default:
		l.litf("Killed process %d ", v.pid)
		l.quoted(v.comm, maxComm)
		if d != nil && d.OOMGroup != nil && d.OOMGroup.Killed > 1 {
			l.litf(" and %d more (memory.oom.group)", d.OOMGroup.Killed-1)
		}
	}

	// Where.
	writeWhere(l, r, p)

	// Which process it was.
	switch outcome {
	case report.OutcomeContainerRestarts:
		if d.MainProcessKilled != nil && !*d.MainProcessKilled {
			l.lit(" (child process, then the main process exited: container restarts)")
		} else {
			l.lit(" (main process: container restarts)")
		}
	case report.OutcomeChildKilled:
		l.lit(" (child process: container keeps running)")
	case report.OutcomeSandboxKilled:
		l.lit(" (pause process: pod sandbox restarts)")
	case report.OutcomeProcessKilled:
		l.lit(" (not in a container)")
	case report.OutcomeUnknown:
		if r.Container != nil {
			l.lit(" (main or child process unknown)")
		}
	}

	// Which limit.
	l.lit(": ")
	if !writeLimit(l, r) {
		// A scope this version does not know: the diagnosis's own
		// sentence says it.
		if d != nil && d.Summary != "" {
			l.field(d.Summary, 400)
			return
		}
		l.lit("limit unknown")
	}

	// Usage and what filled it.
	writeUsage(l, r)
}

// writeWhere names the container (and, on a Node Event, the pod) or the
// cgroup of the victim.
func writeWhere(l *line, r *report.Enriched, p placement) {
	c := r.Container
	pod := r.Pod
	if c != nil {
		l.lit(" in container ")
		writeContainer(l, c)
	}
	if pod != nil && (p == onNode || c == nil) {
		if c != nil {
			l.lit(" of")
		} else {
			l.lit(" in")
		}
		switch {
		case podKnown(r):
			l.lit(" pod ")
			l.field(pod.Namespace, maxName)
			l.lit("/")
			l.field(pod.Name, maxName)
		case pod.UID != "":
			l.lit(" unknown pod ")
			l.field(pod.UID, maxName)
		default:
			l.lit(" an unknown pod")
		}
		return
	}
	if c != nil || pod != nil {
		return
	}
	// Not a container: the victim's cgroup, for a node-level kill.
	var vc *report.CgroupPath
	if r.Cgroups != nil {
		vc = r.Cgroups.Victim
	}
	switch {
	case vc != nil && vc.Unit != "":
		l.lit(" in unit ")
		l.quoted(vc.Unit, maxPath)
	case vc != nil && vc.Path != "":
		l.lit(" in cgroup ")
		l.quoted(vc.Path, maxPath)
	case r.TaskMemcg != "":
		l.lit(" in cgroup ")
		l.quoted(r.TaskMemcg, maxPath)
	}
}

func writeContainer(l *line, c *report.Container) {
	switch {
	case c.Name != "":
		l.quoted(c.Name, maxContainer)
	case c.ID != "":
		l.field(shortID(c.ID), maxContainer)
	default:
		l.lit("(unknown)")
	}
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// writeLimit names the limit that was hit and its value; false when the
// diagnosis's scope is missing or unknown to this version.
func writeLimit(l *line, r *report.Enriched) bool {
	d := r.Diagnosis
	if d == nil {
		return false
	}
	lim := ""
	if d.LimitBytes != nil {
		lim = " " + Quantity(*d.LimitBytes)
	}
	var limiting *report.CgroupPath
	if r.Cgroups != nil {
		limiting = r.Cgroups.Limiting
	}
	switch d.Scope {
	case report.ScopeContainer:
		l.lit("container limit" + lim + " hit")
	case report.ScopePod:
		l.lit("pod limit" + lim + " hit")
	case report.ScopeKubepods:
		if limiting != nil && limiting.Level == report.LevelQoS && limiting.QoS != "" {
			l.field(limiting.QoS, 16)
			l.lit(" QoS limit" + lim + " hit")
		} else {
			l.lit("kubepods (node allocatable) limit" + lim + " hit")
		}
	case report.ScopeNode:
		l.lit("node out of memory (global OOM)")
	case report.ScopeCpuset:
		l.lit("cpuset memory nodes ")
		l.field(orUnknown(r.MemsAllowed), maxNodes)
		l.lit(" exhausted")
	case report.ScopeMempolicy:
		l.lit("mempolicy memory nodes ")
		l.field(orUnknown(r.Nodemask), maxNodes)
		l.lit(" exhausted")
	case report.ScopeSystemService:
		l.lit("limit" + lim + " of unit ")
		unit := r.OOMMemcg
		if limiting != nil && limiting.Unit != "" {
			unit = limiting.Unit
		}
		l.quoted(unit, maxPath)
		l.lit(" hit")
	case report.ScopeOther:
		if r.OOMMemcg == "" {
			l.lit("unknown limit" + lim + " hit")
		} else {
			l.lit("limit" + lim + " of cgroup ")
			l.quoted(r.OOMMemcg, maxPath)
			l.lit(" hit")
		}
	default:
		return false
	}
	return true
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown)"
	}
	return s
}

// writeUsage writes ", usage X (N% what)": the limiting cgroup's (or the
// node's) usage and its largest component.
func writeUsage(l *line, r *report.Enriched) {
	var m *report.MemoryComposition
	if r.Diagnosis != nil {
		m = r.Diagnosis.Memory
	}
	if m == nil {
		if dv := r.Derived; dv != nil && dv.UsageBytes != nil {
			l.lit(", usage " + Quantity(*dv.UsageBytes))
		}
		return
	}
	// The numbers are the report's own (derived.*); the diagnosis holds
	// only what it concluded from them.
	dv := r.Derived
	if dv == nil || dv.UsageBytes == nil {
		return
	}
	usage := *dv.UsageBytes
	l.lit(", usage " + Quantity(usage))
	if r.Diagnosis.Scope == report.ScopeNode && dv.LimitBytes != nil {
		l.lit(" of " + Quantity(*dv.LimitBytes))
	}
	if usage == 0 || m.Dominant == "" {
		return
	}
	part := dv.MemoryBreakdown.Component(m.Dominant)
	l.lit(" (")
	if part != nil {
		l.lit(strconv.Itoa(int(math.Round(float64(*part)*100/float64(usage)))) + "% ")
	}
	l.field(m.Dominant, 16)
	if m.MostlyReclaimable {
		l.lit(", mostly reclaimable")
	}
	l.lit(")")
}

// Quantity formats bytes as Kubernetes shows memory (512Mi, 1.5Gi): the
// diagnosis's own rendering, so an Event and the post-mortem agree.
func Quantity(b uint64) string { return diagnose.Quantity(b) }

// subject names what an aggregate counts kills of, escaped, for its
// message: the container (and pod, on a Node Event), or for node-level
// kills the limit.
func subject(r *report.Enriched, p placement) string {
	l := newLine(512)
	switch {
	case r.Container != nil || r.Pod != nil:
		if c := r.Container; c != nil {
			l.lit("container ")
			writeContainer(l, c)
			if p == onNode {
				l.lit(" of ")
			}
		}
		if r.Pod != nil && (p == onNode || r.Container == nil) {
			switch {
			case podKnown(r):
				l.lit("pod ")
				l.field(r.Pod.Namespace, 63)
				l.lit("/")
				l.field(r.Pod.Name, maxName)
			default:
				l.lit("unknown pod ")
				l.field(r.Pod.UID, 64)
			}
		}
	default:
		scope := ""
		if r.Diagnosis != nil {
			scope = r.Diagnosis.Scope
		}
		switch scope {
		case report.ScopeNode:
			l.lit("the node (global OOM)")
		case report.ScopeCpuset:
			l.lit("cpuset memory nodes ")
			l.field(orUnknown(r.MemsAllowed), maxNodes)
		case report.ScopeMempolicy:
			l.lit("mempolicy memory nodes ")
			l.field(orUnknown(r.Nodemask), maxNodes)
		default:
			l.lit("cgroup ")
			l.quoted(orUnknown(r.OOMMemcg), maxPath)
		}
	}
	return strings.TrimSpace(l.String())
}

package diagnose

import (
	"math"
	"strings"
	"time"

	"github.com/oomscope/oomscope/report"
)

// Kubernetes oom_score_adj values set by the kubelet.
const (
	adjGuaranteed = -997
	adjBestEffort = 1000
	adjSandbox    = -998 // pause containers
	adjKubelet    = -999 // kubelet, container runtime
)

// Compute decides the diagnosis of an enriched report from its own
// numbers, its cgroup paths and, when present, its pod and container. It
// fills the codes and numbers only (every Explanation and the Summary stay
// empty: [Render] writes them). nodeMemoryBytes is the node's memory
// capacity (0 when unknown; the report's own memory dump is used when it
// has one); it is needed only for the Burstable oom_score_adj expectation.
func Compute(r *report.Enriched, nodeMemoryBytes uint64) *report.Diagnosis {
	d := &report.Diagnosis{}
	if r == nil || r.Report == nil {
		d.Scope, d.ScopeReason = report.ScopeOther, report.ScopeReasonNoReport
		d.Outcome, d.OutcomeReason = report.OutcomeUnknown, report.OutcomeReasonNoReport
		return d
	}
	rep := r.Report
	d.Facts = facts(r)
	d.LimitBytes = limitOf(rep)
	computeScope(d, r)
	d.Memory = composition(rep)
	victim, vrow := firstVictim(rep)
	computeOutcome(d, r, victim, vrow)
	if nodeMemoryBytes == 0 {
		nodeMemoryBytes = nodeMemoryFromReport(rep)
	}
	d.Victim = victimChoice(d, r, victim, vrow, nodeMemoryBytes)
	if rep.OOMGroup != "" {
		n := 0
		for _, v := range rep.Victims {
			if !v.Exiting {
				n++
			}
		}
		d.OOMGroup = &report.OOMGroupKill{Cgroup: rep.OOMGroup, Killed: n}
	}
	return d
}

// facts gathers the names the sentences cite.
func facts(r *report.Enriched) *report.DiagnosisFacts {
	rep := r.Report
	f := &report.DiagnosisFacts{Kind: rep.Kind, OOMMemcg: rep.OOMMemcg, MemsAllowed: rep.MemsAllowed,
		Nodemask: rep.Nodemask, TasksTotal: rep.TasksTotal}
	if c := r.Cgroups; c != nil {
		if l := c.Limiting; l != nil {
			f.LimitingLevel, f.LimitingQoS, f.LimitingUnit = l.Level, l.QoS, l.Unit
			if l.Level == report.LevelSystemService && f.LimitingUnit == "" {
				f.LimitingUnit = rep.OOMMemcg
			}
		}
		if v := c.Victim; v != nil {
			f.VictimLevel, f.VictimUnit, f.VictimPath = v.Level, v.Unit, v.Path
		}
	}
	if p := r.Pod; p != nil {
		f.PodNamespace, f.PodName, f.PodUID, f.PodQoS = p.Namespace, p.Name, p.UID, p.QoSClass
	}
	if c := r.Container; c != nil {
		f.HasContainer = true
		f.ContainerName, f.ContainerID, f.ContainerRuntime = c.Name, c.ID, c.Runtime
		f.RestartCount = c.RestartCount
		if c.MemoryLimitBytes != nil {
			f.ContainerLimitBytes = new(uint64(*c.MemoryLimitBytes))
		} else if f.PodName != "" {
			// The API's spec of the container (a named pod) has no limit.
			f.NoContainerLimit = true
		}
	}
	return f
}

// limitOf is the limit that was hit, from the memcg counters or the derived
// numbers.
func limitOf(r *report.Report) *uint64 {
	if r.Memory != nil && !r.Memory.Unlimited && r.Memory.LimitBytes > 0 {
		return new(r.Memory.LimitBytes)
	}
	if r.Kind == report.KindMemcg && r.Derived != nil && r.Derived.LimitBytes != nil {
		return new(*r.Derived.LimitBytes)
	}
	return nil
}

func computeScope(d *report.Diagnosis, r *report.Enriched) {
	rep := r.Report
	switch rep.Kind {
	case report.KindGlobal:
		d.Scope, d.ScopeReason = report.ScopeNode, report.ScopeReasonGlobalConstraint
		return
	case report.KindCpuset:
		d.Scope, d.ScopeReason = report.ScopeCpuset, report.ScopeReasonCpusetConstraint
		return
	case report.KindMempolicy:
		d.Scope, d.ScopeReason = report.ScopeMempolicy, report.ScopeReasonMempolicyConstraint
		return
	}
	if r.Cgroups == nil || r.Cgroups.Limiting == nil {
		d.Scope = report.ScopeOther
		if rep.Kind == report.KindMemcg {
			d.ScopeReason = report.ScopeReasonLimitingCgroupUnnamed
		} else {
			d.ScopeReason = report.ScopeReasonReportCutShort
		}
		return
	}
	d.ScopeReason = report.ScopeReasonLimitingCgroupLevel
	switch r.Cgroups.Limiting.Level {
	case report.LevelContainer:
		d.Scope = report.ScopeContainer
	case report.LevelPod:
		d.Scope = report.ScopePod
	case report.LevelQoS, report.LevelKubepods:
		d.Scope = report.ScopeKubepods
	case report.LevelSystemService:
		d.Scope = report.ScopeSystemService
	default:
		d.Scope = report.ScopeOther
	}
}

// firstVictim is the first victim that was killed (or, when all were
// exiting, the first one), with its task-table row when the table has it.
func firstVictim(r *report.Report) (*report.Victim, *report.Task) {
	var v *report.Victim
	for i := range r.Victims {
		if !r.Victims[i].Exiting {
			v = &r.Victims[i]
			break
		}
	}
	if v == nil && len(r.Victims) > 0 {
		v = &r.Victims[0]
	}
	if v == nil && r.SummaryVictim != nil {
		v = &report.Victim{PID: r.SummaryVictim.PID, Comm: r.SummaryVictim.Comm, UID: r.SummaryVictim.UID}
	}
	if v == nil {
		return nil, nil
	}
	for i := range r.Tasks {
		if r.Tasks[i].PID == v.PID {
			return v, &r.Tasks[i]
		}
	}
	return v, nil
}

func isPause(t report.Task) bool {
	return t.Name == "pause" || t.OOMScoreAdj == adjSandbox
}

func computeOutcome(d *report.Diagnosis, r *report.Enriched, v *report.Victim, vrow *report.Task) {
	rep := r.Report
	set := func(outcome, reason string, main *bool) {
		d.Outcome, d.OutcomeReason, d.MainProcessKilled = outcome, reason, main
	}
	if v == nil {
		if rep.NoKillable {
			set(report.OutcomeNothingKilled, report.OutcomeReasonNoKillable, nil)
		} else {
			set(report.OutcomeUnknown, report.OutcomeReasonNoVictim, nil)
		}
		return
	}
	if v.Exiting {
		set(report.OutcomeNothingKilled, report.OutcomeReasonVictimExiting, nil)
		return
	}
	var victimCg *report.CgroupPath
	if r.Cgroups != nil {
		victimCg = r.Cgroups.Victim
	}
	if v.Comm == "pause" || (vrow != nil && vrow.OOMScoreAdj == adjSandbox) || (victimCg != nil && victimCg.Level == report.LevelPod && v.OOMScoreAdj != nil && *v.OOMScoreAdj == adjSandbox) {
		set(report.OutcomeSandboxKilled, report.OutcomeReasonPauseProcess, new(true))
		return
	}
	if victimCg == nil {
		set(report.OutcomeUnknown, report.OutcomeReasonVictimCgroupUnknown, nil)
		return
	}
	if victimCg.Level != report.LevelContainer {
		set(report.OutcomeProcessKilled, report.OutcomeReasonNotInContainer, nil)
		return
	}
	if apiOutcome(d, r, victimCg) {
		return
	}
	// Which task table rows share the victim's container? The table lists
	// the tasks of the limiting cgroup's subtree (memcg OOM) or of the
	// whole node (global OOM).
	if len(rep.Tasks) == 0 {
		set(report.OutcomeUnknown, report.OutcomeReasonNoTaskTable, nil)
		return
	}
	var limiting *report.CgroupPath
	if r.Cgroups != nil {
		limiting = r.Cgroups.Limiting
	}
	sameContainer := limiting != nil && limiting.Level == report.LevelContainer &&
		limiting.ContainerID == victimCg.ContainerID && limiting.PodUID == victimCg.PodUID
	podTable := limiting != nil && limiting.Level == report.LevelPod && limiting.PodUID != "" && limiting.PodUID == victimCg.PodUID
	if !sameContainer && !podTable {
		set(report.OutcomeUnknown, report.OutcomeReasonTaskTableTooWide, nil)
		return
	}
	tgid := v.PID
	if vrow != nil && vrow.TGID != 0 {
		tgid = vrow.TGID
	}
	d.Facts.VictimTGID = tgid
	var low *report.Task
	for i := range rep.Tasks {
		t := rep.Tasks[i]
		if isPause(t) {
			continue
		}
		id := t.TGID
		if id == 0 {
			id = t.PID
		}
		if low == nil || id < low.TGID {
			low = &report.Task{PID: t.PID, TGID: id, Name: t.Name}
		}
	}
	if low == nil || low.TGID == tgid {
		d.Facts.MainPID, d.Facts.MainName = tgid, v.Comm
		if podTable {
			set(report.OutcomeContainerRestarts, report.OutcomeReasonPodTaskTableLowestTGID, new(true))
		} else {
			set(report.OutcomeContainerRestarts, report.OutcomeReasonTaskTableLowestTGID, new(true))
		}
		return
	}
	d.Facts.MainPID, d.Facts.MainName = low.TGID, low.Name
	if podTable {
		set(report.OutcomeChildKilled, report.OutcomeReasonPodTaskTableLowerTGID, new(false))
	} else {
		set(report.OutcomeChildKilled, report.OutcomeReasonTaskTableLowerTGID, new(false))
	}
}

// apiSettleTime is how long after a kill the API surely shows a restart of
// the container whose main process died: the kubelet relists containers
// every second and updates the pod status right after.
const apiSettleTime = 10 * time.Second

// apiOutcome decides the outcome from the API's status of the container
// instance the victim's cgroup names, when that status is conclusive: the
// instance terminated (read at any time), or it was still running well
// after the kill. It reports whether it decided.
func apiOutcome(d *report.Diagnosis, r *report.Enriched, victimCg *report.CgroupPath) bool {
	c := r.Container
	if c == nil || c.ID == "" || victimCg.ContainerID == "" || !strings.EqualFold(c.ID, victimCg.ContainerID) {
		return false
	}
	switch c.State {
	case "terminated":
		reason, code := "", int32(0)
		if c.Termination != nil {
			code, reason = c.Termination.ExitCode, c.Termination.Reason
		}
		d.Facts.APIReason, d.Facts.APIExitCode = reason, code
		d.Outcome = report.OutcomeContainerRestarts
		if reason == "OOMKilled" {
			d.OutcomeReason, d.MainProcessKilled = report.OutcomeReasonAPITerminatedOOMKilled, new(true)
		} else {
			d.OutcomeReason, d.MainProcessKilled = report.OutcomeReasonAPITerminatedOther, new(false)
		}
		return true
	case "running":
		kill := r.Last.Wall
		if kill == nil || c.ObservedAt == nil || c.ObservedAt.Sub(*kill) < apiSettleTime {
			return false // too early to tell: the kubelet may not have noticed yet
		}
		d.Facts.APIObservedAfter = c.ObservedAt.Sub(*kill)
		d.Outcome, d.OutcomeReason, d.MainProcessKilled = report.OutcomeChildKilled, report.OutcomeReasonAPIRunningAfterKill, new(false)
		return true
	}
	return false
}

// share is v as a fraction of u, rounded to 3 decimals.
func share(v *uint64, u uint64) *float64 {
	if v == nil || u == 0 {
		return nil
	}
	return new(math.Round(float64(*v)/float64(u)*1000) / 1000)
}

// composition makes what it can of the limiting cgroup's (or node's)
// memory breakdown, which it refers to.
func composition(r *report.Report) *report.MemoryComposition {
	if r.Derived == nil || r.Derived.UsageBytes == nil {
		return nil
	}
	b := &r.Derived.MemoryBreakdown
	u := *b.UsageBytes
	m := &report.MemoryComposition{Breakdown: b}
	file := b.FileBytes()
	m.AnonShare, m.FileShare, m.ReclaimableBytes = share(b.AnonBytes, u), share(file, u), file
	best := uint64(0)
	for _, c := range components {
		if v := b.Component(c); v != nil && *v > best {
			best, m.Dominant = *v, c
		}
	}
	m.MostlyReclaimable = file != nil && u > 0 && float64(*file) >= float64(u)/2
	return m
}

// components are the parts of a breakdown, in the order they are named.
var components = []string{report.ComponentAnon, report.ComponentPageCache, report.ComponentShmem, report.ComponentKernel, report.ComponentSwap}

// taskBytes is a task-table row's memory as the kernel's badness counts it
// (rss + swap entries + page tables), in bytes.
func taskBytes(t report.Task, page uint64) uint64 {
	b := (t.RSSPages + t.SwapEnts) * page
	if t.PgtablesBytes != nil {
		b += *t.PgtablesBytes
	}
	return b
}

// impliedQoS maps an oom_score_adj to what the kubelet means by it.
func impliedQoS(adj int) string {
	switch {
	case adj == adjGuaranteed:
		return report.QoSGuaranteed
	case adj == adjBestEffort:
		return report.QoSBestEffort
	case adj >= 2 && adj <= 999:
		return report.QoSBurstable
	case adj == adjSandbox:
		return report.ImpliedPodSandbox
	case adj == adjKubelet:
		return report.ImpliedNodeDaemon
	}
	return report.ImpliedNotKubernetes
}

// BurstableOOMScoreAdj is the oom_score_adj the kubelet gives a Burstable
// container: min(max(3, 1000 − 1000·request/capacity), 999). The floor is
// 1000 + the Guaranteed value −997 (pkg/kubelet/qos/policy.go); kubelets
// from when Guaranteed was −998 used 2, which impliedQoS still accepts.
func BurstableOOMScoreAdj(requestBytes, capacityBytes int64) int {
	if capacityBytes <= 0 {
		return 999
	}
	a := 1000 - (1000*requestBytes)/capacityBytes
	return int(min(max(3, a), 999))
}

func victimChoice(d *report.Diagnosis, r *report.Enriched, v *report.Victim, vrow *report.Task, nodeMem uint64) *report.VictimChoice {
	if v == nil {
		return nil
	}
	rep := r.Report
	vc := &report.VictimChoice{PID: v.PID, Comm: v.Comm, OOMScoreAdj: v.OOMScoreAdj, Reason: report.VictimReasonNoTaskTable}
	if vc.OOMScoreAdj == nil && vrow != nil {
		vc.OOMScoreAdj = new(vrow.OOMScoreAdj)
	}
	if dv := rep.Derived; dv != nil {
		vc.RSSBytes, vc.Share = dv.VictimRSSBytes, dv.VictimShare
	}
	if vc.RSSBytes == nil && !v.Exiting && (v.AnonRSSBytes+v.FileRSSBytes) > 0 {
		b := v.AnonRSSBytes + v.FileRSSBytes
		if v.ShmemRSSBytes != nil {
			b += *v.ShmemRSSBytes
		}
		vc.RSSBytes = &b
	}
	if vrow != nil && len(rep.Tasks) > 0 {
		page := uint64(4096)
		if rep.Derived != nil && rep.Derived.PageSizeBytes > 0 {
			page = rep.Derived.PageSizeBytes
		}
		var big *report.Task
		for i := range rep.Tasks {
			if big == nil || taskBytes(rep.Tasks[i], page) > taskBytes(*big, page) {
				big = &rep.Tasks[i]
			}
		}
		vb := taskBytes(*vrow, page)
		d.Facts.VictimTaskBytes = vb
		isBig := taskBytes(*big, page) <= vb
		vc.BiggestConsumer = &isBig
		switch {
		case isBig:
			vc.Reason = report.VictimReasonBiggestConsumer
		default:
			vc.Biggest = &report.TaskRef{PID: big.PID, Name: big.Name, Bytes: taskBytes(*big, page), OOMScoreAdj: big.OOMScoreAdj}
			switch {
			case vc.OOMScoreAdj != nil && *vc.OOMScoreAdj > big.OOMScoreAdj:
				vc.Reason = report.VictimReasonOOMScoreAdj
			case rep.OOMGroup != "":
				vc.Reason = report.VictimReasonOOMGroup
			default:
				vc.Reason = report.VictimReasonBadnessRounding
			}
		}
	}
	if vc.OOMScoreAdj == nil {
		return vc
	}
	adj := *vc.OOMScoreAdj
	vc.ImpliedQoS = impliedQoS(adj)
	vc.QoSCheck = report.QoSCheckNotChecked
	inPod := r.Cgroups != nil && r.Cgroups.Victim != nil && r.Cgroups.Victim.PodUID != ""
	if !inPod || r.Pod == nil || r.Pod.QoSClass == "" {
		return vc
	}
	vc.PodQoS = r.Pod.QoSClass
	switch vc.PodQoS {
	case report.QoSGuaranteed:
		vc.ExpectedOOMScoreAdj = new(adjGuaranteed)
		vc.QoSMismatch = adj != adjGuaranteed
	case report.QoSBestEffort:
		vc.ExpectedOOMScoreAdj = new(adjBestEffort)
		vc.QoSMismatch = adj != adjBestEffort
	case report.QoSBurstable:
		vc.QoSMismatch = vc.ImpliedQoS != report.QoSBurstable
		if r.Container != nil && r.Container.MemoryRequestBytes != nil && nodeMem > 0 {
			vc.ExpectedOOMScoreAdj = new(BurstableOOMScoreAdj(*r.Container.MemoryRequestBytes, int64(nodeMem)))
		}
	}
	switch {
	case !vc.QoSMismatch:
		vc.QoSCheck = report.QoSCheckMatch
	case adj == adjGuaranteed:
		vc.QoSCheck = report.QoSCheckNodeCritical
	default:
		vc.QoSCheck = report.QoSCheckMismatch
	}
	return vc
}

// nodeMemoryFromReport is the node's RAM from a node-wide memory dump.
func nodeMemoryFromReport(r *report.Report) uint64 {
	if r.MemInfo == nil || r.MemInfo.Totals == nil {
		return 0
	}
	page := uint64(4096)
	if r.Derived != nil && r.Derived.PageSizeBytes > 0 {
		page = r.Derived.PageSizeBytes
	}
	return r.MemInfo.Totals["ram_pages"] * page
}

package diagnose

import (
	"fmt"
	"math"
	"strconv"
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

// Diagnose computes the diagnosis of an enriched report from its own
// numbers, its cgroup paths and, when present, its pod and container.
// nodeMemoryBytes is the node's memory capacity (0 when unknown; the
// report's own memory dump is used when it has one); it is needed only for
// the Burstable oom_score_adj expectation.
func Diagnose(r *report.Enriched, nodeMemoryBytes uint64) *report.Diagnosis {
	d := &report.Diagnosis{}
	if r == nil || r.Report == nil {
		d.Scope, d.ScopeExplanation = report.ScopeOther, "There is no report to diagnose."
		d.Outcome, d.OutcomeExplanation = report.OutcomeUnknown, "There is no report to diagnose."
		d.Summary = "no report"
		return d
	}
	rep := r.Report
	d.LimitBytes = limitOf(rep)
	diagnoseScope(d, r)
	d.Memory = composition(rep)
	victim, vrow := firstVictim(rep)
	diagnoseOutcome(d, r, victim, vrow)
	if nodeMemoryBytes == 0 {
		nodeMemoryBytes = nodeMemoryFromReport(rep)
	}
	d.Victim = victimChoice(r, victim, vrow, nodeMemoryBytes)
	if rep.OOMGroup != "" {
		n := 0
		for _, v := range rep.Victims {
			if !v.Exiting {
				n++
			}
		}
		d.OOMGroup = &report.OOMGroupKill{Cgroup: rep.OOMGroup, Killed: n,
			Explanation: fmt.Sprintf("memory.oom.group is set on %s, so the kernel killed all %d of its processes together instead of one.", rep.OOMGroup, n)}
	}
	d.Summary = summary(d, r, victim)
	return d
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

func limitText(l *uint64) string {
	if l == nil {
		return ""
	}
	return " " + Quantity(*l)
}

func diagnoseScope(d *report.Diagnosis, r *report.Enriched) {
	rep := r.Report
	lim := d.LimitBytes
	switch rep.Kind {
	case report.KindGlobal:
		d.Scope = report.ScopeNode
		d.ScopeExplanation = "The whole node ran out of memory (a global OOM, no cgroup limit involved), so the kernel picked a victim among all its processes."
		return
	case report.KindCpuset:
		d.Scope = report.ScopeCpuset
		d.ScopeExplanation = fmt.Sprintf("The memory nodes the task's cpuset allows (%s) ran out while the node as a whole may still have had free memory.", orUnknown(rep.MemsAllowed))
		return
	case report.KindMempolicy:
		d.Scope = report.ScopeMempolicy
		d.ScopeExplanation = fmt.Sprintf("The NUMA nodes the task's memory policy (mbind/set_mempolicy) allows (%s) ran out while other nodes may still have had free memory.", orUnknown(rep.Nodemask))
		return
	}
	var limiting *report.CgroupPath
	if r.Cgroups != nil {
		limiting = r.Cgroups.Limiting
	}
	if limiting == nil {
		d.Scope = report.ScopeOther
		if rep.Kind == report.KindMemcg {
			d.ScopeExplanation = "A memory cgroup limit was hit but the report does not name the cgroup."
		} else {
			d.ScopeExplanation = "The report lacks the lines that say which limit was hit (it was rate limited or cut short)."
		}
		return
	}
	switch limiting.Level {
	case report.LevelContainer:
		d.Scope = report.ScopeContainer
		d.ScopeExplanation = fmt.Sprintf("The container's own memory limit%s was hit: the limiting cgroup is the container's cgroup.", limitText(lim))
	case report.LevelPod:
		d.Scope = report.ScopePod
		own := "its own limit, if it has one"
		if r.Container != nil && r.Container.MemoryLimitBytes != nil {
			own = "its own limit " + Quantity(uint64(*r.Container.MemoryLimitBytes))
		} else if r.Container != nil && r.Pod != nil && r.Pod.Name != "" {
			own = "its own limit (it has none)"
		}
		d.ScopeExplanation = fmt.Sprintf("The pod-level limit%s was hit while the victim's container was still below %s: the pod's containers together used it up.", limitText(lim), own)
	case report.LevelQoS:
		d.Scope = report.ScopeKubepods
		d.ScopeExplanation = fmt.Sprintf("The %s QoS cgroup's limit%s (kubelet --qos-reserved) was hit by all %s pods together, not by one pod's own limit.", limiting.QoS, limitText(lim), limiting.QoS)
	case report.LevelKubepods:
		d.Scope = report.ScopeKubepods
		d.ScopeExplanation = fmt.Sprintf("The kubepods cgroup's limit%s (node allocatable: capacity minus kube and system reserved) was hit by all pods together before the kubelet evicted any.", limitText(lim))
	case report.LevelSystemService:
		d.Scope = report.ScopeSystemService
		unit := limiting.Unit
		if unit == "" {
			unit = rep.OOMMemcg
		}
		d.ScopeExplanation = fmt.Sprintf("The memory limit%s of the systemd unit %s (MemoryMax/MemoryLimit) was hit; no container is involved.", limitText(lim), unit)
	default:
		d.Scope = report.ScopeOther
		d.ScopeExplanation = fmt.Sprintf("The memory limit%s of the cgroup %s was hit; it is not a Kubernetes container, pod or node-allocatable cgroup.", limitText(lim), rep.OOMMemcg)
	}
}

func orUnknown(s string) string {
	if s == "" {
		return "not printed"
	}
	return s
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

func diagnoseOutcome(d *report.Diagnosis, r *report.Enriched, v *report.Victim, vrow *report.Task) {
	rep := r.Report
	if v == nil {
		d.Outcome = report.OutcomeNothingKilled
		if rep.NoKillable {
			d.OutcomeExplanation = "No process was killed: the kernel found no killable process (all unkillable or oom_score_adj -1000)."
		} else {
			d.Outcome = report.OutcomeUnknown
			d.OutcomeExplanation = "The report shows no victim line, so what was killed is not known."
		}
		return
	}
	if v.Exiting {
		d.Outcome = report.OutcomeNothingKilled
		d.OutcomeExplanation = fmt.Sprintf("Nothing new was killed: the chosen process %d (%s) was already exiting, so the kernel let it finish.", v.PID, v.Comm)
		return
	}
	var victimCg *report.CgroupPath
	if r.Cgroups != nil {
		victimCg = r.Cgroups.Victim
	}
	restart := ""
	if r.Container != nil && r.Container.RestartCount != nil {
		restart = fmt.Sprintf(" (the API shows restartCount %d)", *r.Container.RestartCount)
	}
	inContainer := victimCg != nil && victimCg.Level == report.LevelContainer
	if v.Comm == "pause" || (vrow != nil && vrow.OOMScoreAdj == adjSandbox) || (victimCg != nil && victimCg.Level == report.LevelPod && v.OOMScoreAdj != nil && *v.OOMScoreAdj == adjSandbox) {
		d.MainProcessKilled = new(true)
		d.Outcome = report.OutcomeSandboxKilled
		d.OutcomeExplanation = fmt.Sprintf("The pod's pause process %d was killed: the kubelet recreates the pod sandbox and restarts all of its containers%s.", v.PID, restart)
		return
	}
	if !inContainer {
		if victimCg == nil {
			d.Outcome = report.OutcomeUnknown
			d.OutcomeExplanation = fmt.Sprintf("Process %d (%s) was killed; the report does not say which cgroup it was in.", v.PID, v.Comm)
			return
		}
		d.Outcome = report.OutcomeProcessKilled
		d.OutcomeExplanation = fmt.Sprintf("Process %d (%s) in %s was killed; it was not in a container.", v.PID, v.Comm, victimCg.Path)
		return
	}
	if apiOutcome(d, r, v, victimCg) {
		return
	}
	// Which task table rows share the victim's container? The table lists
	// the tasks of the limiting cgroup's subtree (memcg OOM) or of the
	// whole node (global OOM).
	var limiting *report.CgroupPath
	if r.Cgroups != nil {
		limiting = r.Cgroups.Limiting
	}
	if len(rep.Tasks) == 0 {
		d.Outcome = report.OutcomeUnknown
		d.OutcomeExplanation = fmt.Sprintf("The report has no task table (vm.oom_dump_tasks=0 or a rate-limited report), so whether pid %d was the container's main process is not known%s.", v.PID, restart)
		return
	}
	sameContainer := limiting != nil && limiting.Level == report.LevelContainer &&
		limiting.ContainerID == victimCg.ContainerID && limiting.PodUID == victimCg.PodUID
	podTable := limiting != nil && limiting.Level == report.LevelPod && limiting.PodUID != "" && limiting.PodUID == victimCg.PodUID
	if !sameContainer && !podTable {
		d.Outcome = report.OutcomeUnknown
		d.OutcomeExplanation = fmt.Sprintf("The task table covers more than the pod (the %s scope), so it does not tell whether pid %d was the container's main process%s.", d.Scope, v.PID, restart)
		return
	}
	tgid := v.PID
	if vrow != nil && vrow.TGID != 0 {
		tgid = vrow.TGID
	}
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
	where := "the container's cgroup"
	hedge := ""
	if podTable {
		where = "the pod's cgroup apart from the pause process"
		hedge = "most likely "
	}
	if low == nil || low.TGID == tgid {
		d.MainProcessKilled = new(true)
		d.Outcome = report.OutcomeContainerRestarts
		d.OutcomeExplanation = fmt.Sprintf("Pid %d (%s) has the lowest pid in %s, so it was %sthe container's main process: the container exits with reason OOMKilled and restarts per its restartPolicy%s.", tgid, v.Comm, where, hedge, restart)
		return
	}
	d.MainProcessKilled = new(false)
	d.Outcome = report.OutcomeChildKilled
	d.OutcomeExplanation = fmt.Sprintf("Pid %d (%s) has a lower pid than the victim in %s, so pid %d (%s) was %sa child process: the container keeps running and Kubernetes shows no OOMKilled%s.", low.TGID, low.Name, where, tgid, v.Comm, hedge, restart)
}

// apiSettleTime is how long after a kill the API surely shows a restart of
// the container whose main process died: the kubelet relists containers
// every second and updates the pod status right after.
const apiSettleTime = 10 * time.Second

// apiOutcome decides the outcome from the API's status of the container
// instance the victim's cgroup names, when that status is conclusive: the
// instance terminated (read at any time), or it was still running well
// after the kill. It reports whether it decided.
func apiOutcome(d *report.Diagnosis, r *report.Enriched, v *report.Victim, victimCg *report.CgroupPath) bool {
	c := r.Container
	if c == nil || c.ID == "" || victimCg.ContainerID == "" || !strings.EqualFold(c.ID, victimCg.ContainerID) {
		return false
	}
	switch c.State {
	case "terminated":
		reason, code := "unknown", int32(0)
		if c.Termination != nil {
			code = c.Termination.ExitCode
			if c.Termination.Reason != "" {
				reason = c.Termination.Reason
			}
		}
		d.Outcome = report.OutcomeContainerRestarts
		if reason == "OOMKilled" {
			d.MainProcessKilled = new(true)
			d.OutcomeExplanation = fmt.Sprintf("The API shows container instance %s terminated with reason OOMKilled (exit code %d): pid %d (%s) was its main process, and the container restarts per its restartPolicy.", short(c.ID, 12), code, v.PID, v.Comm)
			return true
		}
		d.MainProcessKilled = new(false)
		d.OutcomeExplanation = fmt.Sprintf("The API shows container instance %s terminated with reason %s (exit code %d), not OOMKilled: pid %d (%s) was a child process, and the main process exited after it.", short(c.ID, 12), reason, code, v.PID, v.Comm)
		return true
	case "running":
		kill := r.Last.Wall
		if kill == nil || c.ObservedAt == nil || c.ObservedAt.Sub(*kill) < apiSettleTime {
			return false // too early to tell: the kubelet may not have noticed yet
		}
		d.MainProcessKilled = new(false)
		d.Outcome = report.OutcomeChildKilled
		d.OutcomeExplanation = fmt.Sprintf("The API shows container instance %s still running %s after the kill, so pid %d (%s) was a child process: the container kept running and Kubernetes shows no OOMKilled.", short(c.ID, 12), c.ObservedAt.Sub(*kill).Round(time.Second), v.PID, v.Comm)
		return true
	}
	return false
}

// composition explains the limiting cgroup's (or node's) memory.
func composition(r *report.Report) *report.MemoryComposition {
	dv := r.Derived
	if dv == nil || dv.UsageBytes == nil {
		return nil
	}
	m := &report.MemoryComposition{
		Source: dv.Source, UsageBytes: *dv.UsageBytes, LimitBytes: dv.LimitBytes,
		AnonBytes: dv.AnonBytes, ActiveFileBytes: dv.ActiveFileBytes, InactiveFileBytes: dv.InactiveFileBytes,
		ShmemBytes: dv.ShmemBytes, KernelBytes: dv.KernelBytes, SwapBytes: dv.SwapBytes,
		WorkingSetBytes: dv.WorkingSetBytes,
	}
	u := float64(m.UsageBytes)
	share := func(v *uint64) *float64 {
		if v == nil || u == 0 {
			return nil
		}
		return new(math.Round(float64(*v)/u*1000) / 1000)
	}
	m.AnonShare = share(m.AnonBytes)
	var file *uint64
	switch {
	case m.ActiveFileBytes != nil && m.InactiveFileBytes != nil:
		file = new(*m.ActiveFileBytes + *m.InactiveFileBytes)
	case dv.PageCacheBytes != nil:
		file = new(*dv.PageCacheBytes)
	}
	m.ReclaimableBytes = file
	m.FileShare = share(file)
	// Dominant component.
	best := uint64(0)
	for _, c := range []struct {
		name string
		v    *uint64
	}{{"anon", m.AnonBytes}, {"page cache", file}, {"shmem", m.ShmemBytes}, {"kernel", m.KernelBytes}, {"swap", m.SwapBytes}} {
		if c.v != nil && *c.v > best {
			best, m.Dominant = *c.v, c.name
		}
	}
	m.MostlyReclaimable = file != nil && u > 0 && float64(*file) >= u/2
	ws := ""
	if m.WorkingSetBytes != nil {
		ws = fmt.Sprintf(", working set %s as the kubelet counts it (usage − inactive file)", Quantity(*m.WorkingSetBytes))
	}
	parts := []string{}
	add := func(name string, v *uint64) {
		if v != nil && u > 0 {
			if p := pct(float64(*v) / u); p != "0%" {
				parts = append(parts, p+" "+name)
			}
		}
	}
	add("anon", m.AnonBytes)
	add("page cache", file)
	add("shmem", m.ShmemBytes)
	add("kernel", m.KernelBytes)
	add("swap", m.SwapBytes)
	what := ""
	if len(parts) > 0 {
		what = " = " + strings.Join(parts, ", ")
	}
	verdict := ""
	switch {
	case m.MostlyReclaimable:
		verdict = "; mostly reclaimable page cache, so the limit is too small for the workload's I/O rather than a leak"
	case m.AnonShare != nil && *m.AnonShare >= 0.8:
		verdict = "; mostly anonymous memory the kernel cannot reclaim without swap, so the process memory itself (a leak or an undersized limit) filled it"
	}
	m.Explanation = fmt.Sprintf("Usage was %s%s%s%s.", Quantity(m.UsageBytes), what, ws, verdict)
	return m
}

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
		return "pod-sandbox"
	case adj == adjKubelet:
		return "node-daemon"
	}
	return "not-kubernetes"
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

func victimChoice(r *report.Enriched, v *report.Victim, vrow *report.Task, nodeMem uint64) *report.VictimChoice {
	if v == nil {
		return nil
	}
	rep := r.Report
	vc := &report.VictimChoice{PID: v.PID, Comm: v.Comm, OOMScoreAdj: v.OOMScoreAdj}
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
	var sentences []string
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
		isBig := taskBytes(*big, page) <= vb
		vc.BiggestConsumer = &isBig
		if isBig {
			sentences = append(sentences, fmt.Sprintf("Pid %d (%s) was the biggest consumer of the %d tasks listed (%s rss+swap+page tables).", v.PID, v.Comm, rep.TasksTotal, Quantity(vb)))
		} else {
			vc.Biggest = &report.TaskRef{PID: big.PID, Name: big.Name, Bytes: taskBytes(*big, page), OOMScoreAdj: big.OOMScoreAdj}
			why := "its oom_score_adj or the kernel's rounding favoured it"
			if vc.OOMScoreAdj != nil && *vc.OOMScoreAdj > big.OOMScoreAdj {
				why = fmt.Sprintf("its oom_score_adj %d outweighs the bigger task's %d", *vc.OOMScoreAdj, big.OOMScoreAdj)
			} else if rep.OOMGroup != "" {
				why = "memory.oom.group killed the whole group"
			}
			sentences = append(sentences, fmt.Sprintf("Pid %d (%s) was not the biggest consumer — pid %d (%s) used %s against its %s — but was chosen because %s.",
				v.PID, v.Comm, big.PID, big.Name, Quantity(vc.Biggest.Bytes), Quantity(vb), why))
		}
	}
	if vc.OOMScoreAdj != nil {
		adj := *vc.OOMScoreAdj
		vc.ImpliedQoS = impliedQoS(adj)
		podQoS := ""
		if r.Pod != nil {
			podQoS = r.Pod.QoSClass
		}
		inPod := r.Cgroups != nil && r.Cgroups.Victim != nil && r.Cgroups.Victim.PodUID != ""
		if inPod && podQoS != "" {
			switch podQoS {
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
			if vc.QoSMismatch {
				why := "the process or its runtime changed it, or the kubelet did not start it"
				if adj == adjGuaranteed {
					why = "a node-critical pod (system-node-critical, system-cluster-critical) gets -997 whatever its QoS class"
				}
				sentences = append(sentences, fmt.Sprintf("Its oom_score_adj %d does not fit the pod's %s QoS class (the kubelet sets %s): %s.", adj, podQoS, expectedText(podQoS, vc.ExpectedOOMScoreAdj), why))
			} else {
				sentences = append(sentences, fmt.Sprintf("Its oom_score_adj %d matches the pod's %s QoS class.", adj, podQoS))
			}
		} else {
			sentences = append(sentences, fmt.Sprintf("Its oom_score_adj %d means %s.", adj, adjMeaning(adj)))
		}
	}
	vc.Explanation = strings.Join(sentences, " ")
	return vc
}

func expectedText(qos string, exp *int) string {
	if exp != nil {
		return strconv.Itoa(*exp)
	}
	if qos == report.QoSBurstable {
		return "3..999"
	}
	return "?"
}

func adjMeaning(adj int) string {
	switch impliedQoS(adj) {
	case report.QoSGuaranteed:
		return "a Guaranteed pod's container (or a node-critical pod), the last the kernel picks"
	case report.QoSBestEffort:
		return "a BestEffort pod's container, the first the kernel picks"
	case report.QoSBurstable:
		return "a Burstable pod's container, ranked by its memory request"
	case "pod-sandbox":
		return "a pod's pause process"
	case "node-daemon":
		return "a node daemon (kubelet or container runtime)"
	}
	if adj == 0 {
		return "the default, not set by the kubelet"
	}
	return "a value not set by the kubelet"
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

// subject names who was hit, for the summary.
func subject(r *report.Enriched) string {
	var vc *report.CgroupPath
	if r.Cgroups != nil {
		vc = r.Cgroups.Victim
	}
	qos := ""
	if r.Pod != nil && r.Pod.QoSClass != "" {
		qos = " (" + r.Pod.QoSClass + ")"
	}
	pod := ""
	if r.Pod != nil {
		if r.Pod.Name != "" {
			pod = r.Pod.Namespace + "/" + r.Pod.Name
		} else {
			pod = "pod " + short(r.Pod.UID, 8)
		}
	}
	if r.Container != nil {
		c := "container " + short(r.Container.ID, 12)
		if r.Container.Name != "" {
			c = strconv.Quote(r.Container.Name)
			c = "container " + c
		}
		if pod != "" {
			return c + " of " + pod + qos
		}
		if r.Container.Runtime != "" {
			return c + " (" + r.Container.Runtime + ")"
		}
		return c
	}
	if pod != "" {
		if r.Pod.Name != "" {
			return "pod " + pod + qos
		}
		return pod + qos
	}
	if vc != nil {
		switch vc.Level {
		case report.LevelSystemService, report.LevelUserSession:
			if vc.Unit != "" {
				return "unit " + vc.Unit
			}
		}
		if vc.Path != "" {
			return "cgroup " + vc.Path
		}
	}
	return ""
}

func short(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func limitPhrase(d *report.Diagnosis, r *report.Enriched) string {
	l := limitText(d.LimitBytes)
	switch d.Scope {
	case report.ScopeContainer:
		return "the CONTAINER limit" + l
	case report.ScopePod:
		return "the POD limit" + l
	case report.ScopeKubepods:
		if r.Cgroups != nil && r.Cgroups.Limiting != nil && r.Cgroups.Limiting.Level == report.LevelQoS {
			return "the " + strings.ToUpper(r.Cgroups.Limiting.QoS) + " QoS limit" + l
		}
		return "the KUBEPODS (node allocatable) limit" + l
	case report.ScopeNode:
		return "NODE memory (global OOM)"
	case report.ScopeCpuset:
		return "its CPUSET's memory nodes"
	case report.ScopeMempolicy:
		return "its MEMPOLICY's memory nodes"
	case report.ScopeSystemService:
		u := ""
		if r.Cgroups != nil && r.Cgroups.Limiting != nil {
			u = r.Cgroups.Limiting.Unit
		}
		return "the limit" + l + " of SERVICE " + u
	}
	if r.OOMMemcg != "" {
		if r.Cgroups != nil && r.Cgroups.Victim != nil && r.Cgroups.Victim.Path == r.OOMMemcg {
			return "its cgroup's limit" + l
		}
		return "the limit" + l + " of cgroup " + r.OOMMemcg
	}
	if d.LimitBytes != nil {
		return "a cgroup limit" + l
	}
	if r.Kind == report.KindMemcg {
		return "an unknown memory cgroup limit"
	}
	return "an unknown limit"
}

func summary(d *report.Diagnosis, r *report.Enriched, v *report.Victim) string {
	var b strings.Builder
	if s := subject(r); s != "" {
		b.WriteString(s)
		b.WriteString(": ")
	}
	rep := r.Report
	switch {
	case v == nil && rep.NoKillable:
		b.WriteString("nothing killable, hit by ")
	case v == nil:
		b.WriteString("victim unknown, hit by ")
	case v.Exiting:
		fmt.Fprintf(&b, "process %d %q already exiting, nothing killed, hit by ", v.PID, v.Comm)
	default:
		fmt.Fprintf(&b, "process %d %q", v.PID, v.Comm)
		if d.OOMGroup != nil && d.OOMGroup.Killed > 1 {
			fmt.Fprintf(&b, " and %d more (memory.oom.group)", d.OOMGroup.Killed-1)
		}
		b.WriteString(" killed by ")
	}
	b.WriteString(limitPhrase(d, r))
	if m := d.Memory; m != nil {
		fmt.Fprintf(&b, "; usage %s", Quantity(m.UsageBytes))
		if m.Dominant != "" && m.UsageBytes > 0 {
			var v uint64
			switch m.Dominant {
			case "anon":
				v = *m.AnonBytes
			case "page cache":
				v = *m.ReclaimableBytes
			case "shmem":
				v = *m.ShmemBytes
			case "kernel":
				v = *m.KernelBytes
			case "swap":
				v = *m.SwapBytes
			}
			fmt.Fprintf(&b, " = %s %s", pct(float64(v)/float64(m.UsageBytes)), m.Dominant)
		}
	}
	switch d.Outcome {
	case report.OutcomeContainerRestarts:
		if d.MainProcessKilled != nil && !*d.MainProcessKilled {
			b.WriteString("; child process, then the main process exited — container restarts")
		} else {
			b.WriteString("; main process — container restarts")
		}
	case report.OutcomeChildKilled:
		b.WriteString("; child process — container keeps running")
	case report.OutcomeSandboxKilled:
		b.WriteString("; pause process — pod sandbox restarts")
	case report.OutcomeUnknown:
		if r.Container != nil {
			b.WriteString("; main or child process unknown")
		}
	}
	return b.String()
}

func pct(f float64) string {
	return strconv.Itoa(int(math.Round(f*100))) + "%"
}

// Quantity formats bytes as Kubernetes shows memory: 123Mi, 1.5Gi, 512Ki.
// Whole values have no decimals; others have one.
func Quantity(b uint64) string {
	const unit = 1024
	if b < unit {
		return strconv.FormatUint(b, 10)
	}
	suffix := []string{"Ki", "Mi", "Gi", "Ti", "Pi", "Ei"}
	div, exp := uint64(unit), 0
	for n := b / unit; n >= unit && exp < len(suffix)-1; n /= unit {
		div *= unit
		exp++
	}
	if b%div == 0 {
		return strconv.FormatUint(b/div, 10) + suffix[exp]
	}
	return strconv.FormatFloat(float64(b)/float64(div), 'f', 1, 64) + suffix[exp]
}

package diagnose

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/oomscope/oomscope/report"
)

// Render writes every sentence of a computed diagnosis — the scope,
// outcome, memory, victim and oom group explanations and the summary —
// from its codes, numbers and facts alone. It overwrites what was there. A
// diagnosis without facts (decoded from JSON) renders with fewer names.
func Render(d *report.Diagnosis) {
	if d == nil {
		return
	}
	if d.ScopeReason == report.ScopeReasonNoReport {
		d.ScopeExplanation = "There is no report to diagnose."
		d.OutcomeExplanation = "There is no report to diagnose."
		d.Summary = "no report"
		return
	}
	f := d.Facts
	if f == nil {
		f = &report.DiagnosisFacts{}
	}
	d.ScopeExplanation = scopeSentence(d, f)
	d.OutcomeExplanation = outcomeSentence(d, f)
	if d.Memory != nil {
		d.Memory.Explanation = memorySentence(d.Memory)
	}
	if d.Victim != nil {
		d.Victim.Explanation = victimSentence(d.Victim, f)
	}
	if g := d.OOMGroup; g != nil {
		g.Explanation = fmt.Sprintf("memory.oom.group is set on %s, so the kernel killed all %d of its processes together instead of one.", g.Cgroup, g.Killed)
	}
	d.Summary = summary(d, f)
}

func limitText(l *uint64) string {
	if l == nil {
		return ""
	}
	return " " + Quantity(*l)
}

func orUnknown(s string) string {
	if s == "" {
		return "not printed"
	}
	return s
}

func scopeSentence(d *report.Diagnosis, f *report.DiagnosisFacts) string {
	lim := limitText(d.LimitBytes)
	switch d.ScopeReason {
	case report.ScopeReasonGlobalConstraint:
		return "The whole node ran out of memory (a global OOM, no cgroup limit involved), so the kernel picked a victim among all its processes."
	case report.ScopeReasonCpusetConstraint:
		return fmt.Sprintf("The memory nodes the task's cpuset allows (%s) ran out while the node as a whole may still have had free memory.", orUnknown(f.MemsAllowed))
	case report.ScopeReasonMempolicyConstraint:
		return fmt.Sprintf("The NUMA nodes the task's memory policy (mbind/set_mempolicy) allows (%s) ran out while other nodes may still have had free memory.", orUnknown(f.Nodemask))
	case report.ScopeReasonLimitingCgroupUnnamed:
		return "A memory cgroup limit was hit but the report does not name the cgroup."
	case report.ScopeReasonReportCutShort:
		return "The report lacks the lines that say which limit was hit (it was rate limited or cut short)."
	}
	switch d.Scope {
	case report.ScopeContainer:
		return fmt.Sprintf("The container's own memory limit%s was hit: the limiting cgroup is the container's cgroup.", lim)
	case report.ScopePod:
		own := "its own limit, if it has one"
		if f.ContainerLimitBytes != nil {
			own = "its own limit " + Quantity(*f.ContainerLimitBytes)
		} else if f.NoContainerLimit {
			own = "its own limit (it has none)"
		}
		return fmt.Sprintf("The pod-level limit%s was hit while the victim's container was still below %s: the pod's containers together used it up.", lim, own)
	case report.ScopeKubepods:
		if f.LimitingLevel == report.LevelQoS {
			return fmt.Sprintf("The %s QoS cgroup's limit%s (kubelet --qos-reserved) was hit by all %s pods together, not by one pod's own limit.", f.LimitingQoS, lim, f.LimitingQoS)
		}
		return fmt.Sprintf("The kubepods cgroup's limit%s (node allocatable: capacity minus kube and system reserved) was hit by all pods together before the kubelet evicted any.", lim)
	case report.ScopeSystemService:
		return fmt.Sprintf("The memory limit%s of the systemd unit %s (MemoryMax/MemoryLimit) was hit; no container is involved.", lim, f.LimitingUnit)
	}
	return fmt.Sprintf("The memory limit%s of the cgroup %s was hit; it is not a Kubernetes container, pod or node-allocatable cgroup.", lim, f.OOMMemcg)
}

func outcomeSentence(d *report.Diagnosis, f *report.DiagnosisFacts) string {
	pid, comm := 0, ""
	if d.Victim != nil {
		pid, comm = d.Victim.PID, d.Victim.Comm
	}
	restart := ""
	if f.RestartCount != nil {
		restart = fmt.Sprintf(" (the API shows restartCount %d)", *f.RestartCount)
	}
	id := short(f.ContainerID, 12)
	where, hedge := "the container's cgroup", ""
	switch d.OutcomeReason {
	case report.OutcomeReasonPodTaskTableLowestTGID, report.OutcomeReasonPodTaskTableLowerTGID:
		where, hedge = "the pod's cgroup apart from the pause process", "most likely "
	}
	switch d.OutcomeReason {
	case report.OutcomeReasonNoKillable:
		return "No process was killed: the kernel found no killable process (all unkillable or oom_score_adj -1000)."
	case report.OutcomeReasonNoVictim:
		return "The report shows no victim line, so what was killed is not known."
	case report.OutcomeReasonVictimExiting:
		return fmt.Sprintf("Nothing new was killed: the chosen process %d (%s) was already exiting, so the kernel let it finish.", pid, comm)
	case report.OutcomeReasonPauseProcess:
		return fmt.Sprintf("The pod's pause process %d was killed: the kubelet recreates the pod sandbox and restarts all of its containers%s.", pid, restart)
	case report.OutcomeReasonVictimCgroupUnknown:
		return fmt.Sprintf("Process %d (%s) was killed; the report does not say which cgroup it was in.", pid, comm)
	case report.OutcomeReasonNotInContainer:
		return fmt.Sprintf("Process %d (%s) in %s was killed; it was not in a container.", pid, comm, f.VictimPath)
	case report.OutcomeReasonAPITerminatedOOMKilled:
		return fmt.Sprintf("The API shows container instance %s terminated with reason OOMKilled (exit code %d): pid %d (%s) was its main process, and the container restarts per its restartPolicy.", id, f.APIExitCode, pid, comm)
	case report.OutcomeReasonAPITerminatedOther:
		reason := f.APIReason
		if reason == "" {
			reason = "unknown"
		}
		return fmt.Sprintf("The API shows container instance %s terminated with reason %s (exit code %d), not OOMKilled: pid %d (%s) was a child process, and the main process exited after it.", id, reason, f.APIExitCode, pid, comm)
	case report.OutcomeReasonAPIRunningAfterKill:
		return fmt.Sprintf("The API shows container instance %s still running %s after the kill, so pid %d (%s) was a child process: the container kept running and Kubernetes shows no OOMKilled.", id, f.APIObservedAfter.Round(time.Second), pid, comm)
	case report.OutcomeReasonNoTaskTable:
		return fmt.Sprintf("The report has no task table (vm.oom_dump_tasks=0 or a rate-limited report), so whether pid %d was the container's main process is not known%s.", pid, restart)
	case report.OutcomeReasonTaskTableTooWide:
		return fmt.Sprintf("The task table covers more than the pod (the %s scope), so it does not tell whether pid %d was the container's main process%s.", d.Scope, pid, restart)
	case report.OutcomeReasonTaskTableLowestTGID, report.OutcomeReasonPodTaskTableLowestTGID:
		return fmt.Sprintf("Pid %d (%s) has the lowest pid in %s, so it was %sthe container's main process: the container exits with reason OOMKilled and restarts per its restartPolicy%s.", f.VictimTGID, comm, where, hedge, restart)
	case report.OutcomeReasonTaskTableLowerTGID, report.OutcomeReasonPodTaskTableLowerTGID:
		return fmt.Sprintf("Pid %d (%s) has a lower pid than the victim in %s, so pid %d (%s) was %sa child process: the container keeps running and Kubernetes shows no OOMKilled%s.", f.MainPID, f.MainName, where, f.VictimTGID, comm, hedge, restart)
	}
	return "What became of the victim is not known."
}

func memorySentence(m *report.MemoryComposition) string {
	b := m.Breakdown
	if b == nil || b.UsageBytes == nil {
		if m.Dominant == "" {
			return "The usage is not known."
		}
		return fmt.Sprintf("Mostly %s.", m.Dominant)
	}
	u := float64(*b.UsageBytes)
	var parts []string
	for _, c := range components {
		if v := b.Component(c); v != nil && u > 0 {
			if p := pct(float64(*v) / u); p != "0%" {
				parts = append(parts, p+" "+c)
			}
		}
	}
	what := ""
	if len(parts) > 0 {
		what = " = " + strings.Join(parts, ", ")
	}
	ws := ""
	if b.WorkingSetBytes != nil {
		ws = fmt.Sprintf(", working set %s as the kubelet counts it (usage − inactive file)", Quantity(*b.WorkingSetBytes))
	}
	verdict := ""
	switch {
	case m.MostlyReclaimable:
		verdict = "; mostly reclaimable page cache, so the limit is too small for the workload's I/O rather than a leak"
	case m.AnonShare != nil && *m.AnonShare >= 0.8:
		verdict = "; mostly anonymous memory the kernel cannot reclaim without swap, so the process memory itself (a leak or an undersized limit) filled it"
	}
	return fmt.Sprintf("Usage was %s%s%s%s.", Quantity(*b.UsageBytes), what, ws, verdict)
}

func victimSentence(vc *report.VictimChoice, f *report.DiagnosisFacts) string {
	var sentences []string
	switch {
	case vc.Reason == report.VictimReasonBiggestConsumer:
		sentences = append(sentences, fmt.Sprintf("Pid %d (%s) was the biggest consumer of the %d tasks listed (%s rss+swap+page tables).", vc.PID, vc.Comm, f.TasksTotal, Quantity(f.VictimTaskBytes)))
	case vc.Biggest != nil:
		why := "its oom_score_adj or the kernel's rounding favoured it"
		switch vc.Reason {
		case report.VictimReasonOOMScoreAdj:
			if vc.OOMScoreAdj != nil {
				why = fmt.Sprintf("its oom_score_adj %d outweighs the bigger task's %d", *vc.OOMScoreAdj, vc.Biggest.OOMScoreAdj)
			}
		case report.VictimReasonOOMGroup:
			why = "memory.oom.group killed the whole group"
		}
		sentences = append(sentences, fmt.Sprintf("Pid %d (%s) was not the biggest consumer — pid %d (%s) used %s against its %s — but was chosen because %s.",
			vc.PID, vc.Comm, vc.Biggest.PID, vc.Biggest.Name, Quantity(vc.Biggest.Bytes), Quantity(f.VictimTaskBytes), why))
	}
	if vc.OOMScoreAdj != nil {
		adj := *vc.OOMScoreAdj
		switch vc.QoSCheck {
		case report.QoSCheckMismatch, report.QoSCheckNodeCritical:
			why := "the process or its runtime changed it, or the kubelet did not start it"
			if vc.QoSCheck == report.QoSCheckNodeCritical {
				why = "a node-critical pod (system-node-critical, system-cluster-critical) gets -997 whatever its QoS class"
			}
			sentences = append(sentences, fmt.Sprintf("Its oom_score_adj %d does not fit the pod's %s QoS class (the kubelet sets %s): %s.", adj, vc.PodQoS, expectedText(vc.PodQoS, vc.ExpectedOOMScoreAdj), why))
		case report.QoSCheckMatch:
			sentences = append(sentences, fmt.Sprintf("Its oom_score_adj %d matches the pod's %s QoS class.", adj, vc.PodQoS))
		default:
			sentences = append(sentences, fmt.Sprintf("Its oom_score_adj %d means %s.", adj, adjMeaning(adj)))
		}
	}
	return strings.Join(sentences, " ")
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
	case report.ImpliedPodSandbox:
		return "a pod's pause process"
	case report.ImpliedNodeDaemon:
		return "a node daemon (kubelet or container runtime)"
	}
	if adj == 0 {
		return "the default, not set by the kubelet"
	}
	return "a value not set by the kubelet"
}

// podName is "namespace/name", or "pod <uid prefix>" without a name, or "".
func podName(f *report.DiagnosisFacts) string {
	switch {
	case f.PodName != "":
		return f.PodNamespace + "/" + f.PodName
	case f.PodUID != "":
		return "pod " + short(f.PodUID, 8)
	}
	return ""
}

// subject names who was hit, for the summary.
func subject(f *report.DiagnosisFacts) string {
	qos := ""
	if f.PodQoS != "" {
		qos = " (" + f.PodQoS + ")"
	}
	pod := podName(f)
	if f.HasContainer {
		c := "container " + short(f.ContainerID, 12)
		if f.ContainerName != "" {
			c = "container " + strconv.Quote(f.ContainerName)
		}
		if pod != "" {
			return c + " of " + pod + qos
		}
		if f.ContainerRuntime != "" {
			return c + " (" + f.ContainerRuntime + ")"
		}
		return c
	}
	if pod != "" {
		if f.PodName != "" {
			return "pod " + pod + qos
		}
		return pod + qos
	}
	switch f.VictimLevel {
	case report.LevelSystemService, report.LevelUserSession:
		if f.VictimUnit != "" {
			return "unit " + f.VictimUnit
		}
	}
	if f.VictimPath != "" {
		return "cgroup " + f.VictimPath
	}
	return ""
}

func short(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func limitPhrase(d *report.Diagnosis, f *report.DiagnosisFacts) string {
	l := limitText(d.LimitBytes)
	switch d.Scope {
	case report.ScopeContainer:
		return "the CONTAINER limit" + l
	case report.ScopePod:
		return "the POD limit" + l
	case report.ScopeKubepods:
		if f.LimitingLevel == report.LevelQoS {
			return "the " + strings.ToUpper(f.LimitingQoS) + " QoS limit" + l
		}
		return "the KUBEPODS (node allocatable) limit" + l
	case report.ScopeNode:
		return "NODE memory (global OOM)"
	case report.ScopeCpuset:
		return "its CPUSET's memory nodes"
	case report.ScopeMempolicy:
		return "its MEMPOLICY's memory nodes"
	case report.ScopeSystemService:
		return "the limit" + l + " of SERVICE " + f.LimitingUnit
	}
	if f.OOMMemcg != "" {
		if f.VictimPath == f.OOMMemcg {
			return "its cgroup's limit" + l
		}
		return "the limit" + l + " of cgroup " + f.OOMMemcg
	}
	if d.LimitBytes != nil {
		return "a cgroup limit" + l
	}
	if f.Kind == report.KindMemcg {
		return "an unknown memory cgroup limit"
	}
	return "an unknown limit"
}

func summary(d *report.Diagnosis, f *report.DiagnosisFacts) string {
	var b strings.Builder
	if s := subject(f); s != "" {
		b.WriteString(s)
		b.WriteString(": ")
	}
	v := d.Victim
	switch {
	case d.OutcomeReason == report.OutcomeReasonNoKillable:
		b.WriteString("nothing killable, hit by ")
	case v == nil:
		b.WriteString("victim unknown, hit by ")
	case d.OutcomeReason == report.OutcomeReasonVictimExiting:
		fmt.Fprintf(&b, "process %d %q already exiting, nothing killed, hit by ", v.PID, v.Comm)
	default:
		fmt.Fprintf(&b, "process %d %q", v.PID, v.Comm)
		if d.OOMGroup != nil && d.OOMGroup.Killed > 1 {
			fmt.Fprintf(&b, " and %d more (memory.oom.group)", d.OOMGroup.Killed-1)
		}
		b.WriteString(" killed by ")
	}
	b.WriteString(limitPhrase(d, f))
	if m := d.Memory; m != nil && m.Breakdown != nil && m.Breakdown.UsageBytes != nil {
		u := *m.Breakdown.UsageBytes
		fmt.Fprintf(&b, "; usage %s", Quantity(u))
		if c := m.Breakdown.Component(m.Dominant); c != nil && u > 0 {
			fmt.Fprintf(&b, " = %s %s", pct(float64(*c)/float64(u)), m.Dominant)
		}
	}
	b.WriteString(outcomePhrase(d, f.HasContainer))
	return b.String()
}

// outcomePhrase is the summary's last part: what became of the container.
func outcomePhrase(d *report.Diagnosis, hasContainer bool) string {
	switch d.Outcome {
	case report.OutcomeContainerRestarts:
		if d.MainProcessKilled != nil && !*d.MainProcessKilled {
			return "; child process, then the main process exited — container restarts"
		}
		return "; main process — container restarts"
	case report.OutcomeChildKilled:
		return "; child process — container keeps running"
	case report.OutcomeSandboxKilled:
		return "; pause process — pod sandbox restarts"
	case report.OutcomeUnknown:
		if hasContainer {
			return "; main or child process unknown"
		}
	}
	return ""
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

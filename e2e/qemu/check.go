package qemu

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/oomscope/oomscope/e2e/qemu/internal/truth"
	"github.com/oomscope/oomscope/report"
)

// Outcome values of a [Result].
const (
	Pass = "pass"
	Fail = "FAIL"
	NA   = "n/a"
)

// Result is the verdict on one kernel × scenario cell.
type Result struct {
	Kernel   string
	Scenario string
	Outcome  string
	// Reasons explain a failure: each names the expected fact and what was
	// parsed. For n/a, why the scenario cannot run on this kernel.
	Reasons []string
	// Summary is a short description of what was seen (for passes).
	Summary string
}

// pageSlack is how far the usage a memcg report prints may be from the
// limit written: the charge that failed is at most one huge page (2 MiB)
// for THP faults, and forced charges (page tables, kernel memory that
// cannot fail) can overshoot the limit by a few pages (seen: 16 KiB on
// 6.1).
const pageSlack = 2 << 20

// Check compares the reports rebuilt for one scenario with the guest's
// ground truth. kernel names the kernel in the reasons.
func Check(kernel string, seg Segment, reports []report.Report) Result {
	t := seg.Truth
	res := Result{Kernel: kernel, Scenario: t.Scenario}
	fail := func(format string, args ...any) {
		res.Reasons = append(res.Reasons, fmt.Sprintf(format, args...))
	}
	switch t.Status {
	case "ok":
	case "unsupported":
		res.Outcome = NA
		res.Reasons = []string{t.Error}
		return res
	default:
		fail("guest: scenario %s: %s", t.Status, t.Error)
	}
	if seg.BeginSeq == 0 || seg.EndSeq == 0 {
		fail("capture: scenario markers not both seen in /dev/kmsg (begin seq %d, end seq %d)", seg.BeginSeq, seg.EndSeq)
	}

	kills := int(t.Vmstat.Delta)
	victims := map[int]*truth.Proc{}
	procs := map[int]*truth.Proc{}
	for _, p := range t.Processes {
		procs[p.Pid] = p
		if p.KilledByKernel {
			victims[p.Pid] = p
		}
	}
	if kills == 0 {
		fail("kernel: expected an OOM kill, /proc/vmstat oom_kill did not move")
	}

	// Victims: each pid exactly once over all reports.
	seen := map[int]int{}
	partial := 0
	for _, r := range reports {
		if r.Partial {
			partial++
		}
		for _, v := range r.Victims {
			if v.Exiting {
				continue
			}
			seen[v.PID]++
		}
	}
	for pid, n := range seen {
		if n > 1 {
			fail("victim pid %d: expected in exactly one report/victim line, parsed %d times", pid, n)
		}
		if _, ok := victims[pid]; !ok {
			fail("victim pid %d: parsed as killed, but the guest saw no kernel SIGKILL for it (killed by kernel: %v)", pid, sortedPids(victims))
		}
	}
	for pid, p := range victims {
		if seen[pid] == 0 {
			fail("victim pid %d (%s): killed by the kernel, in no parsed report", pid, p.Comm)
		}
	}

	if t.Expect.GroupKill {
		if len(reports) != 1 {
			fail("memory.oom.group: expected 1 report, parsed %d", len(reports))
		}
		if len(victims) < 3 {
			fail("memory.oom.group: expected 3+ processes killed, the guest saw %d", len(victims))
		}
	} else if len(reports) != kills {
		fail("report count: expected %d (vmstat oom_kill delta), parsed %d", kills, len(reports))
	}

	cgs := map[string]*truth.Cg{}
	for _, cg := range t.Cgroups {
		cgs[cg.Path] = cg
	}
	for i, r := range reports {
		checkReport(t, i, r, victims, procs, cgs, fail)
	}

	// The kernel's own counters of the limiting cgroup.
	if cg := cgs[t.Expect.OOMMemcg]; cg != nil && cg.Delta.OOMKill != nil && *cg.Delta.OOMKill != int64(kills) {
		fail("kernel counters: %s oom_kill delta %d != vmstat oom_kill delta %d", cg.Path, *cg.Delta.OOMKill, kills)
	}
	if !t.Expect.GroupKill {
		// Per container: the kernel's oom_kill count equals the victims the
		// guest saw die in it.
		for _, cg := range t.Cgroups {
			if cg.Role != "container" || cg.Delta.OOMKill == nil {
				continue
			}
			n := 0
			for _, p := range victims {
				if p.Cgroup == cg.Path {
					n++
				}
			}
			if *cg.Delta.OOMKill != int64(n) {
				fail("kernel counters: %s oom_kill delta %d, but the guest saw %d of its processes killed", cg.Path, *cg.Delta.OOMKill, n)
			}
		}
	}
	if t.Expect.GroupKill {
		if cg := cgs[t.Expect.OOMMemcg]; cg != nil && cg.Delta.OOMGroupKill != nil && *cg.Delta.OOMGroupKill != 1 {
			fail("kernel counters: %s oom_group_kill delta %d, expected 1", cg.Path, *cg.Delta.OOMGroupKill)
		}
	}
	if t.Expect.RateLimited && partial == 0 {
		fail("rate limit: %d kills within 5 s, expected partial (header-less) reports, parsed none", kills)
	}

	res.Summary = fmt.Sprintf("%d kills, %d reports (%d partial)", kills, len(reports), partial)
	if kills != len(victims) {
		// memory.oom.group: the kernel prints (and counts in vmstat and
		// memory.events) the first victim twice, once as the chosen task
		// and once as a group member.
		res.Summary += fmt.Sprintf(", %d processes killed", len(victims))
	}
	if len(res.Reasons) == 0 {
		res.Outcome = Pass
	} else {
		res.Outcome = Fail
	}
	return res
}

func checkReport(t truth.Truth, i int, r report.Report, victims, procs map[int]*truth.Proc, cgs map[string]*truth.Cg, fail func(string, ...any)) {
	name := "report " + strconv.Itoa(i+1)
	if len(r.Victims) > 0 {
		name += " (victim " + strconv.Itoa(r.Victims[0].PID) + ")"
	}
	if r.Schema != report.Schema {
		fail("%s: schema %q, expected %q", name, r.Schema, report.Schema)
	}
	for _, v := range r.Victims {
		if p := victims[v.PID]; p != nil && p.Comm != "" && v.Comm != p.Comm {
			fail("%s: victim pid %d comm: expected %q, parsed %q", name, v.PID, p.Comm, v.Comm)
		}
	}
	if r.Incomplete {
		fail("%s: parsed as incomplete: %v", name, r.Problems)
	}
	if r.Partial {
		// Only the victim line(s) were printed: expected only when the
		// scenario outran the kernel's rate limit.
		if !t.Expect.RateLimited {
			fail("%s: parsed as partial (no header: rate limited?), expected a full report", name)
		}
		return
	}
	wantKind := report.KindMemcg
	if t.Expect.Constraint == "CONSTRAINT_NONE" {
		wantKind = report.KindGlobal
	}
	if r.Kind != wantKind {
		fail("%s: kind: expected %q, parsed %q", name, wantKind, r.Kind)
	}
	if t.Expect.Constraint != "" && r.Constraint != t.Expect.Constraint {
		fail("%s: constraint: expected %q, parsed %q", name, t.Expect.Constraint, r.Constraint)
	}
	if t.Expect.OOMMemcg != "" && r.OOMMemcg != t.Expect.OOMMemcg {
		fail("%s: limiting cgroup (oom_memcg): expected %q, parsed %q", name, t.Expect.OOMMemcg, r.OOMMemcg)
	}
	// The victim's cgroup: the scenario's, or the victim process's own.
	wantTask := t.Expect.TaskMemcg
	if len(r.Victims) > 0 {
		if p := procs[r.Victims[0].PID]; p != nil {
			wantTask = p.Cgroup
		}
	}
	if wantTask != "" && r.TaskMemcg != wantTask {
		fail("%s: victim cgroup (task_memcg): expected %q, parsed %q", name, wantTask, r.TaskMemcg)
	}
	if t.Expect.FirstVictimPid != 0 && (len(r.Victims) == 0 || r.Victims[0].PID != t.Expect.FirstVictimPid) {
		fail("%s: victim: expected pid %d, parsed %v", name, t.Expect.FirstVictimPid, victimPids(r))
	}
	if t.Expect.GroupKill {
		if r.OOMGroup != t.Expect.OOMMemcg {
			fail("%s: memory.oom.group cgroup: expected %q, parsed %q", name, t.Expect.OOMMemcg, r.OOMGroup)
		}
	}

	// Limit and usage of the limiting cgroup.
	if wantKind == report.KindMemcg {
		cg := cgs[r.OOMMemcg]
		switch {
		case r.Memory == nil:
			fail("%s: memory counter line: expected, parsed none", name)
		case cg == nil || cg.Limit == "":
			fail("%s: limiting cgroup %q is none the guest limited", name, r.OOMMemcg)
		default:
			limit, _ := strconv.ParseUint(cg.Limit, 10, 64)
			if r.Memory.LimitBytes != limit {
				fail("%s: limit: expected %d (written to %s), parsed %d", name, limit, cg.Path, r.Memory.LimitBytes)
			}
			if d := int64(r.Memory.UsageBytes) - int64(limit); d > pageSlack || d < -pageSlack {
				fail("%s: usage: expected within %d bytes of the limit %d, parsed %d", name, pageSlack, limit, r.Memory.UsageBytes)
			}
		}
	} else if r.MemInfo == nil {
		fail("%s: global OOM: expected the Mem-Info dump, parsed none", name)
	}

	// Trigger vs victim.
	if r.Trigger == nil {
		fail("%s: trigger: expected the invoking task, parsed none", name)
	} else if r.Trigger.PID == nil {
		fail("%s: trigger pid: expected one, parsed none", name)
	} else if p := procs[*r.Trigger.PID]; p == nil {
		fail("%s: trigger pid %d: expected one of the scenario's processes %v", name, *r.Trigger.PID, sortedPids(procs))
	} else if p.Comm != "" && r.Trigger.Comm != p.Comm {
		fail("%s: trigger comm: expected %q (pid %d), parsed %q", name, p.Comm, p.Pid, r.Trigger.Comm)
	}

	// The task table.
	if !t.Expect.TaskTable {
		if r.TasksTotal != 0 || len(r.TaskColumns) != 0 {
			fail("%s: task table: expected none (vm.oom_dump_tasks=0), parsed %d rows", name, r.TasksTotal)
		}
		return
	}
	if r.TasksTotal == 0 {
		fail("%s: task table: expected rows, parsed none", name)
		return
	}
	rows := map[int]bool{}
	for _, row := range r.Tasks {
		rows[row.PID] = true
	}
	for _, p := range procs {
		if !p.Ready || !under(p.Cgroup, r.OOMMemcg, wantKind) {
			continue
		}
		if !rows[p.Pid] && r.TasksDropped == 0 {
			fail("%s: task table: expected pid %d (%s) in %s, not among %d rows", name, p.Pid, p.Comm, p.Cgroup, r.TasksTotal)
		}
	}
}

// under reports whether cgroup path lies in the subtree of root (global
// OOMs cover everything).
func under(path, root, kind string) bool {
	if kind != report.KindMemcg || root == "/" {
		return true
	}
	return path == root || strings.HasPrefix(path, root+"/")
}

func victimPids(r report.Report) []int {
	var out []int
	for _, v := range r.Victims {
		out = append(out, v.PID)
	}
	return out
}

func sortedPids(m map[int]*truth.Proc) []int {
	out := make([]int, 0, len(m))
	for pid := range m {
		out = append(out, pid)
	}
	sort.Ints(out)
	return out
}

// guestAttribution is what the guest's enriched report says of its
// victim's cgroup.
type guestAttribution struct {
	ID          string          `json:"id"`
	Partial     bool            `json:"partial"`
	Victims     []report.Victim `json:"victims"`
	Attribution string          `json:"attribution"`
	Cgroups     *struct {
		Victim *struct {
			Path string `json:"path"`
		} `json:"victim"`
	} `json:"cgroups"`
}

// CheckAttribution checks the attribution of the guest's partial reports:
// a victim cgroup learnt from /proc or the kill counters must be the one
// the guest saw the process in; it adds how many were attributed to the
// summary.
func CheckAttribution(res *Result, seg Segment, guest []guestAttribution) {
	procs := map[int]*truth.Proc{}
	for _, p := range seg.Truth.Processes {
		procs[p.Pid] = p
	}
	partial, by := 0, map[string]int{}
	for _, g := range guest {
		if !g.Partial || len(g.Victims) == 0 {
			continue
		}
		partial++
		if g.Attribution == "" {
			continue
		}
		path := ""
		if g.Cgroups != nil && g.Cgroups.Victim != nil {
			path = g.Cgroups.Victim.Path
		}
		p := procs[g.Victims[0].PID]
		if p == nil || p.Cgroup != path {
			want := "?"
			if p != nil {
				want = p.Cgroup
			}
			res.Reasons = append(res.Reasons, fmt.Sprintf("attribution: partial report %s of pid %d attributed (%s) to %s, the guest saw it in %s", g.ID, g.Victims[0].PID, g.Attribution, path, want))
			res.Outcome = Fail
			continue
		}
		by[g.Attribution]++
	}
	if partial > 0 {
		res.Summary += fmt.Sprintf(", %d of %d partial attributed (%d counters, %d proc)", by[report.AttributionCounters]+by[report.AttributionProc], partial, by[report.AttributionCounters], by[report.AttributionProc])
	}
}

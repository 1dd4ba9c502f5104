package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/oomscope/oomscope/enrich"
	"github.com/oomscope/oomscope/enrich/diagnose"
	"github.com/oomscope/oomscope/report"
)

// writeText writes the post-mortem an on-call engineer reads first: the
// one-line answer, the pod and container, which limit and what became of
// the container, then what was killed, where, what the memory was, the top
// processes and anything that makes the report less than whole.
func writeText(w io.Writer, er *report.Enriched, source string) error {
	r := er.Report
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	// Every value is escaped: names and paths are the log's (escape.go).
	line := func(k, format string, a ...any) {
		if v := fmt.Sprintf(format, a...); v != "" { // an absent value gets no line
			fmt.Fprintf(tw, "  %s\t%s\n", k, escapeText(v))
		}
	}

	fmt.Fprintf(tw, "OOM kill (%s)%s\n", r.Kind, escapeText(when(r)))
	if source != "" {
		if source == "-" {
			source = "standard input"
		}
		line("source", "%s", source)
	}
	writeEnrichment(line, er)
	writeVictims(line, r)
	writeLimit(line, r)
	if d := r.Derived; d != nil && d.UsageBytes != nil {
		line("usage", "%s", composition(d))
		if d.WorkingSetBytes != nil {
			line("", "working set %s (usage - inactive file), docker usage %s", human(*d.WorkingSetBytes), humanPtr(d.DockerUsageBytes))
		}
	}
	if t := r.Trigger; t != nil {
		pid := ""
		if t.PID != nil {
			pid = fmt.Sprintf(" (pid %d)", *t.PID)
		}
		order := "an allocation"
		if t.Order != nil {
			order = fmt.Sprintf("order-%d", *t.Order)
		}
		gfp := strings.Join(t.GFPFlags, "|")
		if gfp == "" && t.GFPMask != "" {
			gfp = "gfp_mask=" + t.GFPMask
		}
		if gfp != "" {
			gfp = " " + gfp
		}
		line("trigger", "%s%s asked for %s%s", t.Comm, pid, order, gfp)
	}
	writeTop(tw, r)
	if d := er.Diagnosis; d != nil {
		if d.Memory != nil {
			line("memory", "%s", d.Memory.Explanation)
		}
		if d.Victim != nil && d.Victim.Explanation != "" {
			line("victim", "%s", d.Victim.Explanation)
		}
		if d.OOMGroup != nil {
			line("oom.group", "%s", d.OOMGroup.Explanation)
		}
	}
	for _, m := range er.MissedKills {
		line("missed", "%d kill(s) without a report (%s): %s", m.Count, m.Counter, m.Explanation)
	}
	if r.Partial || r.Incomplete {
		flags := []string{}
		if r.Partial {
			flags = append(flags, "PARTIAL")
		}
		if r.Incomplete {
			flags = append(flags, "INCOMPLETE")
		}
		line("flags", "%s: %s", strings.Join(flags, ", "), strings.Join(r.Problems, "; "))
	}
	line("kernel", "%s", r.KernelVersion)
	line("id", "%s", r.ID)
	fmt.Fprintln(tw)
	return tw.Flush()
}

// writeEnrichment writes the enrichment's lines: the summary, the pod and
// container, scope and outcome.
func writeEnrichment(line func(k, format string, a ...any), er *report.Enriched) {
	d := er.Diagnosis
	if d != nil {
		line("summary", "%s", d.Summary)
	}
	if p := er.Pod; p != nil {
		var parts []string
		if p.Name != "" {
			parts = append(parts, p.Namespace+"/"+p.Name)
		}
		parts = append(parts, "uid "+p.UID)
		if p.QoSClass != "" {
			parts = append(parts, p.QoSClass)
		}
		if p.Owner != nil {
			parts = append(parts, "owner "+p.Owner.Kind+"/"+p.Owner.Name)
		}
		if p.Deleted {
			parts = append(parts, "deleted")
		}
		line("pod", "%s", strings.Join(parts, ", "))
	}
	if c := er.Container; c != nil {
		var parts []string
		if c.Name != "" {
			parts = append(parts, fmt.Sprintf("%q", c.Name))
		}
		if c.ID != "" {
			parts = append(parts, "id "+c.ID)
		}
		if c.Runtime != "" {
			parts = append(parts, c.Runtime)
		}
		if c.Image != "" {
			parts = append(parts, "image "+c.Image)
		}
		if c.RestartCount != nil {
			parts = append(parts, fmt.Sprintf("restarts %d", *c.RestartCount))
		}
		line("container", "%s", strings.Join(parts, ", "))
	}
	if d != nil {
		line("scope", "%s: %s", d.Scope, d.ScopeExplanation)
		line("outcome", "%s: %s", d.Outcome, d.OutcomeExplanation)
	}
	if len(er.Enrichment.Errors) > 0 {
		line("enrichment", "%s", strings.Join(er.Enrichment.Errors, " "))
	} else if len(er.Enrichment.Sources) == 1 && er.Enrichment.Sources[0] == enrich.SourceCgroupPath && (er.Pod != nil || er.Container != nil) {
		line("enrichment", "from the cgroup path only (no Kubernetes API)")
	}
}

// writeVictims writes what was killed, skipped or chosen.
func writeVictims(line func(k, format string, a ...any), r *report.Report) {
	for _, v := range r.Victims {
		what := "killed"
		if v.GroupMember {
			what = "group kill"
		}
		if v.Inferred != "" {
			line(what, "%s: named by its %s line, the Killed line is missing", task(v.Comm, v.PID), v.Inferred)
			continue
		}
		line(what, "%s: %s%s", task(v.Comm, v.PID), victimRSS(v), adj(v.OOMScoreAdj))
	}
	for _, e := range r.AlreadyExiting {
		line("not killed", "%s: already exiting, the kernel skipped it", task(e.Comm, e.PID))
	}
	if c := r.Chosen; c != nil {
		line("chosen", "%s (pid %d, score %d): its Killed line is missing (the kernel may have killed a child instead)", c.Comm, c.PID, c.Score)
	}
	if len(r.Victims) == 0 {
		why := " seen"
		switch {
		case r.NoKillable:
			why = " (no killable process)"
		case len(r.AlreadyExiting) > 0:
			why = " (the task chosen was already exiting)"
		case r.Panic != "":
			why = " (the kernel panicked)"
		}
		line("killed", "nothing%s", why)
	}
	if r.OOMGroup != "" {
		line("oom.group", "%s (%d processes killed together)", r.OOMGroup, len(r.Victims))
	}
}

// task names a process: "comm (pid N)", or "pid N (name not in the log)"
// when its name was cut off (longer than any comm, so no name can look
// like it).
func task(comm string, pid int) string {
	if comm == "" {
		return fmt.Sprintf("pid %d (name not in the log)", pid)
	}
	return fmt.Sprintf("%s (pid %d)", comm, pid)
}

// victimRSS is "rss 48.7Mi = anon 45.7Mi + file 3.0Mi + shmem 0", with
// what the Killed line gave.
func victimRSS(v report.Victim) string {
	parts := []string{"anon " + humanPtr(v.AnonRSS), "file " + humanPtr(v.FileRSS)}
	if v.ShmemRSSBytes != nil {
		parts = append(parts, "shmem "+human(*v.ShmemRSSBytes))
	}
	if v.AnonRSS == nil && v.FileRSS == nil && v.ShmemRSSBytes == nil {
		return "sizes not in the log"
	}
	if v.AnonRSS == nil || v.FileRSS == nil {
		return strings.Join(parts, ", ")
	}
	rss := *v.AnonRSS + *v.FileRSS
	if v.ShmemRSSBytes != nil {
		rss += *v.ShmemRSSBytes
	}
	return "rss " + human(rss) + " = " + strings.Join(parts, " + ")
}

// writeLimit writes which limit was hit and where the victim was, each
// cgroup path once: the victim's cgroup is shown below the limiting one.
func writeLimit(line func(k, format string, a ...any), r *report.Report) {
	limit, fail := "", ""
	if r.Memory != nil {
		limit, fail = human(r.Memory.LimitBytes)+" of ", fmt.Sprintf(" (failcnt %d)", r.Memory.Failcnt)
	}
	task, oom := r.TaskMemcg, r.OOMMemcg
	switch {
	case oom != "" && (task == "" || task == oom):
		own := ""
		if task == oom {
			own = ", the victim's own cgroup"
		}
		line("limit", "%s%s%s%s", limit, oom, fail, own)
	case oom != "" && strings.HasPrefix(task, strings.TrimSuffix(oom, "/")+"/"):
		line("limit", "%s%s%s", limit, oom, fail)
		line("cgroup", ".../%s (the victim's, below it)", strings.TrimPrefix(task, strings.TrimSuffix(oom, "/")+"/"))
	case oom != "":
		line("limit", "%s%s%s", limit, oom, fail)
		line("cgroup", "%s (the victim's)", task)
	case r.Memory != nil:
		line("limit", "%s(cgroup not printed)%s", limit, fail)
		if task != "" {
			line("cgroup", "%s (the victim's)", task)
		}
	case r.Kind != report.KindMemcg && r.Kind != report.KindUnknown:
		how := ""
		if r.Constraint != "" {
			how = " (" + strings.TrimPrefix(r.Constraint, "CONSTRAINT_") + ")"
		}
		line("limit", "node memory%s", how)
		if task != "" {
			line("cgroup", "%s (the victim's)", task)
		}
	case task != "":
		line("cgroup", "%s (the victim's)", task)
	}
}

func writeTop(w io.Writer, r *report.Report) {
	if r.Derived == nil || len(r.Derived.TopTasks) == 0 {
		if r.TasksTotal == 0 && !r.Partial {
			fmt.Fprintf(w, "  tasks\tnot printed (vm.oom_dump_tasks=0?)\n")
		}
		return
	}
	top := r.Derived.TopTasks
	// Shares of the table's rss: they add up to 100% over every row, the
	// rows not listed being "the others".
	ps := r.Derived.PageSizeBytes
	if ps == 0 {
		ps = 4096
	}
	total := r.TaskRSSPagesTotal * ps
	vals := make([]uint64, 0, len(top)+1)
	var listed uint64
	for _, t := range top {
		vals = append(vals, t.RSSBytes)
		listed += t.RSSBytes
	}
	others := len(top) < r.TasksTotal && total > listed
	if others {
		vals = append(vals, total-listed)
	}
	pct := percents(vals, max(total, listed))
	fmt.Fprintf(w, "  top\t%d of %d tasks by rss, share of the table's rss %s:\n", len(top), r.TasksTotal, human(max(total, listed)))
	for i, t := range top {
		mark := ""
		if t.Victim {
			mark = "  <- killed"
		}
		fmt.Fprintf(w, "  \t  %7d  %7s  %3d%%  %s%s\n", t.PID, human(t.RSSBytes), pct[i], escapeText(t.Name), mark)
	}
	if others {
		fmt.Fprintf(w, "  \t  %7s  %7s  %3d%%  the other %d\n", "", human(total-listed), pct[len(top)], r.TasksTotal-len(top))
	}
}

// composition is "96Mi of 96Mi: anon 95.4Mi (99%), page cache 24Ki (0%),
// kernel 572Ki (1%); shmem 0 (part of the page cache); swap 0 (not in
// usage)": the shares are of the parts that make up usage, and add up to
// 100%; shmem is inside one of them and swap outside usage, so they have
// none.
func composition(d *report.Derived) string {
	usage := *d.UsageBytes
	type part struct {
		name string
		v    uint64
	}
	var parts []part
	var sum uint64
	for _, p := range []struct {
		name string
		v    *uint64
	}{{"anon", d.AnonBytes}, {"page cache", d.PageCacheBytes}, {"kernel", d.KernelBytes}} {
		if p.v != nil {
			parts = append(parts, part{p.name, *p.v})
			sum += *p.v
		}
	}
	if len(parts) > 0 && usage > sum {
		parts = append(parts, part{"other", usage - sum})
		sum = usage
	}
	s := human(usage)
	if d.LimitBytes != nil {
		s += " of " + human(*d.LimitBytes)
	}
	vals := make([]uint64, len(parts))
	for i, p := range parts {
		vals[i] = p.v
	}
	pct := percents(vals, sum)
	var out []string
	for i, p := range parts {
		out = append(out, fmt.Sprintf("%s %s (%d%%)", p.name, human(p.v), pct[i]))
	}
	if len(out) > 0 {
		s += ": " + strings.Join(out, ", ")
	}
	var extra []string
	if d.ShmemBytes != nil {
		in := "part of the page cache"
		if strings.HasPrefix(d.Source, "meminfo") {
			in = "part of anon"
		}
		extra = append(extra, fmt.Sprintf("shmem %s (%s)", human(*d.ShmemBytes), in))
	}
	if d.SwapBytes != nil {
		extra = append(extra, fmt.Sprintf("swap %s (not in usage)", human(*d.SwapBytes)))
	}
	if len(extra) > 0 {
		s += "; " + strings.Join(extra, "; ")
	}
	return s
}

// percents returns each value's share of total in whole percents that add
// up to the share of their sum (100 when they make up total): largest
// remainders get the rounding.
func percents(vals []uint64, total uint64) []int {
	out := make([]int, len(vals))
	if total == 0 {
		return out
	}
	var sum uint64
	type rem struct {
		i int
		r float64
	}
	rems := make([]rem, len(vals))
	assigned := 0
	for i, v := range vals {
		sum += v
		exact := float64(v) * 100 / float64(total)
		out[i] = int(exact)
		assigned += out[i]
		rems[i] = rem{i, exact - float64(out[i])}
	}
	target := int(float64(sum)*100/float64(total) + 0.5)
	sort.SliceStable(rems, func(a, b int) bool { return rems[a].r > rems[b].r })
	for k := 0; assigned < target && k < len(rems); k++ {
		out[rems[k].i]++
		assigned++
	}
	return out
}

// when is " at <wall time> on <host> [<kernel time>]", what the log gave.
func when(r *report.Report) string {
	var parts []string
	if r.First.Wall != nil {
		parts = append(parts, "at "+r.First.Wall.Format(time.RFC3339))
	}
	if r.Host != "" {
		parts = append(parts, "on "+r.Host)
	}
	if r.First.MonoUsec != nil {
		parts = append(parts, fmt.Sprintf("[%d.%06d s after boot]", *r.First.MonoUsec/1e6, *r.First.MonoUsec%1e6))
	}
	if len(parts) == 0 {
		return ""
	}
	return " " + strings.Join(parts, " ")
}

func adj(p *int) string {
	if p == nil {
		return ""
	}
	return fmt.Sprintf(", oom_score_adj %d", *p)
}

func humanPtr(v *uint64) string {
	if v == nil {
		return "?"
	}
	return human(*v)
}

// human formats bytes as the diagnosis and kubectl do: 96Mi, 45.7Mi.
func human(b uint64) string { return diagnose.Quantity(b) }

package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/oomscope/oomscope/enrich"
	"github.com/oomscope/oomscope/report"
)

// writeText writes the post-mortem an on-call engineer reads first: the
// one-line answer, the pod and container, which limit and what became of
// the container, then what was killed, where, what the memory was, the top
// processes and anything that makes the report less than whole.
func writeText(w io.Writer, er *report.Enriched) error {
	r := er.Report
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	// Every value is escaped: names and paths are the log's (escape.go).
	line := func(k, format string, a ...any) {
		fmt.Fprintf(tw, "  %s\t%s\n", k, escapeText(fmt.Sprintf(format, a...)))
	}

	fmt.Fprintf(tw, "OOM kill (%s) %s\n", r.Kind, escapeText(when(r)))
	writeEnrichment(line, er)
	for _, v := range r.Victims {
		what := "killed"
		if v.Exiting {
			what = "exiting"
		} else if v.GroupMember {
			what = "group kill"
		}
		if v.Inferred != "" {
			line(what, "%s (pid %d): named by its %s line, the Killed line is missing", v.Comm, v.PID, v.Inferred)
			continue
		}
		line(what, "%s (pid %d): anon %s, file %s, shmem %s%s", v.Comm, v.PID,
			humanPtr(v.AnonRSS), humanPtr(v.FileRSS), humanPtr(v.ShmemRSSBytes), adj(v.OOMScoreAdj))
	}
	for _, e := range r.AlreadyExiting {
		line("not killed", "%s (pid %d): already exiting, the kernel skipped it", e.Comm, e.PID)
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
	if r.TaskMemcg != "" {
		line("in", "%s", r.TaskMemcg)
	}
	if r.OOMGroup != "" {
		line("oom.group", "%s (%d processes killed together)", r.OOMGroup, len(r.Victims))
	}
	switch {
	case r.Memory != nil:
		whose := r.OOMMemcg
		if whose == "" {
			whose = "(cgroup not printed)"
		}
		line("limit", "%s of %s (failcnt %d)", human(r.Memory.LimitBytes), whose, r.Memory.Failcnt)
	case r.OOMMemcg != "":
		line("limit", "of %s", r.OOMMemcg)
	case r.Kind != report.KindMemcg && r.Kind != report.KindUnknown:
		line("limit", "node memory (%s)", strings.TrimPrefix(r.Constraint, "CONSTRAINT_"))
	}
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
		line("trigger", "%s%s asked for order-%d %s", t.Comm, pid, t.Order, strings.Join(t.GFPFlags, "|"))
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

func writeTop(w io.Writer, r *report.Report) {
	if r.Derived == nil || len(r.Derived.TopTasks) == 0 {
		if r.TasksTotal == 0 && !r.Partial {
			fmt.Fprintf(w, "  tasks\tnot printed (vm.oom_dump_tasks=0?)\n")
		}
		return
	}
	fmt.Fprintf(w, "  top\t%d of %d tasks by rss:\n", len(r.Derived.TopTasks), r.TasksTotal)
	for _, t := range r.Derived.TopTasks {
		share := ""
		if t.Share != nil {
			share = fmt.Sprintf("%3.0f%%", *t.Share*100)
		}
		mark := ""
		if t.Victim {
			mark = "  <- killed"
		}
		fmt.Fprintf(w, "  \t  %7d  %9s  %s  %s%s\n", t.PID, human(t.RSSBytes), share, escapeText(t.Name), mark)
	}
}

func composition(d *report.Derived) string {
	var parts []string
	add := func(name string, v *uint64) {
		if v == nil {
			return
		}
		s := name + " " + human(*v)
		if *d.UsageBytes > 0 {
			s += fmt.Sprintf(" (%.0f%%)", float64(*v)*100/float64(*d.UsageBytes))
		}
		parts = append(parts, s)
	}
	add("anon", d.AnonBytes)
	add("page cache", d.PageCacheBytes)
	add("shmem", d.ShmemBytes)
	add("kernel", d.KernelBytes)
	add("swap", d.SwapBytes)
	s := human(*d.UsageBytes)
	if d.LimitBytes != nil {
		s += " of " + human(*d.LimitBytes)
	}
	if len(parts) > 0 {
		s += ": " + strings.Join(parts, ", ")
	}
	return s
}

func when(r *report.Report) string {
	var parts []string
	if r.First.Wall != nil {
		parts = append(parts, r.First.Wall.UTC().Format(time.RFC3339))
	}
	if r.First.MonoUsec != nil {
		parts = append(parts, fmt.Sprintf("[%d.%06d]", *r.First.MonoUsec/1e6, *r.First.MonoUsec%1e6))
	}
	if r.Host != "" {
		parts = append(parts, "on "+r.Host)
	}
	return strings.Join(parts, " ")
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

// human formats bytes with binary units, as kubectl shows memory.
func human(b uint64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%dB", b)
	}
	div, exp := uint64(unit), 0
	for n := b / unit; n >= unit && exp < 5; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", float64(b)/float64(div), "KMGTPE"[exp])
}

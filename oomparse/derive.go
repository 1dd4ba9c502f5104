package oomparse

import (
	"sort"

	"github.com/oomscope/oomscope/report"
)

// topTasks is how many of the largest tasks Derived.TopTasks lists.
const topTasks = 5

// derive computes the Derived facts of a finished report from its own
// numbers. Nothing is computed from a number the report does not hold.
func derive(r *report.Report) *report.Derived {
	d := &report.Derived{}
	d.PageSizeBytes, d.PageSizeSource = pageSize(r)
	switch {
	case r.Memory != nil:
		deriveMemcg(r, d)
	case r.MemInfo != nil:
		deriveGlobal(r, d)
	}
	deriveVictim(r, d)
	deriveTop(r, d)
	return d
}

// pageSize finds the page size from a victim's Killed line (kB) and its
// task-table row (pages); 4096 is assumed when the report cannot tell.
func pageSize(r *report.Report) (uint64, string) {
	for i, v := range r.Victims {
		for _, t := range r.Tasks {
			if !isVictimRow(r, i, t) || t.TotalVMPages == 0 || v.TotalVM == nil || *v.TotalVM == 0 {
				continue
			}
			ps := *v.TotalVM / t.TotalVMPages
			for _, known := range []uint64{4096, 16384, 65536} {
				if ps == known && *v.TotalVM%t.TotalVMPages == 0 {
					return ps, "victim"
				}
			}
		}
	}
	return 4096, "assumed"
}

// isVictimRow reports whether task-table row t is the process of victim i.
// The Killed line names the thread that still had an mm, which can differ
// from the row's pid; the oom-kill: summary names the chosen process, which
// is the first victim.
func isVictimRow(r *report.Report, i int, t report.Task) bool {
	v := r.Victims[i]
	if t.PID == v.PID || (t.TGID != 0 && t.TGID == v.PID) {
		return true
	}
	if i != 0 || r.SummaryVictim == nil {
		return false
	}
	sp := r.SummaryVictim.PID
	return t.PID == sp || (t.TGID != 0 && t.TGID == sp)
}

func sub(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}

// deriveMemcg fills the composition of a memory cgroup OOM from the stats
// of the limiting cgroup.
func deriveMemcg(r *report.Report, d *report.Derived) {
	usage := r.Memory.UsageBytes
	d.UsageBytes, d.LimitBytes = new(usage), new(r.Memory.LimitBytes)
	if r.Kmem != nil {
		d.KernelBytes = new(r.Kmem.UsageBytes)
	}
	if r.Swap != nil {
		d.SwapBytes = new(r.Swap.UsageBytes)
	}
	st, source := limitingStats(r)
	if st == nil {
		return
	}
	d.Source = source
	get := func(keys ...string) *uint64 {
		for _, k := range keys {
			if v, ok := st[k]; ok {
				return new(v)
			}
		}
		return nil
	}
	switch source {
	case "memcg-v2-stats":
		d.AnonBytes, d.PageCacheBytes, d.ShmemBytes = get("anon"), get("file"), get("shmem")
		d.ActiveFileBytes, d.InactiveFileBytes = get("active_file"), get("inactive_file")
		if k := get("kernel"); k != nil {
			d.KernelBytes = k
		} else {
			var sum uint64
			for _, k := range []string{"kernel_stack", "pagetables", "sec_pagetables", "percpu", "sock", "vmalloc", "slab"} {
				sum += st[k]
			}
			d.KernelBytes = new(sum)
		}
	case "memcg-v1-stats":
		d.AnonBytes, d.PageCacheBytes, d.ShmemBytes = get("total_rss"), get("total_cache"), get("total_shmem")
		d.ActiveFileBytes, d.InactiveFileBytes = get("total_active_file"), get("total_inactive_file")
		if d.SwapBytes == nil {
			d.SwapBytes = get("total_swap")
		}
	case "memcg-v1-inline":
		d.AnonBytes, d.PageCacheBytes, d.ShmemBytes = get("rss"), get("cache"), get("shmem")
		d.ActiveFileBytes, d.InactiveFileBytes = get("active_file"), get("inactive_file")
		if d.SwapBytes == nil {
			d.SwapBytes = get("swap")
		}
	}
	if d.InactiveFileBytes != nil {
		d.WorkingSetBytes = new(sub(usage, *d.InactiveFileBytes))
	}
	if d.PageCacheBytes != nil {
		d.DockerUsageBytes = new(sub(usage, *d.PageCacheBytes))
	}
}

// limitingStats returns the stats that describe the limiting cgroup as a
// whole: the v2 keys (hierarchical), the v1 total_* keys, or the sum of the
// per-cgroup one-line stats of kernels <= 5.2 (each is local to its cgroup).
func limitingStats(r *report.Report) (map[string]uint64, string) {
	if len(r.MemcgStats) == 0 {
		return nil, ""
	}
	first := r.MemcgStats[0]
	if first.Format == "v1-inline" {
		sum := make(map[string]uint64)
		for _, ms := range r.MemcgStats {
			if ms.Format != "v1-inline" {
				continue
			}
			for k, v := range ms.Stats {
				sum[k] += v
			}
		}
		return sum, "memcg-v1-inline"
	}
	if _, ok := first.Stats["total_rss"]; ok {
		return first.Stats, "memcg-v1-stats"
	}
	if _, ok := first.Stats["anon"]; ok {
		return first.Stats, "memcg-v2-stats"
	}
	return nil, ""
}

// deriveGlobal fills the composition of a node-wide OOM from the Mem-Info
// page counters.
func deriveGlobal(r *report.Report, d *report.Derived) {
	m := r.MemInfo
	ps := d.PageSizeBytes
	pages := func(keys ...string) *uint64 {
		var sum uint64
		found := false
		for _, k := range keys {
			if v, ok := m.Pages[k]; ok {
				sum += v
				found = true
			}
		}
		if !found {
			return nil
		}
		return new(mulSat(sum, ps))
	}
	if (r.Constraint == "CONSTRAINT_CPUSET" || r.Constraint == "CONSTRAINT_MEMORY_POLICY") && deriveNodes(m, d) {
		return
	}
	d.Source = "meminfo"
	d.AnonBytes = pages("active_anon", "inactive_anon")
	d.PageCacheBytes = pages("active_file", "inactive_file")
	d.ActiveFileBytes, d.InactiveFileBytes = pages("active_file"), pages("inactive_file")
	d.ShmemBytes = pages("shmem")
	d.KernelBytes = pages("slab_reclaimable", "slab_unreclaimable", "pagetables", "sec_pagetables")
	d.FreeBytes = pages("free")
	if ram, ok := m.Totals["ram_pages"]; ok {
		total := mulSat(ram, ps)
		d.LimitBytes = new(total)
		if d.FreeBytes != nil {
			d.UsageBytes = new(sub(total, *d.FreeBytes))
		}
	}
	if t, ok := m.Totals["total_swap_bytes"]; ok {
		d.SwapBytes = new(sub(t, m.Totals["free_swap_bytes"]))
	}
}

// deriveNodes fills the composition of a cpuset or mempolicy OOM from the
// per-node and per-zone lines: the kernel prints them only for the nodes
// the allocation was allowed to use, while the page counters and totals
// cover the whole machine. It reports false when the lines are missing.
func deriveNodes(m *report.MemInfo, d *report.Derived) bool {
	if len(m.Nodes) == 0 || len(m.Zones) == 0 {
		return false
	}
	var managed, free uint64
	for _, z := range m.Zones {
		mz, ok1 := z.Bytes["managed"]
		fz, ok2 := z.Bytes["free"]
		if !ok1 || !ok2 {
			return false
		}
		managed += mz
		free += fz
	}
	sum := func(keys ...string) *uint64 {
		var s uint64
		found := false
		for _, n := range m.Nodes {
			for _, k := range keys {
				if v, ok := n.Bytes[k]; ok {
					s += v
					found = true
				}
			}
		}
		if !found {
			return nil
		}
		return new(s)
	}
	d.Source = "meminfo-nodes"
	d.LimitBytes, d.FreeBytes, d.UsageBytes = new(managed), new(free), new(sub(managed, free))
	d.AnonBytes = sum("active_anon", "inactive_anon")
	d.PageCacheBytes = sum("active_file", "inactive_file")
	d.ActiveFileBytes, d.InactiveFileBytes = sum("active_file"), sum("inactive_file")
	d.ShmemBytes = sum("shmem")
	if t, ok := m.Totals["total_swap_bytes"]; ok {
		d.SwapBytes = new(sub(t, m.Totals["free_swap_bytes"]))
	}
	return true
}

// deriveVictim computes the first victim's rss and its share of usage,
// when its Killed line's sizes were read.
func deriveVictim(r *report.Report, d *report.Derived) {
	for _, v := range r.Victims {
		if v.Exiting {
			continue
		}
		if v.AnonRSS == nil || v.FileRSS == nil {
			return
		}
		rss := *v.AnonRSS + *v.FileRSS
		if v.ShmemRSSBytes != nil {
			rss += *v.ShmemRSSBytes
		}
		d.VictimRSSBytes = new(rss)
		if d.UsageBytes != nil && *d.UsageBytes > 0 {
			d.VictimShare = new(round3(float64(rss) / float64(*d.UsageBytes)))
		}
		return
	}
}

// deriveTop lists the largest tasks of the task table.
func deriveTop(r *report.Report, d *report.Derived) {
	if len(r.Tasks) == 0 {
		return
	}
	idx := make([]int, len(r.Tasks))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return r.Tasks[idx[a]].RSSPages > r.Tasks[idx[b]].RSSPages })
	for _, i := range idx[:min(topTasks, len(idx))] {
		t := r.Tasks[i]
		tt := report.TopTask{PID: t.PID, Name: t.Name, RSSBytes: mulSat(t.RSSPages, d.PageSizeBytes)}
		for vi := range r.Victims {
			if isVictimRow(r, vi, t) {
				tt.Victim = true
				break
			}
		}
		if d.UsageBytes != nil && *d.UsageBytes > 0 {
			tt.Share = new(round3(float64(tt.RSSBytes) / float64(*d.UsageBytes)))
		}
		d.TopTasks = append(d.TopTasks, tt)
	}
}

func round3(f float64) float64 {
	return float64(int64(f*1000+0.5)) / 1000
}

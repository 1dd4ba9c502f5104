package oomparse

import (
	"strconv"
	"strings"

	"github.com/oomscope/oomscope/report"
)

// This file parses the node-wide memory dump that a global (or cpuset,
// mempolicy) OOM prints after "Mem-Info:" (show_mem / show_free_areas). The
// numbers that matter are kept structured; the free-area (buddy), hugepage
// and per-cpu lines are kept raw in MemInfo.Other.

var zoneNames = map[string]bool{"DMA": true, "DMA32": true, "Normal": true, "HighMem": true, "Movable": true, "Device": true}

// addMemInfoLine folds one line of the dump into m. It reports false for a
// line that is not part of a memory dump.
func addMemInfoLine(m *report.MemInfo, line string) bool {
	switch {
	case line == "":
		return false
	case strings.HasSuffix(line, " per-cpu:"): // "Node 0 DMA per-cpu:" (<= 3.x), before the Node case
		m.Other = append(m.Other, clipBytes(line, maxOtherBytes))
		return true
	case strings.HasPrefix(line, "lowmem_reserve[]:"):
		return addLowmemReserve(m, line)
	case strings.HasPrefix(line, "Node "):
		return addNodeLine(m, line)
	case line[0] >= '0' && line[0] <= '9':
		return addTotal(m, line)
	case strings.HasPrefix(line, "Free swap "), strings.HasPrefix(line, "Total swap "):
		return addSwap(m, line)
	case strings.HasPrefix(line, "Swap cache stats:"), strings.HasPrefix(line, "CPU ") && strings.Contains(line, " hi:"):
		m.Other = append(m.Other, clipBytes(line, maxOtherBytes))
		return true
	}
	if f := strings.Fields(line); len(f) > 1 && zoneNames[f[0]] {
		return addZone(m, nil, f)
	}
	if f := strings.Fields(line); len(f) > 0 && zoneNames[strings.TrimSuffix(f[0], ":")] && strings.Contains(line, "kB") {
		m.Other = append(m.Other, clipBytes(line, maxOtherBytes)) // non-NUMA free-area line
		return true
	}
	return addPages(m, line)
}

// isMemInfoLine reports whether addMemInfoLine would take line.
func isMemInfoLine(line string) bool {
	var m report.MemInfo
	return addMemInfoLine(&m, line)
}

// addPages parses the "active_anon:N inactive_anon:N ..." summary (pages).
func addPages(m *report.MemInfo, line string) bool {
	f := strings.Fields(line)
	if len(f) == 0 {
		return false
	}
	for _, kv := range f {
		k, v, ok := strings.Cut(kv, ":")
		if !ok || k == "" {
			return false
		}
		if _, err := strconv.ParseUint(v, 10, 64); err != nil {
			return false
		}
	}
	if m.Pages == nil {
		m.Pages = make(map[string]uint64)
	}
	for _, kv := range f {
		k, v, _ := strings.Cut(kv, ":")
		m.Pages[k], _ = strconv.ParseUint(v, 10, 64)
	}
	return true
}

// addNodeLine handles every line that starts with "Node N ".
func addNodeLine(m *report.MemInfo, line string) bool {
	f := strings.Fields(line)
	if len(f) < 3 {
		return false
	}
	node, err := strconv.Atoi(f[1])
	if err != nil {
		return false
	}
	switch {
	case zoneNames[f[2]] && len(f) > 3 && strings.Contains(f[3], ":"):
		return addZone(m, &node, f[2:])
	case strings.Contains(f[2], ":") && !strings.Contains(f[2], "="):
		if zoneNames[strings.TrimSuffix(f[2], ":")] {
			m.Other = append(m.Other, clipBytes(line, maxOtherBytes)) // free areas: "Node 0 DMA: 1*4kB (U) ... = 15908kB"
			return true
		}
		n := report.NodeInfo{Node: node, Bytes: kbPairs(f[2:])}
		if i := strings.Index(line, "all_unreclaimable? "); i >= 0 {
			b := strings.HasPrefix(line[i+len("all_unreclaimable? "):], "yes")
			n.AllUnreclaimable = &b
		}
		m.Nodes = append(m.Nodes, n)
		return true
	default:
		m.Other = append(m.Other, clipBytes(line, maxOtherBytes)) // hugepages, per-cpu
		return true
	}
}

// addZone parses "ZONE free:NkB min:NkB ..." (f starts at the zone name).
func addZone(m *report.MemInfo, node *int, f []string) bool {
	if len(f) < 2 || !strings.HasPrefix(f[1], "free:") {
		return false
	}
	m.Zones = append(m.Zones, report.ZoneInfo{Node: node, Zone: f[0], Bytes: kbPairs(f[1:])})
	return true
}

// kbPairs parses "key:NkB" tokens (also "key: NkB" and "NKB") into bytes;
// tokens without a kB unit are skipped.
func kbPairs(f []string) map[string]uint64 {
	out := make(map[string]uint64, len(f))
	for i := 0; i < len(f); i++ {
		k, v, ok := strings.Cut(f[i], ":")
		if !ok || k == "" {
			continue
		}
		if v == "" && i+1 < len(f) { // "shmem_thp: 0kB" (4.x–5.x)
			v = f[i+1]
			i++
		}
		if !strings.HasSuffix(v, "kB") && !strings.HasSuffix(v, "KB") {
			continue
		}
		if b, ok := parseKB(v); ok {
			out[k] = b
		}
	}
	return out
}

func addLowmemReserve(m *report.MemInfo, line string) bool {
	var vals []uint64
	for _, s := range strings.Fields(strings.TrimPrefix(line, "lowmem_reserve[]:")) {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return false
		}
		vals = append(vals, n)
	}
	if len(m.Zones) > 0 && m.Zones[len(m.Zones)-1].LowmemReserve == nil {
		m.Zones[len(m.Zones)-1].LowmemReserve = vals
	}
	return true
}

// totals maps the tail lines "N <suffix>" to their key.
var totals = []struct{ suffix, key string }{
	{" total pagecache pages", "pagecache_pages"},
	{" pages in swap cache", "swap_cache_pages"},
	{" pages RAM", "ram_pages"},
	{" pages HighMem/MovableOnly", "highmem_pages"},
	{" pages HighMem", "highmem_pages"},
	{" pages reserved", "reserved_pages"},
	{" pages cma reserved", "cma_reserved_pages"},
	{" pages hwpoisoned", "hwpoisoned_pages"},
	{" pages shared", "shared_pages"},
	{" pages non-shared", "non_shared_pages"},
	{" pages in pagetable cache", "pagetable_cache_pages"},
}

func addTotal(m *report.MemInfo, line string) bool {
	num, _, _ := strings.Cut(line, " ")
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil {
		return false
	}
	rest := line[len(num):]
	for _, t := range totals {
		if rest == t.suffix {
			setTotal(m, t.key, n)
			return true
		}
	}
	return false
}

func addSwap(m *report.MemInfo, line string) bool {
	k, v, ok := strings.Cut(line, "=")
	if !ok {
		return false
	}
	b, ok := parseKB(v)
	if !ok {
		return false
	}
	if strings.HasPrefix(k, "Free") {
		setTotal(m, "free_swap_bytes", b)
	} else {
		setTotal(m, "total_swap_bytes", b)
	}
	return true
}

func setTotal(m *report.MemInfo, k string, v uint64) {
	if m.Totals == nil {
		m.Totals = make(map[string]uint64)
	}
	m.Totals[k] = v
}

// parseSlabRow is "%-17s %10luKB %10luKB" of "Unreclaimable slab info:".
func parseSlabRow(line string) (report.SlabCache, bool) {
	f := strings.Fields(line)
	if len(f) < 3 {
		return report.SlabCache{}, false
	}
	used, ok1 := parseKB(f[len(f)-2])
	total, ok2 := parseKB(f[len(f)-1])
	if !ok1 || !ok2 || !strings.HasSuffix(f[len(f)-1], "KB") {
		return report.SlabCache{}, false
	}
	return report.SlabCache{Name: strings.Join(f[:len(f)-2], " "), UsedBytes: used, TotalBytes: total}, true
}

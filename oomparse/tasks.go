package oomparse

import (
	"sort"
	"strconv"
	"strings"

	"github.com/oomscope/oomscope/report"
)

// Task-table columns, mapped from the header line by name (never by
// position): kernels print "[ pid ]   uid  tgid total_vm rss nr_ptes
// swapents oom_score_adj name" (3.x), "... nr_ptes nr_pmds ..." (4.0–4.14),
// "... pgtables_bytes ..." (4.15+), "... rss rss_anon rss_file rss_shmem
// pgtables_bytes ..." (6.8+), and 2.6.32 "... rss cpu oom_adj name".
type column uint8

const (
	colUnknown column = iota
	colUID
	colTGID
	colTotalVM
	colRSS
	colRSSAnon
	colRSSFile
	colRSSShmem
	colPgtables
	colNrPtes
	colNrPmds
	colSwapEnts
	colOOMScoreAdj
)

var columnNames = map[string]column{
	"uid": colUID, "tgid": colTGID, "total_vm": colTotalVM, "rss": colRSS,
	"rss_anon": colRSSAnon, "rss_file": colRSSFile, "rss_shmem": colRSSShmem,
	"pgtables_bytes": colPgtables, "nr_ptes": colNrPtes, "nr_pmds": colNrPmds,
	"swapents": colSwapEnts, "oom_score_adj": colOOMScoreAdj, "oom_adj": colOOMScoreAdj,
}

// parseTaskHeader parses "[  pid  ]   uid  tgid ... name" into the columns
// between the pid and the name.
func parseTaskHeader(line string) (names []string, cols []column, ok bool) {
	if !strings.HasPrefix(line, "[") {
		return nil, nil, false
	}
	end := strings.IndexByte(line, ']')
	if end < 0 || strings.TrimSpace(line[1:end]) != "pid" {
		return nil, nil, false
	}
	f := strings.Fields(line[end+1:])
	if len(f) < 3 || f[len(f)-1] != "name" {
		return nil, nil, false
	}
	names = append([]string{"pid"}, f...)
	for _, n := range f[:len(f)-1] {
		cols = append(cols, columnNames[n])
	}
	return names, cols, true
}

// isTaskRow is a cheap test for "[ 1234] ...".
func isTaskRow(line string) bool {
	if len(line) < 3 || line[0] != '[' {
		return false
	}
	end := strings.IndexByte(line, ']')
	if end < 2 {
		return false
	}
	_, err := strconv.Atoi(strings.TrimSpace(line[1:end]))
	return err == nil
}

// parseTaskRow parses a row using the header's columns; the name is what
// follows the last numeric column (after one space) and may hold spaces.
// newU64 makes the optional columns' pointers.
func parseTaskRow(line string, cols []column, newU64 func(uint64) *uint64) (report.Task, bool) {
	end := strings.IndexByte(line, ']')
	if end < 0 {
		return report.Task{}, false
	}
	var t report.Task
	var ok bool
	if t.PID, ok = atoiOK(line[1:end]); !ok {
		return report.Task{}, false
	}
	rest := line[end+1:]
	for _, c := range cols {
		rest = strings.TrimLeft(rest, " ")
		tok, tail, _ := strings.Cut(rest, " ")
		rest = tail
		n, err := strconv.ParseInt(tok, 10, 64)
		if err != nil {
			return report.Task{}, false
		}
		setColumn(&t, c, n, newU64)
	}
	if len(rest) > 0 && rest[0] == ' ' {
		// The kernel prints exactly one space before the name; more means
		// the columns did not line up with the header.
		rest = strings.TrimLeft(rest, " ")
	}
	t.Name = clipBytes(rest, maxNameBytes)
	return t, true
}

func setColumn(t *report.Task, c column, n int64, newU64 func(uint64) *uint64) {
	u := uint64(n)
	if n < 0 {
		u = 0
	}
	switch c {
	case colUID:
		t.UID = int(n)
	case colTGID:
		t.TGID = int(n)
	case colTotalVM:
		t.TotalVMPages = u
	case colRSS:
		t.RSSPages = u
	case colRSSAnon:
		t.RSSAnonPages = newU64(u)
	case colRSSFile:
		t.RSSFilePages = newU64(u)
	case colRSSShmem:
		t.RSSShmemPages = newU64(u)
	case colPgtables:
		t.PgtablesBytes = newU64(u)
	case colNrPtes:
		t.NrPtes = newU64(u)
	case colNrPmds:
		t.NrPmds = newU64(u)
	case colSwapEnts:
		t.SwapEnts = u
	case colOOMScoreAdj:
		t.OOMScoreAdj = int(n)
	}
}

// taskTable keeps at most max rows: once full, a new row replaces the kept
// row with the smallest rss if it is larger. Counts stay exact.
type taskTable struct {
	max  int
	rows taskHeap
	seq  int
}

type indexedTask struct {
	report.Task
	idx int
}

// taskHeap is a min-heap by (rss, newest first): its root is the row to
// drop when a larger one arrives. It is written out rather than built on
// container/heap, whose interface boxes every row in an allocation.
type taskHeap []indexedTask

func (h taskHeap) less(i, j int) bool {
	if h[i].RSSPages != h[j].RSSPages {
		return h[i].RSSPages < h[j].RSSPages
	}
	return h[i].idx > h[j].idx
}

func (h taskHeap) up(j int) {
	for j > 0 {
		i := (j - 1) / 2
		if !h.less(j, i) {
			break
		}
		h[i], h[j] = h[j], h[i]
		j = i
	}
}

func (h taskHeap) down(i int) {
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		j := l
		if r := l + 1; r < n && h.less(r, l) {
			j = r
		}
		if !h.less(j, i) {
			return
		}
		h[i], h[j] = h[j], h[i]
		i = j
	}
}

// add records a row and reports whether one row was dropped.
func (tt *taskTable) add(t report.Task) (dropped bool) {
	it := indexedTask{Task: t, idx: tt.seq}
	tt.seq++
	if len(tt.rows) < tt.max {
		tt.rows = append(tt.rows, it)
		tt.rows.up(len(tt.rows) - 1)
		return false
	}
	if tt.rows[0].RSSPages < t.RSSPages {
		tt.rows[0] = it
		tt.rows.down(0)
	}
	return true
}

// tasks returns the kept rows in table order.
func (tt *taskTable) tasks() []report.Task {
	if len(tt.rows) == 0 {
		return nil
	}
	sorted := make([]indexedTask, len(tt.rows))
	copy(sorted, tt.rows)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].idx < sorted[j].idx })
	out := make([]report.Task, len(sorted))
	for i := range sorted {
		out[i] = sorted[i].Task
	}
	return out
}

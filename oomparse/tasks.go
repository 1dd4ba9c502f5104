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

// era is the task-table column set of a kernel era, between the pid and
// the name (see parseTaskHeader), for rows printed without their header.
type era struct {
	name string
	cols []column
	// maybe26: the padding is lost and the era unknown; a row whose sixth
	// column may be a 2.6 oom_adj rather than a swapents is counted, not
	// kept (see ambiguousRow).
	maybe26 bool
}

var (
	era26  = &era{"2.6 (cpu oom_adj oom_score_adj)", []column{colUID, colTGID, colTotalVM, colRSS, colUnknown, colUnknown, colOOMScoreAdj}, false}
	era310 = &era{"3.x (nr_ptes)", []column{colUID, colTGID, colTotalVM, colRSS, colNrPtes, colSwapEnts, colOOMScoreAdj}, false}
	era40  = &era{"4.0-4.14 (nr_ptes nr_pmds)", []column{colUID, colTGID, colTotalVM, colRSS, colNrPtes, colNrPmds, colSwapEnts, colOOMScoreAdj}, false}
	eraMSM = &era{"4.x vendor (nr_ptes nr_pmds nr_puds)", []column{colUID, colTGID, colTotalVM, colRSS, colNrPtes, colNrPmds, colUnknown, colSwapEnts, colOOMScoreAdj}, false}
	era415 = &era{"4.15-6.7 (pgtables_bytes)", []column{colUID, colTGID, colTotalVM, colRSS, colPgtables, colSwapEnts, colOOMScoreAdj}, false}
	era68  = &era{"6.8+ (rss_anon rss_file rss_shmem pgtables_bytes)", []column{colUID, colTGID, colTotalVM, colRSS, colRSSAnon, colRSSFile, colRSSShmem, colPgtables, colSwapEnts, colOOMScoreAdj}, false}
	// 3.x or 4.15+: nr_ptes or pgtables_bytes cannot be told, left out.
	eraAfter3 = &era{"3.x or 4.15+ (nr_ptes or pgtables_bytes left out)", []column{colUID, colTGID, colTotalVM, colRSS, colUnknown, colSwapEnts, colOOMScoreAdj}, false}
	// 7 columns without the kernel's padding: any of 2.6, 3.x, 4.15+.
	eraAny7 = &era{"unknown, 7 columns (the fifth left out)", []column{colUID, colTGID, colTotalVM, colRSS, colUnknown, colSwapEnts, colOOMScoreAdj}, true}
)

// rowShape is what the layout of a task row says about its columns.
type rowShape struct {
	nums    []int64 // the integer tokens after the pid bracket, up to 11
	gapAt   int     // index in nums of the token after the one gap of >= 9 spaces (oom_score_adj), -1 if none
	spaced  bool    // the row keeps the kernel's padding (runs of spaces)
	wideBox bool    // the pid bracket is "%7d" wide with padding: 4.19+
	named   bool    // a name follows the last integer token
}

// shapeOfRow reads the layout of "[  pid] n n n ... name".
func shapeOfRow(line string) (rowShape, bool) {
	end := strings.IndexByte(line, ']')
	if end < 2 || line[0] != '[' {
		return rowShape{}, false
	}
	inner := line[1:end]
	sh := rowShape{gapAt: -1, wideBox: len(inner) >= 7 && inner[0] == ' '}
	rest := line[end+1:]
	gaps := 0
	for len(sh.nums) < 11 {
		sp := len(rest) - len(strings.TrimLeft(rest, " "))
		tok, tail, found := strings.Cut(rest[sp:], " ")
		n, err := strconv.ParseInt(tok, 10, 64)
		if err != nil {
			break
		}
		if sp >= 2 {
			sh.spaced = true
		}
		if sp >= 9 {
			gaps++
			sh.gapAt = len(sh.nums)
		}
		sh.nums = append(sh.nums, n)
		rest = tail
		if !found {
			rest = ""
			break
		}
	}
	if gaps != 1 {
		sh.gapAt = -1
	}
	sh.named = strings.TrimLeft(rest, " ") != ""
	return sh, true
}

// inferEra chooses the column set of a row printed without its table
// header: from the kernel version when the report has one and it fits
// the row, else from the row's layout. The nine spaces the kernel prints
// before oom_score_adj (every era from 3.10) count the columns before it;
// the pid bracket's width and the values tell 3.x from 4.15+. It returns
// nil when the row fits no era.
func inferEra(line, version string) *era {
	sh, ok := shapeOfRow(line)
	if !ok {
		return nil
	}
	n := len(sh.nums)
	if !sh.named { // the name is all digits: the last token is the name
		n--
	}
	if e := versionEra(version); e != nil && len(e.cols) == n {
		return e
	}
	if sh.gapAt >= 0 {
		for _, e := range []*era{era68, eraMSM, era40} {
			if sh.gapAt == len(e.cols)-1 && n == len(e.cols) {
				return e
			}
		}
		if sh.gapAt == 6 && n == 7 {
			return era7(sh)
		}
		return nil
	}
	switch n {
	case len(era68.cols):
		return era68
	case len(eraMSM.cols):
		return eraMSM
	case len(era40.cols):
		return era40
	case 7:
		if sh.spaced || sh.nums[5] < 0 {
			// The kernel's padding is there but not its nine spaces
			// before oom_score_adj (2.6's "%3u %3d %5d"), or the sixth
			// column is negative: an oom_adj, not a swapents.
			return era26
		}
		return eraAny7
	}
	return nil
}

// era7 tells the 3.x column set (nr_ptes) from the 4.15+ one
// (pgtables_bytes, a multiple of the page size): by the pid bracket's
// width (4.19+ prints "%7d") or by the value.
func era7(sh rowShape) *era {
	if sh.wideBox {
		return era415
	}
	switch v := sh.nums[4]; {
	case v >= 4096 && v%4096 == 0:
		return era415
	case v > 0 && v < 4096:
		return era310
	}
	return eraAfter3
}

// versionEra is the column set of a kernel release ("6.1.0-13-amd64"),
// nil when the release cannot be read.
func versionEra(version string) *era {
	maj, rest, ok := strings.Cut(version, ".")
	if !ok {
		return nil
	}
	minor, _, _ := strings.Cut(rest, ".")
	if i := strings.IndexFunc(minor, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		minor = minor[:i]
	}
	a, err1 := strconv.Atoi(maj)
	b, err2 := strconv.Atoi(minor)
	if err1 != nil || err2 != nil {
		return nil
	}
	switch v := a*1000 + b; {
	case v < 3000:
		return era26
	case v < 4000:
		return era310
	case v < 4015:
		return era40
	case v < 6008:
		return era415
	}
	return era68
}

// ambiguousRow reports whether a row read with eraAny7 may be a 2.6 row,
// whose sixth column is oom_adj (-17..15) rather than swapents.
func ambiguousRow(line string) bool {
	sh, ok := shapeOfRow(line)
	return !ok || len(sh.nums) < 6 || sh.nums[5] != 0 && sh.nums[5] <= 15
}

// isTaskRowShape is a task row whose layout fits a kernel era: the test
// for a row that opens a report (a grep kept the rows, not the header).
func isTaskRowShape(line string) bool { return inferEra(line, "") != nil }

// rowName is what follows the integer columns of a task row: its name
// (when the name does not start with a number).
func rowName(line string) string {
	end := strings.IndexByte(line, ']')
	if end < 0 {
		return ""
	}
	rest := line[end+1:]
	for i := 0; i < 11; i++ {
		t := strings.TrimLeft(rest, " ")
		tok, tail, found := strings.Cut(t, " ")
		if _, err := strconv.ParseInt(tok, 10, 64); err != nil || !found {
			if err != nil {
				return t
			}
			return ""
		}
		rest = tail
	}
	return strings.TrimLeft(rest, " ")
}

// taskHeaders are the task table headers of every era, after the pid.
var taskHeaders = [][]string{
	strings.Fields("uid tgid total_vm rss nr_ptes swapents oom_score_adj name"),
	strings.Fields("uid tgid total_vm rss nr_ptes nr_pmds swapents oom_score_adj name"),
	strings.Fields("uid tgid total_vm rss nr_ptes nr_pmds nr_puds swapents oom_score_adj name"),
	strings.Fields("uid tgid total_vm rss pgtables_bytes swapents oom_score_adj name"),
	strings.Fields("uid tgid total_vm rss rss_anon rss_file rss_shmem pgtables_bytes swapents oom_score_adj name"),
	strings.Fields("uid tgid total_vm rss cpu oom_adj oom_score_adj name"),
}

// completeTaskHeader completes a task table header cut short (by a
// terminal, "cut -c"): its columns are fixed per kernel era, so the
// columns read tell the era when they are only one era's.
func completeTaskHeader(line string) (string, bool) {
	end := strings.IndexByte(line, ']')
	if !strings.HasPrefix(line, "[") || end < 0 || strings.TrimSpace(line[1:end]) != "pid" {
		return "", false
	}
	got := strings.Fields(line[end+1:])
	if len(got) == 0 {
		return "", false
	}
	var match []string
	for _, h := range taskHeaders {
		if len(got) > len(h) {
			continue
		}
		ok := true
		for i, g := range got {
			if g != h[i] && !(i == len(got)-1 && strings.HasPrefix(h[i], g)) {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		if match != nil && strings.Join(match, " ") != strings.Join(h, " ") {
			return "", false // two eras fit
		}
		match = h
	}
	if match == nil {
		return "", false
	}
	return line[:end+1] + " " + strings.Join(match, " "), true
}

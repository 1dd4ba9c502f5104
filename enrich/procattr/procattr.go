// Package procattr attributes a killed process to its cgroup from
// /proc/<pid>/cgroup, read the moment the kernel's "Killed process" line
// arrives: the task is dead but not yet reaped (its memory is being torn
// down), so its proc entry usually still exists. This gives a cgroup — and
// so a pod — to the kills whose report the kernel rate-limited down to the
// victim line alone, which in an OOM storm is most of them.
//
// A reading is only kept when it is certain to be the victim's: the
// process's comm must be the one the kernel printed, and the path must be
// absolute in the reader's view (a cgroup namespace shows other
// namespaces' cgroups as "/../…", which cannot be compared with the
// kernel's paths) and not the root, where an exiting task is moved. A kill
// attributed wrongly is worse than an anonymous one.
//
// Measured (docs/attribution.md): on kernel 6.18 with cgroup v1 a SIGKILLed
// victim has usually passed cgroup_exit by the time its line is read, so
// this source attributes few kills there; it never attributes one wrongly.
package procattr

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/oomscope/oomscope/report"
)

// maxEntries bounds the readings kept: a storm of kills whose reports are
// slow to complete must not grow memory without bound.
const maxEntries = 4096

// Reading is a victim's cgroup as /proc showed it.
type Reading struct {
	PID  int
	Comm string
	// Cgroup is the memory cgroup path (v1: the memory controller's line;
	// v2: the unified line), as the kernel prints task_memcg=.
	Cgroup string
	// Source says how Cgroup was learnt: report.AttributionProc for this
	// package's readings, report.AttributionCounters for
	// enrich/counterattr's.
	Source string
}

// Tracker reads and keeps the cgroups of victims. It is safe for
// concurrent use; a nil *Tracker does nothing.
type Tracker struct {
	procRoot string
	mu       sync.Mutex
	byPID    map[int]Reading
	order    []int
	// seen holds the last kill lines looked at: the counter tracker
	// passes each line on sooner than the daemon's reader reaches it, and
	// a second reading of the same victim cannot do better than the first
	// (a task only moves on towards its exit).
	seen [seenLines]string
	next int
}

// seenLines is how many kill lines a Tracker remembers having read for.
const seenLines = 32

// New returns a Tracker reading the procfs mounted at procRoot.
func New(procRoot string) *Tracker {
	return &Tracker{procRoot: procRoot, byPID: make(map[int]Reading)}
}

// Observe looks at one kernel log line; when it is a "Killed process N
// (comm)" line it reads the victim's cgroup at once. It is cheap for every
// other line (one substring search).
func (t *Tracker) Observe(text string) {
	if t == nil {
		return
	}
	i := strings.Index(text, "Killed process ")
	if i < 0 {
		return
	}
	rest := text[i+len("Killed process "):]
	j := 0
	for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	if j == 0 || j > 10 || !strings.HasPrefix(rest[j:], " (") {
		return
	}
	pid, err := strconv.Atoi(rest[:j])
	if err != nil || pid <= 0 {
		return
	}
	named := rest[j+2:] // "comm) total-vm:…"; comm may itself hold ")"
	if !t.firstLook(text[i:]) {
		return
	}
	r, ok := t.read(pid, named)
	if !ok {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, seen := t.byPID[pid]; !seen {
		t.order = append(t.order, pid)
	}
	t.byPID[pid] = r
	for len(t.order) > maxEntries {
		delete(t.byPID, t.order[0])
		t.order = t.order[1:]
	}
}

// firstLook reports whether line was not looked at recently, and
// remembers it.
func (t *Tracker) firstLook(line string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, l := range t.seen {
		if l == line {
			return false
		}
	}
	t.seen[t.next] = strings.Clone(line) // not pinning the record's block
	t.next = (t.next + 1) % seenLines
	return true
}

// read reads pid's comm and memory cgroup; ok only when the comm is the
// one the kernel printed (named starts with it and a ")") and the path is
// usable.
func (t *Tracker) read(pid int, named string) (Reading, bool) {
	dir := filepath.Join(t.procRoot, strconv.Itoa(pid))
	comm, err := os.ReadFile(filepath.Join(dir, "comm"))
	if err != nil {
		return Reading{}, false
	}
	c := string(bytes.TrimSuffix(comm, []byte("\n")))
	if c == "" || !strings.HasPrefix(named, c+")") {
		return Reading{}, false // another process now, or a name we cannot match
	}
	cg, err := os.ReadFile(filepath.Join(dir, "cgroup"))
	if err != nil {
		return Reading{}, false
	}
	path, ok := MemoryCgroup(string(cg))
	if !ok {
		return Reading{}, false
	}
	return Reading{PID: pid, Comm: c, Cgroup: path, Source: report.AttributionProc}, true
}

// MemoryCgroup returns the memory cgroup of a /proc/<pid>/cgroup file: the
// cgroup v1 memory controller's line, else the v2 unified line. A path
// outside the reader's cgroup namespace ("/..") is not usable.
func MemoryCgroup(file string) (string, bool) {
	var unified string
	for _, line := range strings.Split(file, "\n") {
		id, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		ctrls, path, ok := strings.Cut(rest, ":")
		if !ok {
			continue
		}
		_ = id
		if ctrls == "" {
			unified = path
			continue
		}
		for _, c := range strings.Split(ctrls, ",") {
			if c == "memory" {
				return usable(path)
			}
		}
	}
	if unified != "" {
		return usable(unified)
	}
	return "", false
}

func usable(p string) (string, bool) {
	// "/" is where a task is moved once it passed cgroup_exit: a killed
	// process read a moment too late shows the root, not its cgroup
	// (seen on every partial kill of the live burst test on 6.18, cgroup
	// v1). The root can therefore never be taken as an attribution.
	if !strings.HasPrefix(p, "/") || p == "/" || p == "/.." || strings.HasPrefix(p, "/../") {
		return "", false
	}
	return p, true
}

// Peek returns the reading of pid when it was taken for a process of that
// comm, and keeps it.
func (t *Tracker) Peek(pid int, comm string) (Reading, bool) {
	if t == nil {
		return Reading{}, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	r, ok := t.byPID[pid]
	return r, ok && r.Comm == comm
}

// Victim returns the reading of pid when it was taken for a process of
// that comm (the report's victim), and forgets it.
func (t *Tracker) Victim(pid int, comm string) (Reading, bool) {
	if t == nil {
		return Reading{}, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	r, ok := t.byPID[pid]
	if !ok || r.Comm != comm {
		return Reading{}, false
	}
	delete(t.byPID, pid)
	return r, true
}

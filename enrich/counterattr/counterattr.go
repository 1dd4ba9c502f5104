// Package counterattr attributes the kills whose report the kernel
// rate-limited down to its "Killed process N (comm)" line — no cgroup, so
// no pod — from the kernel's own per-cgroup OOM-kill counters.
//
// The kernel prints an OOM report's header (with the oom-kill: summary
// naming the victim's cgroup) at most 10 times per 5 s, but it counts every
// kill, in /proc/vmstat (oom_kill, all kills of the node) and in the
// victim's memory cgroup (cgroup v1 memory.oom_control oom_kill, v2
// memory.events.local oom_kill, both counting that cgroup's own kills). A
// Tracker reads the counters of the cgroups recent full reports named (and
// the children of the cgroups under OOM, and the victims' siblings) each
// time a kill line arrives, and attributes the kills between two readings
// when the counters say where they went and nothing else can explain the
// rise.
//
// Why that is exact, not a guess (docs/attribution.md has the long form):
// every kill, memcg or global, runs under one mutex (oom_lock), and
// __oom_kill_process raises the counters before it prints the kill's line.
// So kills are counted and printed in the same order, one at a time. The
// Tracker reads the kernel log through a descriptor of its own, up to its
// end, then the counters, then watches the log for a moment (Settle): a
// kill printed meanwhile makes the reading ambiguous and it is not used as
// a boundary. Between two usable readings, the kill lines read are exactly
// the kills counted — checked against the node's counter, which also
// catches a kill counted but not yet printed at a reading and lines lost
// in a ring-buffer overrun — and the rises of the watched cgroups,
// less the kills whose report named them, say where the others went. They
// are attributed only when all of them are accounted for by the rise of
// exactly one cgroup; otherwise (two cgroups rose, a kill went to a cgroup
// not watched, a cgroup was removed and made again, a memory.oom.group
// kill) none is. A kill attributed wrongly is worse than an anonymous one.
package counterattr

import (
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/oomscope/oomscope/enrich/cgroupfs"
	"github.com/oomscope/oomscope/enrich/procattr"
	"github.com/oomscope/oomscope/kmsg"
	"github.com/oomscope/oomscope/oomparse"
	"github.com/oomscope/oomscope/report"
)

// Log is the Tracker's own view of the kernel log.
type Log interface {
	// Read appends to dst the records written since the last call, without
	// blocking. lost is true when records were overwritten before they
	// could be read.
	Read(dst []kmsg.Record) (recs []kmsg.Record, lost bool, err error)
	// Wait blocks until a record can be read or d has passed.
	Wait(d time.Duration) error
	// Close releases the log.
	Close() error
}

// Counters reads the kernel's OOM-kill counters.
type Counters interface {
	// Node is /proc/vmstat oom_kill: every kill of the node.
	Node() (uint64, error)
	// Cgroup is the cgroup's own counter (see [cgroupfs.FS.OOMKills]).
	Cgroup(path string) (cgroupfs.OOMKillCounter, error)
	// Children lists the cgroups directly below path, at most max.
	Children(path string, max int) ([]string, error)
}

// Config configures a Tracker. Log and Counters are required.
type Config struct {
	Log      Log
	Counters Counters
	Logger   zerolog.Logger
	// Settle is how long the log is watched after the counters were read
	// for a kill printed meanwhile; zero means DefaultSettle.
	Settle time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Registerer, if set, gets oomscope_counter_attribution_batches_total.
	Registerer prometheus.Registerer
	// Proc, if set, reads /proc for every kill line the Tracker reads
	// (often before the daemon's reader reaches it, so sooner), and its
	// readings count as known kills in a batch: two kills in two cgroups
	// between readings are told apart when /proc knows one of them. A
	// /proc reading the counters contradict (its cgroup did not rise)
	// makes the batch inconsistent: nothing in it is attributed.
	Proc *procattr.Tracker
}

const (
	// DefaultSettle bounds the time between the kernel raising the
	// counters and printing the kill's line that a reading tolerates; the
	// two are a few statements apart under oom_lock.
	DefaultSettle = 2 * time.Millisecond
	// maxCandidates bounds the cgroups whose counters are read at each
	// kill; the least recently named is dropped first.
	maxCandidates = 32
	// maxChildren bounds the children of one cgroup under OOM watched.
	maxChildren = 16
	// candidateTTL is how long a cgroup stays watched after a report last
	// named it.
	candidateTTL = 10 * time.Minute
	// maxBatch and maxSpan bound a stretch of kills that could not be
	// closed by a usable reading: past them it is given up, unattributed.
	maxBatch = 512
	maxSpan  = 2 * time.Minute
	// maxResults bounds the attributions waiting for their report.
	maxResults = 4096
)

// Batch outcomes, the label of oomscope_counter_attribution_batches_total.
const (
	OutcomeAttributed = "attributed"   // the batch's unattributed kills were given a cgroup
	OutcomeAmbiguous  = "ambiguous"    // several cgroups rose, or a kill went to a cgroup not watched
	OutcomeMismatch   = "mismatch"     // the node counted other kills than the lines read (overrun, a kill counted before a reading and printed after it)
	OutcomeGroup      = "oom_group"    // a memory.oom.group kill: members no summary describes
	OutcomeNothing    = "nothing"      // every kill of the batch had its report's cgroup
	OutcomeLost       = "lost"         // the log lost records: the stretch since the last reading is given up
	OutcomeGivenUp    = "given_up"     // the stretch grew past its bounds without a usable reading
	OutcomeInconsist  = "inconsistent" // a counter fell, or a report's kill is missing from its cgroup's rise
)

type kill struct {
	pid  int
	comm string
	// known is the victim's cgroup from the report's summary ("" if the
	// kernel rate-limited it away).
	known string
	// member: killed because of memory.oom.group, described by no summary.
	member bool
}

type reading struct {
	node uint64
	cg   map[string]cgroupfs.OOMKillCounter
	at   time.Time
}

// Tracker attributes rate-limited kills from the counters. It is safe for
// concurrent use; a nil *Tracker does nothing.
type Tracker struct {
	cfg     Config
	mu      sync.Mutex
	left    *reading // the last usable reading: the batch starts after it
	batch   []kill
	summary *oomparse.SummaryLine // the last summary, until its kill line
	group   bool                  // inside a memory.oom.group kill burst
	// lostSince: records were lost while settling.
	lostSince bool
	cands     map[string]time.Time // watched cgroups → when last named
	got       map[int]procattr.Reading
	order     []int
	recs      []kmsg.Record
	batches   *prometheus.CounterVec
}

// New returns a Tracker. The log should be positioned at its end: kills
// printed before are not its business.
func New(cfg Config) (*Tracker, error) {
	if cfg.Log == nil || cfg.Counters == nil {
		return nil, errors.New("counterattr: a Log and Counters are required")
	}
	if cfg.Settle < 0 {
		return nil, fmt.Errorf("counterattr: negative settle time %v", cfg.Settle)
	}
	if cfg.Settle == 0 {
		cfg.Settle = DefaultSettle
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	t := &Tracker{cfg: cfg, cands: make(map[string]time.Time), got: make(map[int]procattr.Reading)}
	t.batches = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "oomscope_counter_attribution_batches_total",
		Help: "Stretches of kills between two readings of the kernel's OOM-kill counters, by outcome (attributed, ambiguous, mismatch, oom_group, nothing, lost, given_up, inconsistent).",
	}, []string{"outcome"})
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(t.batches); err != nil {
			return nil, fmt.Errorf("counterattr: registering metrics: %w", err)
		}
	}
	return t, nil
}

// Close closes the Tracker's log.
func (t *Tracker) Close() error {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.cfg.Log.Close()
}

// Observe looks at one record of the daemon's kernel log; a kernel
// "Killed process" line makes the Tracker read the counters at once. It
// is cheap for every other record.
func (t *Tracker) Observe(rec kmsg.Record) {
	if t == nil || rec.Facility != 0 || !strings.Contains(rec.Text, "Killed process ") {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.step()
}

// Victim returns the cgroup the counters gave to the kill of pid, when the
// kernel printed that name for it, and forgets it.
func (t *Tracker) Victim(pid int, comm string) (procattr.Reading, bool) {
	if t == nil {
		return procattr.Reading{}, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	r, ok := t.got[pid]
	if !ok || r.Comm != comm {
		return procattr.Reading{}, false
	}
	delete(t.got, pid)
	return r, true
}

// step reads the log to its end, then the counters, and closes the batch
// when the reading is usable.
func (t *Tracker) step() {
	if t.scan() {
		t.giveUp(OutcomeLost)
	}
	if t.left != nil && len(t.batch) == 0 {
		return // no kill since the last reading (the line was read before)
	}
	r, err := t.read()
	if err != nil {
		t.cfg.Logger.Debug().Err(err).Msg("reading OOM-kill counters")
		return // not a boundary: the batch goes on to the next reading
	}
	n := len(t.batch)
	settled := t.settle()
	if t.lostSince {
		t.giveUp(OutcomeLost)
		return
	}
	if !settled {
		// A kill was printed while or just after the counters were read:
		// whether they count it is unknown, so this reading closes
		// nothing; the stretch goes on to the next one.
		return
	}
	if t.left == nil {
		t.left, t.batch = r, t.batch[:0]
		return
	}
	switch t.resolve(t.left, r, t.batch[:n]) {
	case merge:
		if len(t.batch) > maxBatch || r.at.Sub(t.left.at) > maxSpan {
			t.count(OutcomeGivenUp)
			t.left, t.batch = r, t.batch[:0]
		}
	default:
		t.left, t.batch = r, t.batch[:0]
	}
}

type decision int

const (
	advance decision = iota // the batch is done with (attributed or not)
	merge                   // wait for the next reading: the batch is not complete
)

// resolve attributes the batch of kills between the readings l and r.
func (t *Tracker) resolve(l, r *reading, kills []kill) decision {
	if r.node < l.node {
		t.count(OutcomeInconsist)
		return advance
	}
	counted := r.node - l.node
	if lines := uint64(len(kills)); lines != counted {
		// Fewer lines than kills: a kill counted at r whose line is not
		// printed yet (it will be in the next batch), or lines lost. More
		// lines: a kill counted at l was printed after it. Either way the
		// lines of this batch are not the kills it counted.
		t.count(OutcomeMismatch)
		t.cfg.Logger.Debug().Uint64("counted", counted).Uint64("lines", lines).Msg("OOM-kill counters and kill lines disagree")
		if lines < counted {
			return merge
		}
		return advance
	}
	var pending []int
	for i, k := range kills {
		if k.member {
			t.count(OutcomeGroup)
			return advance
		}
		if k.known == "" {
			if r, ok := t.cfg.Proc.Peek(k.pid, k.comm); ok {
				kills[i].known = r.Cgroup // /proc's: counted, not attributed here
				continue
			}
			pending = append(pending, i)
		}
	}
	if len(pending) == 0 {
		t.count(OutcomeNothing)
		return advance
	}
	rise := make(map[string]int64, len(r.cg))
	for p, now := range r.cg {
		was, ok := l.cg[p]
		if !ok || was.Inode != now.Inode || !now.Local || !was.Local {
			continue // not read at both ends, made again, or counting descendants
		}
		if now.Kills < was.Kills {
			t.count(OutcomeInconsist)
			return advance
		}
		rise[p] = int64(now.Kills - was.Kills)
	}
	for _, k := range kills {
		if _, ok := rise[k.known]; ok && k.known != "" {
			rise[k.known]--
		}
	}
	var sum int64
	var to string
	rising := 0
	for p, n := range rise {
		if n < 0 {
			t.count(OutcomeInconsist)
			return advance
		}
		if n > 0 {
			sum += n
			rising++
			to = p
		}
	}
	if rising != 1 || sum != int64(len(pending)) {
		t.count(OutcomeAmbiguous)
		ev := t.cfg.Logger.Debug().Int("unattributed", len(pending)).Int("cgroups_risen", rising).Int64("rise", sum)
		ev.Msg("OOM-kill counters cannot attribute these kills")
		return advance
	}
	for _, i := range pending {
		k := kills[i]
		t.keep(procattr.Reading{PID: k.pid, Comm: k.comm, Cgroup: to, Source: report.AttributionCounters})
	}
	t.count(OutcomeAttributed)
	return advance
}

func (t *Tracker) keep(r procattr.Reading) {
	if _, seen := t.got[r.PID]; !seen {
		t.order = append(t.order, r.PID)
	}
	t.got[r.PID] = r
	for len(t.order) > maxResults {
		delete(t.got, t.order[0])
		t.order = t.order[1:]
	}
}

func (t *Tracker) count(outcome string) { t.batches.WithLabelValues(outcome).Inc() }

// giveUp drops the stretch since the last reading: its kills stay
// unattributed.
func (t *Tracker) giveUp(outcome string) {
	t.count(outcome)
	t.left, t.batch, t.lostSince = nil, t.batch[:0], false
}

// scan reads the log to its end and notes kills, summaries and watched
// cgroups. It reports whether records were lost.
func (t *Tracker) scan() (lost bool) {
	recs, lost, err := t.cfg.Log.Read(t.recs[:0])
	t.recs = recs[:0]
	if err != nil {
		t.cfg.Logger.Debug().Err(err).Msg("reading the kernel log for OOM-kill counters")
		lost = true // unknown what was missed
	}
	for _, rec := range recs {
		t.note(rec)
	}
	return lost
}

// note notes one record.
func (t *Tracker) note(rec kmsg.Record) {
	if rec.Facility != 0 {
		return // user space's: never a kill, and may be a forged one
	}
	text := rec.Text
	if k, ok := oomparse.ParseKillLine(text); ok {
		kl := kill{pid: k.PID, comm: k.Comm, member: t.group}
		if s := t.summary; s != nil && s.PID == k.PID && !t.group {
			kl.known = s.TaskMemcg
		}
		if kl.known == "" {
			t.cfg.Proc.Observe(text)
		}
		t.summary = nil
		t.batch = append(t.batch, kl)
		return
	}
	t.group = false
	if s, ok := oomparse.ParseSummaryLine(text); ok {
		t.summary = &s
		now := t.cfg.Now()
		if s.TaskMemcg != "" {
			t.watch(s.TaskMemcg, now)
		}
		// The cgroup under OOM and what is below it (a pod's containers
		// when the pod's limit was hit), and the victim's siblings (the
		// other containers of its pod): where the next kills of a storm
		// go when the kernel no longer names them.
		var dirs []string
		if s.OOMMemcg != "" && s.OOMMemcg != s.TaskMemcg {
			t.watch(s.OOMMemcg, now)
			dirs = append(dirs, s.OOMMemcg)
		}
		if parent := path.Dir(s.TaskMemcg); s.TaskMemcg != "" && parent != "/" && parent != "." && parent != s.OOMMemcg {
			dirs = append(dirs, parent)
		}
		for _, d := range dirs {
			kids, err := t.cfg.Counters.Children(d, maxChildren)
			if err != nil {
				t.cfg.Logger.Debug().Err(err).Msg("listing the cgroups below a cgroup under OOM")
			}
			for _, k := range kids {
				t.watch(k, now)
			}
		}
		return
	}
	if oomparse.IsGroupKillLine(text) {
		t.group = true
	}
}

func (t *Tracker) watch(p string, now time.Time) {
	t.cands[p] = now
	for p, at := range t.cands {
		if now.Sub(at) > candidateTTL {
			delete(t.cands, p)
		}
	}
	if len(t.cands) <= maxCandidates {
		return
	}
	type c struct {
		p  string
		at time.Time
	}
	all := make([]c, 0, len(t.cands))
	for p, at := range t.cands {
		all = append(all, c{p, at})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].at.Before(all[j].at) })
	for _, x := range all[:len(all)-maxCandidates] {
		delete(t.cands, x.p)
	}
}

// read reads the node's counter and the watched cgroups' counters.
func (t *Tracker) read() (*reading, error) {
	node, err := t.cfg.Counters.Node()
	if err != nil {
		return nil, err
	}
	r := &reading{node: node, cg: make(map[string]cgroupfs.OOMKillCounter, len(t.cands)), at: t.cfg.Now()}
	for p := range t.cands {
		c, err := t.cfg.Counters.Cgroup(p)
		if err != nil {
			if errors.Is(err, cgroupfs.ErrCgroupGone) {
				delete(t.cands, p)
			}
			continue // not read: not usable in the batches it bounds
		}
		r.cg[p] = c
	}
	return r, nil
}

// settle watches the log for Settle after a reading; false when a kill
// line was printed meanwhile.
func (t *Tracker) settle() bool {
	n := len(t.batch)
	deadline := t.cfg.Now().Add(t.cfg.Settle)
	for {
		if t.scan() {
			t.lostSince = true
		}
		if len(t.batch) > n {
			return false
		}
		left := deadline.Sub(t.cfg.Now())
		if left <= 0 {
			return true
		}
		if err := t.cfg.Log.Wait(left); err != nil {
			return false
		}
	}
}

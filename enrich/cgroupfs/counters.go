package cgroupfs

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs"

	"github.com/oomscope/oomscope/report"
)

// maxTrackedCgroups bounds the per-cgroup counter state; when full, the
// oldest entry is forgotten.
const maxTrackedCgroups = 4096

// KillCounters compares the kernel's OOM-kill counters with the reports
// parsed. Per cgroup it follows the victim cgroup's own counter (v1
// memory.oom_control, v2 memory.events.local): the kernel charges each
// kill to the victim's cgroup. Node-wide it follows /proc/vmstat oom_kill.
//
// The first live report of a cgroup (or of the node) reads the counter as
// the baseline. From then on the kills of every report are kept with when
// they happened, and every live report reads the counter again. A reading
// is judged once it is confirmGrace old — by then every kill it counted
// has had its report: its rise since the baseline, minus the kills
// reported that happened before it, is the missed kills (ring buffer
// overrun, rate-limited report, a victim counted without a Killed line).
// A kill counted while its own report is still being read (a report is
// published a few seconds after its kill, when the next kill may already
// be counted) is therefore never flagged. A missed kill is found on the
// first report of that cgroup (or node) at least confirmGrace after it.
//
// Reports read late (replayed from the ring buffer at start-up, or
// published after a backlog) are not compared, but their kills count when
// they happened after the baseline. A counter that went backwards (the
// cgroup was recreated) resets the baseline, and so does a memory.oom.group
// kill (the kernel counts its chosen victim twice and charges members to
// their own cgroups).
//
// KillCounters is safe for concurrent use.
type KillCounters struct {
	fs       *FS
	nodeKill *NodeKills
	missed   *prometheus.CounterVec
	now      func() time.Time // the clock (tests replace it)

	mu    sync.Mutex
	node  *tally
	cg    map[string]*tally
	order []string // insertion order of cg, for eviction
}

// confirmGrace is how long after the kernel counted a kill its report
// may still arrive: the parser publishes a report up to a few seconds
// after its last line (it waits for the oom_reaper line), and the daemon
// may be busy with the reports before it.
const confirmGrace = 15 * time.Second

// maxReadings bounds the history a tally keeps between confirmations.
const maxReadings = 256

// tally follows one kill counter against the reports.
type tally struct {
	base  uint64    // the counter at the baseline
	at    time.Time // when the baseline was read
	kills []kill    // kills reported since the baseline, by when they happened
	reads []reading // counter readings since the baseline
}

type kill struct {
	at time.Time
	n  uint64
}

type reading struct {
	at time.Time
	v  uint64
}

// observe updates t with a counter reading and a report's kills, and
// returns the kills now confirmed missed. A nil *t starts a baseline (for
// a live report). See [KillCounters] for the rules.
//
// A reading confirms when it is confirmGrace old: every kill it counted
// has had time to be reported. The missed kills are then the reading's
// rise since the baseline minus the kills reported that happened before
// it, and that reading becomes the new baseline.
func observe(t **tally, now, kills uint64, obs observation) uint64 {
	if *t == nil || obs.reset || now < (*t).base {
		if obs.live {
			*t = &tally{base: now, at: obs.readAt}
		}
		return 0
	}
	tl := *t
	if kills > 0 && obs.killedAt.After(tl.at) {
		tl.kills = append(tl.kills, kill{obs.killedAt, kills})
	}
	if !obs.live {
		return 0
	}
	tl.reads = append(tl.reads, reading{obs.readAt, now})
	if len(tl.reads) > maxReadings {
		tl.reads = tl.reads[1:]
	}
	idx := -1
	for i, r := range tl.reads {
		if !r.at.After(obs.readAt.Add(-confirmGrace)) {
			idx = i
		}
	}
	if idx < 0 {
		return 0
	}
	conf := tl.reads[idx]
	var reported uint64
	rest := tl.kills[:0]
	for _, k := range tl.kills {
		if k.at.After(conf.at) {
			rest = append(rest, k)
		} else {
			reported += k.n
		}
	}
	var missed uint64
	if conf.v >= tl.base && conf.v-tl.base > reported {
		missed = conf.v - tl.base - reported
	}
	tl.base, tl.at, tl.kills = conf.v, conf.at, rest
	tl.reads = append(tl.reads[:0], tl.reads[idx+1:]...)
	return missed
}

// observation is what a report tells the counters besides its kills.
type observation struct {
	live     bool      // compare (a report read as it happened)
	reset    bool      // start a new baseline (memory.oom.group)
	readAt   time.Time // when the counters were read
	killedAt time.Time // when the report's kill happened
}

// NewKillCounters returns counters reading below fs and procRoot. When reg
// is not nil the metric oomscope_missed_oom_kills_total{scope} is registered
// on it.
func NewKillCounters(fs *FS, procRoot string, reg prometheus.Registerer) (*KillCounters, error) {
	k := &KillCounters{
		fs:       fs,
		nodeKill: NewNodeKills(procRoot),
		cg:       make(map[string]*tally),
		now:      time.Now,
		missed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "oomscope",
			Name:      "missed_oom_kills_total",
			Help:      "OOM kills the kernel counted (per cgroup: memory.events/memory.oom_control oom_kill; node: /proc/vmstat oom_kill) that no parsed report showed.",
		}, []string{"scope"}),
	}
	// Both series exist from the start, at 0.
	k.missed.WithLabelValues("node")
	k.missed.WithLabelValues("cgroup")
	if reg != nil {
		if err := reg.Register(k.missed); err != nil {
			return nil, fmt.Errorf("register missed kills metric: %w", err)
		}
	}
	return k, nil
}

// reportedKills is the number of kills a report shows: its victims that
// were killed (not the ones already exiting).
func reportedKills(r *report.Report) uint64 {
	var n uint64
	for _, v := range r.Victims {
		if !v.Exiting {
			n++
		}
	}
	return n
}

// check compares the counters with report r and returns the missed kills
// found, and errors for counters it could not read. live is false for a
// report read long after its kill (see [KillCounters]).
func (k *KillCounters) Check(r *report.Report, victimCgroup string, live bool) ([]report.MissedKills, []error) {
	var (
		out  []report.MissedKills
		errs []error
	)
	kills := reportedKills(r)
	at := k.now()
	obs := observation{live: live, reset: r.OOMGroup != "", readAt: at, killedAt: at}
	if r.Last.Wall != nil {
		obs.killedAt = *r.Last.Wall
	}

	nodeVal, err := k.readVmstat()
	if err != nil {
		errs = append(errs, err)
	} else if n := k.observeNode(nodeVal, kills, obs); n > 0 {
		k.missed.WithLabelValues("node").Add(float64(n))
		out = append(out, report.MissedKills{
			Counter: "/proc/vmstat:oom_kill",
			Count:   n,
			Explanation: fmt.Sprintf("the kernel counted %d more OOM kill(s) on this node than the reports showed, and no report came for them since (lost kernel log records, rate-limited reports or victims that were already exiting).",
				n),
		})
	}

	// Per cgroup. Under memory.oom.group the members may sit in other
	// cgroups of the group: the report does not say how many kills this
	// cgroup's counter took, so it starts a new baseline.
	if victimCgroup != "" && k.fs != nil {
		name, v, err := k.fs.killCounter(victimCgroup)
		switch {
		case errors.Is(err, ErrCgroupGone):
			k.forget(victimCgroup)
		case err != nil:
			errs = append(errs, fmt.Errorf("read kill counter of %s: %w", victimCgroup, err))
		default:
			if n := k.observeCgroup(victimCgroup, v, kills, obs); n > 0 {
				k.missed.WithLabelValues("cgroup").Add(float64(n))
				out = append(out, report.MissedKills{
					Cgroup:  victimCgroup,
					Counter: name,
					Count:   n,
					Explanation: fmt.Sprintf("the kernel counted %d more OOM kill(s) in %s than the reports showed, and no report came for them since.",
						n, victimCgroup),
				})
			}
		}
	}
	return out, errs
}

func (k *KillCounters) readVmstat() (uint64, error) { return k.nodeKill.Read() }

func (k *KillCounters) observeNode(now, kills uint64, obs observation) uint64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return observe(&k.node, now, kills, obs)
}

func (k *KillCounters) observeCgroup(cg string, now, kills uint64, obs observation) uint64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	t, ok := k.cg[cg]
	n := observe(&t, now, kills, obs)
	if t == nil {
		return n
	}
	if !ok {
		if len(k.order) >= maxTrackedCgroups {
			delete(k.cg, k.order[0])
			k.order = k.order[1:]
		}
		k.order = append(k.order, cg)
	}
	k.cg[cg] = t
	return n
}

func (k *KillCounters) forget(cg string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.cg[cg]; !ok {
		return
	}
	delete(k.cg, cg)
	for i, c := range k.order {
		if c == cg {
			k.order = append(k.order[:i], k.order[i+1:]...)
			break
		}
	}
}

// NodeMemoryBytes is the node's memory capacity: MemTotal of the procfs
// mounted at procRoot, in bytes.
func NodeMemoryBytes(procRoot string) (uint64, error) {
	fs, err := procfs.NewFS(procRoot)
	if err != nil {
		return 0, fmt.Errorf("node memory: %w", err)
	}
	mi, err := fs.Meminfo()
	if err != nil {
		return 0, fmt.Errorf("node memory: %w", err)
	}
	if mi.MemTotalBytes == nil {
		return 0, fmt.Errorf("node memory: %s/meminfo has no MemTotal", procRoot)
	}
	return *mi.MemTotalBytes, nil
}

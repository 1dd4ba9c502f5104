package enrich

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oomscope/oomscope/oomparse"
)

// maxTrackedCgroups bounds the per-cgroup counter state; when full, the
// oldest entry is forgotten.
const maxTrackedCgroups = 4096

// killCounters compares the kernel's OOM-kill counters with the reports
// parsed. Per cgroup it follows the victim cgroup's own counter (v1
// memory.oom_control, v2 memory.events.local): the kernel charges each
// kill to the victim's cgroup. Node-wide it follows /proc/vmstat oom_kill.
//
// At each report it reads the counter and expects it to have moved by
// exactly the kills the report shows since the previous read; any excess is
// a missed kill (ring buffer overrun, rate-limited report, a victim that was
// already exiting and was counted without a Killed line). The first report
// of a cgroup only sets the baseline. A counter that went backwards (the
// cgroup was recreated, the node rebooted) resets the baseline. A kill that
// happens between a report and the counter read is counted one report early:
// it shows as missed on this report and is forgiven on its own.
//
// killCounters is safe for concurrent use.
type killCounters struct {
	fs       *cgroupFS
	procRoot string
	missed   *prometheus.CounterVec

	mu    sync.Mutex
	node  *uint64
	cg    map[string]uint64
	order []string // insertion order of cg, for eviction
}

// newKillCounters returns counters reading below fs and procRoot. When reg
// is not nil the metric oomscope_missed_oom_kills_total{scope} is registered
// on it.
func newKillCounters(fs *cgroupFS, procRoot string, reg prometheus.Registerer) (*killCounters, error) {
	k := &killCounters{
		fs:       fs,
		procRoot: procRoot,
		cg:       make(map[string]uint64),
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
func reportedKills(r *oomparse.Report) uint64 {
	var n uint64
	for _, v := range r.Victims {
		if !v.Exiting {
			n++
		}
	}
	return n
}

// check compares the counters with report r and returns the missed kills
// found, and errors for counters it could not read.
func (k *killCounters) check(r *oomparse.Report, victimCgroup string) ([]MissedKills, []error) {
	var (
		out  []MissedKills
		errs []error
	)
	kills := reportedKills(r)

	nodeVal, err := k.readVmstat()
	if err != nil {
		errs = append(errs, err)
	} else if n := k.observeNode(nodeVal, kills); n > 0 {
		k.missed.WithLabelValues("node").Add(float64(n))
		out = append(out, MissedKills{
			Counter: "/proc/vmstat:oom_kill",
			Count:   n,
			Explanation: fmt.Sprintf("the kernel counted %d more OOM kill(s) on this node than the reports parsed since the previous one showed (lost kernel log records, rate-limited reports or victims that were already exiting).",
				n),
		})
	}

	// Per cgroup. Under memory.oom.group the members may sit in other
	// cgroups of the group: the report does not say how many kills this
	// cgroup's counter took, so it only moves the baseline.
	if victimCgroup != "" && k.fs != nil {
		name, v, err := k.fs.killCounter(victimCgroup)
		switch {
		case errors.Is(err, ErrCgroupGone):
			k.forget(victimCgroup)
		case err != nil:
			errs = append(errs, fmt.Errorf("read kill counter of %s: %w", victimCgroup, err))
		default:
			if n := k.observeCgroup(victimCgroup, v, kills); n > 0 && r.OOMGroup == "" {
				k.missed.WithLabelValues("cgroup").Add(float64(n))
				out = append(out, MissedKills{
					Cgroup:  victimCgroup,
					Counter: name,
					Count:   n,
					Explanation: fmt.Sprintf("the kernel counted %d more OOM kill(s) in %s than the reports parsed since its previous one showed.",
						n, victimCgroup),
				})
			}
		}
	}
	return out, errs
}

func (k *killCounters) readVmstat() (uint64, error) {
	p := filepath.Join(k.procRoot, "vmstat")
	kv, err := readKVFile(p)
	if err != nil {
		return 0, fmt.Errorf("read node OOM kill counter: %w", err)
	}
	v, ok := kv["oom_kill"]
	if !ok {
		return 0, fmt.Errorf("read node OOM kill counter: %s has no oom_kill (kernel older than 4.13?)", p)
	}
	return v, nil
}

// missedSince is the kills counted beyond what the reports showed: now
// against the previous reading plus the kills just reported.
func missedSince(prev, now, kills uint64) uint64 {
	if now < prev || now-prev <= kills {
		return 0
	}
	return now - prev - kills
}

func (k *killCounters) observeNode(now, kills uint64) uint64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	var n uint64
	if k.node != nil {
		n = missedSince(*k.node, now, kills)
	}
	k.node = &now
	return n
}

func (k *killCounters) observeCgroup(cg string, now, kills uint64) uint64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	prev, ok := k.cg[cg]
	var n uint64
	if ok {
		n = missedSince(prev, now, kills)
	} else {
		if len(k.order) >= maxTrackedCgroups {
			delete(k.cg, k.order[0])
			k.order = k.order[1:]
		}
		k.order = append(k.order, cg)
	}
	k.cg[cg] = now
	return n
}

func (k *killCounters) forget(cg string) {
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

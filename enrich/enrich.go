package enrich

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/oomscope/oomscope/enrich/cgpath"
	"github.com/oomscope/oomscope/enrich/cgroupfs"
	"github.com/oomscope/oomscope/enrich/diagnose"
	"github.com/oomscope/oomscope/enrich/procattr"
	"github.com/oomscope/oomscope/report"
)

// Enrichment sources (see [Enrichment.Sources]).
const (
	SourceCgroupPath     = "cgroup-path"
	SourceKubernetesAPI  = "kubernetes-api"
	SourceCgroupSnapshot = "cgroup-snapshot"
	SourceKernelCounters = "kernel-counters"
	// SourceProc: the victim's cgroup was read from /proc/<pid>/cgroup
	// as its line arrived (a report rate-limited to its victim line).
	SourceProc = "proc"
	// SourceOOMKillCounters: the victim's cgroup was read from the
	// kernel's per-cgroup OOM-kill counters (enrich/counterattr).
	SourceOOMKillCounters = "oom-kill-counters"
)

// VictimCgroups gives the cgroup of a victim whose report lacks it, learnt
// as its line arrived: *procattr.Tracker (from /proc) and
// *counterattr.Tracker (from the kernel's OOM-kill counters) are two. The
// Reading's Source is the report's attribution.
type VictimCgroups interface {
	Victim(pid int, comm string) (procattr.Reading, bool)
}

// lookupRetryInterval is how often a pod lookup is retried within the
// lookup wait.
const lookupRetryInterval = 100 * time.Millisecond

// Enricher adds pod identity, a cgroup snapshot, missed-kill findings and a
// diagnosis to parsed reports. It is safe for concurrent use.
type Enricher struct {
	victims    []VictimCgroups
	lookup     PodLookup
	cgroupRoot string
	procRoot   string
	log        zerolog.Logger
	snapshot   bool
	liveWindow time.Duration
	lookupWait time.Duration
	counters   bool
	registerer prometheus.Registerer

	// fs is the memory cgroup reader; nil when no controller was found or
	// neither snapshots nor counters are enabled.
	fs *cgroupfs.FS
	// fsErr says why fs is nil.
	fsErr error
	// kills is nil unless WithKillCounters was given.
	kills *cgroupfs.KillCounters
	// nodeMemory is the node's MemTotal (live mode), 0 when unknown.
	nodeMemory uint64
}

// Option configures an [Enricher].
type Option func(*Enricher) error

// WithPodLookup resolves pods and containers through l (the Kubernetes
// API). Without it (or with nil) reports are enriched from the cgroup path
// alone.
func WithPodLookup(l PodLookup) Option {
	return func(e *Enricher) error { e.lookup = l; return nil }
}

// WithCgroupRoot sets where the host's cgroup filesystems are mounted
// (default [cgroupfs.DefaultCgroupRoot]; a DaemonSet mounts the host's at
// /host/sys/fs/cgroup).
func WithCgroupRoot(path string) Option {
	return func(e *Enricher) error {
		if path == "" {
			return errors.New("enrich: empty cgroup root")
		}
		e.cgroupRoot = path
		return nil
	}
}

// WithProcRoot sets where the host's procfs is mounted (default
// [cgroupfs.DefaultProcRoot]).
func WithProcRoot(path string) Option {
	return func(e *Enricher) error {
		if path == "" {
			return errors.New("enrich: empty proc root")
		}
		e.procRoot = path
		return nil
	}
}

// WithLogger sets the logger (default: disabled).
func WithLogger(l zerolog.Logger) Option {
	return func(e *Enricher) error { e.log = l; return nil }
}

// WithSnapshot enables reading the limiting cgroup right after the kill.
// Use it for live reports only: a saved log's cgroups are long gone or,
// worse, reused.
func WithSnapshot(on bool) Option {
	return func(e *Enricher) error { e.snapshot = on; return nil }
}

// WithLookupWait bounds how long Enrich keeps retrying the pod lookup for a
// pod or container the informer has not seen yet (default 0: one try).
func WithLookupWait(d time.Duration) Option {
	return func(e *Enricher) error {
		if d < 0 {
			return fmt.Errorf("enrich: negative lookup wait %v", d)
		}
		e.lookupWait = d
		return nil
	}
}

// WithKillCounters enables comparing the kernel's OOM-kill counters (per
// victim cgroup and /proc/vmstat) with the reports enriched, for live
// reports only. When reg is not nil, the counter
// oomscope_missed_oom_kills_total{scope="cgroup"|"node"} is registered on
// it.
func WithKillCounters(reg prometheus.Registerer) Option {
	return func(e *Enricher) error { e.counters, e.registerer = true, reg; return nil }
}

// WithVictimCgroups attributes a report that lacks the victim's cgroup
// (the kernel rate-limited it to its victim line) from v: the cgroup read
// from /proc when the line arrived (see [report.AttributionProc]), or from
// the kill counters. Given more than once, every source is asked; the
// first that knows wins, and when two know different cgroups neither is
// used (a wrong pod is worse than none).
func WithVictimCgroups(v VictimCgroups) Option {
	return func(e *Enricher) error {
		if v == nil {
			return errors.New("enrich: WithVictimCgroups(nil)")
		}
		e.victims = append(e.victims, v)
		return nil
	}
}

// sourceOf is the enrichment source of an attribution.
func sourceOf(attribution string) string {
	if attribution == report.AttributionCounters {
		return SourceOOMKillCounters
	}
	return SourceProc
}

// victimCgroup asks every source for the victim's cgroup (each forgets
// it). ok is false when none knows; conflict is set when two disagree.
func (e *Enricher) victimCgroup(pid int, comm string) (rd procattr.Reading, ok bool, conflict string) {
	for _, v := range e.victims {
		r, found := v.Victim(pid, comm)
		if !found {
			continue
		}
		switch {
		case !ok:
			rd, ok = r, true
		case r.Cgroup != rd.Cgroup:
			conflict = fmt.Sprintf("victim cgroup sources disagree: %s says %s, %s says %s", rd.Source, report.Escape(rd.Cgroup, 512), r.Source, report.Escape(r.Cgroup, 512))
		}
	}
	if conflict != "" {
		return procattr.Reading{}, false, conflict
	}
	return rd, ok, ""
}

// WithLiveWindow treats a report whose last line is older than d as read
// late (replayed from the ring buffer at start-up, or after a backlog): it
// gets no cgroup snapshot (its cgroup may be gone or reused) and is not
// compared with the kill counters (its kills still count). Zero (the
// default) treats every report as live.
func WithLiveWindow(d time.Duration) Option {
	return func(e *Enricher) error {
		if d < 0 {
			return fmt.Errorf("enrich: negative live window %v", d)
		}
		e.liveWindow = d
		return nil
	}
}

// isLive reports whether r is recent enough for a snapshot and a counter
// comparison.
func (e *Enricher) isLive(r *report.Report) bool {
	return e.liveWindow == 0 || r.Last.Wall == nil || time.Since(*r.Last.Wall) <= e.liveWindow
}

// New returns an Enricher. Errors come from invalid options and from
// registering metrics.
func New(opts ...Option) (*Enricher, error) {
	e := &Enricher{cgroupRoot: cgroupfs.DefaultCgroupRoot, procRoot: cgroupfs.DefaultProcRoot, log: zerolog.Nop()}
	for _, o := range opts {
		if err := o(e); err != nil {
			return nil, err
		}
	}
	if e.snapshot || e.counters {
		e.fs, e.fsErr = cgroupfs.Open(e.cgroupRoot)
		if e.fsErr != nil {
			e.log.Warn().Err(e.fsErr).Str("cgroup_root", e.cgroupRoot).Msg("cgroup snapshots and per-cgroup kill counters disabled")
			e.fs = nil
		}
		if kv, err := cgroupfs.NodeMemoryBytes(e.procRoot); err == nil {
			e.nodeMemory = kv
		} else {
			e.log.Debug().Err(err).Msg("node memory capacity unknown")
		}
	}
	if e.counters {
		k, err := cgroupfs.NewKillCounters(e.fs, e.procRoot, e.registerer)
		if err != nil {
			return nil, fmt.Errorf("enrich: %w", err)
		}
		e.kills = k
	}
	return e, nil
}

// Enrich enriches r. It never fails: what it cannot learn is listed in the
// result's Enrichment.Errors. r is referenced, not copied.
func (e *Enricher) Enrich(ctx context.Context, r *report.Report) *report.Enriched {
	out := &report.Enriched{Report: r, Enrichment: report.Enrichment{Sources: []string{SourceCgroupPath}}}
	if r == nil {
		out.Enrichment.Errors = append(out.Enrichment.Errors, "no report to enrich")
		return out
	}
	lim, vic := cgroupPaths(r)
	switch {
	case vic != "":
		out.Attribution = report.AttributionReport
		for _, v := range e.victims {
			for _, vi := range r.Victims {
				v.Victim(vi.PID, vi.Comm) // not needed: forget it
			}
		}
	case len(e.victims) > 0 && len(r.Victims) > 0:
		rd, ok, conflict := e.victimCgroup(r.Victims[0].PID, r.Victims[0].Comm)
		if conflict != "" {
			out.Enrichment.Errors = append(out.Enrichment.Errors, conflict)
			e.log.Warn().Str("id", r.ID).Msg(conflict)
		}
		if ok {
			vic = rd.Cgroup
			out.Attribution = rd.Source
			if out.Attribution == "" {
				out.Attribution = report.AttributionProc
			}
			out.Enrichment.Sources = append(out.Enrichment.Sources, sourceOf(out.Attribution))
		}
	}
	cg := &report.Cgroups{}
	if lim != "" {
		p := cgpath.Parse(lim)
		cg.Limiting = &p
	}
	if vic != "" {
		p := cgpath.Parse(vic)
		cg.Victim = &p
	}
	if cg.Limiting != nil || cg.Victim != nil {
		out.Cgroups = cg
	}
	fromPath(out)
	// The cgroup is read first: it may be removed any moment after the
	// kill, while the pod lookup may wait.
	live := e.isLive(r)
	if e.snapshot && live {
		e.takeSnapshot(out)
	}
	if e.kills != nil {
		victim := ""
		if out.Cgroups != nil && out.Cgroups.Victim != nil {
			victim = vic
		}
		missed, errs := e.kills.Check(r, victim, live)
		out.MissedKills = missed
		for _, err := range errs {
			out.Enrichment.Errors = append(out.Enrichment.Errors, err.Error())
		}
		if len(errs) == 0 || len(missed) > 0 {
			out.Enrichment.Sources = append(out.Enrichment.Sources, SourceKernelCounters)
		}
		for _, m := range missed {
			e.log.Warn().Str("cgroup", report.Escape(m.Cgroup, 512)).Uint64("count", m.Count).Str("report", r.ID).Msg("OOM kills without a report")
		}
	}
	if e.lookup != nil {
		e.lookupPod(ctx, out)
	}
	out.Diagnosis = diagnose.Diagnose(out, e.nodeMemory)
	return out
}

// cgroupPaths returns the limiting and victim cgroup paths of a report.
// Kernels up to 4.18 print "Task in <victim> killed as a result of limit
// of <limiting>" (parsed into the same fields); when the limiting cgroup
// is missing, the first "Memory cgroup stats for" block (the limiting
// cgroup, followed by its subtree on kernels up to 5.2) names it.
func cgroupPaths(r *report.Report) (limiting, victim string) {
	limiting, victim = r.OOMMemcg, r.TaskMemcg
	if r.Kind != report.KindMemcg && r.Kind != report.KindUnknown {
		// A global, cpuset or mempolicy OOM has no limiting cgroup; the
		// oom-kill summary's oom_memcg= is then the root or absent.
		limiting = ""
	} else if limiting == "" && len(r.MemcgStats) > 0 {
		limiting = r.MemcgStats[0].Path
	}
	return limiting, victim
}

// fromPath fills Pod and Container from the cgroup paths: the victim's
// when it is a pod's, else the limiting cgroup's.
func fromPath(out *report.Enriched) {
	if out.Cgroups == nil {
		return
	}
	src := out.Cgroups.Victim
	if src == nil || (src.PodUID == "" && src.Level != report.LevelContainer) {
		if l := out.Cgroups.Limiting; l != nil && l.PodUID != "" {
			src = l
		}
	}
	if src == nil {
		return
	}
	if src.PodUID != "" {
		out.Pod = &report.Pod{UID: src.PodUID, QoSClass: src.QoS}
	}
	if src.Level == report.LevelContainer && src.ContainerID != "" {
		out.Container = &report.Container{ID: src.ContainerID, Runtime: src.Runtime}
	}
}

// lookupPod asks the PodLookup, retrying within the lookup wait while a
// known pod or container is not found yet.
func (e *Enricher) lookupPod(ctx context.Context, out *report.Enriched) {
	uid, cid := "", ""
	if out.Pod != nil {
		uid = out.Pod.UID
	}
	if out.Container != nil {
		cid = out.Container.ID
	}
	if uid == "" && cid == "" {
		return
	}
	wait := e.lookupWait
	if uid == "" {
		// A container outside Kubernetes is the common case: don't wait.
		wait = 0
	}
	deadline := time.Now().Add(wait)
	var (
		pod *report.Pod
		ctr *report.Container
		err error
	)
	for {
		pod, ctr, err = e.lookup.Lookup(ctx, uid, cid)
		found := pod != nil && (cid == "" || ctr != nil)
		if found || err != nil || !time.Now().Before(deadline) {
			break
		}
		t := time.NewTimer(min(lookupRetryInterval, time.Until(deadline)))
		select {
		case <-ctx.Done():
			t.Stop()
			err = ctx.Err()
		case <-t.C:
		}
		if err != nil {
			break
		}
	}
	switch {
	case err != nil:
		out.Enrichment.Errors = append(out.Enrichment.Errors, fmt.Sprintf("Kubernetes pod lookup for pod %q container %q failed: %v.", uid, cid, err))
		e.log.Debug().Err(err).Str("pod_uid", uid).Str("container_id", cid).Msg("pod lookup failed")
	case pod == nil && uid == "":
		// Not a Kubernetes container.
	case pod == nil:
		out.Enrichment.Errors = append(out.Enrichment.Errors, fmt.Sprintf("Pod %s is not known to the Kubernetes API (waited %v).", uid, wait))
	}
	if pod != nil {
		mergePod(out, pod)
		out.Enrichment.Sources = append(out.Enrichment.Sources, SourceKubernetesAPI)
		if cid != "" && ctr == nil {
			out.Enrichment.Errors = append(out.Enrichment.Errors, fmt.Sprintf("Container %s is not in pod %s/%s's status (waited %v).", cid[:min(len(cid), 12)], pod.Namespace, pod.Name, wait))
		}
	}
	if ctr != nil {
		mergeContainer(out, ctr)
	}
}

// mergePod overlays the API's pod on the path's.
func mergePod(out *report.Enriched, p *report.Pod) {
	if out.Pod == nil {
		cp := *p
		out.Pod = &cp
		return
	}
	cp := *p
	if cp.UID == "" {
		cp.UID = out.Pod.UID
	}
	if cp.QoSClass == "" {
		cp.QoSClass = out.Pod.QoSClass
	}
	out.Pod = &cp
}

// mergeContainer overlays the API's container on the path's.
func mergeContainer(out *report.Enriched, c *report.Container) {
	cp := *c
	if out.Container != nil {
		if cp.ID == "" {
			cp.ID = out.Container.ID
		}
		if cp.Runtime == "" {
			cp.Runtime = out.Container.Runtime
		}
	}
	out.Container = &cp
}

func (e *Enricher) takeSnapshot(out *report.Enriched) {
	if out.Cgroups == nil || out.Cgroups.Limiting == nil {
		return
	}
	if e.fs == nil {
		out.Enrichment.Errors = append(out.Enrichment.Errors, fmt.Sprintf("No cgroup snapshot: %v.", e.fsErr))
		return
	}
	p := out.Cgroups.Limiting.Path
	s, err := e.fs.Snapshot(p)
	switch {
	case errors.Is(err, cgroupfs.ErrCgroupGone):
		out.Enrichment.Errors = append(out.Enrichment.Errors, fmt.Sprintf("No cgroup snapshot: the limiting cgroup %s no longer exists.", p))
	case err != nil:
		out.Enrichment.Errors = append(out.Enrichment.Errors, fmt.Sprintf("No cgroup snapshot of %s: %v.", p, err))
		e.log.Debug().Err(err).Str("cgroup", report.Escape(p, 512)).Msg("cgroup snapshot failed")
	default:
		out.Snapshot = s
		out.Enrichment.Sources = append(out.Enrichment.Sources, SourceCgroupSnapshot)
	}
}

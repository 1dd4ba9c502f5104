package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/oomscope/oomscope/bench/internal/wire"
	"github.com/oomscope/oomscope/internal/cgscratch"
	"github.com/oomscope/oomscope/report"
)

type phaseKind string

const (
	phaseSteady phaseKind = "steady"
	phaseStorm  phaseKind = "storm"
	// phaseSplit is the storm split across -split-containers containers
	// (each its own pod) killing at once.
	phaseSplit phaseKind = "split"
)

// The readers, in table order.
const (
	readerParser   = "oomscope live source + parser (oomreader)"
	readerRun      = "`oomscope run` (archive + embedded NATS), at the NATS subscriber"
	readerCAdvisor = "cAdvisor oomparser (cadvisorreader)"
)

// phaseResult is one phase of one run.
type phaseResult struct {
	run  int
	kind phaseKind
	// cgroups are the container cgroups the kills were in (one, or
	// -storm-containers in the storm).
	cgroups []string
	// kernel is its oom_kill counter; victimLines and headers what the
	// kernel printed: "Killed process" lines of the phase's allocators and
	// oom-kill: summaries naming the cgroups (one per report header).
	kernel      uint64
	victimLines int
	headers     int
	spawned     int
	killing     time.Duration // first allocator to last exit
	allocators  string
	readers     []*readerResult
	profile     string // oomreader's CPU profile, "" if none
	natsStored  uint64 // messages in the OOMSCOPE stream at the end
}

// readerResult is what one reader made of one phase.
type readerResult struct {
	name string
	// reported: distinct kills (victim pids) of the phase reported;
	// attributed: of those, the ones whose report carries the victim's
	// container cgroup; wrong: a cgroup that is not the victim's.
	reported, attributed, wrong int
	fields                      float64 // mean facts per reported kill (of wire.NumFields)
	lat                         []time.Duration
	cpuPhase, cpuLife           time.Duration
	idlePerSec                  time.Duration // CPU per second before the kills
	slices                      int64         // times its threads went on a CPU in the phase
	maxRSS                      int64
	records                     uint64 // kernel records read (oomreader)
	dups                        int    // kills reported more than once
	note                        string
}

// kill is one kill as a reader reported it.
type kill struct {
	pid     int
	cgroup  string
	fields  wire.Mask
	latency time.Duration
	hasLat  bool
}

// profileHz is oomreader's profiling rate: at most the kernel's tick
// rate (CONFIG_HZ, 250 on the project's machine), or samples are lost.
const profileHz = 200

// idleWindow is how long the readers' idle CPU is measured before the
// kills.
const idleWindow = 3 * time.Second

// runPhase runs one phase with fresh readers.
func (e *env) runPhase(ctx context.Context, run int, kind phaseKind) (res *phaseResult, err error) {
	log := e.log.With().Int("run", run).Str("phase", string(kind)).Logger()
	if err := e.watch.waitFreshRatelimit(ctx); err != nil {
		return nil, err
	}
	dir := filepath.Join(e.tmp, fmt.Sprintf("run%d-%s", run, kind))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	containers := 1
	if kind == phaseSplit {
		containers = e.cfg.splitContainers
	}
	res = &phaseResult{run: run, kind: kind}
	var cgs []*cgscratch.Cgroup
	for range containers {
		uid, id := cgscratch.NewPodUID(), cgscratch.NewContainerID()
		cg, err := e.h.Create(cgscratch.CgroupfsContainer(cgscratch.QoSBurstable, uid, id))
		if err != nil {
			return nil, err
		}
		if _, err := cg.SetLimit(uint64(e.cfg.limitMiB) << 20); err != nil {
			return nil, err
		}
		cgs = append(cgs, cg)
		res.cgroups = append(res.cgroups, cg.Path)
	}

	port, err := freePort()
	if err != nil {
		return nil, err
	}
	profile := ""
	if kind != phaseSteady && (!e.cfg.short || e.cfg.pprofDir != "") {
		profile = filepath.Join(e.keep, fmt.Sprintf("oomreader-run%d-%s.pprof", run, kind))
	}
	parserArgs := []string{}
	if e.h.Version() == cgscratch.V1 {
		// What `oomscope run` finds out for itself: no memory.oom.group
		// on a v1 memory controller.
		parserArgs = append(parserArgs, "-memory-cgroup-v1")
	}
	if profile != "" {
		parserArgs = append(parserArgs, "-cpuprofile", profile, "-profile-hz", strconv.Itoa(profileHz))
	}
	specs := []childSpec{
		{name: "oomreader", bin: e.bins.oomreader, args: parserArgs, wire: true},
		{name: "oomscope-run", bin: e.bins.oomscope, args: []string{
			"run", "--source", "/dev/kmsg", "--start", "end",
			"--state-dir", filepath.Join(dir, "state"),
			"--nats-listen", "127.0.0.1:" + strconv.Itoa(port),
			"--kubeconfig", "none", "--node-name", "stormbench", "--log-format", "json",
		}, readyText: "reading kernel log from its end"},
		{name: "cadvisorreader", bin: e.bins.cadvisor, wire: true},
	}
	var kids []*child
	defer func() {
		if err != nil {
			for _, c := range kids {
				c.kill()
			}
		}
	}()
	for _, s := range specs {
		s.env = e.cfg.childEnv
		c, err := startChild(dir, s)
		if err != nil {
			return nil, err
		}
		kids = append(kids, c)
	}
	for _, c := range kids {
		if err := c.waitReady(ctx, 60*time.Second); err != nil {
			return nil, err
		}
	}
	sub, err := subscribe(ctx, port)
	if err != nil {
		return nil, err
	}
	defer sub.close()
	// Start-up work (cAdvisor reads the whole ring buffer, oomscope run
	// starts JetStream) is not the phase's.
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(2 * time.Second):
	}
	// The idle cost: CPU per second with no kill.
	idle0 := make([]cpuSample, len(kids))
	for i, c := range kids {
		if idle0[i], err = c.cpuNow(); err != nil {
			return nil, err
		}
	}
	idleStart := time.Now()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(idleWindow):
	}
	idleDur := time.Since(idleStart)
	base := make([]cpuSample, len(kids))
	for i, c := range kids {
		if base[i], err = c.cpuNow(); err != nil {
			return nil, err
		}
	}

	var ks []*killer
	for _, cg := range cgs {
		ks = append(ks, newKiller(e.bins.alloc, cg, e.cfg.allocMiB))
	}
	log.Info().Strs("cgroups", res.cgroups).Msg("killing")
	start := time.Now()
	switch kind {
	case phaseSteady:
		err = ks[0].steady(ctx, e.cfg.steadyKills)
	case phaseStorm, phaseSplit:
		// Each container gets its share of the kills, at its share of
		// the rate, all at once.
		errs := make([]error, len(ks))
		var wg sync.WaitGroup
		for i, k := range ks {
			n := e.cfg.stormKills / len(ks)
			if i < e.cfg.stormKills%len(ks) {
				n++
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = k.storm(ctx, n, e.cfg.stormBatch, e.cfg.stormInterval*time.Duration(len(ks)), e.cfg.stormAlive, e.cfg.stormMax)
			}()
		}
		wg.Wait()
		err = errors.Join(errs...)
	}
	res.killing = time.Since(start)
	if err != nil {
		return nil, err
	}
	t := &truth{cgOf: map[int]string{}, cgroups: map[string]bool{}}
	var summaries []string
	for _, k := range ks {
		n, err := k.kernelKills()
		if err != nil {
			return nil, err
		}
		res.kernel += n
		for pid := range k.spawned() {
			t.cgOf[pid] = k.cg.Path
		}
		t.cgroups[k.cg.Path] = true
		summaries = append(summaries, k.summary())
	}
	res.allocators = strings.Join(summaries, "; ")
	res.spawned = len(t.cgOf)
	log.Info().Uint64("kernel_oom_kill", res.kernel).Str("allocators", res.allocators).Dur("took", res.killing.Round(time.Millisecond)).Msg("kills done; waiting for the reports")

	// Drain: until both oomscope readers have every kill, or the bound.
	deadline := time.Now().Add(e.cfg.drain)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		a := len(distinct(oomreaderKills(kids[0].reports(), t)))
		b := len(distinct(sub.kills(t, e.watch)))
		if uint64(a) >= res.kernel && uint64(b) >= res.kernel {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	time.Sleep(time.Second) // the slowest reader's last line
	end := make([]cpuSample, len(kids))
	peak := make([]int64, len(kids))
	for i, c := range kids {
		if end[i], err = c.cpuNow(); err != nil {
			return nil, err
		}
		if peak[i], err = c.peakRSS(); err != nil {
			return nil, err
		}
	}
	res.victimLines, res.headers = e.watch.counts(t.cgOf, res.cgroups)
	res.natsStored = sub.stored(ctx)
	sub.close()
	var stopErrs []error
	for _, c := range kids {
		stopErrs = append(stopErrs, c.stop(20*time.Second))
	}
	if err := errors.Join(stopErrs...); err != nil {
		return nil, err
	}
	if profile != "" {
		res.profile = profile
	}

	all := [][]kill{
		oomreaderKills(kids[0].reports(), t),
		sub.kills(t, e.watch),
		cadvisorKills(kids[2].reports(), t, e.watch),
	}
	names := []string{readerParser, readerRun, readerCAdvisor}
	for i, c := range kids {
		rr := score(names[i], all[i], t)
		rr.cpuPhase = end[i].cpu - base[i].cpu
		rr.slices = end[i].slices - base[i].slices
		rr.idlePerSec = time.Duration(float64(base[i].cpu-idle0[i].cpu) / idleDur.Seconds())
		rr.maxRSS = peak[i]
		if cpu, ok := c.cpuLife(); ok {
			rr.cpuLife = cpu
		}
		res.readers = append(res.readers, rr)
	}
	if st, ok := kids[0].stats(); ok {
		res.readers[0].records = st.Records
		if st.Lost > 0 {
			res.readers[0].note = fmt.Sprintf("%d kernel records lost", st.Lost)
		}
	}
	if n := uint64(len(sub.messages())); res.natsStored != n {
		res.readers[1].note = fmt.Sprintf("%d messages at the subscriber, %d in the stream", n, res.natsStored)
	}
	log.Info().Int("oomreader", res.readers[0].reported).Int("oomscope_run", res.readers[1].reported).
		Int("cadvisor", res.readers[2].reported).Uint64("kernel", res.kernel).Msg("phase done")
	return res, nil
}

// distinct keeps the first report of each pid.
func distinct(ks []kill) map[int]kill {
	m := map[int]kill{}
	for _, k := range ks {
		if _, ok := m[k.pid]; !ok {
			m[k.pid] = k
		}
	}
	return m
}

// truth is which cgroup each of the phase's allocators was in.
type truth struct {
	cgOf    map[int]string  // allocator pid -> its container cgroup
	cgroups map[string]bool // the phase's container cgroups
}

// ours reports whether a kill of pid reported with cgroup belongs to the
// phase.
func (t *truth) ours(pid int, cgroup string) bool {
	_, ok := t.cgOf[pid]
	return ok || t.cgroups[cgroup]
}

func oomreaderKills(lines []wire.Line, t *truth) []kill {
	var out []kill
	for _, l := range lines {
		if !t.ours(l.PID, l.Cgroup) {
			continue
		}
		out = append(out, kill{pid: l.PID, cgroup: l.Cgroup, fields: l.Fields,
			latency: time.Duration(l.LatencyUS) * time.Microsecond, hasLat: l.VictimMonoUS != 0})
	}
	return out
}

func cadvisorKills(lines []wire.Line, t *truth, w *watcher) []kill {
	var out []kill
	for _, l := range lines {
		if !t.ours(l.PID, l.Cgroup) {
			continue
		}
		k := kill{pid: l.PID, cgroup: l.Cgroup, fields: l.Fields}
		if k.cgroup == "/" {
			k.cgroup = "" // StreamOoms' default: no cgroup known
		}
		if v, ok := w.victim(l.PID); ok {
			k.latency, k.hasLat = time.Duration(l.TNS)-v.mono, true
		}
		out = append(out, k)
	}
	return out
}

// score counts one reader's kills of a phase.
func score(name string, ks []kill, t *truth) *readerResult {
	rr := &readerResult{name: name}
	seen := map[int]int{}
	best := map[int]kill{}
	for _, k := range ks {
		seen[k.pid]++
		if b, ok := best[k.pid]; !ok || k.fields.Count() > b.fields.Count() {
			if ok {
				k.latency, k.hasLat = b.latency, b.hasLat // the first report's latency
			}
			best[k.pid] = k
		}
	}
	fields := 0
	for pid, k := range best {
		rr.reported++
		if seen[pid] > 1 {
			rr.dups++
		}
		switch {
		case k.cgroup != "" && k.cgroup == t.cgOf[pid]:
			rr.attributed++
		case k.cgroup != "":
			rr.wrong++
		}
		fields += k.fields.Count()
		if k.hasLat {
			rr.lat = append(rr.lat, k.latency)
		}
	}
	if rr.reported > 0 {
		rr.fields = float64(fields) / float64(rr.reported)
	}
	if rr.dups > 0 {
		rr.note = fmt.Sprintf("%d kills reported more than once", rr.dups)
	}
	return rr
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// subscriber counts the reports `oomscope run` publishes, at a core NATS
// subscription to oomscope.v1.> on the embedded server: the server sends
// a message to its subscribers as it stores it in the stream (and acks
// the publisher).
type subscriber struct {
	nc   *nats.Conn
	port int

	mu   sync.Mutex
	msgs []natsMsg
	once sync.Once
}

type natsMsg struct {
	at   time.Duration // CLOCK_MONOTONIC at arrival
	data []byte
}

func subscribe(ctx context.Context, port int) (*subscriber, error) {
	url := "nats://127.0.0.1:" + strconv.Itoa(port)
	s := &subscriber{port: port}
	var err error
	for range 50 {
		if s.nc, err = nats.Connect(url, nats.Name("stormbench"), nats.Timeout(2*time.Second)); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	if err != nil {
		return nil, fmt.Errorf("connecting to the embedded NATS server %s: %w", url, err)
	}
	sub, err := s.nc.Subscribe("oomscope.v1.>", func(m *nats.Msg) {
		at := monoNow()
		s.mu.Lock()
		s.msgs = append(s.msgs, natsMsg{at: at, data: m.Data})
		s.mu.Unlock()
	})
	if err != nil {
		s.nc.Close()
		return nil, err
	}
	_ = sub.SetPendingLimits(-1, -1)
	if err := s.nc.Flush(); err != nil {
		s.nc.Close()
		return nil, err
	}
	return s, nil
}

func (s *subscriber) close() { s.once.Do(s.nc.Close) }

func (s *subscriber) messages() []natsMsg {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]natsMsg(nil), s.msgs...)
}

// stored is the number of messages in the OOMSCOPE stream.
func (s *subscriber) stored(ctx context.Context) uint64 {
	js, err := jetstream.New(s.nc)
	if err != nil {
		return 0
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, "OOMSCOPE")
	if err != nil {
		return 0
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0
	}
	return info.State.Msgs
}

// kills decodes the reports received so far.
func (s *subscriber) kills(t *truth, w *watcher) []kill {
	var out []kill
	for _, m := range s.messages() {
		var r report.Enriched
		if err := json.Unmarshal(m.data, &r); err != nil || r.Report == nil {
			continue
		}
		out = append(out, enrichedKills(&r, m.at, t, w)...)
	}
	return out
}

// enrichedKills is one kill per victim of a published report. The victim's
// cgroup is the report's task_memcg, or what enrichment put in
// cgroups.victim (the place to look for attribution of partial reports).
func enrichedKills(r *report.Enriched, at time.Duration, t *truth, w *watcher) []kill {
	cg := r.TaskMemcg
	if cg == "" && r.Cgroups != nil && r.Cgroups.Victim != nil {
		cg = r.Cgroups.Victim.Path
	}
	var out []kill
	for i := range r.Victims {
		v := &r.Victims[i]
		if !t.ours(v.PID, cg) {
			continue
		}
		f := wire.Of(r.Report, v)
		if cg != "" {
			f |= wire.FieldCgroup
		}
		k := kill{pid: v.PID, cgroup: cg, fields: f}
		if vl, ok := w.victim(v.PID); ok {
			k.latency, k.hasLat = at-vl.mono, true
		} else if r.Last.MonoUsec != nil {
			k.latency, k.hasLat = at-time.Duration(*r.Last.MonoUsec)*time.Microsecond, true
		}
		out = append(out, k)
	}
	return out
}

package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/oomscope/oomscope/bench/internal/wire"
)

// oomscopeMissed reports whether an oomscope reader reported fewer kills
// than the kernel counted.
func (p *phaseResult) oomscopeMissed() bool {
	for _, r := range p.readers[:2] {
		if uint64(r.reported) < p.kernel {
			return true
		}
	}
	return false
}

// oomscopeFailed says what of the attribution targets an oomscope
// reader missed, "" when none: a kill attributed to another cgroup, in any
// phase; in a storm in one container, fewer than 95 % of the kernel's
// kills attributed to their container by `oomscope run`.
func (p *phaseResult) oomscopeFailed() string {
	for _, r := range p.readers[:2] {
		if r.wrong > 0 {
			return fmt.Sprintf("%s attributed %d kills to another cgroup", r.name, r.wrong)
		}
	}
	if run := p.readers[1]; p.kind == phaseStorm && uint64(run.attributed)*100 < p.kernel*95 {
		return fmt.Sprintf("%s attributed %d of %d kills of the storm to their container, fewer than 95 %%", run.name, run.attributed, p.kernel)
	}
	return ""
}

var tableHead = "| reader | kills reported | attributed to its container | wrong cgroup | fields per kill (of " + fmt.Sprint(wire.NumFields) + ") | CPU, phase | CPU per kill | wake-ups (CPU per wake-up) | idle CPU per s | CPU, process lifetime | peak RSS | latency p50 | latency p99 |\n" +
	"|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"

// markdown is the table of one phase of one run.
func (p *phaseResult) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "#### run %d, %s: %d kills in %.1f s\n\n", p.run, p.kind, p.kernel, p.killing.Seconds())
	fmt.Fprintf(&b, "Kernel: `oom_kill` %d in `%s` (%s); it printed %d report headers (`oom-kill:` summaries) and %d `Killed process` lines, so %d kills came as bare victim lines.\n\n",
		p.kernel, strings.Join(p.cgroups, "`, `"), p.allocators, p.headers, p.victimLines, max(p.victimLines-p.headers, 0))
	b.WriteString(tableHead)
	for _, r := range p.readers {
		fmt.Fprintf(&b, "| %s | %d of %d | %d | %d | %.1f | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			r.name, r.reported, p.kernel, r.attributed, r.wrong, r.fields,
			secs(r.cpuPhase), perKill(r.cpuPhase, p.kernel), wakeups(r.slices, r.cpuPhase), ms(r.idlePerSec), secs(r.cpuLife), mib(r.maxRSS),
			percentile(r.lat, 50), percentile(r.lat, 99))
	}
	var notes []string
	for _, r := range p.readers {
		if r.note != "" {
			notes = append(notes, r.name+": "+r.note)
		}
	}
	if rec := p.readers[0].records; rec > 0 {
		notes = append(notes, fmt.Sprintf("oomreader read %d kernel records: %s CPU and %.2f wake-ups per record", rec, perRecord(p.readers[0].cpuPhase, rec), float64(p.readers[0].slices)/float64(rec)))
	}
	if len(notes) > 0 {
		b.WriteString("\n" + strings.Join(notes, "; ") + ".\n")
	}
	return b.String()
}

// summary is every run's results, for the median tables and the doc.
type summary struct {
	cfg     config
	machine machine
	results []*phaseResult
	floor   *floorResult
	cgroup  string        // memory cgroup version
	clock   time.Duration // smallest arrival - kernel stamp seen
	records uint64
	top     string // pprof -top of oomreader's storm profiles
	topErr  error
}

func summarize(cfg config, m machine, results []*phaseResult, fl *floorResult) *summary {
	m.LoadAfter = loadavg()
	return &summary{cfg: cfg, machine: m, results: results, floor: fl}
}

// medianTables is, per phase, the median over the runs of every figure
// (the latency percentiles of all runs' kills pooled).
func (s *summary) medianTables() string {
	var b strings.Builder
	for _, kind := range []phaseKind{phaseSteady, phaseStorm, phaseSplit} {
		var rs []*phaseResult
		for _, r := range s.results {
			if r.kind == kind {
				rs = append(rs, r)
			}
		}
		if len(rs) == 0 {
			continue
		}
		kernel := medianU(rs, func(p *phaseResult) float64 { return float64(p.kernel) })
		headers := medianU(rs, func(p *phaseResult) float64 { return float64(p.headers) })
		lines := medianU(rs, func(p *phaseResult) float64 { return float64(p.victimLines) })
		killing := medianU(rs, func(p *phaseResult) float64 { return p.killing.Seconds() })
		fmt.Fprintf(&b, "### %s (median of %d run%s)\n\n", kind, len(rs), plural(len(rs)))
		fmt.Fprintf(&b, "%.0f kills (the kernel's `oom_kill`) in %.1f s; %.0f report headers, %.0f victim lines.\n\n", kernel, killing, headers, lines)
		b.WriteString(tableHead)
		for i := range rs[0].readers {
			get := func(f func(r *readerResult) float64) float64 {
				return medianU(rs, func(p *phaseResult) float64 { return f(p.readers[i]) })
			}
			var lat []time.Duration
			for _, p := range rs {
				lat = append(lat, p.readers[i].lat...)
			}
			cpu := time.Duration(get(func(r *readerResult) float64 { return float64(r.cpuPhase) }))
			slices := int64(get(func(r *readerResult) float64 { return float64(r.slices) }))
			fmt.Fprintf(&b, "| %s | %.0f of %.0f | %.0f | %.0f | %.1f | %s | %s | %s | %s | %s | %s | %s | %s |\n",
				rs[0].readers[i].name,
				get(func(r *readerResult) float64 { return float64(r.reported) }), kernel,
				get(func(r *readerResult) float64 { return float64(r.attributed) }),
				get(func(r *readerResult) float64 { return float64(r.wrong) }),
				get(func(r *readerResult) float64 { return r.fields }),
				secs(cpu), perKill(cpu, uint64(kernel)), wakeups(slices, cpu),
				ms(time.Duration(get(func(r *readerResult) float64 { return float64(r.idlePerSec) }))),
				secs(time.Duration(get(func(r *readerResult) float64 { return float64(r.cpuLife) }))),
				mib(int64(get(func(r *readerResult) float64 { return float64(r.maxRSS) }))),
				percentile(lat, 50), percentile(lat, 99))
		}
		rec := get0(rs, func(p *phaseResult) float64 { return float64(p.readers[0].records) })
		if rec > 0 {
			cpu := time.Duration(get0(rs, func(p *phaseResult) float64 { return float64(p.readers[0].cpuPhase) }))
			wk := get0(rs, func(p *phaseResult) float64 { return float64(p.readers[0].slices) })
			fmt.Fprintf(&b, "\noomreader read %.0f kernel records in the phase: %s CPU and %.2f wake-ups per record.\n", rec, perRecord(cpu, uint64(rec)), wk/rec)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func get0(rs []*phaseResult, f func(*phaseResult) float64) float64 { return medianU(rs, f) }

// medianU is the median of f over rs.
func medianU(rs []*phaseResult, f func(*phaseResult) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	return median(v)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// percentile is the nearest-rank percentile p of d, as dur formats it.
func percentile(d []time.Duration, p float64) string {
	if len(d) == 0 {
		return "–"
	}
	return dur(pct(d, p))
}

func pct(d []time.Duration, p float64) time.Duration {
	d = slices.Clone(d)
	slices.Sort(d)
	rank := int(float64(len(d))*p/100+0.999999) - 1
	return d[min(max(rank, 0), len(d)-1)]
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func wakeups(n int64, cpu time.Duration) string {
	if n <= 0 {
		return "–"
	}
	return fmt.Sprintf("%d (%.1f µs)", n, cpu.Seconds()*1e6/float64(n))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", d.Seconds()*1000) }

func secs(d time.Duration) string { return fmt.Sprintf("%.3f s", d.Seconds()) }

func perKill(d time.Duration, kills uint64) string {
	if kills == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f ms", d.Seconds()*1000/float64(kills))
}

func perRecord(d time.Duration, n uint64) string {
	if n == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f µs", d.Seconds()*1e6/float64(n))
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// dur formats a latency.
func dur(d time.Duration) string {
	if d < 0 {
		return "−" + dur(-d)
	}
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%d µs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000)
	default:
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
}

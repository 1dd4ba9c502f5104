package main

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/oomscope/oomscope/daemon"
	"github.com/oomscope/oomscope/enrich/cgroupfs"
	"github.com/oomscope/oomscope/enrich/counterattr"
	"github.com/oomscope/oomscope/enrich/procattr"
	"github.com/oomscope/oomscope/report"
)

// memoryCgroupV1 reports whether the host's memory controller is on cgroup
// v1, where the kernel prints no memory.oom.group lines. Unknown (no
// controller found) is false: the parser then waits for group lines.
func memoryCgroupV1(cgroupRoot string) bool {
	fs, err := cgroupfs.Open(cgroupRoot)
	return err == nil && fs.Version() == report.CgroupV1
}

// counterAttribution returns the tracker that attributes rate-limited
// kills from the kernel's OOM-kill counters, reading device through a
// descriptor of its own; nil (said once) when the counters or the device
// cannot be read: the kills then stay as anonymous as the kernel left them.
func counterAttribution(device, cgroupRoot, procRoot string, proc *procattr.Tracker, reg prometheus.Registerer, log zerolog.Logger) *counterattr.Tracker {
	fs, err := cgroupfs.Open(cgroupRoot)
	if err != nil {
		log.Warn().Err(err).Msg("no attribution of rate-limited kills from the OOM-kill counters")
		return nil
	}
	kl, err := counterattr.OpenKernelLog(device)
	if err != nil {
		log.Warn().Err(err).Msg("no attribution of rate-limited kills from the OOM-kill counters")
		return nil
	}
	t, err := counterattr.New(counterattr.Config{
		Log:        kl,
		Counters:   counterattr.NewKernelCounters(procRoot, fs),
		Logger:     log.With().Str("component", "counterattr").Logger(),
		Registerer: reg,
		Proc:       proc,
	})
	if err != nil {
		kl.Close()
		log.Warn().Err(err).Msg("no attribution of rate-limited kills from the OOM-kill counters")
		return nil
	}
	return t
}

// counterObserver keeps a nil tracker out of the daemon's interface (a
// typed nil would not compare equal to nil there).
func counterObserver(t *counterattr.Tracker) daemon.RecordObserver {
	if t == nil {
		return nil
	}
	return t
}

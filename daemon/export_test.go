package daemon

import "github.com/prometheus/client_golang/prometheus"

// KernelClockForTest exposes the default clock to the tests.
var KernelClockForTest = kernelClock

// LateReaperForTest is the counter of late oom_reaper lines.
func (m *Metrics) LateReaperForTest() prometheus.Counter { return m.late }

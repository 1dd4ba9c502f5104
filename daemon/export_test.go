package daemon

// KernelClockForTest exposes the default clock to the tests.
var KernelClockForTest = kernelClock

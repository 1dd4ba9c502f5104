//go:build linux

package main

import "github.com/oomscope/oomscope/e2e/qemu/internal/truth"

// Local names for the shared ground-truth types (see package truth).
type (
	Truth    = truth.Truth
	Kernel   = truth.Kernel
	Sysctls  = truth.Sysctls
	Markers  = truth.Markers
	Write    = truth.Write
	Cg       = truth.Cg
	Counters = truth.Counters
	Counter  = truth.Counter
	Proc     = truth.Proc
	Expect   = truth.Expect
	Timing   = truth.Timing
)

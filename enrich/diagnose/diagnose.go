// Package diagnose answers what an on-call engineer asks of an OOM report:
// which limit was hit, what was killed and what became of it, what filled
// the memory and why that victim.
//
// It works in two steps. [Compute] decides: it fills a [report.Diagnosis]
// with codes (scope, outcome and their reasons, the victim choice) and
// numbers only. [Render] writes every sentence from those codes and
// numbers, and reads nothing else. [Diagnose] does both. [Headline] is the
// one-line, escaped rendering for other outputs (a Kubernetes Event, a log
// line).
package diagnose

import "github.com/oomscope/oomscope/report"

// Diagnose computes the diagnosis of an enriched report and renders its
// sentences: [Compute] then [Render].
func Diagnose(r *report.Enriched, nodeMemoryBytes uint64) *report.Diagnosis {
	d := Compute(r, nodeMemoryBytes)
	Render(d)
	return d
}

package kubeevents_test

import (
	"fmt"
	"time"

	"github.com/oomscope/oomscope/report"
	"github.com/oomscope/oomscope/sink/kubeevents"
)

func ExampleMessage() {
	at := time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)
	u := func(v uint64) *uint64 { return &v }
	main := true
	r := &report.Enriched{
		Report: &report.Report{
			ID:      "4b0c7e4e-1c2d-4f8a-9b1e-2a3c4d5e6f70/18422",
			Host:    "node-a",
			Kind:    report.KindMemcg,
			Last:    report.Stamp{Wall: &at},
			Victims: []report.Victim{{PID: 4242, Comm: "python3"}},
			Derived: &report.Derived{MemoryBreakdown: report.MemoryBreakdown{UsageBytes: u(512 << 20), AnonBytes: u(497 << 20)}},
		},
		Pod:       &report.Pod{Namespace: "shop", Name: "web-7d9f8b6c5d-x2kqp", UID: "0b7e3c1e-5a42-4c1b-9d7a-2f1f8c3e9a11"},
		Container: &report.Container{Name: "app", Kind: "app"},
		Diagnosis: &report.Diagnosis{
			Scope:             report.ScopeContainer,
			LimitBytes:        u(512 << 20),
			MainProcessKilled: &main,
			Outcome:           report.OutcomeContainerRestarts,
			Memory:            &report.MemoryComposition{Dominant: "anon"},
		},
	}
	fmt.Println(kubeevents.Message(r))

	// A hostile command name cannot break the line or reorder it.
	r.Victims[0].Comm = "x\n\x1b[2J\u202eevil"
	r.Diagnosis = nil
	fmt.Println(kubeevents.Message(r))
	// Output:
	// Killed process 4242 "python3" in container "app" (main process: container restarts): container limit 512Mi hit, usage 512Mi (97% anon); report 4b0c7e4e-1c2d-4f8a-9b1e-2a3c4d5e6f70/18422
	// Killed process 4242 "x\n\x1b[2J\u202eevil" in container "app": limit unknown, usage 512Mi; report 4b0c7e4e-1c2d-4f8a-9b1e-2a3c4d5e6f70/18422
}

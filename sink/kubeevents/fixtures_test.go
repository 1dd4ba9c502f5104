package kubeevents

import (
	"fmt"
	"time"

	"github.com/oomscope/oomscope/report"
)

const (
	mi       = 1 << 20
	bootID   = "4b0c7e4e-1c2d-4f8a-9b1e-2a3c4d5e6f70"
	podUID   = "0b7e3c1e-5a42-4c1b-9d7a-2f1f8c3e9a11"
	cidApp   = "3f2a9c1b7d4e8f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a"
	testNode = "node-a"
)

func u64(v uint64) *uint64   { return &v }
func f64(v float64) *float64 { return &v }
func boolp(v bool) *bool     { return &v }

// containerKill is a kill of pid in container app of pod ns/name (the API
// knows the pod when name is set), at the container's 512Mi limit, 97%
// anon, with report id <boot>/<seq>.
func containerKill(seq uint64, at time.Time, ns, name, uid, comm string, pid int) *report.Enriched {
	w := at
	r := &report.Enriched{
		Report: &report.Report{
			Schema:    report.Schema,
			ID:        fmt.Sprintf("%s/%d", bootID, seq),
			Host:      testNode,
			Kind:      report.KindMemcg,
			OOMMemcg:  "/kubepods/burstable/pod" + uid + "/" + cidApp,
			TaskMemcg: "/kubepods/burstable/pod" + uid + "/" + cidApp,
			First:     report.Stamp{Seq: seq, Wall: &w},
			Last:      report.Stamp{Seq: seq + 40, Wall: &w},
			Victims:   []report.Victim{{PID: pid, Comm: comm}},
			Memory:    &report.Counter{UsageBytes: 512 * mi, LimitBytes: 512 * mi},
			Derived: &report.Derived{MemoryBreakdown: report.MemoryBreakdown{
				UsageBytes: u64(512 * mi), LimitBytes: u64(512 * mi), AnonBytes: u64(497 * mi),
			}},
		},
		Pod:       &report.Pod{Namespace: ns, Name: name, UID: uid, QoSClass: "Burstable"},
		Container: &report.Container{ID: cidApp, Runtime: report.RuntimeContainerd},
		Cgroups: &report.Cgroups{
			Limiting: &report.CgroupPath{Level: report.LevelContainer, PodUID: uid, ContainerID: cidApp},
			Victim:   &report.CgroupPath{Level: report.LevelContainer, PodUID: uid, ContainerID: cidApp},
		},
		Diagnosis: &report.Diagnosis{
			Scope:             report.ScopeContainer,
			LimitBytes:        u64(512 * mi),
			MainProcessKilled: boolp(true),
			Outcome:           report.OutcomeContainerRestarts,
			Memory:            &report.MemoryComposition{ReclaimableBytes: u64(10 * mi), Dominant: "anon"},
			Victim:            &report.VictimChoice{PID: pid, Comm: comm},
			Summary:           fmt.Sprintf("container of pod: process %d %q killed by the CONTAINER limit 512Mi", pid, comm),
		},
	}
	r.Cgroups.Limiting.Path = r.OOMMemcg
	r.Cgroups.Victim.Path = r.TaskMemcg
	if name != "" {
		r.Container.Name = "app"
		r.Container.Kind = "app"
	}
	return r
}

// globalKill is a node-wide OOM that killed pid in kubelet.service.
func globalKill(seq uint64, at time.Time, comm string, pid int) *report.Enriched {
	w := at
	return &report.Enriched{
		Report: &report.Report{
			Schema:    report.Schema,
			ID:        fmt.Sprintf("%s/%d", bootID, seq),
			Host:      testNode,
			Kind:      report.KindGlobal,
			TaskMemcg: "/system.slice/kubelet.service",
			First:     report.Stamp{Seq: seq, Wall: &w},
			Last:      report.Stamp{Seq: seq + 90, Wall: &w},
			Victims:   []report.Victim{{PID: pid, Comm: comm}},
			Derived: &report.Derived{MemoryBreakdown: report.MemoryBreakdown{
				UsageBytes: u64(15*1024*mi + 600*mi), LimitBytes: u64(16 * 1024 * mi), AnonBytes: u64(12 * 1024 * mi),
			}},
		},
		Cgroups: &report.Cgroups{Victim: &report.CgroupPath{Path: "/system.slice/kubelet.service", Level: report.LevelSystemService, Unit: "kubelet.service"}},
		Diagnosis: &report.Diagnosis{
			Scope:   report.ScopeNode,
			Outcome: report.OutcomeProcessKilled,
			Memory:  &report.MemoryComposition{Dominant: "anon"},
			Summary: fmt.Sprintf("unit kubelet.service: process %d %q killed by NODE memory (global OOM)", pid, comm),
		},
	}
}

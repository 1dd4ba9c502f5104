package archive

import (
	"fmt"
	"time"

	"github.com/oomscope/oomscope/report"
)

// Boot ids of synthetic reports.
var synthBoots = []string{
	"0c1f6b6e-7d52-4f0a-9b1e-2a3c4d5e6f70",
	"1d2e3f40-8e63-4a1b-8c2f-3b4d5e6f7081",
	"2e3f4051-9f74-4b2c-9d30-4c5e6f708192",
	"3f405162-a085-4c3d-ae41-5d6f708192a3",
	"40516273-b196-4d4e-bf52-6e708192a3b4",
}

var synthNamespaces = []string{"default", "payments", "search", "batch", "kube-system", "monitoring", "ingress", "ml-train"}

// synthReport returns a plausible enriched memcg report, number i of an
// archive whose reports are one minute apart from start: pod, container,
// diagnosis, a short task table and 30 raw kernel lines (about 6 KiB as
// archived).
func synthReport(i int, start time.Time) *report.Enriched {
	boot := synthBoots[i%len(synthBoots)]
	seq := uint64(1000 + i*40)
	wall := start.Add(time.Duration(i) * time.Minute)
	mono := int64(3600e6 + int64(i)*60e6)
	ns := synthNamespaces[i%len(synthNamespaces)]
	pod := fmt.Sprintf("web-%d-%05x", i%97, i*7919%0xfffff)
	limit := uint64(128<<20) << (i % 4)
	comm := []string{"python3", "java", "node", "postgres", "envoy"}[i%5]
	pid := 1000 + i%30000
	raw := make([]string, 30)
	for j := range raw {
		raw[j] = fmt.Sprintf("6,%d,%d,-;%s line %d of a synthetic oom report: memory: usage %dkB, limit %dkB, failcnt %d", seq+uint64(j), mono+int64(j), comm, j, limit>>10, limit>>10, i)
	}
	adj := 985
	return &report.Enriched{
		Report: &report.Report{
			Schema: report.Schema, ID: fmt.Sprintf("%s/%d", boot, seq), Host: fmt.Sprintf("node-%02d", i%12), BootID: boot,
			KernelVersion: "6.1.0-13-amd64", Kind: report.KindMemcg, Constraint: "CONSTRAINT_MEMCG",
			OOMMemcg:  fmt.Sprintf("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod%08x.slice", i),
			TaskMemcg: fmt.Sprintf("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod%08x.slice/cri-containerd-%064x.scope", i, i),
			First:     report.Stamp{Seq: seq, MonoUsec: &mono, Wall: &wall},
			Last:      report.Stamp{Seq: seq + 29, MonoUsec: &mono, Wall: &wall},
			Trigger:   &report.Trigger{Comm: comm, GFPMask: "0xcc0", GFPFlags: []string{"GFP_KERNEL"}},
			Memory:    &report.Counter{UsageBytes: limit, LimitBytes: limit, Failcnt: uint64(i)},
			Tasks: []report.Task{
				{PID: pid, UID: 1000, TGID: pid, TotalVMPages: 500000, RSSPages: limit / 4096, OOMScoreAdj: adj, Name: comm},
				{PID: pid - 1, UID: 1000, TGID: pid - 1, TotalVMPages: 1000, RSSPages: 100, OOMScoreAdj: adj, Name: "sh"},
			},
			TasksTotal: 2,
			Victims:    []report.Victim{{PID: pid, Comm: comm, Message: "Memory cgroup out of memory", TotalVMBytes: 2e9, AnonRSSBytes: limit - 1<<20, FileRSSBytes: 1 << 20, OOMScoreAdj: &adj}},
			Raw:        raw,
		},
		Pod:       &report.Pod{Namespace: ns, Name: pod, UID: fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i), QoSClass: report.QoSBurstable, Node: fmt.Sprintf("node-%02d", i%12)},
		Container: &report.Container{Name: "app", ID: fmt.Sprintf("%064x", i), Runtime: report.RuntimeContainerd},
		Diagnosis: &report.Diagnosis{
			Scope: report.ScopeContainer, ScopeExplanation: "The container's memory limit was hit.", LimitBytes: &limit,
			Outcome: report.OutcomeContainerRestarts, OutcomeExplanation: "The container's main process was killed.",
			Summary: fmt.Sprintf("container app of %s/%s: process %d %q killed by the CONTAINER limit", ns, pod, pid, comm),
		},
		Enrichment: report.Enrichment{Sources: []string{"cgroup-path", "kubernetes-api"}},
	}
}

package diagnose_test

import (
	"strings"
	"testing"

	"github.com/oomscope/oomscope/enrich/diagnose"
	"github.com/oomscope/oomscope/report"
)

func u64(v uint64) *uint64 { return &v }

// TestDiagnoseRender renders hand-built codes and numbers: the sentences
// come from them alone.
func TestDiagnoseRender(t *testing.T) {
	mi := uint64(1 << 20)
	breakdown := &report.MemoryBreakdown{UsageBytes: u64(100 * mi), AnonBytes: u64(20 * mi), ActiveFileBytes: u64(30 * mi), InactiveFileBytes: u64(50 * mi), WorkingSetBytes: u64(50 * mi)}
	tests := []struct {
		name string
		d    report.Diagnosis
		want map[string]string // field -> substring
	}{
		{
			name: "qos cgroup, child from the pod table",
			d: report.Diagnosis{Scope: report.ScopeKubepods, ScopeReason: report.ScopeReasonLimitingCgroupLevel, LimitBytes: u64(2 << 30),
				Outcome: report.OutcomeChildKilled, OutcomeReason: report.OutcomeReasonPodTaskTableLowerTGID, MainProcessKilled: new(false),
				Victim: &report.VictimChoice{PID: 20, Comm: "worker", Reason: report.VictimReasonOOMGroup, Biggest: &report.TaskRef{PID: 10, Name: "big", Bytes: 3 * mi}},
				Facts: &report.DiagnosisFacts{LimitingLevel: report.LevelQoS, LimitingQoS: "burstable", VictimTGID: 20, MainPID: 10, MainName: "big",
					PodNamespace: "ns", PodName: "p", HasContainer: true, ContainerName: "c", VictimTaskBytes: mi}},
			want: map[string]string{
				"scope":   "The burstable QoS cgroup's limit 2Gi (kubelet --qos-reserved) was hit by all burstable pods together",
				"outcome": "Pid 10 (big) has a lower pid than the victim in the pod's cgroup apart from the pause process, so pid 20 (worker) was most likely a child process",
				"victim":  "pid 10 (big) used 3Mi against its 1Mi — but was chosen because memory.oom.group killed the whole group.",
				"summary": `container "c" of ns/p: process 20 "worker" killed by the BURSTABLE QoS limit 2Gi; child process — container keeps running`,
			},
		},
		{
			name: "page cache, api running",
			d: report.Diagnosis{Scope: report.ScopeContainer, ScopeReason: report.ScopeReasonLimitingCgroupLevel, LimitBytes: u64(100 * mi),
				Outcome: report.OutcomeChildKilled, OutcomeReason: report.OutcomeReasonAPIRunningAfterKill, MainProcessKilled: new(false),
				Memory: &report.MemoryComposition{AnonShare: new(0.2), FileShare: new(0.8), ReclaimableBytes: u64(80 * mi), MostlyReclaimable: true, Dominant: report.ComponentPageCache, Breakdown: breakdown},
				Victim: &report.VictimChoice{PID: 7, Comm: "tar", Reason: report.VictimReasonBiggestConsumer, OOMScoreAdj: new(-997), PodQoS: report.QoSBurstable, QoSCheck: report.QoSCheckNodeCritical, QoSMismatch: true},
				Facts:  &report.DiagnosisFacts{ContainerID: "0123456789abcdef", APIObservedAfter: 31e9, TasksTotal: 4, VictimTaskBytes: 8 * mi}},
			want: map[string]string{
				"scope":   "The container's own memory limit 100Mi was hit",
				"outcome": "The API shows container instance 0123456789ab still running 31s after the kill, so pid 7 (tar) was a child process",
				"memory":  "Usage was 100Mi = 20% anon, 80% page cache, working set 50Mi as the kubelet counts it (usage − inactive file); mostly reclaimable page cache",
				"victim":  "Pid 7 (tar) was the biggest consumer of the 4 tasks listed (8Mi rss+swap+page tables). Its oom_score_adj -997 does not fit the pod's Burstable QoS class (the kubelet sets 3..999): a node-critical pod",
				"summary": "usage 100Mi = 80% page cache; child process — container keeps running",
			},
		},
		{
			name: "no facts (decoded from JSON)",
			d: report.Diagnosis{Scope: report.ScopeNode, ScopeReason: report.ScopeReasonGlobalConstraint, Outcome: report.OutcomeNothingKilled, OutcomeReason: report.OutcomeReasonNoKillable,
				Memory: &report.MemoryComposition{Dominant: report.ComponentAnon}},
			want: map[string]string{
				"scope":   "The whole node ran out of memory",
				"outcome": "No process was killed",
				"memory":  "Mostly anon.",
				"summary": "nothing killable, hit by NODE memory (global OOM)",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.d
			diagnose.Render(&d)
			got := map[string]string{"scope": d.ScopeExplanation, "outcome": d.OutcomeExplanation, "summary": d.Summary}
			if d.Memory != nil {
				got["memory"] = d.Memory.Explanation
			}
			if d.Victim != nil {
				got["victim"] = d.Victim.Explanation
			}
			for k, want := range tt.want {
				if !strings.Contains(got[k], want) {
					t.Errorf("%s:\n got %q\nwant it to contain %q", k, got[k], want)
				}
			}
		})
	}
}

// TestDiagnoseRenderIsDiagnose: Render of Compute is Diagnose, and
// rendering twice changes nothing.
func TestDiagnoseRenderIsDiagnose(t *testing.T) {
	r := parseCapture(t, "host-6.18-cgroupv1-memcg-pod-limit-3-kills.kmsg")
	er := enrichWith(t, &r[0], nil, nil)
	want := diagnose.Diagnose(er, 0)
	d := diagnose.Compute(er, 0)
	diagnose.Render(d)
	diagnose.Render(d)
	if d.Summary != want.Summary || d.OutcomeExplanation != want.OutcomeExplanation || d.Victim.Explanation != want.Victim.Explanation || d.Memory.Explanation != want.Memory.Explanation {
		t.Errorf("Render(Compute) = %+v\nwant %+v", d, want)
	}
	diagnose.Render(nil)
}

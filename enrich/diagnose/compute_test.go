package diagnose_test

import (
	"testing"
	"time"

	"github.com/oomscope/oomscope/enrich/diagnose"
	"github.com/oomscope/oomscope/internal/fixtures"
	"github.com/oomscope/oomscope/report"
)

// TestDiagnoseCompute checks the codes Compute decides, and that it writes
// no sentence.
func TestDiagnoseCompute(t *testing.T) {
	appTasks := []report.Task{fixtures.Task(4100, "app", 60000, 900), fixtures.Task(4200, "worker", 2000, 900)}
	burstable := &report.Pod{Namespace: "default", Name: "web-7d9", UID: fixtures.PodUID, QoSClass: report.QoSBurstable}
	ctr256 := fixtures.Derived(256, 256, 230, 10, 6, 0, 10)
	exiting := fixtures.Victim(4100, "app", 900)
	exiting.Exiting = true
	tests := []struct {
		name                   string
		report                 *report.Report
		pod                    *report.Pod
		ctr                    *report.Container
		scope, scopeReason     string
		outcome, outcomeReason string
		victimReason, qosCheck string
		dominant               string
	}{
		{"container, lowest tgid", fixtures.Memcg(fixtures.V2CtrPath, fixtures.V2CtrPath, 256, ctr256, appTasks, fixtures.Victim(4100, "app", 900)), nil, nil,
			report.ScopeContainer, report.ScopeReasonLimitingCgroupLevel, report.OutcomeContainerRestarts, report.OutcomeReasonTaskTableLowestTGID,
			report.VictimReasonBiggestConsumer, report.QoSCheckMatch, report.ComponentAnon},
		{"container, lower tgid", fixtures.Memcg(fixtures.V2CtrPath, fixtures.V2CtrPath, 256, ctr256, appTasks, fixtures.Victim(4200, "worker", 900)), nil, nil,
			report.ScopeContainer, report.ScopeReasonLimitingCgroupLevel, report.OutcomeChildKilled, report.OutcomeReasonTaskTableLowerTGID,
			report.VictimReasonBadnessRounding, report.QoSCheckMatch, report.ComponentAnon},
		{"pod table, pause left out", fixtures.Memcg(fixtures.BEPod, fixtures.BECtr, 64, fixtures.Derived(64, 64, 60, 0, 0, 0, 4),
			[]report.Task{fixtures.Task(900, "pause", 100, -998), fixtures.Task(950, "nginx", 15000, 1000)}, fixtures.Victim(950, "nginx", 1000)), nil, nil,
			report.ScopePod, report.ScopeReasonLimitingCgroupLevel, report.OutcomeContainerRestarts, report.OutcomeReasonPodTaskTableLowestTGID,
			report.VictimReasonBiggestConsumer, report.QoSCheckMatch, report.ComponentAnon},
		{"pause process", fixtures.Memcg(fixtures.BEPod, fixtures.BEPod, 64, fixtures.Derived(64, 64, 60, 0, 0, 0, 4),
			[]report.Task{fixtures.Task(900, "pause", 100, -998)}, fixtures.Victim(900, "pause", -998)), nil, nil,
			report.ScopePod, report.ScopeReasonLimitingCgroupLevel, report.OutcomeSandboxKilled, report.OutcomeReasonPauseProcess,
			report.VictimReasonBiggestConsumer, report.QoSCheckMismatch, report.ComponentAnon},
		{"oom_score_adj outweighs", fixtures.Memcg("/kubepods", fixtures.BECtr, 7168, fixtures.Derived(7168, 7168, 7000, 0, 0, 0, 168),
			[]report.Task{fixtures.Task(300, "db", 1500000, -997), fixtures.Task(950, "nginx", 20000, 1000)}, fixtures.Victim(950, "nginx", 1000)), nil, nil,
			report.ScopeKubepods, report.ScopeReasonLimitingCgroupLevel, report.OutcomeUnknown, report.OutcomeReasonTaskTableTooWide,
			report.VictimReasonOOMScoreAdj, report.QoSCheckMatch, report.ComponentAnon},
		{"node-critical adj in a burstable pod", fixtures.Memcg(fixtures.V2CtrPath, fixtures.V2CtrPath, 256, ctr256, nil, fixtures.Victim(4100, "app", -997)), nil, nil,
			report.ScopeContainer, report.ScopeReasonLimitingCgroupLevel, report.OutcomeUnknown, report.OutcomeReasonNoTaskTable,
			report.VictimReasonNoTaskTable, report.QoSCheckNodeCritical, report.ComponentAnon},
		{"page cache", fixtures.Memcg(fixtures.V2CtrPath, fixtures.V2CtrPath, 1024, fixtures.Derived(1024, 1024, 200, 300, 500, 0, 24),
			[]report.Task{fixtures.Task(7, "backup", 50000, 500)}, fixtures.Victim(7, "backup", 500)), nil, nil,
			report.ScopeContainer, report.ScopeReasonLimitingCgroupLevel, report.OutcomeContainerRestarts, report.OutcomeReasonTaskTableLowestTGID,
			report.VictimReasonBiggestConsumer, report.QoSCheckMatch, report.ComponentPageCache},
		{"api terminated oomkilled", fixtures.Memcg(fixtures.V2CtrPath, fixtures.V2CtrPath, 256, ctr256, appTasks, fixtures.Victim(4200, "worker", 900)),
			burstable, &report.Container{Name: "app", ID: fixtures.CID, State: "terminated", Termination: &report.Termination{Reason: "OOMKilled", ExitCode: 137}},
			report.ScopeContainer, report.ScopeReasonLimitingCgroupLevel, report.OutcomeContainerRestarts, report.OutcomeReasonAPITerminatedOOMKilled,
			report.VictimReasonBadnessRounding, report.QoSCheckMatch, report.ComponentAnon},
		{"api terminated error", fixtures.Memcg(fixtures.V2CtrPath, fixtures.V2CtrPath, 256, ctr256, appTasks, fixtures.Victim(4200, "worker", 900)),
			burstable, &report.Container{Name: "app", ID: fixtures.CID, State: "terminated", Termination: &report.Termination{Reason: "Error", ExitCode: 1}},
			report.ScopeContainer, report.ScopeReasonLimitingCgroupLevel, report.OutcomeContainerRestarts, report.OutcomeReasonAPITerminatedOther,
			report.VictimReasonBadnessRounding, report.QoSCheckMatch, report.ComponentAnon},
		{"global", &report.Report{Kind: report.KindGlobal, Constraint: "CONSTRAINT_NONE", OOMMemcg: "/", TaskMemcg: "/system.slice/x.service",
			Victims: []report.Victim{fixtures.Victim(1, "x", 0)}}, nil, nil,
			report.ScopeNode, report.ScopeReasonGlobalConstraint, report.OutcomeProcessKilled, report.OutcomeReasonNotInContainer,
			report.VictimReasonNoTaskTable, report.QoSCheckNotChecked, ""},
		{"cpuset", &report.Report{Kind: report.KindCpuset, MemsAllowed: "1"}, nil, nil,
			report.ScopeCpuset, report.ScopeReasonCpusetConstraint, report.OutcomeUnknown, report.OutcomeReasonNoVictim, "", "", ""},
		{"mempolicy, victim cgroup unknown", &report.Report{Kind: report.KindMempolicy, Victims: []report.Victim{fixtures.Victim(2, "y", 0)}}, nil, nil,
			report.ScopeMempolicy, report.ScopeReasonMempolicyConstraint, report.OutcomeUnknown, report.OutcomeReasonVictimCgroupUnknown,
			report.VictimReasonNoTaskTable, report.QoSCheckNotChecked, ""},
		{"memcg without a cgroup name", &report.Report{Kind: report.KindMemcg, NoKillable: true}, nil, nil,
			report.ScopeOther, report.ScopeReasonLimitingCgroupUnnamed, report.OutcomeNothingKilled, report.OutcomeReasonNoKillable, "", "", ""},
		{"cut short", &report.Report{Kind: report.KindUnknown}, nil, nil,
			report.ScopeOther, report.ScopeReasonReportCutShort, report.OutcomeUnknown, report.OutcomeReasonNoVictim, "", "", ""},
		{"exiting", fixtures.Memcg(fixtures.V2CtrPath, fixtures.V2CtrPath, 256, nil, nil, exiting), nil, nil,
			report.ScopeContainer, report.ScopeReasonLimitingCgroupLevel, report.OutcomeNothingKilled, report.OutcomeReasonVictimExiting,
			report.VictimReasonNoTaskTable, report.QoSCheckMatch, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			er := enrichWith(t, tt.report, tt.pod, tt.ctr)
			d := diagnose.Compute(er, 0)
			if d.Scope != tt.scope || d.ScopeReason != tt.scopeReason {
				t.Errorf("scope = %s (%s), want %s (%s)", d.Scope, d.ScopeReason, tt.scope, tt.scopeReason)
			}
			if d.Outcome != tt.outcome || d.OutcomeReason != tt.outcomeReason {
				t.Errorf("outcome = %s (%s), want %s (%s)", d.Outcome, d.OutcomeReason, tt.outcome, tt.outcomeReason)
			}
			var vr, qc string
			if d.Victim != nil {
				vr, qc = d.Victim.Reason, d.Victim.QoSCheck
			}
			if vr != tt.victimReason || qc != tt.qosCheck {
				t.Errorf("victim reason, qos check = %q, %q; want %q, %q", vr, qc, tt.victimReason, tt.qosCheck)
			}
			var dom string
			if d.Memory != nil {
				dom = d.Memory.Dominant
				if d.Memory.Breakdown != &er.Derived.MemoryBreakdown {
					t.Error("the composition does not refer to the report's breakdown")
				}
			}
			if dom != tt.dominant {
				t.Errorf("dominant = %q, want %q", dom, tt.dominant)
			}
			// Compute writes no sentence.
			if d.ScopeExplanation != "" || d.OutcomeExplanation != "" || d.Summary != "" ||
				(d.Memory != nil && d.Memory.Explanation != "") || (d.Victim != nil && d.Victim.Explanation != "") {
				t.Errorf("Compute wrote sentences: %+v", d)
			}
		})
	}
}

// TestDiagnoseComputeAPIRunning checks the figure the running-instance
// decision cites.
func TestDiagnoseComputeAPIRunning(t *testing.T) {
	r := fixtures.Memcg(fixtures.V2CtrPath, fixtures.V2CtrPath, 256, nil, []report.Task{fixtures.Task(4100, "app", 100, 900)}, fixtures.Victim(4100, "app", 900))
	r.Last.Wall = &killTime
	er := enrichWith(t, r, &report.Pod{UID: fixtures.PodUID, Name: "web", QoSClass: report.QoSBurstable},
		&report.Container{Name: "app", ID: fixtures.CID, State: "running", ObservedAt: new(killTime.Add(45 * time.Second))})
	d := diagnose.Compute(er, 0)
	if d.OutcomeReason != report.OutcomeReasonAPIRunningAfterKill || d.Facts.APIObservedAfter != 45*time.Second {
		t.Errorf("outcome reason %s after %s", d.OutcomeReason, d.Facts.APIObservedAfter)
	}
	if d.Facts.NoContainerLimit != true {
		t.Error("a named pod's container without a limit: NoContainerLimit")
	}
}

package diagnose_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oomscope/oomscope/enrich"
	"github.com/oomscope/oomscope/enrich/diagnose"
	"github.com/oomscope/oomscope/internal/fixtures"
	"github.com/oomscope/oomscope/internal/goldens"
	"github.com/oomscope/oomscope/report"
)

// parseCapture parses a file of ../testdata/captures.
func parseCapture(t *testing.T, name string) []report.Report {
	t.Helper()
	return goldens.Parse(t, filepath.Join("..", "..", "testdata", "captures", name))
}

// fakeLookup returns a fixed pod and container.
type fakeLookup struct {
	pod *report.Pod
	ctr *report.Container
}

func (f fakeLookup) Lookup(context.Context, string, string) (*report.Pod, *report.Container, error) {
	return f.pod, f.ctr, nil
}

// enrichWith enriches r from its cgroup paths and, when pod is set, a
// lookup returning pod and ctr.
func enrichWith(t *testing.T, r *report.Report, pod *report.Pod, ctr *report.Container) *report.Enriched {
	t.Helper()
	var opts []enrich.Option
	if pod != nil {
		opts = append(opts, enrich.WithPodLookup(fakeLookup{pod, ctr}))
	}
	e, err := enrich.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return e.Enrich(context.Background(), r)
}

func TestDiagnose(t *testing.T) {
	appTasks := []report.Task{fixtures.Task(4100, "app", 60000, 900), fixtures.Task(4200, "worker", 2000, 900)}
	tests := []struct {
		name        string
		report      func(t *testing.T) *report.Report
		pod         *report.Pod
		ctr         *report.Container
		wantScope   string
		wantOutcome string
		wantMain    *bool
		wantSummary string
		check       func(t *testing.T, d *report.Diagnosis)
	}{
		{
			name: "capture v1 pod limit, child killed",
			report: func(t *testing.T) *report.Report {
				return &parseCapture(t, "host-6.18-cgroupv1-memcg-pod-limit-3-kills.kmsg")[0]
			},
			wantScope: report.ScopePod, wantOutcome: report.OutcomeChildKilled, wantMain: new(false),
			wantSummary: `container 3f9a7c2d1e8b of pod 0b7e3c1e (Burstable): process 15901 "python3" killed by the POD limit 96Mi; usage 96Mi = 99% anon; child process — container keeps running`,
			check: func(t *testing.T, d *report.Diagnosis) {
				if d.Victim == nil || d.Victim.BiggestConsumer == nil || !*d.Victim.BiggestConsumer {
					t.Errorf("victim = %+v, want the biggest consumer", d.Victim)
				}
				// The capture's harness runs without a kubelet: adj 0 in a Burstable pod.
				if !d.Victim.QoSMismatch || d.Victim.ImpliedQoS != "not-kubernetes" {
					t.Errorf("victim qos = %q mismatch %v, want not-kubernetes mismatch", d.Victim.ImpliedQoS, d.Victim.QoSMismatch)
				}
				if !strings.Contains(d.OutcomeExplanation, "Pid 15898 (bash) has a lower pid") {
					t.Errorf("outcome explanation %q", d.OutcomeExplanation)
				}
			},
		},
		{
			name: "capture v1 pod limit, third kill",
			report: func(t *testing.T) *report.Report {
				return &parseCapture(t, "host-6.18-cgroupv1-memcg-pod-limit-3-kills.kmsg")[2]
			},
			wantScope: report.ScopePod, wantOutcome: report.OutcomeChildKilled, wantMain: new(false),
			wantSummary: `container 3f9a7c2d1e8b of pod 0b7e3c1e (Burstable): process 16068 "python3" killed by the POD limit 96Mi; usage 96Mi = 100% anon; child process — container keeps running`,
		},
		{
			name: "capture v2 not a kubernetes cgroup",
			report: func(t *testing.T) *report.Report {
				return &parseCapture(t, "qemu-debian-6.1-cgroupv2-memcg.kmsg")[0]
			},
			wantScope: report.ScopeOther, wantOutcome: report.OutcomeProcessKilled,
			wantSummary: `cgroup /kubepods.slice/pod1: process 85 "dd" killed by its cgroup's limit 32Mi; usage 32Mi = 100% anon`,
		},
		{
			name: "container limit, main process, with the API",
			report: func(t *testing.T) *report.Report {
				return fixtures.Memcg(fixtures.V2CtrPath, fixtures.V2CtrPath, 256, fixtures.Derived(256, 256, 230, 10, 6, 0, 10), appTasks, fixtures.Victim(4100, "app", 900))
			},
			pod:       &report.Pod{Namespace: "default", Name: "web-7d9", UID: fixtures.PodUID, QoSClass: report.QoSBurstable},
			ctr:       &report.Container{Name: "app", MemoryRequestBytes: new(int64(128 << 20)), MemoryLimitBytes: new(int64(256 << 20)), RestartCount: new(int32(3))},
			wantScope: report.ScopeContainer, wantOutcome: report.OutcomeContainerRestarts, wantMain: new(true),
			wantSummary: `container "app" of default/web-7d9 (Burstable): process 4100 "app" killed by the CONTAINER limit 256Mi; usage 256Mi = 90% anon; main process — container restarts`,
			check: func(t *testing.T, d *report.Diagnosis) {
				if !strings.Contains(d.OutcomeExplanation, "restartCount 3") {
					t.Errorf("outcome explanation %q lacks the restart count", d.OutcomeExplanation)
				}
				if d.Victim.QoSMismatch || d.Victim.ImpliedQoS != report.QoSBurstable {
					t.Errorf("victim = %+v, want Burstable without mismatch", d.Victim)
				}
				if ws := d.Memory.Breakdown.WorkingSetBytes; ws == nil || *ws != 250<<20 || d.Memory.MostlyReclaimable {
					t.Errorf("memory = %+v, want working set 250Mi, not mostly reclaimable", d.Memory)
				}
			},
		},
		{
			name: "container limit, child process, guaranteed cgroupfs",
			report: func(t *testing.T) *report.Report {
				return fixtures.Memcg(fixtures.GCtr, fixtures.GCtr, 512, fixtures.Derived(512, 512, 500, 0, 0, 0, 12),
					[]report.Task{fixtures.Task(4100, "sh", 300, -997), fixtures.Task(4150, "java", 120000, -997)}, fixtures.Victim(4150, "java", -997))
			},
			wantScope: report.ScopeContainer, wantOutcome: report.OutcomeChildKilled, wantMain: new(false),
			wantSummary: `container 3f9a7c2d1e8b of pod 0b7e3c1e (Guaranteed): process 4150 "java" killed by the CONTAINER limit 512Mi; usage 512Mi = 98% anon; child process — container keeps running`,
			check: func(t *testing.T, d *report.Diagnosis) {
				if d.Victim.QoSMismatch || d.Victim.ExpectedOOMScoreAdj == nil || *d.Victim.ExpectedOOMScoreAdj != -997 {
					t.Errorf("victim = %+v, want expected -997, no mismatch", d.Victim)
				}
			},
		},
		{
			name: "pod limit, pause process killed",
			report: func(t *testing.T) *report.Report {
				return fixtures.Memcg(fixtures.BEPod, fixtures.BEPod, 64, fixtures.Derived(64, 64, 60, 0, 0, 0, 4),
					[]report.Task{fixtures.Task(900, "pause", 100, -998)}, fixtures.Victim(900, "pause", -998))
			},
			wantScope: report.ScopePod, wantOutcome: report.OutcomeSandboxKilled, wantMain: new(true),
			wantSummary: `pod 0b7e3c1e (BestEffort): process 900 "pause" killed by the POD limit 64Mi; usage 64Mi = 94% anon; pause process — pod sandbox restarts`,
		},
		{
			name: "pod limit, main process of the only container besides pause",
			report: func(t *testing.T) *report.Report {
				return fixtures.Memcg(fixtures.BEPod, fixtures.BECtr, 64, fixtures.Derived(64, 64, 60, 0, 0, 0, 4),
					[]report.Task{fixtures.Task(900, "pause", 100, -998), fixtures.Task(950, "nginx", 15000, 1000)}, fixtures.Victim(950, "nginx", 1000))
			},
			wantScope: report.ScopePod, wantOutcome: report.OutcomeContainerRestarts, wantMain: new(true),
			wantSummary: `container 3f9a7c2d1e8b of pod 0b7e3c1e (BestEffort): process 950 "nginx" killed by the POD limit 64Mi; usage 64Mi = 94% anon; main process — container restarts`,
		},
		{
			name: "victim not the biggest: oom_score_adj",
			report: func(t *testing.T) *report.Report {
				return fixtures.Memcg("/kubepods", fixtures.BECtr, 7168, fixtures.Derived(7168, 7168, 7000, 0, 0, 0, 168),
					[]report.Task{fixtures.Task(300, "db", 1500000, -997), fixtures.Task(950, "nginx", 20000, 1000)}, fixtures.Victim(950, "nginx", 1000))
			},
			wantScope: report.ScopeKubepods, wantOutcome: report.OutcomeUnknown,
			wantSummary: `container 3f9a7c2d1e8b of pod 0b7e3c1e (BestEffort): process 950 "nginx" killed by the KUBEPODS (node allocatable) limit 7Gi; usage 7Gi = 98% anon; main or child process unknown`,
			check: func(t *testing.T, d *report.Diagnosis) {
				v := d.Victim
				if v.BiggestConsumer == nil || *v.BiggestConsumer || v.Biggest == nil || v.Biggest.PID != 300 {
					t.Fatalf("victim = %+v, want not the biggest, biggest pid 300", v)
				}
				if !strings.Contains(v.Explanation, "oom_score_adj 1000 outweighs the bigger task's -997") {
					t.Errorf("explanation %q", v.Explanation)
				}
			},
		},
		{
			name: "qos mismatch: guaranteed pod, adj 1000",
			report: func(t *testing.T) *report.Report {
				return fixtures.Memcg(fixtures.GCtr, fixtures.GCtr, 128, fixtures.Derived(128, 128, 120, 0, 0, 0, 8),
					[]report.Task{fixtures.Task(10, "app", 30000, 1000)}, fixtures.Victim(10, "app", 1000))
			},
			wantScope: report.ScopeContainer, wantOutcome: report.OutcomeContainerRestarts, wantMain: new(true),
			wantSummary: `container 3f9a7c2d1e8b of pod 0b7e3c1e (Guaranteed): process 10 "app" killed by the CONTAINER limit 128Mi; usage 128Mi = 94% anon; main process — container restarts`,
			check: func(t *testing.T, d *report.Diagnosis) {
				if !d.Victim.QoSMismatch || !strings.Contains(d.Victim.Explanation, "does not fit the pod's Guaranteed QoS class (the kubelet sets -997)") {
					t.Errorf("victim = %+v, want a mismatch", d.Victim)
				}
			},
		},
		{
			name: "mostly reclaimable cache",
			report: func(t *testing.T) *report.Report {
				return fixtures.Memcg(fixtures.V2CtrPath, fixtures.V2CtrPath, 1024, fixtures.Derived(1024, 1024, 200, 300, 500, 0, 24),
					[]report.Task{fixtures.Task(7, "backup", 50000, 500)}, fixtures.Victim(7, "backup", 500))
			},
			wantScope: report.ScopeContainer, wantOutcome: report.OutcomeContainerRestarts, wantMain: new(true),
			wantSummary: `container 3f9a7c2d1e8b of pod 0b7e3c1e (Burstable): process 7 "backup" killed by the CONTAINER limit 1Gi; usage 1Gi = 78% page cache; main process — container restarts`,
			check: func(t *testing.T, d *report.Diagnosis) {
				if !d.Memory.MostlyReclaimable || *d.Memory.ReclaimableBytes != 800<<20 || !strings.Contains(d.Memory.Explanation, "mostly reclaimable page cache") {
					t.Errorf("memory = %+v", d.Memory)
				}
			},
		},
		{
			name: "memory.oom.group",
			report: func(t *testing.T) *report.Report {
				r := fixtures.Memcg(fixtures.V2CtrPath, fixtures.V2CtrPath, 256, fixtures.Derived(256, 256, 250, 0, 0, 0, 6),
					[]report.Task{fixtures.Task(50, "nginx", 100, 900), fixtures.Task(51, "nginx", 30000, 900), fixtures.Task(52, "nginx", 30000, 900)},
					fixtures.Victim(51, "nginx", 900), fixtures.Victim(50, "nginx", 900), fixtures.Victim(52, "nginx", 900))
				r.Victims[1].GroupMember, r.Victims[2].GroupMember = true, true
				r.OOMGroup = fixtures.V2CtrPath
				return r
			},
			wantScope: report.ScopeContainer, wantOutcome: report.OutcomeChildKilled, wantMain: new(false),
			wantSummary: `container 3f9a7c2d1e8b of pod 0b7e3c1e (Burstable): process 51 "nginx" and 2 more (memory.oom.group) killed by the CONTAINER limit 256Mi; usage 256Mi = 98% anon; child process — container keeps running`,
			check: func(t *testing.T, d *report.Diagnosis) {
				if d.OOMGroup == nil || d.OOMGroup.Killed != 3 || d.OOMGroup.Cgroup != fixtures.V2CtrPath {
					t.Errorf("oom group = %+v", d.OOMGroup)
				}
			},
		},
		{
			name: "global OOM",
			report: func(t *testing.T) *report.Report {
				return &report.Report{Kind: report.KindGlobal, Constraint: "CONSTRAINT_NONE", OOMMemcg: "/", TaskMemcg: fixtures.GCtr,
					Derived: fixtures.Derived(4096, 4096, 3900, 0, 0, 0, 196), Tasks: appTasks, TasksTotal: 2, Victims: []report.Victim{fixtures.Victim(4100, "app", -997)}}
			},
			wantScope: report.ScopeNode, wantOutcome: report.OutcomeUnknown,
			wantSummary: `container 3f9a7c2d1e8b of pod 0b7e3c1e (Guaranteed): process 4100 "app" killed by NODE memory (global OOM); usage 4Gi = 95% anon; main or child process unknown`,
			check: func(t *testing.T, d *report.Diagnosis) {
				if d.LimitBytes != nil {
					t.Errorf("limit = %d, want none for a global OOM", *d.LimitBytes)
				}
			},
		},
		{
			name: "cpuset",
			report: func(t *testing.T) *report.Report {
				return &report.Report{Kind: report.KindCpuset, Constraint: "CONSTRAINT_CPUSET", MemsAllowed: "1", TaskMemcg: "/system.slice/etcd.service",
					Victims: []report.Victim{fixtures.Victim(77, "etcd", 0)}}
			},
			wantScope: report.ScopeCpuset, wantOutcome: report.OutcomeProcessKilled,
			wantSummary: `unit etcd.service: process 77 "etcd" killed by its CPUSET's memory nodes`,
		},
		{
			name: "mempolicy",
			report: func(t *testing.T) *report.Report {
				return &report.Report{Kind: report.KindMempolicy, Constraint: "CONSTRAINT_MEMORY_POLICY", Nodemask: "0",
					Victims: []report.Victim{fixtures.Victim(78, "numa", 0)}}
			},
			wantScope: report.ScopeMempolicy, wantOutcome: report.OutcomeUnknown,
			wantSummary: `process 78 "numa" killed by its MEMPOLICY's memory nodes`,
		},
		{
			name: "system service limit",
			report: func(t *testing.T) *report.Report {
				return fixtures.Memcg("/system.slice/kubelet.service", "/system.slice/kubelet.service", 1024, nil,
					nil, fixtures.Victim(800, "kubelet", -999))
			},
			wantScope: report.ScopeSystemService, wantOutcome: report.OutcomeProcessKilled,
			wantSummary: `unit kubelet.service: process 800 "kubelet" killed by the limit 1Gi of SERVICE kubelet.service`,
			check: func(t *testing.T, d *report.Diagnosis) {
				if d.Victim.ImpliedQoS != "node-daemon" {
					t.Errorf("implied qos %q", d.Victim.ImpliedQoS)
				}
			},
		},
		{
			name: "no task table",
			report: func(t *testing.T) *report.Report {
				return fixtures.Memcg(fixtures.V2CtrPath, fixtures.V2CtrPath, 256, nil, nil, fixtures.Victim(4100, "app", 900))
			},
			wantScope: report.ScopeContainer, wantOutcome: report.OutcomeUnknown,
			wantSummary: `container 3f9a7c2d1e8b of pod 0b7e3c1e (Burstable): process 4100 "app" killed by the CONTAINER limit 256Mi; main or child process unknown`,
		},
		{
			name: "no killable process",
			report: func(t *testing.T) *report.Report {
				r := fixtures.Memcg(fixtures.V2PodPath, "", 256, nil, nil)
				r.NoKillable = true
				return r
			},
			wantScope: report.ScopePod, wantOutcome: report.OutcomeNothingKilled,
			wantSummary: `pod 0b7e3c1e (Burstable): nothing killable, hit by the POD limit 256Mi`,
		},
		{
			name: "victim already exiting",
			report: func(t *testing.T) *report.Report {
				v := fixtures.Victim(4100, "app", 900)
				v.Exiting = true
				return fixtures.Memcg(fixtures.V2CtrPath, fixtures.V2CtrPath, 256, nil, nil, v)
			},
			wantScope: report.ScopeContainer, wantOutcome: report.OutcomeNothingKilled,
			wantSummary: `container 3f9a7c2d1e8b of pod 0b7e3c1e (Burstable): process 4100 "app" already exiting, nothing killed, hit by the CONTAINER limit 256Mi`,
		},
		{
			name: "old kernel: limiting cgroup from the stats block",
			report: func(t *testing.T) *report.Report {
				r := fixtures.Memcg("", fixtures.GCtr, 128, nil, nil, fixtures.Victim(5, "x", -997))
				r.MemcgStats = []report.MemcgStats{{Path: fixtures.GPod}, {Path: fixtures.GCtr}}
				return r
			},
			wantScope: report.ScopePod, wantOutcome: report.OutcomeUnknown,
			wantSummary: `container 3f9a7c2d1e8b of pod 0b7e3c1e (Guaranteed): process 5 "x" killed by the POD limit 128Mi; main or child process unknown`,
		},
		{
			name: "docker container outside kubernetes",
			report: func(t *testing.T) *report.Report {
				p := "/system.slice/docker-" + fixtures.CID + ".scope"
				return fixtures.Memcg(p, p, 64, nil, []report.Task{fixtures.Task(3, "redis", 16000, 0)}, fixtures.Victim(3, "redis", 0))
			},
			wantScope: report.ScopeContainer, wantOutcome: report.OutcomeContainerRestarts, wantMain: new(true),
			wantSummary: `container 3f9a7c2d1e8b (docker): process 3 "redis" killed by the CONTAINER limit 64Mi; main process — container restarts`,
		},
		{
			// The task table says child (pid 4100 is lower), the API says
			// the instance terminated OOMKilled: the API wins.
			name: "API: instance terminated OOMKilled",
			report: func(t *testing.T) *report.Report {
				return fixtures.Memcg(fixtures.V2CtrPath, fixtures.V2CtrPath, 256, fixtures.Derived(256, 256, 230, 10, 6, 0, 10), appTasks, fixtures.Victim(4200, "worker", 900))
			},
			pod:       &report.Pod{Namespace: "default", Name: "web-7d9", UID: fixtures.PodUID, QoSClass: report.QoSBurstable},
			ctr:       &report.Container{Name: "app", ID: fixtures.CID, State: "terminated", Termination: &report.Termination{Reason: "OOMKilled", ExitCode: 137}},
			wantScope: report.ScopeContainer, wantOutcome: report.OutcomeContainerRestarts, wantMain: new(true),
			wantSummary: `container "app" of default/web-7d9 (Burstable): process 4200 "worker" killed by the CONTAINER limit 256Mi; usage 256Mi = 90% anon; main process — container restarts`,
			check: func(t *testing.T, d *report.Diagnosis) {
				if !strings.Contains(d.OutcomeExplanation, "terminated with reason OOMKilled (exit code 137)") {
					t.Errorf("outcome explanation %q", d.OutcomeExplanation)
				}
			},
		},
		{
			name: "API: instance terminated with another reason",
			report: func(t *testing.T) *report.Report {
				return fixtures.Memcg(fixtures.V2CtrPath, fixtures.V2CtrPath, 256, fixtures.Derived(256, 256, 230, 10, 6, 0, 10), appTasks, fixtures.Victim(4200, "worker", 900))
			},
			pod:       &report.Pod{Namespace: "default", Name: "web-7d9", UID: fixtures.PodUID, QoSClass: report.QoSBurstable},
			ctr:       &report.Container{Name: "app", ID: fixtures.CID, State: "terminated", Termination: &report.Termination{Reason: "Error", ExitCode: 1}},
			wantScope: report.ScopeContainer, wantOutcome: report.OutcomeContainerRestarts, wantMain: new(false),
			wantSummary: `container "app" of default/web-7d9 (Burstable): process 4200 "worker" killed by the CONTAINER limit 256Mi; usage 256Mi = 90% anon; child process, then the main process exited — container restarts`,
		},
		{
			// Table says main (4100 is the lowest), but the API saw the
			// same instance running 30 s after the kill.
			name: "API: instance still running well after the kill",
			report: func(t *testing.T) *report.Report {
				r := fixtures.Memcg(fixtures.V2CtrPath, fixtures.V2CtrPath, 256, fixtures.Derived(256, 256, 230, 10, 6, 0, 10), appTasks, fixtures.Victim(4100, "app", 900))
				r.Last.Wall = &killTime
				return r
			},
			pod:       &report.Pod{Namespace: "default", Name: "web-7d9", UID: fixtures.PodUID, QoSClass: report.QoSBurstable},
			ctr:       &report.Container{Name: "app", ID: fixtures.CID, State: "running", ObservedAt: new(killTime.Add(30 * time.Second))},
			wantScope: report.ScopeContainer, wantOutcome: report.OutcomeChildKilled, wantMain: new(false),
			wantSummary: `container "app" of default/web-7d9 (Burstable): process 4100 "app" killed by the CONTAINER limit 256Mi; usage 256Mi = 90% anon; child process — container keeps running`,
			check: func(t *testing.T, d *report.Diagnosis) {
				if !strings.Contains(d.OutcomeExplanation, "still running 30s after the kill") {
					t.Errorf("outcome explanation %q", d.OutcomeExplanation)
				}
			},
		},
		{
			// Observed 2 s after the kill: too early, the task table decides.
			name: "API: running but observed too early",
			report: func(t *testing.T) *report.Report {
				r := fixtures.Memcg(fixtures.V2CtrPath, fixtures.V2CtrPath, 256, fixtures.Derived(256, 256, 230, 10, 6, 0, 10), appTasks, fixtures.Victim(4100, "app", 900))
				r.Last.Wall = &killTime
				return r
			},
			pod:       &report.Pod{Namespace: "default", Name: "web-7d9", UID: fixtures.PodUID, QoSClass: report.QoSBurstable},
			ctr:       &report.Container{Name: "app", ID: fixtures.CID, State: "running", ObservedAt: new(killTime.Add(2 * time.Second))},
			wantScope: report.ScopeContainer, wantOutcome: report.OutcomeContainerRestarts, wantMain: new(true),
			wantSummary: `container "app" of default/web-7d9 (Burstable): process 4100 "app" killed by the CONTAINER limit 256Mi; usage 256Mi = 90% anon; main process — container restarts`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			er := enrichWith(t, tt.report(t), tt.pod, tt.ctr)
			d := er.Diagnosis
			if d == nil {
				t.Fatal("no diagnosis")
			}
			if d.Scope != tt.wantScope || d.Outcome != tt.wantOutcome {
				t.Errorf("scope, outcome = %s, %s; want %s, %s", d.Scope, d.Outcome, tt.wantScope, tt.wantOutcome)
			}
			if (d.MainProcessKilled == nil) != (tt.wantMain == nil) || (d.MainProcessKilled != nil && *d.MainProcessKilled != *tt.wantMain) {
				t.Errorf("main process killed = %v, want %v", fmtBool(d.MainProcessKilled), fmtBool(tt.wantMain))
			}
			if d.Summary != tt.wantSummary {
				t.Errorf("summary\n got %s\nwant %s", d.Summary, tt.wantSummary)
			}
			for name, s := range map[string]string{"scope": d.ScopeExplanation, "outcome": d.OutcomeExplanation} {
				if s == "" || !strings.HasSuffix(s, ".") || strings.Count(s, ". ") > 0 {
					t.Errorf("%s explanation is not one sentence: %q", name, s)
				}
			}
			if tt.check != nil {
				tt.check(t, d)
			}
		})
	}
}

// killTime is the wall time of the API test cases' kill.
var killTime = time.Date(2026, 11, 26, 23, 0, 0, 0, time.UTC)

func fmtBool(b *bool) string {
	if b == nil {
		return "nil"
	}
	if *b {
		return "true"
	}
	return "false"
}

func TestBurstableOOMScoreAdj(t *testing.T) {
	const gi = int64(1 << 30)
	tests := []struct {
		req, capacity int64
		want          int
	}{
		{gi, 8 * gi, 875},
		{0, 8 * gi, 999},    // 1000 is BestEffort's: capped at 999
		{8 * gi, 8 * gi, 3}, // floor: 1000 + Guaranteed's -997
		{16 * gi, 8 * gi, 3},
		{gi * 998 / 1000 * 8, 8 * gi, 3}, // 1000 - 998 = 2 is below the floor
		{gi, 0, 999},
	}
	for _, tt := range tests {
		if got := diagnose.BurstableOOMScoreAdj(tt.req, tt.capacity); got != tt.want {
			t.Errorf("BurstableOOMScoreAdj(%d, %d) = %d, want %d", tt.req, tt.capacity, got, tt.want)
		}
	}
}

func TestDiagnoseBurstableExpectation(t *testing.T) {
	r := fixtures.Memcg(fixtures.V2CtrPath, fixtures.V2CtrPath, 256, nil, []report.Task{fixtures.Task(1, "app", 100, 600)}, fixtures.Victim(1, "app", 600))
	er := enrichWith(t, r, &report.Pod{UID: fixtures.PodUID, QoSClass: report.QoSBurstable}, &report.Container{Name: "app", MemoryRequestBytes: new(int64(1 << 30))})
	d := diagnose.Diagnose(er, 8<<30)
	if d.Victim.ExpectedOOMScoreAdj == nil || *d.Victim.ExpectedOOMScoreAdj != 875 {
		t.Errorf("expected adj = %v, want 875", d.Victim.ExpectedOOMScoreAdj)
	}
	if d.Victim.QoSMismatch {
		t.Error("600 is Burstable: no mismatch")
	}
}

func TestQuantity(t *testing.T) {
	for in, want := range map[uint64]string{0: "0", 1023: "1023", 1024: "1Ki", 100663296: "96Mi", 100651008: "96.0Mi", 1536 << 20: "1.5Gi", 7 << 30: "7Gi"} {
		if got := diagnose.Quantity(in); got != want {
			t.Errorf("Quantity(%d) = %q, want %q", in, got, want)
		}
	}
}

func TestDiagnoseNil(t *testing.T) {
	if d := diagnose.Diagnose(nil, 0); d.Scope != report.ScopeOther || d.Summary == "" {
		t.Errorf("Diagnose(nil) = %+v", d)
	}
}

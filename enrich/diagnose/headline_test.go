package diagnose_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/oomscope/oomscope/enrich"
	"github.com/oomscope/oomscope/enrich/diagnose"
	"github.com/oomscope/oomscope/internal/fixtures"
	"github.com/oomscope/oomscope/report"
)

func TestDiagnoseHeadline(t *testing.T) {
	appTasks := []report.Task{fixtures.Task(4100, "app", 60000, 900), fixtures.Task(4200, "worker", 2000, 900)}
	tests := []struct {
		name   string
		report func(t *testing.T) *report.Report
		pod    *report.Pod
		ctr    *report.Container
		want   string
	}{
		{"capture pod limit, child", func(t *testing.T) *report.Report {
			return &parseCapture(t, "host-6.18-cgroupv1-memcg-pod-limit-3-kills.kmsg")[0]
		}, nil, nil, "killed python3 (pid 15901); child process, container keeps running; pod limit 96Mi; usage 96Mi = 99% anon; pod 0b7e3c1e container 3f9a7c2d1e8b"},
		{"container, main, with the API", func(t *testing.T) *report.Report {
			return fixtures.Memcg(fixtures.V2CtrPath, fixtures.V2CtrPath, 256, fixtures.Derived(256, 256, 230, 10, 6, 0, 10), appTasks, fixtures.Victim(4100, "app", 900))
		}, &report.Pod{Namespace: "default", Name: "web-7d9", UID: fixtures.PodUID, QoSClass: report.QoSBurstable}, &report.Container{Name: "app"},
			`killed app (pid 4100); main process, container restarts; container limit 256Mi; usage 256Mi = 90% anon; pod default/web-7d9 container "app"`},
		{"system service", func(t *testing.T) *report.Report {
			return fixtures.Memcg("/system.slice/kubelet.service", "/system.slice/kubelet.service", 1024, nil, nil, fixtures.Victim(800, "kubelet", -999))
		}, nil, nil, "killed kubelet (pid 800); not in a container; service limit 1Gi of kubelet.service; unit kubelet.service"},
		{"no killable", func(t *testing.T) *report.Report {
			r := fixtures.Memcg(fixtures.V2PodPath, "", 256, nil, nil)
			r.NoKillable = true
			return r
		}, nil, nil, "nothing killed: no killable process; pod limit 256Mi; pod 0b7e3c1e"},
		{"global", func(t *testing.T) *report.Report {
			return &report.Report{Kind: report.KindGlobal, Derived: fixtures.Derived(4096, 4096, 3900, 0, 0, 0, 196), Victims: []report.Victim{fixtures.Victim(9, "x", 0)}}
		}, nil, nil, "killed x (pid 9); node memory (global OOM); usage 4Gi = 95% anon"},
		{"hostile comm and names", func(t *testing.T) *report.Report {
			return fixtures.Memcg(fixtures.V2CtrPath, fixtures.V2CtrPath, 256, nil, nil, fixtures.Victim(5, "ev\x1b[2Jil\n\u202e", 900))
		}, &report.Pod{Namespace: "ns", Name: "a\u2066b\r\n", UID: fixtures.PodUID}, &report.Container{Name: strings.Repeat("\x00", 200)},
			`killed ev\x1b[2Jil\n\u202e (pid 5); main or child process unknown; container limit 256Mi; pod ns/a\u2066b\r\n container "` + strings.Repeat(`\x00`, 31) + `..."`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			er := enrichWith(t, tt.report(t), tt.pod, tt.ctr)
			got := diagnose.Headline(er)
			if got != tt.want {
				t.Errorf("headline\n got %s\nwant %s", got, tt.want)
			}
			if strings.ContainsAny(got, "\n\r\x1b\u202e\u2066\x00") {
				t.Errorf("headline %q has a raw control character", got)
			}
			// Without a diagnosis (or with one decoded from JSON) it computes its own.
			er.Diagnosis = nil
			if again := diagnose.Headline(er); again != got {
				t.Errorf("without a diagnosis: %s", again)
			}
		})
	}
	if got := diagnose.Headline(nil); got != "no report" {
		t.Errorf("Headline(nil) = %q", got)
	}
}

func ExampleHeadline() {
	r := fixtures.Memcg(fixtures.V2CtrPath, fixtures.V2CtrPath, 256, fixtures.Derived(256, 256, 230, 10, 6, 0, 10),
		[]report.Task{fixtures.Task(4100, "sh", 300, 900), fixtures.Task(4150, "java\x1b[31m", 60000, 900)},
		fixtures.Victim(4150, "java\x1b[31m", 900))
	en, err := enrich.New() // from the cgroup paths only
	if err != nil {
		panic(err)
	}
	fmt.Println(diagnose.Headline(en.Enrich(context.Background(), r)))
	// Output:
	// killed java\x1b[31m (pid 4150); child process, container keeps running; container limit 256Mi; usage 256Mi = 90% anon; pod 0b7e3c1e container 3f9a7c2d1e8b

}

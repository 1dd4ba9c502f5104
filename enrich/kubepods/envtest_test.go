package kubepods

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/oomscope/oomscope/enrich"
	"github.com/oomscope/oomscope/internal/envtestbin"
	"github.com/oomscope/oomscope/kmsg"
	"github.com/oomscope/oomscope/kube"
	"github.com/oomscope/oomscope/oomparse"
	"github.com/oomscope/oomscope/report"
)

// TestPodCacheEnvtest runs the pod cache against a real kube-apiserver and
// etcd (controller-runtime's envtest; no kubelet, scheduler or controller
// manager run, so the test creates the owner chain and the pod statuses
// itself). One control plane serves all subtests.
func TestPodCacheEnvtest(t *testing.T) {
	if testing.Short() {
		t.Skip("envtest: not in -short mode (make unit); make test runs it")
	}
	dir := envtestbin.Dir(t)
	ctrllog.SetLogger(logr.Discard())

	env := &envtest.Environment{
		BinaryAssetsDirectory:    dir,
		ControlPlaneStartTimeout: 3 * time.Minute,
		ControlPlaneStopTimeout:  time.Minute,
	}
	start := time.Now()
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start envtest control plane from %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stop envtest: %v", err)
		}
	})
	version := "?"
	if out, err := exec.Command(filepath.Join(dir, "kube-apiserver"), "--version").Output(); err == nil {
		version = strings.TrimSpace(string(out))
	}
	t.Logf("envtest control plane (%s) started in %v", version, time.Since(start).Round(time.Millisecond))

	client, err := kube.NewClientset(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	const ns = "oomscope-e2e"
	mustCreate := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("create %s: %v", what, err)
		}
	}
	_, err = client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	mustCreate("namespace", err)

	// Deployment → ReplicaSet → Pod, as the controllers would have made.
	tmpl := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/web:3"}}},
	}
	dep, err := client.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: tmpl,
		},
	}, metav1.CreateOptions{})
	mustCreate("deployment", err)
	rsTmpl := tmpl.DeepCopy()
	rsTmpl.Labels["pod-template-hash"] = "7d9f8b6c5d"
	rs, err := client.AppsV1().ReplicaSets(ns).Create(ctx, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Name:            "web-7d9f8b6c5d",
			Labels:          rsTmpl.Labels,
			OwnerReferences: []metav1.OwnerReference{ownerRef("apps/v1", "Deployment", dep.Name, dep.UID)},
		},
		Spec: appsv1.ReplicaSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: rsTmpl.Labels},
			Template: *rsTmpl,
		},
	}, metav1.CreateOptions{})
	mustCreate("replicaset", err)

	// CronJob → Job → Pod.
	jobTmpl := corev1.PodTemplateSpec{Spec: corev1.PodSpec{
		RestartPolicy: corev1.RestartPolicyNever,
		Containers:    []corev1.Container{{Name: "report", Image: "example.com/report:1"}},
	}}
	cj, err := client.BatchV1().CronJobs(ns).Create(ctx, &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: "report"},
		Spec: batchv1.CronJobSpec{
			Schedule:    "*/5 * * * *",
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: jobTmpl}},
		},
	}, metav1.CreateOptions{})
	mustCreate("cronjob", err)
	job, err := client.BatchV1().Jobs(ns).Create(ctx, &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name:            "report-29000000",
			OwnerReferences: []metav1.OwnerReference{ownerRef("batch/v1", "CronJob", cj.Name, cj.UID)},
		},
		Spec: batchv1.JobSpec{Template: jobTmpl},
	}, metav1.CreateOptions{})
	mustCreate("job", err)

	// createPod creates p and then sets its status, as the scheduler and
	// the kubelet would.
	createPod := func(p *corev1.Pod, st *corev1.PodStatus) *corev1.Pod {
		t.Helper()
		got, err := client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
		mustCreate("pod "+p.Name, err)
		if st == nil {
			return got
		}
		got.Status = *st
		got, err = client.CoreV1().Pods(ns).UpdateStatus(ctx, got, metav1.UpdateOptions{})
		if err != nil {
			t.Fatalf("update status of pod %s: %v", p.Name, err)
		}
		return got
	}

	webSpec := webPod(ns, "node-a", "")
	webSpec.Namespace = ""
	webSpec.OwnerReferences = []metav1.OwnerReference{ownerRef("apps/v1", "ReplicaSet", rs.Name, rs.UID)}
	webStatus := webStatus()
	web := createPod(webSpec, &webStatus)
	if web.Status.QOSClass != corev1.PodQOSBurstable {
		t.Fatalf("API server computed QoS %q for the web pod, want Burstable", web.Status.QOSClass)
	}

	jobPod := createPod(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:            "report-29000000-abcde",
			OwnerReferences: []metav1.OwnerReference{ownerRef("batch/v1", "Job", job.Name, job.UID)},
		},
		Spec: corev1.PodSpec{NodeName: "node-a", RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{Name: "report", Image: "example.com/report:1"}}},
	}, &corev1.PodStatus{QOSClass: corev1.PodQOSBestEffort, ContainerStatuses: []corev1.ContainerStatus{{
		Name: "report", Image: "example.com/report:1", ContainerID: "cri-o://" + cidDebug,
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}},
	}}})

	otherSpec := webPod(ns, "node-b", "")
	otherSpec.Namespace = ""
	otherSpec.Name = "web-7d9f8b6c5d-other"
	otherStatus := webStatus
	otherStatus.ContainerStatuses = []corev1.ContainerStatus{*webStatus.ContainerStatuses[0].DeepCopy()}
	otherStatus.ContainerStatuses[0].ContainerID = "containerd://" + cidLate + "0"
	otherStatus.ContainerStatuses[0].LastTerminationState = corev1.ContainerState{}
	otherStatus.InitContainerStatuses = nil
	other := createPod(otherSpec, &otherStatus)

	cache, err := NewPodCache(client, "node-a", WithPodLabelKeys("app"), WithPodMaxWait(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	cctx, ccancel := context.WithCancel(ctx)
	t.Cleanup(func() { ccancel(); <-cache.Done() })
	if err := cache.Start(cctx); err != nil {
		t.Fatal(err)
	}
	if !cache.WaitForSync(ctx) {
		t.Fatal("pod cache did not sync")
	}

	wantWeb := wantWebPod(ns, "node-a", web.UID)
	wantApp := &report.Container{
		Name: "app", ID: cidApp, Runtime: report.RuntimeContainerd, Image: "example.com/web:3", Kind: report.ContainerKindApp,
		MemoryRequestBytes: i64(64 * mi), MemoryLimitBytes: i64(128 * mi), RestartCount: i32(2),
		State: "running",
	}
	// The previous instance (lastState) is the one the OOM killed.
	wantAppPrev := *wantApp
	wantAppPrev.ID = cidAppPrev
	wantAppPrev.State = "terminated"
	wantAppPrev.Termination = &report.Termination{Reason: "OOMKilled", ExitCode: 137}
	check := func(t *testing.T, uid, cid string, wantPod *report.Pod, wantCtr *report.Container) {
		t.Helper()
		pod, ctr, err := cache.Lookup(ctx, uid, cid)
		if err != nil {
			t.Fatalf("Lookup(%q, %q): %v", uid, cid, err)
		}
		if d := cmp.Diff(wantPod, pod); d != "" {
			t.Errorf("Lookup(%q, %q) pod (-want +got):\n%s", uid, cid, d)
		}
		if d := cmp.Diff(wantCtr, ctr, ignoreInstanceState); d != "" {
			t.Errorf("Lookup(%q, %q) container (-want +got):\n%s", uid, cid, d)
		}
	}

	t.Run("kubeconfig file", func(t *testing.T) {
		// The --kubeconfig path: a file for the same API server.
		kc := filepath.Join(t.TempDir(), "kubeconfig")
		if err := os.WriteFile(kc, env.KubeConfig, 0o600); err != nil {
			t.Fatal(err)
		}
		kcfg, err := kube.LoadRESTConfig(kc)
		if err != nil || kcfg == nil {
			t.Fatalf("kube.LoadRESTConfig(%s) = %v, %v", kc, kcfg, err)
		}
		kclient, err := kube.NewClientset(kcfg)
		if err != nil {
			t.Fatal(err)
		}
		got, err := kclient.CoreV1().Pods(ns).Get(ctx, web.Name, metav1.GetOptions{})
		if err != nil || got.UID != web.UID {
			t.Fatalf("get pod through the kubeconfig client: %v", err)
		}

		// oomscope parse --kubeconfig: every node's pods.
		sctx, scancel := context.WithCancel(ctx)
		all, err := StartPodCache(sctx, kc, "")
		if err != nil || all == nil {
			t.Fatalf("StartPodCache = %v, %v", all, err)
		}
		defer func() { scancel(); <-all.Done() }()
		for _, p := range []*corev1.Pod{web, other} {
			pod, _, err := all.Lookup(ctx, string(p.UID), "")
			if err != nil || pod == nil || pod.Name != p.Name || pod.Node != p.Spec.NodeName {
				t.Errorf("cluster-wide Lookup(%s) = %+v, %v", p.Name, pod, err)
			}
		}
		if none, err := StartPodCache(ctx, kube.KubeconfigNone, ""); none != nil || err != nil {
			t.Errorf("StartPodCache(none) = %v, %v; want nil, nil", none, err)
		}
	})
	t.Run("by pod uid", func(t *testing.T) {
		check(t, string(web.UID), "", wantWeb, nil)
	})
	t.Run("by container id", func(t *testing.T) {
		check(t, "", cidApp, wantWeb, wantApp)
		check(t, string(web.UID), "containerd://"+cidApp, wantWeb, wantApp)
	})
	t.Run("by last terminated container id", func(t *testing.T) {
		check(t, string(web.UID), cidAppPrev, wantWeb, &wantAppPrev)
	})
	t.Run("instance state: current running, previous terminated OOMKilled", func(t *testing.T) {
		for _, tc := range []struct {
			cid  string
			want *report.Container
		}{{cidApp, wantApp}, {cidAppPrev, &wantAppPrev}} {
			_, ctr, err := cache.Lookup(ctx, string(web.UID), tc.cid)
			if err != nil || ctr == nil {
				t.Fatalf("Lookup(%s) = %v, %v", tc.cid, ctr, err)
			}
			got := clearTimes(t, ctr)
			if got.State != tc.want.State || cmp.Diff(tc.want.Termination, got.Termination) != "" {
				t.Errorf("Lookup(%s): state %q termination %+v; want %q %+v", tc.cid, got.State, got.Termination, tc.want.State, tc.want.Termination)
			}
		}
	})
	t.Run("init container", func(t *testing.T) {
		check(t, string(web.UID), cidInit, wantWeb, &report.Container{
			Name: "migrate", ID: cidInit, Runtime: report.RuntimeContainerd, Image: "example.com/migrate:1", Kind: report.ContainerKindInit,
			MemoryRequestBytes: i64(100 * mi), MemoryLimitBytes: i64(200 * mi), RestartCount: i32(0),
		})
	})
	t.Run("job of a cronjob", func(t *testing.T) {
		check(t, string(jobPod.UID), cidDebug, &report.Pod{
			Namespace: ns, Name: jobPod.Name, UID: string(jobPod.UID), QoSClass: "BestEffort", Node: "node-a",
			Owner: &report.Owner{Kind: "CronJob", Name: "report"},
		}, &report.Container{Name: "report", ID: cidDebug, Runtime: report.RuntimeCRIO, Image: "example.com/report:1", Kind: report.ContainerKindApp, RestartCount: i32(0)})
	})
	t.Run("pod of another node is not seen", func(t *testing.T) {
		sctx, scancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer scancel()
		pod, ctr, err := cache.Lookup(sctx, string(other.UID), "")
		if pod != nil || ctr != nil || err != nil {
			t.Errorf("Lookup of node-b's pod = %+v, %+v, %v; want nothing", pod, ctr, err)
		}
		if n := len(cache.informer.GetStore().List()); n != 2 {
			t.Errorf("informer holds %d pods, want node-a's 2", n)
		}
	})
	t.Run("container that appears later is waited for", func(t *testing.T) {
		late := createPod(&corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "late"},
			Spec: corev1.PodSpec{NodeName: "node-a", Containers: []corev1.Container{
				{Name: "c", Image: "example.com/late:1", Resources: memRes("10Mi", "10Mi")},
			}},
		}, nil)
		type result struct {
			pod *report.Pod
			ctr *report.Container
			err error
			el  time.Duration
		}
		res := make(chan result, 1)
		s := time.Now()
		go func() {
			pod, ctr, err := cache.Lookup(ctx, string(late.UID), cidLate)
			res <- result{pod, ctr, err, time.Since(s)}
		}()
		const delay = 700 * time.Millisecond
		time.Sleep(delay)
		// status.qosClass is immutable: keep what the API server computed.
		late.Status = corev1.PodStatus{QOSClass: late.Status.QOSClass, ContainerStatuses: []corev1.ContainerStatus{{
			Name: "c", Image: "example.com/late:1", ContainerID: "containerd://" + cidLate,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}},
		}}}
		if _, err := client.CoreV1().Pods(ns).UpdateStatus(ctx, late, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("update status: %v", err)
		}
		r := <-res
		if r.err != nil || r.pod == nil || r.ctr == nil {
			t.Fatalf("Lookup = %+v, %+v, %v after %v", r.pod, r.ctr, r.err, r.el)
		}
		if r.el < delay || r.el > 10*time.Second {
			t.Errorf("Lookup returned after %v, want between %v and the 10s wait", r.el, delay)
		}
		want := &report.Container{Name: "c", ID: cidLate, Runtime: report.RuntimeContainerd, Image: "example.com/late:1", Kind: report.ContainerKindApp,
			MemoryRequestBytes: i64(10 * mi), MemoryLimitBytes: i64(10 * mi), RestartCount: i32(0)}
		if d := cmp.Diff(want, r.ctr, ignoreInstanceState); d != "" {
			t.Errorf("container (-want +got):\n%s", d)
		}
		if r.pod.QoSClass != "Burstable" || r.pod.Name != "late" {
			t.Errorf("pod = %+v", r.pod)
		}
		t.Logf("container found %v after the lookup started (status written after %v)", r.el.Round(time.Millisecond), delay)
	})
	t.Run("deleted pod resolves from the tombstone", func(t *testing.T) {
		zero := int64(0)
		if err := client.CoreV1().Pods(ns).Delete(ctx, web.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
			t.Fatalf("delete pod: %v", err)
		}
		// Right after the deletion the pod resolves either live or from
		// the tombstone, never not at all; then from the tombstone.
		deadline := time.Now().Add(30 * time.Second)
		for {
			pod, ctr, err := cache.Lookup(ctx, string(web.UID), cidApp)
			if err != nil || pod == nil || ctr == nil {
				t.Fatalf("Lookup during deletion = %+v, %+v, %v", pod, ctr, err)
			}
			if pod.Deleted {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the deletion never reached the pod cache")
			}
			time.Sleep(20 * time.Millisecond)
		}
		if _, err := client.CoreV1().Pods(ns).Get(ctx, web.Name, metav1.GetOptions{}); err == nil {
			t.Fatal("pod still exists in the API server")
		}
		want := *wantWeb
		want.Deleted = true
		check(t, string(web.UID), cidApp, &want, wantApp)
		check(t, "", cidAppPrev, &want, &wantAppPrev)
		check(t, string(web.UID), "", &want, nil)
	})
	t.Run("reports from a real kernel capture are enriched", func(t *testing.T) {
		// A cgroup v1 pod-limit capture: three kills in container
		// 3f9a7c2d… of pod 0b7e3c1e-…; the API server picks our pod's UID,
		// so the capture is rewritten to it.
		const capture = "../../testdata/captures/host-6.18-cgroupv1-memcg-pod-limit-3-kills.kmsg"
		const capUID = "0b7e3c1e-5a42-4c1b-9d7a-2f1f8c3e9a11"
		const capCID = "3f9a7c2d1e8b4a6f9c0d2e4f6a8b0c1d3e5f7a9b1c3d5e7f9a1b3c5d7e9f1a2b"
		raw, err := os.ReadFile(capture)
		if err != nil {
			t.Fatal(err)
		}
		victim := createPod(&corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{
				Name:            "web-7d9f8b6c5d-oomed",
				Labels:          map[string]string{"app": "web", "pod-template-hash": "7d9f8b6c5d"},
				OwnerReferences: []metav1.OwnerReference{ownerRef("apps/v1", "ReplicaSet", rs.Name, rs.UID)},
			},
			Spec: corev1.PodSpec{NodeName: "node-a", Containers: []corev1.Container{
				{Name: "app", Image: "example.com/web:3", Resources: memRes("64Mi", "128Mi")},
			}},
		}, &corev1.PodStatus{QOSClass: corev1.PodQOSBurstable, ContainerStatuses: []corev1.ContainerStatus{{
			Name: "app", Image: "example.com/web:3", ContainerID: "containerd://" + capCID,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}},
		}}})
		text := strings.ReplaceAll(string(raw), capUID, string(victim.UID))
		reports, err := oomparse.ParseAll(kmsg.NewScanner(strings.NewReader(text)))
		if err != nil {
			t.Fatal(err)
		}
		if len(reports) != 3 {
			t.Fatalf("capture parsed into %d reports, want 3", len(reports))
		}
		enricher, err := enrich.New(enrich.WithPodLookup(cache))
		if err != nil {
			t.Fatal(err)
		}
		// enrichJSON enriches r and returns the keys the issue names.
		enrichJSON := func(r *report.Report) map[string]any {
			t.Helper()
			out := enricher.Enrich(ctx, r)
			b, err := json.Marshal(out)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			get := func(path string) any {
				var v any = m
				for _, k := range strings.Split(path, ".") {
					mm, _ := v.(map[string]any)
					v = mm[k]
				}
				return v
			}
			got := map[string]any{}
			for _, k := range []string{"pod.namespace", "pod.name", "pod.uid", "pod.qos_class", "pod.owner.kind", "pod.owner.name",
				"pod.deleted", "pod.memory_limit_bytes", "container.name", "container.id", "container.runtime", "container.image"} {
				got[k] = get(k)
			}
			srcs, _ := get("enrichment.sources").([]any)
			got["kubernetes-api source"] = slices.Contains(srcs, any(enrich.SourceKubernetesAPI))
			if errs := get("enrichment.errors"); errs != nil {
				t.Logf("enrichment errors: %v", errs)
			}
			return got
		}
		want := map[string]any{
			"pod.namespace": ns, "pod.name": "web-7d9f8b6c5d-oomed", "pod.uid": string(victim.UID), "pod.qos_class": "Burstable",
			"pod.owner.kind": "Deployment", "pod.owner.name": "web", "pod.deleted": nil, "pod.memory_limit_bytes": float64(128 * mi),
			"container.name": "app", "container.id": capCID, "container.runtime": "containerd", "container.image": "example.com/web:3",
			"kubernetes-api source": true,
		}
		if d := cmp.Diff(want, enrichJSON(&reports[0])); d != "" {
			t.Errorf("enriched report (-want +got):\n%s", d)
		}

		// The pod is deleted before the next report is enriched.
		zero := int64(0)
		if err := client.CoreV1().Pods(ns).Delete(ctx, victim.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
			t.Fatalf("delete pod: %v", err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			if p, _, _ := cache.Lookup(ctx, string(victim.UID), ""); p != nil && p.Deleted {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the deletion never reached the pod cache")
			}
			time.Sleep(20 * time.Millisecond)
		}
		want["pod.deleted"] = true
		for i := 1; i < 3; i++ {
			if d := cmp.Diff(want, enrichJSON(&reports[i])); d != "" {
				t.Errorf("report %d enriched after the deletion (-want +got):\n%s", i, d)
			}
		}
	})
}

// ignoreInstanceState leaves the instance's state and times out of a
// comparison (checked on their own where the test sets them).
var ignoreInstanceState = cmpopts.IgnoreFields(report.Container{}, "State", "StartedAt", "Termination", "ObservedAt")

// clearTimes checks that a looked-up container carries the times the API
// gives (when it was observed; when a running instance started, when a
// terminated one finished) and returns a copy without them, for comparing.
func clearTimes(t *testing.T, c *report.Container) *report.Container {
	t.Helper()
	if c == nil {
		return nil
	}
	cp := *c
	if cp.ObservedAt == nil || time.Since(*cp.ObservedAt) > time.Minute {
		t.Errorf("container %s: observed_at = %v, want about now", cp.ID, cp.ObservedAt)
	}
	if cp.State == "running" && cp.StartedAt == nil {
		t.Errorf("container %s: running without started_at", cp.ID)
	}
	if cp.Termination != nil {
		if cp.Termination.Finished == nil {
			t.Errorf("container %s: terminated without finished_at", cp.ID)
		}
		term := *cp.Termination
		term.Finished = nil
		cp.Termination = &term
	}
	cp.ObservedAt, cp.StartedAt = nil, nil
	return &cp
}

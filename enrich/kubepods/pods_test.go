package kubepods

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oomscope/oomscope/kube"
	"github.com/oomscope/oomscope/report"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	testingclock "k8s.io/utils/clock/testing"
)

// Container ids used by the pod tests (64 hex, as runtimes make them).
var (
	cidApp     = strings.Repeat("a1", 32)
	cidAppPrev = strings.Repeat("a0", 32)
	cidSide    = strings.Repeat("b1", 32)
	cidInit    = strings.Repeat("c1", 32)
	cidDebug   = strings.Repeat("d1", 32)
	cidLate    = strings.Repeat("e1", 32)
)

const mi = int64(1 << 20)

func i64(v int64) *int64 { return &v }
func i32(v int32) *int32 { return &v }

// memRes builds resource requirements with a memory request and limit
// ("" leaves one out).
func memRes(req, lim string) corev1.ResourceRequirements {
	r := corev1.ResourceRequirements{}
	if req != "" {
		r.Requests = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(req)}
	}
	if lim != "" {
		r.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(lim)}
	}
	return r
}

// ownerRef is a controller owner reference.
func ownerRef(apiVersion, kind, name string, uid types.UID) metav1.OwnerReference {
	t := true
	return metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: name, UID: uid, Controller: &t, BlockOwnerDeletion: &t}
}

// webPod is a Deployment-owned pod: app container "app" (64Mi/128Mi,
// restarted twice, last killed as cidAppPrev), sidecar "log" as a
// restartable init container (16Mi/32Mi), init container "migrate"
// (200Mi limit) and an ephemeral debug container.
func webPod(ns, node string, uid types.UID) *corev1.Pod {
	always := corev1.ContainerRestartPolicyAlways
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns,
			Name:      "web-7d9f8b6c5d-x2x4q",
			UID:       uid,
			Labels: map[string]string{
				"app":               "web",
				"pod-template-hash": "7d9f8b6c5d",
				"team":              "payments",
			},
			OwnerReferences: []metav1.OwnerReference{ownerRef("apps/v1", "ReplicaSet", "web-7d9f8b6c5d", "rs-uid")},
		},
		Spec: corev1.PodSpec{
			NodeName: node,
			InitContainers: []corev1.Container{
				{Name: "migrate", Image: "example.com/migrate:1", Resources: memRes("100Mi", "200Mi")},
				{Name: "log", Image: "example.com/log:2", Resources: memRes("16Mi", "32Mi"), RestartPolicy: &always},
			},
			Containers: []corev1.Container{
				{Name: "app", Image: "example.com/web:3", Resources: memRes("64Mi", "128Mi")},
			},
		},
	}
}

// webStatus is webPod's status once running.
func webStatus() corev1.PodStatus {
	started := metav1.NewTime(time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC))
	return corev1.PodStatus{
		Phase:    corev1.PodRunning,
		QOSClass: corev1.PodQOSBurstable,
		InitContainerStatuses: []corev1.ContainerStatus{
			{
				Name: "migrate", Image: "example.com/migrate:1", ImageID: "example.com/migrate@sha256:" + strings.Repeat("0", 64),
				ContainerID: "containerd://" + cidInit,
				State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
					ExitCode: 0, Reason: "Completed", StartedAt: started, FinishedAt: started, ContainerID: "containerd://" + cidInit,
				}},
			},
			{
				Name: "log", Image: "example.com/log:2", ImageID: "example.com/log@sha256:" + strings.Repeat("1", 64),
				ContainerID: "containerd://" + cidSide,
				State:       corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}},
				Ready:       true,
			},
		},
		ContainerStatuses: []corev1.ContainerStatus{{
			Name: "app", Image: "example.com/web:3", ImageID: "example.com/web@sha256:" + strings.Repeat("2", 64),
			ContainerID:  "containerd://" + cidApp,
			RestartCount: 2,
			State:        corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}},
			LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: 137, Reason: "OOMKilled", StartedAt: started, FinishedAt: started, ContainerID: "containerd://" + cidAppPrev,
			}},
			Ready: true,
		}},
	}
}

// wantWebPod is what Lookup reports for webPod.
func wantWebPod(ns, node string, uid types.UID) *report.Pod {
	return &report.Pod{
		Namespace: ns,
		Name:      "web-7d9f8b6c5d-x2x4q",
		UID:       string(uid),
		QoSClass:  "Burstable",
		Node:      node,
		Owner:     &report.Owner{Kind: "Deployment", Name: "web"},
		Labels:    map[string]string{"app": "web"},
		// app 64Mi + sidecar 16Mi = 80Mi vs init 100Mi → 100Mi;
		// limits 128+32=160Mi vs 200Mi → 200Mi.
		MemoryRequestBytes: i64(100 * mi),
		MemoryLimitBytes:   i64(200 * mi),
	}
}

func TestSplitContainerID(t *testing.T) {
	tests := []struct {
		in, runtime, id string
	}{
		{"containerd://" + cidApp, report.RuntimeContainerd, cidApp},
		{"cri-o://" + cidApp, report.RuntimeCRIO, cidApp},
		{"docker://" + cidApp, report.RuntimeDocker, cidApp},
		{"podman://" + cidApp, report.RuntimePodman, cidApp},
		{"katacontainers://abc", "katacontainers", "abc"},
		{strings.ToUpper(cidApp), "", cidApp},
		{" containerd://ABC ", report.RuntimeContainerd, "abc"},
		{"", "", ""},
	}
	for _, tt := range tests {
		rt, id := splitContainerID(tt.in)
		if rt != tt.runtime || id != tt.id {
			t.Errorf("splitContainerID(%q) = %q, %q; want %q, %q", tt.in, rt, id, tt.runtime, tt.id)
		}
	}
}

func TestPodMemory(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	ctr := func(req, lim string) corev1.Container {
		return corev1.Container{Name: "c", Resources: memRes(req, lim)}
	}
	sidecar := func(req, lim string) corev1.Container {
		c := ctr(req, lim)
		c.RestartPolicy = &always
		return c
	}
	tests := []struct {
		name     string
		spec     corev1.PodSpec
		req, lim *int64
	}{
		{"one container", corev1.PodSpec{Containers: []corev1.Container{ctr("64Mi", "128Mi")}}, i64(64 * mi), i64(128 * mi)},
		{"sum of app containers", corev1.PodSpec{Containers: []corev1.Container{ctr("64Mi", "128Mi"), ctr("1Mi", "2Mi")}}, i64(65 * mi), i64(130 * mi)},
		{"one without limit", corev1.PodSpec{Containers: []corev1.Container{ctr("64Mi", "128Mi"), ctr("1Mi", "")}}, i64(65 * mi), nil},
		{"best effort", corev1.PodSpec{Containers: []corev1.Container{ctr("", "")}}, nil, nil},
		{"no containers", corev1.PodSpec{}, nil, nil},
		{"init container larger", corev1.PodSpec{
			InitContainers: []corev1.Container{ctr("1Gi", "2Gi")},
			Containers:     []corev1.Container{ctr("64Mi", "128Mi")},
		}, i64(1024 * mi), i64(2048 * mi)},
		{"init container without limit: no pod limit", corev1.PodSpec{
			InitContainers: []corev1.Container{ctr("1Mi", "")},
			Containers:     []corev1.Container{ctr("64Mi", "128Mi")},
		}, i64(64 * mi), nil},
		{"sidecar adds, and counts before a later init container", corev1.PodSpec{
			InitContainers: []corev1.Container{sidecar("10Mi", "20Mi"), ctr("60Mi", "120Mi")},
			Containers:     []corev1.Container{ctr("64Mi", "128Mi")},
		}, i64(74 * mi), i64(148 * mi)},
		{"init after sidecar wins", corev1.PodSpec{
			InitContainers: []corev1.Container{sidecar("10Mi", "20Mi"), ctr("70Mi", "200Mi")},
			Containers:     []corev1.Container{ctr("50Mi", "100Mi")},
		}, i64(80 * mi), i64(220 * mi)},
		{"overhead", corev1.PodSpec{
			Overhead:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("10Mi")},
			Containers: []corev1.Container{ctr("64Mi", "128Mi")},
		}, i64(74 * mi), i64(138 * mi)},
		{"pod-level resources win", corev1.PodSpec{
			Resources:  &corev1.ResourceRequirements{Requests: memRes("1Gi", "").Requests, Limits: memRes("", "2Gi").Limits},
			Containers: []corev1.Container{ctr("", "")},
		}, i64(1024 * mi), i64(2048 * mi)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &corev1.Pod{Spec: tt.spec}
			if d := cmp.Diff(tt.req, podMemory(p, memRequest)); d != "" {
				t.Errorf("request (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tt.lim, podMemory(p, memLimit)); d != "" {
				t.Errorf("limit (-want +got):\n%s", d)
			}
		})
	}
}

// fakeCache starts a PodCache over a fake clientset holding objs.
func fakeCache(t *testing.T, objs []runtime.Object, opts ...PodCacheOption) (*PodCache, *fake.Clientset) {
	t.Helper()
	cs := fake.NewClientset(objs...)
	c, err := NewPodCache(cs, "node-a", opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		<-c.Done()
	})
	sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
	defer scancel()
	if !c.WaitForSync(sctx) {
		t.Fatal("pod cache did not sync")
	}
	return c, cs
}

// webObjects is webPod with its ReplicaSet and Deployment, a CronJob's pod
// and a static pod's mirror.
func webObjects() []runtime.Object {
	p := webPod("shop", "node-a", "11111111-2222-3333-4444-555555555555")
	p.Status = webStatus()
	p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug", Image: "busybox"}}}
	p.Status.EphemeralContainerStatuses = []corev1.ContainerStatus{{Name: "debug", Image: "busybox", ContainerID: "cri-o://" + cidDebug}}
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{
		Namespace: "shop", Name: "web-7d9f8b6c5d",
		OwnerReferences: []metav1.OwnerReference{ownerRef("apps/v1", "Deployment", "web", "dep-uid")},
	}}
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{
		Namespace: "shop", Name: "report-29000000",
		OwnerReferences: []metav1.OwnerReference{ownerRef("batch/v1", "CronJob", "report", "cj-uid")},
	}}
	jobPod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "shop", Name: "report-29000000-abcde", UID: "66666666-7777-8888-9999-000000000000",
			OwnerReferences: []metav1.OwnerReference{ownerRef("batch/v1", "Job", "report-29000000", "job-uid")},
		},
		Spec:   corev1.PodSpec{NodeName: "node-a", Containers: []corev1.Container{{Name: "report", Image: "report:1"}}},
		Status: corev1.PodStatus{QOSClass: corev1.PodQOSBestEffort},
	}
	mirror := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "kube-system", Name: "etcd-node-a", UID: "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
			Annotations:     map[string]string{mirrorPodAnnotation: "0123456789abcdef0123456789abcdef", "big": strings.Repeat("x", 100)},
			OwnerReferences: []metav1.OwnerReference{ownerRef("v1", "Node", "node-a", "node-uid")},
		},
		Spec:   corev1.PodSpec{NodeName: "node-a", Containers: []corev1.Container{{Name: "etcd", Image: "etcd:3", Resources: memRes("100Mi", "")}}},
		Status: corev1.PodStatus{QOSClass: corev1.PodQOSBurstable},
	}
	return []runtime.Object{p, rs, job, jobPod, mirror}
}

func TestPodCacheLookupFake(t *testing.T) {
	c, _ := fakeCache(t, webObjects(), WithPodMaxWait(50*time.Millisecond))
	const uid = "11111111-2222-3333-4444-555555555555"
	web := wantWebPod("shop", "node-a", uid)
	app := &report.Container{
		Name: "app", ID: cidApp, Runtime: report.RuntimeContainerd, Image: "example.com/web:3", Kind: report.ContainerKindApp,
		MemoryRequestBytes: i64(64 * mi), MemoryLimitBytes: i64(128 * mi), RestartCount: i32(2),
	}
	appPrev := *app
	appPrev.ID = cidAppPrev
	tests := []struct {
		name     string
		uid, cid string
		pod      *report.Pod
		ctr      *report.Container
	}{
		{"by uid", uid, "", web, nil},
		{"by uppercase uid", strings.ToUpper(uid), "", web, nil},
		{"by uid and container", uid, cidApp, web, app},
		{"by container only", "", cidApp, web, app},
		{"by prefixed container id", "", "containerd://" + cidApp, web, app},
		{"by last terminated container", uid, cidAppPrev, web, &appPrev},
		{"init container", uid, cidInit, web, &report.Container{
			Name: "migrate", ID: cidInit, Runtime: report.RuntimeContainerd, Image: "example.com/migrate:1", Kind: report.ContainerKindInit,
			MemoryRequestBytes: i64(100 * mi), MemoryLimitBytes: i64(200 * mi), RestartCount: i32(0),
		}},
		{"sidecar", uid, cidSide, web, &report.Container{
			Name: "log", ID: cidSide, Runtime: report.RuntimeContainerd, Image: "example.com/log:2", Kind: report.ContainerKindInit,
			MemoryRequestBytes: i64(16 * mi), MemoryLimitBytes: i64(32 * mi), RestartCount: i32(0),
		}},
		{"ephemeral", uid, cidDebug, web, &report.Container{
			Name: "debug", ID: cidDebug, Runtime: report.RuntimeCRIO, Image: "busybox", Kind: report.ContainerKindEphemeral, RestartCount: i32(0),
		}},
		{"unknown container of a known pod", uid, cidLate, web, nil},
		{"container of another pod", "66666666-7777-8888-9999-000000000000", cidApp, &report.Pod{
			Namespace: "shop", Name: "report-29000000-abcde", UID: "66666666-7777-8888-9999-000000000000",
			QoSClass: "BestEffort", Node: "node-a", Owner: &report.Owner{Kind: "CronJob", Name: "report"},
		}, nil},
		{"static pod by config hash", "0123456789ABCDEF0123456789abcdef", "", &report.Pod{
			Namespace: "kube-system", Name: "etcd-node-a", UID: "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
			QoSClass: "Burstable", Node: "node-a", Owner: &report.Owner{Kind: "Node", Name: "node-a"}, MemoryRequestBytes: i64(100 * mi),
		}, nil},
		{"unknown pod", "99999999-2222-3333-4444-555555555555", "", nil, nil},
		{"unknown container only", "", cidLate, nil, nil},
		{"nothing asked", "", "", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod, ctr, err := c.Lookup(context.Background(), tt.uid, tt.cid)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.pod, pod); d != "" {
				t.Errorf("pod (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tt.ctr, ctr, ignoreInstanceState); d != "" {
				t.Errorf("container (-want +got):\n%s", d)
			}
		})
	}

	// The transform kept only the mirror annotation.
	p := c.podByUID("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee")
	if d := cmp.Diff(map[string]string{mirrorPodAnnotation: "0123456789abcdef0123456789abcdef"}, p.Annotations); d != "" {
		t.Errorf("cached annotations (-want +got):\n%s", d)
	}
}

func TestPodCacheOwnerCachedAndFallback(t *testing.T) {
	objs := webObjects()
	c, cs := fakeCache(t, objs)
	countGets := func(resource string) int {
		n := 0
		for _, a := range cs.Actions() {
			if a.GetVerb() == "get" && a.GetResource().Resource == resource {
				n++
			}
		}
		return n
	}
	for range 3 {
		pod, _, err := c.Lookup(context.Background(), "11111111-2222-3333-4444-555555555555", "")
		if err != nil || pod == nil {
			t.Fatalf("Lookup = %v, %v", pod, err)
		}
		if d := cmp.Diff(&report.Owner{Kind: "Deployment", Name: "web"}, pod.Owner); d != "" {
			t.Errorf("owner (-want +got):\n%s", d)
		}
	}
	if n := countGets("replicasets"); n != 1 {
		t.Errorf("replicaset gets = %d, want 1 (cached)", n)
	}

	// ReplicaSet gone: derived from pod-template-hash, and the miss is
	// cached too.
	if err := cs.AppsV1().ReplicaSets("shop").Delete(context.Background(), "web-7d9f8b6c5d", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	c.owners.RemoveAll(func(any) bool { return true })
	for range 2 {
		pod, _, _ := c.Lookup(context.Background(), "11111111-2222-3333-4444-555555555555", "")
		if d := cmp.Diff(&report.Owner{Kind: "Deployment", Name: "web"}, pod.Owner); d != "" {
			t.Errorf("fallback owner (-want +got):\n%s", d)
		}
	}
	if n := countGets("replicasets"); n != 2 {
		t.Errorf("replicaset gets = %d, want 2", n)
	}

	// Forbidden Job lookup: the Job itself is reported.
	cs.PrependReactor("get", "jobs", func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, errForbidden("jobs")
	})
	c.owners.RemoveAll(func(any) bool { return true })
	pod, _, _ := c.Lookup(context.Background(), "66666666-7777-8888-9999-000000000000", "")
	if d := cmp.Diff(&report.Owner{Kind: "Job", Name: "report-29000000"}, pod.Owner); d != "" {
		t.Errorf("forbidden owner (-want +got):\n%s", d)
	}
}

func TestPodCacheTombstones(t *testing.T) {
	clk := testingclock.NewFakeClock(time.Now())
	objs := webObjects()
	c, _ := fakeCache(t, objs, WithPodTombstones(2, time.Minute), withPodClock(clk), WithPodMaxWait(0))
	web := objs[0].(*corev1.Pod)
	const uid = "11111111-2222-3333-4444-555555555555"

	// The informer's delete handler (a real deletion is in the envtest).
	if err := c.informer.GetStore().Delete(web); err != nil {
		t.Fatal(err)
	}
	c.onDelete(cacheDeleted(web))

	want := wantWebPod("shop", "node-a", uid)
	want.Deleted = true
	for _, cid := range []string{"", cidApp, cidAppPrev} {
		pod, ctr, err := c.Lookup(context.Background(), uid, cid)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(want, pod); d != "" {
			t.Errorf("tombstone pod for %q (-want +got):\n%s", cid, d)
		}
		if cid != "" && (ctr == nil || ctr.ID != cid || ctr.Name != "app") {
			t.Errorf("tombstone container for %q = %+v", cid, ctr)
		}
	}
	// By container id alone too.
	if pod, ctr, _ := c.Lookup(context.Background(), "", cidApp); pod == nil || !pod.Deleted || ctr == nil {
		t.Errorf("tombstone by container id = %+v, %+v", pod, ctr)
	}

	// TTL.
	clk.Step(61 * time.Second)
	if pod, ctr, err := c.Lookup(context.Background(), uid, cidApp); pod != nil || ctr != nil || err != nil {
		t.Errorf("after TTL: %+v, %+v, %v; want nothing", pod, ctr, err)
	}

	// Size: the oldest of three goes.
	for i := range 3 {
		p := webPod("shop", "node-a", types.UID(strings.Repeat(string(rune('a'+i)), 8)+"-0000-0000-0000-000000000000"))
		c.onDelete(p)
		clk.Step(time.Second)
	}
	for i, wantFound := range []bool{false, true, true} {
		pod, _, _ := c.Lookup(context.Background(), strings.Repeat(string(rune('a'+i)), 8)+"-0000-0000-0000-000000000000", "")
		if (pod != nil) != wantFound {
			t.Errorf("tombstone %d found = %v, want %v", i, pod != nil, wantFound)
		}
	}
}

// cacheDeleted wraps p the way an informer reports a deletion it missed.
func cacheDeleted(p *corev1.Pod) any {
	return cache.DeletedFinalStateUnknown{Key: p.Namespace + "/" + p.Name, Obj: p}
}

// errForbidden is the API's answer to a client without RBAC for resource.
func errForbidden(resource string) error {
	return apierrors.NewForbidden(schema.GroupResource{Resource: resource}, "x", errors.New("RBAC: access denied"))
}

func TestPodCacheRetiredContainer(t *testing.T) {
	objs := webObjects()
	c, _ := fakeCache(t, objs, WithPodMaxWait(0))
	old := objs[0].(*corev1.Pod)
	old.ResourceVersion = "1"
	// The app container restarted again: cidAppPrev leaves the status.
	cur := old.DeepCopy()
	cur.ResourceVersion = "2"
	cur.Status.ContainerStatuses[0].RestartCount = 3
	cur.Status.ContainerStatuses[0].LastTerminationState.Terminated.ContainerID = "containerd://" + cidApp
	cur.Status.ContainerStatuses[0].ContainerID = "containerd://" + cidLate
	if err := c.informer.GetStore().Update(cur); err != nil {
		t.Fatal(err)
	}
	c.onUpdate(old, cur)

	pod, ctr, err := c.Lookup(context.Background(), "11111111-2222-3333-4444-555555555555", cidAppPrev)
	if err != nil {
		t.Fatal(err)
	}
	if pod == nil || pod.Deleted || ctr == nil {
		t.Fatalf("retired container: %+v, %+v", pod, ctr)
	}
	if ctr.ID != cidAppPrev || ctr.Name != "app" || *ctr.RestartCount != 2 {
		t.Errorf("retired container = %+v (restarts %d)", ctr, *ctr.RestartCount)
	}
	// The current id resolves with the new count.
	_, ctr, _ = c.Lookup(context.Background(), "", cidLate)
	if ctr == nil || *ctr.RestartCount != 3 {
		t.Errorf("current container = %+v", ctr)
	}
}

func TestPodCacheLookupWaitAndErrors(t *testing.T) {
	cs := fake.NewClientset()
	c, err := NewPodCache(cs, "node-a", WithPodMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Lookup(context.Background(), "x", ""); err == nil {
		t.Error("Lookup before Start: no error")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); <-c.Done() }()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err == nil {
		t.Error("second Start: no error")
	}
	if !c.WaitForSync(ctx) {
		t.Fatal("no sync")
	}

	start := time.Now()
	pod, ctr, err := c.Lookup(context.Background(), "11111111-2222-3333-4444-555555555555", cidApp)
	if el := time.Since(start); pod != nil || ctr != nil || err != nil || el < 200*time.Millisecond || el > 5*time.Second {
		t.Errorf("unknown pod: %v, %v, %v after %v; want nothing after the 200ms wait", pod, ctr, err, el)
	}
	// A deadline shorter than the wait wins.
	dctx, dcancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer dcancel()
	start = time.Now()
	if _, _, err := c.Lookup(dctx, "11111111-2222-3333-4444-555555555555", ""); err != nil || time.Since(start) > 150*time.Millisecond {
		t.Errorf("ctx deadline: err %v after %v", err, time.Since(start))
	}
	// No pod UID: a short wait only.
	long, err := NewPodCache(cs, "node-a", WithPodMaxWait(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	lctx, lcancel := context.WithCancel(context.Background())
	defer func() { lcancel(); <-long.Done() }()
	if err := long.Start(lctx); err != nil || !long.WaitForSync(lctx) {
		t.Fatalf("start: %v", err)
	}
	start = time.Now()
	if _, _, err := long.Lookup(context.Background(), "", cidApp); err != nil ||
		time.Since(start) < containerOnlyWait || time.Since(start) > containerOnlyWait+5*time.Second {
		t.Errorf("container only: err %v after %v, want the %v wait", err, time.Since(start), containerOnlyWait)
	}

	// Not synced in time is an error.
	unsynced, err := NewPodCache(fake.NewClientset(), "node-a", WithPodMaxWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	unsynced.started = true // never runs
	if _, _, err := unsynced.Lookup(context.Background(), "x", ""); err == nil || !strings.Contains(err.Error(), "not synced") {
		t.Errorf("unsynced Lookup err = %v", err)
	}

	if _, err := NewPodCache(nil, "n"); err == nil {
		t.Error("nil client: no error")
	}
	if _, err := NewPodCache(cs, "n", WithPodTombstones(0, time.Minute)); err == nil {
		t.Error("zero tombstones: no error")
	}
}

func TestLoadRESTConfig(t *testing.T) {
	dir := t.TempDir()
	kc := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kc, []byte(`apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:6443"}
users:
- name: u
  user: {token: abc}
contexts:
- name: x
  context: {cluster: c, user: u}
current-context: x
`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")

	tests := []struct {
		name     string
		path     string
		wantHost string
		wantErr  bool
	}{
		{"kubeconfig", kc, "https://127.0.0.1:6443", false},
		{"missing kubeconfig", filepath.Join(dir, "nope"), "", true},
		{"not in cluster", "", "", false},
		{"none", kube.KubeconfigNone, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := kube.LoadRESTConfig(tt.path)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			host := ""
			if cfg != nil {
				host = cfg.Host
			}
			if host != tt.wantHost {
				t.Errorf("host = %q, want %q", host, tt.wantHost)
			}
			if cfg != nil {
				cs, err := kube.NewClientset(cfg)
				if err != nil || cs == nil {
					t.Errorf("NewClientset: %v", err)
				}
			}
		})
	}
}

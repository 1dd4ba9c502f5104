// Package deploy holds oomscope's container image and Kubernetes
// manifests: a kustomize base with optional components, a Helm chart, and
// daemonset.yaml (the base rendered into one file). Its tests render both,
// require the same objects, apply them to a real kube-apiserver, and run
// the daemon with exactly the privileges the pod gets.
package deploy

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	authv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/oomscope/oomscope/internal/envtestbin"
)

// daemonUser is the API server's name for the DaemonSet's service account.
const daemonUser = "system:serviceaccount:oomscope:oomscope"

// strict makes the API server reject unknown and duplicate fields instead
// of dropping them with a warning: a misspelt field fails the test.
var strict = client.FieldValidation("Strict")

// TestApply creates every object of every variant, first as kustomize
// renders it and then as Helm renders it (an update of the same
// objects), on a real kube-apiserver and etcd (envtest) with strict field
// validation, and checks what the daemon relies on in the objects the API
// server stored: the least-privilege security context, tolerations,
// priority, NODE_NAME, read-only host mounts, exactly the RBAC the
// daemon needs (asked of the authorizer), that the pods the DaemonSet
// controller would create are admitted (Pod Security, priority class),
// and the optional PodMonitor against a minimal monitoring.coreos.com CRD.
func TestApply(t *testing.T) {
	if testing.Short() {
		t.Skip("envtest and hack/render: not in -short mode (make unit); make test runs it")
	}
	start := time.Now()
	// Render first: the control plane then does not idle while the
	// renderer builds.
	for _, v := range variants {
		render(t, v.kustomizeArgs()...)
		render(t, v.helmArgs()...)
	}
	rendered := time.Now()

	ctrllog.SetLogger(logr.Discard())
	env := &envtest.Environment{
		BinaryAssetsDirectory:    envtestbin.Dir(t),
		ControlPlaneStartTimeout: 3 * time.Minute,
		CRDDirectoryPaths:        []string{"testdata/crds"},
		ErrorIfCRDPathMissing:    true,
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start envtest: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	t.Logf("envtest control plane up in %v", time.Since(rendered).Round(time.Millisecond))
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			for _, args := range [][]string{v.kustomizeArgs(), v.helmArgs()} {
				objs := decode(t, args[0], render(t, args...))
				for _, u := range objs {
					upsert(ctx, t, c, u)
				}
				var kinds []string
				for _, u := range objs {
					kinds = append(kinds, u.GetKind())
				}
				for _, k := range []string{"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap", "DaemonSet"} {
					if !slices.Contains(kinds, k) {
						t.Errorf("%s renders no %s", args[0], k)
					}
				}
				if got := slices.Contains(kinds, "PodMonitor"); got != (v.name == "podmonitor") {
					t.Errorf("%s: PodMonitor rendered: %v", args[0], got)
				}
				ds := &appsv1.DaemonSet{}
				if err := c.Get(ctx, client.ObjectKey{Namespace: "oomscope", Name: "oomscope"}, ds); err != nil {
					t.Fatal(err)
				}
				checkDaemonSet(t, args[0], v, ds)
			}
			if v.name == "podmonitor" {
				checkPodMonitor(ctx, t, c)
			}
			checkPodAdmitted(ctx, t, c, v)
		})
	}
	t.Run("rbac", func(t *testing.T) { checkRBAC(ctx, t, c) })
	t.Run("pod security", func(t *testing.T) { checkPodSecurity(ctx, t, c) })
	t.Logf("TestApply took %v (rendering %v)", time.Since(start).Round(time.Millisecond), rendered.Sub(start).Round(time.Millisecond))
}

// upsert creates u, or replaces the stored object with u (an update with
// the stored resourceVersion), both with strict field validation.
func upsert(ctx context.Context, t *testing.T, c client.Client, u *unstructured.Unstructured) {
	t.Helper()
	obj := u.DeepCopy()
	err := c.Create(ctx, obj, strict)
	if apierrors.IsAlreadyExists(err) {
		cur := &unstructured.Unstructured{}
		cur.SetGroupVersionKind(u.GroupVersionKind())
		if err := c.Get(ctx, client.ObjectKeyFromObject(u), cur); err != nil {
			t.Fatalf("get %s: %v", objKey(u), err)
		}
		obj = u.DeepCopy()
		obj.SetResourceVersion(cur.GetResourceVersion())
		err = c.Update(ctx, obj, strict)
	}
	if err != nil {
		t.Fatalf("apply %s: %v", objKey(u), err)
	}
}

// checkDaemonSet checks the stored DaemonSet.
func checkDaemonSet(t *testing.T, from string, v variant, ds *appsv1.DaemonSet) {
	t.Helper()
	errorf := func(format string, args ...any) {
		t.Helper()
		t.Errorf("%s %s: %s", v.name, from, fmt.Sprintf(format, args...))
	}
	pod := ds.Spec.Template.Spec
	if pod.PriorityClassName != "system-node-critical" {
		errorf("priorityClassName %q", pod.PriorityClassName)
	}
	if len(pod.Tolerations) != 1 || pod.Tolerations[0] != (corev1.Toleration{Operator: corev1.TolerationOpExists}) {
		errorf("tolerations %+v, want one {operator: Exists} (every taint)", pod.Tolerations)
	}
	if pod.ServiceAccountName != "oomscope" {
		errorf("serviceAccountName %q", pod.ServiceAccountName)
	}
	if pod.HostNetwork || pod.HostPID || pod.HostIPC {
		errorf("host namespaces: network %v pid %v ipc %v", pod.HostNetwork, pod.HostPID, pod.HostIPC)
	}
	psc := pod.SecurityContext
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		errorf("pod seccompProfile is not RuntimeDefault: %+v", psc)
	}
	if psc == nil || psc.RunAsUser == nil || *psc.RunAsUser != 0 {
		errorf("pod runAsUser is not 0 (docs/deploy.md, Why uid 0)")
	}
	for k, want := range map[string]string{"app.kubernetes.io/name": "oomscope", "app.kubernetes.io/instance": "oomscope"} {
		if ds.Spec.Selector.MatchLabels[k] != want || ds.Spec.Template.Labels[k] != want {
			errorf("label %s: selector %q, template %q", k, ds.Spec.Selector.MatchLabels[k], ds.Spec.Template.Labels[k])
		}
	}

	if len(pod.Containers) != 1 || len(pod.InitContainers) != 0 {
		errorf("%d containers, %d init containers", len(pod.Containers), len(pod.InitContainers))
		return
	}
	ctr := pod.Containers[0]
	sc := ctr.SecurityContext
	if sc == nil {
		errorf("no container securityContext")
		return
	}
	wantPriv := v.name == "privileged"
	if (sc.Privileged != nil && *sc.Privileged) != wantPriv {
		errorf("privileged %v, want %v", sc.Privileged != nil && *sc.Privileged, wantPriv)
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation != wantPriv {
		errorf("allowPrivilegeEscalation is not %v", wantPriv)
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		errorf("readOnlyRootFilesystem is not true")
	}
	if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || !slices.Equal(sc.Capabilities.Add, []corev1.Capability{"SYSLOG"}) {
		errorf("capabilities %+v, want drop [ALL] add [SYSLOG]", sc.Capabilities)
	}
	if sc.RunAsNonRoot != nil && *sc.RunAsNonRoot {
		errorf("runAsNonRoot")
	}

	nodeName := false
	for _, e := range ctr.Env {
		if e.Name == "NODE_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "spec.nodeName" {
			nodeName = true
		}
	}
	if !nodeName {
		errorf("NODE_NAME does not come from the downward API (spec.nodeName)")
	}
	for _, a := range []string{"--state-dir=/var/lib/oomscope", "--cgroup-root=/host/sys/fs/cgroup", "--proc-root=/host/proc", "--metrics-addr=:9101"} {
		if !slices.Contains(ctr.Args, a) {
			errorf("args %q lack %s", ctr.Args, a)
		}
	}
	if len(ctr.Command) != 0 {
		errorf("command %q overrides the image's entrypoint (oomscope run)", ctr.Command)
	}
	if len(ctr.Ports) != 1 || ctr.Ports[0].Name != "metrics" || ctr.Ports[0].ContainerPort != 9101 {
		errorf("ports %+v, want metrics 9101", ctr.Ports)
	}
	for name, p := range map[string]*corev1.Probe{"liveness": ctr.LivenessProbe, "readiness": ctr.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Port.String() != "metrics" {
			errorf("%s probe %+v does not ask the metrics port", name, p)
		}
	}
	for name, q := range map[string]struct {
		got  resource.Quantity
		want string
	}{
		"requests.cpu":    {ctr.Resources.Requests[corev1.ResourceCPU], "20m"},
		"requests.memory": {ctr.Resources.Requests[corev1.ResourceMemory], "48Mi"},
		"limits.memory":   {ctr.Resources.Limits[corev1.ResourceMemory], "128Mi"},
	} {
		if q.got.Cmp(resource.MustParse(q.want)) != 0 {
			errorf("%s %s, want %s", name, q.got.String(), q.want)
		}
	}
	if _, ok := ctr.Resources.Limits[corev1.ResourceCPU]; ok {
		errorf("a CPU limit throttles the daemon exactly when a storm needs it")
	}

	// Volumes: host path, mount path, read-only.
	type mount struct {
		host, hostType, path string
		readOnly             bool
		recursive            bool
	}
	want := map[string]mount{
		"kmsg":   {"/dev/kmsg", "CharDevice", "/dev/kmsg", true, false},
		"cgroup": {"/sys/fs/cgroup", "Directory", "/host/sys/fs/cgroup", true, true},
		"proc":   {"/proc", "Directory", "/host/proc", true, true},
		"state":  {"/var/lib/oomscope", "DirectoryOrCreate", "/var/lib/oomscope", false, false},
	}
	if v.name == "kmsg-device-plugin" {
		delete(want, "kmsg")
		if q := ctr.Resources.Limits["squat.ai/kmsg"]; q.Cmp(resource.MustParse("1")) != 0 {
			errorf("limits[squat.ai/kmsg] = %s, want 1", q.String())
		}
	}
	got := map[string]mount{}
	for _, vol := range pod.Volumes {
		if vol.HostPath == nil {
			errorf("volume %s is not a hostPath", vol.Name)
			continue
		}
		m := got[vol.Name]
		m.host = vol.HostPath.Path
		if vol.HostPath.Type != nil {
			m.hostType = string(*vol.HostPath.Type)
		}
		got[vol.Name] = m
	}
	for _, vm := range ctr.VolumeMounts {
		m := got[vm.Name]
		m.path, m.readOnly = vm.MountPath, vm.ReadOnly
		m.recursive = vm.RecursiveReadOnly != nil && *vm.RecursiveReadOnly == corev1.RecursiveReadOnlyIfPossible
		got[vm.Name] = m
	}
	for name, w := range want {
		if got[name] != w {
			errorf("volume %s: %+v, want %+v", name, got[name], w)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			errorf("unexpected volume %s %+v", name, got[name])
		}
	}
}

// checkPodMonitor checks the stored PodMonitor scrapes the DaemonSet's
// pods on their metrics port.
func checkPodMonitor(ctx context.Context, t *testing.T, c client.Client) {
	t.Helper()
	pm := &unstructured.Unstructured{}
	pm.SetAPIVersion("monitoring.coreos.com/v1")
	pm.SetKind("PodMonitor")
	if err := c.Get(ctx, client.ObjectKey{Namespace: "oomscope", Name: "oomscope"}, pm); err != nil {
		t.Fatal(err)
	}
	sel, _, _ := unstructured.NestedStringMap(pm.Object, "spec", "selector", "matchLabels")
	if sel["app.kubernetes.io/name"] != "oomscope" || sel["app.kubernetes.io/instance"] != "oomscope" {
		t.Errorf("PodMonitor selector %v", sel)
	}
	eps, _, _ := unstructured.NestedSlice(pm.Object, "spec", "podMetricsEndpoints")
	if len(eps) != 1 {
		t.Fatalf("PodMonitor endpoints %v", eps)
	}
	ep := eps[0].(map[string]any)
	if ep["port"] != "metrics" || ep["path"] != "/metrics" {
		t.Errorf("PodMonitor endpoint %v, want port metrics path /metrics", ep)
	}
}

// podFromTemplate is the pod the DaemonSet controller would create on a
// node (without its owner reference and node affinity).
func podFromTemplate(ds *appsv1.DaemonSet, ns string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "oomscope-", Namespace: ns, Labels: ds.Spec.Template.Labels, Annotations: ds.Spec.Template.Annotations},
		Spec:       *ds.Spec.Template.Spec.DeepCopy(),
	}
}

// checkPodAdmitted creates the pod the DaemonSet controller would create:
// the pod admission plugins (Pod Security at the namespace's level, the
// priority class) accept it. Nothing runs it: envtest has no kubelet.
func checkPodAdmitted(ctx context.Context, t *testing.T, c client.Client, v variant) {
	t.Helper()
	ds := &appsv1.DaemonSet{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "oomscope", Name: "oomscope"}, ds); err != nil {
		t.Fatal(err)
	}
	pod := podFromTemplate(ds, "oomscope")
	pod.Spec.NodeName = "node-1"
	if err := c.Create(ctx, pod, strict); err != nil {
		t.Fatalf("%s: the DaemonSet's pod is not admitted in namespace oomscope: %v", v.name, err)
	}
	if pod.Spec.Priority == nil || *pod.Spec.Priority < 2_000_000_000 {
		t.Errorf("%s: pod priority %v: system-node-critical not resolved", v.name, pod.Spec.Priority)
	}
	if err := c.Delete(ctx, pod); err != nil {
		t.Fatal(err)
	}
}

// checkPodSecurity shows why the Namespace carries
// pod-security.kubernetes.io/enforce=privileged: at the baseline level the
// API server refuses the pod, for its host paths and CAP_SYSLOG.
func checkPodSecurity(ctx context.Context, t *testing.T, c client.Client) {
	ns := &corev1.Namespace{}
	if err := c.Get(ctx, client.ObjectKey{Name: "oomscope"}, ns); err != nil {
		t.Fatal(err)
	}
	if ns.Labels["pod-security.kubernetes.io/enforce"] != "privileged" {
		t.Errorf("namespace oomscope labels %v", ns.Labels)
	}
	ds := &appsv1.DaemonSet{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "oomscope", Name: "oomscope"}, ds); err != nil {
		t.Fatal(err)
	}
	base := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "psa-baseline", Labels: map[string]string{"pod-security.kubernetes.io/enforce": "baseline"}}}
	if err := c.Create(ctx, base); err != nil {
		t.Fatal(err)
	}
	pod := podFromTemplate(ds, base.Name)
	pod.Spec.NodeName = "node-1"
	err := c.Create(ctx, pod)
	if err == nil {
		t.Fatal("the pod was admitted at Pod Security level baseline: is the PodSecurity admission plugin off?")
	}
	if !apierrors.IsForbidden(err) {
		t.Fatalf("at level baseline: %v", err)
	}
	for _, want := range []string{"hostPath", "SYSLOG"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("baseline refusal does not name %s: %v", want, err)
		}
	}
	t.Logf("at Pod Security level baseline: %v", err)
}

// checkRBAC asks the API server's authorizer what the service account may
// do: exactly the daemon's calls, and nothing next to them.
func checkRBAC(ctx context.Context, t *testing.T, c client.Client) {
	role := &rbacv1.ClusterRole{}
	if err := c.Get(ctx, client.ObjectKey{Name: "oomscope"}, role); err != nil {
		t.Fatal(err)
	}
	verbs := map[string][]string{}
	for _, r := range role.Rules {
		if len(r.NonResourceURLs) > 0 || len(r.ResourceNames) > 0 {
			t.Errorf("rule %+v: non-resource URLs or resource names", r)
		}
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				verbs[g+"/"+res] = append(verbs[g+"/"+res], r.Verbs...)
			}
		}
	}
	want := map[string][]string{
		"/pods":            {"list", "watch"},
		"apps/replicasets": {"get"},
		"batch/jobs":       {"get"},
		"/events":          {"create", "list", "patch"},
		"/nodes":           {"get"},
	}
	for res, w := range want {
		if got := slices.Sorted(slices.Values(verbs[res])); !slices.Equal(got, w) {
			t.Errorf("ClusterRole verbs on %s = %v, want %v", res, got, w)
		}
	}
	for res := range verbs {
		if _, ok := want[res]; !ok {
			t.Errorf("ClusterRole grants %s %v, which the daemon does not use", res, verbs[res])
		}
	}
	crb := &rbacv1.ClusterRoleBinding{}
	if err := c.Get(ctx, client.ObjectKey{Name: "oomscope"}, crb); err != nil {
		t.Fatal(err)
	}
	if crb.RoleRef.Kind != "ClusterRole" || crb.RoleRef.Name != "oomscope" || len(crb.Subjects) != 1 ||
		crb.Subjects[0].Kind != "ServiceAccount" || crb.Subjects[0].Name != "oomscope" || crb.Subjects[0].Namespace != "oomscope" {
		t.Errorf("ClusterRoleBinding %+v %+v", crb.RoleRef, crb.Subjects)
	}

	type access struct {
		verb, group, resource, ns string
		allowed                   bool
	}
	checks := []access{
		{"list", "", "pods", "", true},
		{"watch", "", "pods", "", true},
		{"get", "apps", "replicasets", "shop", true},
		{"get", "batch", "jobs", "shop", true},
		{"create", "", "events", "shop", true},
		{"patch", "", "events", "shop", true},
		{"list", "", "events", "shop", true},
		{"get", "", "nodes", "", true},
		// Next to them, refused:
		{"get", "", "pods", "shop", false},
		{"delete", "", "pods", "shop", false},
		{"create", "", "pods/exec", "shop", false},
		{"get", "", "secrets", "shop", false},
		{"list", "", "secrets", "", false},
		{"get", "", "configmaps", "oomscope", false},
		{"update", "", "events", "shop", false},
		{"delete", "", "events", "shop", false},
		{"create", "events.k8s.io", "events", "shop", false},
		{"list", "", "nodes", "", false},
		{"patch", "", "nodes", "", false},
		{"update", "", "nodes/status", "", false},
		{"list", "apps", "replicasets", "", false},
		{"list", "apps", "deployments", "", false},
	}
	sar := func(a access) bool {
		r := &authv1.SubjectAccessReview{Spec: authv1.SubjectAccessReviewSpec{
			User:   daemonUser,
			Groups: []string{"system:serviceaccounts", "system:serviceaccounts:oomscope", "system:authenticated"},
			ResourceAttributes: &authv1.ResourceAttributes{
				Verb: a.verb, Group: a.group, Resource: strings.Split(a.resource, "/")[0], Namespace: a.ns,
				Subresource: func() string { _, s, _ := strings.Cut(a.resource, "/"); return s }(),
			},
		}}
		if err := c.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
		return r.Status.Allowed
	}
	// The RBAC authorizer learns of the binding from an informer.
	deadline := time.Now().Add(30 * time.Second)
	for !sar(checks[0]) {
		if time.Now().After(deadline) {
			t.Fatalf("%s may not list pods 30s after the binding was created", daemonUser)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, a := range checks {
		if got := sar(a); got != a.allowed {
			t.Errorf("%s %s %s.%s in %q: allowed %v, want %v", daemonUser, a.verb, a.resource, a.group, a.ns, got, a.allowed)
		}
	}
}

// Package deploy holds the Kubernetes manifests of the node daemon; its
// test applies them to a real kube-apiserver.
package deploy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/oomscope/oomscope/internal/envtestbin"
)

// TestManifestApplies creates every object of daemonset.yaml on a real
// kube-apiserver (which validates them) and checks what the daemon relies
// on: the node name from the downward API, /dev/kmsg and the host's
// cgroups mounted, the state on the node, and RBAC for pods.
func TestManifestApplies(t *testing.T) {
	if testing.Short() {
		t.Skip("envtest: not in -short mode (make unit); make test runs it")
	}
	ctrllog.SetLogger(logr.Discard())
	env := &envtest.Environment{BinaryAssetsDirectory: envtestbin.Dir(t), ControlPlaneStartTimeout: 3 * time.Minute}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start envtest: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	raw, err := os.ReadFile("daemonset.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	var kinds []string
	for {
		var u unstructured.Unstructured
		if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode daemonset.yaml: %v", err)
		}
		if len(u.Object) == 0 {
			continue
		}
		if err := c.Create(ctx, &u); err != nil {
			t.Fatalf("create %s %s: %v", u.GetKind(), u.GetName(), err)
		}
		kinds = append(kinds, u.GetKind())
	}
	for _, k := range []string{"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "DaemonSet"} {
		if !slices.Contains(kinds, k) {
			t.Errorf("daemonset.yaml has no %s", k)
		}
	}

	var ds appsv1.DaemonSet
	if err := c.Get(ctx, client.ObjectKey{Namespace: "oomscope", Name: "oomscope"}, &ds); err != nil {
		t.Fatal(err)
	}
	pod := ds.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	ctr := pod.Containers[0]
	for _, a := range []string{"run", "--state-dir=/var/lib/oomscope", "--cgroup-root=/host/sys/fs/cgroup"} {
		if !slices.Contains(ctr.Args, a) {
			t.Errorf("args %v lack %s", ctr.Args, a)
		}
	}
	nodeName := false
	for _, e := range ctr.Env {
		if e.Name == "NODE_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "spec.nodeName" {
			nodeName = true
		}
	}
	if !nodeName {
		t.Error("NODE_NAME does not come from spec.nodeName")
	}
	mounts := map[string]string{}
	for _, m := range ctr.VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	hostPaths := map[string]string{}
	for _, v := range pod.Volumes {
		if v.HostPath != nil {
			hostPaths[v.Name] = v.HostPath.Path
		}
	}
	for vol, want := range map[string][2]string{
		"kmsg":   {"/dev/kmsg", "/dev/kmsg"},
		"cgroup": {"/sys/fs/cgroup", "/host/sys/fs/cgroup"},
		"state":  {"/var/lib/oomscope", "/var/lib/oomscope"},
	} {
		if hostPaths[vol] != want[0] || mounts[vol] != want[1] {
			t.Errorf("volume %s: host %q mounted at %q, want %q at %q", vol, hostPaths[vol], mounts[vol], want[0], want[1])
		}
	}
	if ctr.SecurityContext == nil || ctr.SecurityContext.Privileged == nil || !*ctr.SecurityContext.Privileged {
		t.Error("the container is not privileged: /dev/kmsg would not be readable")
	}

	// The service account may list and watch pods cluster-wide (the
	// informer narrows it to the node by field selector).
	var crb unstructured.Unstructured
	crb.SetAPIVersion("rbac.authorization.k8s.io/v1")
	crb.SetKind("ClusterRole")
	if err := c.Get(ctx, client.ObjectKey{Name: "oomscope"}, &crb); err != nil {
		t.Fatal(err)
	}
	rules, _, _ := unstructured.NestedSlice(crb.Object, "rules")
	podsOK := false
	for _, r := range rules {
		m := r.(map[string]any)
		res, _, _ := unstructured.NestedStringSlice(m, "resources")
		verbs, _, _ := unstructured.NestedStringSlice(m, "verbs")
		if slices.Contains(res, "pods") && slices.Contains(verbs, "list") && slices.Contains(verbs, "watch") {
			podsOK = true
		}
	}
	if !podsOK {
		t.Error("the ClusterRole does not allow listing and watching pods")
	}
}

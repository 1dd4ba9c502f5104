package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/oomscope/oomscope/internal/envtestbin"
)

// TestRunPublishesKubernetesEvents: `run --source FILE --kubeconfig K`
// against a real kube-apiserver leaves one OOMKilling Event per kill of
// the log. The capture's pod is not in the API, so each Event is on the
// Node and names the pod UID from the cgroup path.
func TestRunPublishesKubernetesEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("envtest: not in -short mode (make unit); make test runs it")
	}
	env := &envtest.Environment{BinaryAssetsDirectory: envtestbin.Dir(t), ControlPlaneStartTimeout: 3 * time.Minute}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start envtest: %v", err)
	}
	t.Cleanup(func() { env.Stop() })
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "admin"}
	kc.CurrentContext = "envtest"
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, kubeconfig); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := runConfig{
		Source: "../../testdata/captures/host-6.18-cgroupv1-memcg-pod-limit-3-kills.kmsg", StateDir: t.TempDir(),
		Host: "node-a", MaxTasks: 100, LogLevel: zerolog.WarnLevel, LogFormat: "json",
		Kubeconfig: kubeconfig, NATSURL: "none", DrainTimeout: time.Minute,
		CgroupRoot: "/nonexistent", ProcRoot: "/proc",
	}
	var out, errb bytes.Buffer
	if err := runDaemon(ctx, &out, &errb, c); err != nil {
		t.Fatalf("run: %v\n%s", err, errb.String())
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := client.CoreV1().Events("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range evs.Items {
		if e.Reason != "OOMKilling" {
			continue
		}
		n++
		if e.InvolvedObject.Kind != "Node" || e.InvolvedObject.Name != "node-a" || e.Type != "Warning" {
			t.Errorf("event %s on %s/%s type %s, want a Warning on Node node-a", e.Name, e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Type)
		}
		if !strings.Contains(e.Message, "0b7e3c1e") {
			t.Errorf("event message does not name the pod UID: %q", e.Message)
		}
	}
	if n != 3 {
		t.Errorf("%d OOMKilling events, want 3 (one per kill)", n)
	}
}

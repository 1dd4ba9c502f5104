// Package kube is oomscope's Kubernetes client setup, shared by the pod
// lookup (package enrich) and the Kubernetes Event sink: where the API
// server configuration comes from, and a clientset that identifies itself
// as oomscope.
package kube

import (
	"errors"
	"fmt"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// KubeconfigNone, given as the kubeconfig path to [LoadRESTConfig], turns
// the API server off even inside a cluster.
const KubeconfigNone = "none"

// LoadRESTConfig returns the API server configuration oomscope uses:
// kubeconfig's file when the path is set, else the in-cluster service
// account when running in a pod, else nil (no API server: reports are
// enriched from the cgroup path alone). The path [KubeconfigNone] always
// gives nil. An error means a configured source could not be loaded.
func LoadRESTConfig(kubeconfig string) (*rest.Config, error) {
	switch kubeconfig {
	case KubeconfigNone:
		return nil, nil
	case "":
		cfg, err := rest.InClusterConfig()
		if errors.Is(err, rest.ErrNotInCluster) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("in-cluster kubernetes config: %w", err)
		}
		return cfg, nil
	default:
		cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
		}
		return cfg, nil
	}
}

// NewClientset returns a clientset for cfg that identifies itself as
// oomscope and talks protobuf (cheaper for a pod informer than JSON).
func NewClientset(cfg *rest.Config) (kubernetes.Interface, error) {
	cfg = rest.CopyConfig(cfg)
	if cfg.UserAgent == "" {
		cfg.UserAgent = "oomscope"
	}
	if cfg.ContentType == "" {
		cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
		cfg.ContentType = "application/vnd.kubernetes.protobuf"
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client for %s: %w", cfg.Host, err)
	}
	return cs, nil
}

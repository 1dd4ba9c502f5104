// Package envtestbin finds the kube-apiserver and etcd binaries that
// controller-runtime's envtest runs, as built by hack/envtest-bins.sh, for
// the tests that need a real API server.
package envtestbin

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Dir returns the directory holding kube-apiserver and etcd: the
// KUBEBUILDER_ASSETS environment variable, or <repo>/.cache/envtest/bin.
// It fails tb when a binary is missing, saying how to build it.
func Dir(tb testing.TB) string {
	tb.Helper()
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		_, file, _, _ := runtime.Caller(0)
		dir = filepath.Join(filepath.Dir(file), "..", "..", ".cache", "envtest", "bin")
	}
	for _, name := range []string{"kube-apiserver", "etcd"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Mode()&0o111 == 0 {
			tb.Fatalf("envtest binary %s missing in %s (%v): run hack/envtest-bins.sh (it builds kube-apiserver and etcd from the Go module proxy into .cache/envtest/bin), or set KUBEBUILDER_ASSETS", name, dir, err)
		}
	}
	return dir
}

package report_test

import (
	"os/exec"
	"strings"
	"testing"
)

// goList returns the non-standard packages pkg depends on (itself included).
func goList(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

// TestModelImportsOnlyTheStandardLibrary keeps the report model free for
// every consumer: importing it must not bring in any other module.
func TestModelImportsOnlyTheStandardLibrary(t *testing.T) {
	for _, dep := range goList(t, "github.com/oomscope/oomscope/report") {
		if dep != "github.com/oomscope/oomscope/report" {
			t.Errorf("the report model depends on %s", dep)
		}
	}
}

// TestSinksDoNotImportKubernetes: only the Kubernetes Event sink may
// depend on k8s.io; every other output (and the outbox) imports the model.
func TestSinksDoNotImportKubernetes(t *testing.T) {
	out, err := exec.Command("go", "list", "github.com/oomscope/oomscope/sink/...", "github.com/oomscope/oomscope/outbox/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	pkgs := strings.Fields(string(out))
	if len(pkgs) == 0 {
		t.Fatal("no sink packages found")
	}
	for _, pkg := range pkgs {
		if strings.HasSuffix(pkg, "/sink/kubeevents") {
			continue
		}
		for _, dep := range goList(t, pkg) {
			if strings.HasPrefix(dep, "k8s.io/") || strings.HasPrefix(dep, "sigs.k8s.io/") {
				t.Errorf("%s depends on %s", pkg, dep)
				break
			}
		}
	}
}

package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/oomscope/oomscope/e2e/kernellock"
)

// TestMain lets the test binary stand in for oomscope where a command
// re-executes itself: the demo's allocator.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "demo-alloc" {
		if err := newDemoAllocCmd().RunE(nil, nil); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestDemo runs the demo for real (root): one OOM kill in a scratch
// cgroup, its report shown as text, published on NATS and archived, and
// only its own report shown.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("a real OOM kill: not in -short mode")
	}
	kernellock.Acquire(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	if err := runDemo(ctx, &out, &errb, false, 2*time.Minute); err != nil {
		t.Fatalf("demo: %v\n%s\n%s", err, out.String(), errb.String())
	}
	for _, want := range []string{"the kernel killed pid", "OOM kill (memcg)", "killed by the CONTAINER limit 64Mi", "report published on NATS subject oomscope.v1.kill.", "archived with its raw kernel lines at", "the scratch cgroup is removed"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
	if n := strings.Count(out.String(), "OOM kill ("); n != 1 {
		t.Errorf("demo showed %d reports, want its own one:\n%s", n, out.String())
	}
}

func TestDemoRefusesNonRoot(t *testing.T) {
	err := demoPreflight(1000)
	if err == nil || !strings.Contains(err.Error(), "needs root") {
		t.Errorf("preflight as uid 1000: %v", err)
	}
	if err := demoPreflight(0); err != nil {
		t.Errorf("preflight as root: %v", err)
	}
}

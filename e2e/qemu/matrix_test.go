//go:build e2e

package qemu

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// TestMatrix boots every kernel of the matrix under qemu (TCG) and checks
// every scenario. Run it through hack/e2e-matrix.sh (needs root, qemu,
// busybox-static, cpio and network access to a Debian mirror unless the
// kernel cache is warm):
//
//	go test -tags e2e ./e2e/qemu -run TestMatrix -count=1 -v -timeout 30m
//
// OOMSCOPE_E2E_KERNELS=debian-6.1,... and OOMSCOPE_E2E_SCENARIOS=a,b
// narrow it; OOMSCOPE_E2E_CAPTURE=1 saves each scenario's raw records into
// testdata/kernels/ as golden inputs.
func TestMatrix(t *testing.T) {
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Repo:  repo,
		Cache: envOr("OOMSCOPE_KERNEL_CACHE", filepath.Join(repo, ".cache/kernels")),
		Work:  envOr("OOMSCOPE_E2E_WORK", filepath.Join(repo, ".cache/qemu")),
		Log:   zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, NoColor: true}).With().Timestamp().Logger(),
	}
	if v := os.Getenv("OOMSCOPE_E2E_KERNELS"); v != "" {
		for _, name := range strings.Split(v, ",") {
			found := false
			for _, k := range Kernels {
				if k.Name == name || k.Suite == name {
					cfg.Kernels = append(cfg.Kernels, k)
					found = true
				}
			}
			if !found {
				t.Fatalf("OOMSCOPE_E2E_KERNELS: unknown kernel %q", name)
			}
		}
	}
	if v := os.Getenv("OOMSCOPE_E2E_SCENARIOS"); v != "" {
		cfg.Scenarios = strings.Split(v, ",")
	}
	if os.Getenv("OOMSCOPE_E2E_CAPTURE") == "1" {
		cfg.CaptureDir = filepath.Join(repo, "testdata/kernels")
		if err := os.MkdirAll(cfg.CaptureDir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	start := time.Now()
	m, err := Run(ctx, cfg)
	if m != nil {
		var sb strings.Builder
		_ = m.WriteTable(&sb)
		t.Logf("qemu OOM matrix (%s):\n%s", time.Since(start).Round(time.Second), sb.String())
		if tbl := os.Getenv("OOMSCOPE_E2E_TABLE"); tbl != "" {
			_ = os.WriteFile(tbl, []byte(sb.String()), 0o644)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range m.Kernels {
		for _, s := range m.Scenarios {
			if r := m.Results[k][s]; r.Outcome == Fail {
				t.Errorf("%s / %s: %s", k, s, strings.Join(r.Reasons, "; "))
			}
		}
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

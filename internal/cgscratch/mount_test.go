package cgscratch

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestFindMountAndPaths(t *testing.T) {
	const mountinfo = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 /docker/abc /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`
	file := filepath.Join(t.TempDir(), "mountinfo")
	if err := os.WriteFile(file, []byte(mountinfo), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		match     func(fstype, super string) bool
		mnt, root string
	}{
		{"v1 memory", func(fs, super string) bool {
			return fs == "cgroup" && slices.Contains(strings.Split(super, ","), "memory")
		}, "/sys/fs/cgroup/memory", "/docker/abc"},
		{"v2", func(fs, _ string) bool { return fs == "cgroup2" }, "/sys/fs/cgroup/unified", "/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mnt, root, err := findMount(file, tt.match)
			if err != nil || mnt != tt.mnt || root != tt.root {
				t.Fatalf("findMount = %q, %q, %v; want %q, %q", mnt, root, err, tt.mnt, tt.root)
			}
		})
	}
	if _, _, err := findMount(file, func(string, string) bool { return false }); err == nil {
		t.Error("findMount without a match: no error")
	}

	// A mount that shows only the subtree /docker/abc of the hierarchy.
	h := &Hierarchy{mount: "/sys/fs/cgroup/memory", mntRoot: "/docker/abc"}
	if got, want := h.dir("/docker/abc/oomscope-e2e-1-x/kubepods"), "/sys/fs/cgroup/memory/oomscope-e2e-1-x/kubepods"; got != want {
		t.Errorf("dir = %q, want %q", got, want)
	}
	if got, want := h.kernelPath("/docker/abc/oomscope-e2e-1-x"), "/docker/abc/oomscope-e2e-1-x"; got != want {
		t.Errorf("kernelPath = %q, want %q", got, want)
	}
	h = &Hierarchy{mount: "/sys/fs/cgroup/memory", mntRoot: "/"}
	if got, want := h.dir("/process_api/x/oomscope-e2e-1-x"), "/sys/fs/cgroup/memory/process_api/x/oomscope-e2e-1-x"; got != want {
		t.Errorf("dir = %q, want %q", got, want)
	}
}

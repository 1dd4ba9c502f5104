package cgscratch_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/oomscope/oomscope/enrich/cgpath"
	"github.com/oomscope/oomscope/internal/cgscratch"
	"github.com/oomscope/oomscope/report"
)

func TestShapes(t *testing.T) {
	uid := cgscratch.NewPodUID()
	id := cgscratch.NewContainerID()
	if len(id) != 64 || strings.Trim(id, "0123456789abcdef") != "" {
		t.Fatalf("container id %q is not 64 hex", id)
	}
	tests := []struct {
		name      string
		path      string
		level     report.Level
		driver    string
		container string
	}{
		{"cgroupfs pod", cgscratch.CgroupfsPod(cgscratch.QoSBurstable, uid), report.LevelPod, report.DriverCgroupfs, ""},
		{"cgroupfs container", cgscratch.CgroupfsContainer(cgscratch.QoSBurstable, uid, id), report.LevelContainer, report.DriverCgroupfs, id},
		{"systemd pod", cgscratch.SystemdPod(cgscratch.QoSBurstable, uid), report.LevelPod, report.DriverSystemd, ""},
		{"systemd container", cgscratch.SystemdContainer(cgscratch.QoSBurstable, uid, id), report.LevelContainer, report.DriverSystemd, id},
		{"systemd guaranteed container", cgscratch.SystemdContainer(cgscratch.QoSGuaranteed, uid, id), report.LevelContainer, report.DriverSystemd, id},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// As the kernel prints it: below some parent cgroup.
			got := cgpath.Parse("/process_api/x/oomscope-e2e-1-ab/" + tt.path)
			if got.Level != tt.level || got.PodUID != uid || got.Driver != tt.driver || got.ContainerID != tt.container {
				t.Errorf("ParseCgroupPath(%q) = level %q pod %q driver %q container %q; want %q %q %q %q",
					tt.path, got.Level, got.PodUID, got.Driver, got.ContainerID, tt.level, uid, tt.driver, tt.container)
			}
		})
	}
}

// TestHierarchy creates a scratch tree, limits it, moves a process in and
// checks that Close kills it and removes every directory.
func TestHierarchy(t *testing.T) {
	ctx := context.Background()
	h, err := cgscratch.New(ctx, cgscratch.WithLogger(zerolog.New(zerolog.NewTestWriter(t))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := h.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	root := h.Root()
	if !strings.HasPrefix(root.Path, h.Own()+"/"+cgscratch.Prefix) {
		t.Fatalf("root %q not directly below own cgroup %q", root.Path, h.Own())
	}
	uid, id := cgscratch.NewPodUID(), cgscratch.NewContainerID()
	pod, err := h.Create(cgscratch.CgroupfsPod(cgscratch.QoSBurstable, uid))
	if err != nil {
		t.Fatal(err)
	}
	ctr, err := h.Create(cgscratch.CgroupfsContainer(cgscratch.QoSBurstable, uid, id))
	if err != nil {
		t.Fatal(err)
	}
	if want := root.Path + "/kubepods/burstable/pod" + uid + "/" + id; ctr.Path != want {
		t.Errorf("container path %q, want %q", ctr.Path, want)
	}
	if got, err := pod.SetLimit(64<<20 + 1); err != nil || got != 64<<20+4096 && got != 64<<20 {
		t.Errorf("SetLimit(64MiB+1) = %d, %v; want a page-rounded 64 MiB", got, err)
	}
	cmd := exec.Command("sleep", "300")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	if err := ctr.AddProc(cmd.Process.Pid); err != nil {
		_ = cmd.Process.Kill()
		t.Fatal(err)
	}
	pids, err := ctr.Procs()
	if err != nil || !slices.Contains(pids, cmd.Process.Pid) {
		t.Errorf("Procs() = %v, %v; want %d in it", pids, err, cmd.Process.Pid)
	}
	cs, err := ctr.Counters()
	if err != nil || cs.OOMKill != 0 {
		t.Errorf("Counters() = %+v, %v; want no kill", cs, err)
	}
	if err := h.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("sleep ended with %v, want killed", err)
	}
	if _, err := os.Stat(root.Dir); !os.IsNotExist(err) {
		t.Errorf("scratch root %s still there after Close: %v", root.Dir, err)
	}
	// A stale tree of a dead creator is removed, nothing else.
	stale := filepath.Join(filepath.Dir(root.Dir), cgscratch.Prefix+"999999999-dead")
	if err := os.MkdirAll(filepath.Join(stale, "kubepods"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := cgscratch.RemoveStale(ctx, zerolog.Nop()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale tree %s not removed: %v", stale, err)
	}
}

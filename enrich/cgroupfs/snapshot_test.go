package cgroupfs

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oomscope/oomscope/report"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

const (
	fixturePodUID = "0b7e3c1e-5a42-4c1b-9d7a-2f1f8c3e9a11"
	fixtureCID    = "3f9a7c2d1e8b4a6f9c0d2e4f6a8b0c1d3e5f7a9b1c3d5e7f9a1b3c5d7e9f1a2b"
	v1PodPath     = "/kubepods/burstable/pod" + fixturePodUID
	v1CtrPath     = v1PodPath + "/" + fixtureCID
	v2PodPath     = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0b7e3c1e_5a42_4c1b_9d7a_2f1f8c3e9a11.slice"
	v2CtrPath     = v2PodPath + "/cri-containerd-" + fixtureCID + ".scope"
)

func TestSnapshotFixtures(t *testing.T) {
	v1Stat := func(t *testing.T) map[string]uint64 {
		m, err := readKVFile(filepath.Join("testdata/cgroup/v1/memory", v1PodPath, "memory.stat"))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	tests := []struct {
		name, root, path string
		want             func(t *testing.T) *report.Snapshot
	}{
		{"v1 pod", "testdata/cgroup/v1", v1PodPath, func(t *testing.T) *report.Snapshot {
			return &report.Snapshot{Path: v1PodPath, Version: report.CgroupV1, LimitBytes: new(uint64(100663296)), UsageBytes: 99876864,
				PeakBytes: new(uint64(100663296)), Failcnt: new(uint64(2797)),
				OOMControl: &report.OOMControl{OOMKill: 3}, Procs: new(0), Stat: v1Stat(t)}
		}},
		{"v1 container unlimited", "testdata/cgroup/v1", v1CtrPath, func(t *testing.T) *report.Snapshot {
			return &report.Snapshot{Path: v1CtrPath, Version: report.CgroupV1, UsageBytes: 99876864,
				PeakBytes: new(uint64(100663296)), Failcnt: new(uint64(2797)),
				OOMControl: &report.OOMControl{OOMKill: 3}, Procs: new(2), Stat: v1Stat(t)}
		}},
		{"v2 pod with oom.group", "testdata/cgroup/v2", v2PodPath, func(t *testing.T) *report.Snapshot {
			return &report.Snapshot{Path: v2PodPath, Version: report.CgroupV2, LimitBytes: new(uint64(33554432)), UsageBytes: 33554432,
				PeakBytes: new(uint64(33554432)), SwapBytes: new(uint64(0)),
				Events:   &report.MemoryEvents{Max: 19, OOM: 1, OOMKill: 1},
				OOMGroup: new(true), Procs: new(0)}
		}},
		{"v2 container max", "testdata/cgroup/v2", v2CtrPath, func(t *testing.T) *report.Snapshot {
			return &report.Snapshot{Path: v2CtrPath, Version: report.CgroupV2, UsageBytes: 33554432,
				PeakBytes: new(uint64(33554432)), SwapBytes: new(uint64(0)),
				Events:   &report.MemoryEvents{Max: 19, OOM: 1, OOMKill: 1},
				OOMGroup: new(false), Procs: new(1)}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, err := Open(tt.root)
			if err != nil {
				t.Fatal(err)
			}
			got, err := fs.Snapshot(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			if got.ReadAt.IsZero() {
				t.Error("ReadAt not set")
			}
			want := tt.want(t)
			if want.Version == report.CgroupV2 {
				if got.Stat["anon"] != 33480704 || got.Stat["slab_unreclaimable"] != 872 {
					t.Errorf("stat = %v, want anon 33480704, slab_unreclaimable 872", got.Stat)
				}
				want.Stat = got.Stat
			}
			if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(report.Snapshot{}, "ReadAt")); diff != "" {
				t.Errorf("snapshot (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSnapshotErrors(t *testing.T) {
	fs, err := Open("testdata/cgroup/v2")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Snapshot("/kubepods.slice/gone.slice"); !errors.Is(err, ErrCgroupGone) {
		t.Errorf("missing cgroup: err = %v, want ErrCgroupGone", err)
	}
	if _, err := fs.Snapshot(""); err == nil {
		t.Error("empty path: no error")
	}
	if _, err := Open(t.TempDir()); err == nil {
		t.Error("root without a memory controller: no error")
	}
	// A malformed memory.stat is an error naming the file.
	root := t.TempDir()
	d := filepath.Join(root, "memory", "bad")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	for f, v := range map[string]string{
		"memory.limit_in_bytes": "1024", "memory.usage_in_bytes": "10", "memory.max_usage_in_bytes": "10",
		"memory.failcnt": "0", "memory.oom_control": "oom_kill 0", "memory.stat": "cache twelve",
	} {
		if err := os.WriteFile(filepath.Join(d, f), []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bad, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.Snapshot("/bad"); err == nil || !strings.Contains(err.Error(), "/bad") || !strings.Contains(err.Error(), "twelve") {
		t.Errorf("malformed memory.stat: err = %v, want an error naming the cgroup and the bad value", err)
	}
}

// ownMemoryCgroup returns this process's cgroup v1 memory path.
func ownMemoryCgroup(t *testing.T) string {
	t.Helper()
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) == 3 && parts[1] == "memory" {
			return parts[2]
		}
	}
	t.Fatal("no memory controller line in /proc/self/cgroup (this test needs a cgroup v1 memory hierarchy)")
	return ""
}

// makeChildMemcg creates a v1 memory cgroup below this process's own, with
// limit bytes, and removes it when the test ends (after killing anything
// left in it). It returns the cgroup path relative to the hierarchy root.
func makeChildMemcg(t *testing.T, name string, limit uint64) string {
	t.Helper()
	const v1Root = "/sys/fs/cgroup/memory"
	if _, err := os.Stat(filepath.Join(v1Root, "memory.limit_in_bytes")); err != nil {
		t.Fatalf("cgroup v1 memory hierarchy not mounted at %s: %v", v1Root, err)
	}
	rel := filepath.Join(ownMemoryCgroup(t), fmt.Sprintf("%s-%d", name, os.Getpid()))
	dir := filepath.Join(v1Root, rel)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatalf("create cgroup: %v", err)
	}
	t.Cleanup(func() {
		if b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs")); err == nil {
			for _, pid := range strings.Fields(string(b)) {
				var p int
				if _, err := fmt.Sscan(pid, &p); err == nil && p > 0 {
					if proc, err := os.FindProcess(p); err == nil {
						_ = proc.Kill()
					}
				}
			}
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			err := os.Remove(dir)
			if err == nil || errors.Is(err, os.ErrNotExist) {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("remove cgroup %s: %v", dir, err)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	if err := os.WriteFile(filepath.Join(dir, "memory.limit_in_bytes"), []byte(fmt.Sprint(limit)), 0o644); err != nil {
		t.Fatalf("write limit: %v", err)
	}
	return rel
}

// TestSnapshotRealV1Cgroup reads back a limit written to a real cgroup.
func TestSnapshotRealV1Cgroup(t *testing.T) {
	const limit = 48 << 20
	rel := makeChildMemcg(t, "oomscope-snap", limit)
	fs, err := Open(DefaultCgroupRoot)
	if err != nil {
		t.Fatal(err)
	}
	if fs.version != report.CgroupV1 {
		t.Fatalf("cgroup fs = %+v, want v1", fs)
	}
	s, err := fs.Snapshot(rel)
	if err != nil {
		t.Fatalf("no snapshot: %v", err)
	}
	if s.Path != rel || s.Version != report.CgroupV1 {
		t.Errorf("snapshot of %s (%s), want %s (v1)", s.Path, s.Version, rel)
	}
	if s.LimitBytes == nil || *s.LimitBytes != limit {
		t.Errorf("limit = %v, want %d", s.LimitBytes, limit)
	}
	if s.OOMControl == nil || s.OOMControl.OOMKill != 0 || s.OOMControl.UnderOOM {
		t.Errorf("oom_control = %+v, want no kills, not under oom", s.OOMControl)
	}
	if s.Procs == nil || *s.Procs != 0 {
		t.Errorf("procs = %v, want 0", s.Procs)
	}
	if _, ok := s.Stat["total_rss"]; !ok {
		t.Errorf("memory.stat lacks total_rss: %v", s.Stat)
	}
}

// TestKillCountersRealV1Cgroup makes the kernel OOM-kill a process in a
// child cgroup and checks that the counters see the kill.
func TestKillCountersRealV1Cgroup(t *testing.T) {
	rel := makeChildMemcg(t, "oomscope-kill", 16<<20)
	dir := filepath.Join("/sys/fs/cgroup/memory", rel)
	// Swap would let the process grow past the limit slowly; forbid it.
	_ = os.WriteFile(filepath.Join(dir, "memory.swappiness"), []byte("0"), 0o644)

	k, err := NewKillCounters(mustFS(t, DefaultCgroupRoot), DefaultProcRoot, nil)
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Now()
	k.now = func() time.Time { return clock }
	empty := mkReport(0)
	if got, errs := k.Check(empty, rel, true); len(got) != 0 || len(errs) != 0 {
		t.Fatalf("baseline: missed %v, errors %v", got, errs)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The shell joins the cgroup, then becomes tail, which reads
	// /dev/zero into memory looking for a newline until it is killed.
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", `echo $$ > "$1/cgroup.procs" && exec tail /dev/zero`, "sh", dir)
	err = cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("the process was not OOM-killed within 30s: %v", err)
	}
	if err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("process ended with %v, want killed", err)
	}
	name, v, err := k.fs.killCounter(rel)
	if err != nil {
		t.Fatal(err)
	}
	if name != "memory.oom_control:oom_kill" || v != 1 {
		t.Fatalf("kill counter %s = %d, want memory.oom_control:oom_kill = 1", name, v)
	}
	// Reports that show no kill: the first could still be followed by the
	// kill's own report; at one more than confirmGrace later the cgroup's
	// kill (and the node's, unless other tests killed something
	// meanwhile) is missed.
	clock = clock.Add(time.Second)
	got, errs := k.Check(empty, rel, true)
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	for _, m := range got {
		if m.Cgroup == rel {
			t.Fatalf("flagged at the first report after the kill: %+v", m)
		}
	}
	clock = clock.Add(confirmGrace + time.Second)
	got, errs = k.Check(empty, rel, true)
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	var cg *report.MissedKills
	for i := range got {
		if got[i].Cgroup == rel {
			cg = &got[i]
		}
	}
	if cg == nil || cg.Count != 1 {
		t.Fatalf("missed kills = %+v, want 1 for %s", got, rel)
	}
	// Nothing new: nothing missed.
	clock = clock.Add(confirmGrace + time.Second)
	if got, _ := k.Check(empty, rel, true); len(got) != 0 {
		for _, m := range got {
			if m.Cgroup == rel {
				t.Errorf("second check: %+v", m)
			}
		}
	}
}

func mustFS(t *testing.T, root string) *FS {
	t.Helper()
	fs, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

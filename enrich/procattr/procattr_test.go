package procattr

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

func writeProc(t *testing.T, root string, pid int, comm, cgroup string) {
	t.Helper()
	dir := filepath.Join(root, strconv.Itoa(pid))
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "comm"), []byte(comm+"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "cgroup"), []byte(cgroup), 0o644)
}

func TestObserveAndVictim(t *testing.T) {
	root := t.TempDir()
	const v1 = "12:memory:/kubepods/burstable/pod0b7e3c1e-5a42-4c1b-9d7a-2f1f8c3e9a11/3f9a\n11:cpu,cpuacct:/x\n0::/init.scope\n"
	writeProc(t, root, 4242, "java", v1)
	writeProc(t, root, 77, "a) b", "0::/kubepods.slice/pod.slice/cri-containerd-ab.scope\n")
	writeProc(t, root, 88, "other", "0::/x\n")
	writeProc(t, root, 99, "ns", "0::/../../kubepods/pod\n")
	writeProc(t, root, 66, "exited", "12:memory:/\n0::/\n")
	tr := New(root)
	tr.Observe("Memory cgroup out of memory: Killed process 4242 (java) total-vm:1234kB, anon-rss:1kB")
	tr.Observe("Out of memory: Killed process 77 (a) b) total-vm:1kB")
	tr.Observe("Killed process 88 (java) total-vm:1kB")   // pid reused by another comm
	tr.Observe("Killed process 99 (ns) total-vm:1kB")     // outside our cgroup namespace
	tr.Observe("Killed process 5 (gone) total-vm:1kB")    // already reaped
	tr.Observe("Killed process 66 (exited) total-vm:1kB") // past cgroup_exit: shows the root
	tr.Observe("some other line")
	if r, ok := tr.Victim(4242, "java"); !ok || r.Cgroup != "/kubepods/burstable/pod0b7e3c1e-5a42-4c1b-9d7a-2f1f8c3e9a11/3f9a" {
		t.Errorf("4242: %+v %v", r, ok)
	}
	if _, ok := tr.Victim(4242, "java"); ok {
		t.Error("a reading was handed out twice")
	}
	if r, ok := tr.Victim(77, "a) b"); !ok || r.Cgroup != "/kubepods.slice/pod.slice/cri-containerd-ab.scope" {
		t.Errorf("77: %+v %v", r, ok)
	}
	if r, ok := tr.Victim(66, "exited"); ok {
		t.Errorf("a task moved to the root cgroup at exit was attributed: %+v", r)
	}
	for _, pid := range []int{88, 99, 5} {
		if r, ok := tr.Victim(pid, "java"); ok {
			t.Errorf("pid %d attributed: %+v", pid, r)
		}
	}
	if _, ok := tr.Victim(77, "b"); ok {
		t.Error("a reading matched another comm")
	}
}

func TestBounded(t *testing.T) {
	root := t.TempDir()
	tr := New(root)
	for pid := 1; pid <= maxEntries+100; pid++ {
		writeProc(t, root, pid, "x", "0::/a\n")
		tr.Observe("Killed process " + strconv.Itoa(pid) + " (x) total-vm:1kB")
	}
	if len(tr.byPID) != maxEntries || len(tr.order) != maxEntries {
		t.Errorf("kept %d readings, want at most %d", len(tr.byPID), maxEntries)
	}
	if _, ok := tr.Victim(1, "x"); ok {
		t.Error("the oldest reading was not forgotten")
	}
}

// TestRealProcess reads a live process's own entry as the daemon would.
func TestRealProcess(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	tr := New("/proc")
	tr.Observe("Killed process " + strconv.Itoa(cmd.Process.Pid) + " (sleep) total-vm:1kB")
	r, ok := tr.Victim(cmd.Process.Pid, "sleep")
	self, _ := os.ReadFile("/proc/self/cgroup")
	want, _ := MemoryCgroup(string(self))
	if !ok || r.Cgroup != want {
		t.Errorf("reading %+v %v, want cgroup %q (the test's own)", r, ok, want)
	}
}

// TestSameLineReadOnce: the same kill line passed on twice (by the counter
// tracker, then by the daemon's reader) reads /proc once; another kill of
// the same pid (its own line) is read again.
func TestSameLineReadOnce(t *testing.T) {
	root := t.TempDir()
	writeProc(t, root, 4242, "java", "0::/a\n")
	tr := New(root)
	line := "Memory cgroup out of memory: Killed process 4242 (java) total-vm:1234kB, anon-rss:1kB"
	tr.Observe(line)
	// Were it read again, the second look would see the new cgroup.
	writeProc(t, root, 4242, "java", "0::/b\n")
	tr.Observe(line)
	if r, ok := tr.Victim(4242, "java"); !ok || r.Cgroup != "/a" {
		t.Fatalf("after the same line twice: %+v %v, want the first reading (/a)", r, ok)
	}
	tr.Observe("Memory cgroup out of memory: Killed process 4242 (java) total-vm:999kB, anon-rss:2kB")
	if r, ok := tr.Victim(4242, "java"); !ok || r.Cgroup != "/b" {
		t.Fatalf("another kill line of the pid: %+v %v, want it read again (/b)", r, ok)
	}
}

//go:build linux

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// hierarchy is one mounted memory cgroup hierarchy of the guest.
type hierarchy struct {
	// Mode is "v1" or "v2".
	Mode string
	// Mount is where it is mounted.
	Mount string
}

// mountV2 mounts cgroup2 at dir (once) and enables the memory controller in
// the root's subtree_control. Enabling can fail with EBUSY for a while after
// the controller was bound to a v1 hierarchy: it is retried until timeout.
func mountV2(dir string, timeout time.Duration) (*hierarchy, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("mkdir %s: %w", dir, err)
	}
	if !isMount(dir) {
		if err := syscall.Mount("cgroup2", dir, "cgroup2", 0, ""); err != nil {
			return nil, fmt.Errorf("mount cgroup2 on %s: %w", dir, err)
		}
	}
	h := &hierarchy{Mode: "v2", Mount: dir}
	deadline := time.Now().Add(timeout)
	for {
		err := writeFile(filepath.Join(dir, "cgroup.subtree_control"), "+memory")
		if err == nil {
			return h, nil
		}
		if time.Now().After(deadline) {
			ctl, _ := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
			return nil, fmt.Errorf("enable memory controller on cgroup2 (controllers: %q): %w", strings.TrimSpace(string(ctl)), err)
		}
		_ = writeFile("/proc/sys/vm/drop_caches", "3")
		time.Sleep(500 * time.Millisecond)
	}
}

// mountV1 mounts a cgroup v1 hierarchy with only the memory controller at
// dir, on a tmpfs of its own parent so nothing else is touched.
func mountV1(dir string) (*hierarchy, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("mkdir %s: %w", dir, err)
	}
	if err := syscall.Mount("memory", dir, "cgroup", 0, "memory"); err != nil {
		return nil, fmt.Errorf("mount cgroup v1 memory on %s: %w", dir, err)
	}
	h := &hierarchy{Mode: "v1", Mount: dir}
	// Kernels before 6.0 are not hierarchical unless asked (the knob is
	// gone or fixed at 1 later); only the root can be set with no children.
	if p := filepath.Join(dir, "memory.use_hierarchy"); exists(p) {
		if b, _ := os.ReadFile(p); strings.TrimSpace(string(b)) != "1" {
			if err := writeFile(p, "1"); err != nil {
				return nil, fmt.Errorf("set memory.use_hierarchy: %w", err)
			}
		}
	}
	return h, nil
}

// unmount unmounts a v1 hierarchy so its controller returns to cgroup2.
func (h *hierarchy) unmount() error {
	if err := syscall.Unmount(h.Mount, 0); err != nil {
		return fmt.Errorf("umount %s: %w", h.Mount, err)
	}
	return nil
}

// mkdir creates the cgroup at path (as the kernel prints it, starting with
// '/') and every missing ancestor, enabling the memory controller on the way
// (v2). Every cgroup created is returned in creation order.
func (h *hierarchy) mkdir(path string) ([]*Cg, error) {
	var made []*Cg
	parts := strings.Split(strings.Trim(path, "/"), "/")
	cur := ""
	for i, part := range parts {
		parentFS := filepath.Join(h.Mount, cur)
		cur += "/" + part
		fs := filepath.Join(h.Mount, cur)
		if h.Mode == "v2" && i > 0 {
			if err := writeFile(filepath.Join(parentFS, "cgroup.subtree_control"), "+memory"); err != nil {
				return made, fmt.Errorf("enable memory in %s: %w", parentFS, err)
			}
		}
		if exists(fs) {
			continue
		}
		if err := os.Mkdir(fs, 0o755); err != nil {
			return made, fmt.Errorf("mkdir cgroup %s: %w", fs, err)
		}
		made = append(made, &Cg{Path: cur, FSPath: fs, Created: true})
	}
	return made, nil
}

// set writes value to the cgroup's control file and records the write and
// what the file reads back.
func (h *hierarchy) set(cg *Cg, file, value string) error {
	if err := writeFile(filepath.Join(cg.FSPath, file), value); err != nil {
		return fmt.Errorf("write %q to %s/%s: %w", value, cg.Path, file, err)
	}
	cg.Writes = append(cg.Writes, Write{File: file, Value: value})
	back, _ := os.ReadFile(filepath.Join(cg.FSPath, file))
	v := strings.TrimSpace(string(back))
	switch file {
	case "memory.max", "memory.limit_in_bytes":
		cg.Limit = v
	case "memory.oom.group":
		cg.OOMGroup = v
	}
	return nil
}

// counters reads the kernel's own OOM counters of cg.
func (h *hierarchy) counters(cg *Cg) Counters {
	var c Counters
	if h.Mode == "v2" {
		kv := readKV(filepath.Join(cg.FSPath, "memory.events"))
		c.OOM, c.OOMKill, c.OOMGroupKill, c.Max = kv["oom"], kv["oom_kill"], kv["oom_group_kill"], kv["max"]
		return c
	}
	kv := readKV(filepath.Join(cg.FSPath, "memory.oom_control"))
	c.OOMKill, c.UnderOOM = kv["oom_kill"], kv["under_oom"]
	if v, err := readInt(filepath.Join(cg.FSPath, "memory.failcnt")); err == nil {
		c.Max = &v
	}
	return c
}

// filesAfter snapshots a few raw control files for the truth record.
func (h *hierarchy) filesAfter(cg *Cg) map[string]string {
	names := []string{"memory.events", "memory.events.local", "memory.max", "memory.current", "memory.peak"}
	if h.Mode == "v1" {
		names = []string{"memory.oom_control", "memory.failcnt", "memory.limit_in_bytes", "memory.max_usage_in_bytes"}
	}
	m := map[string]string{}
	for _, n := range names {
		if b, err := os.ReadFile(filepath.Join(cg.FSPath, n)); err == nil {
			m[n] = strings.TrimSpace(string(b))
		}
	}
	return m
}

// remove deletes the cgroups (deepest first), retrying while the kernel
// finishes tearing down killed tasks.
func (h *hierarchy) remove(cgs []*Cg) error {
	var errs []error
	for i := len(cgs) - 1; i >= 0; i-- {
		cg := cgs[i]
		if !cg.Created {
			continue
		}
		var err error
		for try := 0; try < 100; try++ {
			if err = syscall.Rmdir(cg.FSPath); err == nil || errors.Is(err, syscall.ENOENT) {
				err = nil
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("rmdir %s: %w", cg.FSPath, err))
		}
	}
	return errors.Join(errs...)
}

func sub(a, b *int64) *int64 {
	if a == nil || b == nil {
		return nil
	}
	d := *a - *b
	return &d
}

func delta(after, before Counters) Counters {
	return Counters{
		OOM:          sub(after.OOM, before.OOM),
		OOMKill:      sub(after.OOMKill, before.OOMKill),
		OOMGroupKill: sub(after.OOMGroupKill, before.OOMGroupKill),
		Max:          sub(after.Max, before.Max),
		UnderOOM:     after.UnderOOM,
	}
}

func readKV(path string) map[string]*int64 {
	m := map[string]*int64{}
	b, err := os.ReadFile(path)
	if err != nil {
		return m
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		if v, err := strconv.ParseInt(f[1], 10, 64); err == nil {
			m[f[0]] = &v
		}
	}
	return m
}

func readInt(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

func writeFile(path, value string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, werr := f.Write([]byte(value))
	cerr := f.Close()
	if werr != nil {
		return werr
	}
	return cerr
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func isMount(dir string) bool {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[1] == dir {
			return true
		}
	}
	return false
}

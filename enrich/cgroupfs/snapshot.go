package cgroupfs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/oomscope/oomscope/report"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	v1stats "github.com/containerd/cgroups/v3/cgroup1/stats"
	"github.com/containerd/cgroups/v3/cgroup2"
	"golang.org/x/sys/unix"
)

// DefaultCgroupRoot is where the cgroup filesystems are mounted on the host.
// A DaemonSet mounts the host's at /host/sys/fs/cgroup (see [WithCgroupRoot]).
const DefaultCgroupRoot = "/sys/fs/cgroup"

// DefaultProcRoot is where procfs is mounted.
const DefaultProcRoot = "/proc"

// ErrCgroupGone is returned (wrapped) when the cgroup to read no longer
// exists: the container or pod was removed after the kill.
var ErrCgroupGone = errors.New("cgroup no longer exists")

// unlimitedV1 is the smallest value a cgroup v1 memory.limit_in_bytes shows
// when no limit is set (PAGE_COUNTER_MAX pages, rounded to the page size;
// 9223372036854771712 with 4 KiB pages).
const unlimitedV1 = uint64(1) << 62

// FS reads memory cgroups below a cgroup root, v1 or v2.
type FS struct {
	// root is the cgroup mount root (/sys/fs/cgroup).
	root string
	// version is CgroupV1 or CgroupV2, "" when no memory controller was
	// found.
	version string
	// memRoot is the directory of the memory hierarchy's root cgroup:
	// root/memory (v1), root (v2) or root/unified (v2 in hybrid mode).
	memRoot string
}

// Open finds the memory controller below root. For the default root
// it asks cgroups.Mode(); for any other (a host's root mounted elsewhere, a
// test fixture) it looks at the files.
func Open(root string) (*FS, error) {
	fs := &FS{root: root}
	isDir := func(p string) bool {
		st, err := os.Stat(p)
		return err == nil && st.IsDir()
	}
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	v1Mem := filepath.Join(root, "memory")
	if filepath.Clean(root) == DefaultCgroupRoot {
		switch cgroups.Mode() {
		case cgroups.Unified:
			fs.version, fs.memRoot = report.CgroupV2, root
		case cgroups.Legacy, cgroups.Hybrid:
			if isDir(v1Mem) {
				fs.version, fs.memRoot = report.CgroupV1, v1Mem
			} else if exists(filepath.Join(root, "unified", "memory.stat")) || exists(filepath.Join(root, "unified", "cgroup.controllers")) {
				fs.version, fs.memRoot = report.CgroupV2, filepath.Join(root, "unified")
			}
		}
	} else {
		switch {
		case exists(filepath.Join(root, "cgroup.controllers")):
			fs.version, fs.memRoot = report.CgroupV2, root
		case isDir(v1Mem):
			fs.version, fs.memRoot = report.CgroupV1, v1Mem
		}
	}
	if fs.version == "" {
		return fs, fmt.Errorf("no memory cgroup controller found below %s", root)
	}
	return fs, nil
}

// Version is the memory controller's hierarchy: report.CgroupV1 or
// report.CgroupV2.
func (fs *FS) Version() string { return fs.version }

// dir is the directory of the cgroup path p (as printed by the kernel:
// relative to the hierarchy root). ".." cannot climb above the root.
func (fs *FS) dir(p string) (string, error) {
	if p == "" {
		return "", errors.New("empty cgroup path")
	}
	return filepath.Join(fs.memRoot, filepath.Clean("/"+p)), nil
}

// exists reports whether the cgroup p exists.
func (fs *FS) exists(p string) (bool, error) {
	d, err := fs.dir(p)
	if err != nil {
		return false, err
	}
	st, err := os.Stat(d)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("stat cgroup %s: %w", p, err)
	}
	return st.IsDir(), nil
}

// Snapshot reads the cgroup p. An error wrapping [ErrCgroupGone] means the
// cgroup was removed.
func (fs *FS) Snapshot(p string) (*report.Snapshot, error) {
	ok, err := fs.exists(p)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%s: %w", p, ErrCgroupGone)
	}
	d, _ := fs.dir(p)
	s := &report.Snapshot{Path: p, Version: fs.version, ReadAt: time.Now().UTC()}
	if fs.version == report.CgroupV1 {
		err = fs.snapshotV1(p, d, s)
	} else {
		err = fs.snapshotV2(p, d, s)
	}
	if err != nil {
		if _, serr := os.Stat(d); errors.Is(serr, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w", p, ErrCgroupGone)
		}
		return nil, err
	}
	if n, err := countProcs(filepath.Join(d, "cgroup.procs")); err == nil {
		s.Procs = &n
	}
	return s, nil
}

func (fs *FS) snapshotV1(p, d string, s *report.Snapshot) error {
	// Read only the modules the kernel has: kmem files are gone from
	// recent kernels, memsw needs swap accounting.
	var ignore []string
	for _, mod := range []string{"memsw", "kmem", "kmem.tcp"} {
		if _, err := os.Stat(filepath.Join(d, "memory."+mod+".usage_in_bytes")); err != nil {
			ignore = append(ignore, mod)
		}
	}
	mc := cgroup1.NewMemory(filepath.Dir(fs.memRoot), cgroup1.IgnoreModules(ignore...))
	var m v1stats.Metrics
	if err := mc.Stat(filepath.Clean("/"+p), &m); err != nil {
		return fmt.Errorf("read v1 memory cgroup %s: %w", p, err)
	}
	if m.Memory == nil || m.Memory.Usage == nil {
		return fmt.Errorf("read v1 memory cgroup %s: no usage", p)
	}
	u := m.Memory.Usage
	s.UsageBytes = u.Usage
	if u.Limit < unlimitedV1 {
		s.LimitBytes = new(u.Limit)
	}
	s.PeakBytes = new(u.Max)
	s.Failcnt = new(u.Failcnt)
	if sw := m.Memory.Swap; sw != nil && !contains(ignore, "memsw") && sw.Usage >= u.Usage {
		s.SwapBytes = new(sw.Usage - u.Usage)
	}
	if oc := m.MemoryOomControl; oc != nil {
		s.OOMControl = &report.OOMControl{OOMKillDisable: oc.OomKillDisable != 0, UnderOOM: oc.UnderOom != 0, OOMKill: oc.OomKill}
	}
	stat, err := readKVFile(filepath.Join(d, "memory.stat"))
	if err != nil {
		return fmt.Errorf("read v1 memory cgroup %s: %w", p, err)
	}
	s.Stat = stat
	return nil
}

func (fs *FS) snapshotV2(p, d string, s *report.Snapshot) error {
	m, err := cgroup2.Load(filepath.Clean("/"+p), cgroup2.WithMountpoint(fs.memRoot))
	if err != nil {
		return fmt.Errorf("load v2 cgroup %s: %w", p, err)
	}
	met, err := m.StatFiltered(cgroup2.StatMemory | cgroup2.StatMemoryEvents)
	if err != nil {
		return fmt.Errorf("read v2 memory cgroup %s: %w", p, err)
	}
	if _, err := os.Stat(filepath.Join(d, "memory.current")); err != nil {
		// The root cgroup and cgroups without the memory controller
		// enabled have no memory.current.
		return fmt.Errorf("read v2 memory cgroup %s: memory controller not enabled: %w", p, err)
	}
	if mem := met.Memory; mem != nil {
		s.UsageBytes = mem.Usage
		if mem.UsageLimit != math.MaxUint64 {
			s.LimitBytes = new(mem.UsageLimit)
		}
		if exists(filepath.Join(d, "memory.peak")) {
			s.PeakBytes = new(mem.MaxUsage)
		}
		if exists(filepath.Join(d, "memory.swap.current")) {
			s.SwapBytes = new(mem.SwapUsage)
		}
	}
	if ev := met.MemoryEvents; ev != nil {
		s.Events = &report.MemoryEvents{Low: ev.Low, High: ev.High, Max: ev.Max, OOM: ev.Oom, OOMKill: ev.OomKill, OOMGroupKill: ev.OomGroupKill}
	}
	if b, err := os.ReadFile(filepath.Join(d, "memory.oom.group")); err == nil {
		g := strings.TrimSpace(string(b)) == "1"
		s.OOMGroup = &g
	}
	stat, err := readKVFile(filepath.Join(d, "memory.stat"))
	if err != nil {
		return fmt.Errorf("read v2 memory cgroup %s: %w", p, err)
	}
	s.Stat = stat
	return nil
}

// killCounter reads the cgroup's own OOM-kill counter: v1
// memory.oom_control oom_kill (counts this cgroup's processes only), v2
// memory.events.local oom_kill, or memory.events oom_kill (this cgroup and
// its descendants) on kernels without the local file. It returns the
// counter's name with the value.
func (fs *FS) killCounter(p string) (name string, v uint64, err error) {
	d, err := fs.dir(p)
	if err != nil {
		return "", 0, err
	}
	var file string
	switch fs.version {
	case report.CgroupV1:
		name, file = "memory.oom_control:oom_kill", "memory.oom_control"
	default:
		name, file = "memory.events.local:oom_kill", "memory.events.local"
		if _, err := os.Stat(filepath.Join(d, file)); err != nil {
			name, file = "memory.events:oom_kill", "memory.events"
		}
	}
	kv, err := readKVFile(filepath.Join(d, file))
	if errors.Is(err, os.ErrNotExist) {
		if _, serr := os.Stat(d); errors.Is(serr, os.ErrNotExist) {
			return name, 0, fmt.Errorf("%s: %w", p, ErrCgroupGone)
		}
	}
	if err != nil {
		return name, 0, err
	}
	v, ok := kv["oom_kill"]
	if !ok {
		return name, 0, fmt.Errorf("%s has no oom_kill counter (kernel older than 4.13?)", filepath.Join(p, file))
	}
	return name, v, nil
}

// readKVFile reads a "key value" per line file (memory.stat,
// memory.events, memory.oom_control, /proc/vmstat).
func readKVFile(path string) (map[string]uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m, err := parseKV(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return m, nil
}

// parseKV parses "key value" lines. Lines that are not two fields with a
// number are an error; blank lines are skipped.
func parseKV(r io.Reader) (map[string]uint64, error) {
	m := make(map[string]uint64)
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) != 2 {
			return nil, fmt.Errorf("line %d: want 2 fields, found %d: %q", n, len(f), sc.Text())
		}
		v, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		m[f[0]] = v
	}
	return m, sc.Err()
}

func countProcs(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return len(strings.Fields(string(b))), nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// OOMKillCounter is a cgroup's own OOM-kill counter, as read by
// [FS.OOMKills].
type OOMKillCounter struct {
	// Kills is the counter's value.
	Kills uint64
	// Inode is the cgroup directory's inode number: a cgroup removed and
	// made again under the same path has another one (and a counter that
	// started again at zero).
	Inode uint64
	// Local is false when the counter includes the cgroup's descendants
	// (v2 memory.events on kernels without memory.events.local, < 5.2).
	Local bool
}

// OOMKills reads the OOM-kill counter of the cgroup p (a path as the
// kernel prints it). An error wrapping [ErrCgroupGone] means the cgroup was
// removed.
func (fs *FS) OOMKills(p string) (OOMKillCounter, error) {
	d, err := fs.dir(p)
	if err != nil {
		return OOMKillCounter{}, err
	}
	var st unix.Stat_t
	if err := unix.Stat(d, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return OOMKillCounter{}, fmt.Errorf("%s: %w", p, ErrCgroupGone)
		}
		return OOMKillCounter{}, fmt.Errorf("stat cgroup %s: %w", p, err)
	}
	name, v, err := fs.killCounter(p)
	if err != nil {
		return OOMKillCounter{}, err
	}
	return OOMKillCounter{Kills: v, Inode: st.Ino, Local: name != "memory.events:oom_kill"}, nil
}

// Children returns the paths of the cgroups directly below p, at most max
// of them (in directory order).
func (fs *FS) Children(p string, max int) ([]string, error) {
	d, err := fs.dir(p)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(d)
	if err != nil {
		return nil, fmt.Errorf("list cgroup %s: %w", p, err)
	}
	defer f.Close()
	ents, err := f.ReadDir(-1)
	if err != nil {
		return nil, fmt.Errorf("list cgroup %s: %w", p, err)
	}
	var out []string
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		out = append(out, path.Join("/", p, e.Name()))
		if len(out) >= max {
			break
		}
	}
	return out, nil
}

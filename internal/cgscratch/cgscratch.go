// Package cgscratch builds a scratch memory-cgroup hierarchy for oomscope's
// live end-to-end tests, strictly below the calling process's own memory
// cgroup, and tears it down again.
//
// The hierarchy lives in one directory named oomscope-e2e-<pid>-<random>
// directly below the process's own memory cgroup (pid is the creating
// process):
//
//	cgroup v1: /sys/fs/cgroup/memory/<own path>/oomscope-e2e-<pid>-<rand>/...
//	cgroup v2: /sys/fs/cgroup/<own path>/oomscope-e2e-<pid>-<rand>/...
//
// Below it, callers create Kubernetes-shaped paths (see [CgroupfsPod],
// [CgroupfsContainer], [SystemdPod], [SystemdContainer]), write limits, move
// processes in and read the kernel's own OOM counters back.
//
// Safety rules this package keeps: it never writes to a cgroup it did not
// create (on cgroup v2 it refuses to run unless the memory controller is
// already enabled for the children of the process's own cgroup), and
// [Hierarchy.Close] kills every process in the tree, waits for them to go and
// removes every directory it created, bottom-up. [RemoveStale] removes the
// leftovers of crashed earlier runs, only below the process's own cgroup.
package cgscratch

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/cgroups/v3"
	"github.com/rs/zerolog"
)

// Prefix is the name prefix of every scratch root this package creates.
const Prefix = "oomscope-e2e-"

// Version is the cgroup version a hierarchy uses for the memory controller.
type Version int

// Cgroup versions.
const (
	V1 Version = 1
	V2 Version = 2
)

// String returns "v1" or "v2".
func (v Version) String() string { return "v" + strconv.Itoa(int(v)) }

// Option configures [New].
type Option func(*config)

type config struct {
	log       zerolog.Logger
	selfCG    string // /proc/self/cgroup to read
	mountInfo string // /proc/self/mountinfo to read
}

// WithLogger sets the logger (default: none).
func WithLogger(l zerolog.Logger) Option { return func(c *config) { c.log = l } }

// Hierarchy is a scratch memory-cgroup tree. Its methods are not safe for
// concurrent use, except [Cgroup] reads.
type Hierarchy struct {
	version Version
	mount   string // mount point of the memory hierarchy
	mntRoot string // the mount's root inside the hierarchy ("/" normally)
	own     string // own cgroup, from the hierarchy's root ("/process_api/x")
	root    *Cgroup
	created []*Cgroup // in creation order (parents first)
	log     zerolog.Logger
}

// Cgroup is one cgroup of the scratch tree.
type Cgroup struct {
	// Path is the cgroup's path as the kernel prints it in an OOM report
	// (oom_memcg=, task_memcg=, "Memory cgroup stats for"): relative to the
	// root of the memory hierarchy.
	Path string
	// Dir is the cgroup's directory in the cgroup file system.
	Dir string

	h *Hierarchy
}

// New detects the cgroup mode (github.com/containerd/cgroups/v3), finds the
// calling process's own memory cgroup and creates the scratch root below it.
// Stale scratch roots of earlier runs are removed first (see [RemoveStale]).
func New(ctx context.Context, opts ...Option) (*Hierarchy, error) {
	cfg := config{log: zerolog.Nop(), selfCG: "/proc/self/cgroup", mountInfo: "/proc/self/mountinfo"}
	for _, o := range opts {
		o(&cfg)
	}
	h, err := locate(cfg)
	if err != nil {
		return nil, err
	}
	h.log = cfg.log
	ownDir := h.dir(h.own)
	if _, err := os.Stat(ownDir); err != nil {
		return nil, fmt.Errorf("cgscratch: own memory cgroup %s: %w", ownDir, err)
	}
	if h.version == V2 {
		ctl, err := os.ReadFile(filepath.Join(ownDir, "cgroup.subtree_control"))
		if err != nil {
			return nil, fmt.Errorf("cgscratch: read subtree controllers of own cgroup: %w", err)
		}
		if !slices.Contains(strings.Fields(string(ctl)), "memory") {
			return nil, fmt.Errorf("cgscratch: cgroup v2: the memory controller is not enabled for the children of own cgroup %s (cgroup.subtree_control: %q); it must be delegated", h.own, strings.TrimSpace(string(ctl)))
		}
	}
	if err := RemoveStale(ctx, h.log, opts...); err != nil {
		h.log.Warn().Err(err).Msg("removing stale scratch cgroups")
	}
	name := Prefix + strconv.Itoa(os.Getpid()) + "-" + randHex(4)
	root, err := h.mkdir(path.Join(h.own, name))
	if err != nil {
		return nil, err
	}
	h.root = root
	if h.version == V1 {
		if err := root.ensureHierarchy(); err != nil {
			_ = h.Close(ctx)
			return nil, err
		}
	}
	return h, nil
}

// ensureHierarchy makes the scratch root hierarchical on cgroup v1
// (memory.use_hierarchy = 1, so that a pod-level limit covers its
// containers). Kernels >= 5.x are always hierarchical (the file reads 1 and
// rejects 0); older ones inherit the parent's setting at mkdir, and allow
// setting it on a cgroup without children whose parent is not hierarchical.
// The own cgroup is never written to.
func (c *Cgroup) ensureHierarchy() error {
	b, err := os.ReadFile(filepath.Join(c.Dir, "memory.use_hierarchy"))
	if errors.Is(err, os.ErrNotExist) {
		return nil // kernels that dropped the knob are always hierarchical
	}
	if err != nil {
		return fmt.Errorf("cgscratch: read use_hierarchy: %w", err)
	}
	if strings.TrimSpace(string(b)) == "1" {
		return nil
	}
	return c.write("memory.use_hierarchy", "1")
}

// Version is the cgroup version of the memory controller.
func (h *Hierarchy) Version() Version { return h.version }

// Root is the scratch root (oomscope-e2e-<pid>-<rand>).
func (h *Hierarchy) Root() *Cgroup { return h.root }

// Own is the calling process's own memory cgroup as the kernel prints it.
func (h *Hierarchy) Own() string { return h.kernelPath(h.own) }

// dir is the directory of the cgroup at p, a path from the hierarchy's
// root (as /proc/self/cgroup and the kernel print it). The mount may show
// only a subtree (its root in mountinfo is then not "/").
func (h *Hierarchy) dir(p string) string {
	rel := p
	if h.mntRoot != "/" {
		rel = strings.TrimPrefix(p, h.mntRoot)
	}
	return filepath.Join(h.mount, filepath.FromSlash(rel))
}

// kernelPath is the path of a cgroup as the kernel prints it in an OOM
// report: from the hierarchy's root. (Inside a cgroup namespace
// /proc/self/cgroup is relative to the namespace; this package then gets
// the paths wrong, and the e2e test says so.)
func (h *Hierarchy) kernelPath(p string) string { return path.Join("/", p) }

// Create makes the cgroup rel (slash-separated, relative to the scratch
// root) and every missing parent. On cgroup v2 it enables the memory
// controller for the children of each parent it goes through.
func (h *Hierarchy) Create(rel string) (*Cgroup, error) {
	rel = strings.Trim(path.Clean("/"+rel), "/")
	if rel == "" || strings.HasPrefix(rel, "..") {
		return nil, fmt.Errorf("cgscratch: bad cgroup name %q", rel)
	}
	parent := h.root
	cur := ""
	for _, seg := range strings.Split(rel, "/") {
		cur = path.Join(cur, seg)
		if c := h.lookup(cur); c != nil {
			parent = c
			continue
		}
		if h.version == V2 {
			if err := parent.enableMemory(); err != nil {
				return nil, err
			}
		}
		c, err := h.mkdir(path.Join(parent.Path, seg))
		if err != nil {
			return nil, err
		}
		parent = c
	}
	return parent, nil
}

// lookup returns the created cgroup at rel below the scratch root.
func (h *Hierarchy) lookup(rel string) *Cgroup {
	want := path.Join(h.root.Path, rel)
	for _, c := range h.created {
		if c.Path == want {
			return c
		}
	}
	return nil
}

func (h *Hierarchy) mkdir(rel string) (*Cgroup, error) {
	c := &Cgroup{Path: h.kernelPath(rel), Dir: h.dir(rel), h: h}
	if err := os.Mkdir(c.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("cgscratch: create cgroup %s: %w", c.Dir, err)
	}
	h.created = append(h.created, c)
	h.log.Debug().Str("cgroup", c.Path).Msg("created")
	return c, nil
}

func (c *Cgroup) enableMemory() error {
	b, err := os.ReadFile(filepath.Join(c.Dir, "cgroup.subtree_control"))
	if err != nil {
		return fmt.Errorf("cgscratch: %s: %w", c.Path, err)
	}
	if slices.Contains(strings.Fields(string(b)), "memory") {
		return nil
	}
	return c.write("cgroup.subtree_control", "+memory")
}

// Close kills every process in the scratch tree, waits until the cgroups
// are empty and removes them bottom-up. It is safe to call more than once.
func (h *Hierarchy) Close(ctx context.Context) error {
	if h == nil || len(h.created) == 0 {
		return nil
	}
	err := removeTree(ctx, h.log, h.root.Dir)
	if err == nil {
		h.created = nil
	}
	return err
}

// removeTree kills the processes of the cgroup tree at dir and removes its
// directories bottom-up.
func removeTree(ctx context.Context, log zerolog.Logger, dir string) error {
	var dirs []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("cgscratch: walk %s: %w", dir, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for {
		alive := 0
		for _, d := range dirs {
			pids, err := readPids(filepath.Join(d, "cgroup.procs"))
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("cgscratch: %w", err)
			}
			for _, pid := range pids {
				alive++
				if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
					return fmt.Errorf("cgscratch: kill %d in %s: %w", pid, d, err)
				}
			}
		}
		if alive == 0 {
			break
		}
		log.Debug().Int("processes", alive).Str("cgroup", dir).Msg("killed, waiting")
		select {
		case <-ctx.Done():
			return fmt.Errorf("cgscratch: %d processes still in %s: %w", alive, dir, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	// Bottom-up: deepest first. A cgroup whose last task just exited can
	// refuse rmdir with EBUSY for a moment.
	slices.SortFunc(dirs, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	for _, d := range dirs {
		for {
			err := os.Remove(d)
			if err == nil || errors.Is(err, os.ErrNotExist) {
				log.Debug().Str("dir", d).Msg("removed")
				break
			}
			if !errors.Is(err, syscall.EBUSY) {
				return fmt.Errorf("cgscratch: remove %s: %w", d, err)
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("cgscratch: remove %s: %w (%w)", d, err, ctx.Err())
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return nil
}

// RemoveStale removes scratch roots (oomscope-e2e-<pid>-*) that crashed
// earlier runs left directly below the calling process's own memory cgroup,
// killing their processes first. A root whose creating process is still
// alive belongs to a concurrent run and is left alone. It looks nowhere else.
func RemoveStale(ctx context.Context, log zerolog.Logger, opts ...Option) error {
	cfg := config{selfCG: "/proc/self/cgroup", mountInfo: "/proc/self/mountinfo"}
	for _, o := range opts {
		o(&cfg)
	}
	h, err := locate(cfg)
	if err != nil {
		return err
	}
	ents, err := os.ReadDir(h.dir(h.own))
	if err != nil {
		return fmt.Errorf("cgscratch: list own cgroup: %w", err)
	}
	var errs []error
	for _, e := range ents {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), Prefix) {
			continue
		}
		pidStr, _, _ := strings.Cut(strings.TrimPrefix(e.Name(), Prefix), "-")
		if pid, err := strconv.Atoi(pidStr); err == nil && pid != os.Getpid() && syscall.Kill(pid, 0) == nil {
			continue // a concurrent run's tree
		}
		d := filepath.Join(h.dir(h.own), e.Name())
		log.Info().Str("dir", d).Msg("removing stale scratch cgroup")
		if err := removeTree(ctx, log, d); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// locate detects the cgroup mode and finds the memory hierarchy's mount and
// the own cgroup, without creating anything.
func locate(cfg config) (*Hierarchy, error) {
	v1paths, unified, err := cgroups.ParseCgroupFileUnified(cfg.selfCG)
	if err != nil {
		return nil, fmt.Errorf("cgscratch: read own cgroup: %w", err)
	}
	h := &Hierarchy{}
	switch mode := cgroups.Mode(); mode {
	case cgroups.Legacy, cgroups.Hybrid:
		own, ok := v1paths["memory"]
		if !ok {
			return nil, fmt.Errorf("cgscratch: cgroup mode %d but %s has no memory line", mode, cfg.selfCG)
		}
		h.version, h.own = V1, own
		h.mount, h.mntRoot, err = findMount(cfg.mountInfo, func(fstype, super string) bool {
			return fstype == "cgroup" && slices.Contains(strings.Split(super, ","), "memory")
		})
	case cgroups.Unified:
		h.version, h.own = V2, unified
		h.mount, h.mntRoot, err = findMount(cfg.mountInfo, func(fstype, _ string) bool { return fstype == "cgroup2" })
	default:
		return nil, fmt.Errorf("cgscratch: no cgroup hierarchy mounted (mode %d)", mode)
	}
	if err != nil {
		return nil, err
	}
	if h.own == "" {
		return nil, errors.New("cgscratch: own memory cgroup unknown")
	}
	return h, nil
}

// findMount returns the mount point and the mount's root of the first
// mount in mountinfo that match accepts.
func findMount(mountinfo string, match func(fstype, super string) bool) (mnt, root string, err error) {
	f, err := os.Open(mountinfo)
	if err != nil {
		return "", "", fmt.Errorf("cgscratch: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// 35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(qf) < 3 {
			continue
		}
		if match(qf[0], qf[2]) {
			return pf[4], pf[3], nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", "", fmt.Errorf("cgscratch: read %s: %w", mountinfo, err)
	}
	return "", "", fmt.Errorf("cgscratch: no memory cgroup mount in %s", mountinfo)
}

func readPids(file string) ([]int, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("%s: bad pid %q", file, f)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// write writes value to the cgroup's control file.
func (c *Cgroup) write(file, value string) error {
	if err := os.WriteFile(filepath.Join(c.Dir, file), []byte(value), 0); err != nil {
		return fmt.Errorf("cgscratch: write %q to %s/%s: %w", value, c.Path, file, err)
	}
	return nil
}

func (c *Cgroup) read(file string) (string, error) {
	b, err := os.ReadFile(filepath.Join(c.Dir, file))
	if err != nil {
		return "", fmt.Errorf("cgscratch: read %s/%s: %w", c.Path, file, err)
	}
	return string(b), nil
}

// SetLimit sets the memory limit (memory.limit_in_bytes on v1, memory.max
// on v2) and returns the limit the kernel applied (rounded to pages).
func (c *Cgroup) SetLimit(bytes uint64) (uint64, error) {
	file := "memory.limit_in_bytes"
	if c.h.version == V2 {
		file = "memory.max"
		// No swap: the report's limit is then the one hit.
		if err := c.write("memory.swap.max", "0"); err != nil && !errors.Is(err, os.ErrNotExist) {
			return 0, err
		}
	}
	if err := c.write(file, strconv.FormatUint(bytes, 10)); err != nil {
		return 0, err
	}
	s, err := c.read(file)
	if err != nil {
		return 0, err
	}
	got, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("cgscratch: %s/%s: %w", c.Path, file, err)
	}
	return got, nil
}

// Usage is the cgroup's current memory usage in bytes.
func (c *Cgroup) Usage() (uint64, error) {
	file := "memory.usage_in_bytes"
	if c.h.version == V2 {
		file = "memory.current"
	}
	s, err := c.read(file)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("cgscratch: %s/%s: %w", c.Path, file, err)
	}
	return v, nil
}

// AddProc moves a process into the cgroup (cgroup.procs).
func (c *Cgroup) AddProc(pid int) error { return c.write("cgroup.procs", strconv.Itoa(pid)) }

// Procs lists the processes in the cgroup itself (not its children).
func (c *Cgroup) Procs() ([]int, error) {
	pids, err := readPids(filepath.Join(c.Dir, "cgroup.procs"))
	if err != nil {
		return nil, fmt.Errorf("cgscratch: %w", err)
	}
	return pids, nil
}

// Counters are the kernel's own OOM counters of one cgroup.
type Counters struct {
	// OOMKill counts processes the OOM killer killed in this cgroup itself
	// (v1 memory.oom_control oom_kill, v2 memory.events.local oom_kill).
	OOMKill uint64
	// OOM counts the times the cgroup hit its limit and invoked the OOM
	// killer (v1: not available, 0; v2 memory.events.local oom).
	OOM uint64
	// Failcnt is v1 memory.failcnt, v2 memory.events.local max.
	Failcnt uint64
}

// Counters reads the cgroup's OOM counters. On cgroup v1 oom_kill counts
// only the cgroup's own tasks (not its descendants'); on v2 the local
// events file is used so that the two agree.
func (c *Cgroup) Counters() (Counters, error) {
	var out Counters
	if c.h.version == V1 {
		s, err := c.read("memory.oom_control")
		if err != nil {
			return out, err
		}
		kv := keyValues(s)
		out.OOMKill = kv["oom_kill"]
		f, err := c.read("memory.failcnt")
		if err != nil {
			return out, err
		}
		out.Failcnt, _ = strconv.ParseUint(strings.TrimSpace(f), 10, 64)
		return out, nil
	}
	s, err := c.read("memory.events.local")
	if err != nil {
		return out, err
	}
	kv := keyValues(s)
	out.OOMKill, out.OOM, out.Failcnt = kv["oom_kill"], kv["oom"], kv["max"]
	return out, nil
}

// TreeOOMKills sums [Counters.OOMKill] over every cgroup of the scratch
// tree: the number of processes the kernel OOM-killed in it.
func (h *Hierarchy) TreeOOMKills() (uint64, error) {
	var n uint64
	for _, c := range h.created {
		cs, err := c.Counters()
		if err != nil {
			return 0, err
		}
		n += cs.OOMKill
	}
	return n, nil
}

func keyValues(s string) map[string]uint64 {
	m := map[string]uint64{}
	for _, line := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil {
			m[k] = n
		}
	}
	return m
}

// NewPodUID returns a random pod UID in the canonical dashed form.
func NewPodUID() string {
	h := randHex(16)
	return h[0:8] + "-" + h[8:12] + "-4" + h[13:16] + "-a" + h[17:20] + "-" + h[20:32]
}

// NewContainerID returns a random 64-hex container id.
func NewContainerID() string { return randHex(32) }

// QoS classes as the kubelet spells them in cgroup names.
const (
	QoSBurstable  = "burstable"
	QoSBestEffort = "besteffort"
	QoSGuaranteed = "" // guaranteed pods sit directly below kubepods
)

// CgroupfsPod is the cgroupfs-driver pod cgroup: kubepods/<qos>/pod<uid>.
func CgroupfsPod(qos, uid string) string {
	return path.Join("kubepods", qos, "pod"+uid)
}

// CgroupfsContainer is a cgroupfs-driver containerd container cgroup:
// kubepods/<qos>/pod<uid>/<id>.
func CgroupfsContainer(qos, uid, id string) string {
	return path.Join(CgroupfsPod(qos, uid), id)
}

// SystemdPod is the systemd-driver pod cgroup:
// kubepods.slice/kubepods-<qos>.slice/kubepods-<qos>-pod<uid_>.slice.
func SystemdPod(qos, uid string) string {
	u := strings.ReplaceAll(uid, "-", "_")
	if qos == QoSGuaranteed {
		return path.Join("kubepods.slice", "kubepods-pod"+u+".slice")
	}
	return path.Join("kubepods.slice", "kubepods-"+qos+".slice", "kubepods-"+qos+"-pod"+u+".slice")
}

// SystemdContainer is a systemd-driver containerd container cgroup:
// <pod slice>/cri-containerd-<id>.scope.
func SystemdContainer(qos, uid, id string) string {
	return path.Join(SystemdPod(qos, uid), "cri-containerd-"+id+".scope")
}

func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // never fails on Linux
	}
	return hex.EncodeToString(b)
}

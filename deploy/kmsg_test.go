package deploy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// The container test runs the daemon as the DaemonSet's pod would run on
// a node, without a container engine: this test binary, started again in
// new mount, PID, network, UTS and IPC namespaces, builds the container
// (containerInit) and execs oomscope in it:
//
//   - the root filesystem is a directory holding only the binary built
//     with the Dockerfile's go build line, mounted read-only
//     (readOnlyRootFilesystem);
//   - the DaemonSet's hostPath volumes are bind-mounted where its
//     volumeMounts say, read-only ones recursively read-only
//     (mount_setattr AT_RECURSIVE, as runc does for recursiveReadOnly);
//     the state directory is a temporary directory instead of the node's
//     /var/lib/oomscope; a fresh /proc and /dev/null, zero, random, urandom
//     as a runtime provides them;
//   - on cgroup v1, a devices cgroup with runc's default device rules
//     (libcontainer/specconv AllowedDevices) and, unless a case says
//     otherwise, "c 1:11 r" for /dev/kmsg, as a device plugin or the
//     runtime's configuration would add it;
//   - the capabilities as containerd and runc set them from the security
//     context: bounding, permitted and effective = the added ones,
//     inheritable and ambient empty; no_new_privs for
//     allowPrivilegeEscalation: false; the pod's uid;
//   - argv = the image's ENTRYPOINT + the container's args, env NODE_NAME.
//
// Seccomp (RuntimeDefault) is not emulated: the daemon makes no system
// call that profile refuses (it reads /dev/kmsg with read(2), never
// syslog(2)).

// containerEnv carries the container's spec to containerInit.
const containerEnv = "OOMSCOPE_DEPLOY_CONTAINER"

type containerSpec struct {
	Root      string      `json:"root"`
	Mounts    []bindMount `json:"mounts"`
	DevCgroup string      `json:"dev_cgroup,omitempty"`
	UID       int         `json:"uid"`
	GID       int         `json:"gid"`
	Caps      []int       `json:"caps"`
	// Ambient also makes Caps inheritable and ambient, which a pod spec
	// cannot ask for (the non-root way in).
	Ambient  bool     `json:"ambient"`
	NoNewPrv bool     `json:"no_new_privs"`
	ReadOnly bool     `json:"read_only_root"`
	Argv     []string `json:"argv"`
	Env      []string `json:"env"`
}

type bindMount struct {
	Source   string `json:"source"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"read_only"`
}

// containerInit runs in the re-executed test binary, PID 1 of the new
// namespaces: it sets the container up and execs the daemon. Every
// credential change is made on this one locked thread with raw system
// calls, and execve takes the calling thread's credentials.
func containerInit() {
	runtime.LockOSThread()
	fail := func(what string, err error) {
		fmt.Fprintf(os.Stderr, "container init: %s: %v\n", what, err)
		os.Exit(127)
	}
	var s containerSpec
	if err := json.Unmarshal([]byte(os.Getenv(containerEnv)), &s); err != nil {
		fail("spec", err)
	}
	lastCap, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		fail("cap_last_cap", err)
	}
	last, err := strconv.Atoi(strings.TrimSpace(string(lastCap)))
	if err != nil {
		fail("cap_last_cap", err)
	}

	// Mounts: nothing propagates back to the host.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		fail("make / private", err)
	}
	if err := loopbackUp(); err != nil {
		fail("loopback up", err)
	}
	if err := unix.Sethostname([]byte("oomscope-test")); err != nil {
		fail("hostname", err)
	}
	if err := unix.Mount(s.Root, s.Root, "", unix.MS_BIND, ""); err != nil {
		fail("bind root", err)
	}
	for _, m := range s.Mounts {
		target := filepath.Join(s.Root, m.Target)
		fi, err := os.Stat(m.Source)
		if err != nil {
			fail("mount source", err)
		}
		if fi.IsDir() {
			err = os.MkdirAll(target, 0o755)
		} else if err = os.MkdirAll(filepath.Dir(target), 0o755); err == nil {
			err = os.WriteFile(target, nil, 0o644)
		}
		if err != nil {
			fail("mount point "+target, err)
		}
		if err := unix.Mount(m.Source, target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			fail("bind "+m.Source, err)
		}
		if m.ReadOnly {
			if err := unix.MountSetattr(unix.AT_FDCWD, target, unix.AT_RECURSIVE, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}); err != nil {
				fail("read-only "+target, err)
			}
		}
	}
	proc := filepath.Join(s.Root, "proc")
	if err := os.MkdirAll(proc, 0o555); err != nil {
		fail("mkdir /proc", err)
	}
	if err := unix.Mount("proc", proc, "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		fail("mount /proc", err)
	}
	if s.ReadOnly {
		// The root's own mount only: the volumes keep their modes.
		if err := unix.MountSetattr(unix.AT_FDCWD, s.Root, 0, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}); err != nil {
			fail("read-only root", err)
		}
	}
	if s.DevCgroup != "" {
		if err := os.WriteFile(filepath.Join(s.DevCgroup, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0); err != nil {
			fail("join devices cgroup", err)
		}
	}
	if err := unix.Chroot(s.Root); err != nil {
		fail("chroot", err)
	}
	if err := unix.Chdir("/"); err != nil {
		fail("chdir", err)
	}

	// Credentials, as runc sets them.
	keep := map[int]bool{}
	for _, c := range s.Caps {
		keep[c] = true
	}
	for c := 0; c <= last; c++ {
		if !keep[c] {
			if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
				fail("drop bounding capability "+strconv.Itoa(c), err)
			}
		}
	}
	if s.UID != 0 || s.GID != 0 {
		if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
			fail("keepcaps", err)
		}
		for _, call := range []struct {
			name string
			trap uintptr
			a    [3]uintptr
		}{
			{"setgroups", unix.SYS_SETGROUPS, [3]uintptr{0, 0, 0}},
			{"setresgid", unix.SYS_SETRESGID, [3]uintptr{uintptr(s.GID), uintptr(s.GID), uintptr(s.GID)}},
			{"setresuid", unix.SYS_SETRESUID, [3]uintptr{uintptr(s.UID), uintptr(s.UID), uintptr(s.UID)}},
		} {
			// This thread only (unix.Setresuid would change every thread).
			if _, _, errno := unix.RawSyscall(call.trap, call.a[0], call.a[1], call.a[2]); errno != 0 {
				fail(call.name, errno)
			}
		}
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	for c := range keep {
		data[c/32].Effective |= 1 << (c % 32)
		data[c/32].Permitted |= 1 << (c % 32)
		if s.Ambient {
			data[c/32].Inheritable |= 1 << (c % 32)
		}
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		fail("capset", err)
	}
	if s.Ambient {
		for c := range keep {
			if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(c), 0, 0); err != nil {
				fail("raise ambient capability", err)
			}
		}
	}
	if s.NoNewPrv {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			fail("no_new_privs", err)
		}
	}
	err = syscall.Exec(s.Argv[0], s.Argv, s.Env)
	fail("exec "+s.Argv[0], err)
}

// loopbackUp brings lo up in the new network namespace (the embedded NATS
// server and the metrics server listen there).
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

// capNumbers are the capabilities the manifests may add.
var capNumbers = map[corev1.Capability]int{"SYSLOG": unix.CAP_SYSLOG}

// runcDevices is runc's default device allowlist (libcontainer/specconv
// AllowedDevices), which containerd and CRI-O leave as it is for an
// unprivileged container. /dev/kmsg (c 1:11) is not in it.
var runcDevices = []string{
	"c *:* m", "b *:* m",
	"c 1:3 rwm", "c 1:8 rwm", "c 1:7 rwm", "c 5:0 rwm", "c 1:5 rwm", "c 1:9 rwm",
	"c 136:* rwm", "c 5:2 rwm", "c 10:200 rwm",
}

// kmsgDevice is the rule a device plugin or the runtime's configuration
// adds for /dev/kmsg, read-only.
const kmsgDevice = "c 1:11 r"

// podSpecFromManifest reads the DaemonSet of daemonset.yaml.
func podSpecFromManifest(t *testing.T) (corev1.PodSpec, corev1.Container) {
	t.Helper()
	raw, err := os.ReadFile(singleFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(string(raw), "\n---\n") {
		var ds appsv1.DaemonSet
		if err := yaml.Unmarshal([]byte(doc), &ds); err != nil {
			t.Fatalf("%s: %v", singleFile, err)
		}
		if ds.Kind == "DaemonSet" {
			return ds.Spec.Template.Spec, ds.Spec.Template.Spec.Containers[0]
		}
	}
	t.Fatalf("%s has no DaemonSet", singleFile)
	panic("unreachable")
}

// entrypoint is the Dockerfile's ENTRYPOINT.
func entrypoint(t *testing.T) []string {
	t.Helper()
	for _, in := range parseDockerfile(t, "Dockerfile") {
		if in.cmd == "ENTRYPOINT" {
			var argv []string
			if err := json.Unmarshal([]byte(in.args), &argv); err != nil {
				t.Fatalf("ENTRYPOINT %s: %v", in.args, err)
			}
			return argv
		}
	}
	t.Fatal("Dockerfile has no ENTRYPOINT")
	return nil
}

// container is one run of the daemon in an emulated container.
type container struct {
	name string
	// uid, caps and devices change the pod's settings; nil caps and
	// devices keep the manifest's.
	uid     int
	caps    []int
	ambient bool
	devices []string
}

type containerResult struct {
	opened    bool              // held /dev/kmsg open
	http      map[string]string // metrics port: path -> status line and body
	exited    error             // how it ended (after SIGTERM when it opened)
	stderr    string            // the daemon's log
	status    map[string]string
	mountinfo string
	stateDir  string
}

// run starts the container and, once the daemon holds /dev/kmsg open,
// lets it read for a moment, records its /proc status and mounts, and
// stops it with SIGTERM.
func (c container) run(t *testing.T, bin string, pod corev1.PodSpec, ctr corev1.Container, devCgroupRoot string) containerResult {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	state := filepath.Join(dir, "state")
	for _, d := range []string{root, state} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if c.uid != 0 {
		// hostPath DirectoryOrCreate makes a root-owned directory; a
		// non-root pod could not even write its state there. Hand it
		// over, so that the case fails on /dev/kmsg or not at all.
		if err := os.Chown(state, c.uid, c.uid); err != nil {
			t.Fatal(err)
		}
	}
	argv := entrypoint(t)
	image, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, argv[0]), image, 0o755); err != nil {
		t.Fatal(err)
	}
	argv = append(argv, ctr.Args...)

	spec := containerSpec{
		Root:     root,
		UID:      c.uid,
		GID:      c.uid,
		Ambient:  c.ambient,
		NoNewPrv: ctr.SecurityContext.AllowPrivilegeEscalation != nil && !*ctr.SecurityContext.AllowPrivilegeEscalation,
		ReadOnly: ctr.SecurityContext.ReadOnlyRootFilesystem != nil && *ctr.SecurityContext.ReadOnlyRootFilesystem,
		Argv:     argv,
		Env:      []string{"NODE_NAME=node-1", "PATH=/"},
	}
	if pod.SecurityContext != nil && pod.SecurityContext.RunAsUser != nil && c.uid == 0 {
		spec.UID = int(*pod.SecurityContext.RunAsUser)
	}
	spec.Caps = c.caps
	if c.caps == nil {
		if caps := ctr.SecurityContext.Capabilities; caps == nil || !slices.Equal(caps.Drop, []corev1.Capability{"ALL"}) {
			t.Fatalf("the manifest does not drop ALL capabilities: %+v", caps)
		}
		spec.Caps = []int{}
		for _, name := range ctr.SecurityContext.Capabilities.Add {
			n, ok := capNumbers[name]
			if !ok {
				t.Fatalf("capability %s: add it to capNumbers", name)
			}
			spec.Caps = append(spec.Caps, n)
		}
	}
	hostPaths := map[string]string{}
	for _, v := range pod.Volumes {
		hostPaths[v.Name] = v.HostPath.Path
	}
	for _, m := range ctr.VolumeMounts {
		src := hostPaths[m.Name]
		if m.MountPath == "/var/lib/oomscope" {
			src = state // not the node's
		}
		spec.Mounts = append(spec.Mounts, bindMount{Source: src, Target: m.MountPath, ReadOnly: m.ReadOnly})
	}
	for _, d := range []string{"/dev/null", "/dev/zero", "/dev/random", "/dev/urandom"} {
		spec.Mounts = append(spec.Mounts, bindMount{Source: d, Target: d})
	}
	if devCgroupRoot != "" {
		cg := filepath.Join(devCgroupRoot, fmt.Sprintf("oomscope-deploy-test-%d-%s", os.Getpid(), c.name))
		if err := os.Mkdir(cg, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			for i := 0; ; i++ {
				err := os.Remove(cg)
				if err == nil || errors.Is(err, os.ErrNotExist) || i == 50 {
					if err != nil && !errors.Is(err, os.ErrNotExist) {
						t.Errorf("remove devices cgroup %s: %v", cg, err)
					}
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
		rules := c.devices
		if rules == nil {
			rules = append(slices.Clone(runcDevices), kmsgDevice)
		}
		if err := os.WriteFile(filepath.Join(cg, "devices.deny"), []byte("a"), 0); err != nil {
			t.Fatal(err)
		}
		for _, r := range rules {
			if err := os.WriteFile(filepath.Join(cg, "devices.allow"), []byte(r), 0); err != nil {
				t.Fatalf("devices.allow %q: %v", r, err)
			}
		}
		spec.DevCgroup = cg
	}
	js, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}

	// Pdeathsig is sent when the *thread* that forked the child ends, and
	// the Go runtime may end threads (a goroutine that exits locked to
	// one): keep the forking thread ours until the container is gone, or
	// the daemon may get a SIGKILL that is nobody's (seen under go test
	// ./... with packages in parallel).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cmd := exec.Command(os.Args[0])
	cmd.Env = []string{containerEnv + "=" + string(js)}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWNET | syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC,
		Pdeathsig:  syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the container: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	pid := cmd.Process.Pid
	res := containerResult{stateDir: state}

	deadline := time.After(30 * time.Second)
wait:
	for {
		select {
		case err := <-done:
			res.exited, res.stderr = err, stderr.String()
			return res
		case <-deadline:
			break wait
		case <-time.After(50 * time.Millisecond):
		}
		if holdsKmsg(pid) {
			res.opened = true
			break
		}
	}
	if res.opened {
		time.Sleep(3 * time.Second) // reads the ring buffer, idles
		res.status = procStatus(t, pid)
		res.http = map[string]string{}
		for _, path := range []string{"/metrics", "/healthz", "/readyz"} {
			res.http[path] = podHTTP(pid, metricsPort(ctr), path)
		}
		mi, _ := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
		res.mountinfo = string(mi)
		_ = cmd.Process.Signal(syscall.SIGTERM)
	} else {
		_ = cmd.Process.Kill()
	}
	select {
	case res.exited = <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		res.exited = fmt.Errorf("did not stop within 30s of SIGTERM: %v", <-done)
	}
	res.stderr = stderr.String()
	return res
}

// metricsPort is the container's port named metrics.
func metricsPort(ctr corev1.Container) int {
	for _, p := range ctr.Ports {
		if p.Name == "metrics" {
			return int(p.ContainerPort)
		}
	}
	return 0
}

// podHTTP asks GET path of 127.0.0.1:port in pid's network namespace, as
// the kubelet's probes and Prometheus reach the pod's port; it returns the
// status line and the start of the body, or the error.
func podHTTP(pid, port int, path string) string {
	res := make(chan string, 1)
	go func() {
		// This goroutine's thread enters the pod's network namespace and
		// is never unlocked: the runtime ends the thread with it.
		runtime.LockOSThread()
		ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
		if err != nil {
			res <- err.Error()
			return
		}
		defer ns.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			res <- "setns: " + err.Error()
			return
		}
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
		if err != nil {
			res <- err.Error()
			return
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(conn, "GET %s HTTP/1.0\r\nHost: pod\r\n\r\n", path)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			res <- err.Error()
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		res <- resp.Status + " " + string(body)
	}()
	return <-res
}

// holdsKmsg reports whether pid has the kmsg device (c 1:11) open.
func holdsKmsg(pid int) bool {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return false
	}
	for _, fd := range fds {
		var st unix.Stat_t
		if unix.Stat(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()), &st) == nil &&
			st.Mode&unix.S_IFMT == unix.S_IFCHR && unix.Major(st.Rdev) == 1 && unix.Minor(st.Rdev) == 11 {
			return true
		}
	}
	return false
}

func procStatus(t *testing.T, pid int) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, line := range strings.Split(string(raw), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

// mountOptions returns the per-mount options of every mount at or below
// path in a mountinfo.
func mountOptions(mountinfo, path string) map[string][]string {
	m := map[string][]string{}
	for _, line := range strings.Split(mountinfo, "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			continue
		}
		mp := f[4]
		if mp == path || path == "/" && mp == "/" || strings.HasPrefix(mp, strings.TrimSuffix(path, "/")+"/") {
			m[mp] = strings.Split(f[5], ",")
		}
	}
	return m
}

// dmesgRestrict reads kernel.dmesg_restrict.
func dmesgRestrict(t *testing.T) bool {
	t.Helper()
	raw, err := os.ReadFile("/proc/sys/kernel/dmesg_restrict")
	if err != nil {
		t.Fatalf("kernel.dmesg_restrict: %v", err)
	}
	return strings.TrimSpace(string(raw)) == "1"
}

// TestKmsgPrivileges runs the daemon as the DaemonSet's pod with exactly
// the pod's privileges — uid 0, CAP_SYSLOG and no other capability,
// no_new_privs, a read-only root, read-only host mounts — and requires
// that it reads /dev/kmsg; then takes one thing away at a time and
// requires the refusal: without CAP_SYSLOG (when kernel.dmesg_restrict=1),
// without the device in the device cgroup, and as a non-root uid with
// CAP_SYSLOG added as a pod spec adds it. A non-root uid with CAP_SYSLOG
// as an ambient capability reads it, which no pod spec can ask for.
func TestKmsgPrivileges(t *testing.T) {
	if testing.Short() {
		t.Skip("builds oomscope and runs it in namespaces: not in -short mode")
	}
	if os.Geteuid() != 0 {
		t.Fatal("this test builds containers (namespaces, mounts, a devices cgroup, capabilities): run it as root, or with go test -short")
	}
	for _, c := range []int{unix.CAP_SYS_ADMIN, unix.CAP_SYSLOG, unix.CAP_SETUID, unix.CAP_SETPCAP} {
		if !hasCap(t, c) {
			t.Fatalf("this test needs capability %d (CAP_SYS_ADMIN, CAP_SYSLOG, CAP_SETUID, CAP_SETPCAP) to build the containers", c)
		}
	}
	restrict := dmesgRestrict(t)
	t.Logf("kernel.dmesg_restrict = %v: opening /dev/kmsg for reading needs CAP_SYSLOG: %v", map[bool]int{false: 0, true: 1}[restrict], restrict)
	devRoot := "/sys/fs/cgroup/devices"
	if _, err := os.Stat(filepath.Join(devRoot, "devices.allow")); err != nil {
		devRoot = "" // cgroup v2: no device rules to emulate
	}
	bin := oomscopeBinary(t)
	pod, ctr := podSpecFromManifest(t)
	bootID, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("pod", func(t *testing.T) {
		r := container{name: "pod"}.run(t, bin, pod, ctr, devRoot)
		if !r.opened {
			t.Fatalf("the daemon did not open /dev/kmsg with the pod's privileges (exit %v):\n%s", r.exited, r.stderr)
		}
		if r.exited != nil {
			t.Errorf("the daemon did not stop cleanly on SIGTERM: %v\n%s", r.exited, r.stderr)
		}
		syslog := fmt.Sprintf("%016x", uint64(1)<<unix.CAP_SYSLOG)
		for k, want := range map[string]string{
			"Uid": "0\t0\t0\t0", "CapBnd": syslog, "CapPrm": syslog, "CapEff": syslog,
			"CapInh": "0000000000000000", "CapAmb": "0000000000000000", "NoNewPrivs": "1",
		} {
			if r.status[k] != want {
				t.Errorf("daemon's %s: %q, want %q", k, r.status[k], want)
			}
		}
		t.Logf("the daemon read /dev/kmsg with Uid %s, CapEff %s (CAP_SYSLOG), CapBnd %s, NoNewPrivs %s",
			strings.Fields(r.status["Uid"])[0], r.status["CapEff"], r.status["CapBnd"], r.status["NoNewPrivs"])
		t.Logf("memory 3s after opening /dev/kmsg (the ring buffer read, embedded NATS up): VmHWM %s, VmRSS %s (RssAnon %s, RssFile %s)",
			r.status["VmHWM"], r.status["VmRSS"], r.status["RssAnon"], r.status["RssFile"])
		for path, rw := range map[string]bool{"/": false, "/dev/kmsg": false, "/host/sys/fs/cgroup": false, "/host/proc": false, "/var/lib/oomscope": true} {
			opts := mountOptions(r.mountinfo, path)
			if len(opts) == 0 {
				t.Errorf("no mount at %s", path)
			}
			for mp, o := range opts {
				if path == "/" && mp != "/" {
					continue
				}
				if slices.Contains(o, "rw") != rw {
					t.Errorf("mount %s: %v, want rw %v", mp, o, rw)
				}
			}
		}
		for path, got := range r.http {
			if !strings.HasPrefix(got, "200 ") {
				t.Errorf("GET %s on the metrics port in the pod: %.200s", path, got)
			}
		}
		if !strings.Contains(r.http["/metrics"], "process_resident_memory_bytes") {
			t.Errorf("/metrics in the pod: %.300s", r.http["/metrics"])
		}
		if !strings.Contains(r.stderr, "reading the whole kernel ring buffer") {
			t.Errorf("the daemon's log does not say it read the ring buffer:\n%s", r.stderr)
		}
		raw, err := os.ReadFile(filepath.Join(r.stateDir, "checkpoint.json"))
		if err != nil {
			t.Fatalf("no checkpoint after SIGTERM: %v\n%s", err, r.stderr)
		}
		var cp struct {
			BootID    string `json:"boot_id"`
			Seq       uint64 `json:"seq"`
			Published uint64 `json:"published"`
		}
		if err := json.Unmarshal(raw, &cp); err != nil {
			t.Fatal(err)
		}
		if cp.BootID != strings.TrimSpace(string(bootID)) || cp.Seq == 0 {
			t.Errorf("checkpoint %s: want this boot (%s) and a record sequence number read from /dev/kmsg", raw, bootID)
		}
		t.Logf("checkpoint after SIGTERM: boot %s, seq %d, %d reports of the ring buffer published (archive, embedded NATS)", cp.BootID, cp.Seq, cp.Published)
	})

	refused := func(t *testing.T, r containerResult, why string) {
		t.Helper()
		if r.opened {
			t.Fatalf("the daemon opened /dev/kmsg %s", why)
		}
		if r.exited == nil || !strings.Contains(r.stderr, "/dev/kmsg") || !strings.Contains(r.stderr, "operation not permitted") {
			t.Fatalf("want the daemon to exit on EPERM opening /dev/kmsg %s; exit %v:\n%s", why, r.exited, r.stderr)
		}
		t.Logf("refused %s: %s", why, lastLine(r.stderr))
	}
	opensOrRefused := func(t *testing.T, c container, why string) {
		t.Helper()
		r := c.run(t, bin, pod, ctr, devRoot)
		if restrict {
			refused(t, r, why)
			return
		}
		// dmesg_restrict=0: the kernel checks no capability; any uid
		// with read permission (0644) opens it. CAP_SYSLOG is what the
		// pod needs on nodes with dmesg_restrict=1 (Debian, Ubuntu and
		// others set it).
		if !r.opened {
			t.Fatalf("with dmesg_restrict=0 the daemon did not open /dev/kmsg %s:\n%s", why, r.stderr)
		}
		t.Logf("dmesg_restrict=0: opened %s, as the kernel allows; not a refusal test on this host", why)
	}

	t.Run("no CAP_SYSLOG", func(t *testing.T) {
		opensOrRefused(t, container{name: "nocap", caps: []int{}}, "as uid 0 with every capability dropped")
	})
	t.Run("device not allowed", func(t *testing.T) {
		if devRoot == "" {
			t.Skip("cgroup v2 host: this test emulates the device cgroup with the cgroup v1 devices controller only")
		}
		r := container{name: "nodev", devices: runcDevices}.run(t, bin, pod, ctr, devRoot)
		refused(t, r, "with CAP_SYSLOG but runc's default device rules (no c 1:11)")
	})
	t.Run("non-root with capabilities.add", func(t *testing.T) {
		opensOrRefused(t, container{name: "nonroot", uid: 65532, caps: []int{unix.CAP_SYSLOG}}, "as uid 65532 with CAP_SYSLOG added as a pod spec adds it (not ambient: lost at exec)")
	})
	t.Run("non-root with ambient CAP_SYSLOG", func(t *testing.T) {
		r := container{name: "ambient", uid: 65532, caps: []int{unix.CAP_SYSLOG}, ambient: true}.run(t, bin, pod, ctr, devRoot)
		if !r.opened {
			t.Fatalf("uid 65532 with ambient CAP_SYSLOG did not open /dev/kmsg:\n%s", r.stderr)
		}
		t.Logf("uid 65532 with CAP_SYSLOG ambient (CapAmb %s, CapEff %s) reads /dev/kmsg: the non-root way in, which a pod spec cannot ask for", r.status["CapAmb"], r.status["CapEff"])
	})
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// hasCap reports whether this process has capability c effective.
func hasCap(t *testing.T, c int) bool {
	t.Helper()
	st := procStatus(t, os.Getpid())
	eff, err := strconv.ParseUint(st["CapEff"], 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	return eff&(1<<c) != 0
}

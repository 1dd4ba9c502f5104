package cgpath

import (
	"regexp"
	"strings"

	"github.com/oomscope/oomscope/report"
)

// uidRE matches a pod UID as it appears in a cgroup name: a UUID with dashes
// (cgroupfs) or underscores (systemd), or a static pod's 32-hex hash.
const uidRE = `[0-9a-fA-F]{8}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{12}|[0-9a-fA-F]{32}`

var (
	// cgroupfsPodRE matches "pod<uid>".
	cgroupfsPodRE = regexp.MustCompile(`^pod(` + uidRE + `)$`)
	// systemdPodRE matches "[<parent>-]pod<uid>.slice", e.g.
	// kubepods-burstable-pod<uid_>.slice.
	systemdPodRE = regexp.MustCompile(`^(?:(.*)-)?pod(` + uidRE + `)\.slice$`)
	// hexIDRE matches an id that is safe to take from outside a pod: at
	// least a short (12-hex) container id.
	hexIDRE = regexp.MustCompile(`^[0-9a-fA-F]{12,}$`)
	// longHexSuffixRE extracts a 64-hex id at the end of an unknown
	// "<something>-<id>" container name.
	longHexSuffixRE = regexp.MustCompile(`-([0-9a-fA-F]{64})$`)
)

// containerForm is one runtime's container cgroup naming: prefix + id, with
// ".scope" appended under the systemd driver.
type containerForm struct {
	prefix  string
	runtime string
	conmon  bool
}

// containerForms is checked in order: longer prefixes that share a start
// ("crio-conmon-", "crio-") come first.
var containerForms = [...]containerForm{
	{"cri-containerd-", report.RuntimeContainerd, false},
	{"crio-conmon-", report.RuntimeCRIO, true},
	{"crio-", report.RuntimeCRIO, false},
	{"docker-", report.RuntimeDocker, false},
	{"libpod-conmon-", report.RuntimePodman, true},
	{"libpod-", report.RuntimePodman, false},
	{"nerdctl-", report.RuntimeContainerd, false},
}

// Parse parses a cgroup v1 or v2 path into what it says about
// Kubernetes pods and containers. It is pure, accepts any input and never
// panics: what it does not recognise is LevelOther.
//
// Recognised layouts, cgroupfs and systemd drivers alike:
//
//	/kubepods[/burstable|/besteffort]/pod<uid>/<id>           Guaranteed has no QoS segment
//	/kubepods.slice[/kubepods-<qos>.slice]/kubepods[-<qos>]-pod<uid_>.slice/<runtime>-<id>.scope
//	<prefix>/kubepods/...  <prefix>/<x>-kubepods.slice/...    custom cgroup root, k3s, kind, RKE
//	/docker/<id>  /system.slice/docker-<id>.scope  [/machine.slice/]libpod-<id>.scope
//	/system.slice/<unit>  /user.slice/...  /
//
// Container cgroups may be followed by child cgroups (crun's "container",
// a workload's own sub-cgroups): the level stays LevelContainer with the
// same ids. When a path holds several Kubernetes hierarchies (a kind node
// inside a pod), the innermost one that parses is reported. Leading ".."
// segments (a path seen from inside a cgroup namespace) are dropped, and a
// path that starts below kubepods is parsed from its first QoS or pod
// segment; its QoS is reported only when the path still tells it.
func Parse(p string) report.CgroupPath {
	c := parse(p)
	c.Path = p
	return c
}

func parse(p string) report.CgroupPath {
	s := strings.TrimSpace(p)
	segs, above := cleanSegments(s)
	if len(segs) == 0 {
		if strings.HasPrefix(s, "/") && !above {
			return report.CgroupPath{Level: report.LevelRoot}
		}
		return report.CgroupPath{Level: report.LevelOther}
	}
	// Innermost kubepods segment whose descendants parse.
	for k := len(segs) - 1; k >= 0; k-- {
		driver := kubepodsDriver(segs[k])
		if driver == "" {
			continue
		}
		if c, ok := parseBelowKubepods(segs, k, driver); ok {
			return c
		}
	}
	if c, ok := parsePodAnywhere(segs); ok {
		return c
	}
	if c, ok := parseBareContainer(segs); ok {
		return c
	}
	return parseSystemd(segs)
}

// cleanSegments splits a path into its non-empty segments, dropping "."
// and resolving ".."; above reports a ".." that went above the start (a
// path outside the reader's cgroup namespace).
func cleanSegments(p string) (segs []string, above bool) {
	for _, s := range strings.Split(p, "/") {
		switch s {
		case "", ".":
		case "..":
			if len(segs) > 0 {
				segs = segs[:len(segs)-1]
			} else {
				above = true
			}
		default:
			segs = append(segs, s)
		}
	}
	return segs, above
}

func joinPrefix(segs []string) string {
	if len(segs) == 0 {
		return ""
	}
	return "/" + strings.Join(segs, "/")
}

// kubepodsDriver reports whether seg is the kubelet's pods root and which
// driver named it: "kubepods" (cgroupfs), "kubepods.slice" or
// "<root>-kubepods.slice" (systemd with --cgroup-root=/<root>.slice).
func kubepodsDriver(seg string) string {
	switch {
	case seg == "kubepods":
		return report.DriverCgroupfs
	case seg == "kubepods.slice", strings.HasSuffix(seg, "-kubepods.slice"):
		return report.DriverSystemd
	}
	return ""
}

// qosSegment returns the QoS class a QoS-level segment names under driver.
func qosSegment(seg, driver string) string {
	switch driver {
	case report.DriverCgroupfs:
		switch seg {
		case "burstable":
			return report.QoSBurstable
		case "besteffort":
			return report.QoSBestEffort
		}
	case report.DriverSystemd:
		switch {
		case strings.HasSuffix(seg, "-burstable.slice"):
			return report.QoSBurstable
		case strings.HasSuffix(seg, "-besteffort.slice"):
			return report.QoSBestEffort
		}
	}
	return ""
}

// podSegment parses a pod-level segment. driver restricts the accepted
// form; empty accepts both. For the systemd form, qos is the class the
// slice name encodes ("kubepods-pod..." is Guaranteed); for the cgroupfs
// form it is empty.
func podSegment(seg, driver string) (uid, qos, gotDriver string, ok bool) {
	if driver != report.DriverSystemd {
		if m := cgroupfsPodRE.FindStringSubmatch(seg); m != nil {
			return canonicalUID(m[1]), "", report.DriverCgroupfs, true
		}
	}
	if driver != report.DriverCgroupfs {
		if m := systemdPodRE.FindStringSubmatch(seg); m != nil {
			parent := m[1]
			switch {
			case parent == "kubepods", strings.HasSuffix(parent, "-kubepods"):
				qos = report.QoSGuaranteed
			case strings.HasSuffix(parent, "-burstable"):
				qos = report.QoSBurstable
			case strings.HasSuffix(parent, "-besteffort"):
				qos = report.QoSBestEffort
			}
			return canonicalUID(m[2]), qos, report.DriverSystemd, true
		}
	}
	return "", "", "", false
}

// canonicalUID lowercases a matched UID and turns systemd's underscores into
// dashes.
func canonicalUID(u string) string {
	return strings.ReplaceAll(strings.ToLower(u), "_", "-")
}

// parseBelowKubepods parses segs[k+1:] as the kubelet lays them out below
// the kubepods segment segs[k].
func parseBelowKubepods(segs []string, k int, driver string) (report.CgroupPath, bool) {
	c := report.CgroupPath{Driver: driver, Prefix: joinPrefix(segs[:k])}
	t := segs[k+1:]
	if len(t) == 0 {
		c.Level = report.LevelKubepods
		return c, true
	}
	i := 0
	if q := qosSegment(t[0], driver); q != "" {
		c.QoS = q
		if len(t) == 1 {
			c.Level = report.LevelQoS
			return c, true
		}
		i = 1
	} else {
		// A pod directly below kubepods: Guaranteed.
		c.QoS = report.QoSGuaranteed
	}
	uid, _, _, ok := podSegment(t[i], driver)
	if !ok {
		return report.CgroupPath{}, false
	}
	c.PodUID = uid
	fillBelowPod(&c, t[i+1:])
	return c, true
}

// parsePodAnywhere finds the innermost pod segment in a path that shows no
// usable kubepods segment (a path starting below kubepods).
func parsePodAnywhere(segs []string) (report.CgroupPath, bool) {
	for j := len(segs) - 1; j >= 0; j-- {
		uid, qos, driver, ok := podSegment(segs[j], "")
		if !ok {
			continue
		}
		top := j
		if j > 0 {
			if q := qosSegment(segs[j-1], driver); q != "" {
				top = j - 1
				if qos == "" {
					qos = q
				}
			}
		}
		c := report.CgroupPath{PodUID: uid, QoS: qos, Driver: driver, Prefix: joinPrefix(segs[:top])}
		fillBelowPod(&c, segs[j+1:])
		return c, true
	}
	return report.CgroupPath{}, false
}

// fillBelowPod sets the level and container fields from the segments below
// a pod's cgroup: none is the pod itself; otherwise the first is the
// container and any more are its child cgroups.
func fillBelowPod(c *report.CgroupPath, t []string) {
	if len(t) == 0 {
		c.Level = report.LevelPod
		return
	}
	c.Level = report.LevelContainer
	seg := t[0]
	name, _ := strings.CutSuffix(seg, ".scope")
	for _, f := range containerForms {
		if id, ok := strings.CutPrefix(name, f.prefix); ok && id != "" {
			c.ContainerID, c.Runtime, c.Conmon = id, f.runtime, f.conmon
			return
		}
	}
	// Unknown runtime: a bare id (cgroupfs containerd or Docker), or some
	// "<runtime>-<id>" name.
	if m := longHexSuffixRE.FindStringSubmatch(name); m != nil {
		c.ContainerID = m[1]
		return
	}
	if name == "" {
		name = seg
	}
	c.ContainerID = name
}

// parseBareContainer finds the innermost container cgroup outside
// Kubernetes: Docker, Podman, CRI-O or containerd (nerdctl) names with a
// hex id, or Docker's cgroupfs /docker/<id>.
func parseBareContainer(segs []string) (report.CgroupPath, bool) {
	for j := len(segs) - 1; j >= 0; j-- {
		seg := segs[j]
		name, scope := strings.CutSuffix(seg, ".scope")
		driver := report.DriverCgroupfs
		if scope {
			driver = report.DriverSystemd
		}
		for _, f := range containerForms {
			id, ok := strings.CutPrefix(name, f.prefix)
			if !ok || !hexIDRE.MatchString(id) {
				continue
			}
			if !scope && f.runtime != report.RuntimeCRIO && f.runtime != report.RuntimePodman {
				// Only CRI-O and Podman use "<prefix><id>" under cgroupfs.
				continue
			}
			return report.CgroupPath{Level: report.LevelContainer, ContainerID: id, Runtime: f.runtime, Conmon: f.conmon, Driver: driver}, true
		}
		if !scope && j > 0 && segs[j-1] == "docker" && hexIDRE.MatchString(seg) {
			return report.CgroupPath{Level: report.LevelContainer, ContainerID: seg, Runtime: report.RuntimeDocker, Driver: report.DriverCgroupfs}, true
		}
	}
	return report.CgroupPath{}, false
}

func isUnit(seg string) bool {
	return strings.HasSuffix(seg, ".service") || strings.HasSuffix(seg, ".scope")
}

// parseSystemd classifies what is left: user sessions, system services, the
// rest.
func parseSystemd(segs []string) report.CgroupPath {
	switch {
	case segs[0] == "user.slice":
		c := report.CgroupPath{Level: report.LevelUserSession}
		for _, s := range segs[1:] {
			if !isUnit(s) {
				continue
			}
			c.Unit = s
			if !(strings.HasPrefix(s, "user@") && strings.HasSuffix(s, ".service")) {
				break
			}
			// Keep looking for a unit of the user's own service manager.
		}
		return c
	case segs[0] == "init.scope":
		return report.CgroupPath{Level: report.LevelSystemService, Unit: segs[0]}
	case segs[0] == "system.slice":
		c := report.CgroupPath{Level: report.LevelSystemService}
		for _, s := range segs[1:] {
			if isUnit(s) {
				c.Unit = s
				break
			}
		}
		return c
	}
	for _, s := range segs {
		if strings.HasSuffix(s, ".service") {
			// A service in some other slice, e.g. /runtime.slice/containerd.service.
			return report.CgroupPath{Level: report.LevelSystemService, Unit: s}
		}
	}
	return report.CgroupPath{Level: report.LevelOther}
}

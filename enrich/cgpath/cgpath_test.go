package cgpath

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/oomscope/oomscope/report"

	"github.com/google/go-cmp/cmp"
)

const (
	tUID   = "0b7e3c1e-5a42-4c1b-9d7a-2f1f8c3e9a11"
	tUIDs  = "0b7e3c1e_5a42_4c1b_9d7a_2f1f8c3e9a11" // systemd spelling
	tUID2  = "5f0c9a3e-1d2b-4e6f-8a7c-0b1d2e3f4a5b"
	tCID   = "3f4e5d6c7b8a99887766554433221100ffeeddccbbaa00112233445566778899"
	tCID2  = "aabbccddeeff00112233445566778899aabbccddeeff00112233445566778899"
	tNode  = "e1d2c3b4a5968778695a4b3c2d1e0f1e2d3c4b5a69788796a5b4c3d2e1f00112"
	tHash  = "2ed0e8f5b4de0f5ab7af4a7ec3fdb0c5" // static pod config hash
	kpBurs = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + tUIDs + ".slice"
	kpBest = "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + tUIDs + ".slice"
)

func TestParseCgroupPath(t *testing.T) {
	tests := []struct {
		name string
		path string
		want report.CgroupPath
	}{
		// cgroupfs driver.
		{"cgroupfs guaranteed container", "/kubepods/pod" + tUID + "/" + tCID,
			report.CgroupPath{Level: report.LevelContainer, PodUID: tUID, ContainerID: tCID, Driver: report.DriverCgroupfs, QoS: report.QoSGuaranteed}},
		{"cgroupfs burstable container", "/kubepods/burstable/pod" + tUID + "/" + tCID,
			report.CgroupPath{Level: report.LevelContainer, PodUID: tUID, ContainerID: tCID, Driver: report.DriverCgroupfs, QoS: report.QoSBurstable}},
		{"cgroupfs besteffort container", "/kubepods/besteffort/pod" + tUID + "/" + tCID,
			report.CgroupPath{Level: report.LevelContainer, PodUID: tUID, ContainerID: tCID, Driver: report.DriverCgroupfs, QoS: report.QoSBestEffort}},
		{"cgroupfs guaranteed pod", "/kubepods/pod" + tUID,
			report.CgroupPath{Level: report.LevelPod, PodUID: tUID, Driver: report.DriverCgroupfs, QoS: report.QoSGuaranteed}},
		{"cgroupfs burstable pod", "/kubepods/burstable/pod" + tUID,
			report.CgroupPath{Level: report.LevelPod, PodUID: tUID, Driver: report.DriverCgroupfs, QoS: report.QoSBurstable}},
		{"cgroupfs burstable qos", "/kubepods/burstable",
			report.CgroupPath{Level: report.LevelQoS, Driver: report.DriverCgroupfs, QoS: report.QoSBurstable}},
		{"cgroupfs besteffort qos", "/kubepods/besteffort",
			report.CgroupPath{Level: report.LevelQoS, Driver: report.DriverCgroupfs, QoS: report.QoSBestEffort}},
		{"cgroupfs kubepods", "/kubepods",
			report.CgroupPath{Level: report.LevelKubepods, Driver: report.DriverCgroupfs}},
		{"cgroupfs cri-o container", "/kubepods/besteffort/pod" + tUID + "/crio-" + tCID,
			report.CgroupPath{Level: report.LevelContainer, PodUID: tUID, ContainerID: tCID, Runtime: report.RuntimeCRIO, Driver: report.DriverCgroupfs, QoS: report.QoSBestEffort}},
		{"cgroupfs cri-o conmon", "/kubepods/burstable/pod" + tUID + "/crio-conmon-" + tCID,
			report.CgroupPath{Level: report.LevelContainer, PodUID: tUID, ContainerID: tCID, Runtime: report.RuntimeCRIO, Conmon: true, Driver: report.DriverCgroupfs, QoS: report.QoSBurstable}},
		{"cgroupfs nested child of container", "/kubepods/burstable/pod" + tUID + "/" + tCID + "/sub",
			report.CgroupPath{Level: report.LevelContainer, PodUID: tUID, ContainerID: tCID, Driver: report.DriverCgroupfs, QoS: report.QoSBurstable}},
		{"cgroupfs deeply nested child", "/kubepods/pod" + tUID + "/" + tCID + "/a/b/c",
			report.CgroupPath{Level: report.LevelContainer, PodUID: tUID, ContainerID: tCID, Driver: report.DriverCgroupfs, QoS: report.QoSGuaranteed}},
		{"cgroupfs short non-hex container id kept", "/kubepods/burstable/pod" + tUID + "/sandbox_1",
			report.CgroupPath{Level: report.LevelContainer, PodUID: tUID, ContainerID: "sandbox_1", Driver: report.DriverCgroupfs, QoS: report.QoSBurstable}},
		{"cgroupfs static pod hash uid", "/kubepods/burstable/pod" + tHash + "/" + tCID,
			report.CgroupPath{Level: report.LevelContainer, PodUID: tHash, ContainerID: tCID, Driver: report.DriverCgroupfs, QoS: report.QoSBurstable}},
		{"uppercase uid normalised", "/kubepods/pod" + strings.ToUpper(tUID),
			report.CgroupPath{Level: report.LevelPod, PodUID: tUID, Driver: report.DriverCgroupfs, QoS: report.QoSGuaranteed}},

		// systemd driver.
		{"systemd guaranteed containerd", "/kubepods.slice/kubepods-pod" + tUIDs + ".slice/cri-containerd-" + tCID + ".scope",
			report.CgroupPath{Level: report.LevelContainer, PodUID: tUID, ContainerID: tCID, Runtime: report.RuntimeContainerd, Driver: report.DriverSystemd, QoS: report.QoSGuaranteed}},
		{"systemd burstable containerd", kpBurs + "/cri-containerd-" + tCID + ".scope",
			report.CgroupPath{Level: report.LevelContainer, PodUID: tUID, ContainerID: tCID, Runtime: report.RuntimeContainerd, Driver: report.DriverSystemd, QoS: report.QoSBurstable}},
		{"systemd besteffort cri-o", kpBest + "/crio-" + tCID + ".scope",
			report.CgroupPath{Level: report.LevelContainer, PodUID: tUID, ContainerID: tCID, Runtime: report.RuntimeCRIO, Driver: report.DriverSystemd, QoS: report.QoSBestEffort}},
		{"systemd cri-o conmon", kpBurs + "/crio-conmon-" + tCID + ".scope",
			report.CgroupPath{Level: report.LevelContainer, PodUID: tUID, ContainerID: tCID, Runtime: report.RuntimeCRIO, Conmon: true, Driver: report.DriverSystemd, QoS: report.QoSBurstable}},
		{"systemd docker (cri-dockerd)", kpBest + "/docker-" + tCID + ".scope",
			report.CgroupPath{Level: report.LevelContainer, PodUID: tUID, ContainerID: tCID, Runtime: report.RuntimeDocker, Driver: report.DriverSystemd, QoS: report.QoSBestEffort}},
		{"systemd crun container child", kpBurs + "/crio-" + tCID + ".scope/container",
			report.CgroupPath{Level: report.LevelContainer, PodUID: tUID, ContainerID: tCID, Runtime: report.RuntimeCRIO, Driver: report.DriverSystemd, QoS: report.QoSBurstable}},
		{"systemd unknown runtime prefix", kpBurs + "/kata-" + tCID + ".scope",
			report.CgroupPath{Level: report.LevelContainer, PodUID: tUID, ContainerID: tCID, Driver: report.DriverSystemd, QoS: report.QoSBurstable}},
		{"systemd guaranteed pod", "/kubepods.slice/kubepods-pod" + tUIDs + ".slice",
			report.CgroupPath{Level: report.LevelPod, PodUID: tUID, Driver: report.DriverSystemd, QoS: report.QoSGuaranteed}},
		{"systemd besteffort pod", kpBest,
			report.CgroupPath{Level: report.LevelPod, PodUID: tUID, Driver: report.DriverSystemd, QoS: report.QoSBestEffort}},
		{"systemd besteffort qos", "/kubepods.slice/kubepods-besteffort.slice",
			report.CgroupPath{Level: report.LevelQoS, Driver: report.DriverSystemd, QoS: report.QoSBestEffort}},
		{"systemd burstable qos", "/kubepods.slice/kubepods-burstable.slice",
			report.CgroupPath{Level: report.LevelQoS, Driver: report.DriverSystemd, QoS: report.QoSBurstable}},
		{"systemd kubepods", "/kubepods.slice",
			report.CgroupPath{Level: report.LevelKubepods, Driver: report.DriverSystemd}},
		{"systemd static pod hash uid", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + tHash + ".slice/cri-containerd-" + tCID + ".scope",
			report.CgroupPath{Level: report.LevelContainer, PodUID: tHash, ContainerID: tCID, Runtime: report.RuntimeContainerd, Driver: report.DriverSystemd, QoS: report.QoSBurstable}},

		// Containers outside Kubernetes.
		{"docker cgroupfs", "/docker/" + tCID,
			report.CgroupPath{Level: report.LevelContainer, ContainerID: tCID, Runtime: report.RuntimeDocker, Driver: report.DriverCgroupfs}},
		{"docker cgroupfs child", "/docker/" + tCID + "/init",
			report.CgroupPath{Level: report.LevelContainer, ContainerID: tCID, Runtime: report.RuntimeDocker, Driver: report.DriverCgroupfs}},
		{"docker systemd", "/system.slice/docker-" + tCID + ".scope",
			report.CgroupPath{Level: report.LevelContainer, ContainerID: tCID, Runtime: report.RuntimeDocker, Driver: report.DriverSystemd}},
		{"docker in docker innermost", "/docker/" + tNode + "/docker/" + tCID,
			report.CgroupPath{Level: report.LevelContainer, ContainerID: tCID, Runtime: report.RuntimeDocker, Driver: report.DriverCgroupfs}},
		{"podman bare scope", "libpod-" + tCID + ".scope",
			report.CgroupPath{Level: report.LevelContainer, ContainerID: tCID, Runtime: report.RuntimePodman, Driver: report.DriverSystemd}},
		{"podman machine.slice", "/machine.slice/libpod-" + tCID + ".scope",
			report.CgroupPath{Level: report.LevelContainer, ContainerID: tCID, Runtime: report.RuntimePodman, Driver: report.DriverSystemd}},
		{"podman conmon", "/machine.slice/libpod-conmon-" + tCID + ".scope",
			report.CgroupPath{Level: report.LevelContainer, ContainerID: tCID, Runtime: report.RuntimePodman, Conmon: true, Driver: report.DriverSystemd}},
		{"podman in pod slice", "/machine.slice/machine-libpod_pod_" + tCID2 + ".slice/libpod-" + tCID + ".scope",
			report.CgroupPath{Level: report.LevelContainer, ContainerID: tCID, Runtime: report.RuntimePodman, Driver: report.DriverSystemd}},
		{"podman cgroupfs", "/libpod_parent/libpod-" + tCID,
			report.CgroupPath{Level: report.LevelContainer, ContainerID: tCID, Runtime: report.RuntimePodman, Driver: report.DriverCgroupfs}},
		{"podman rootless", "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + tCID + ".scope/container",
			report.CgroupPath{Level: report.LevelContainer, ContainerID: tCID, Runtime: report.RuntimePodman, Driver: report.DriverSystemd}},
		{"nerdctl", "/system.slice/nerdctl-" + tCID + ".scope",
			report.CgroupPath{Level: report.LevelContainer, ContainerID: tCID, Runtime: report.RuntimeContainerd, Driver: report.DriverSystemd}},

		// Roots above kubepods.
		{"systemd custom root (kind, k3s)", "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-burstable.slice/kubelet-kubepods-burstable-pod" + tUIDs + ".slice/cri-containerd-" + tCID + ".scope",
			report.CgroupPath{Level: report.LevelContainer, PodUID: tUID, ContainerID: tCID, Runtime: report.RuntimeContainerd, Driver: report.DriverSystemd, QoS: report.QoSBurstable, Prefix: "/kubelet.slice"}},
		{"systemd custom root guaranteed", "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-pod" + tUIDs + ".slice",
			report.CgroupPath{Level: report.LevelPod, PodUID: tUID, Driver: report.DriverSystemd, QoS: report.QoSGuaranteed, Prefix: "/kubelet.slice"}},
		{"systemd custom root kubepods", "/kubelet.slice/kubelet-kubepods.slice",
			report.CgroupPath{Level: report.LevelKubepods, Driver: report.DriverSystemd, Prefix: "/kubelet.slice"}},
		{"cgroupfs custom root", "/kubelet/kubepods/burstable/pod" + tUID + "/" + tCID,
			report.CgroupPath{Level: report.LevelContainer, PodUID: tUID, ContainerID: tCID, Driver: report.DriverCgroupfs, QoS: report.QoSBurstable, Prefix: "/kubelet"}},
		{"kind node on cgroupfs docker", "/docker/" + tNode + "/kubepods/besteffort/pod" + tUID + "/" + tCID,
			report.CgroupPath{Level: report.LevelContainer, PodUID: tUID, ContainerID: tCID, Driver: report.DriverCgroupfs, QoS: report.QoSBestEffort, Prefix: "/docker/" + tNode}},
		{"kind node with kubelet root", "/docker/" + tNode + "/kubelet/kubepods/pod" + tUID,
			report.CgroupPath{Level: report.LevelPod, PodUID: tUID, Driver: report.DriverCgroupfs, QoS: report.QoSGuaranteed, Prefix: "/docker/" + tNode + "/kubelet"}},
		{"kind node on systemd docker", "/system.slice/docker-" + tNode + ".scope/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod" + tUIDs + ".slice/cri-containerd-" + tCID + ".scope",
			report.CgroupPath{Level: report.LevelContainer, PodUID: tUID, ContainerID: tCID, Runtime: report.RuntimeContainerd, Driver: report.DriverSystemd, QoS: report.QoSBestEffort, Prefix: "/system.slice/docker-" + tNode + ".scope/kubelet.slice"}},
		{"test runner root", "/test-runner/kubepods/burstable/pod" + tUID + "/" + tCID,
			report.CgroupPath{Level: report.LevelContainer, PodUID: tUID, ContainerID: tCID, Driver: report.DriverCgroupfs, QoS: report.QoSBurstable, Prefix: "/test-runner"}},
		{"kind node inside a pod: innermost hierarchy", "/kubepods/burstable/pod" + tUID2 + "/" + tCID2 + "/docker/" + tNode + "/kubepods/besteffort/pod" + tUID + "/" + tCID,
			report.CgroupPath{Level: report.LevelContainer, PodUID: tUID, ContainerID: tCID, Driver: report.DriverCgroupfs, QoS: report.QoSBestEffort, Prefix: "/kubepods/burstable/pod" + tUID2 + "/" + tCID2 + "/docker/" + tNode}},
		{"unparseable inner kubepods falls back to outer", "/kubepods/burstable/pod" + tUID2 + "/" + tCID2 + "/kubepods/junk",
			report.CgroupPath{Level: report.LevelContainer, PodUID: tUID2, ContainerID: tCID2, Driver: report.DriverCgroupfs, QoS: report.QoSBurstable}},

		// Seen from inside a cgroup namespace.
		{"namespace dotdot then kubepods", "/../../kubepods/burstable/pod" + tUID + "/" + tCID,
			report.CgroupPath{Level: report.LevelContainer, PodUID: tUID, ContainerID: tCID, Driver: report.DriverCgroupfs, QoS: report.QoSBurstable}},
		{"namespace dotdot sibling pod: qos unknown", "/../../pod" + tUID + "/" + tCID,
			report.CgroupPath{Level: report.LevelContainer, PodUID: tUID, ContainerID: tCID, Driver: report.DriverCgroupfs}},
		{"namespace below kubepods with qos", "/burstable/pod" + tUID + "/" + tCID,
			report.CgroupPath{Level: report.LevelContainer, PodUID: tUID, ContainerID: tCID, Driver: report.DriverCgroupfs, QoS: report.QoSBurstable}},
		{"namespace dotdot sibling container", "/../" + tCID,
			report.CgroupPath{Level: report.LevelOther}},
		{"namespace systemd pod slice tells qos", "/../kubepods-besteffort-pod" + tUIDs + ".slice/crio-" + tCID + ".scope",
			report.CgroupPath{Level: report.LevelContainer, PodUID: tUID, ContainerID: tCID, Runtime: report.RuntimeCRIO, Driver: report.DriverSystemd, QoS: report.QoSBestEffort}},
		{"namespace systemd guaranteed pod slice", "/kubepods-pod" + tUIDs + ".slice",
			report.CgroupPath{Level: report.LevelPod, PodUID: tUID, Driver: report.DriverSystemd, QoS: report.QoSGuaranteed}},
		{"namespace container scope only", "/cri-containerd-" + tCID + ".scope",
			report.CgroupPath{Level: report.LevelContainer, ContainerID: tCID, Runtime: report.RuntimeContainerd, Driver: report.DriverSystemd}},
		{"relative path", "kubepods/burstable/pod" + tUID + "/" + tCID,
			report.CgroupPath{Level: report.LevelContainer, PodUID: tUID, ContainerID: tCID, Driver: report.DriverCgroupfs, QoS: report.QoSBurstable}},
		{"unknown layer between kubepods and pod", "/kubepods/weird/pod" + tUID + "/" + tCID,
			report.CgroupPath{Level: report.LevelContainer, PodUID: tUID, ContainerID: tCID, Driver: report.DriverCgroupfs, Prefix: "/kubepods/weird"}},
		{"above namespace root", "/..", report.CgroupPath{Level: report.LevelOther}},

		// systemd units.
		{"kubelet service", "/system.slice/kubelet.service",
			report.CgroupPath{Level: report.LevelSystemService, Unit: "kubelet.service"}},
		{"containerd service", "/system.slice/containerd.service",
			report.CgroupPath{Level: report.LevelSystemService, Unit: "containerd.service"}},
		{"service child cgroup", "/system.slice/containerd.service/sub",
			report.CgroupPath{Level: report.LevelSystemService, Unit: "containerd.service"}},
		{"templated service in sub-slice", "/system.slice/system-getty.slice/getty@tty1.service",
			report.CgroupPath{Level: report.LevelSystemService, Unit: "getty@tty1.service"}},
		{"system slice", "/system.slice", report.CgroupPath{Level: report.LevelSystemService}},
		{"docker service is not a container", "/system.slice/docker.service",
			report.CgroupPath{Level: report.LevelSystemService, Unit: "docker.service"}},
		{"init scope", "/init.scope", report.CgroupPath{Level: report.LevelSystemService, Unit: "init.scope"}},
		{"service in another slice", "/runtime.slice/containerd.service",
			report.CgroupPath{Level: report.LevelSystemService, Unit: "containerd.service"}},
		{"user session", "/user.slice/user-1000.slice/session-3.scope",
			report.CgroupPath{Level: report.LevelUserSession, Unit: "session-3.scope"}},
		{"user manager", "/user.slice/user-1000.slice/user@1000.service/init.scope",
			report.CgroupPath{Level: report.LevelUserSession, Unit: "init.scope"}},
		{"user manager only", "/user.slice/user-1000.slice/user@1000.service",
			report.CgroupPath{Level: report.LevelUserSession, Unit: "user@1000.service"}},
		{"user slice", "/user.slice", report.CgroupPath{Level: report.LevelUserSession}},

		// Root, empty, garbage.
		{"root", "/", report.CgroupPath{Level: report.LevelRoot}},
		{"root with dots", "//./", report.CgroupPath{Level: report.LevelRoot}},
		{"trailing newline and double slashes", "/kubepods//burstable/pod" + tUID + "/" + tCID + "/\n",
			report.CgroupPath{Level: report.LevelContainer, PodUID: tUID, ContainerID: tCID, Driver: report.DriverCgroupfs, QoS: report.QoSBurstable}},
		{"empty", "", report.CgroupPath{Level: report.LevelOther}},
		{"blank", "  ", report.CgroupPath{Level: report.LevelOther}},
		{"dot", ".", report.CgroupPath{Level: report.LevelOther}},
		{"garbage word", "garbage", report.CgroupPath{Level: report.LevelOther}},
		{"garbage bytes", "\x00\xff/\xfe", report.CgroupPath{Level: report.LevelOther}},
		{"kubepods junk", "/kubepods/nonsense", report.CgroupPath{Level: report.LevelOther}},
		{"pod with bad uid", "/kubepods/burstable/podnotauid/" + tCID, report.CgroupPath{Level: report.LevelOther}},
		{"systemd pod with bad uid", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podXYZ.slice", report.CgroupPath{Level: report.LevelOther}},
		{"short uid", "/kubepods/pod0b7e3c1e-5a42-4c1b-9d7a-2f1f8c3e9a1", report.CgroupPath{Level: report.LevelOther}},
		{"docker buildkit", "/docker/buildkit", report.CgroupPath{Level: report.LevelOther}},
		{"docker scope without id", "/system.slice/docker-.scope", report.CgroupPath{Level: report.LevelSystemService, Unit: "docker-.scope"}},
		{"vm scope", "/machine.slice/machine-qemu\\x2d1\\x2dvm.scope", report.CgroupPath{Level: report.LevelOther}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.want.Path = tt.path
			got := Parse(tt.path)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Parse(%q) mismatch (-want +got):\n%s", tt.path, diff)
			}
			checkInvariants(t, got)
		})
	}
}

// TestParseCgroupPathPrefixReparses checks that a nested node's Prefix names
// the outer pod's container.
func TestParseCgroupPathPrefixReparses(t *testing.T) {
	tests := []struct {
		name string
		path string
		want report.CgroupPath
	}{
		{"kind in pod", "/kubepods/burstable/pod" + tUID2 + "/" + tCID2 + "/docker/" + tNode + "/kubepods/besteffort/pod" + tUID + "/" + tCID,
			report.CgroupPath{Level: report.LevelContainer, PodUID: tUID2, ContainerID: tCID2, Driver: report.DriverCgroupfs, QoS: report.QoSBurstable}},
		{"kind on host", "/docker/" + tNode + "/kubepods/pod" + tUID,
			report.CgroupPath{Level: report.LevelContainer, ContainerID: tNode, Runtime: report.RuntimeDocker, Driver: report.DriverCgroupfs}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			outer := Parse(tt.path).Prefix
			tt.want.Path = outer
			if diff := cmp.Diff(tt.want, Parse(outer)); diff != "" {
				t.Errorf("Parse(%q) mismatch (-want +got):\n%s", outer, diff)
			}
		})
	}
}

var canonicalUIDRE = regexp.MustCompile(`^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32})$`)

func checkInvariants(t *testing.T, c report.CgroupPath) {
	t.Helper()
	if c.PodUID != "" && !canonicalUIDRE.MatchString(c.PodUID) {
		t.Errorf("PodUID %q is not canonical", c.PodUID)
	}
	switch c.Level {
	case report.LevelContainer:
		if c.ContainerID == "" {
			t.Errorf("container level without ContainerID: %+v", c)
		}
	case report.LevelPod, report.LevelQoS, report.LevelKubepods, report.LevelSystemService, report.LevelUserSession, report.LevelRoot, report.LevelOther:
		if c.ContainerID != "" || c.Conmon || c.Runtime != "" {
			t.Errorf("container fields set at level %s: %+v", c.Level, c)
		}
	default:
		t.Errorf("unknown level %q", c.Level)
	}
	if c.PodUID == "" && (c.Level == report.LevelPod) {
		t.Errorf("pod level without PodUID: %+v", c)
	}
	switch c.QoS {
	case "", report.QoSGuaranteed, report.QoSBurstable, report.QoSBestEffort:
	default:
		t.Errorf("unknown QoS %q", c.QoS)
	}
	switch c.Driver {
	case "", report.DriverCgroupfs, report.DriverSystemd:
	default:
		t.Errorf("unknown Driver %q", c.Driver)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"", "/", "/..", "garbage",
		"/kubepods/pod" + tUID + "/" + tCID,
		"/kubepods/burstable/pod" + tUID + "/" + tCID + "/sub",
		"/kubepods/besteffort/pod" + tHash,
		kpBurs + "/cri-containerd-" + tCID + ".scope",
		kpBest + "/crio-conmon-" + tCID + ".scope",
		"/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-pod" + tUIDs + ".slice",
		"/../../pod" + tUID + "/" + tCID,
		"/docker/" + tNode + "/kubepods/burstable",
		"/machine.slice/libpod-conmon-" + tCID + ".scope",
		"/user.slice/user-1000.slice/user@1000.service/app.slice/x.service",
		"/system.slice/kubelet.service",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		got := Parse(p)
		if got.Path != p {
			t.Errorf("Path = %q, want the input %q", got.Path, p)
		}
		checkInvariants(t, got)
	})
}

func ExampleParse() {
	c := Parse("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod0b7e3c1e_5a42_4c1b_9d7a_2f1f8c3e9a11.slice/crio-" + tCID + ".scope")
	fmt.Println(c.Level, c.QoS, c.PodUID, c.Runtime, c.Driver)
	// Output: container BestEffort 0b7e3c1e-5a42-4c1b-9d7a-2f1f8c3e9a11 cri-o systemd
}

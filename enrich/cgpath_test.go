package enrich

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

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
		want CgroupPath
	}{
		// cgroupfs driver.
		{"cgroupfs guaranteed container", "/kubepods/pod" + tUID + "/" + tCID,
			CgroupPath{Level: LevelContainer, PodUID: tUID, ContainerID: tCID, Driver: DriverCgroupfs, QoS: QoSGuaranteed}},
		{"cgroupfs burstable container", "/kubepods/burstable/pod" + tUID + "/" + tCID,
			CgroupPath{Level: LevelContainer, PodUID: tUID, ContainerID: tCID, Driver: DriverCgroupfs, QoS: QoSBurstable}},
		{"cgroupfs besteffort container", "/kubepods/besteffort/pod" + tUID + "/" + tCID,
			CgroupPath{Level: LevelContainer, PodUID: tUID, ContainerID: tCID, Driver: DriverCgroupfs, QoS: QoSBestEffort}},
		{"cgroupfs guaranteed pod", "/kubepods/pod" + tUID,
			CgroupPath{Level: LevelPod, PodUID: tUID, Driver: DriverCgroupfs, QoS: QoSGuaranteed}},
		{"cgroupfs burstable pod", "/kubepods/burstable/pod" + tUID,
			CgroupPath{Level: LevelPod, PodUID: tUID, Driver: DriverCgroupfs, QoS: QoSBurstable}},
		{"cgroupfs burstable qos", "/kubepods/burstable",
			CgroupPath{Level: LevelQoS, Driver: DriverCgroupfs, QoS: QoSBurstable}},
		{"cgroupfs besteffort qos", "/kubepods/besteffort",
			CgroupPath{Level: LevelQoS, Driver: DriverCgroupfs, QoS: QoSBestEffort}},
		{"cgroupfs kubepods", "/kubepods",
			CgroupPath{Level: LevelKubepods, Driver: DriverCgroupfs}},
		{"cgroupfs cri-o container", "/kubepods/besteffort/pod" + tUID + "/crio-" + tCID,
			CgroupPath{Level: LevelContainer, PodUID: tUID, ContainerID: tCID, Runtime: RuntimeCRIO, Driver: DriverCgroupfs, QoS: QoSBestEffort}},
		{"cgroupfs cri-o conmon", "/kubepods/burstable/pod" + tUID + "/crio-conmon-" + tCID,
			CgroupPath{Level: LevelContainer, PodUID: tUID, ContainerID: tCID, Runtime: RuntimeCRIO, Conmon: true, Driver: DriverCgroupfs, QoS: QoSBurstable}},
		{"cgroupfs nested child of container", "/kubepods/burstable/pod" + tUID + "/" + tCID + "/sub",
			CgroupPath{Level: LevelContainer, PodUID: tUID, ContainerID: tCID, Driver: DriverCgroupfs, QoS: QoSBurstable}},
		{"cgroupfs deeply nested child", "/kubepods/pod" + tUID + "/" + tCID + "/a/b/c",
			CgroupPath{Level: LevelContainer, PodUID: tUID, ContainerID: tCID, Driver: DriverCgroupfs, QoS: QoSGuaranteed}},
		{"cgroupfs short non-hex container id kept", "/kubepods/burstable/pod" + tUID + "/sandbox_1",
			CgroupPath{Level: LevelContainer, PodUID: tUID, ContainerID: "sandbox_1", Driver: DriverCgroupfs, QoS: QoSBurstable}},
		{"cgroupfs static pod hash uid", "/kubepods/burstable/pod" + tHash + "/" + tCID,
			CgroupPath{Level: LevelContainer, PodUID: tHash, ContainerID: tCID, Driver: DriverCgroupfs, QoS: QoSBurstable}},
		{"uppercase uid normalised", "/kubepods/pod" + strings.ToUpper(tUID),
			CgroupPath{Level: LevelPod, PodUID: tUID, Driver: DriverCgroupfs, QoS: QoSGuaranteed}},

		// systemd driver.
		{"systemd guaranteed containerd", "/kubepods.slice/kubepods-pod" + tUIDs + ".slice/cri-containerd-" + tCID + ".scope",
			CgroupPath{Level: LevelContainer, PodUID: tUID, ContainerID: tCID, Runtime: RuntimeContainerd, Driver: DriverSystemd, QoS: QoSGuaranteed}},
		{"systemd burstable containerd", kpBurs + "/cri-containerd-" + tCID + ".scope",
			CgroupPath{Level: LevelContainer, PodUID: tUID, ContainerID: tCID, Runtime: RuntimeContainerd, Driver: DriverSystemd, QoS: QoSBurstable}},
		{"systemd besteffort cri-o", kpBest + "/crio-" + tCID + ".scope",
			CgroupPath{Level: LevelContainer, PodUID: tUID, ContainerID: tCID, Runtime: RuntimeCRIO, Driver: DriverSystemd, QoS: QoSBestEffort}},
		{"systemd cri-o conmon", kpBurs + "/crio-conmon-" + tCID + ".scope",
			CgroupPath{Level: LevelContainer, PodUID: tUID, ContainerID: tCID, Runtime: RuntimeCRIO, Conmon: true, Driver: DriverSystemd, QoS: QoSBurstable}},
		{"systemd docker (cri-dockerd)", kpBest + "/docker-" + tCID + ".scope",
			CgroupPath{Level: LevelContainer, PodUID: tUID, ContainerID: tCID, Runtime: RuntimeDocker, Driver: DriverSystemd, QoS: QoSBestEffort}},
		{"systemd crun container child", kpBurs + "/crio-" + tCID + ".scope/container",
			CgroupPath{Level: LevelContainer, PodUID: tUID, ContainerID: tCID, Runtime: RuntimeCRIO, Driver: DriverSystemd, QoS: QoSBurstable}},
		{"systemd unknown runtime prefix", kpBurs + "/kata-" + tCID + ".scope",
			CgroupPath{Level: LevelContainer, PodUID: tUID, ContainerID: tCID, Driver: DriverSystemd, QoS: QoSBurstable}},
		{"systemd guaranteed pod", "/kubepods.slice/kubepods-pod" + tUIDs + ".slice",
			CgroupPath{Level: LevelPod, PodUID: tUID, Driver: DriverSystemd, QoS: QoSGuaranteed}},
		{"systemd besteffort pod", kpBest,
			CgroupPath{Level: LevelPod, PodUID: tUID, Driver: DriverSystemd, QoS: QoSBestEffort}},
		{"systemd besteffort qos", "/kubepods.slice/kubepods-besteffort.slice",
			CgroupPath{Level: LevelQoS, Driver: DriverSystemd, QoS: QoSBestEffort}},
		{"systemd burstable qos", "/kubepods.slice/kubepods-burstable.slice",
			CgroupPath{Level: LevelQoS, Driver: DriverSystemd, QoS: QoSBurstable}},
		{"systemd kubepods", "/kubepods.slice",
			CgroupPath{Level: LevelKubepods, Driver: DriverSystemd}},
		{"systemd static pod hash uid", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + tHash + ".slice/cri-containerd-" + tCID + ".scope",
			CgroupPath{Level: LevelContainer, PodUID: tHash, ContainerID: tCID, Runtime: RuntimeContainerd, Driver: DriverSystemd, QoS: QoSBurstable}},

		// Containers outside Kubernetes.
		{"docker cgroupfs", "/docker/" + tCID,
			CgroupPath{Level: LevelContainer, ContainerID: tCID, Runtime: RuntimeDocker, Driver: DriverCgroupfs}},
		{"docker cgroupfs child", "/docker/" + tCID + "/init",
			CgroupPath{Level: LevelContainer, ContainerID: tCID, Runtime: RuntimeDocker, Driver: DriverCgroupfs}},
		{"docker systemd", "/system.slice/docker-" + tCID + ".scope",
			CgroupPath{Level: LevelContainer, ContainerID: tCID, Runtime: RuntimeDocker, Driver: DriverSystemd}},
		{"docker in docker innermost", "/docker/" + tNode + "/docker/" + tCID,
			CgroupPath{Level: LevelContainer, ContainerID: tCID, Runtime: RuntimeDocker, Driver: DriverCgroupfs}},
		{"podman bare scope", "libpod-" + tCID + ".scope",
			CgroupPath{Level: LevelContainer, ContainerID: tCID, Runtime: RuntimePodman, Driver: DriverSystemd}},
		{"podman machine.slice", "/machine.slice/libpod-" + tCID + ".scope",
			CgroupPath{Level: LevelContainer, ContainerID: tCID, Runtime: RuntimePodman, Driver: DriverSystemd}},
		{"podman conmon", "/machine.slice/libpod-conmon-" + tCID + ".scope",
			CgroupPath{Level: LevelContainer, ContainerID: tCID, Runtime: RuntimePodman, Conmon: true, Driver: DriverSystemd}},
		{"podman in pod slice", "/machine.slice/machine-libpod_pod_" + tCID2 + ".slice/libpod-" + tCID + ".scope",
			CgroupPath{Level: LevelContainer, ContainerID: tCID, Runtime: RuntimePodman, Driver: DriverSystemd}},
		{"podman cgroupfs", "/libpod_parent/libpod-" + tCID,
			CgroupPath{Level: LevelContainer, ContainerID: tCID, Runtime: RuntimePodman, Driver: DriverCgroupfs}},
		{"podman rootless", "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + tCID + ".scope/container",
			CgroupPath{Level: LevelContainer, ContainerID: tCID, Runtime: RuntimePodman, Driver: DriverSystemd}},
		{"nerdctl", "/system.slice/nerdctl-" + tCID + ".scope",
			CgroupPath{Level: LevelContainer, ContainerID: tCID, Runtime: RuntimeContainerd, Driver: DriverSystemd}},

		// Roots above kubepods.
		{"systemd custom root (kind, k3s)", "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-burstable.slice/kubelet-kubepods-burstable-pod" + tUIDs + ".slice/cri-containerd-" + tCID + ".scope",
			CgroupPath{Level: LevelContainer, PodUID: tUID, ContainerID: tCID, Runtime: RuntimeContainerd, Driver: DriverSystemd, QoS: QoSBurstable, Prefix: "/kubelet.slice"}},
		{"systemd custom root guaranteed", "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-pod" + tUIDs + ".slice",
			CgroupPath{Level: LevelPod, PodUID: tUID, Driver: DriverSystemd, QoS: QoSGuaranteed, Prefix: "/kubelet.slice"}},
		{"systemd custom root kubepods", "/kubelet.slice/kubelet-kubepods.slice",
			CgroupPath{Level: LevelKubepods, Driver: DriverSystemd, Prefix: "/kubelet.slice"}},
		{"cgroupfs custom root", "/kubelet/kubepods/burstable/pod" + tUID + "/" + tCID,
			CgroupPath{Level: LevelContainer, PodUID: tUID, ContainerID: tCID, Driver: DriverCgroupfs, QoS: QoSBurstable, Prefix: "/kubelet"}},
		{"kind node on cgroupfs docker", "/docker/" + tNode + "/kubepods/besteffort/pod" + tUID + "/" + tCID,
			CgroupPath{Level: LevelContainer, PodUID: tUID, ContainerID: tCID, Driver: DriverCgroupfs, QoS: QoSBestEffort, Prefix: "/docker/" + tNode}},
		{"kind node with kubelet root", "/docker/" + tNode + "/kubelet/kubepods/pod" + tUID,
			CgroupPath{Level: LevelPod, PodUID: tUID, Driver: DriverCgroupfs, QoS: QoSGuaranteed, Prefix: "/docker/" + tNode + "/kubelet"}},
		{"kind node on systemd docker", "/system.slice/docker-" + tNode + ".scope/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod" + tUIDs + ".slice/cri-containerd-" + tCID + ".scope",
			CgroupPath{Level: LevelContainer, PodUID: tUID, ContainerID: tCID, Runtime: RuntimeContainerd, Driver: DriverSystemd, QoS: QoSBestEffort, Prefix: "/system.slice/docker-" + tNode + ".scope/kubelet.slice"}},
		{"test runner root", "/test-runner/kubepods/burstable/pod" + tUID + "/" + tCID,
			CgroupPath{Level: LevelContainer, PodUID: tUID, ContainerID: tCID, Driver: DriverCgroupfs, QoS: QoSBurstable, Prefix: "/test-runner"}},
		{"kind node inside a pod: innermost hierarchy", "/kubepods/burstable/pod" + tUID2 + "/" + tCID2 + "/docker/" + tNode + "/kubepods/besteffort/pod" + tUID + "/" + tCID,
			CgroupPath{Level: LevelContainer, PodUID: tUID, ContainerID: tCID, Driver: DriverCgroupfs, QoS: QoSBestEffort, Prefix: "/kubepods/burstable/pod" + tUID2 + "/" + tCID2 + "/docker/" + tNode}},
		{"unparseable inner kubepods falls back to outer", "/kubepods/burstable/pod" + tUID2 + "/" + tCID2 + "/kubepods/junk",
			CgroupPath{Level: LevelContainer, PodUID: tUID2, ContainerID: tCID2, Driver: DriverCgroupfs, QoS: QoSBurstable}},

		// Seen from inside a cgroup namespace.
		{"namespace dotdot then kubepods", "/../../kubepods/burstable/pod" + tUID + "/" + tCID,
			CgroupPath{Level: LevelContainer, PodUID: tUID, ContainerID: tCID, Driver: DriverCgroupfs, QoS: QoSBurstable}},
		{"namespace dotdot sibling pod: qos unknown", "/../../pod" + tUID + "/" + tCID,
			CgroupPath{Level: LevelContainer, PodUID: tUID, ContainerID: tCID, Driver: DriverCgroupfs}},
		{"namespace below kubepods with qos", "/burstable/pod" + tUID + "/" + tCID,
			CgroupPath{Level: LevelContainer, PodUID: tUID, ContainerID: tCID, Driver: DriverCgroupfs, QoS: QoSBurstable}},
		{"namespace dotdot sibling container", "/../" + tCID,
			CgroupPath{Level: LevelOther}},
		{"namespace systemd pod slice tells qos", "/../kubepods-besteffort-pod" + tUIDs + ".slice/crio-" + tCID + ".scope",
			CgroupPath{Level: LevelContainer, PodUID: tUID, ContainerID: tCID, Runtime: RuntimeCRIO, Driver: DriverSystemd, QoS: QoSBestEffort}},
		{"namespace systemd guaranteed pod slice", "/kubepods-pod" + tUIDs + ".slice",
			CgroupPath{Level: LevelPod, PodUID: tUID, Driver: DriverSystemd, QoS: QoSGuaranteed}},
		{"namespace container scope only", "/cri-containerd-" + tCID + ".scope",
			CgroupPath{Level: LevelContainer, ContainerID: tCID, Runtime: RuntimeContainerd, Driver: DriverSystemd}},
		{"relative path", "kubepods/burstable/pod" + tUID + "/" + tCID,
			CgroupPath{Level: LevelContainer, PodUID: tUID, ContainerID: tCID, Driver: DriverCgroupfs, QoS: QoSBurstable}},
		{"unknown layer between kubepods and pod", "/kubepods/weird/pod" + tUID + "/" + tCID,
			CgroupPath{Level: LevelContainer, PodUID: tUID, ContainerID: tCID, Driver: DriverCgroupfs, Prefix: "/kubepods/weird"}},
		{"above namespace root", "/..", CgroupPath{Level: LevelOther}},

		// systemd units.
		{"kubelet service", "/system.slice/kubelet.service",
			CgroupPath{Level: LevelSystemService, Unit: "kubelet.service"}},
		{"containerd service", "/system.slice/containerd.service",
			CgroupPath{Level: LevelSystemService, Unit: "containerd.service"}},
		{"service child cgroup", "/system.slice/containerd.service/sub",
			CgroupPath{Level: LevelSystemService, Unit: "containerd.service"}},
		{"templated service in sub-slice", "/system.slice/system-getty.slice/getty@tty1.service",
			CgroupPath{Level: LevelSystemService, Unit: "getty@tty1.service"}},
		{"system slice", "/system.slice", CgroupPath{Level: LevelSystemService}},
		{"docker service is not a container", "/system.slice/docker.service",
			CgroupPath{Level: LevelSystemService, Unit: "docker.service"}},
		{"init scope", "/init.scope", CgroupPath{Level: LevelSystemService, Unit: "init.scope"}},
		{"service in another slice", "/runtime.slice/containerd.service",
			CgroupPath{Level: LevelSystemService, Unit: "containerd.service"}},
		{"user session", "/user.slice/user-1000.slice/session-3.scope",
			CgroupPath{Level: LevelUserSession, Unit: "session-3.scope"}},
		{"user manager", "/user.slice/user-1000.slice/user@1000.service/init.scope",
			CgroupPath{Level: LevelUserSession, Unit: "init.scope"}},
		{"user manager only", "/user.slice/user-1000.slice/user@1000.service",
			CgroupPath{Level: LevelUserSession, Unit: "user@1000.service"}},
		{"user slice", "/user.slice", CgroupPath{Level: LevelUserSession}},

		// Root, empty, garbage.
		{"root", "/", CgroupPath{Level: LevelRoot}},
		{"root with dots", "//./", CgroupPath{Level: LevelRoot}},
		{"trailing newline and double slashes", "/kubepods//burstable/pod" + tUID + "/" + tCID + "/\n",
			CgroupPath{Level: LevelContainer, PodUID: tUID, ContainerID: tCID, Driver: DriverCgroupfs, QoS: QoSBurstable}},
		{"empty", "", CgroupPath{Level: LevelOther}},
		{"blank", "  ", CgroupPath{Level: LevelOther}},
		{"dot", ".", CgroupPath{Level: LevelOther}},
		{"garbage word", "garbage", CgroupPath{Level: LevelOther}},
		{"garbage bytes", "\x00\xff/\xfe", CgroupPath{Level: LevelOther}},
		{"kubepods junk", "/kubepods/nonsense", CgroupPath{Level: LevelOther}},
		{"pod with bad uid", "/kubepods/burstable/podnotauid/" + tCID, CgroupPath{Level: LevelOther}},
		{"systemd pod with bad uid", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podXYZ.slice", CgroupPath{Level: LevelOther}},
		{"short uid", "/kubepods/pod0b7e3c1e-5a42-4c1b-9d7a-2f1f8c3e9a1", CgroupPath{Level: LevelOther}},
		{"docker buildkit", "/docker/buildkit", CgroupPath{Level: LevelOther}},
		{"docker scope without id", "/system.slice/docker-.scope", CgroupPath{Level: LevelSystemService, Unit: "docker-.scope"}},
		{"vm scope", "/machine.slice/machine-qemu\\x2d1\\x2dvm.scope", CgroupPath{Level: LevelOther}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.want.Path = tt.path
			got := ParseCgroupPath(tt.path)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseCgroupPath(%q) mismatch (-want +got):\n%s", tt.path, diff)
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
		want CgroupPath
	}{
		{"kind in pod", "/kubepods/burstable/pod" + tUID2 + "/" + tCID2 + "/docker/" + tNode + "/kubepods/besteffort/pod" + tUID + "/" + tCID,
			CgroupPath{Level: LevelContainer, PodUID: tUID2, ContainerID: tCID2, Driver: DriverCgroupfs, QoS: QoSBurstable}},
		{"kind on host", "/docker/" + tNode + "/kubepods/pod" + tUID,
			CgroupPath{Level: LevelContainer, ContainerID: tNode, Runtime: RuntimeDocker, Driver: DriverCgroupfs}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			outer := ParseCgroupPath(tt.path).Prefix
			tt.want.Path = outer
			if diff := cmp.Diff(tt.want, ParseCgroupPath(outer)); diff != "" {
				t.Errorf("ParseCgroupPath(%q) mismatch (-want +got):\n%s", outer, diff)
			}
		})
	}
}

var canonicalUIDRE = regexp.MustCompile(`^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32})$`)

func checkInvariants(t *testing.T, c CgroupPath) {
	t.Helper()
	if c.PodUID != "" && !canonicalUIDRE.MatchString(c.PodUID) {
		t.Errorf("PodUID %q is not canonical", c.PodUID)
	}
	switch c.Level {
	case LevelContainer:
		if c.ContainerID == "" {
			t.Errorf("container level without ContainerID: %+v", c)
		}
	case LevelPod, LevelQoS, LevelKubepods, LevelSystemService, LevelUserSession, LevelRoot, LevelOther:
		if c.ContainerID != "" || c.Conmon || c.Runtime != "" {
			t.Errorf("container fields set at level %s: %+v", c.Level, c)
		}
	default:
		t.Errorf("unknown level %q", c.Level)
	}
	if c.PodUID == "" && (c.Level == LevelPod) {
		t.Errorf("pod level without PodUID: %+v", c)
	}
	switch c.QoS {
	case "", QoSGuaranteed, QoSBurstable, QoSBestEffort:
	default:
		t.Errorf("unknown QoS %q", c.QoS)
	}
	switch c.Driver {
	case "", DriverCgroupfs, DriverSystemd:
	default:
		t.Errorf("unknown Driver %q", c.Driver)
	}
}

func FuzzParseCgroupPath(f *testing.F) {
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
		got := ParseCgroupPath(p)
		if got.Path != p {
			t.Errorf("Path = %q, want the input %q", got.Path, p)
		}
		checkInvariants(t, got)
	})
}

func ExampleParseCgroupPath() {
	c := ParseCgroupPath("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod0b7e3c1e_5a42_4c1b_9d7a_2f1f8c3e9a11.slice/crio-" + tCID + ".scope")
	fmt.Println(c.Level, c.QoS, c.PodUID, c.Runtime, c.Driver)
	// Output: container BestEffort 0b7e3c1e-5a42-4c1b-9d7a-2f1f8c3e9a11 cri-o systemd
}

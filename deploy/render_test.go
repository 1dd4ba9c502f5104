package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/yaml"
)

var update = flag.Bool("update", false, "rewrite deploy/daemonset.yaml from the kustomize base")

// toolDir holds the binaries the tests build (the renderer, oomscope).
var toolDir string

func TestMain(m *testing.M) {
	// The container test runs this binary again as the container's init
	// (kmsg_test.go): it sets up the container and execs oomscope.
	if os.Getenv(containerEnv) != "" {
		containerInit()
		return // not reached: containerInit execs or exits
	}
	flag.Parse()
	dir, err := os.MkdirTemp("", "oomscope-deploy-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	toolDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Paths from this package's directory.
const (
	kustomizeBase = "kustomize/base"
	componentsDir = "kustomize/components"
	helmChart     = "helm/oomscope"
	renderModule  = "../hack/render"
	singleFile    = "daemonset.yaml"
)

// singleFileHeader starts daemonset.yaml; the rest is the kustomize base
// rendered.
const singleFileHeader = `# GENERATED from deploy/kustomize/base; do not edit. Regenerate with
#   go test ./deploy -run TestRender -update
# oomscope node daemon: one least-privilege pod per node reads the node's
# /dev/kmsg (CAP_SYSLOG only), the host's cgroups and /proc read-only, and
# keeps its state under /var/lib/oomscope on the node. docs/deploy.md
# explains every privilege; the container runtime must allow the /dev/kmsg
# device (docs/deploy.md, "The device cgroup").
#   kubectl apply -f deploy/daemonset.yaml   (or: kubectl apply -k deploy/kustomize/base)
`

// variant is one way to install: kustomize components and the Helm
// values that must render the same objects.
type variant struct {
	name       string
	components []string
	helmSet    []string
}

// variants: the default install, then each optional component. The
// PodMonitor comes last: applied in this order, every variant's objects
// replace the previous ones without deleting any.
var variants = []variant{
	{name: "default"},
	{name: "kmsg-device-plugin", components: []string{"kmsg-device-plugin"}, helmSet: []string{"kmsg.deviceResource=squat.ai/kmsg"}},
	{name: "privileged", components: []string{"privileged"}, helmSet: []string{"privileged=true"}},
	{name: "podmonitor", components: []string{"podmonitor"}, helmSet: []string{"podMonitor.enabled=true"}},
}

func (v variant) kustomizeArgs() []string {
	args := []string{"kustomize", kustomizeBase}
	for _, c := range v.components {
		args = append(args, "--component", filepath.Join(componentsDir, c))
	}
	return args
}

// helmArgs renders the chart into namespace oomscope with the Namespace
// object, as the kustomize base has it.
func (v variant) helmArgs() []string {
	args := []string{"helm", helmChart, "--namespace", "oomscope", "--release", "oomscope", "--set", "namespace.create=true"}
	for _, s := range v.helmSet {
		args = append(args, "--set", s)
	}
	return args
}

var (
	renderOnce sync.Once
	renderBin  string
	renderErr  error
)

// renderTool builds hack/render (its own Go module) once per test run.
func renderTool(t *testing.T) string {
	t.Helper()
	renderOnce.Do(func() {
		start := time.Now()
		bin := filepath.Join(toolDir, "render")
		abs, err := filepath.Abs(renderModule)
		if err != nil {
			renderErr = err
			return
		}
		cmd := exec.Command("go", "build", "-o", bin, ".")
		cmd.Dir = abs
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly", "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		if err != nil {
			renderErr = fmt.Errorf("go build %s (hack/render, a separate Go module with kustomize and Helm; the first build fetches their modules and takes minutes): %v\n%s", abs, err, out)
			return
		}
		renderBin = bin
		t.Logf("built hack/render in %v", time.Since(start).Round(time.Millisecond))
	})
	if renderErr != nil {
		t.Fatal(renderErr)
	}
	return renderBin
}

var (
	renderMu    sync.Mutex
	renderCache = map[string][]byte{}
)

// render runs the renderer and returns its YAML stream.
func render(t *testing.T, args ...string) []byte {
	t.Helper()
	key := strings.Join(args, "\x00")
	renderMu.Lock()
	defer renderMu.Unlock()
	if out, ok := renderCache[key]; ok {
		return out
	}
	bin := renderTool(t)
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("render %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	renderCache[key] = stdout.Bytes()
	return stdout.Bytes()
}

// decode splits a YAML stream into objects.
func decode(t *testing.T, what string, raw []byte) []*unstructured.Unstructured {
	t.Helper()
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	var objs []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode %s: %v", what, err)
		}
		if len(u.Object) == 0 {
			continue
		}
		objs = append(objs, u)
	}
	return objs
}

func objKey(u *unstructured.Unstructured) string {
	return fmt.Sprintf("%s %s %s/%s", u.GetAPIVersion(), u.GetKind(), u.GetNamespace(), u.GetName())
}

// helmOnlyLabels are the labels Helm charts conventionally add and a
// kustomize base has no reason to carry; the comparison ignores them.
var helmOnlyLabels = []string{"helm.sh/chart", "app.kubernetes.io/managed-by"}

// normalise indexes objects by key, without Helm's own labels.
func normalise(t *testing.T, objs []*unstructured.Unstructured) map[string]map[string]any {
	t.Helper()
	m := map[string]map[string]any{}
	for _, u := range objs {
		c := u.DeepCopy()
		if labels := c.GetLabels(); labels != nil {
			for _, l := range helmOnlyLabels {
				delete(labels, l)
			}
			c.SetLabels(labels)
		}
		k := objKey(c)
		if _, dup := m[k]; dup {
			t.Errorf("%s rendered twice", k)
		}
		m[k] = c.Object
	}
	return m
}

// TestRender renders the kustomize base and the Helm chart for every
// variant and requires the same objects, object by object (sorted keys,
// Helm's chart and managed-by labels left out); daemonset.yaml must be
// the base rendered; the NATS stream ConfigMap must hold docs/nats.md's
// stream definition.
func TestRender(t *testing.T) {
	if testing.Short() {
		t.Skip("builds hack/render (kustomize and Helm): not in -short mode")
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			k := normalise(t, decode(t, "kustomize", render(t, v.kustomizeArgs()...)))
			h := normalise(t, decode(t, "helm", render(t, v.helmArgs()...)))
			kk, hk := slices.Sorted(maps.Keys(k)), slices.Sorted(maps.Keys(h))
			if !slices.Equal(kk, hk) {
				t.Fatalf("different objects:\nkustomize %q\nhelm      %q", kk, hk)
			}
			for _, key := range kk {
				if d := cmp.Diff(k[key], h[key]); d != "" {
					t.Errorf("%s differs (-kustomize +helm):\n%s", key, d)
				}
			}
			t.Logf("%d objects, the same from kustomize and Helm: %q", len(kk), kk)
		})
	}

	t.Run("helm default namespace", func(t *testing.T) {
		// helm install --create-namespace: the same objects without the
		// Namespace (namespace.create defaults to false).
		h := normalise(t, decode(t, "helm", render(t, "helm", helmChart, "--namespace", "oomscope")))
		k := normalise(t, decode(t, "kustomize", render(t, variants[0].kustomizeArgs()...)))
		delete(k, "v1 Namespace /oomscope")
		if d := cmp.Diff(k, h); d != "" {
			t.Errorf("helm with default values differs from the base without its Namespace (-kustomize +helm):\n%s", d)
		}
	})

	t.Run("helm values schema", func(t *testing.T) {
		// A misspelt value fails instead of being ignored.
		cmd := exec.Command(renderTool(t), "helm", helmChart, "--set", "privilegd=true")
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "privilegd") {
			t.Errorf("a misspelt value rendered: err %v, output\n%s", err, out)
		}
	})

	t.Run("helm nats url", func(t *testing.T) {
		objs := decode(t, "helm", render(t, "helm", helmChart, "--namespace", "oomscope", "--set", "nats.url=nats://nats.nats.svc:4222", "--set", "nats.createStream=true"))
		for _, u := range objs {
			if u.GetKind() != "DaemonSet" {
				continue
			}
			ctrs, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
			args, _, _ := unstructured.NestedStringSlice(ctrs[0].(map[string]any), "args")
			for _, want := range []string{"--nats-url=nats://nats.nats.svc:4222", "--nats-create-stream"} {
				if !slices.Contains(args, want) {
					t.Errorf("args %q lack %s", args, want)
				}
			}
			return
		}
		t.Error("no DaemonSet")
	})

	t.Run(singleFile, func(t *testing.T) {
		want := singleFileHeader + string(render(t, variants[0].kustomizeArgs()...))
		if *update {
			if err := os.WriteFile(singleFile, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got, err := os.ReadFile(singleFile)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Errorf("deploy/%s is not the kustomize base rendered (go test ./deploy -run TestRender -update rewrites it):\n%s", singleFile, cmp.Diff(want, string(got)))
		}
	})

	t.Run("nats stream", func(t *testing.T) {
		doc, err := os.ReadFile("../docs/nats.md")
		if err != nil {
			t.Fatal(err)
		}
		_, rest, ok := strings.Cut(string(doc), "<!-- stream-json")
		if !ok {
			t.Fatal("no stream-json marker in docs/nats.md")
		}
		_, rest, _ = strings.Cut(rest, "```json\n")
		block, _, ok := strings.Cut(rest, "```")
		if !ok {
			t.Fatal("no json block after the stream-json marker in docs/nats.md")
		}
		var want any
		if err := json.Unmarshal([]byte(block), &want); err != nil {
			t.Fatal(err)
		}
		for _, v := range []variant{variants[0]} {
			for _, args := range [][]string{v.kustomizeArgs(), v.helmArgs()} {
				found := false
				for _, u := range decode(t, args[0], render(t, args...)) {
					if u.GetKind() != "ConfigMap" || u.GetName() != "oomscope-nats-stream" {
						continue
					}
					found = true
					s, _, _ := unstructured.NestedString(u.Object, "data", "oomscope-stream.json")
					var got any
					if err := json.Unmarshal([]byte(s), &got); err != nil {
						t.Fatalf("%s: ConfigMap oomscope-nats-stream: %v", args[0], err)
					}
					if d := cmp.Diff(want, got); d != "" {
						t.Errorf("%s: the stream in ConfigMap oomscope-nats-stream is not docs/nats.md's (-docs +configmap):\n%s", args[0], d)
					}
				}
				if !found {
					t.Errorf("%s: no ConfigMap oomscope-nats-stream", args[0])
				}
			}
		}
		a, _ := os.ReadFile(filepath.Join(kustomizeBase, "oomscope-stream.json"))
		b, _ := os.ReadFile(filepath.Join(helmChart, "files", "oomscope-stream.json"))
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("the kustomize base's and the chart's oomscope-stream.json differ (or are empty)")
		}
	})
}

// Command render prints the Kubernetes objects of oomscope's kustomize base
// or Helm chart as one YAML stream, the way `kubectl kustomize` and
// `helm template` would, without a cluster and without those tools:
//
//	render kustomize DIR [--component DIR]...
//	render helm CHART [--namespace NS] [--release NAME] [--kube-version V] [-f values.yaml]... [--set k=v]...
//
// It is a separate Go module (like hack/envtest) so that kustomize's and
// Helm's dependencies stay out of the main module's go.mod. The test in
// deploy/ builds it and compares both renders object by object before
// applying them to a real kube-apiserver.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/cli/values"
	"helm.sh/helm/v3/pkg/getter"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "render:", err)
		os.Exit(1)
	}
}

const usage = `usage:
  render kustomize DIR [--component DIR]...
  render helm CHART [--namespace NS] [--release NAME] [--kube-version V] [-f values.yaml]... [--set k=v]... [--set-string k=v]...`

func run(args []string, out io.Writer) error {
	if len(args) < 2 {
		return errors.New(usage)
	}
	switch args[0] {
	case "kustomize":
		return renderKustomize(args[1:], out)
	case "helm":
		return renderHelm(args[1:], out)
	default:
		return fmt.Errorf("unknown renderer %q\n%s", args[0], usage)
	}
}

// multi is a repeatable string flag.
type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

// splitArgs puts the first positional argument (the directory) aside so
// that flags may follow it.
func splitArgs(args []string) (string, []string, error) {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return "", nil, errors.New(usage)
	}
	return args[0], args[1:], nil
}

// renderKustomize builds the kustomization in dir. With components, it
// builds a temporary overlay of dir plus those components, as a user's
// own kustomization.yaml would.
func renderKustomize(args []string, out io.Writer) error {
	dir, rest, err := splitArgs(args)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("kustomize", flag.ContinueOnError)
	var comps multi
	fs.Var(&comps, "component", "a kustomize component directory to add (repeatable)")
	if err := fs.Parse(rest); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	target, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if len(comps) > 0 {
		overlay, err := os.MkdirTemp("", "oomscope-render-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(overlay)
		var b strings.Builder
		b.WriteString("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n")
		// kustomize takes relative paths only.
		rel := func(p string) (string, error) {
			abs, err := filepath.Abs(p)
			if err != nil {
				return "", err
			}
			return filepath.Rel(overlay, abs)
		}
		r, err := rel(target)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "  - %q\n", r)
		b.WriteString("components:\n")
		for _, c := range comps {
			r, err := rel(c)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, "  - %q\n", r)
		}
		if err := os.WriteFile(filepath.Join(overlay, "kustomization.yaml"), []byte(b.String()), 0o644); err != nil {
			return err
		}
		target = overlay
	}
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), target)
	if err != nil {
		return fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	y, err := m.AsYaml()
	if err != nil {
		return err
	}
	_, err = out.Write(y)
	return err
}

// renderHelm renders the chart as `helm template` does: an install in
// dry-run, client-only mode (no cluster), printing the release manifest
// (no hooks, no NOTES.txt).
func renderHelm(args []string, out io.Writer) error {
	chartDir, rest, err := splitArgs(args)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("helm", flag.ContinueOnError)
	ns := fs.String("namespace", "default", "release namespace")
	fs.StringVar(ns, "n", "default", "release namespace (shorthand)")
	name := fs.String("release", "oomscope", "release name")
	// helm template's --kube-version. A helm binary built from source
	// without Helm's release ldflags says Kubernetes v1.20.0.
	kube := fs.String("kube-version", "v1.37.2", "Kubernetes version for Capabilities.KubeVersion")
	var opts values.Options
	fs.Var((*multi)(&opts.ValueFiles), "f", "values file (repeatable)")
	fs.Var((*multi)(&opts.ValueFiles), "values", "values file (repeatable)")
	fs.Var((*multi)(&opts.Values), "set", "set a value, key=value (repeatable)")
	fs.Var((*multi)(&opts.StringValues), "set-string", "set a string value, key=value (repeatable)")
	if err := fs.Parse(rest); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	ch, err := loader.Load(chartDir)
	if err != nil {
		return fmt.Errorf("load chart %s: %w", chartDir, err)
	}
	vals, err := opts.MergeValues(getter.Providers{})
	if err != nil {
		return err
	}
	install := action.NewInstall(&action.Configuration{Log: func(string, ...any) {}})
	install.DryRun = true
	install.ClientOnly = true
	install.Replace = true
	install.ReleaseName = *name
	install.Namespace = *ns
	if install.KubeVersion, err = chartutil.ParseKubeVersion(*kube); err != nil {
		return fmt.Errorf("--kube-version: %w", err)
	}
	rel, err := install.Run(ch, vals)
	if err != nil {
		return fmt.Errorf("helm template %s: %w", chartDir, err)
	}
	_, err = io.WriteString(out, rel.Manifest)
	return err
}

package main

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"sigs.k8s.io/yaml"
)

// envPrefix starts the environment variable of every flag: --nats-url is
// OOMSCOPE_NATS_URL.
const envPrefix = "OOMSCOPE_"

// envName is the environment variable of a flag.
func envName(flag string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// applyConfig fills every flag of cmd that the command line did not set:
// first from its environment variable (OOMSCOPE_<FLAG>), then from the
// YAML file path (keys are the flag names, e.g. "nats-url: nats://…";
// lists for list flags). A value that does not parse fails, naming where it
// came from. An unknown key in the file fails too: a typo must not be
// silently ignored.
func applyConfig(cmd *cobra.Command, path string) error {
	fs := cmd.Flags()
	var file map[string]any
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("--config: %w", err)
		}
		if err := yaml.Unmarshal(b, &file); err != nil {
			return fmt.Errorf("--config %s: %w", path, err)
		}
		var unknown []string
		for k := range file {
			if f := fs.Lookup(k); f == nil || f.Name == "config" || f.Hidden {
				unknown = append(unknown, k)
			}
		}
		if len(unknown) > 0 {
			sort.Strings(unknown)
			return fmt.Errorf("--config %s: unknown setting(s) %s (see oomscope %s --help)", path, strings.Join(unknown, ", "), cmd.Name())
		}
	}
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed || f.Name == "config" || f.Name == "help" {
			return
		}
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s=%q: %w", envName(f.Name), v, e)
			}
			return
		}
		v, ok := file[f.Name]
		if !ok {
			return
		}
		s, e := configString(v)
		if e == nil {
			e = fs.Set(f.Name, s)
		}
		if e != nil {
			err = fmt.Errorf("--config %s: %s: %w", path, f.Name, e)
		}
	})
	return err
}

// configString turns a YAML value into the flag's text form.
func configString(v any) (string, error) {
	switch x := v.(type) {
	case nil:
		return "", nil
	case string:
		return x, nil
	case bool, float64, int, int64:
		if f, ok := x.(float64); ok && f == float64(int64(f)) {
			return fmt.Sprint(int64(f)), nil
		}
		return fmt.Sprint(x), nil
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			s, err := configString(e)
			if err != nil {
				return "", err
			}
			parts[i] = s
		}
		return strings.Join(parts, ","), nil
	}
	return "", fmt.Errorf("unsupported value %v (want a string, number, boolean or list)", v)
}

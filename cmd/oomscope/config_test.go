package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// testCmd is a command with flags of every kind run has.
func testCmd() (*cobra.Command, *string, *bool, *time.Duration, *[]string, *int) {
	cmd := &cobra.Command{Use: "run"}
	f := cmd.Flags()
	url := f.String("nats-url", "", "")
	stdout := f.Bool("stdout", false, "")
	drain := f.Duration("drain-timeout", time.Minute, "")
	labels := f.StringSlice("pod-labels", []string{"app"}, "")
	tasks := f.Int("max-tasks", 10, "")
	f.String("config", "", "")
	return cmd, url, stdout, drain, labels, tasks
}

func TestApplyConfigPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "oomscope.yaml")
	os.WriteFile(file, []byte("nats-url: nats://file:4222\nstdout: true\ndrain-timeout: 5s\npod-labels: [a, b]\nmax-tasks: 7\n"), 0o644)
	cmd, url, stdout, drain, labels, tasks := testCmd()
	if err := cmd.Flags().Parse([]string{"--max-tasks", "3"}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("OOMSCOPE_NATS_URL", "nats://env:4222")
	if err := applyConfig(cmd, file); err != nil {
		t.Fatal(err)
	}
	if *url != "nats://env:4222" {
		t.Errorf("nats-url = %q: the environment must win over the file", *url)
	}
	if *tasks != 3 {
		t.Errorf("max-tasks = %d: the command line must win", *tasks)
	}
	if !*stdout || *drain != 5*time.Second || strings.Join(*labels, ",") != "a,b" {
		t.Errorf("from the file: stdout %v drain %v labels %v", *stdout, *drain, *labels)
	}
}

func TestApplyConfigErrorsNameTheSetting(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, file, env, envVal, want string
	}{
		{"bad env", "", "OOMSCOPE_DRAIN_TIMEOUT", "soon", "OOMSCOPE_DRAIN_TIMEOUT"},
		{"bad file value", "max-tasks: many\n", "", "", "max-tasks"},
		{"unknown key", "nats-ulr: x\n", "", "", "nats-ulr"},
		{"not yaml", "{{{", "", "", "oomscope.yaml"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := ""
			if c.file != "" {
				path = filepath.Join(dir, "oomscope.yaml")
				os.WriteFile(path, []byte(c.file), 0o644)
			}
			if c.env != "" {
				t.Setenv(c.env, c.envVal)
			}
			cmd, _, _, _, _, _ := testCmd()
			err := applyConfig(cmd, path)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want one naming %q", err, c.want)
			}
		})
	}
}

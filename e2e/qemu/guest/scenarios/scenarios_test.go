//go:build linux

package main

import (
	"slices"
	"testing"

	"github.com/oomscope/oomscope/e2e/qemu/internal/truth"
)

func TestScenarioNamesMatchHost(t *testing.T) {
	if got := names(allScenarios()); !slices.Equal(got, truth.ScenarioNames) {
		t.Fatalf("guest scenarios %v, host matrix columns (truth.ScenarioNames) %v", got, truth.ScenarioNames)
	}
}

func TestSelectScenarios(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{in: "", want: names(allScenarios())},
		{in: "all", want: names(allScenarios())},
		{in: "global,v2-container", want: []string{"global", "v2-container"}},
		{in: "v2-container,nope", want: []string{"v2-container"}, wantErr: true},
	}
	for _, tc := range tests {
		got, err := selectScenarios(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("selectScenarios(%q) error = %v, want error %v", tc.in, err, tc.wantErr)
		}
		if g := names(got); len(g) != len(tc.want) || (len(g) > 0 && g[0] != tc.want[0]) || (len(g) > 1 && g[1] != tc.want[1]) {
			t.Errorf("selectScenarios(%q) = %v, want %v", tc.in, g, tc.want)
		}
	}
}

func TestParseCmdline(t *testing.T) {
	m := parseCmdline("console=ttyS0 quiet oomscope.scenarios=a,b oomscope.out=/dev/ttyS1\n")
	if m["oomscope.scenarios"] != "a,b" || m["oomscope.out"] != "/dev/ttyS1" || m["console"] != "ttyS0" {
		t.Fatalf("parseCmdline: %v", m)
	}
	if _, ok := m["quiet"]; !ok {
		t.Fatalf("flag without value lost: %v", m)
	}
}

func names(ss []scenario) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.name)
	}
	return out
}

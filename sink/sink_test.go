package sink

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/oomscope/oomscope/report"
)

func testReport(id string) *report.Enriched {
	return &report.Enriched{Report: &report.Report{
		Schema: report.Schema, ID: id, Kind: "memcg",
		Victims: []report.Victim{{PID: 42, Comm: "stress"}},
		Raw:     []string{"3,512,458419391,-;Memory cgroup out of memory: Killed process 42 (stress)"},
	}}
}

func TestJSONLines(t *testing.T) {
	var buf bytes.Buffer
	j := NewJSONLines(&buf, false)
	ctx := context.Background()
	r := testReport("boot/1")
	for range 2 {
		if err := j.Publish(ctx, Delivery{Report: r}); err != nil {
			t.Fatal(err)
		}
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("%d lines, want 1 (same id twice): %q", len(lines), buf.String())
	}
	if strings.Contains(lines[0], `"raw"`) {
		t.Error("raw lines printed without withRaw")
	}
	if len(r.Raw) != 1 {
		t.Error("Publish modified the caller's report")
	}
	jr := NewJSONLines(&buf, true)
	buf.Reset()
	jr.Publish(ctx, Delivery{Report: r})
	if !strings.Contains(buf.String(), `"raw"`) {
		t.Error("raw lines missing with withRaw")
	}
}

type failing struct{}

func (failing) Name() string                            { return "failing" }
func (failing) Publish(context.Context, Delivery) error { return errors.New("down") }

func TestMultiJoinsErrors(t *testing.T) {
	var buf bytes.Buffer
	m := Multi{failing{}, NewJSONLines(&buf, false)}
	err := m.Publish(context.Background(), Delivery{Report: testReport("b/1")})
	if err == nil || !strings.Contains(err.Error(), "sink failing: down") {
		t.Errorf("err = %v", err)
	}
	if buf.Len() == 0 {
		t.Error("a failing sink kept the next one from publishing")
	}
}

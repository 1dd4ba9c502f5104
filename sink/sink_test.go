package sink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
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

func TestArchivePathsAndIdempotence(t *testing.T) {
	dir := t.TempDir()
	a, err := NewArchive(dir)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ id, want string }{
		{"8f5b1c2d-3e4f-4071-8293-a4b5c6d7e8f9/423", "8f5b1c2d-3e4f-4071-8293-a4b5c6d7e8f9/423.json"},
		{"boot/7", "files/boot-7.json"},
		{"ab/../x", "files/ab-..-x.json"},
		{"sha256:00ff", "files/sha256-00ff.json"},
		{"../../etc/x", "files/..-..-etc-x.json"},
		{"", "files/no-id.json"},
	}
	for _, c := range cases {
		r := testReport(c.id)
		if got := a.Path(r); got != filepath.Join(dir, c.want) {
			t.Errorf("Path(%q) = %s, want %s", c.id, got, c.want)
		}
		if !strings.HasPrefix(a.Path(r), dir+string(os.PathSeparator)) {
			t.Errorf("Path(%q) escapes the archive: %s", c.id, a.Path(r))
		}
	}
	ctx := context.Background()
	r := testReport("8f5b1c2d-3e4f-4071-8293-a4b5c6d7e8f9/7")
	if err := a.Publish(ctx, Delivery{Report: r}); err != nil {
		t.Fatal(err)
	}
	b1, err := os.ReadFile(a.Path(r))
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(b1, &back); err != nil {
		t.Fatal(err)
	}
	if back["id"] != "8f5b1c2d-3e4f-4071-8293-a4b5c6d7e8f9/7" || back["raw"] == nil {
		t.Errorf("archived report: id %v raw %v", back["id"], back["raw"])
	}
	// A second publish of the same id writes nothing.
	r2 := testReport("8f5b1c2d-3e4f-4071-8293-a4b5c6d7e8f9/7")
	r2.Victims[0].Comm = "changed"
	if err := a.Publish(ctx, Delivery{Report: r2}); err != nil {
		t.Fatal(err)
	}
	b2, _ := os.ReadFile(a.Path(r))
	if !bytes.Equal(b1, b2) {
		t.Error("publishing an archived id again rewrote the file")
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*", ".tmp-*"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestArchiveErrors(t *testing.T) {
	if _, err := NewArchive(""); err == nil {
		t.Error("NewArchive(\"\") succeeded")
	}
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o644)
	if _, err := NewArchive(filepath.Join(f, "sub")); err == nil {
		t.Error("NewArchive below a file succeeded")
	}
	a, _ := NewArchive(t.TempDir())
	if err := a.Publish(context.Background(), Delivery{Report: &report.Enriched{}}); err == nil {
		t.Error("publishing a nil report succeeded")
	}
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

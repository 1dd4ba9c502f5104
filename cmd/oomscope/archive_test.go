package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oomscope/oomscope/archive"
	"github.com/oomscope/oomscope/report"
	"github.com/oomscope/oomscope/sink"
)

// parsedReports returns the reports `oomscope parse --raw` finds in a
// capture, enriched as parse enriches them.
func parsedReports(t *testing.T, capture string) []*report.Enriched {
	t.Helper()
	code, out, errs := run(t, "", "parse", "--raw", capture)
	if code != 0 {
		t.Fatalf("parse: %s", errs)
	}
	var rs []*report.Enriched
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var er report.Enriched
		if err := json.Unmarshal([]byte(l), &er); err != nil {
			t.Fatal(err)
		}
		rs = append(rs, &er)
	}
	return rs
}

// podReport is a report of pod ns/pod on node at time at.
func podReport(id, node, ns, pod, comm string, pid int, at time.Time) *report.Enriched {
	limit := uint64(256 << 20)
	return &report.Enriched{
		Report: &report.Report{
			Schema: report.Schema, ID: id, Host: node, Kind: report.KindMemcg,
			First:   report.Stamp{Wall: &at},
			Victims: []report.Victim{{PID: pid, Comm: comm}},
			Raw:     []string{"6,1,1,-;Memory cgroup out of memory: Killed process " + fmt.Sprint(pid) + " (" + comm + ")"},
		},
		Pod:       &report.Pod{Namespace: ns, Name: pod, UID: "0b7e3c1e-5a42-4c1b-9d7a-2f1f8c3e9a11", Node: node},
		Container: &report.Container{Name: "app"},
		Diagnosis: &report.Diagnosis{Scope: report.ScopeContainer, LimitBytes: &limit, Summary: "killed"},
	}
}

// publish writes reports into the archive at dir through the daemon's sink.
func publish(t *testing.T, dir string, rs ...*report.Enriched) {
	t.Helper()
	a, err := sink.NewArchive(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for _, r := range rs {
		if err := a.Publish(context.Background(), sink.Delivery{Report: r, Queued: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
}

// tableRows returns the data rows of a table (header checked and dropped).
func tableRows(t *testing.T, out string) [][]string {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "TIME ") {
		t.Fatalf("no table header:\n%s", out)
	}
	var rows [][]string
	for _, l := range lines[1:] {
		rows = append(rows, strings.Fields(l))
	}
	return rows
}

func TestArchiveListShow(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "archive")
	now := time.Now().Truncate(time.Second)
	a := podReport("8f5b1c2d-3e4f-4071-8293-a4b5c6d7e8f9/100", "node-a", "shop", "cart-1", "java", 4242, now.Add(-72*time.Hour))
	b := podReport("8f5b1c2d-3e4f-4071-8293-a4b5c6d7e8f9/200", "node-b", "shop", "cart-2", "node", 777, now.Add(-2*time.Hour))
	c := podReport("sha256:c0ffee00aa", "node-a", "search", "idx-0", "es", 9, now.Add(-time.Hour))
	publish(t, dir, c, a, b)
	publish(t, dir, parsedReports(t, capturePod)...) // no wall time: archived now

	code, out, errs := run(t, "", "archive", "list", "--archive-dir", dir)
	if code != 0 {
		t.Fatalf("list: %d %s", code, errs)
	}
	rows := tableRows(t, out)
	if len(rows) != 6 {
		t.Fatalf("%d rows, want 6:\n%s", len(rows), out)
	}
	want := []string{a.ID, b.ID, c.ID}
	for i, id := range want {
		if got := rows[i][len(rows[i])-1]; got != id {
			t.Errorf("row %d id %s, want %s (sorted by time)", i, got, id)
		}
	}
	// TIME (2 fields), NODE, POD, VICTIM (2 fields), SCOPE, LIMIT, FLAGS, ID.
	wantRow := []string{a.First.Wall.Local().Format("2006-01-02"), a.First.Wall.Local().Format("15:04:05"),
		"node-a", "shop/cart-1/app", "java", "4242", "container", "256Mi", "-", a.ID}
	if strings.Join(rows[0], " ") != strings.Join(wantRow, " ") {
		t.Errorf("row %q\nwant %q", rows[0], wantRow)
	}
	// A report of a saved log: no node, the pod UID and container id only.
	if r := strings.Join(rows[3], " "); !strings.Contains(r, " - pod 0b7e3c1e/3f9a7c2d1e8b python3 15901 pod 96Mi - sha256:") {
		t.Errorf("a report with the pod UID only: %q", r)
	}

	// Filters.
	for _, tc := range []struct {
		args []string
		ids  []string
	}{
		{[]string{"--namespace", "shop"}, []string{a.ID, b.ID}},
		{[]string{"--pod", "cart-2"}, []string{b.ID}},
		{[]string{"--node", "node-a", "--namespace", "search"}, []string{c.ID}},
		{[]string{"--since", "24h", "--namespace", "shop"}, []string{b.ID}},
		{[]string{"--since", "4d", "--node", "node-a"}, []string{a.ID, c.ID}},
		{[]string{"--since", now.Add(-90 * time.Minute).Format(time.RFC3339), "--namespace", "search"}, []string{c.ID}},
	} {
		code, out, errs := run(t, "", append([]string{"archive", "list", "--archive-dir", dir}, tc.args...)...)
		if code != 0 {
			t.Fatalf("list %v: %s", tc.args, errs)
		}
		var got []string
		for _, r := range tableRows(t, out) {
			got = append(got, r[len(r)-1])
		}
		if strings.Join(got, " ") != strings.Join(tc.ids, " ") {
			t.Errorf("list %v: %v, want %v", tc.args, got, tc.ids)
		}
	}
	code, _, errs = run(t, "", "archive", "list", "--archive-dir", dir, "--namespace", "nope")
	if code != 0 || !strings.Contains(errs, "no reports (of 6)") {
		t.Errorf("empty list: %d %q", code, errs)
	}

	// JSON: one index entry per line.
	code, out, _ = run(t, "", "archive", "list", "--archive-dir", dir, "-o", "json", "--pod", "cart-1")
	var e archive.Entry
	if code != 0 || json.Unmarshal([]byte(out), &e) != nil || e.ID != a.ID || e.File != archive.RelPath(a.ID) || e.Comm != "java" {
		t.Errorf("list -o json: %d %s", code, out)
	}

	// --state-dir: the archive is STATE/archive.
	code, out, _ = run(t, "", "archive", "list", "--state-dir", filepath.Dir(dir))
	if code != 0 || len(tableRows(t, out)) != 6 {
		t.Errorf("--state-dir: %d\n%s", code, out)
	}

	// show: text is the parse -o text post-mortem plus the raw records.
	pod := parsedReports(t, capturePod)[0]
	code, out, errs = run(t, "", "archive", "show", "--archive-dir", dir, pod.ID)
	if code != 0 {
		t.Fatalf("show: %s", errs)
	}
	var text bytes.Buffer
	writeText(&text, pod, "")
	if !strings.HasPrefix(out, text.String()) {
		t.Errorf("show text is not the post-mortem text:\n%s\nwant prefix\n%s", out, text.String())
	}
	if !strings.Contains(out, fmt.Sprintf("raw kernel records (%d):", len(pod.Raw))) || !strings.Contains(out, "    "+pod.Raw[0]+"\n") {
		t.Errorf("show text lacks the raw records:\n%s", out)
	}
	// By prefix, and sha256: left out.
	for _, p := range []string{a.ID[:len(a.ID)-2], "c0ffee", "sha256:c0f"} {
		code, out, errs := run(t, "", "archive", "show", "--archive-dir", dir, p, "-o", "json")
		var back report.Enriched
		if code != 0 || json.Unmarshal([]byte(out), &back) != nil {
			t.Errorf("show %s: %d %s", p, code, errs)
		}
	}
	code, out, _ = run(t, "", "archive", "show", "--archive-dir", dir, "-o", "json", c.ID)
	file, _ := os.ReadFile(archive.Path(dir, c.ID))
	var fromShow, fromFile any
	json.Unmarshal([]byte(out), &fromShow)
	json.Unmarshal(file, &fromFile)
	if code != 0 || fmt.Sprint(fromShow) != fmt.Sprint(fromFile) {
		t.Errorf("show -o json is not the archived report:\n%s", out)
	}

	// Errors.
	for _, tc := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"show", "--archive-dir", dir, "deadbeef"}, 1, `no such report: "deadbeef"`},
		{[]string{"show", "--archive-dir", dir, "8f5b"}, 1, "ambiguous report id prefix"},
		{[]string{"show", "--archive-dir", dir}, 1, "accepts 1 arg"},
		{[]string{"show", "--archive-dir", dir, "-o", "yaml", a.ID}, 2, `--output "yaml"`},
		{[]string{"list", "--archive-dir", dir, "-o", "yaml"}, 2, `--output "yaml"`},
		{[]string{"list", "--archive-dir", dir, "--since", "yesterday"}, 2, "--since"},
		{[]string{"list", "--archive-dir", dir, "--state-dir", dir}, 2, "give one of them"},
		{[]string{"list", "--archive-dir", filepath.Join(dir, "missing")}, 1, "no archive at"},
	} {
		code, _, errs := run(t, "", append([]string{"archive"}, tc.args...)...)
		if code != tc.code || !strings.Contains(errs, tc.stderr) {
			t.Errorf("archive %v: exit %d, stderr %q; want %d, %q", tc.args, code, errs, tc.code, tc.stderr)
		}
	}
}

// TestArchiveHostileNames lists and shows reports whose names are built to
// forge table rows, move the cursor and reorder text.
func TestArchiveHostileNames(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	evil := []*report.Enriched{
		podReport("sha256:e1", "node\x1b]0;owned\x07", "ns\u202eevil", "web\nFAKE-ROW node-x ns/pod/app victim 1 container 1.0GiB - sha256:fake", "sh\x1b[2J\x1b[H", 1, now.Add(-3*time.Minute)),
		podReport("sha256:e2", "node-\u2066iso\u2069", "kube-system", strings.Repeat("p", 5000), "x\r\u0085\x7f\u2028y", 2, now.Add(-2*time.Minute)),
		podReport("sha256:e3", "n", "ns", "pod\u200f\u061c", "comm\ttab", 3, now.Add(-time.Minute)),
	}
	evil[0].Report.OOMMemcg = "/kubepods/pod\x1b[31m/\n  killed   fake (pid 1)"
	evil[0].Report.TaskMemcg = evil[0].Report.OOMMemcg
	evil[0].Raw = append(evil[0].Raw, "6,2,2,-;\x1b[1A\x1b[2Kforged line\u202e")
	evil[0].Diagnosis.Summary = "summary\x1b[8m hidden"
	evil[0].Pod.Labels = map[string]string{"app\x1b": "v\n"}
	publish(t, dir, evil...)

	forbidden := []string{"\x1b", "\x07", "\r", "\u0085", "\x7f", "\u2028", "\u202e", "\u2066", "\u2069", "\u200f", "\u061c", "\t"}
	clean := func(what, out string) {
		t.Helper()
		for _, f := range forbidden {
			if strings.Contains(out, f) {
				t.Errorf("%s: raw %q in the output:\n%q", what, f, out)
			}
		}
	}
	code, out, errs := run(t, "", "archive", "list", "--archive-dir", dir)
	if code != 0 {
		t.Fatal(errs)
	}
	clean("list", out)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 1+len(evil) {
		t.Fatalf("%d lines, want a header and one row per report:\n%s", len(lines), out)
	}
	for i, l := range lines[1:] {
		if !strings.HasSuffix(l, evil[i].ID) {
			t.Errorf("row %d does not end with its id: %q", i, l)
		}
		if n := len([]rune(l)); n > 400 {
			t.Errorf("row %d has %d characters: cells are not bounded", i, n)
		}
	}
	if !strings.Contains(lines[1], `web\nFAKE-ROW`) || !strings.Contains(lines[1], `sh\x1b[2J\x1b[H`) || !strings.Contains(lines[1], `ns\u202eevil`) {
		t.Errorf("escapes not visible: %q", lines[1])
	}

	code, out, _ = run(t, "", "archive", "list", "--archive-dir", dir, "-o", "json")
	clean("list -o json", out)
	jl := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if code != 0 || len(jl) != len(evil) {
		t.Fatalf("list -o json: %d lines", len(jl))
	}
	for _, l := range jl {
		if !json.Valid([]byte(l)) {
			t.Errorf("not JSON: %s", l)
		}
	}
	// Filters take the real names.
	code, out, _ = run(t, "", "archive", "list", "--archive-dir", dir, "--namespace", "ns\u202eevil")
	if code != 0 || len(tableRows(t, out)) != 1 {
		t.Errorf("filter by a hostile namespace:\n%s", out)
	}

	for _, e := range evil {
		code, out, errs := run(t, "", "archive", "show", "--archive-dir", dir, e.ID)
		if code != 0 {
			t.Fatal(errs)
		}
		clean("show "+e.ID, out)
		code, out, _ = run(t, "", "archive", "show", "--archive-dir", dir, "-o", "json", e.ID)
		clean("show -o json "+e.ID, out)
		var back report.Enriched
		if code != 0 || json.Unmarshal([]byte(out), &back) != nil {
			t.Fatalf("show -o json: not JSON:\n%s", out)
		}
		if back.Pod.Name != e.Pod.Name || back.Victims[0].Comm != e.Victims[0].Comm || back.Raw[len(back.Raw)-1] != e.Raw[len(e.Raw)-1] {
			t.Errorf("show -o json changed the names of %s", e.ID)
		}
	}
	_, out, _ = run(t, "", "archive", "show", "--archive-dir", dir, "sha256:e1")
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "killed   fake") || strings.HasPrefix(l, "forged line") {
			t.Errorf("a name forged a line of the post-mortem: %q", l)
		}
	}
	if !strings.Contains(out, `\x1b[1A\x1b[2Kforged line\u202e`) {
		t.Errorf("raw record not shown escaped:\n%s", out)
	}
}

func TestArchiveReindex(t *testing.T) {
	dir := t.TempDir()
	publish(t, dir, parsedReports(t, captureV2)...)
	os.Remove(filepath.Join(dir, archive.IndexFile))
	code, out, errs := run(t, "", "archive", "reindex", "--archive-dir", dir)
	if code != 0 || !strings.HasPrefix(out, "indexed 1 reports in "+dir) {
		t.Errorf("reindex: %d %q %q", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, archive.IndexFile)); err != nil {
		t.Error(err)
	}
	// Not while the daemon holds the archive.
	a, err := sink.NewArchive(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	code, _, errs = run(t, "", "archive", "reindex", "--archive-dir", dir)
	if code != 1 || !strings.Contains(errs, "the daemon is running on this archive") {
		t.Errorf("reindex under the daemon: %d %q", code, errs)
	}
	// list and show work meanwhile.
	code, out, _ = run(t, "", "archive", "list", "--archive-dir", dir)
	if code != 0 || len(tableRows(t, out)) != 1 {
		t.Errorf("list under the daemon: %d\n%s", code, out)
	}
}

// TestParseArchivedReport: `oomscope parse` reads the archive's own files
// (and its own JSON output) and prints them as it prints the reports of the
// kernel log they came from.
func TestParseArchivedReport(t *testing.T) {
	dir := t.TempDir()
	reports := parsedReports(t, capturePod)
	publish(t, dir, reports...)
	var files []string
	for _, r := range reports {
		files = append(files, archive.Path(dir, r.ID))
	}
	for _, o := range []string{"json", "pretty", "text"} {
		_, fromLog, _ := run(t, "", "parse", "-o", o, capturePod)
		code, fromArchive, errs := run(t, "", append([]string{"parse", "-o", o}, files...)...)
		if code != 0 {
			t.Fatalf("parse -o %s of archive files: %d %s", o, code, errs)
		}
		// The text names its source file, which differs by construction.
		if withoutSource(fromArchive) != withoutSource(fromLog) {
			t.Errorf("parse -o %s: archive files print differently from their log:\n%s\nwant\n%s", o, fromArchive, fromLog)
		}
	}
	// --raw keeps the archived raw lines.
	code, out, _ := run(t, "", "parse", "--raw", files[0])
	if r := jsonLines(t, out); code != 0 || len(r) != 1 || len(r[0]["raw"].([]any)) != len(reports[0].Raw) {
		t.Errorf("parse --raw of an archive file: %d %s", code, out)
	}
	// parse's own JSON output, from standard input.
	_, jsonOut, _ := run(t, "", "parse", "--raw", capturePod)
	code, again, _ := run(t, jsonOut, "parse", "--raw", "-")
	if code != 0 || again != jsonOut {
		t.Errorf("parse of parse -o json output:\n%s", again)
	}
	// JSON that is not a report is still read as a kernel log (journalctl
	// -o json), and a broken report is an error.
	journal := "../../testdata/cases/robust-truncated-eof.alt.json.log"
	if code, out, errs := run(t, "", "parse", journal); code != 0 || len(jsonLines(t, out)) == 0 {
		t.Errorf("journal JSON: %d %s", code, errs)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"schema":"oomscope.report/v1","id":"x","victims":[]}`+"\n"+`{"schema":"other/v9"}`), 0o644)
	if code, out, errs := run(t, "", "parse", bad); code != 1 || !strings.Contains(errs, "report 2: not an oomscope report") || len(jsonLines(t, out)) != 1 {
		t.Errorf("a broken report file: %d %q %q", code, out, errs)
	}
}

// withoutSource drops the "source" lines of the text output.
func withoutSource(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "source ") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

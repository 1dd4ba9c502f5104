package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/oomscope/oomscope/enrich"
	"github.com/oomscope/oomscope/report"
)

const (
	capturePod = "../../testdata/captures/host-6.18-cgroupv1-memcg-pod-limit-3-kills.kmsg"
	captureV2  = "../../testdata/captures/qemu-debian-6.1-cgroupv2-memcg.kmsg"
)

// run runs the command line as main does and returns its exit code and
// output.
func run(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return runWith(t, kubePodLookup, stdin, args...)
}

// runWith is run with the pod lookup replaced.
func runWith(t *testing.T, lookup podLookupFunc, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := newRootCmdWith(strings.NewReader(stdin), &out, &errb, lookup)
	cmd.SetArgs(args)
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		errb.WriteString("oomscope: " + err.Error() + "\n")
		return exitCode(err), out.String(), errb.String()
	}
	return 0, out.String(), errb.String()
}

// jsonLines decodes one JSON object per line.
func jsonLines(t *testing.T, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not JSON: %v: %s", err, l)
		}
		out = append(out, m)
	}
	return out
}

func TestParseExitCodes(t *testing.T) {
	dir := t.TempDir()
	noOOM := filepath.Join(dir, "quiet.log")
	if err := os.WriteFile(noOOM, []byte("[    1.000000] Linux version 6.1.0\n[    2.000000] eth0: link up\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		args       []string
		stdin      string
		wantCode   int
		wantLines  int
		wantStderr string
	}{
		{"reports", []string{"parse", capturePod}, "", 0, 3, ""},
		{"two files", []string{"parse", capturePod, captureV2}, "", 0, 4, ""},
		{"zero reports", []string{"parse", noOOM}, "", 0, 0, ""},
		{"stdin", []string{"parse", "-"}, readFile(t, captureV2), 0, 1, ""},
		{"missing file", []string{"parse", filepath.Join(dir, "nope.log")}, "", 1, 0, "cannot read " + filepath.Join(dir, "nope.log")},
		{"directory", []string{"parse", dir}, "", 1, 0, "is a directory"},
		{"reports before a missing file are kept", []string{"parse", captureV2, filepath.Join(dir, "nope.log")}, "", 1, 1, "no such file"},
		{"bad output", []string{"parse", "-o", "yaml", capturePod}, "", 2, 0, `--output "yaml"`},
		{"bad format", []string{"parse", "--format", "xml", capturePod}, "", 2, 0, "--format"},
		{"bad max tasks", []string{"parse", "--max-tasks", "0", capturePod}, "", 2, 0, "--max-tasks"},
		{"bad year", []string{"parse", "--year", "12345", capturePod}, "", 2, 0, "--year"},
		{"unknown flag", []string{"parse", "--bogus", capturePod}, "", 2, 0, "unknown flag"},
		{"kubeconfig unreadable", []string{"parse", "--kubeconfig", filepath.Join(dir, "kc"), capturePod}, "", 1, 0, "Kubernetes pod lookup:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := run(t, tt.stdin, tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tt.wantCode, errs)
			}
			if n := len(jsonLines(t, out)); n != tt.wantLines {
				t.Errorf("%d reports, want %d", n, tt.wantLines)
			}
			if tt.wantStderr != "" && !strings.Contains(errs, tt.wantStderr) {
				t.Errorf("stderr %q, want it to contain %q", errs, tt.wantStderr)
			}
		})
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseJSONEnriched(t *testing.T) {
	code, out, errs := run(t, "", "parse", capturePod)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	rs := jsonLines(t, out)
	wantVictims := []string{"15901", "15900", "16068"}
	for i, r := range rs {
		if r["schema"] != "oomscope.report/v1" || r["raw"] != nil {
			t.Errorf("report %d: schema %v, raw present %v", i, r["schema"], r["raw"] != nil)
		}
		pod, _ := r["pod"].(map[string]any)
		ctr, _ := r["container"].(map[string]any)
		d, _ := r["diagnosis"].(map[string]any)
		en, _ := r["enrichment"].(map[string]any)
		if pod["uid"] != "0b7e3c1e-5a42-4c1b-9d7a-2f1f8c3e9a11" || pod["qos_class"] != "Burstable" {
			t.Errorf("report %d: pod %v", i, pod)
		}
		if ctr["id"] != "3f9a7c2d1e8b4a6f9c0d2e4f6a8b0c1d3e5f7a9b1c3d5e7f9a1b3c5d7e9f1a2b" {
			t.Errorf("report %d: container %v", i, ctr)
		}
		want := `container 3f9a7c2d1e8b of pod 0b7e3c1e (Burstable): process ` + wantVictims[i] + ` "python3" killed by the POD limit 96Mi`
		if d["scope"] != "pod" || d["main_process_killed"] != false || !strings.HasPrefix(d["summary"].(string), want) {
			t.Errorf("report %d: diagnosis %v", i, d)
		}
		if src, _ := en["sources"].([]any); len(src) != 1 || src[0] != "cgroup-path" {
			t.Errorf("report %d: enrichment %v", i, en)
		}
		if _, ok := r["snapshot"]; ok {
			t.Errorf("report %d: a saved log got a snapshot", i)
		}
	}
	// --raw keeps the records.
	_, out, _ = run(t, "", "parse", "--raw", captureV2)
	if r := jsonLines(t, out); len(r) != 1 || r[0]["raw"] == nil {
		t.Error("--raw: no raw records")
	}
}

func TestParseText(t *testing.T) {
	code, out, errs := run(t, "", "parse", "-o", "text", captureV2)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	lines := strings.Split(out, "\n")
	if len(lines) < 4 || !strings.HasPrefix(lines[0], "OOM kill (memcg)") {
		t.Fatalf("output:\n%s", out)
	}
	want := [][2]string{
		{"summary", `cgroup /kubepods.slice/pod1: process 85 "dd" killed by its cgroup's limit 32Mi; usage 32Mi = 100% anon`},
		{"scope", "other: The memory limit 32Mi of the cgroup /kubepods.slice/pod1 was hit"},
		{"outcome", "process-killed: Process 85 (dd) in /kubepods.slice/pod1 was killed"},
	}
	for i, w := range want {
		if k, v := textField(lines[2+i]); k != w[0] || !strings.HasPrefix(v, w[1]) {
			t.Errorf("line %d = %q, want %s %q...", 2+i, lines[2+i], w[0], w[1])
		}
	}
	if k, v := textField(lines[1]); k != "source" || v != captureV2 {
		t.Errorf("line 1 = %q, want the source file", lines[1])
	}
	_, out, _ = run(t, "", "parse", "-o", "text", capturePod)
	lines = strings.Split(out, "\n")
	want = [][2]string{
		{"summary", `container 3f9a7c2d1e8b of pod 0b7e3c1e (Burstable): process 15901 "python3" killed by the POD limit 96Mi; usage 96Mi = 99% anon; child process — container keeps running`},
		{"pod", "uid 0b7e3c1e-5a42-4c1b-9d7a-2f1f8c3e9a11, Burstable"},
		{"container", "id 3f9a7c2d1e8b4a6f9c0d2e4f6a8b0c1d3e5f7a9b1c3d5e7f9a1b3c5d7e9f1a2b"},
		{"scope", "pod: The pod-level limit 96Mi was hit"},
		{"outcome", "child-killed: Pid 15898 (bash) has a lower pid"},
		{"enrichment", "from the cgroup path only (no Kubernetes API)"},
		{"killed", "python3 (pid 15901): rss 48.7Mi = anon 45.7Mi + file 3.0Mi + shmem 0, oom_score_adj 0"},
		{"limit", "96Mi of /test-runner/kubepods/burstable/pod0b7e3c1e-5a42-4c1b-9d7a-2f1f8c3e9a11 (failcnt 2797)"},
		{"cgroup", ".../3f9a7c2d1e8b4a6f9c0d2e4f6a8b0c1d3e5f7a9b1c3d5e7f9a1b3c5d7e9f1a2b (the victim's, below it)"},
		{"usage", "96Mi of 96Mi: anon 95.4Mi (99%), page cache 24Ki (0%), kernel 572Ki (1%); shmem 0 (part of the page cache); swap 0 (not in usage)"},
	}
	for i, w := range want {
		if k, v := textField(lines[2+i]); k != w[0] || !strings.HasPrefix(v, w[1]) {
			t.Errorf("line %d = %q, want %s %q...", 2+i, lines[2+i], w[0], w[1])
		}
	}
}

// TestParseTextFacts: the text output names the host and the wall time
// when the log has them, uses one unit style, and its shares add up.
func TestParseTextFacts(t *testing.T) {
	_, out, _ := run(t, "", "parse", "-o", "text", "--year", "2024", "../../kmsg/testdata/host-6.18-3-kills.kern.log")
	reports := strings.Split(strings.TrimSpace(out), "\n\n")
	if len(reports) != 3 {
		t.Fatalf("%d reports:\n%s", len(reports), out)
	}
	if first := strings.SplitN(reports[0], "\n", 2)[0]; !strings.HasPrefix(first, "OOM kill (memcg) at 2024-12-31T23:59:58") || !strings.Contains(first, " on node-7 ") {
		t.Errorf("header %q: no wall time or host", first)
	}
	if strings.Contains(out, "MiB") || strings.Contains(out, "KiB") {
		t.Error("two unit styles")
	}
	for _, r := range reports {
		if got := shareSum(r, "usage", `\((\d+)%\)`); got != 100 {
			t.Errorf("usage shares add up to %d%%:\n%s", got, r)
		}
		if got := shareSum(r, "top", ` (\d+)%  `); got != 100 {
			t.Errorf("top shares add up to %d%%:\n%s", got, r)
		}
	}
}

// TestParseTextAbsent: a value the log does not hold gets no line or says
// so; it is never printed empty or as 0.
func TestParseTextAbsent(t *testing.T) {
	in := strings.Join([]string{
		"[   50.000100] Memory cgroup out of memory: Killed process 99 (",
		"[   60.000100] df_inode invoked oom-killer: gfp_mask=0xd0, order=0, oomkilladj=0",
		"[   60.000200] Out of memory: kill process 4117 (df_inode) score 1 or a child",
		"[   60.000300] Killed process 4117 (df_inode)",
	}, "\n") + "\n"
	_, out, _ := run(t, in, "parse", "-o", "text")
	for _, want := range []string{
		"killed   pid 99 (name not in the log): sizes not in the log\n",
		"killed   df_inode (pid 4117): sizes not in the log\n",
		"asked for order-0 gfp_mask=0xd0\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	for l := range strings.Lines(out) {
		if strings.HasSuffix(l, " \n") {
			t.Errorf("line with no value: %q", l)
		}
	}
}

// textField splits a text output line into its key and value.
func textField(l string) (key, val string) {
	l = strings.TrimSpace(l)
	key, val, _ = strings.Cut(l, " ")
	return key, strings.TrimSpace(val)
}

// podLookupStub resolves every pod to default/web-7d9.
type podLookupStub struct{}

func (podLookupStub) Lookup(_ context.Context, uid, cid string) (*report.Pod, *report.Container, error) {
	return &report.Pod{Namespace: "default", Name: "web-7d9", UID: uid, QoSClass: "Burstable"},
		&report.Container{Name: "app", ID: cid}, nil
}

func TestParseKubeconfigHook(t *testing.T) {
	var got string
	var gotLabels []string
	lookup := func(_ context.Context, kubeconfig, _ string, labels []string) (enrich.PodLookup, error) {
		got, gotLabels = kubeconfig, labels
		return podLookupStub{}, nil
	}
	code, out, errs := runWith(t, lookup, "", "parse", "--kubeconfig", "/etc/kube/config", "--pod-labels", "app,team", capturePod)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if got != "/etc/kube/config" || strings.Join(gotLabels, ",") != "app,team" {
		t.Errorf("lookup got kubeconfig %q, labels %q", got, gotLabels)
	}
	rs := jsonLines(t, out)
	d := rs[0]["diagnosis"].(map[string]any)
	if !strings.HasPrefix(d["summary"].(string), `container "app" of default/web-7d9 (Burstable): process 15901 "python3"`) {
		t.Errorf("summary %q", d["summary"])
	}
	src := rs[0]["enrichment"].(map[string]any)["sources"].([]any)
	if len(src) != 2 || src[1] != "kubernetes-api" {
		t.Errorf("sources %v", src)
	}
}

// hostileLog is a raw /dev/kmsg report whose trigger and victim named
// itself name (escaped as the kernel escapes it).
func hostileLog(name string) string {
	esc := func(s string) string {
		var b strings.Builder
		for i := 0; i < len(s); i++ {
			if c := s[i]; c < ' ' || c >= 127 || c == '\\' {
				fmt.Fprintf(&b, `\x%02x`, c)
			} else {
				b.WriteByte(c)
			}
		}
		return b.String()
	}
	n := esc(name)
	return strings.Join([]string{
		"4,100,5000000,-;" + n + " invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
		"6,101,5000010,-;memory: usage 10240kB, limit 10240kB, failcnt 1",
		"6,102,5000020,-;[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name",
		"6,103,5000030,-;[   4242]  1000  4242     3000     2275    61440        0             0 " + n,
		"6,104,5000040,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/a" + n + ",task_memcg=/a" + n + ",task=" + n + ",pid=4242,uid=1000",
		"3,105,5000050,-;Memory cgroup out of memory: Killed process 4242 (" + n + ") total-vm:12000kB, anon-rss:9000kB, file-rss:100kB, shmem-rss:0kB, UID:1000 pgtables:60kB oom_score_adj:0",
	}, "\n") + "\n"
}

// TestParseHostileNames: a name (or cgroup path) that holds newlines,
// escape sequences, bidi overrides or kernel-looking text reaches no output
// raw: JSON keeps it exactly (escaped), text shows it escaped, and the
// victim is the same in every output.
func TestParseHostileNames(t *testing.T) {
	names := []string{"a\nb", "\x1b]0;pwn\x07\x1b[2J", "\u202eevil", "x) total-vm:9", "\nKilled proces", "del\x7f\u0085c1", `back\x1b`}
	for _, name := range names {
		for _, output := range []string{"json", "pretty", "text"} {
			t.Run(fmt.Sprintf("%s/%q", output, name), func(t *testing.T) {
				code, out, errs := run(t, hostileLog(name), "parse", "-o", output, "-")
				if code != 0 {
					t.Fatalf("exit %d: %s", code, errs)
				}
				for i, r := range out {
					if r != '\n' && unsafeRune(r) || r == utf8.RuneError {
						t.Fatalf("output holds %U at %d:\n%s", r, i, out)
					}
				}
				switch output {
				case "json", "pretty":
					var rep struct {
						Victims []struct {
							PID  int    `json:"pid"`
							Comm string `json:"comm"`
						} `json:"victims"`
						OOMMemcg string `json:"oom_memcg"`
					}
					if err := json.Unmarshal([]byte(out), &rep); err != nil {
						t.Fatalf("%v: %s", err, out)
					}
					if len(rep.Victims) != 1 || rep.Victims[0].PID != 4242 || rep.Victims[0].Comm != name || rep.OOMMemcg != "/a"+name {
						t.Errorf("victims %+v, oom_memcg %q", rep.Victims, rep.OOMMemcg)
					}
				case "text":
					if !strings.Contains(out, escapeText(name)+" (pid 4242)") {
						t.Errorf("the victim is not shown escaped (%q):\n%s", escapeText(name), out)
					}
				}
			})
		}
	}
}

// shareSum adds up the percents matched by pattern in the section of a
// text report that starts at the line keyed key and runs over the lines
// without a key after it.
func shareSum(report, key, pattern string) int {
	re := regexp.MustCompile(pattern)
	sum, in := 0, false
	for _, l := range strings.Split(report, "\n") {
		k, _ := textField(l)
		indentOnly := strings.HasPrefix(l, "  ") && len(l)-len(strings.TrimLeft(l, " ")) > 4
		switch {
		case k == key && !indentOnly:
			in = true
		case in && !indentOnly:
			return sum
		case !in:
			continue
		}
		for _, m := range re.FindAllStringSubmatch(l, -1) {
			n, _ := strconv.Atoi(m[1])
			sum += n
		}
	}
	return sum
}

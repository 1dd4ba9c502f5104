package oomparse

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/oomscope/oomscope/kmsg"
)

// hostileNames are process names a process may give itself (prctl,
// /proc/self/comm: any byte but NUL, at most 15): newlines, the kernel's
// delimiters, text that looks like kernel lines or log prefixes, escape
// sequences, bidi overrides.
var hostileNames = []string{
	"a\nb",
	"x) total-vm:9",
	"a,pid=1,uid=2",
	",task=y",
	"\x1b]0;pwn\x07\x1b[2J",
	"\nKilled proces",
	"\noom-kill:cons",
	"[ 1.0] Killed",
	"kernel: x",
	"\u202eevil",
	"Plex Media Serv",
	"\n[  1] 0 1 1 1",
	"a\n\nb",
	")",
	"(",
}

// hostileReport is a 6.1 memcg report whose trigger and victim is the
// process named name: the name is in the header, the stack dump, the task
// table, the summary, the Killed line and the reaper line.
func hostileReport(name string) []string {
	return []string{
		name + " invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
		"CPU: 0 PID: 4242 Comm: " + name + " Not tainted 6.1.0-26-amd64 #1 Debian 6.1.112-1",
		"memory: usage 10240kB, limit 10240kB, failcnt 1",
		"swap: usage 0kB, limit 0kB, failcnt 0",
		"Tasks state (memory values in pages):",
		"[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name",
		"[   4242]  1000  4242     3000     2275    61440        0             0 " + name,
		"oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/a,task_memcg=/a,task=" + name + ",pid=4242,uid=1000",
		"Memory cgroup out of memory: Killed process 4242 (" + name + ") total-vm:12000kB, anon-rss:9000kB, file-rss:100kB, shmem-rss:0kB, UID:1000 pgtables:60kB oom_score_adj:0",
		"oom_reaper: reaped process 4242 (" + name + "), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB",
	}
}

// kmsgEscape escapes as /dev/kmsg does.
func kmsgEscape(s string) string {
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

// hostileRenderings render records the way each source writes them.
var hostileRenderings = map[string]func(recs []string) string{
	"kmsg": func(recs []string) string {
		var b strings.Builder
		for i, r := range recs {
			fmt.Fprintf(&b, "6,%d,%d,-;%s\n", 100+i, 5000000+i*10, kmsgEscape(r))
		}
		return b.String()
	},
	// util-linux dmesg: a newline in a record continues on the next line,
	// indented to the text; other control bytes escaped.
	"dmesg": func(recs []string) string {
		var b strings.Builder
		for i, r := range recs {
			prefix := fmt.Sprintf("[%5d.%06d] ", 5, i*10)
			esc := strings.ReplaceAll(kmsgEscape(r), `\x0a`, "\n"+strings.Repeat(" ", len(prefix)))
			b.WriteString(prefix + esc + "\n")
		}
		return b.String()
	},
	// rsyslog from /proc/kmsg: every line of a record with the record's
	// own prefix and timestamp.
	"kern.log": func(recs []string) string {
		var b strings.Builder
		for i, r := range recs {
			for _, l := range strings.Split(r, "\n") {
				fmt.Fprintf(&b, "Apr 27 22:56:09 node-1 kernel: [%5d.%06d] %s\n", 5, i*10, l)
			}
		}
		return b.String()
	},
	"journal-json": func(recs []string) string {
		var b strings.Builder
		for i, r := range recs {
			m, _ := json.Marshal(map[string]string{"MESSAGE": r, "_TRANSPORT": "kernel", "_SOURCE_MONOTONIC_TIMESTAMP": fmt.Sprint(5000000 + i*10)})
			b.Write(append(m, '\n'))
		}
		return b.String()
	},
}

// TestHostileNames: whatever a process names itself, its report is one
// report whose victim, summary, task row and trigger carry the name whole,
// in every rendering of the log.
func TestHostileNames(t *testing.T) {
	for rendering, render := range hostileRenderings {
		for _, name := range hostileNames {
			t.Run(fmt.Sprintf("%s/%q", rendering, name), func(t *testing.T) {
				in := render(hostileReport(name))
				reports, err := ParseAll(kmsg.NewScanner(strings.NewReader(in), kmsg.WithYear(2026)))
				if err != nil {
					t.Fatal(err)
				}
				if len(reports) != 1 {
					t.Fatalf("%d reports, want 1", len(reports))
				}
				r := reports[0]
				if len(r.Victims) != 1 || r.Victims[0].PID != 4242 || r.Victims[0].Comm != name {
					t.Fatalf("victims %+v", r.Victims)
				}
				if r.Victims[0].AnonRSS == nil || *r.Victims[0].AnonRSS != 9000<<10 || r.Victims[0].Reaper == nil {
					t.Errorf("victim sizes or reaper lost: %+v", r.Victims[0])
				}
				if r.Incomplete || r.Partial {
					t.Errorf("incomplete %v partial %v: %q", r.Incomplete, r.Partial, r.Problems)
				}
				if r.SummaryVictim == nil || r.SummaryVictim.PID != 4242 || r.SummaryVictim.Comm != name {
					t.Errorf("summary victim %+v", r.SummaryVictim)
				}
				if r.Trigger == nil || r.Trigger.Comm != name {
					t.Errorf("trigger %+v", r.Trigger)
				}
				if len(r.Tasks) != 1 || r.Tasks[0].Name != name || r.TasksTotal != 1 {
					t.Errorf("tasks %d %+v", r.TasksTotal, r.Tasks)
				}
				if r.OOMMemcg != "/a" || r.TaskMemcg != "/a" {
					t.Errorf("memcg %q task memcg %q", r.OOMMemcg, r.TaskMemcg)
				}
			})
		}
	}
}

// TestHostilePaths: a cgroup path (any cgroup name a delegated subtree
// allows) or a name that holds the summary's own keys never gives a wrong
// path or name: the ambiguous values are left out, or told by the task
// row's name.
func TestHostilePaths(t *testing.T) {
	for _, tc := range []struct {
		oom, task, name string
		table           bool
		wantName        bool // the name can be told (from the task row)
		wantPaths       bool // the paths can be told
	}{
		{oom: "/a", task: "/a", name: "w", table: true, wantName: true, wantPaths: true},
		{oom: "/a", task: "/a,task=b", name: "w", table: true, wantName: true, wantPaths: true},
		{oom: "/a", task: "/a,task=b", name: "w"},
		{oom: "/a", task: "/a", name: "b,task=c", table: true, wantName: true, wantPaths: true},
		{oom: "/a", task: "/a", name: "b,task=c"},
		{oom: "/a,task_memcg=/x", task: "/a", name: "w", table: true, wantName: true},
		{oom: "/a", task: "/a,task_memcg=/x", name: "w", table: true, wantName: true},
		{oom: "/a,oom_memcg=/x", task: "/a", name: "w", table: true, wantName: true},
		{oom: "/a,global_oom", task: "/a", name: "w", table: true, wantName: true},
	} {
		t.Run(fmt.Sprintf("%s|%s|%s|%v", tc.oom, tc.task, tc.name, tc.table), func(t *testing.T) {
			var recs []string
			for _, l := range hostileReport(tc.name) {
				switch {
				case strings.HasPrefix(l, "oom-kill:"):
					l = "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=" + tc.oom +
						",task_memcg=" + tc.task + ",task=" + tc.name + ",pid=4242,uid=1000"
				case !tc.table && strings.HasPrefix(l, "["):
					continue
				}
				recs = append(recs, l)
			}
			reports, err := ParseAll(kmsg.NewScanner(strings.NewReader(hostileRenderings["kmsg"](recs))))
			if err != nil {
				t.Fatal(err)
			}
			if len(reports) != 1 {
				t.Fatalf("%d reports", len(reports))
			}
			r := reports[0]
			if r.SummaryVictim == nil || r.SummaryVictim.PID != 4242 {
				t.Fatalf("summary victim %+v", r.SummaryVictim)
			}
			if got := r.SummaryVictim.Comm; got != "" && got != tc.name || tc.wantName && got != tc.name {
				t.Errorf("summary task %q, want %q", got, tc.name)
			}
			for _, p := range []struct{ got, want string }{{r.OOMMemcg, tc.oom}, {r.TaskMemcg, tc.task}} {
				if p.got != "" && p.got != p.want || tc.wantPaths && p.got != p.want {
					t.Errorf("memcg %q, want %q (or absent)", p.got, p.want)
				}
			}
			if !tc.wantPaths || !tc.wantName {
				if !strings.Contains(strings.Join(r.Problems, "; "), "holds the line's own keys") {
					t.Errorf("no problem said why: %q", r.Problems)
				}
			}
			if len(r.Victims) != 1 || r.Victims[0].Comm != tc.name {
				t.Errorf("victims %+v", r.Victims)
			}
		})
	}
}

// TestHostileTaskIn: a cgroup path that holds the words of the "Task in"
// line leaves both paths out rather than splitting at the wrong place.
func TestHostileTaskIn(t *testing.T) {
	for _, tc := range []struct{ task, limit string }{
		{"/a", "/b"},
		{"/a killed as a result of limit of /x", "/b"},
		{"/a", "/b killed as a result of limit of /x"},
	} {
		in := hostileRenderings["kmsg"]([]string{
			"w invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
			"Task in " + tc.task + " killed as a result of limit of " + tc.limit,
			"memory: usage 10240kB, limit 10240kB, failcnt 1",
			"Memory cgroup out of memory: Kill process 4242 (w) score 1 or sacrifice child",
			"Killed process 4242 (w) total-vm:12000kB, anon-rss:9000kB, file-rss:100kB, shmem-rss:0kB",
		})
		reports, err := ParseAll(kmsg.NewScanner(strings.NewReader(in)))
		if err != nil || len(reports) != 1 {
			t.Fatalf("%d reports, %v", len(reports), err)
		}
		r := reports[0]
		clean := !strings.Contains(tc.task+tc.limit, " killed as")
		for _, p := range []struct{ got, want string }{{r.TaskMemcg, tc.task}, {r.OOMMemcg, tc.limit}} {
			if p.got != "" && p.got != p.want || clean && p.got != p.want {
				t.Errorf("%q: memcg %q, want %q (or absent)", tc.task+"|"+tc.limit, p.got, p.want)
			}
		}
		if len(r.Victims) != 1 || r.Victims[0].PID != 4242 {
			t.Errorf("victims %+v", r.Victims)
		}
	}
}

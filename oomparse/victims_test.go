package oomparse

import "testing"

// TestVictimsAreKilled: victims are exactly the processes killed; tasks
// skipped as already exiting, a chosen task whose Killed line is missing,
// and a reaper line about another pid are kept apart or left out.
func TestVictimsAreKilled(t *testing.T) {
	const (
		head    = "x invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0\nmemory: usage 1024kB, limit 1024kB, failcnt 1\n"
		summary = "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),oom_memcg=/a,task_memcg=/a,task=w,pid=42,uid=0\n"
		exiting = "Memory cgroup out of memory: OOM victim 42 (w) is already exiting. Skip killing the task\n"
		reaper  = "oom_reaper: reaped process 42 (w), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB\n"
	)
	tests := []struct {
		name       string
		text       string
		victims    []int
		exiting    int
		chosen     int // pid, 0 for none
		inferred   bool
		incomplete bool
	}{
		{"already exiting only: nothing killed, nothing missing", head + summary + exiting, nil, 1, 0, false, false},
		{"an oom.group member already exiting", head + summary + "Memory cgroup out of memory: Killed process 42 (w) total-vm:4000kB, anon-rss:3000kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:40kB oom_score_adj:0\n" +
			"Tasks in /a are going to be killed due to memory.oom.group set\n" +
			"Memory cgroup out of memory: OOM victim 43 (w2) is already exiting. Skip killing the task\n" +
			"Memory cgroup out of memory: Killed process 44 (w3) total-vm:4000kB, anon-rss:3000kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:40kB oom_score_adj:0\n",
			[]int{42, 44}, 1, 0, false, false},
		{"the Killed line missing, the reaper names the summary's pid", head + summary + reaper, []int{42}, 0, 0, true, true},
		{"a reaper line about another pid names nobody", head + summary + "oom_reaper: reaped process 7 (q), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB\n", nil, 0, 0, false, true},
		{"Kill process alone: the chosen task, no victim", head + "Memory cgroup out of memory: Kill process 42 (w) score 990 or sacrifice child\n", nil, 0, 42, false, true},
		{"Kill process and the reaper for it", head + "Memory cgroup out of memory: Kill process 42 (w) score 990 or sacrifice child\n" + reaper, []int{42}, 0, 0, true, true},
		{"Kill process and its Killed child", head + "Memory cgroup out of memory: Kill process 42 (w) score 990 or sacrifice child\nKilled process 50 (child) total-vm:4000kB, anon-rss:3000kB, file-rss:0kB, shmem-rss:0kB\n",
			[]int{50}, 0, 0, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := parseText(t, tt.text)
			if len(rs) != 1 {
				t.Fatalf("%d reports", len(rs))
			}
			r := rs[0]
			var pids []int
			for _, v := range r.Victims {
				pids = append(pids, v.PID)
				if v.Exiting {
					t.Errorf("victim %d flagged exiting", v.PID)
				}
				if got := v.Inferred != ""; got != tt.inferred {
					t.Errorf("victim %d inferred %q", v.PID, v.Inferred)
				}
				if v.Inferred != "" && (v.AnonRSS != nil || v.TotalVM != nil || v.Reaper == nil) {
					t.Errorf("inferred victim %+v: sizes read or no reaper", v)
				}
			}
			if len(pids) != len(tt.victims) || len(pids) > 0 && pids[0] != tt.victims[0] || len(pids) > 1 && pids[1] != tt.victims[1] {
				t.Errorf("victims %v, want %v", pids, tt.victims)
			}
			if len(r.AlreadyExiting) != tt.exiting {
				t.Errorf("already exiting %+v", r.AlreadyExiting)
			}
			if got := 0; r.Chosen != nil {
				got = r.Chosen.PID
				if got != tt.chosen {
					t.Errorf("chosen %+v", r.Chosen)
				}
			} else if tt.chosen != 0 {
				t.Errorf("no chosen task, want %d", tt.chosen)
			}
			if r.Incomplete != tt.incomplete {
				t.Errorf("incomplete = %v, problems %q", r.Incomplete, r.Problems)
			}
		})
	}
}

package oomparse_test

import (
	"fmt"
	"strings"

	"github.com/oomscope/oomscope/kmsg"
	"github.com/oomscope/oomscope/oomparse"
)

// A few kernel lines, as pasted from dmesg, give the report and its victim.
func Example() {
	log := `[ 5235.078] dd invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0
[ 5235.512] memory: usage 32768kB, limit 32768kB, failcnt 19
[ 5236.100] oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/pod1,task_memcg=/pod1,task=dd,pid=85,uid=0
[ 5236.110] Memory cgroup out of memory: Killed process 85 (dd) total-vm:133332kB, anon-rss:32616kB, file-rss:4kB, shmem-rss:1580kB, UID:0 pgtables:96kB oom_score_adj:0
`
	reports, err := oomparse.ParseAll(kmsg.NewScanner(strings.NewReader(log)))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range reports {
		v := r.Victims[0]
		fmt.Printf("%s OOM in %s: killed %d (%s), anon-rss %d MiB\n", r.Kind, r.OOMMemcg, v.PID, v.Comm, v.AnonRSSBytes>>20)
	}
	// Output:
	// memcg OOM in /pod1: killed 85 (dd), anon-rss 31 MiB
}

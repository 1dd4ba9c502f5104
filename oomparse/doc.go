// Package oomparse rebuilds the kernel's oom-killer reports from kernel log
// records ([kmsg.Record]) and returns each as a [report.Report]: who
// invoked the killer, which limit was hit (a memory cgroup's or the
// node's), the memory dump, the task table, and the processes killed.
//
// A report is the burst the kernel prints from mm/oom_kill.c (dump_header,
// oom_kill_process), mm/memcontrol.c (mem_cgroup_print_oom_meminfo) and
// mm/show_mem.c (show_mem). A 6.1 memcg report, as dmesg shows it:
//
//	dd invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0
//	CPU: 0 PID: 85 Comm: dd Not tainted 6.1.0-56-amd64 #1  Debian 6.1.192-2
//	Call Trace: ...
//	memory: usage 32768kB, limit 32768kB, failcnt 19
//	swap: usage 0kB, limit 0kB, failcnt 0
//	Memory cgroup stats for /kubepods.slice/pod1:
//	anon 33480704 ...
//	Tasks state (memory values in pages):
//	[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name
//	[     85]     0    85    33333     8550    98304        0             0 dd
//	oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/kubepods.slice/pod1,task_memcg=/kubepods.slice/pod1,task=dd,pid=85,uid=0
//	Memory cgroup out of memory: Killed process 85 (dd) total-vm:133332kB, anon-rss:32616kB, file-rss:4kB, shmem-rss:1580kB, UID:0 pgtables:96kB oom_score_adj:0
//
// Every era from 2.6.32 to the newest mm tree is read (the shapes and
// their kernel versions: docs/report.md and docs/parse.md). The line shapes the parser knows are one table
// (markers.go): each row says how a line is recognised, whether it may
// open a report, continue one or never belongs to one, and where it sits
// in a report.
//
// [Parser] is a push state machine: [Parser.Feed] takes one record and
// returns the reports it completed; [Parser.Expire] ends reports by the
// kernel clock (a report waits a little for its oom_reaper line);
// [Parser.Flush] ends the stream. [ParseAll] reads a whole
// [RecordSource] (a [kmsg.Scanner]); [Demux] keeps the hosts of a mixed
// syslog file apart. A Parser does no I/O, reads no clock and never logs;
// one goroutine owns it.
//
// What is absent is left out, never guessed: a report without its
// beginning, rate limited by the kernel or cut by a sequence gap is
// returned with what it holds and flagged ([report.Report.Partial],
// [report.Report.Incomplete], [report.Report.Problems]).
package oomparse

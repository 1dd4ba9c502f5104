package oomparse_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/oomscope/oomscope/kmsg"
	"github.com/oomscope/oomscope/oomparse"
	"github.com/oomscope/oomscope/report"
)

// quietChatter is what a busy node's kernel log holds between OOMs.
var quietChatter = []string{
	"6,1,1,-;EXT4-fs (nvme0n1p1): mounted filesystem with ordered data mode. Quota mode: none.",
	"6,1,1,-,caller=T1;systemd[1]: Started cri-containerd-3f9a2b1c.scope - libcontainer container 3f9a2b1c.",
	"6,1,1,-;IPv6: ADDRCONF(NETDEV_CHANGE): veth3a2b1c4d: link becomes ready",
	"6,1,1,-;cni0: port 7(veth3a2b1c4d) entered blocking state",
	"6,1,1,-;cni0: port 7(veth3a2b1c4d) entered forwarding state",
	"5,1,1,-;audit: type=1400 audit(1714210000.123:44): apparmor=\"DENIED\" operation=\"open\" profile=\"cri-containerd.apparmor.d\" name=\"/proc/sys/kernel/random/uuid\" pid=4412 comm=\"java\"",
	"4,1,1,-;TCP: request_sock_TCP: Possible SYN flooding on port 8080. Sending cookies.  Check SNMP counters.",
	"6,1,1,-;nvme nvme0: I/O 12 QID 3 timeout, completion polled",
	"6,1,1,-;usb 1-1: new high-speed USB device number 3 using xhci_hcd",
	"3,1,1,-;blk_update_request: I/O error, dev sdb, sector 1953525000 op 0x0:(READ) flags 0x80700 phys_seg 1 prio class 0",
	"4,1,1,-;kauditd_printk_skb: 12 callbacks suppressed",
	"6,1,1,-;eth0: renamed from tmp3a2b1",
	"6,1,1,-;IPVS: rr: TCP 10.96.0.10:53 - no destination available",
	"4,1,1,-;device veth3a2b1c4d left promiscuous mode",
	"6,1,1,-;xfs filesystem being remounted at /var/lib/kubelet/pods/7e1f/volumes supports timestamps until 2038 (0x7fffffff)",
	"4,1,1,-;hrtimer: interrupt took 2155314 ns",
}

func mustRecords(tb testing.TB, lines []string) []kmsg.Record {
	tb.Helper()
	recs := make([]kmsg.Record, len(lines))
	for i, l := range lines {
		r, err := kmsg.ParseRecord(l)
		if err != nil {
			tb.Fatalf("%q: %v", l, err)
		}
		recs[i] = r
	}
	return recs
}

// reportLines builds a 5.10 memcg report with rows task-table rows.
func reportLines(rows int) []string {
	var l []string
	add := func(lvl int, format string, a ...any) {
		l = append(l, fmt.Sprintf("%d,1,1,-;", lvl)+fmt.Sprintf(format, a...))
	}
	add(4, "java invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=999")
	add(4, "CPU: 1 PID: 90000 Comm: java Not tainted 5.10.0-32-cloud-amd64 #1 Debian 5.10.223-1")
	add(4, "Hardware name: Google Google Compute Engine/Google Compute Engine, BIOS Google 06/27/2024")
	add(4, "Call Trace:")
	for _, f := range []string{"dump_stack+0x6b/0x83", "dump_header+0x4a/0x1f4", "oom_kill_process.cold+0xb/0x10", "out_of_memory+0x1bd/0x4e0"} {
		add(4, " %s", f)
	}
	add(6, "memory: usage 8388608kB, limit 8388608kB, failcnt 1192")
	add(6, "swap: usage 0kB, limit 0kB, failcnt 0")
	add(6, "Memory cgroup stats for /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice:")
	add(6, `anon 8556879872\x0afile 3932160\x0akernel_stack 1622016\x0apercpu 0\x0asock 0\x0ashmem 0\x0afile_mapped 0\x0afile_dirty 0\x0afile_writeback 0\x0aanon_thp 0\x0ainactive_anon 8556855296\x0aactive_anon 24576\x0ainactive_file 1966080\x0aactive_file 1966080\x0aunevictable 0\x0aslab_reclaimable 2785280\x0aslab_unreclaimable 4055040\x0aslab 6840320\x0aworkingset_refault_anon 0\x0aworkingset_refault_file 0\x0apgfault 2102110\x0apgmajfault 0`)
	add(6, "Tasks state (memory values in pages):")
	add(6, "[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name")
	for i := 0; i < rows; i++ {
		pid := 90000 + i
		add(6, "[%7d] %5d %5d %8d %8d %8d %8d         %5d %s", pid, 1000, pid, 30000+i, 1000+i%5000, 65536, 0, 999, fmt.Sprintf("worker-%d", i))
	}
	add(6, "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice,task_memcg=/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-1.scope,task=java,pid=90000,uid=1000")
	add(3, "Memory cgroup out of memory: Killed process 90000 (java) total-vm:120000kB, anon-rss:4000kB, file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:64kB oom_score_adj:999")
	return l
}

// BenchmarkQuietStream feeds kernel chatter without any OOM text: the cost
// of running the parser on a healthy node. One op is one record.
func BenchmarkQuietStream(b *testing.B) {
	recs := mustRecords(b, quietChatter)
	p, err := oomparse.New()
	if err != nil {
		b.Fatal(err)
	}
	var dst []report.Report
	b.ReportAllocs()
	b.ResetTimer()
	m := startMeter()
	for i := 0; i < b.N; i++ {
		rec := recs[i%len(recs)]
		rec.Seq = uint64(i + 1)
		rec.Mono = time.Duration(i) * time.Millisecond
		dst = p.Feed(dst[:0], rec)
	}
	m.report(b, b.N)
	if len(dst) != 0 {
		b.Fatalf("quiet stream produced %d reports", len(dst))
	}
}

// benchReport feeds a whole report per op and checks it came out whole.
func benchReport(b *testing.B, rows int) {
	recs := mustRecords(b, reportLines(rows))
	p, err := oomparse.New()
	if err != nil {
		b.Fatal(err)
	}
	var dst []report.Report
	b.ReportAllocs()
	b.ResetTimer()
	m := startMeter()
	seq := uint64(0)
	for i := 0; i < b.N; i++ {
		dst = dst[:0]
		for _, rec := range recs {
			seq++
			rec.Seq = seq
			rec.Mono = time.Duration(seq) * time.Microsecond
			dst = p.Feed(dst, rec)
		}
		dst = p.Flush(dst)
		if len(dst) != 1 || dst[0].TasksTotal != rows || dst[0].Incomplete {
			b.Fatalf("got %d reports, want one complete report of %d tasks", len(dst), rows)
		}
	}
	m.report(b, b.N*len(recs))
}

// meter measures records/s (wall clock) and CPU ns per record.
type meter struct {
	wall  time.Time
	cpu   time.Duration
	cpuOK bool
}

func startMeter() meter {
	cpu, ok := processCPU()
	return meter{wall: time.Now(), cpu: cpu, cpuOK: ok}
}

func (m meter) report(b *testing.B, records int) {
	b.ReportMetric(float64(records)/time.Since(m.wall).Seconds(), "records/s")
	if cpu, ok := processCPU(); ok && m.cpuOK && records > 0 {
		b.ReportMetric(float64(cpu-m.cpu)/float64(records), "cpu-ns/record")
	}
}

// BenchmarkReport200 parses one report with a 200-row task table per op.
func BenchmarkReport200(b *testing.B) { benchReport(b, 200) }

// BenchmarkTable10000 parses one report with a 10,000-row task table (the
// default cap keeps every row) per op.
func BenchmarkTable10000(b *testing.B) { benchReport(b, 10000) }

// BenchmarkStormVictimLine feeds what a storm's kernel log mostly is: a
// rate-limited kill, its bare "Killed process" line, then its oom_reaper
// line, live timing on a cgroup v1 host (the report leaves at the next
// Expire). One op is one kill: two records and the partial report.
func BenchmarkStormVictimLine(b *testing.B) {
	p, err := oomparse.New(oomparse.WithLiveTiming(), oomparse.WithMemoryCgroupV1(), oomparse.WithBootID("b"))
	if err != nil {
		b.Fatal(err)
	}
	var out []report.Report
	seq, mono := uint64(1), time.Second
	b.ReportAllocs()
	for b.Loop() {
		seq++
		mono += time.Millisecond
		kill := kmsg.Record{Seq: seq, HasSeq: true, Mono: mono, HasMono: true,
			Text: "Memory cgroup out of memory: Killed process 4242 (stormalloc) total-vm:1234567kB, anon-rss:32000kB, file-rss:1200kB, shmem-rss:0kB, UID:0 pgtables:200kB oom_score_adj:0"}
		kill.Raw = "3,1,1,-;" + kill.Text
		out = p.Feed(out[:0], kill)
		out = p.Expire(out, mono)
		seq++
		reap := kmsg.Record{Seq: seq, HasSeq: true, Mono: mono + 2*time.Second, HasMono: true,
			Text: "oom_reaper: reaped process 4241 (stormalloc), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB"}
		reap.Raw = "6,1,1,-;" + reap.Text
		out = p.Feed(out[:0], reap)
		out = p.Expire(out, mono)
		if len(out) > 1 {
			b.Fatalf("%d reports", len(out))
		}
	}
}

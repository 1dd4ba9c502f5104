package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/oomscope/oomscope/kmsg"
	"github.com/oomscope/oomscope/oomparse"
)

// chatter is ordinary kernel log text of a Kubernetes node, none of it
// about OOM kills; %d is replaced by a counter.
var chatter = []string{
	"IPv6: ADDRCONF(NETDEV_CHANGE): veth%d: link becomes ready",
	"cni0: port 3(veth%d) entered forwarding state",
	"cni0: port 3(veth%d) entered blocking state",
	"device veth%d entered promiscuous mode",
	"eth0: renamed from tmp%d",
	"EXT4-fs (nvme0n1p1): mounted filesystem 2a1f4c1e-5a42-4c1b-9d7a-2f1f8c3e9a11 r/w with ordered data mode. Quota mode: none.",
	`audit: type=1400 audit(1714245369.123:%d): apparmor="STATUS" operation="profile_load" profile="unconfined" name="cri-containerd.apparmor.d" pid=12345 comm="apparmor_parser"`,
	"TCP: request_sock_TCP: Possible SYN flooding on port 10250. Sending cookies.  Check SNMP counters.",
	"nvme nvme0: I/O %d QID 4 timeout, completion polled",
	"IPVS: rr: TCP 10.96.0.1:443 - no destination available",
	"overlayfs: upper fs does not support RENAME_WHITEOUT.",
	"xfs filesystem being remounted at /var/lib/kubelet/pods/%d/volumes supports timestamps until 2038 (0x7fffffff)",
	"perf: interrupt took too long (2503 > 2500), lowering kernel.perf_event_max_sample_rate to 79750",
	"kauditd_printk_skb: %d callbacks suppressed",
	"usb 1-1: new high-speed USB device number %d using xhci_hcd",
	"EXT4-fs warning (device nvme1n1): ext4_dx_add_entry:2461: Directory (ino: %d) index full, reach max htree level :2",
}

// genStats says what generateSyslog wrote.
type genStats struct {
	bytes                 int64
	lines, reportLines    int
	blocks, reports       int
	sources               []string
	chatterPerBlock       int
	reportBytesPercentage float64
}

type block struct {
	lines   []stampedLine
	reports int
}

type stampedLine struct {
	off  time.Duration // from the block's first record
	text string
}

// loadBlocks reads the kmsg captures of testdata: each file is one block
// of records, with the number of reports the parser finds in it.
func loadBlocks(root string) ([]block, []string, error) {
	var files []string
	for _, g := range []string{"testdata/captures/*.kmsg", "testdata/live/*.kmsg", "testdata/kernels/*.kmsg"} {
		m, err := filepath.Glob(filepath.Join(root, g))
		if err != nil {
			return nil, nil, err
		}
		files = append(files, m...)
	}
	slices.Sort(files)
	var blocks []block
	var names []string
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return nil, nil, err
		}
		sc := kmsg.NewScanner(fh, kmsg.WithFormat(kmsg.FormatKmsg))
		var recs []kmsg.Record
		for sc.Scan() {
			recs = append(recs, sc.Record())
		}
		fh.Close()
		if err := sc.Err(); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", f, err)
		}
		if len(recs) == 0 {
			continue
		}
		var b block
		first := recs[0].Mono
		for _, r := range recs {
			off := r.Mono - first
			for _, line := range strings.Split(r.Text, "\n") {
				b.lines = append(b.lines, stampedLine{off: off, text: line})
			}
		}
		reps, err := oomparse.ParseAll(&sliceSource{recs: recs})
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", f, err)
		}
		b.reports = len(reps)
		blocks = append(blocks, b)
		rel, _ := filepath.Rel(root, f)
		names = append(names, rel)
	}
	if len(blocks) == 0 {
		return nil, nil, fmt.Errorf("no kmsg captures in %s/testdata", root)
	}
	return blocks, names, nil
}

// generateSyslog writes a syslog (imklog) file of about size bytes: the
// testdata captures in turn, each followed by chatterPerBlock lines of
// other kernel text, with increasing timestamps.
func generateSyslog(root, file string, size int64) (genStats, error) {
	const chatterPerBlock = 400
	gs := genStats{chatterPerBlock: chatterPerBlock}
	blocks, names, err := loadBlocks(root)
	if err != nil {
		return gs, err
	}
	gs.sources = names
	f, err := os.Create(file)
	if err != nil {
		return gs, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	base := time.Date(2026, time.March, 1, 0, 0, 0, 0, time.UTC)
	mono := 100 * time.Second
	var line []byte
	var reportBytes int64
	put := func(at time.Duration, text string) error {
		line = line[:0]
		line = base.Add(at).AppendFormat(line, time.Stamp)
		line = append(line, " node-1 kernel: ["...)
		sec := strconv.FormatInt(int64(at/time.Second), 10)
		for i := len(sec); i < 5; i++ {
			line = append(line, ' ')
		}
		line = append(line, sec...)
		line = append(line, '.')
		us := strconv.FormatInt(int64(at%time.Second/time.Microsecond), 10)
		for i := len(us); i < 6; i++ {
			line = append(line, '0')
		}
		line = append(line, us...)
		line = append(line, "] "...)
		line = append(line, text...)
		line = append(line, '\n')
		_, err := w.Write(line)
		gs.bytes += int64(len(line))
		gs.lines++
		return err
	}
	counter := 0
	for gs.bytes < size {
		b := blocks[gs.blocks%len(blocks)]
		gs.blocks++
		gs.reports += b.reports
		start := mono
		for _, l := range b.lines {
			// Long pauses inside a capture (a qemu guest's boot) shrink
			// to 100 ms: only the order matters.
			at := start + min(l.off, time.Duration(len(b.lines))*100*time.Millisecond)
			mono = max(mono, at)
			before := gs.bytes
			if err := put(mono, l.text); err != nil {
				f.Close()
				return gs, err
			}
			reportBytes += gs.bytes - before
			gs.reportLines++
		}
		for i := 0; i < chatterPerBlock; i++ {
			mono += 3 * time.Millisecond
			counter++
			t := chatter[counter%len(chatter)]
			if strings.Contains(t, "%d") {
				t = strings.Replace(t, "%d", strconv.Itoa(counter), 1)
			}
			if err := put(mono, t); err != nil {
				f.Close()
				return gs, err
			}
		}
		mono += 6 * time.Second // reports end (victim linger, idle timeout)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return gs, err
	}
	if gs.bytes > 0 {
		gs.reportBytesPercentage = 100 * float64(reportBytes) / float64(gs.bytes)
	}
	return gs, f.Close()
}

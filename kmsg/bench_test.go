package kmsg

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// Benchmarks report, besides the usual per-op figures, records/s,
// ns/record and allocs/record (heap allocations per record returned).
//
//	go test -run '^$' -bench . -benchmem ./kmsg

func BenchmarkParseRecord(b *testing.B) {
	cases := []struct{ name, line string }{
		{"plain", "6,372,76086772,-;Memory cgroup out of memory: Killed process 1234 (stress) total-vm:1060336kB, anon-rss:1048748kB, file-rss:1024kB, shmem-rss:0kB, UID:0 pgtables:2108kB oom_score_adj:0"},
		{"caller", "4,1999,77086772,-,caller=T1234;[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name"},
		{"escaped", `6,373,76086773,-;Memory cgroup stats for /kubepods.slice/pod1:\x0aanon 1073741824\x0afile 4096\x0akernel 12288\x0ashmem 0`},
		{"dict", "6,374,76086774,-;usb 1-1: new high-speed USB device\n SUBSYSTEM=usb\n DEVICE=c189:1"},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.line)))
			for b.Loop() {
				if _, err := ParseRecord(c.line); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkScanner scans each sample file of testdata/ (one per format),
// repeated to about 1 MiB.
func BenchmarkScanner(b *testing.B) {
	files := []string{
		"host-6.18-3-kills.kmsg",
		"host-6.18-3-kills.dmesg",
		"host-6.18-3-kills.dmesg-T",
		"host-6.18-3-kills.dmesg-iso",
		"host-6.18-3-kills.kern.log",
		"host-6.18-3-kills.rfc3339.log",
		"host-6.18-3-kills.journal-short",
		"host-6.18-3-kills.journal-precise",
		"host-6.18-3-kills.journal-iso",
		"host-6.18-3-kills.journal.json",
	}
	for _, name := range files {
		b.Run(name[len("host-6.18-3-kills."):], func(b *testing.B) {
			one, err := os.ReadFile(filepath.Join("testdata", name))
			if err != nil {
				b.Fatal(err)
			}
			in := bytes.Repeat(one, (1<<20)/len(one)+1)
			opts := []ScanOption{WithLocation(time.UTC), WithYear(2024)}
			count := func() int {
				sc := NewScanner(bytes.NewReader(in), opts...)
				n := 0
				for sc.Scan() {
					n++
				}
				if sc.Err() != nil {
					b.Fatal(sc.Err())
				}
				return n
			}
			perOp := count()
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			var ms0, ms1 runtime.MemStats
			runtime.ReadMemStats(&ms0)
			b.ResetTimer()
			ops := 0
			for b.Loop() {
				count()
				ops++
			}
			b.StopTimer()
			runtime.ReadMemStats(&ms1)
			recs := float64(ops * perOp)
			b.ReportMetric(recs/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/recs, "ns/record")
			b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/recs, "allocs/record")
		})
	}
}

// BenchmarkLive reads records through a Live from a stand-in device that
// returns one record per Read, as /dev/kmsg does: parsing, sequence
// tracking, wall time and the channel hand-off.
func BenchmarkLive(b *testing.B) {
	const n = 20000
	lines := make([]fakeRead, n)
	for i := range lines {
		lines[i] = fakeRead{data: fmt.Sprintf("6,%d,%d,-;Memory cgroup out of memory: Killed process %d (stress) total-vm:1060336kB, anon-rss:1048748kB, file-rss:1024kB, shmem-rss:0kB\n", i+1, 1000000+i, i)}
	}
	b.ReportAllocs()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	ops := 0
	for b.Loop() {
		dev := newFakeDevice(lines...)
		l, err := OpenLive(context.Background(), WithStartAtBeginning(),
			withOpener(func(string) (device, error) { return dev, nil }))
		if err != nil {
			b.Fatal(err)
		}
		for range n {
			<-l.Records()
		}
		l.Close()
		ops++
	}
	runtime.ReadMemStats(&ms1)
	recs := float64(ops * n)
	b.ReportMetric(recs/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/recs, "ns/record")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/recs, "allocs/record")
}

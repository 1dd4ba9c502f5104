package main

import (
	"context"
	"os"
	"testing"

	"github.com/oomscope/oomscope/kmsg"
	"github.com/oomscope/oomscope/oomparse"
	"github.com/oomscope/oomscope/report"
)

// The floor as Go benchmarks (one op = the whole ring buffer, as it is),
// reporting records/s; they need a readable /dev/kmsg (root):
//
//	cd bench && go test ./cmd/stormbench -run '^$' -bench Floor -benchmem -count 3 -cpu 1

func ring(b *testing.B) []string {
	b.Helper()
	if f, err := os.Open("/dev/kmsg"); err != nil {
		b.Skipf("no readable /dev/kmsg: %v", err)
	} else {
		f.Close()
	}
	raw, err := readRing()
	if err != nil || len(raw) == 0 {
		b.Skipf("ring buffer: %d records, %v", len(raw), err)
	}
	return raw
}

func perRecordMetric(b *testing.B, n int) {
	b.ReportMetric(float64(b.N)*float64(n)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/record")
}

func BenchmarkFloorBareRead(b *testing.B) {
	n := len(ring(b))
	b.ResetTimer()
	for b.Loop() {
		if _, err := bareRead(); err != nil {
			b.Fatal(err)
		}
	}
	perRecordMetric(b, n)
}

func BenchmarkFloorParseFeed(b *testing.B) {
	raw := ring(b)
	var out []report.Report
	b.ResetTimer()
	for b.Loop() {
		p, err := oomparse.New()
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range raw {
			rec, err := kmsg.ParseRecord(r)
			if err != nil {
				b.Fatal(err)
			}
			out = p.Feed(out[:0], rec)
		}
		out = p.Flush(out[:0])
	}
	perRecordMetric(b, len(raw))
}

func BenchmarkFloorLivePath(b *testing.B) {
	raw := ring(b)
	last, err := kmsg.ParseRecord(raw[len(raw)-1])
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	n := 0
	for b.Loop() {
		m, err := livePass(context.Background(), last.Seq)
		if err != nil {
			b.Fatal(err)
		}
		n = m
	}
	perRecordMetric(b, n)
}

package outbox

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkPut is one Put per op: one committed, fsync'd transaction with a
// 2 KiB body (a typical report), no sink running. OUTBOX_BENCH_DIR puts the
// file on another filesystem (the default is the test's temp dir).
func BenchmarkPut(b *testing.B) { benchPut(b, false) }

// BenchmarkPutWhileDelivering is the same with two sinks running that
// confirm at once: their cursor commits (coalesced) compete with Put for
// bbolt's single writer.
func BenchmarkPutWhileDelivering(b *testing.B) { benchPut(b, true) }

func benchPut(b *testing.B, deliver bool) {
	dir := os.Getenv("OUTBOX_BENCH_DIR")
	if dir == "" {
		dir = b.TempDir()
	} else {
		var err error
		if dir, err = os.MkdirTemp(dir, "outbox-bench"); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
	}
	o := openAt(b, filepath.Join(dir, "outbox.db"), Config{})
	if deliver {
		startRun(b, o, okSink("archive"), okSink("nats"))
	}
	body := make([]byte, 2048)
	for i := range body {
		body[i] = 'a' + byte(i%26)
	}
	b.SetBytes(int64(len(body)))
	for i := 0; b.Loop(); i++ {
		if _, err := o.Put(fmt.Sprintf("report-%d", i), body); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "puts/s")
}

// okSink confirms everything at once.
type okSink string

func (s okSink) Name() string                       { return string(s) }
func (okSink) Deliver(context.Context, Entry) error { return nil }

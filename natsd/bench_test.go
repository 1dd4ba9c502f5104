package natsd

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/oomscope/oomscope/report"
	"github.com/oomscope/oomscope/sink"
	"github.com/oomscope/oomscope/sink/natssink"
)

// BenchmarkPublish is one report at a time through the NATS sink into the
// embedded server, each waiting for its ack, with and without a sync per
// write. The figure depends on the disk's fsync latency.
func BenchmarkPublish(b *testing.B) {
	for _, syncAlways := range []bool{false, true} {
		b.Run(fmt.Sprintf("SyncAlways=%v", syncAlways), func(b *testing.B) {
			ctx := context.Background()
			s, err := Start(ctx, Config{Listen: "127.0.0.1:0", StoreDir: b.TempDir(), SyncAlways: syncAlways})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Shutdown()
			snk, err := natssink.New(ctx, natssink.Config{URLs: s.ClientURL(), CreateStream: true})
			if err != nil {
				b.Fatal(err)
			}
			defer snk.Close()
			r := &report.Enriched{
				Report: &report.Report{Schema: report.Schema, Host: "node-1", Kind: report.KindMemcg, Raw: make([]string, 60)},
				Pod:    &report.Pod{Namespace: "default", Name: "memhog"},
			}
			for i := range r.Raw {
				r.Raw[i] = "6,1234,5678,-;Memory cgroup stats for /kubepods/burstable/pod0b7c3d2e: anon 104857600 file 0 kernel 1048576"
			}
			for i := 0; b.Loop(); i++ {
				rep := *r.Report
				rep.ID = fmt.Sprintf("boot/%d", i)
				e := *r
				e.Report = &rep
				if err := snk.Publish(ctx, sink.Delivery{Report: &e, Queued: time.Now()}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

package sink

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/oomscope/oomscope/outbox"
)

// recording is a sink that keeps what it was given.
type recording struct {
	name string
	mu   sync.Mutex
	got  []Delivery
}

func (r *recording) Name() string { return r.name }
func (r *recording) Publish(_ context.Context, d Delivery) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, d)
	return nil
}

// The sinks of ForOutboxAll get one decoded report per entry, shared, with
// the stored JSON and the Put time; a sink far behind decodes its own.
func TestForOutboxAllDecodesOnce(t *testing.T) {
	a, b := &recording{name: "a"}, &recording{name: "b"}
	sinks := ForOutboxAll(a, b)
	ctx := context.Background()
	put := time.Unix(1700000000, 0)
	entry := func(seq uint64) outbox.Entry {
		body, err := json.Marshal(testReport("boot/" + string(rune('0'+seq))))
		if err != nil {
			t.Fatal(err)
		}
		return outbox.Entry{Seq: seq, ID: "boot/" + string(rune('0'+seq)), Put: put, Body: body}
	}
	for seq := uint64(1); seq <= 3; seq++ {
		for _, s := range sinks {
			if err := s.Deliver(ctx, entry(seq)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range 3 {
		da, db := a.got[i], b.got[i]
		if da.Report != db.Report {
			t.Errorf("entry %d decoded twice: the sinks got different values", i+1)
		}
		if da.Report.ID != entry(uint64(i+1)).ID || !da.Queued.Equal(put) || string(da.Body) != string(entry(uint64(i+1)).Body) {
			t.Errorf("entry %d delivered as id %q queued %v body %q", i+1, da.Report.ID, da.Queued, da.Body)
		}
	}
	// Entry 1 again, after more than decodedKeep newer ones: decoded anew.
	for seq := uint64(4); seq < 4+decodedKeep; seq++ {
		if err := sinks[0].Deliver(ctx, entry(seq)); err != nil {
			t.Fatal(err)
		}
	}
	if err := sinks[1].Deliver(ctx, entry(1)); err != nil {
		t.Fatal(err)
	}
	late := b.got[len(b.got)-1]
	if late.Report == a.got[0].Report || late.Report.ID != "boot/1" {
		t.Errorf("a sink far behind got %p (id %q), want its own decoding of boot/1", late.Report, late.Report.ID)
	}
	if err := sinks[0].Deliver(ctx, outbox.Entry{Seq: 99, ID: "x", Body: []byte("{}")}); err == nil {
		t.Error("an entry without report fields was delivered")
	}
}

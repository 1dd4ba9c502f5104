package sink

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/oomscope/oomscope/outbox"
	"github.com/oomscope/oomscope/report"
)

// ForOutbox makes s one of the outbox's sinks: each stored entry is decoded
// back into the report and published with the time it entered the outbox
// and the stored JSON. It is ForOutboxAll(s)[0]; give the sinks of one
// outbox to [ForOutboxAll] instead, so that each entry is decoded once.
func ForOutbox(s Sink) outbox.Sink { return ForOutboxAll(s)[0] }

// ForOutboxAll makes sinks the outbox's sinks, sharing the decoding of the
// entries: an entry is decoded once for all of them while they deliver it
// within a few entries of one another, and a sink that falls further behind
// (down, retrying) decodes its own copy. Every sink gets the same
// [*report.Enriched] value then, which [Delivery] already says sinks must
// not modify.
func ForOutboxAll(sinks ...Sink) []outbox.Sink {
	d := &decoded{}
	out := make([]outbox.Sink, len(sinks))
	for i, s := range sinks {
		out[i] = outboxSink{s: s, dec: d}
	}
	return out
}

type outboxSink struct {
	s   Sink
	dec *decoded
}

func (o outboxSink) Name() string { return o.s.Name() }

func (o outboxSink) Deliver(ctx context.Context, e outbox.Entry) error {
	r, err := o.dec.get(e)
	if err != nil {
		// Retried like any failure, and logged by the outbox: the entry is
		// not dropped silently, though it can only be the daemon's own JSON.
		return err
	}
	return o.s.Publish(ctx, Delivery{Report: r, Queued: e.Put, Body: e.Body})
}

// decodedKeep is how many decoded entries [decoded] keeps: the sinks of
// one outbox deliver the same few entries at about the same time (a storm
// puts 3 at once), so a handful covers them.
const decodedKeep = 8

// decoded is the decoded entries the sinks of one outbox share, the newest
// decodedKeep by Seq.
type decoded struct {
	mu   sync.Mutex
	keep [decodedKeep]decodedEntry
}

type decodedEntry struct {
	seq uint64
	id  string
	r   *report.Enriched
}

// get is e decoded, from the cache or now.
func (d *decoded) get(e outbox.Entry) (*report.Enriched, error) {
	slot := &d.keep[e.Seq%decodedKeep]
	d.mu.Lock()
	if slot.r != nil && slot.seq == e.Seq && slot.id == e.ID {
		r := slot.r
		d.mu.Unlock()
		return r, nil
	}
	d.mu.Unlock()
	// Decoded outside the lock: two sinks asking at once may both decode,
	// which costs what it did before the cache, and blocks neither.
	r := new(report.Enriched)
	if err := json.Unmarshal(e.Body, r); err != nil {
		return nil, fmt.Errorf("outbox entry %d (%s) is not a report: %w", e.Seq, e.ID, err)
	}
	if r.Report == nil {
		return nil, fmt.Errorf("outbox entry %d (%s) is not a report: no report fields", e.Seq, e.ID)
	}
	d.mu.Lock()
	if slot.r == nil || slot.seq <= e.Seq {
		*slot = decodedEntry{seq: e.Seq, id: e.ID, r: r}
	}
	d.mu.Unlock()
	return r, nil
}

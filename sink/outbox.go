package sink

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/oomscope/oomscope/outbox"
	"github.com/oomscope/oomscope/report"
)

// ForOutbox makes s one of the outbox's sinks: each stored entry is decoded
// back into the report and published with the time it entered the outbox.
func ForOutbox(s Sink) outbox.Sink { return outboxSink{s} }

type outboxSink struct{ s Sink }

func (o outboxSink) Name() string { return o.s.Name() }

func (o outboxSink) Deliver(ctx context.Context, e outbox.Entry) error {
	var r report.Enriched
	if err := json.Unmarshal(e.Body, &r); err != nil {
		// Retried like any failure, and logged by the outbox: the entry is
		// not dropped silently, though it can only be the daemon's own JSON.
		return fmt.Errorf("outbox entry %d (%s) is not a report: %w", e.Seq, e.ID, err)
	}
	if r.Report == nil {
		return fmt.Errorf("outbox entry %d (%s) is not a report: no report fields", e.Seq, e.ID)
	}
	return o.s.Publish(ctx, Delivery{Report: &r, Queued: e.Put})
}

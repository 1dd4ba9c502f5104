// Package sink publishes enriched OOM reports: to a local post-mortem
// archive (one JSON file per report), to a stream of JSON lines, and to
// whatever else implements [Sink]. Publishing is idempotent by report id: a
// sink that already holds a report reports success without writing it again,
// so a daemon that resumes slightly before where it stopped never publishes
// a kill twice.
package sink

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/oomscope/oomscope/report"
)

// Delivery is one report handed to a sink.
type Delivery struct {
	// Report is the enriched report, raw kernel lines included. Sinks must
	// not modify it: the same report goes to every sink.
	Report *report.Enriched
	// Queued is when the report entered the outbox: a sink that
	// deduplicates within a time window (NATS JetStream) knows from it
	// whether an earlier attempt may have fallen out of that window.
	Queued time.Time
	// Body, when not nil, is Report's JSON as stored in the outbox: what
	// json.Marshal(Report) gave when the report was stored. A sink that
	// publishes the JSON may send Body as it is instead of encoding Report
	// again. Sinks must not modify it. Nil when the report did not come
	// through the outbox.
	Body []byte
}

// Sink publishes reports.
type Sink interface {
	// Name identifies the sink in logs, metrics and the outbox's cursors.
	Name() string
	// Publish delivers d.Report durably, or returns an error (the caller
	// retries). Publishing a report whose id was already delivered is a
	// no-op.
	Publish(ctx context.Context, d Delivery) error
}

// Multi publishes to every sink in turn and joins their errors.
type Multi []Sink

// Name implements [Sink].
func (m Multi) Name() string { return "multi" }

// Publish implements [Sink]: every sink gets the report even if an earlier
// one failed.
func (m Multi) Publish(ctx context.Context, d Delivery) error {
	var errs []error
	for _, s := range m {
		if err := s.Publish(ctx, d); err != nil {
			errs = append(errs, fmt.Errorf("sink %s: %w", s.Name(), err))
		}
	}
	return errors.Join(errs...)
}

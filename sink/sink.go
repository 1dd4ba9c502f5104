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

	"github.com/oomscope/oomscope/report"
)

// Sink publishes reports.
type Sink interface {
	// Name identifies the sink in logs and errors.
	Name() string
	// Publish delivers r durably, or returns an error (the caller retries).
	// Publishing a report whose id was already delivered is a no-op.
	Publish(ctx context.Context, r *report.Enriched) error
}

// Multi publishes to every sink in turn and joins their errors.
type Multi []Sink

// Name implements [Sink].
func (m Multi) Name() string { return "multi" }

// Publish implements [Sink]: every sink gets the report even if an earlier
// one failed.
func (m Multi) Publish(ctx context.Context, r *report.Enriched) error {
	var errs []error
	for _, s := range m {
		if err := s.Publish(ctx, r); err != nil {
			errs = append(errs, fmt.Errorf("sink %s: %w", s.Name(), err))
		}
	}
	return errors.Join(errs...)
}

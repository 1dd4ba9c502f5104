package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/oomscope/oomscope/oomparse"
	"github.com/oomscope/oomscope/report"
)

// Queue takes published reports: the durable outbox. Put returns once the
// report is stored (for the outbox: fsync'd); a report whose id it already
// holds or delivered is not stored again (added false).
type Queue interface {
	Put(id string, body []byte) (added bool, err error)
}

// ReplayConfig configures [Replay].
type ReplayConfig struct {
	// Queue receives every report. Required.
	Queue Queue
	// Enricher enriches reports; nil publishes them as parsed.
	Enricher Enricher
	// ParserOptions are passed to the parser.
	ParserOptions []oomparse.Option
	// Logger receives the replay's logs.
	Logger zerolog.Logger
	// RetryMax caps the backoff between attempts to store a report; zero
	// means 30s.
	RetryMax time.Duration
	// Metrics, if set, counts the reports.
	Metrics *Metrics
}

// Replay reads a saved kernel log to its end and sends every report in it
// through enrichment to the queue, as the live daemon does. It returns
// the number of reports read and how many of them were new to the queue
// (a log replayed twice stores nothing the second time: report ids of
// saved logs are a hash of their lines).
func Replay(ctx context.Context, src oomparse.RecordSource, cfg ReplayConfig) (read, added int, err error) {
	if cfg.Queue == nil {
		return 0, 0, errors.New("daemon: replay without a queue")
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = 30 * time.Second
	}
	d, err := oomparse.NewDemux(cfg.ParserOptions...)
	if err != nil {
		return 0, 0, fmt.Errorf("daemon: %w", err)
	}
	var reports []report.Report
	put := func() error {
		for i := range reports {
			rep := new(report.Report)
			*rep = reports[i]
			n, err := store(ctx, cfg.Queue, cfg.Enricher, rep, cfg.Logger, cfg.RetryMax, cfg.Metrics, false)
			if err != nil {
				return err
			}
			read++
			added += n
		}
		return nil
	}
	for src.Scan() {
		if ctx.Err() != nil {
			return read, added, ctx.Err()
		}
		if reports, err = d.Feed(reports[:0], src.Record()); err != nil {
			return read, added, fmt.Errorf("daemon: replay: %w", err)
		}
		if err := put(); err != nil {
			return read, added, err
		}
	}
	reports = d.Flush(reports[:0])
	if err := put(); err != nil {
		return read, added, err
	}
	if err := src.Err(); err != nil {
		return read, added, fmt.Errorf("daemon: replay: reading records: %w", err)
	}
	return read, added, nil
}

// store enriches rep and puts it into q, retrying with backoff until it is
// stored or ctx is done. It returns 1 when the report was new to q.
func store(ctx context.Context, q Queue, e Enricher, rep *report.Report, log zerolog.Logger, retryMax time.Duration, m *Metrics, live bool) (int, error) {
	var er *report.Enriched
	began := time.Now()
	if e != nil {
		er = e.Enrich(ctx, rep)
		if err := ctx.Err(); err != nil {
			return 0, err
		}
	} else {
		er = &report.Enriched{Report: rep}
	}
	enrichTime := time.Since(began)
	body, err := marshalReport(er)
	if err != nil {
		return 0, err
	}
	backoff := 500 * time.Millisecond
	for {
		added, err := q.Put(rep.ID, body)
		if err == nil {
			logPublished(log, rep, added)
			if !added {
				return 0, nil
			}
			var lat time.Duration
			haveLat := live && rep.Last.Wall != nil
			if haveLat {
				lat = time.Since(*rep.Last.Wall)
			}
			m.stored(er, enrichTime, lat, haveLat)
			return 1, nil
		}
		log.Error().Err(err).Str("id", rep.ID).Dur("retry_in", backoff).Msg("storing report in the outbox failed")
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, retryMax)
	}
}

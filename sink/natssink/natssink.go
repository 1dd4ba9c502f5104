// Package natssink publishes enriched OOM reports to a NATS JetStream
// stream.
//
// Each report is one message: its JSON (the [report.Enriched] value, raw
// kernel lines included) on the subject [Subject] gives,
// oomscope.v1.kill.<node>.<namespace>.<pod>, with the headers
//
//	Nats-Msg-Id:     the report id (JetStream's duplicate detection)
//	Oomscope-Node:   the node (report Host)
//	Oomscope-Schema: oomscope.report/v1
//
// and, when the report with its raw lines was larger than the server takes,
// Oomscope-Raw-Omitted: true (the payload then has no raw lines; the local
// archive keeps them). [Sink.Publish] returns nil only when the server
// acknowledged the message as stored (or as a duplicate of one stored);
// nothing relies on the client buffering while disconnected, which is
// turned off: a publish then fails at once and the outbox retries it.
//
// # Deduplication beyond the duplicate window
//
// JetStream drops a message whose Nats-Msg-Id it saw within the stream's
// duplicate window (2 minutes by default). The outbox that calls Publish
// may retry a report much later than that: after a crash between a
// successful publish and the outbox recording it, or after the server was
// unreachable for hours while an earlier attempt's ack was lost. So when a
// delivery is older than the window minus [Config.DedupeMargin] (measured
// from [sink.Delivery.Queued]; the window is read from the stream when the
// sink starts), Publish first looks the id up: it creates a short-lived
// consumer filtered to the report's own subject, starting at Queued minus
// [Config.ClockSkew], delivering headers only, reads as many messages as
// the consumer said were pending and compares each Nats-Msg-Id with the
// report's. Found: Publish returns nil without publishing. Not found: it
// publishes with the Msg-Id as usual. The lookup reads one subject (one pod
// on one node) over a bounded time, so it is cheap; it can only find what
// the stream still holds, so the stream's max age must outlast the
// outbox's retries. A delivery with a zero Queued time is looked up from
// the start of the stream.
//
// The sink is safe for concurrent use.
package natssink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/oomscope/oomscope/report"
	"github.com/oomscope/oomscope/sink"
)

// Headers of a report message besides [jetstream.MsgIDHeader]: the node
// and the schema on every message, RawOmitted ("true") on one whose raw
// lines were left out.
const (
	HeaderNode       = "Oomscope-Node"
	HeaderSchema     = "Oomscope-Schema"
	HeaderRawOmitted = "Oomscope-Raw-Omitted"
)

// lookupBatch is how many headers one fetch of a lookup asks for.
const lookupBatch = 256

// Publish outcomes, the values of the outcome label of
// oomscope_nats_publishes_total.
const (
	OutcomeStored    = "stored"    // the server stored the message
	OutcomeDuplicate = "duplicate" // the server had it within its duplicate window
	OutcomeFound     = "found"     // the lookup found it: not published again
)

// Sink publishes reports to JetStream. Make it with [New].
type Sink struct {
	cfg     Config
	log     zerolog.Logger
	nc      *nats.Conn
	js      jetstream.JetStream
	stream  jetstream.Stream
	window  time.Duration // the stream's duplicate window
	url     string        // redacted server list, for messages
	metrics []prometheus.Collector
	pubs    *prometheus.CounterVec
	closing sync.Once
	closed  chan struct{} // closed by the client once the connection is closed
}

var _ sink.Sink = (*Sink)(nil)

// New connects to the servers of cfg and checks the stream, creating or
// updating it when cfg.CreateStream is set. It waits up to cfg.ConnectWait
// (and no longer than ctx) for a first connection. Once it returned, the
// connection is kept up for ever: the client reconnects with backoff
// until [Sink.Close].
func New(ctx context.Context, cfg Config) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Sink{cfg: cfg, log: cfg.Logger.With().Str("sink", "nats").Logger(), url: redactURLs(cfg.URLs), closed: make(chan struct{})}
	var lastErr errBox
	opts, err := cfg.options(func(o *nats.Options) error {
		o.DisconnectedErrCB = func(nc *nats.Conn, err error) {
			if err != nil { // nil: Close
				s.log.Warn().Err(err).Msg("NATS disconnected")
			}
		}
		o.ReconnectedCB = func(nc *nats.Conn) {
			s.log.Info().Str("url", nc.ConnectedUrlRedacted()).Uint64("reconnects", nc.Stats().Reconnects).Msg("NATS reconnected")
		}
		o.ReconnectErrCB = func(nc *nats.Conn, err error) {
			lastErr.set(err)
			s.log.Debug().Err(err).Msg("NATS reconnect attempt failed")
		}
		o.ClosedCB = func(nc *nats.Conn) {
			s.log.Info().Msg("NATS connection closed")
			close(s.closed)
		}
		o.AsyncErrorCB = func(nc *nats.Conn, sub *nats.Subscription, err error) {
			lastErr.set(err)
			s.log.Error().Err(err).Msg("NATS error")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(cfg.URLs, opts...)
	if err != nil {
		return nil, fmt.Errorf("natssink: connecting to %s: %w", s.url, err)
	}
	s.nc = nc
	if err := s.start(ctx, &lastErr); err != nil {
		s.closeConn()
		return nil, err
	}
	if err := s.register(); err != nil {
		s.closeConn()
		return nil, err
	}
	return s, nil
}

// start waits for the connection and checks the stream.
func (s *Sink) start(ctx context.Context, lastErr *errBox) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ConnectWait)
	defer cancel()
	for !s.nc.IsConnected() {
		select {
		case <-ctx.Done():
			msg := fmt.Sprintf("natssink: no connection to %s within %v", s.url, s.cfg.ConnectWait)
			if err := lastErr.get(); err != nil {
				return fmt.Errorf("%s: %w", msg, err)
			}
			return fmt.Errorf("%s: %w", msg, context.Cause(ctx))
		case <-time.After(20 * time.Millisecond):
		}
	}
	s.log.Info().Str("url", s.nc.ConnectedUrlRedacted()).Str("server", s.nc.ConnectedServerName()).Msg("NATS connected")
	js, err := jetstream.New(s.nc)
	if err != nil {
		return fmt.Errorf("natssink: JetStream on %s: %w", s.url, err)
	}
	s.js = js
	if s.cfg.CreateStream {
		want := StreamConfig(s.cfg.Stream, s.cfg.DuplicateWindow, s.cfg.MaxAge, s.cfg.Replicas)
		if _, err := EnsureStream(ctx, js, want); err != nil {
			return fmt.Errorf("%w (on %s%s)", err, s.url, lastErr.suffix())
		}
	}
	st, err := js.Stream(ctx, s.cfg.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("natssink: stream %s not found on %s: create it or pass --nats-create-stream", s.cfg.Stream, s.url)
	}
	if err != nil {
		return fmt.Errorf("natssink: looking up stream %s on %s: %w%s", s.cfg.Stream, s.url, err, lastErr.suffix())
	}
	info := st.CachedInfo()
	if !subjectsCover(info.Config.Subjects) {
		return fmt.Errorf("natssink: stream %s on %s captures %q, not %s", s.cfg.Stream, s.url, info.Config.Subjects, StreamSubjects)
	}
	s.stream, s.window = st, info.Config.Duplicates
	s.log.Info().Str("stream", s.cfg.Stream).Dur("duplicate_window", s.window).Uint64("messages", info.State.Msgs).Msg("NATS stream ready")
	return nil
}

// subjectsCover reports whether a stream with these subjects captures
// every report subject.
func subjectsCover(subjects []string) bool {
	for _, s := range subjects {
		switch s {
		case ">", "oomscope.>", StreamSubjects, "oomscope.v1.kill.>", "oomscope.*.kill.>", "oomscope.*.>":
			return true
		}
	}
	return false
}

func (s *Sink) register() error {
	if s.cfg.Registerer == nil {
		return nil
	}
	nc := s.nc
	s.pubs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "oomscope_nats_publishes_total",
		Help: "Reports the NATS sink delivered, by outcome: stored, duplicate (the server's duplicate window caught a retry), found (the lookup beyond the window found it).",
	}, []string{"outcome"})
	for _, o := range []string{OutcomeStored, OutcomeDuplicate, OutcomeFound} {
		s.pubs.WithLabelValues(o)
	}
	cs := []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "oomscope_nats_connected",
			Help: "1 when the NATS sink is connected to a server, 0 otherwise.",
		}, func() float64 {
			if nc.IsConnected() {
				return 1
			}
			return 0
		}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "oomscope_nats_reconnects_total",
			Help: "Reconnections of the NATS sink to a server.",
		}, func() float64 { return float64(nc.Stats().Reconnects) }),
		s.pubs,
	}
	for i, c := range cs {
		if err := s.cfg.Registerer.Register(c); err != nil {
			for _, r := range cs[:i] {
				s.cfg.Registerer.Unregister(r)
			}
			return fmt.Errorf("natssink: registering metrics: %w", err)
		}
	}
	s.metrics = cs
	return nil
}

// Name implements [sink.Sink].
func (s *Sink) Name() string { return "nats" }

// DuplicateWindow returns the stream's duplicate window as read at start.
func (s *Sink) DuplicateWindow() time.Duration { return s.window }

// Publish implements [sink.Sink]: it returns nil once the server
// acknowledged the report as stored, now or by an earlier attempt. Each
// call is bounded by ctx and [Config.PublishTimeout].
func (s *Sink) Publish(ctx context.Context, d sink.Delivery) error {
	r := d.Report
	if r == nil || r.Report == nil {
		return errors.New("natssink: nil report")
	}
	if r.ID == "" {
		return errors.New("natssink: report has no id")
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.PublishTimeout)
	defer cancel()
	msg, err := s.message(r, d.Body)
	if err != nil {
		return err
	}
	id := msg.Header.Get(jetstream.MsgIDHeader)
	if s.needsLookup(d.Queued) {
		found, err := s.lookup(ctx, msg.Subject, id, d.Queued)
		if err != nil {
			return fmt.Errorf("natssink: looking up report %s on %s: %w", r.ID, msg.Subject, err)
		}
		if found {
			s.count(OutcomeFound)
			return nil
		}
	}
	ack, err := s.js.PublishMsg(ctx, msg, jetstream.WithExpectStream(s.cfg.Stream))
	if err != nil {
		return fmt.Errorf("natssink: publishing report %s to %s: %w", r.ID, msg.Subject, err)
	}
	if ack.Duplicate {
		s.count(OutcomeDuplicate)
	} else {
		s.count(OutcomeStored)
	}
	return nil
}

// message builds the message for r: its JSON (stored, the outbox's body,
// when not nil), without the raw lines when they would make it larger than
// the server takes.
func (s *Sink) message(r *report.Enriched, stored []byte) (*nats.Msg, error) {
	data := stored
	if data == nil {
		var err error
		if data, err = json.Marshal(r); err != nil {
			return nil, fmt.Errorf("natssink: encoding report %s: %w", r.ID, err)
		}
	}
	h := nats.Header{}
	h.Set(jetstream.MsgIDHeader, msgID(r.ID))
	h.Set(HeaderNode, HeaderValue(nodeOf(r)))
	h.Set(HeaderSchema, HeaderValue(r.Schema))
	if limit := s.nc.MaxPayload() - 1024; limit > 0 && int64(len(data)) > limit && len(r.Raw) > 0 {
		var err error
		if data, err = json.Marshal(r.WithoutRaw()); err != nil {
			return nil, fmt.Errorf("natssink: encoding report %s: %w", r.ID, err)
		}
		h.Set(HeaderRawOmitted, "true")
	}
	return &nats.Msg{Subject: Subject(r), Header: h, Data: data}, nil
}

func nodeOf(r *report.Enriched) string {
	if r.Host == "" && r.Pod != nil {
		return r.Pod.Node
	}
	return r.Host
}

// needsLookup reports whether a delivery queued at q may be older than the
// server's memory of its first attempt.
func (s *Sink) needsLookup(q time.Time) bool {
	return q.IsZero() || time.Since(q) >= s.window-s.cfg.DedupeMargin
}

// lookup reports whether the stream holds a message with Msg-Id id on
// subject, stored at or after queued minus the clock skew margin.
func (s *Sink) lookup(ctx context.Context, subject, id string, queued time.Time) (bool, error) {
	cc := jetstream.ConsumerConfig{
		FilterSubject:     subject,
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		AckPolicy:         jetstream.AckNonePolicy,
		HeadersOnly:       true,
		MemoryStorage:     true,
		InactiveThreshold: time.Minute,
	}
	if !queued.IsZero() {
		start := queued.Add(-s.cfg.ClockSkew)
		cc.DeliverPolicy, cc.OptStartTime = jetstream.DeliverByStartTimePolicy, &start
	}
	cons, err := s.stream.CreateConsumer(ctx, cc)
	if err != nil {
		return false, fmt.Errorf("creating lookup consumer: %w", err)
	}
	defer func() {
		// Best effort: the server removes it after InactiveThreshold anyway.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = s.stream.DeleteConsumer(dctx, cons.CachedInfo().Name)
	}()
	pending := cons.CachedInfo().NumPending
	for pending > 0 {
		// Leave half of the attempt's time for the publish.
		wait := s.cfg.PublishTimeout / 2
		if dl, ok := ctx.Deadline(); ok {
			wait = time.Until(dl) / 2
		}
		if wait < time.Millisecond {
			return false, context.DeadlineExceeded
		}
		batch, err := cons.Fetch(int(min(pending, lookupBatch)), jetstream.FetchMaxWait(wait))
		if err != nil {
			return false, fmt.Errorf("fetching: %w", err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			if m.Headers().Get(jetstream.MsgIDHeader) == id {
				return true, nil
			}
			md, err := m.Metadata()
			if err != nil {
				return false, fmt.Errorf("message metadata: %w", err)
			}
			if md.NumPending == 0 {
				return false, nil
			}
			pending = md.NumPending
		}
		if err := batch.Error(); err != nil {
			return false, fmt.Errorf("fetching: %w", err)
		}
		if got == 0 {
			// Not "not found": a slow server must not cause a second copy.
			// (Messages removed since the consumer counted them, by max age
			// or limits, are not counted by the next attempt's consumer.)
			return false, fmt.Errorf("%d messages pending, none delivered within %v", pending, wait.Round(time.Millisecond))
		}
	}
	return false, nil
}

func (s *Sink) count(outcome string) {
	if s.pubs != nil {
		s.pubs.WithLabelValues(outcome).Inc()
	}
}

// Close closes the connection (nothing is buffered, so nothing is lost) and
// unregisters the metrics. It is safe to call more than once.
func (s *Sink) Close() {
	s.closing.Do(func() {
		s.closeConn()
		for _, c := range s.metrics {
			s.cfg.Registerer.Unregister(c)
		}
	})
}

// closeConn closes the connection and waits for the client's ClosedCB,
// which it calls on a goroutine of its own: nothing is logged after it.
func (s *Sink) closeConn() {
	s.nc.Close()
	select {
	case <-s.closed:
	case <-time.After(5 * time.Second):
	}
}

// redactURLs returns the server list with any user information replaced.
func redactURLs(urls string) string {
	parts := strings.Split(urls, ",")
	for i, u := range parts {
		u = strings.TrimSpace(u)
		if scheme, rest, ok := strings.Cut(u, "://"); ok {
			if at := strings.LastIndex(rest, "@"); at >= 0 {
				u = scheme + "://[redacted]@" + rest[at+1:]
			}
		} else if at := strings.LastIndex(u, "@"); at >= 0 {
			u = "[redacted]@" + u[at+1:]
		}
		parts[i] = u
	}
	return strings.Join(parts, ",")
}

// errBox holds the latest connection error, for New's message.
type errBox struct {
	mu  sync.Mutex
	err error
}

func (b *errBox) set(err error) {
	b.mu.Lock()
	b.err = err
	b.mu.Unlock()
}

// suffix is "; last server error: <err>" when there is one, for a time-out
// whose cause (a permissions violation) the server told asynchronously.
func (b *errBox) suffix() string {
	if err := b.get(); err != nil {
		return "; last server error: " + err.Error()
	}
	return ""
}

func (b *errBox) get() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

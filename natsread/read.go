package natsread

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/oomscope/oomscope/sink/natssink"
)

// inactiveThreshold is how long the server keeps a reader's consumer after
// the reader stopped asking for messages (it went away without deleting
// it).
const inactiveThreshold = time.Minute

// pullBatch is how many messages the client keeps buffered ahead.
const pullBatch = 512

// Query says which messages to read.
type Query struct {
	// Stream is the stream (default [natssink.StreamName]).
	Stream string
	// Filter selects the subjects (see [Filter.Subject]).
	Filter Filter
	// Since is the first time wanted, compared with the time the server
	// stored each message. Zero: [Read] starts at the stream's first
	// message, [Follow] delivers only messages stored after it started.
	Since time.Time
}

// Message is one message of the stream.
type Message struct {
	// Subject is the message's subject.
	Subject string
	// Seq is its stream sequence number.
	Seq uint64
	// Time is when the server stored it.
	Time time.Time
	// MsgID is its Nats-Msg-Id header (the report id, as a header value).
	MsgID string
	// Data is the payload: the report as JSON (see [Decode]).
	Data []byte
}

func (q Query) stream() string {
	if q.Stream == "" {
		return natssink.StreamName
	}
	return q.Stream
}

// consumer looks the stream up and creates an ordered consumer for q,
// delivering from q.Since or, with since zero, by policy.
func consumer(ctx context.Context, js jetstream.JetStream, q Query, policy jetstream.DeliverPolicy) (jetstream.Stream, jetstream.Consumer, error) {
	name := q.stream()
	st, err := js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil, fmt.Errorf("natsread: stream %s not found (no oomscope daemon has published to this server yet?)", name)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("natsread: looking up stream %s: %w", name, err)
	}
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{q.Filter.Subject()},
		DeliverPolicy:     policy,
		InactiveThreshold: inactiveThreshold,
	}
	if !q.Since.IsZero() {
		since := q.Since
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
	}
	cons, err := st.OrderedConsumer(ctx, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("natsread: creating a consumer of stream %s for %s: %w", name, cfg.FilterSubjects[0], err)
	}
	return st, cons, nil
}

// toMessage converts a delivered message.
func toMessage(m jetstream.Msg) (Message, *jetstream.MsgMetadata, error) {
	md, err := m.Metadata()
	if err != nil {
		return Message{}, nil, fmt.Errorf("natsread: message metadata: %w", err)
	}
	return Message{
		Subject: m.Subject(),
		Seq:     md.Sequence.Stream,
		Time:    md.Timestamp,
		MsgID:   m.Headers().Get(jetstream.MsgIDHeader),
		Data:    m.Data(),
	}, md, nil
}

// Read calls fn for each message of q, in stream order, from q.Since to
// the end of the stream as it was when Read started (messages stored while
// it reads are left out), and returns how many it delivered. It stops at
// fn's first error and returns it, and at ctx's end with ctx's error.
func Read(ctx context.Context, js jetstream.JetStream, q Query, fn func(Message) error) (int, error) {
	st, cons, err := consumer(ctx, js, q, jetstream.DeliverAllPolicy)
	if err != nil {
		return 0, err
	}
	last := st.CachedInfo().State.LastSeq
	info := cons.CachedInfo()
	if info == nil || info.NumPending == 0 {
		return 0, nil
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(pullBatch))
	if err != nil {
		return 0, fmt.Errorf("natsread: reading stream %s: %w", q.stream(), err)
	}
	defer it.Stop()
	n := 0
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return n, context.Cause(ctx)
			}
			return n, fmt.Errorf("natsread: reading stream %s after %d messages: %w", q.stream(), n, err)
		}
		msg, md, err := toMessage(m)
		if err != nil {
			return n, err
		}
		if msg.Seq > last {
			return n, nil
		}
		n++
		if err := fn(msg); err != nil {
			return n, err
		}
		if md.NumPending == 0 || msg.Seq == last {
			return n, nil
		}
	}
}

// Follow calls fn for each message of q as the server delivers it: from
// q.Since when set, otherwise only the messages stored after the consumer
// was created, at which point ready (when not nil) is called. It runs
// until ctx ends, then returns nil, or until fn fails, then returns fn's
// error. After a reconnect the ordered consumer is recreated after the
// last message delivered, so nothing is skipped or delivered twice while
// the stream keeps the messages.
func Follow(ctx context.Context, js jetstream.JetStream, q Query, ready func(), fn func(Message) error) error {
	_, cons, err := consumer(ctx, js, q, jetstream.DeliverNewPolicy)
	if err != nil {
		return err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(pullBatch))
	if err != nil {
		return fmt.Errorf("natsread: following stream %s: %w", q.stream(), err)
	}
	defer it.Stop()
	if ready != nil {
		ready()
	}
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("natsread: following stream %s: %w", q.stream(), err)
		}
		msg, _, err := toMessage(m)
		if err != nil {
			return err
		}
		if err := fn(msg); err != nil {
			return err
		}
	}
}

package outbox

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"
	bolt "go.etcd.io/bbolt"
)

// fastRetry is a Config whose retries are quick enough for tests.
func fastRetry(cfg Config) Config {
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff = time.Millisecond
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = 20 * time.Millisecond
	}
	return cfg
}

// openTest opens an outbox in a fresh temp dir, closed at the end of the test.
func openTest(t testing.TB, cfg Config) *Outbox {
	t.Helper()
	return openAt(t, filepath.Join(t.TempDir(), "outbox.db"), cfg)
}

func openAt(t testing.TB, path string, cfg Config) *Outbox {
	t.Helper()
	o, err := Open(path, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := o.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return o
}

// startRun runs o.Run in the background; the returned stop cancels it and
// waits for it (also done at the end of the test).
func startRun(t testing.TB, o *Outbox, sinks ...Sink) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx, sinks...) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("Run did not return 30s after its context was cancelled")
			}
		})
	}
	t.Cleanup(stop)
	// Wait until Run has taken the sinks, so that what the test does next
	// (Puts, drops) sees them.
	waitFor(t, 10*time.Second, "Run to start", func() bool {
		o.mu.Lock()
		defer o.mu.Unlock()
		return o.active != nil
	})
	return stop
}

func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func put(t testing.TB, o *Outbox, id string, body string) {
	t.Helper()
	added, err := o.Put(id, []byte(body))
	if err != nil {
		t.Fatalf("Put(%s): %v", id, err)
	}
	if !added {
		t.Fatalf("Put(%s): added=false, want true", id)
	}
}

// waitConfirmed waits until sink confirmed everything held. (A recSink
// records an entry just before Deliver returns, so its count alone can run
// ahead of the confirmation.)
func waitConfirmed(t testing.TB, o *Outbox, sink string) {
	t.Helper()
	waitFor(t, 30*time.Second, sink+" to confirm everything", func() bool { n, _ := o.Pending(sink); return n == 0 })
}

func drain(t testing.TB, o *Outbox) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := o.WaitDrained(ctx); err != nil {
		t.Fatalf("WaitDrained: %v", err)
	}
}

// recSink records what it is given; fail, when set, decides per attempt
// whether the attempt fails.
type recSink struct {
	name string
	fail func(e Entry, attempt int) error

	mu       sync.Mutex
	got      []Entry
	attempts map[uint64]int
}

func newRec(name string) *recSink { return &recSink{name: name, attempts: map[uint64]int{}} }

func (s *recSink) Name() string { return s.name }

func (s *recSink) Deliver(ctx context.Context, e Entry) error {
	s.mu.Lock()
	n := s.attempts[e.Seq]
	s.attempts[e.Seq] = n + 1
	s.mu.Unlock()
	if s.fail != nil {
		if err := s.fail(e, n); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.got = append(s.got, e)
	s.mu.Unlock()
	return nil
}

func (s *recSink) entries() []Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Entry(nil), s.got...)
}

func (s *recSink) ids() []string {
	var out []string
	for _, e := range s.entries() {
		out = append(out, e.ID)
	}
	return out
}

func (s *recSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got)
}

// stuckSink blocks in Deliver until the attempt's context is done, like a
// remote that accepts the connection and never answers.
type stuckSink struct {
	name  string
	calls chan uint64
}

func (s *stuckSink) Name() string { return s.name }

func (s *stuckSink) Deliver(ctx context.Context, e Entry) error {
	select {
	case s.calls <- e.Seq:
	default:
	}
	<-ctx.Done()
	return ctx.Err()
}

// failSink fails every attempt.
type failSink struct{ name string }

func (s failSink) Name() string { return s.name }
func (s failSink) Deliver(context.Context, Entry) error {
	return fmt.Errorf("%s: connection refused", s.name)
}

// fakeClock is a Config.Now that the test moves.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// logBuf is a goroutine-safe zerolog destination that the test reads back.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuf) logger() zerolog.Logger { return zerolog.New(b) }

// lines are the log lines as JSON objects, those with the given message
// prefix.
func (b *logBuf) lines(t testing.TB, level string) []map[string]any {
	t.Helper()
	b.mu.Lock()
	data := append([]byte(nil), b.buf.Bytes()...)
	b.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if m["level"] == level {
			out = append(out, m)
		}
	}
	return out
}

// drops are the drop lines: "sink/id/seq/reason".
func (b *logBuf) drops(t testing.TB) []string {
	var out []string
	for _, m := range b.lines(t, "error") {
		if m["reason"] == nil {
			continue
		}
		out = append(out, fmt.Sprintf("%v/%v/%v/%v", m["sink"], m["id"], m["seq"], m["reason"]))
	}
	return out
}

// metric is the value of the series name{labels} in reg; ok is false when
// it does not exist.
func metric(t testing.TB, reg *prometheus.Registry, name string, labels ...string) (v float64, ok bool) {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			want := map[string]string{}
			for i := 0; i+1 < len(labels); i += 2 {
				want[labels[i]] = labels[i+1]
			}
			if len(m.GetLabel()) != len(want) {
				continue
			}
			for _, lp := range m.GetLabel() {
				if want[lp.GetName()] != lp.GetValue() {
					continue series
				}
			}
			return value(m), true
		}
	}
	return 0, false
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return 0
}

func mustMetric(t testing.TB, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	v, ok := metric(t, reg, name, labels...)
	if !ok {
		t.Fatalf("metric %s%v not found", name, labels)
	}
	return v
}

// heldIDs lists the ids held, in seq order, and checks the store's invariants:
// the entries are consecutive, the bytes counter matches, every held id
// maps to its seq, and bbolt's own consistency check passes.
func heldIDs(t testing.TB, o *Outbox) []string {
	t.Helper()
	var ids []string
	// An Update (rolled back): bbolt's check reads the freelist, which only
	// the writer may do while other transactions run.
	errRollback := errors.New("rollback")
	err := o.db.Update(func(tx *bolt.Tx) error {
		s := open(tx)
		m := s.readMeta()
		var prev, bytes uint64
		if err := s.entries.ForEach(func(k, v []byte) error {
			seq := be(k)
			if prev != 0 && seq != prev+1 {
				return fmt.Errorf("entries not consecutive: %d after %d", seq, prev)
			}
			prev = seq
			h, err := decodeHeader(seq, v)
			if err != nil {
				return err
			}
			if got := be(s.ids.Get([]byte(h.id))); got != seq {
				return fmt.Errorf("ids[%s] = %d, want %d", h.id, got, seq)
			}
			bytes += uint64(h.bodyLen)
			ids = append(ids, h.id)
			return nil
		}); err != nil {
			return err
		}
		if prev != 0 && prev != m.seq {
			return fmt.Errorf("last entry %d, meta seq %d", prev, m.seq)
		}
		if bytes != m.bytes {
			return fmt.Errorf("bodies held %d bytes, meta says %d", bytes, m.bytes)
		}
		if n := uint64(s.gone.Stats().KeyN); n != m.gone {
			return fmt.Errorf("gone has %d keys, meta says %d", n, m.gone)
		}
		var errs []error
		for err := range tx.Check() { // drain it all: the checker reads the tx
			errs = append(errs, err)
		}
		if len(errs) > 0 {
			return fmt.Errorf("bbolt check: %w", errors.Join(errs...))
		}
		return errRollback
	})
	if err != nil && err != errRollback {
		t.Fatalf("store: %v", err)
	}
	return ids
}

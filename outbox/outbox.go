package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Entry is one report held in the outbox.
type Entry struct {
	// Seq is the outbox sequence number: strictly increasing in Put order,
	// never reused, also across restarts.
	Seq uint64
	// ID is the report id, the dedupe key.
	ID string
	// Put is when the entry entered the outbox (Config.Now at Put).
	Put time.Time
	// Body is the report (JSON), a copy the sink may keep.
	Body []byte
}

// Sink is one destination of the entries.
type Sink interface {
	// Name identifies the sink; it must be stable across restarts, as it is
	// the key of the sink's cursor in the store.
	Name() string
	// Deliver hands e to the sink. It returns nil only once the sink durably
	// has e; any error makes the outbox retry the same entry after a backoff.
	// It must return soon after ctx is done (each attempt has its own
	// Config.DeliverTimeout deadline, and Run waits for Deliver to return).
	// Deliver may be called again for an entry it already confirmed (see the
	// package doc): it should deduplicate on e.ID. A panic in Deliver counts
	// as a failed attempt.
	Deliver(ctx context.Context, e Entry) error
}

// Config configures an [Outbox]. The zero value is usable: every field has a
// default.
type Config struct {
	// MaxBytes bounds the sum of the bodies held; when a Put would exceed
	// it the oldest entries are dropped. Default (0 or less) 256 MiB.
	MaxBytes int64
	// MaxAge: entries this old are dropped for the sinks that have not
	// confirmed them. Default (0) 7 days; less than 0 disables the bound.
	MaxAge time.Duration
	// MinBackoff and MaxBackoff bound the per-sink retry backoff: attempt n
	// waits a random time in [0, min(MaxBackoff, MinBackoff*2^n)) ("full
	// jitter"). A sink is retried forever. Defaults (0 or less) 500ms and
	// 1min; a MaxBackoff below MinBackoff is raised to it.
	MinBackoff, MaxBackoff time.Duration
	// DeliverTimeout bounds each Deliver attempt. Default (0) 30s; less
	// than 0: no timeout.
	DeliverTimeout time.Duration
	// CommitDelay is how long a sink's confirmation may wait before it is
	// committed to the store (with the removal of the entries every sink
	// confirmed), so that the confirmations of a burst and the next Put
	// share one commit and one fsync instead of a commit each. A crash
	// before that commit makes the sinks get those entries again (at least
	// once, as documented). Default (0) 2s; less than 0: each confirmation
	// is committed at once. While WaitDrained waits, confirmations are
	// committed at once.
	CommitDelay time.Duration
	// RememberIDs is how many ids of removed entries are remembered for
	// dedupe (the oldest are forgotten first). Default (0) 100000; less than
	// 0: none are (only the ids held are deduplicated).
	RememberIDs int
	// LockTimeout is how long Open waits for the file lock held by another
	// process before it fails with ErrLocked. Default (0 or less) 1s.
	LockTimeout time.Duration
	// Logger receives the outbox's log lines (drops at error level, failed
	// deliveries at warn level). The zero value logs nothing.
	Logger zerolog.Logger
	// Registerer, when set, gets the outbox's metrics (see the package doc);
	// Close unregisters them. Nil: no metrics.
	Registerer prometheus.Registerer
	// Now is the clock: the Put time of entries and the MaxAge bound use it.
	// Default time.Now.
	Now func() time.Time
}

// Defaults of [Config].
const (
	DefaultMaxBytes       = 256 << 20
	DefaultMaxAge         = 7 * 24 * time.Hour
	DefaultMinBackoff     = 500 * time.Millisecond
	DefaultMaxBackoff     = time.Minute
	DefaultDeliverTimeout = 30 * time.Second
	DefaultRememberIDs    = 100000
	DefaultCommitDelay    = 2 * time.Second
	DefaultLockTimeout    = time.Second
)

func (c Config) withDefaults() Config {
	if c.MaxBytes <= 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.MaxAge == 0 {
		c.MaxAge = DefaultMaxAge
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = DefaultMinBackoff
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = c.MinBackoff
	}
	if c.DeliverTimeout == 0 {
		c.DeliverTimeout = DefaultDeliverTimeout
	}
	if c.CommitDelay == 0 {
		c.CommitDelay = DefaultCommitDelay
	}
	if c.RememberIDs == 0 {
		c.RememberIDs = DefaultRememberIDs
	}
	if c.LockTimeout <= 0 {
		c.LockTimeout = DefaultLockTimeout
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

var (
	// ErrLocked is returned by Open when another process (another oomscope)
	// holds the file.
	ErrLocked = errors.New("outbox: another oomscope holds the state dir (its outbox file is locked by another process)")
	// ErrTooLarge is returned by Put for a body larger than Config.MaxBytes.
	ErrTooLarge = errors.New("outbox: body larger than MaxBytes")
	// ErrClosed is returned by Put, Run and WaitDrained after Close.
	ErrClosed = errors.New("outbox: closed")
)

// Outbox is the durable queue. Its methods are safe for concurrent use.
type Outbox struct {
	db   *bolt.DB
	path string
	cfg  Config
	log  zerolog.Logger
	met  *metrics // nil: no metrics

	mu      sync.Mutex
	closed  bool
	running bool                  // a Run holds the outbox (from its start to its end)
	active  map[string]*sinkState // the running Run's sinks, nil when none (yet)
	order   []*sinkState          // the same, in Run's order
	last    []string              // the sinks entries are held for: the running or last Run's
	changed chan struct{}         // closed and replaced whenever entries were removed
	kick    chan struct{}         // Put → Run: entries were added (arms the age timer)
	flushc  chan struct{}         // sink goroutine → Run: a cursor moved

	// draining counts the WaitDrained calls waiting: confirmations are
	// then committed at once.
	draining atomic.Int32

	// wakeups counts every time a goroutine of Run woke up from waiting;
	// the tests use it to show that an idle outbox does nothing.
	wakeups atomic.Uint64
}

// sinkState is a running sink. acked and saved are guarded by Outbox.mu.
type sinkState struct {
	sink  Sink
	name  string
	wake  chan struct{} // Put → this sink's goroutine
	acked uint64        // highest seq confirmed (in memory)
	saved uint64        // the cursor as committed to the store
}

// Open opens (creating it if needed) the outbox file at path. The directory
// must exist. It fails with an error wrapping [ErrLocked] within
// Config.LockTimeout when another process has the file open.
func Open(path string, cfg Config) (*Outbox, error) {
	cfg = cfg.withDefaults()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: cfg.LockTimeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s still locked after %v", ErrLocked, path, cfg.LockTimeout)
	}
	if err != nil {
		return nil, fmt.Errorf("outbox: open %s: %w", path, err)
	}
	o := &Outbox{
		db:      db,
		path:    path,
		cfg:     cfg,
		log:     cfg.Logger,
		changed: make(chan struct{}),
		kick:    make(chan struct{}, 1),
		flushc:  make(chan struct{}, 1),
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		switch v := meta.Get(keyFormat); {
		case v == nil:
			if err := meta.Put(keyFormat, u64(formatVersion)); err != nil {
				return err
			}
		case len(v) != 8 || be(v) != formatVersion:
			return fmt.Errorf("unknown format %x (this oomscope writes format %d)", v, formatVersion)
		}
		if v := meta.Get(keySinks); v != nil {
			if err := json.Unmarshal(v, &o.last); err != nil {
				return fmt.Errorf("meta sinks: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("outbox: open %s: %w", path, err)
	}
	if cfg.Registerer != nil {
		if o.met, err = newMetrics(o, cfg.Registerer); err != nil {
			db.Close()
			return nil, fmt.Errorf("outbox: metrics: %w", err)
		}
	}
	return o, nil
}

// Path is the file the outbox is stored in.
func (o *Outbox) Path() string { return o.path }

// errDuplicate rolls back a Put whose id is known: no commit, no fsync.
var errDuplicate = errors.New("duplicate")

// Put adds a report. It returns once the entry is committed and fsync'd;
// a crash after that does not lose it. An id that is held, or is remembered
// as removed (see Config.RememberIDs), is not added again: added is false and
// err nil. Put may drop the oldest entries to stay within Config.MaxBytes and
// Config.MaxAge (logged and counted); a body larger than MaxBytes is refused
// with an error wrapping [ErrTooLarge]. Other errors (a full disk) leave the
// outbox as it was and usable: the report was not added.
func (o *Outbox) Put(id string, body []byte) (added bool, err error) {
	switch {
	case id == "":
		return false, errors.New("outbox: put: empty id")
	case len(id) > bolt.MaxKeySize:
		return false, fmt.Errorf("outbox: put: id of %d bytes, longer than %d", len(id), bolt.MaxKeySize)
	case int64(len(body)) > o.cfg.MaxBytes:
		return false, fmt.Errorf("%w: report %s has %d bytes, MaxBytes is %d; refused, nothing dropped", ErrTooLarge, id, len(body), o.cfg.MaxBytes)
	}
	if o.isClosed() {
		return false, ErrClosed
	}
	now := o.cfg.Now()
	var (
		drops []drop
		m     meta
	)
	// The sinks' confirmations not yet committed go into this commit, so
	// that a storm's Puts and confirmations share their fsyncs.
	dirty, upTo, sinks := o.movedCursors()
	err = o.db.Update(func(tx *bolt.Tx) error {
		s := open(tx)
		if s.ids.Get([]byte(id)) != nil {
			return errDuplicate
		}
		m = s.readMeta()
		if sinks {
			if err := o.writeCursors(s, &m, dirty, upTo); err != nil {
				return err
			}
		}
		var err error
		if drops, err = o.dropAged(s, &m, now); err != nil {
			return err
		}
		need := uint64(len(body))
		more, err := o.removeFront(s, &m, reasonBytes, func(uint64, header) bool {
			return m.bytes+need > uint64(o.cfg.MaxBytes)
		})
		if err != nil {
			return err
		}
		drops = append(drops, more...)
		m.seq++
		if err := s.entries.Put(u64(m.seq), encodeEntry(now, id, body)); err != nil {
			return err
		}
		if err := s.ids.Put([]byte(id), u64(m.seq)); err != nil {
			return err
		}
		m.bytes += need
		return s.writeMeta(m)
	})
	if errors.Is(err, errDuplicate) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("outbox: put %s: %w", id, err)
	}
	o.cursorsSaved(dirty)
	o.afterRemoval(m, drops)
	o.met.put()
	o.notifyPut()
	return true, nil
}

// Pending returns how many entries the named sink has not confirmed, and the
// Put time of the oldest of them (the zero time when n is 0). A sink not
// running is counted from its cursor in the store; a sink unknown to the
// store from the oldest entry held.
func (o *Outbox) Pending(sink string) (n int, oldest time.Time) {
	if o.isClosed() {
		return 0, time.Time{}
	}
	o.mu.Lock()
	cur, inMem := uint64(0), false
	if st := o.active[sink]; st != nil {
		cur, inMem = st.acked, true
	}
	o.mu.Unlock()
	var p pending
	err := o.db.View(func(tx *bolt.Tx) error {
		s := open(tx)
		c := cur
		if !inMem {
			c = s.cursor(sink)
		}
		var err error
		p, err = s.pendingAfter(c)
		return err
	})
	if err != nil {
		o.log.Error().Err(err).Str("sink", sink).Msg("outbox: reading pending entries")
		return 0, time.Time{}
	}
	return p.n, p.oldest
}

// WaitDrained waits until the outbox holds no entry: every sink of the
// running Run confirmed every entry (or the entries were dropped). It returns
// ctx's error if ctx is done first. Entries held with no Run running wait for
// one.
func (o *Outbox) WaitDrained(ctx context.Context) error {
	o.draining.Add(1)
	defer o.draining.Add(-1)
	notify(o.flushc) // commit what was confirmed: no CommitDelay now
	for {
		o.mu.Lock()
		if o.closed {
			o.mu.Unlock()
			return ErrClosed
		}
		ch := o.changed
		o.mu.Unlock()
		var empty bool
		err := o.db.View(func(tx *bolt.Tx) error {
			k, _ := open(tx).entries.Cursor().First()
			empty = k == nil
			return nil
		})
		if err != nil {
			return fmt.Errorf("outbox: %w", err)
		}
		if empty {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// Close unregisters the metrics and closes the file. Run must have returned
// before (Close fails while it runs). Closing twice is a no-op.
func (o *Outbox) Close() error {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return nil
	}
	if o.running {
		o.mu.Unlock()
		return errors.New("outbox: Close while Run is running: cancel Run's context and wait for it first")
	}
	o.closed = true
	close(o.changed) // wake WaitDrained, which now reports ErrClosed
	o.mu.Unlock()
	o.met.unregister()
	if err := o.db.Close(); err != nil {
		return fmt.Errorf("outbox: close: %w", err)
	}
	return nil
}

func (o *Outbox) isClosed() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.closed
}

// notifyPut wakes every idle sink goroutine and Run's loop, without blocking.
func (o *Outbox) notifyPut() {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, st := range o.order {
		notify(st.wake)
	}
	notify(o.kick)
}

// notifyRemoved wakes WaitDrained. Called after a commit that removed
// entries.
func (o *Outbox) notifyRemoved() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return
	}
	close(o.changed)
	o.changed = make(chan struct{})
}

func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

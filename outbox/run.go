package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Run delivers the entries to sinks until ctx is done. Each sink gets every
// entry in Seq order from its own goroutine, starting after its cursor in
// the store (a sink new to the store at the oldest entry held); a failing
// entry is retried forever with backoff before the next one. Entries are
// removed once all of these sinks confirmed them (see the package doc for
// sinks known to the store but not passed here).
//
// Run returns nil once ctx is done, every Deliver has returned and the
// sinks' cursors are committed; an error if it cannot start (no sinks, a
// name empty or given twice, another Run running, the outbox closed) or
// cannot commit the cursors at the end (the sinks then get the entries
// again after a restart). Only one Run may run at a time.
func (o *Outbox) Run(ctx context.Context, sinks ...Sink) error {
	names, err := sinkNames(sinks)
	if err != nil {
		return err
	}
	o.mu.Lock()
	switch {
	case o.closed:
		o.mu.Unlock()
		return ErrClosed
	case o.running:
		o.mu.Unlock()
		return errors.New("outbox: run: another Run is running")
	}
	o.running = true
	prev := o.last
	o.mu.Unlock()
	defer func() {
		o.mu.Lock()
		o.running, o.active, o.order = false, nil, nil
		o.mu.Unlock()
	}()

	states := make([]*sinkState, len(sinks))
	known := map[string]uint64{}
	var first, last uint64
	var held bool
	err = o.db.Update(func(tx *bolt.Tx) error {
		s := open(tx)
		if err := s.cursors.ForEach(func(k, v []byte) error {
			known[string(k)] = be(v)
			return nil
		}); err != nil {
			return err
		}
		for i, sk := range sinks {
			cur := known[names[i]]
			states[i] = &sinkState{sink: sk, name: names[i], wake: make(chan struct{}, 1), acked: cur, saved: cur}
		}
		first, _, held = s.first()
		last = s.readMeta().seq
		js, err := json.Marshal(names)
		if err != nil {
			return err
		}
		return s.metaBk.Put(keySinks, js)
	})
	if err != nil {
		return fmt.Errorf("outbox: run: %w", err)
	}
	active := make(map[string]*sinkState, len(states))
	for _, st := range states {
		active[st.name] = st
	}
	o.mu.Lock()
	o.active, o.order, o.last = active, states, names
	o.mu.Unlock()
	o.met.initSinks(names)
	o.logStart(states, known, prev, first, last, held)

	var wg sync.WaitGroup
	for _, st := range states {
		wg.Go(func() { o.deliverLoop(ctx, st) })
	}
	o.loop(ctx)
	wg.Wait()
	if err := o.flush(); err != nil {
		return fmt.Errorf("outbox: run: committing the sinks' cursors at the end: %w", err)
	}
	return nil
}

func sinkNames(sinks []Sink) ([]string, error) {
	if len(sinks) == 0 {
		return nil, errors.New("outbox: run: no sinks")
	}
	names := make([]string, len(sinks))
	for i, s := range sinks {
		if s == nil {
			return nil, fmt.Errorf("outbox: run: sink %d is nil", i)
		}
		names[i] = s.Name()
		if names[i] == "" {
			return nil, fmt.Errorf("outbox: run: sink %d has an empty name", i)
		}
		if slices.Contains(names[:i], names[i]) {
			return nil, fmt.Errorf("outbox: run: two sinks are named %q", names[i])
		}
	}
	return names, nil
}

// logStart says where each sink starts, and which known sinks are away.
func (o *Outbox) logStart(states []*sinkState, known map[string]uint64, prev []string, first, last uint64, held bool) {
	for _, st := range states {
		cur, wasKnown := known[st.name]
		// The entries removed that the sink had not confirmed: those
		// before the oldest held, or every one when none is held.
		removedUpTo := last
		if held {
			removedUpTo = first - 1
		}
		switch {
		case !wasKnown:
			o.log.Info().Str("sink", st.name).Msg("outbox: sink new to the store: starts at the oldest entry held")
		case cur < removedUpTo && !slices.Contains(prev, st.name):
			// Absent from the last Run: what was removed meanwhile was
			// not held for it.
			o.log.Error().Str("sink", st.name).Uint64("cursor", cur).Uint64("missed", removedUpTo-cur).
				Msg("outbox: sink was not running while entries were removed: it will not get them")
		default:
			o.log.Info().Str("sink", st.name).Uint64("cursor", cur).Msg("outbox: sink resumes after its cursor")
		}
	}
	running := o.names(states)
	for name, cur := range known {
		if !slices.Contains(running, name) {
			o.log.Info().Str("sink", name).Uint64("cursor", cur).
				Msg("outbox: sink known from an earlier run is not running: its cursor is kept, but no entry is held for it")
		}
	}
}

func (o *Outbox) names(states []*sinkState) []string {
	out := make([]string, len(states))
	for i, st := range states {
		out[i] = st.name
	}
	return out
}

// loop runs in Run's goroutine: it commits the sinks' cursors (removing
// what all confirmed) when they move, and drops aged entries on a timer
// set for the next deadline. With nothing to do it waits on channels only.
func (o *Outbox) loop(ctx context.Context) {
	var ageTimer, retry, commit *time.Timer
	stop := func(t **time.Timer) {
		if *t != nil {
			(*t).Stop()
			*t = nil
		}
	}
	defer stop(&ageTimer)
	defer stop(&retry)
	defer stop(&commit)
	chanOf := func(t *time.Timer) <-chan time.Time {
		if t == nil {
			return nil
		}
		return t.C
	}
	failures := 0
	armAge := func() error {
		stop(&ageTimer)
		d, ok, err := o.nextAgeDeadline()
		if ok {
			ageTimer = time.NewTimer(d)
		}
		return err
	}
	// check runs one step; a failure (a full disk) is retried with
	// backoff, never in a tight loop.
	check := func(err error) {
		if err == nil {
			failures = 0
			stop(&retry)
			return
		}
		d := retryDelay(o.cfg.MinBackoff, o.cfg.MaxBackoff, failures)
		failures++
		o.log.Error().Err(err).Dur("retry_in", d).Msg("outbox: committing cursors or dropping aged entries failed")
		stop(&retry)
		retry = time.NewTimer(d)
	}
	check(errors.Join(o.dropAgedNow(), armAge()))
	for {
		select {
		case <-ctx.Done():
			return
		case <-o.flushc:
			// A confirmation: committed at once while WaitDrained waits,
			// else within CommitDelay, by the next Put if one comes first.
			o.wakeups.Add(1)
			if o.cfg.CommitDelay < 0 || o.draining.Load() > 0 {
				stop(&commit)
				check(errors.Join(o.flush(), armAge()))
			} else if commit == nil {
				commit = time.NewTimer(o.cfg.CommitDelay)
			}
		case <-chanOf(commit):
			o.wakeups.Add(1)
			commit = nil
			check(errors.Join(o.flush(), armAge()))
		case <-o.kick:
			o.wakeups.Add(1)
			if commit != nil && !o.cursorsDirty() {
				stop(&commit) // the Put committed them
			}
			if ageTimer == nil {
				check(armAge())
			}
		case <-chanOf(ageTimer):
			o.wakeups.Add(1)
			ageTimer = nil
			check(errors.Join(o.dropAgedNow(), armAge()))
		case <-chanOf(retry):
			o.wakeups.Add(1)
			retry = nil
			check(errors.Join(o.flush(), o.dropAgedNow(), armAge()))
		}
	}
}

// retryDelay is the internal retry delay: exponential, no jitter.
func retryDelay(lo, hi time.Duration, attempt int) time.Duration {
	d := lo
	for i := 0; i < attempt && d < hi; i++ {
		if d > hi/2 {
			return hi
		}
		d *= 2
	}
	return min(d, hi)
}

// backoff is the delay before retry number attempt (from 0) of a sink:
// full jitter, uniform in [0, min(hi, lo*2^attempt)).
func backoff(lo, hi time.Duration, attempt int) time.Duration {
	return rand.N(retryDelay(lo, hi, attempt)) + 1
}

// nextAgeDeadline is how long until the oldest entry reaches MaxAge; ok is
// false when the bound is off or nothing is held.
func (o *Outbox) nextAgeDeadline() (d time.Duration, ok bool, err error) {
	if o.cfg.MaxAge < 0 {
		return 0, false, nil
	}
	err = o.db.View(func(tx *bolt.Tx) error {
		seq, v, held := open(tx).first()
		if !held {
			return nil
		}
		h, err := decodeHeader(seq, v)
		if err != nil {
			return err
		}
		d, ok = max(h.put.Add(o.cfg.MaxAge).Sub(o.cfg.Now()), 0), true
		return nil
	})
	return d, ok, err
}

// errNothing rolls back a transaction that found nothing to do.
var errNothing = errors.New("nothing to do")

// dropAgedNow drops the entries that reached MaxAge.
func (o *Outbox) dropAgedNow() error {
	if o.cfg.MaxAge < 0 {
		return nil
	}
	now := o.cfg.Now()
	var (
		drops []drop
		m     meta
	)
	err := o.db.Update(func(tx *bolt.Tx) error {
		s := open(tx)
		m = s.readMeta()
		var err error
		if drops, err = o.dropAged(s, &m, now); err != nil {
			return err
		}
		if m.removed == 0 {
			return errNothing
		}
		return s.writeMeta(m)
	})
	if errors.Is(err, errNothing) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("dropping aged entries: %w", err)
	}
	o.afterRemoval(m, drops)
	return nil
}

// movedCursor is a sink's cursor that moved since it was committed.
type movedCursor struct {
	st    *sinkState
	acked uint64
}

// movedCursors is which cursors of the running sinks moved since they were
// committed, and upTo, the highest seq every running sink confirmed; ok is
// false when no Run's sinks are known yet.
func (o *Outbox) movedCursors() (dirty []movedCursor, upTo uint64, ok bool) {
	upTo = math.MaxUint64
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, st := range o.order {
		if st.acked > st.saved {
			dirty = append(dirty, movedCursor{st, st.acked})
		}
		upTo = min(upTo, st.acked)
	}
	return dirty, upTo, upTo != math.MaxUint64
}

// writeCursors writes the moved cursors and removes the entries every
// running sink confirmed (up to upTo), in the transaction of s.
func (o *Outbox) writeCursors(s store, m *meta, dirty []movedCursor, upTo uint64) error {
	for _, d := range dirty {
		if err := s.cursors.Put([]byte(d.st.name), u64(d.acked)); err != nil {
			return err
		}
	}
	_, err := o.removeFront(s, m, "", func(seq uint64, _ header) bool { return seq <= upTo })
	return err
}

// cursorsSaved records that the transaction of writeCursors committed.
func (o *Outbox) cursorsSaved(dirty []movedCursor) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, d := range dirty {
		d.st.saved = max(d.st.saved, d.acked)
	}
}

// cursorsDirty tells whether a confirmation is waiting to be committed.
func (o *Outbox) cursorsDirty() bool {
	dirty, _, _ := o.movedCursors()
	return len(dirty) > 0
}

// flush commits the cursors that moved and removes the entries every
// running sink confirmed, in one transaction.
func (o *Outbox) flush() error {
	dirty, upTo, ok := o.movedCursors()
	if !ok {
		return nil // no sinks
	}
	var m meta
	err := o.db.Update(func(tx *bolt.Tx) error {
		s := open(tx)
		first, _, held := s.first()
		if len(dirty) == 0 && (!held || first > upTo) {
			return errNothing
		}
		m = s.readMeta()
		if err := o.writeCursors(s, &m, dirty, upTo); err != nil {
			return err
		}
		return s.writeMeta(m)
	})
	if errors.Is(err, errNothing) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("committing cursors: %w", err)
	}
	o.cursorsSaved(dirty)
	o.afterRemoval(m, nil)
	return nil
}

// deliverLoop is one sink's goroutine.
func (o *Outbox) deliverLoop(ctx context.Context, st *sinkState) {
	o.mu.Lock()
	pos := st.acked
	o.mu.Unlock()
	readFailures := 0
	for {
		e, ok, err := o.next(pos)
		if err != nil {
			d := retryDelay(o.cfg.MinBackoff, o.cfg.MaxBackoff, readFailures)
			readFailures++
			o.log.Error().Err(err).Str("sink", st.name).Dur("retry_in", d).Msg("outbox: reading the next entry failed")
			if !o.sleep(ctx, d) {
				return
			}
			continue
		}
		readFailures = 0
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-st.wake:
				o.wakeups.Add(1)
			}
			continue
		}
		if !o.deliver(ctx, st, e) {
			return
		}
		pos = e.Seq
	}
}

// deliver hands e to the sink until it confirms it or e is dropped; false
// when ctx is done first.
func (o *Outbox) deliver(ctx context.Context, st *sinkState, e Entry) bool {
	body := e.Body
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			e.Body = append([]byte(nil), body...) // the failed attempt may have kept or changed it
		}
		err := o.attempt(ctx, st.sink, e)
		if err == nil {
			o.confirm(st, e.Seq)
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		o.met.deliveryError(st.name)
		wait := backoff(o.cfg.MinBackoff, o.cfg.MaxBackoff, attempt)
		o.log.Warn().Err(err).Str("sink", st.name).Str("id", e.ID).Uint64("seq", e.Seq).
			Int("attempt", attempt+1).Dur("retry_in", wait).Msg("outbox: delivery failed, will retry")
		if !o.sleep(ctx, wait) {
			return false
		}
		if held, err := o.held(e.Seq); err == nil && !held {
			// Dropped by a bound meanwhile (logged then): go on with the
			// next entry.
			return true
		}
	}
}

// attempt is one Deliver call, with its timeout; a panic is an error.
func (o *Outbox) attempt(ctx context.Context, s Sink, e Entry) (err error) {
	if o.cfg.DeliverTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.cfg.DeliverTimeout)
		defer cancel()
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("Deliver panicked: %v\n%s", r, debug.Stack())
		}
	}()
	return s.Deliver(ctx, e)
}

// confirm moves the sink's cursor in memory; Run's loop commits it.
func (o *Outbox) confirm(st *sinkState, seq uint64) {
	o.met.confirmed(st.name) // first, so that Pending never runs ahead of it
	o.mu.Lock()
	st.acked = max(st.acked, seq)
	o.mu.Unlock()
	notify(o.flushc)
}

// sleep waits d; false if ctx is done first.
func (o *Outbox) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		o.wakeups.Add(1)
		return true
	}
}

// next is the first entry after seq.
func (o *Outbox) next(after uint64) (e Entry, ok bool, err error) {
	err = o.db.View(func(tx *bolt.Tx) error {
		k, v := open(tx).entries.Cursor().Seek(u64(after + 1))
		if k == nil {
			return nil
		}
		ok = true
		e, err = decodeEntry(be(k), v)
		return err
	})
	return e, ok, err
}

// held tells whether entry seq is still held.
func (o *Outbox) held(seq uint64) (ok bool, err error) {
	err = o.db.View(func(tx *bolt.Tx) error {
		ok = open(tx).entries.Get(u64(seq)) != nil
		return nil
	})
	return ok, err
}

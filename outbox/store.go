package outbox

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The layout is described in the package doc.
var (
	bucketEntries = []byte("entries")
	bucketIDs     = []byte("ids")
	bucketGone    = []byte("gone")
	bucketCursors = []byte("cursors")
	bucketMeta    = []byte("meta")
	allBuckets    = [][]byte{bucketEntries, bucketIDs, bucketGone, bucketCursors, bucketMeta}

	keyFormat = []byte("format")
	keySeq    = []byte("seq")
	keyBytes  = []byte("bytes")
	keyGone   = []byte("gone")
	keySinks  = []byte("sinks")
)

const (
	formatVersion = 1
	recordV1      = 1
)

// Drop reasons, the values of the reason label.
const (
	reasonBytes = "bytes"
	reasonAge   = "age"
)

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// be decodes an 8-byte big-endian value; anything else reads as 0.
func be(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

func encodeEntry(put time.Time, id string, body []byte) []byte {
	buf := make([]byte, 0, 1+8+binary.MaxVarintLen64+len(id)+len(body))
	buf = append(buf, recordV1)
	buf = binary.BigEndian.AppendUint64(buf, uint64(put.UnixNano()))
	buf = binary.AppendUvarint(buf, uint64(len(id)))
	buf = append(buf, id...)
	return append(buf, body...)
}

// header is an entry record without its body.
type header struct {
	put     time.Time
	id      string
	bodyOff int // the body is v[bodyOff:]
	bodyLen int
}

func decodeHeader(seq uint64, v []byte) (header, error) {
	bad := func(what string) (header, error) {
		return header{}, fmt.Errorf("corrupt entry seq %d: %s", seq, what)
	}
	if len(v) < 1+8 || v[0] != recordV1 {
		return bad("bad record header")
	}
	put := time.Unix(0, int64(binary.BigEndian.Uint64(v[1:9])))
	n, w := binary.Uvarint(v[9:])
	if w <= 0 || n > uint64(len(v)-9-w) {
		return bad("bad id length")
	}
	off := 9 + w + int(n)
	return header{put: put, id: string(v[9+w : off]), bodyOff: off, bodyLen: len(v) - off}, nil
}

func decodeEntry(seq uint64, v []byte) (Entry, error) {
	h, err := decodeHeader(seq, v)
	if err != nil {
		return Entry{}, err
	}
	return Entry{Seq: seq, ID: h.id, Put: h.put, Body: append([]byte(nil), v[h.bodyOff:]...)}, nil
}

// store is the buckets of one transaction.
type store struct {
	tx                                  *bolt.Tx
	entries, ids, gone, cursors, metaBk *bolt.Bucket
}

func open(tx *bolt.Tx) store {
	s := store{
		tx:      tx,
		entries: tx.Bucket(bucketEntries),
		ids:     tx.Bucket(bucketIDs),
		gone:    tx.Bucket(bucketGone),
		cursors: tx.Bucket(bucketCursors),
		metaBk:  tx.Bucket(bucketMeta),
	}
	// Keys only ever grow at the end of these two: fill pages whole when
	// they split (bbolt's default of half full suits random inserts).
	s.entries.FillPercent = 1
	s.gone.FillPercent = 1
	return s
}

// meta is the counters of the meta bucket.
type meta struct {
	seq   uint64 // last seq given
	bytes uint64 // body bytes held
	gone  uint64 // keys in the gone bucket

	removed int // entries removed by this transaction (not stored)
}

func (s store) readMeta() meta {
	return meta{seq: be(s.metaBk.Get(keySeq)), bytes: be(s.metaBk.Get(keyBytes)), gone: be(s.metaBk.Get(keyGone))}
}

func (s store) writeMeta(m meta) error {
	return errors.Join(
		s.metaBk.Put(keySeq, u64(m.seq)),
		s.metaBk.Put(keyBytes, u64(m.bytes)),
		s.metaBk.Put(keyGone, u64(m.gone)),
	)
}

// cursor is the stored cursor of a sink: the highest seq it confirmed, 0 for
// a sink new to the store.
func (s store) cursor(sink string) uint64 { return be(s.cursors.Get([]byte(sink))) }

// first is the oldest entry held.
func (s store) first() (seq uint64, v []byte, ok bool) {
	k, v := s.entries.Cursor().First()
	if k == nil {
		return 0, nil, false
	}
	return be(k), v, true
}

// pending is what a sink has not confirmed.
type pending struct {
	n      int
	oldest time.Time
}

// pendingAfter counts the entries held after cursor. The entries held are
// one run of consecutive seqs, so this is arithmetic plus one lookup.
func (s store) pendingAfter(cursor uint64) (pending, error) {
	first, _, ok := s.first()
	if !ok {
		return pending{}, nil
	}
	last := s.readMeta().seq
	from := max(cursor+1, first)
	if from > last {
		return pending{}, nil
	}
	v := s.entries.Get(u64(from))
	if v == nil {
		return pending{}, fmt.Errorf("entry seq %d missing (held %d..%d)", from, first, last)
	}
	h, err := decodeHeader(from, v)
	if err != nil {
		return pending{}, err
	}
	return pending{n: int(last - from + 1), oldest: h.put}, nil
}

// drop is one entry dropped for one sink that had not confirmed it.
type drop struct {
	sink   string // "" when no sink ever ran
	reason string
	seq    uint64
	id     string
	put    time.Time
}

// removeFront removes entries from the oldest end for as long as more says
// so, remembering their ids for dedupe. With a reason, every removed entry a
// sink had not confirmed is returned as a drop for that sink; without one
// (all sinks confirmed) nothing is.
func (o *Outbox) removeFront(s store, m *meta, reason string, more func(seq uint64, h header) bool) ([]drop, error) {
	var drops []drop
	for {
		seq, v, ok := s.first()
		if !ok {
			return drops, nil
		}
		h, err := decodeHeader(seq, v)
		if err != nil {
			return drops, err
		}
		if !more(seq, h) {
			return drops, nil
		}
		if reason != "" {
			for _, sink := range o.unconfirmed(s, seq) {
				drops = append(drops, drop{sink: sink, reason: reason, seq: seq, id: h.id, put: h.put})
			}
		}
		if err := s.entries.Delete(u64(seq)); err != nil {
			return drops, err
		}
		m.bytes -= uint64(h.bodyLen)
		m.removed++
		if err := o.remember(s, m, seq, h.id); err != nil {
			return drops, err
		}
	}
}

// remember keeps the id of the removed entry seq for dedupe, forgetting the
// oldest remembered ids beyond Config.RememberIDs.
func (o *Outbox) remember(s store, m *meta, seq uint64, id string) error {
	if o.cfg.RememberIDs > 0 {
		if err := s.gone.Put(u64(seq), []byte(id)); err != nil {
			return err
		}
		m.gone++
	} else if err := s.ids.Delete([]byte(id)); err != nil {
		return err
	}
	for m.gone > uint64(max(o.cfg.RememberIDs, 0)) {
		k, v := s.gone.Cursor().First()
		if k == nil {
			m.gone = 0
			break
		}
		// ids maps to the seq the id was last given; only forget it if that
		// is this removed entry.
		if be(s.ids.Get(v)) == be(k) {
			if err := s.ids.Delete(v); err != nil {
				return err
			}
		}
		if err := s.gone.Delete(k); err != nil {
			return err
		}
		m.gone--
	}
	return nil
}

// dropAged drops the entries that are Config.MaxAge old or older at now.
func (o *Outbox) dropAged(s store, m *meta, now time.Time) ([]drop, error) {
	if o.cfg.MaxAge < 0 {
		return nil, nil
	}
	return o.removeFront(s, m, reasonAge, func(_ uint64, h header) bool {
		return !h.put.Add(o.cfg.MaxAge).After(now)
	})
}

// unconfirmed lists the sinks that have not confirmed seq: the running
// Run's (their cursors in memory), or else the last Run's (their cursors in
// the store). With no sink at all it returns [""], so that a drop is still
// reported.
func (o *Outbox) unconfirmed(s store, seq uint64) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []string
	if o.active != nil {
		for _, st := range o.order {
			if st.acked < seq {
				out = append(out, st.name)
			}
		}
		return out
	}
	if len(o.last) == 0 {
		return []string{""}
	}
	for _, name := range o.last {
		if s.cursor(name) < seq {
			out = append(out, name)
		}
	}
	return out
}

// afterRemoval logs and counts the drops of a committed transaction that
// removed entries, and wakes WaitDrained.
func (o *Outbox) afterRemoval(m meta, drops []drop) {
	for _, d := range drops {
		msg := "outbox: report dropped before the sink confirmed it: the bodies held would exceed MaxBytes"
		if d.reason == reasonAge {
			msg = "outbox: report dropped before the sink confirmed it: older than MaxAge"
		}
		o.log.Error().Str("sink", d.sink).Str("id", d.id).Uint64("seq", d.seq).
			Str("reason", d.reason).Time("put", d.put).Msg(msg)
		o.met.dropped(d.sink, d.reason)
	}
	if m.removed > 0 {
		o.notifyRemoved()
	}
}

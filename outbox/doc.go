// Package outbox is the durable queue between enrichment and the sinks.
//
// The daemon calls [Outbox.Put] for every report (its id and JSON body). Put
// returns once the entry is committed and fsync'd: from then on the report counts as
// published for the daemon's kernel-log checkpoint, and a crash at any moment
// (kill -9, power loss) does not lose it. [Outbox.Run] then hands every entry
// to every [Sink] from that sink's own goroutine, in Put order, retrying a
// failing entry with exponential backoff and full jitter before it moves on.
// Each sink has its own cursor in the store, so a dead remote (a NATS server
// that is down, an API server that hangs) neither slows Put nor delays any
// other sink. An entry is removed once every sink confirmed it, or when a
// bound ([Config.MaxBytes], [Config.MaxAge]) forces a drop, which is always
// logged at error level and counted.
//
// The package stores bytes: it knows nothing of the report model and imports
// no other oomscope package.
//
// # Delivery semantics
//
// Delivery is at least once, in order, per sink. [Sink.Deliver] is called
// with entries in strictly increasing [Entry.Seq], one call at a time. A sink
// confirms an entry by returning nil; the confirmation moves the sink's
// cursor in memory at once and is written to the store within
// [Config.CommitDelay], by the next Put's commit when one comes first (the
// confirmations of all sinks are coalesced into one commit), so that a
// healthy sink does not pay one fsync per entry. A crash between a
// confirmation and that commit makes the sink get the entry again after the
// restart; so does a Deliver that durably stored the entry but then failed
// (a timeout on the way back). Sinks make this exactly once by deduplicating
// on [Entry.ID], which is the report id.
//
// # Which sinks hold entries
//
// Entries are held for the sinks passed to the running [Outbox.Run], and for
// no other: an entry is removed when every one of them confirmed it. A sink
// that is known to the store from an earlier run but is not passed to this
// Run keeps its cursor untouched (a sink configured off and on again resumes
// where it was), but it does not hold entries back: what is removed while it
// is away it never gets, and Run logs at error level how many entries it
// missed when it comes back. A sink new to the store starts at the oldest
// entry held. While no Run is running nothing is removed except by the
// bounds; drops are then counted against the sinks of the last Run.
//
// # Bounds
//
// When a Put would make the bodies held exceed MaxBytes, the oldest entries
// are dropped first until the new one fits; a single body larger than
// MaxBytes is refused with [ErrTooLarge] and nothing is dropped. Entries
// MaxAge old are dropped (at Put, and by Run on a timer set for the next
// such deadline). Each drop logs one error line per sink that had not
// confirmed the entry, with the report id, the seq and the sink (sink "" if
// no Run ever ran), and adds to oomscope_outbox_dropped_total{sink,reason},
// reason "bytes" or "age". The ids of dropped entries are remembered like
// those of delivered ones.
//
// # Deduplication
//
// Put of an id that is held, or that was removed recently, is a no-op
// reporting added=false. The ids of the last [Config.RememberIDs] removed
// entries are kept in the store (the oldest forgotten first), so replaying
// the same kernel log, or the same file, publishes nothing twice.
//
// # Why bbolt
//
// The store is a single go.etcd.io/bbolt file. Every commit is fsync'd, a
// commit is atomic (copy-on-write B+tree pages, then one meta page), and a
// crash leaves the last committed state with no recovery or replay step at
// Open. bbolt takes an exclusive flock on the file, which is how a second
// oomscope on the same state dir fails fast at [Open] with [ErrLocked]. It is
// pure Go (no cgo, unlike SQLite, so the daemon stays a static binary), one
// file (nothing to compact or rotate: pages freed by removed entries are
// reused), and it is the well-kept store under etcd. A hand-rolled segment
// log would need its own framing, checksums, torn-write detection, recovery
// scan, per-sink cursor files and segment compaction: code that is easy to
// get subtly wrong and that only crash tests would ever exercise.
//
// # Layout
//
// Buckets and keys (seq is an 8-byte big-endian integer, so bbolt's key
// order is Put order):
//
//	entries  seq  -> version 1 | Put time (8 bytes, Unix ns) | uvarint len(id) | id | body
//	ids      id   -> seq       every id held, and the remembered ids of removed entries
//	gone     seq  -> id        the removed entries whose ids are remembered, oldest first
//	cursors  sink -> seq       the highest seq the sink confirmed
//	meta     "format" -> 1; "seq" -> last seq given; "bytes" -> body bytes held;
//	         "gone" -> number of keys in gone; "sinks" -> JSON list of the last Run's sinks
//
// The entries held always form one run of consecutive seqs: seqs are given
// one by one and entries are only ever removed from the oldest end.
//
// # Metrics
//
// With [Config.Registerer] set: gauges oomscope_outbox_depth{sink} (entries
// the sink has not confirmed), oomscope_outbox_oldest_age_seconds{sink} (age
// of the oldest of them; 0 when none) and oomscope_outbox_bytes (body bytes
// held), all read from the store at scrape time; counters
// oomscope_outbox_put_total (entries added),
// oomscope_outbox_delivered_total{sink},
// oomscope_outbox_delivery_errors_total{sink} (failed attempts) and
// oomscope_outbox_dropped_total{sink,reason}. The per-sink series are for the
// sinks of the running (or else the last) Run.
package outbox

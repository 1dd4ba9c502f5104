package outbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"
)

func seqIDs(prefix string, from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, fmt.Sprintf("%s%d", prefix, i))
	}
	return out
}

// Every sink gets every entry, in Put order, with its seq, id, Put time and
// body; once all confirmed, nothing is held.
func TestDeliversEverythingInOrderToEverySink(t *testing.T) {
	clk := newClock()
	o := openTest(t, fastRetry(Config{Now: clk.Now}))
	for i := 1; i <= 20; i++ {
		put(t, o, fmt.Sprintf("r%d", i), fmt.Sprintf(`{"n":%d}`, i))
		clk.Add(time.Second)
	}
	a, b := newRec("archive"), newRec("nats")
	startRun(t, o, a, b)
	for i := 21; i <= 40; i++ { // these wake the idle sinks
		put(t, o, fmt.Sprintf("r%d", i), fmt.Sprintf(`{"n":%d}`, i))
		clk.Add(time.Second)
	}
	drain(t, o)
	start := newClock().Now()
	for _, s := range []*recSink{a, b} {
		got := s.entries()
		if len(got) != 40 {
			t.Fatalf("%s got %d entries, want 40", s.name, len(got))
		}
		for i, e := range got {
			n := i + 1
			want := Entry{Seq: uint64(n), ID: fmt.Sprintf("r%d", n), Put: start.Add(time.Duration(i) * time.Second), Body: []byte(fmt.Sprintf(`{"n":%d}`, n))}
			if e.Seq != want.Seq || e.ID != want.ID || !e.Put.Equal(want.Put) || string(e.Body) != string(want.Body) {
				t.Fatalf("%s entry %d = %+v, want %+v", s.name, i, e, want)
			}
		}
		if n, oldest := o.Pending(s.name); n != 0 || !oldest.IsZero() {
			t.Errorf("Pending(%s) = %d, %v; want 0, zero", s.name, n, oldest)
		}
	}
	if ids := heldIDs(t, o); len(ids) != 0 {
		t.Errorf("held after all confirmed: %v", ids)
	}
}

// Put of an id held, or removed and remembered, adds nothing, also after a
// reopen; beyond RememberIDs the oldest ids are forgotten.
func TestPutDedupe(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.db")
	o, err := Open(path, fastRetry(Config{RememberIDs: 3}))
	if err != nil {
		t.Fatal(err)
	}
	put(t, o, "a", "1")
	if added, err := o.Put("a", []byte("other body")); err != nil || added {
		t.Fatalf("Put of a held id = %v, %v; want false, nil", added, err)
	}
	s := newRec("archive")
	stop := startRun(t, o, s)
	drain(t, o)
	if added, err := o.Put("a", []byte("1")); err != nil || added {
		t.Fatalf("Put of a delivered, removed id = %v, %v; want false, nil", added, err)
	}
	stop()
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}

	// Replaying after a restart publishes nothing twice.
	o = openAt(t, path, fastRetry(Config{RememberIDs: 3}))
	if added, err := o.Put("a", []byte("1")); err != nil || added {
		t.Fatalf("after reopen, Put of a remembered id = %v, %v; want false, nil", added, err)
	}
	s2 := newRec("archive")
	startRun(t, o, s2)
	for _, id := range []string{"b", "c", "d"} {
		put(t, o, id, id)
	}
	drain(t, o)
	// a, b, c, d removed; only the last 3 (b, c, d) are remembered.
	for _, id := range []string{"b", "c", "d"} {
		if added, _ := o.Put(id, nil); added {
			t.Errorf("Put(%s) added again; it is among the last 3 removed", id)
		}
	}
	if added, err := o.Put("a", []byte("1")); err != nil || !added {
		t.Errorf("Put(a) after it was forgotten = %v, %v; want true, nil", added, err)
	}
	drain(t, o)
	if got, want := s.ids(), []string{"a"}; !slices.Equal(got, want) {
		t.Errorf("first run delivered %v, want %v", got, want)
	}
	if got, want := s2.ids(), []string{"b", "c", "d", "a"}; !slices.Equal(got, want) {
		t.Errorf("second run delivered %v, want %v", got, want)
	}
	heldIDs(t, o)
}

// A failing entry is retried before the next one: the sink sees every entry
// exactly once (counting only successful attempts), in order.
func TestRetryKeepsOrder(t *testing.T) {
	reg := prometheus.NewRegistry()
	o := openTest(t, fastRetry(Config{Registerer: reg}))
	s := newRec("nats")
	failures := 0
	s.fail = func(e Entry, attempt int) error {
		// Entries 3, 6, 9, ... fail twice; entry 10 fails five times.
		if (e.Seq%3 == 0 && attempt < 2) || (e.Seq == 10 && attempt < 5) {
			failures++
			return errors.New("nats: no responders")
		}
		return nil
	}
	healthy := newRec("archive")
	startRun(t, o, s, healthy)
	for i := 1; i <= 30; i++ {
		put(t, o, fmt.Sprintf("r%d", i), "{}")
	}
	drain(t, o)
	if diff := cmp.Diff(seqIDs("r", 1, 30), s.ids()); diff != "" {
		t.Errorf("failing sink got (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(seqIDs("r", 1, 30), healthy.ids()); diff != "" {
		t.Errorf("healthy sink got (-want +got):\n%s", diff)
	}
	if got := mustMetric(t, reg, "oomscope_outbox_delivery_errors_total", "sink", "nats"); got != float64(failures) {
		t.Errorf("delivery_errors_total{nats} = %v, want %d", got, failures)
	}
	if got := mustMetric(t, reg, "oomscope_outbox_delivered_total", "sink", "nats"); got != 30 {
		t.Errorf("delivered_total{nats} = %v, want 30", got)
	}
	if got := mustMetric(t, reg, "oomscope_outbox_delivery_errors_total", "sink", "archive"); got != 0 {
		t.Errorf("delivery_errors_total{archive} = %v, want 0", got)
	}
}

// A sink that hangs forever and one that fails forever do not delay the
// healthy sink, nor Put: 1000 entries Put from one goroutine while Run's
// goroutines deliver reach the healthy sink within a real time bound.
func TestStuckSinkDoesNotDelayOthers(t *testing.T) {
	reg := prometheus.NewRegistry()
	o := openTest(t, Config{
		Registerer:     reg,
		DeliverTimeout: time.Hour, // the stuck sink never comes back
		MinBackoff:     time.Millisecond, MaxBackoff: 5 * time.Millisecond,
	})
	stuck := &stuckSink{name: "k8s-events", calls: make(chan uint64, 1)}
	failing := failSink{name: "nats"}
	healthy := newRec("archive")
	start := time.Now()
	startRun(t, o, stuck, failing, healthy)

	const n = 1000
	var wg sync.WaitGroup
	var maxPut time.Duration
	wg.Go(func() {
		for i := 1; i <= n; i++ {
			t0 := time.Now()
			if _, err := o.Put(fmt.Sprintf("r%d", i), []byte(`{"kind":"oom"}`)); err != nil {
				t.Errorf("Put: %v", err)
				return
			}
			maxPut = max(maxPut, time.Since(t0))
		}
	})
	// Meanwhile scrape and ask for Pending, as the daemon's /metrics would.
	wg.Go(func() {
		for healthy.count() < n && time.Since(start) < time.Minute {
			_, _ = reg.Gather()
			o.Pending("archive")
			time.Sleep(5 * time.Millisecond)
		}
	})
	const bound = 60 * time.Second
	waitFor(t, bound, "the healthy sink to get 1000 entries", func() bool { return healthy.count() == n })
	wg.Wait()
	waitConfirmed(t, o, "archive")
	t.Logf("healthy sink got %d entries in %v while one sink hung and one failed; slowest Put %v", n, time.Since(start).Round(time.Millisecond), maxPut)
	if diff := cmp.Diff(seqIDs("r", 1, n), healthy.ids()); diff != "" {
		t.Fatalf("healthy sink got (-want +got):\n%s", diff)
	}
	select {
	case seq := <-stuck.calls:
		if seq != 1 {
			t.Errorf("stuck sink was called with seq %d, want 1", seq)
		}
	default:
		t.Errorf("stuck sink was never called")
	}
	for _, name := range []string{"k8s-events", "nats"} {
		if p, _ := o.Pending(name); p != n {
			t.Errorf("Pending(%s) = %d, want %d", name, p, n)
		}
		if d := mustMetric(t, reg, "oomscope_outbox_depth", "sink", name); d != n {
			t.Errorf("depth{%s} = %v, want %d", name, d, n)
		}
	}
	if p, _ := o.Pending("archive"); p != 0 {
		t.Errorf("Pending(archive) = %d, want 0", p)
	}
	if e := mustMetric(t, reg, "oomscope_outbox_delivery_errors_total", "sink", "nats"); e < 1 {
		t.Errorf("delivery_errors_total{nats} = %v, want > 0", e)
	}
	if got := len(heldIDs(t, o)); got != n {
		t.Errorf("held %d entries, want %d (the stuck sinks have confirmed none)", got, n)
	}
}

// An idle outbox costs no wake-ups: no polling, no tickers.
func TestIdleHasNoWakeups(t *testing.T) {
	o := openTest(t, fastRetry(Config{}))
	a, b := newRec("archive"), newRec("stdout")
	startRun(t, o, a, b)
	for i := range 50 {
		put(t, o, fmt.Sprint(i), "{}")
	}
	drain(t, o)
	time.Sleep(100 * time.Millisecond) // let the last wake-ups of the burst land
	before := o.wakeups.Load()
	if before == 0 {
		t.Fatal("no wake-ups counted while delivering: the counter is not wired")
	}
	time.Sleep(1500 * time.Millisecond)
	if after := o.wakeups.Load(); after != before {
		t.Fatalf("idle outbox woke up %d times in 1.5s", after-before)
	}
	// And a Put still wakes the sinks at once.
	t0 := time.Now()
	put(t, o, "late", "{}")
	waitFor(t, 5*time.Second, "the late entry", func() bool { return a.count() == 51 && b.count() == 51 })
	t.Logf("idle sinks got a new entry %v after its Put returned", time.Since(t0))
}

// Cursors survive a restart; a sink new to the store starts at the oldest
// entry held; a sink known from an earlier run but not passed to Run does
// not hold entries back, keeps its cursor, and is told what it missed.
func TestRestartCursorsAndSinkSets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.db")
	logs := &logBuf{}
	cfg := fastRetry(Config{Logger: logs.logger()})

	o, err := Open(path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	archive, nats := newRec("archive"), newRec("nats")
	// nats confirms r1..r3 only, then fails.
	nats.fail = func(e Entry, _ int) error {
		if e.Seq > 3 {
			return errors.New("down")
		}
		return nil
	}
	stop := startRun(t, o, archive, nats)
	for i := 1; i <= 6; i++ {
		put(t, o, fmt.Sprintf("r%d", i), "{}")
	}
	waitFor(t, 10*time.Second, "archive to get 6, nats 3", func() bool { return archive.count() == 6 && nats.count() == 3 })
	stop()
	if got := heldIDs(t, o); !slices.Equal(got, seqIDs("r", 4, 6)) {
		t.Fatalf("held %v, want r4..r6 (nats has not confirmed them)", got)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}

	// Restart with nats healthy and a new sink: nats resumes at r4, the new
	// sink starts at the oldest held (r4); archive is not passed.
	o, err = Open(path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := o.Pending("archive"); n != 0 {
		t.Errorf("Pending(archive) from its stored cursor = %d, want 0", n)
	}
	if n, _ := o.Pending("nats"); n != 3 {
		t.Errorf("Pending(nats) from its stored cursor = %d, want 3", n)
	}
	nats2, events := newRec("nats"), newRec("k8s-events")
	stop = startRun(t, o, nats2, events)
	put(t, o, "r7", "{}")
	drain(t, o) // removed without archive's confirmation of r7
	stop()
	if got := nats2.ids(); !slices.Equal(got, seqIDs("r", 4, 7)) {
		t.Errorf("nats after restart got %v, want r4..r7", got)
	}
	if got := events.ids(); !slices.Equal(got, seqIDs("r", 4, 7)) {
		t.Errorf("new sink got %v, want r4..r7 (from the oldest held)", got)
	}
	if n, _ := o.Pending("archive"); n != 0 {
		t.Errorf("Pending(archive) = %d with nothing held, want 0", n)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}

	// archive comes back: its cursor (6) was kept; r7 was removed while it
	// was away, which is logged. It gets what is held after its cursor.
	o = openAt(t, path, cfg)
	archive2 := newRec("archive")
	startRun(t, o, archive2, newRec("nats"), newRec("k8s-events"))
	put(t, o, "r8", "{}")
	drain(t, o)
	if got := archive2.ids(); !slices.Equal(got, []string{"r8"}) {
		t.Errorf("returning archive got %v, want [r8]", got)
	}
	var missed []string
	for _, m := range logs.lines(t, "error") {
		if strings.Contains(fmt.Sprint(m["message"]), "not running while entries were removed") {
			missed = append(missed, fmt.Sprintf("%v missed %v after cursor %v", m["sink"], m["missed"], m["cursor"]))
		}
	}
	if want := []string{"archive missed 1 after cursor 6"}; !slices.Equal(missed, want) {
		t.Errorf("missed-entries log lines = %v, want %v", missed, want)
	}
}

// When a Put would exceed MaxBytes the oldest entries are dropped for the
// sinks that had not confirmed them, each drop logged and counted; a body
// larger than MaxBytes is refused and drops nothing.
func TestMaxBytesDropsOldest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.db")
	logs := &logBuf{}
	reg := prometheus.NewRegistry()
	cfg := fastRetry(Config{MaxBytes: 1000, Logger: logs.logger(), Registerer: reg})
	o := openAt(t, path, cfg)
	// Make archive and nats the last Run's sinks: archive confirms r1, nats
	// confirms nothing.
	archive := newRec("archive")
	archive.fail = func(e Entry, _ int) error {
		if e.Seq > 1 {
			return errors.New("disk")
		}
		return nil
	}
	stop := startRun(t, o, archive, failSink{name: "nats"})
	body := strings.Repeat("x", 300)
	put(t, o, "r1", body)
	waitFor(t, 10*time.Second, "archive to confirm r1", func() bool { return archive.count() == 1 })
	stop()

	for i := 2; i <= 5; i++ { // 5*300 > 1000: r1 and r2 must go
		put(t, o, fmt.Sprintf("r%d", i), body)
	}
	if got := heldIDs(t, o); !slices.Equal(got, seqIDs("r", 3, 5)) {
		t.Errorf("held %v, want r3..r5", got)
	}
	want := []string{"nats/r1/1/bytes", "archive/r2/2/bytes", "nats/r2/2/bytes"}
	if diff := cmp.Diff(want, logs.drops(t)); diff != "" {
		t.Errorf("drop log lines (-want +got):\n%s", diff)
	}
	for _, c := range []struct {
		sink string
		want float64
	}{{"archive", 1}, {"nats", 2}} {
		if got := mustMetric(t, reg, "oomscope_outbox_dropped_total", "sink", c.sink, "reason", "bytes"); got != c.want {
			t.Errorf("dropped_total{%s,bytes} = %v, want %v", c.sink, got, c.want)
		}
	}
	if got := mustMetric(t, reg, "oomscope_outbox_bytes"); got != 900 {
		t.Errorf("oomscope_outbox_bytes = %v, want 900", got)
	}

	// Too large: refused, nothing dropped.
	added, err := o.Put("huge", make([]byte, 1001))
	if !errors.Is(err, ErrTooLarge) || added {
		t.Fatalf("Put of 1001 bytes with MaxBytes 1000 = %v, %v; want an ErrTooLarge", added, err)
	}
	t.Logf("too large: %v", err)
	if got := heldIDs(t, o); !slices.Equal(got, seqIDs("r", 3, 5)) {
		t.Errorf("after the refused Put, held %v, want r3..r5", got)
	}
	// A dropped id is remembered like a delivered one.
	if added, _ := o.Put("r1", nil); added {
		t.Errorf("Put of the dropped r1 added it again")
	}
}

// Entries MaxAge old are dropped at Put for the sinks that had not
// confirmed them; those all confirmed are just removed.
func TestMaxAgeDropsAtPut(t *testing.T) {
	clk := newClock()
	logs := &logBuf{}
	reg := prometheus.NewRegistry()
	o := openTest(t, fastRetry(Config{MaxAge: time.Hour, Now: clk.Now, Logger: logs.logger(), Registerer: reg}))
	healthy := newRec("archive")
	startRun(t, o, healthy, failSink{name: "nats"})
	put(t, o, "old1", "{}")
	put(t, o, "old2", "{}")
	waitConfirmed(t, o, "archive")
	clk.Add(30 * time.Minute)
	put(t, o, "mid", "{}")
	clk.Add(30 * time.Minute) // old1, old2 are now 1h old
	put(t, o, "new", "{}")
	if got := heldIDs(t, o); !slices.Equal(got, []string{"mid", "new"}) {
		t.Errorf("held %v, want [mid new]", got)
	}
	if diff := cmp.Diff([]string{"nats/old1/1/age", "nats/old2/2/age"}, logs.drops(t)); diff != "" {
		t.Errorf("drop log lines (-want +got):\n%s", diff)
	}
	if got := mustMetric(t, reg, "oomscope_outbox_dropped_total", "sink", "nats", "reason", "age"); got != 2 {
		t.Errorf("dropped_total{nats,age} = %v, want 2", got)
	}
	if got := mustMetric(t, reg, "oomscope_outbox_dropped_total", "sink", "archive", "reason", "age"); got != 0 {
		t.Errorf("dropped_total{archive,age} = %v, want 0 (it had confirmed them)", got)
	}
}

// With no Put, Run drops aged entries on a timer set for the deadline, and
// a sink retrying a dropped entry moves on.
func TestMaxAgeDropsOnTimer(t *testing.T) {
	logs := &logBuf{}
	reg := prometheus.NewRegistry()
	o := openTest(t, fastRetry(Config{MaxAge: 300 * time.Millisecond, Logger: logs.logger(), Registerer: reg}))
	nats := newRec("nats")
	var mu sync.Mutex
	down := true
	nats.fail = func(Entry, int) error {
		mu.Lock()
		defer mu.Unlock()
		if down {
			return errors.New("down")
		}
		return nil
	}
	startRun(t, o, nats)
	put(t, o, "a", "{}")
	put(t, o, "b", "{}")
	t0 := time.Now()
	// (The drops are logged just after their commit.)
	waitFor(t, 10*time.Second, "the aged entries to be dropped", func() bool { return len(logs.drops(t)) == 2 })
	if el := time.Since(t0); el < 250*time.Millisecond {
		t.Errorf("dropped after %v, before MaxAge", el)
	}
	if diff := cmp.Diff([]string{"nats/a/1/age", "nats/b/2/age"}, logs.drops(t)); diff != "" {
		t.Errorf("drop log lines (-want +got):\n%s", diff)
	}
	if n, _ := o.Pending("nats"); n != 0 {
		t.Errorf("Pending(nats) = %d after the drops, want 0", n)
	}
	if got := mustMetric(t, reg, "oomscope_outbox_dropped_total", "sink", "nats", "reason", "age"); got != 2 {
		t.Errorf("dropped_total{nats,age} = %v, want 2", got)
	}
	mu.Lock()
	down = false
	mu.Unlock()
	put(t, o, "c", "{}")
	drain(t, o)
	if got := nats.ids(); !slices.Equal(got, []string{"c"}) {
		t.Errorf("nats got %v, want [c]: a and b were dropped while it failed", got)
	}
}

// A sink retrying an entry that a bound dropped goes on with the next one.
func TestRetryingSinkSkipsDroppedEntry(t *testing.T) {
	o := openTest(t, fastRetry(Config{MaxBytes: 900}))
	nats := newRec("nats")
	nats.fail = func(e Entry, _ int) error {
		if e.Seq <= 2 { // r1 and r2 never go through
			return errors.New("too big for the stream")
		}
		return nil
	}
	startRun(t, o, nats)
	body := strings.Repeat("x", 300)
	for i := 1; i <= 5; i++ {
		put(t, o, fmt.Sprintf("r%d", i), body)
	}
	drain(t, o)
	if got := nats.ids(); !slices.Equal(got, seqIDs("r", 3, 5)) {
		t.Errorf("nats got %v, want r3..r5", got)
	}
}

// Metrics: the gauges are read from the store at scrape time; Close
// unregisters everything so the same registry can take a reopened outbox.
func TestMetrics(t *testing.T) {
	clk := newClock()
	reg := prometheus.NewRegistry()
	path := filepath.Join(t.TempDir(), "outbox.db")
	o, err := Open(path, fastRetry(Config{Now: clk.Now, Registerer: reg}))
	if err != nil {
		t.Fatal(err)
	}
	archive := newRec("archive")
	stop := startRun(t, o, archive, failSink{name: "nats"})
	put(t, o, "r1", "12345")
	clk.Add(10 * time.Second)
	put(t, o, "r2", "123")
	if added, _ := o.Put("r2", nil); added {
		t.Fatal("duplicate added")
	}
	waitConfirmed(t, o, "archive")
	clk.Add(5 * time.Second)
	check := func(name string, want float64, labels ...string) {
		t.Helper()
		if got := mustMetric(t, reg, name, labels...); got != want {
			t.Errorf("%s%v = %v, want %v", name, labels, got, want)
		}
	}
	check("oomscope_outbox_put_total", 2)
	check("oomscope_outbox_depth", 0, "sink", "archive")
	check("oomscope_outbox_depth", 2, "sink", "nats")
	check("oomscope_outbox_oldest_age_seconds", 0, "sink", "archive")
	check("oomscope_outbox_oldest_age_seconds", 15, "sink", "nats")
	check("oomscope_outbox_delivered_total", 2, "sink", "archive")
	check("oomscope_outbox_delivered_total", 0, "sink", "nats")
	check("oomscope_outbox_dropped_total", 0, "sink", "nats", "reason", "age")
	check("oomscope_outbox_bytes", 8)
	clk.Add(time.Minute) // no tick: the next scrape reads the new age
	check("oomscope_outbox_oldest_age_seconds", 75, "sink", "nats")
	stop()
	check("oomscope_outbox_depth", 2, "sink", "nats") // from the stored cursor
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if fams, _ := reg.Gather(); len(fams) != 0 {
		t.Errorf("after Close the registry still has %d metric families", len(fams))
	}
	o = openAt(t, path, fastRetry(Config{Now: clk.Now, Registerer: reg}))
	check("oomscope_outbox_depth", 2, "sink", "nats")
	if _, err := Open(filepath.Join(t.TempDir(), "other.db"), Config{Registerer: reg}); err == nil {
		t.Error("a second outbox registered the same metrics in the same registry")
	}
}

func TestRunAndCloseErrors(t *testing.T) {
	o := openTest(t, fastRetry(Config{}))
	ctx := context.Background()
	if err := o.Run(ctx); err == nil {
		t.Error("Run with no sinks: no error")
	}
	if err := o.Run(ctx, newRec("a"), newRec("a")); err == nil || !strings.Contains(err.Error(), `"a"`) {
		t.Errorf("Run with two sinks named a: %v", err)
	}
	if err := o.Run(ctx, newRec("")); err == nil {
		t.Error("Run with an unnamed sink: no error")
	}
	stop := startRun(t, o, newRec("a"))
	if err := o.Run(ctx, newRec("b")); err == nil {
		t.Error("second concurrent Run: no error")
	}
	if err := o.Close(); err == nil {
		t.Error("Close while Run runs: no error")
	}
	stop()
	if _, err := o.Put("", nil); err == nil {
		t.Error("Put with an empty id: no error")
	}
	ctx2, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	put(t, o, "x", "{}")
	if err := o.WaitDrained(ctx2); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitDrained with an entry held and no Run = %v, want DeadlineExceeded", err)
	}
}

// A second Open of a file held open fails fast with ErrLocked (the flock
// is per open file, so this holds within one process too; the crash test
// checks it across processes).
func TestOpenLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.db")
	openAt(t, path, Config{})
	t0 := time.Now()
	_, err := Open(path, Config{LockTimeout: 200 * time.Millisecond})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	if el := time.Since(t0); el > 2*time.Second {
		t.Errorf("second Open took %v", el)
	}
	if !strings.Contains(err.Error(), "another oomscope holds the state dir") {
		t.Errorf("error %q does not say another oomscope holds the state dir", err)
	}
}

// Once all sinks confirmed, entries are deleted and bbolt reuses their
// pages: 10k put/deliver cycles keep the file small. (The remembered ids
// are bounded by RememberIDs, kept small here so that what is measured is
// the entries.)
func TestFileSizeBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("10k fsync'd cycles")
	}
	path := filepath.Join(t.TempDir(), "outbox.db")
	o := openAt(t, path, fastRetry(Config{RememberIDs: 100}))
	a, b := newRec("archive"), newRec("stdout")
	startRun(t, o, a, b)
	body := strings.Repeat("y", 1024)
	var after1k int64
	const cycles = 10000
	for i := 1; i <= cycles; i++ {
		put(t, o, fmt.Sprint(i), body)
		if i%10 == 0 {
			drain(t, o)
		}
		if i == 1000 {
			after1k = fileSize(t, path)
		}
	}
	drain(t, o)
	final := fileSize(t, path)
	t.Logf("file after 1k cycles %d bytes, after %d: %d bytes (bodies put: %d bytes)", after1k, cycles, final, cycles*len(body))
	if final > 1<<20 {
		t.Errorf("file is %d bytes after %d cycles, want at most 1 MiB", final, cycles)
	}
	if final > 2*after1k {
		t.Errorf("file grew from %d to %d bytes between 1k and 10k cycles", after1k, final)
	}
	if a.count() != cycles || b.count() != cycles {
		t.Errorf("delivered %d and %d, want %d", a.count(), b.count(), cycles)
	}
	heldIDs(t, o)
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// Retry backoff is exponential with full jitter, capped, and never zero.
func TestBackoff(t *testing.T) {
	lo, hi := 500*time.Millisecond, time.Minute
	for attempt, ceil := range []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second} {
		var longest time.Duration
		for range 2000 {
			d := backoff(lo, hi, attempt)
			if d <= 0 || d > ceil {
				t.Fatalf("backoff(attempt %d) = %v, want in (0, %v]", attempt, d, ceil)
			}
			longest = max(longest, d)
		}
		if longest < ceil*3/4 { // full jitter spreads over the whole range
			t.Errorf("attempt %d: longest of 2000 waits %v, want near %v", attempt, longest, ceil)
		}
	}
	if d := retryDelay(lo, hi, 1000); d != hi {
		t.Errorf("retryDelay after 1000 attempts = %v, want the cap %v", d, hi)
	}
	if d := retryDelay(time.Second, time.Duration(1<<62), 200); d != time.Duration(1<<62) {
		t.Errorf("retryDelay with a huge cap = %v (overflow?)", d)
	}
}

// A panicking Deliver is a failed attempt, retried; it does not take the
// daemon down.
func TestDeliverPanicIsRetried(t *testing.T) {
	o := openTest(t, fastRetry(Config{}))
	s := newRec("events")
	s.fail = func(e Entry, attempt int) error {
		if attempt == 0 {
			panic("nil map in the sink")
		}
		return nil
	}
	startRun(t, o, s)
	put(t, o, "a", "{}")
	put(t, o, "b", "{}")
	drain(t, o)
	if got := s.ids(); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("got %v, want [a b]", got)
	}
}

func TestClosed(t *testing.T) {
	o, err := Open(filepath.Join(t.TempDir(), "outbox.db"), Config{})
	if err != nil {
		t.Fatal(err)
	}
	put(t, o, "a", "{}")
	waited := make(chan error, 1)
	go func() { waited <- o.WaitDrained(context.Background()) }()
	time.Sleep(20 * time.Millisecond)
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-waited; !errors.Is(err, ErrClosed) {
		t.Errorf("WaitDrained across Close = %v, want ErrClosed", err)
	}
	if _, err := o.Put("b", nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Put after Close = %v, want ErrClosed", err)
	}
	if err := o.Run(context.Background(), newRec("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Run after Close = %v, want ErrClosed", err)
	}
	if err := o.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

// storedCursor is the sink's cursor as committed to the store.
func storedCursor(t testing.TB, o *Outbox, sink string) uint64 {
	t.Helper()
	var c uint64
	if err := o.db.View(func(tx *bolt.Tx) error { c = open(tx).cursor(sink); return nil }); err != nil {
		t.Fatal(err)
	}
	return c
}

// A confirmation waits up to CommitDelay for its commit, and the next Put
// carries it (with the removal of what every sink confirmed) in its own
// commit; WaitDrained does not wait for the delay.
func TestConfirmationsRideOnPut(t *testing.T) {
	o := openTest(t, fastRetry(Config{CommitDelay: time.Hour}))
	a, b := newRec("archive"), newRec("nats")
	startRun(t, o, a, b)
	put(t, o, "one", "{}")
	waitFor(t, 5*time.Second, "both sinks got entry 1", func() bool { return a.count() == 1 && b.count() == 1 })
	time.Sleep(50 * time.Millisecond) // the loop had its chance to commit
	if c := storedCursor(t, o, "archive"); c != 0 {
		t.Fatalf("cursor committed at %d before CommitDelay or a Put", c)
	}
	if got := heldIDs(t, o); !slices.Equal(got, []string{"one"}) {
		t.Fatalf("held %q before the commit, want [one]", got)
	}
	put(t, o, "two", "{}")
	if ca, cb := storedCursor(t, o, "archive"), storedCursor(t, o, "nats"); ca != 1 || cb != 1 {
		t.Fatalf("after the next Put the stored cursors are %d and %d, want 1 and 1", ca, cb)
	}
	if got := heldIDs(t, o); !slices.Equal(got, []string{"two"}) {
		t.Fatalf("held %q after the next Put, want [two]: it removes what both confirmed", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := o.WaitDrained(ctx); err != nil {
		t.Fatalf("WaitDrained with CommitDelay 1h: %v", err)
	}
	if ca := storedCursor(t, o, "archive"); ca != 2 {
		t.Fatalf("cursor %d after WaitDrained, want 2", ca)
	}
}

package kmsg

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/euank/go-kmsg-parser/kmsgparser"
	"github.com/oomscope/oomscope/e2e/kernellock"
	"github.com/rs/zerolog"
)

// These tests read and write the real /dev/kmsg (they need root). Other
// processes log at the same time, so every test tags its lines with a
// nonce and looks only at its own records, except where it checks that
// sequence numbers are consecutive.

var nonceCounter atomic.Uint64

// newNonce returns a tag unique to this process and call.
func newNonce() string {
	return fmt.Sprintf("%d-%d-%d", os.Getpid(), time.Now().UnixNano()%1e9, nonceCounter.Add(1))
}

// writeKmsg writes one record to /dev/kmsg. It opens the device for every
// write: the kernel rate-limits writers per open file (printk_devkmsg).
func writeKmsg(t *testing.T, line string) {
	t.Helper()
	f, err := os.OpenFile(DefaultDevice, os.O_WRONLY, 0)
	if err != nil {
		t.Fatalf("opening %s for writing: %v", DefaultDevice, err)
	}
	defer f.Close()
	if _, err := f.WriteString(line); err != nil {
		t.Fatalf("writing %q to %s: %v", line, DefaultDevice, err)
	}
}

// openReal opens a Live on /dev/kmsg, closed at cleanup.
func openReal(t *testing.T, ctx context.Context, opts ...LiveOption) *Live {
	t.Helper()
	l, err := OpenLive(ctx, opts...)
	if err != nil {
		t.Fatalf("OpenLive: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return l
}

// collectTagged reads records until n of them contain tag, returning
// those, and every record read (tagged or not) in all.
func collectTagged(t *testing.T, l *Live, tag string, n int) (tagged, all []Record) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for len(tagged) < n {
		select {
		case r, ok := <-l.Records():
			if !ok {
				t.Fatalf("Records closed after %d of %d tagged records; Err=%v", len(tagged), n, l.Err())
			}
			all = append(all, r)
			if strings.Contains(r.Text, tag) {
				tagged = append(tagged, r)
			}
		case <-timeout:
			t.Fatalf("timed out after %d of %d records tagged %q", len(tagged), n, tag)
		}
	}
	return tagged, all
}

// monoNow reads CLOCK_MONOTONIC.
func monoNow(t *testing.T) time.Duration {
	t.Helper()
	d, err := clockGettime(clockMonotonic)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestLiveRealRoundTrip(t *testing.T) {
	l := openReal(t, context.Background())
	if id := l.BootID(); len(id) != 36 || strings.Count(id, "-") != 4 {
		t.Errorf("BootID() = %q, want a UUID", id)
	}
	tag := "oomscope-test " + newNonce()
	const n = 5
	type sent struct {
		text          string
		before, after time.Duration // CLOCK_MONOTONIC around the write
		wall, wallEnd time.Time     // time.Now before and after the write
	}
	var want []sent
	for i := range n {
		s := sent{text: fmt.Sprintf("%s %d", tag, i)}
		s.wall = time.Now()
		s.before = monoNow(t)
		writeKmsg(t, "<6>"+s.text+"\n")
		s.after = monoNow(t)
		s.wallEnd = time.Now()
		want = append(want, s)
		time.Sleep(3 * time.Millisecond)
	}
	got, _ := collectTagged(t, l, tag, n)
	var maxLag, maxWallErr time.Duration
	for i, r := range got {
		w := want[i]
		if r.Text != w.text {
			t.Errorf("record %d: Text = %q, want %q", i, r.Text, w.text)
		}
		// A write with <6> and no facility is logged as LOG_USER (1).
		if r.Priority != 6 || r.Facility != 1 || r.Cont || !r.HasSeq || !r.HasMono {
			t.Errorf("record %d: Priority=%d Facility=%d Cont=%v HasSeq=%v HasMono=%v, want 6 1 false true true",
				i, r.Priority, r.Facility, r.Cont, r.HasSeq, r.HasMono)
		}
		if i > 0 && r.Seq <= got[i-1].Seq {
			t.Errorf("record %d: Seq %d not after %d", i, r.Seq, got[i-1].Seq)
		}
		if prefix := fmt.Sprintf("14,%d,%d,-;", r.Seq, r.Mono/time.Microsecond); !strings.HasPrefix(r.Raw, prefix) {
			t.Errorf("record %d: Raw = %q, want prefix %q", i, r.Raw, prefix)
		}
		// local_clock() runs about a millisecond behind CLOCK_MONOTONIC
		// here; allow 10 ms either way.
		const slack = 10 * time.Millisecond
		if r.Mono < w.before-slack || r.Mono > w.after+slack {
			t.Errorf("record %d: Mono %v outside the write's CLOCK_MONOTONIC [%v, %v] ± %v", i, r.Mono, w.before, w.after, slack)
		}
		maxLag = max(maxLag, w.before-r.Mono)
		if r.Wall.Before(w.wall.Add(-slack)) || r.Wall.After(w.wallEnd.Add(slack)) {
			t.Errorf("record %d: Wall %v outside time.Now around the write [%v, %v] ± %v", i, r.Wall, w.wall, w.wallEnd, slack)
		}
		maxWallErr = max(maxWallErr, w.wall.Sub(r.Wall), r.Wall.Sub(w.wallEnd))
	}
	t.Logf("local_clock lag behind CLOCK_MONOTONIC: up to %v; Wall outside the write's time.Now interval by up to %v", maxLag, maxWallErr)
	if l.Lost() != 0 {
		t.Errorf("Lost() = %d, want 0", l.Lost())
	}
}

func TestLiveRealStartAtEnd(t *testing.T) {
	tag := "oomscope-test " + newNonce()
	writeKmsg(t, "<6>"+tag+" old\n")
	l := openReal(t, context.Background(), WithStartAtEnd())
	writeKmsg(t, "<6>"+tag+" new\n")
	got, _ := collectTagged(t, l, tag, 1)
	if got[0].Text != tag+" new" {
		t.Errorf("first tagged record = %q, want the one written after OpenLive", got[0].Text)
	}
}

func TestLiveRealStartAtBeginning(t *testing.T) {
	tag := "oomscope-test " + newNonce()
	writeKmsg(t, "<6>"+tag+" old\n")
	l := openReal(t, context.Background(), WithStartAtBeginning())
	writeKmsg(t, "<6>"+tag+" new\n")
	got, all := collectTagged(t, l, tag, 2)
	if got[0].Text != tag+" old" || got[1].Text != tag+" new" {
		t.Errorf("tagged records = %q, %q; want old then new", got[0].Text, got[1].Text)
	}
	for i := 1; i < len(all); i++ {
		if all[i].Seq != all[i-1].Seq+1 && l.Lost() == 0 {
			t.Errorf("seq %d follows %d but Lost() = 0", all[i].Seq, all[i-1].Seq)
		}
	}
}

func TestLiveRealResumeAfter(t *testing.T) {
	tag := "oomscope-test " + newNonce()
	first := openReal(t, context.Background())
	for i := range 3 {
		writeKmsg(t, fmt.Sprintf("<6>%s %d\n", tag, i))
	}
	sent, _ := collectTagged(t, first, tag, 3)
	first.Close()

	l := openReal(t, context.Background(), WithResumeAfter(sent[0].Seq))
	got, all := collectTagged(t, l, tag, 2)
	if all[0].Seq != sent[0].Seq+1 {
		t.Errorf("first record after resuming at %d has Seq %d", sent[0].Seq, all[0].Seq)
	}
	for i := 1; i < len(all); i++ {
		if all[i].Seq != all[i-1].Seq+1 {
			t.Errorf("seq %d follows %d", all[i].Seq, all[i-1].Seq)
		}
	}
	for i, r := range got {
		if r.Seq != sent[i+1].Seq || r.Text != sent[i+1].Text {
			t.Errorf("resumed record %d = %d %q, want %d %q", i, r.Seq, r.Text, sent[i+1].Seq, sent[i+1].Text)
		}
	}
	if l.Lost() != 0 {
		t.Errorf("Lost() = %d, want 0", l.Lost())
	}
}

func TestLiveRealResumeLost(t *testing.T) {
	// Resuming after a record older than the oldest one still in the
	// buffer counts the records in between as lost. Resume after seq 0:
	// if the buffer wrapped, records 1..oldest-1 are lost; if it did not,
	// record 1 follows and nothing is lost. (TestLiveFakeResume covers the
	// wrapped case on any machine.)
	probe := openReal(t, context.Background(), WithStartAtBeginning())
	var oldest Record
	select {
	case oldest = <-probe.Records():
	case <-time.After(5 * time.Second):
		t.Fatal("no record in the ring buffer")
	}
	probe.Close()
	if oldest.Seq == 0 {
		// Nothing was overwritten: every seq is still there. Resume
		// after 0 and expect record 1 with nothing lost.
		l := openReal(t, context.Background(), WithResumeAfter(0))
		r := <-l.Records()
		if r.Seq != 1 || l.Lost() != 0 {
			t.Errorf("resume after 0: first Seq %d, Lost %d; want 1, 0", r.Seq, l.Lost())
		}
		return
	}
	logs := &syncBuffer{}
	l := openReal(t, context.Background(), WithResumeAfter(0), WithLogger(zerolog.New(logs)))
	r := <-l.Records()
	if r.Seq < oldest.Seq || l.Lost() != r.Seq-1 {
		t.Errorf("resume after 0: first Seq %d, Lost %d; want ≥ %d, Seq-1", r.Seq, l.Lost(), oldest.Seq)
	}
	if !strings.Contains(fmt.Sprint(logs.entries(t)), "records lost") {
		t.Error("the lost records were not logged")
	}
}

func TestLiveRealEscapes(t *testing.T) {
	l := openReal(t, context.Background())
	tag := "oomscope-test " + newNonce()
	writeKmsg(t, "<4>"+tag+" bell\x01 backslash\\ two\nlines\n")
	got, _ := collectTagged(t, l, tag, 1)
	r := got[0]
	if want := tag + " bell\x01 backslash\\ two\nlines"; r.Text != want {
		t.Errorf("Text = %q, want %q", r.Text, want)
	}
	if !strings.Contains(r.Raw, `bell\x01 backslash\x5c two\x0alines`) {
		t.Errorf("Raw = %q, want the kernel's escapes", r.Raw)
	}
	if r.Priority != 4 {
		t.Errorf("Priority = %d, want 4", r.Priority)
	}
}

func TestLiveRealAgreesWithLibrary(t *testing.T) {
	// github.com/euank/go-kmsg-parser reads the same records
	// independently: sequence number, priority and (escaped) text must
	// agree; its timestamps are off by up to a second (see Live).
	p, err := kmsgparser.NewParser()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SeekEnd(); err != nil {
		t.Fatal(err)
	}
	msgs := p.Parse()
	defer func() {
		p.Close()
		for range msgs { // let its goroutine finish
		}
	}()
	l := openReal(t, context.Background())
	tag := "oomscope-test " + newNonce()
	writeKmsg(t, "<6>"+tag+" plain\n")
	writeKmsg(t, "<3>"+tag+" esc\x7f\ttab\n")
	ours, _ := collectTagged(t, l, tag, 2)
	var theirs []kmsgparser.Message
	timeout := time.After(10 * time.Second)
	for len(theirs) < 2 {
		select {
		case m := <-msgs:
			if strings.Contains(m.Message, tag) {
				theirs = append(theirs, m)
			}
		case <-timeout:
			t.Fatalf("library delivered %d of 2 records", len(theirs))
		}
	}
	for i, r := range ours {
		m := theirs[i]
		_, body, _ := strings.Cut(r.Raw, ";")
		if uint64(m.SequenceNumber) != r.Seq || m.Priority != int(r.Facility)<<3|int(r.Priority) ||
			strings.TrimSuffix(m.Message, "\n") != body || Unescape(strings.TrimSuffix(m.Message, "\n")) != r.Text {
			t.Errorf("record %d: library %+v, ours seq=%d prio=%d/%d raw=%q", i, m, r.Seq, r.Facility, r.Priority, r.Raw)
		}
		if d := m.Timestamp.Sub(r.Wall); d < -1100*time.Millisecond || d > 1100*time.Millisecond {
			t.Errorf("record %d: library time %v, ours %v", i, m.Timestamp, r.Wall)
		}
		t.Logf("record %d: library timestamp - our Wall = %v", i, m.Timestamp.Sub(r.Wall))
	}
}

func TestLiveRealStop(t *testing.T) {
	baseline := runtime.NumGoroutine()
	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		l := openReal(t, ctx, WithStartAtEnd())
		start := time.Now()
		cancel()
		waitClosed(t, l)
		if d := time.Since(start); d > time.Second {
			t.Errorf("Records closed %v after cancel", d)
		}
		if err := l.Err(); err != nil {
			t.Errorf("Err() = %v, want nil", err)
		}
	})
	t.Run("close", func(t *testing.T) {
		l := openReal(t, context.Background(), WithStartAtBeginning())
		<-l.Records() // the reader is running; the channel holds more
		start := time.Now()
		if err := l.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("Close took %v", d)
		}
		for range l.Records() { // drain what was buffered; must end
		}
		if err := l.Err(); err != nil {
			t.Errorf("Err() = %v, want nil", err)
		}
	})
	// Every goroutine of both Lives has exited.
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > baseline && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > baseline {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines after Close, %d before:\n%s", n, baseline, buf[:runtime.Stack(buf, true)])
	}
}

func TestLiveRealResumeAfterNewest(t *testing.T) {
	// A resume point from another boot, beyond the newest record: the
	// whole buffer is read, starting with its oldest record.
	newest, ok, err := newestSeq(DefaultDevice)
	if err != nil || !ok {
		t.Fatalf("newestSeq = %d, %v, %v", newest, ok, err)
	}
	probe := openReal(t, context.Background(), WithStartAtBeginning())
	oldest := <-probe.Records()
	probe.Close()
	if oldest.Seq > newest {
		t.Fatalf("oldest seq %d after newest %d", oldest.Seq, newest)
	}

	logs := &syncBuffer{}
	l := openReal(t, context.Background(), WithResumeAfter(newest+1_000_000), WithLogger(zerolog.New(logs)))
	select {
	case r := <-l.Records():
		if r.Seq > oldest.Seq+10 { // a few may be overwritten meanwhile
			t.Errorf("first record %d, want the oldest (%d)", r.Seq, oldest.Seq)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no record")
	}
	if !strings.Contains(fmt.Sprint(logs.entries(t)), "after the newest record") {
		t.Errorf("not logged: %v", logs.entries(t))
	}

	// A resume point at the newest record waits for the next one.
	tag := "oomscope-test " + newNonce()
	l2 := openReal(t, context.Background(), WithResumeAfter(newest))
	writeKmsg(t, "<6>"+tag+"\n")
	got, all := collectTagged(t, l2, tag, 1)
	if all[0].Seq != newest+1 || got[0].Seq <= newest {
		t.Errorf("after the newest (%d): first record %d, tagged %d", newest, all[0].Seq, got[0].Seq)
	}
}

// TestLiveBehind checks Behind against the real device: a record written
// and not yet received makes it true; once everything is received it
// turns false (other writers on the machine may add records meanwhile, so
// it is drained until then).
func TestLiveBehind(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l, err := OpenLive(ctx, WithStartAtEnd())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	f, err := os.OpenFile("/dev/kmsg", os.O_WRONLY, 0)
	if err != nil {
		t.Fatalf("opening /dev/kmsg for writing: %v", err)
	}
	if _, err := f.WriteString("<6>oomscope-test behind\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if !l.Behind() {
		n, ok, err := newestSeq("/dev/kmsg")
		t.Errorf("Behind() = false with a record written and not received (next %d, newest %d %v %v, queued %d)", l.next.Load(), n, ok, err, len(l.out))
	}
	deadline := time.Now().Add(10 * time.Second)
	for l.Behind() {
		if time.Now().After(deadline) {
			t.Fatal("Behind() still true after draining for 10s")
		}
		select {
		case <-l.Records():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// writeTaggedAsync writes n records "<tag> <i>" to /dev/kmsg from a
// goroutine of its own, a file per record, with short pauses, storing in
// written how many are in the kernel; the channel gets a write error and
// is closed when done.
func writeTaggedAsync(n int, tag string, written *atomic.Int64) <-chan error {
	werr := make(chan error, 1)
	go func() {
		defer close(werr)
		for i := range n {
			f, err := os.OpenFile(DefaultDevice, os.O_WRONLY, 0)
			if err != nil {
				werr <- err
				return
			}
			_, err = fmt.Fprintf(f, "<6>%s %d\n", tag, i)
			f.Close()
			if err != nil {
				werr <- err
				return
			}
			written.Store(int64(i + 1))
			if i%3 == 0 {
				time.Sleep(time.Duration(i%7) * 50 * time.Microsecond)
			}
		}
	}()
	return werr
}

// TestLiveBehindExact checks that Behind never says false while a record
// written before the call has not been received, with the records written
// by another goroutine while the consumer receives and asks: the race of
// the reverted poll(2) Behind (a record read by the reader but not yet in
// the channel). Run it with -race -count=200. It holds the kernel-log lock
// (e2e/kernellock): its records must not land inside another test's OOM
// report.
func TestLiveBehindExact(t *testing.T) {
	kernellock.Acquire(t)
	const n = 40
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l := openReal(t, ctx, WithStartAtEnd())
	tag := "oomscope-test behind-exact " + newNonce()
	var written atomic.Int64
	werr := writeTaggedAsync(n, tag, &written)
	got, checks, falses := int64(0), 0, 0
	for got < n {
		w := written.Load() // records 0..w-1 are in the kernel now
		if !l.Behind() {
			falses++
			if got < w {
				t.Fatalf("Behind() = false with %d of %d records written and not received", w-got, w)
			}
		}
		checks++
		select {
		case rec, ok := <-l.Records():
			if !ok {
				t.Fatalf("Records closed: %v", l.Err())
			}
			if strings.Contains(rec.Text, tag) {
				got++
			}
		case <-ctx.Done():
			t.Fatalf("received %d of %d records", got, n)
		default:
		}
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	t.Logf("%d checks, %d said false", checks, falses)
}

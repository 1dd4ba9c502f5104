package kmsg

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// fakeRead is one scripted result of fakeDevice.Read.
type fakeRead struct {
	data string
	err  error
}

// fakeDevice plays a script of reads, then blocks until closed, like
// /dev/kmsg with nothing new to read.
type fakeDevice struct {
	mu      sync.Mutex
	script  []fakeRead
	whence  []int
	closed  chan struct{}
	onceCls sync.Once
	endEOF  bool // return io.EOF after the script instead of blocking
}

func newFakeDevice(script ...fakeRead) *fakeDevice {
	return &fakeDevice{script: script, closed: make(chan struct{})}
}

func (d *fakeDevice) Read(p []byte) (int, error) {
	d.mu.Lock()
	if len(d.script) > 0 {
		r := d.script[0]
		d.script = d.script[1:]
		d.mu.Unlock()
		if r.err != nil {
			return 0, r.err
		}
		return copy(p, r.data), nil
	}
	end := d.endEOF
	d.mu.Unlock()
	if end {
		return 0, io.EOF
	}
	<-d.closed
	return 0, fs.ErrClosed
}

func (d *fakeDevice) Seek(off int64, whence int) (int64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.whence = append(d.whence, whence)
	return 0, nil
}

func (d *fakeDevice) Close() error {
	d.onceCls.Do(func() { close(d.closed) })
	return nil
}

func (d *fakeDevice) seeks() []int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]int(nil), d.whence...)
}

// syncBuffer is a bytes.Buffer safe for the reader goroutine's logging.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// entries returns the JSON log entries written so far.
func (s *syncBuffer) entries(t *testing.T) []map[string]any {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(s.b.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// kmsgLine renders a /dev/kmsg record.
func kmsgLine(seq uint64, text string) fakeRead {
	return fakeRead{data: fmt.Sprintf("6,%d,%d,-;%s\n", seq, 1000+seq, text)}
}

// fixedClock is a clock_gettime stand-in: CLOCK_REALTIME is always
// CLOCK_MONOTONIC + off.
func fixedClock(off time.Duration) func(int32) (time.Duration, error) {
	var mu sync.Mutex
	var mono time.Duration = 5 * time.Second
	return func(id int32) (time.Duration, error) {
		mu.Lock()
		defer mu.Unlock()
		mono += time.Microsecond
		if id == clockRealtime {
			return mono + off, nil
		}
		return mono, nil
	}
}

// openFake opens a Live on dev with a log buffer and a fixed clock.
func openFake(t *testing.T, ctx context.Context, dev *fakeDevice, opts ...LiveOption) (*Live, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	base := []LiveOption{
		WithDevice("/fake/kmsg"),
		WithLogger(zerolog.New(logs)),
		withOpener(func(path string) (device, error) {
			if path != "/fake/kmsg" {
				t.Errorf("opened %q, want /fake/kmsg", path)
			}
			return dev, nil
		}),
		withClock(fixedClock(1_700_000_000 * time.Second)),
		withNewest(func(string) (uint64, bool, error) { return 15, true, nil }),
	}
	l, err := OpenLive(ctx, append(base, opts...)...)
	if err != nil {
		t.Fatalf("OpenLive: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l, logs
}

// collect reads n records from l, failing after a timeout.
func collect(t *testing.T, l *Live, n int) []Record {
	t.Helper()
	var out []Record
	timeout := time.After(5 * time.Second)
	for len(out) < n {
		select {
		case r, ok := <-l.Records():
			if !ok {
				t.Fatalf("Records closed after %d of %d records; Err=%v", len(out), n, l.Err())
			}
			out = append(out, r)
		case <-timeout:
			t.Fatalf("timed out after %d of %d records", len(out), n)
		}
	}
	return out
}

// waitClosed waits for Records to be closed, failing if a record arrives
// or it takes too long.
func waitClosed(t *testing.T, l *Live) {
	t.Helper()
	select {
	case r, ok := <-l.Records():
		if ok {
			t.Fatalf("unexpected record %q", r.Raw)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Records not closed")
	}
}

func seqs(recs []Record) []uint64 {
	out := make([]uint64, len(recs))
	for i, r := range recs {
		out[i] = r.Seq
	}
	return out
}

func TestLiveFakeGap(t *testing.T) {
	dev := newFakeDevice(
		kmsgLine(5, "a"), kmsgLine(6, "b"),
		fakeRead{err: &fs.PathError{Op: "read", Path: "/fake/kmsg", Err: syscall.EPIPE}},
		kmsgLine(9, "c"), kmsgLine(10, "d"),
		kmsgLine(20, "e"),
	)
	l, logs := openFake(t, context.Background(), dev, WithStartAtBeginning())
	recs := collect(t, l, 5)
	if got, want := fmt.Sprint(seqs(recs)), "[5 6 9 10 20]"; got != want {
		t.Errorf("seqs = %s, want %s", got, want)
	}
	if got := l.Lost(); got != 2+9 {
		t.Errorf("Lost() = %d, want 11", got)
	}
	for _, r := range recs {
		if !r.HasSeq || !r.HasMono {
			t.Errorf("record %d: HasSeq=%v HasMono=%v", r.Seq, r.HasSeq, r.HasMono)
		}
	}
	var gaps [][3]float64
	for _, e := range logs.entries(t) {
		if strings.Contains(fmt.Sprint(e["message"]), "records lost") {
			if e["level"] != "warn" {
				t.Errorf("gap logged at %v, want warn", e["level"])
			}
			gaps = append(gaps, [3]float64{e["lost"].(float64), e["after_seq"].(float64), e["next_seq"].(float64)})
		}
	}
	if got, want := fmt.Sprint(gaps), "[[2 6 9] [9 10 20]]"; got != want {
		t.Errorf("logged gaps (lost, after, next) = %s, want %s", got, want)
	}
	if l.epipe.Load() != 1 {
		t.Errorf("EPIPE count = %d, want 1", l.epipe.Load())
	}
}

func TestLiveFakeResume(t *testing.T) {
	tests := []struct {
		name     string
		after    uint64
		first    uint64 // first seq on the device
		wantSeqs string
		wantLost uint64
	}{
		{"in buffer", 12, 10, "[13 14 15]", 0},
		{"just before oldest", 9, 10, "[10 11 12 13 14 15]", 0},
		{"no longer in buffer", 3, 10, "[10 11 12 13 14 15]", 6},
		{"newest", 14, 10, "[15]", 0},
		// After the newest record: another boot; read everything.
		{"after the newest", 100, 10, "[10 11 12 13 14 15]", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var script []fakeRead
			for s := tt.first; s <= 15; s++ {
				script = append(script, kmsgLine(s, fmt.Sprint("r", s)))
			}
			dev := newFakeDevice(script...)
			l, logs := openFake(t, context.Background(), dev, WithResumeAfter(tt.after))
			n := strings.Count(tt.wantSeqs, " ") + 1
			recs := collect(t, l, n)
			if got := fmt.Sprint(seqs(recs)); got != tt.wantSeqs {
				t.Errorf("seqs = %s, want %s", got, tt.wantSeqs)
			}
			if got := l.Lost(); got != tt.wantLost {
				t.Errorf("Lost() = %d, want %d", got, tt.wantLost)
			}
			if got := dev.seeks(); fmt.Sprint(got) != fmt.Sprint([]int{io.SeekStart}) {
				t.Errorf("seeks = %v, want [SeekStart]", got)
			}
			logged := strings.Contains(fmt.Sprint(logs.entries(t)), "records lost")
			if logged != (tt.wantLost > 0) {
				t.Errorf("gap logged = %v, want %v", logged, tt.wantLost > 0)
			}
			warned := strings.Contains(fmt.Sprint(logs.entries(t)), "after the newest record")
			if warned != (tt.after > 15) {
				t.Errorf("resume point after the newest logged = %v, want %v", warned, tt.after > 15)
			}
		})
	}
}

func TestLiveFakeStartSeek(t *testing.T) {
	tests := []struct {
		name string
		opts []LiveOption
		want int
	}{
		{"default", nil, io.SeekEnd},
		{"end", []LiveOption{WithStartAtEnd()}, io.SeekEnd},
		{"beginning", []LiveOption{WithStartAtBeginning()}, io.SeekStart},
		{"resume", []LiveOption{WithResumeAfter(7)}, io.SeekStart},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dev := newFakeDevice()
			l, _ := openFake(t, context.Background(), dev, tt.opts...)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if got := dev.seeks(); len(got) != 1 || got[0] != tt.want {
				t.Errorf("seeks = %v, want [%d]", got, tt.want)
			}
		})
	}
}

func TestLiveFakeRecordFields(t *testing.T) {
	dev := newFakeDevice(
		fakeRead{data: "3,41,2500000,c,caller=T7;x=\\x01\\x5c y\n SUBSYSTEM=mem\n DEVICE=+mem:1\n"},
		fakeRead{data: "garbage without header\n"},
		fakeRead{data: "12,42,2600001,-;Memory cgroup stats for /a:\\x0aanon 1\\x0afile 2\n"},
	)
	const off = 1_700_000_000 * time.Second
	l, logs := openFake(t, context.Background(), dev, WithStartAtBeginning())
	recs := collect(t, l, 2)
	r := recs[0]
	if r.Seq != 41 || r.Priority != 3 || r.Facility != 0 || !r.Cont || r.Caller != "T7" ||
		r.Text != "x=\x01\\ y" || fmt.Sprint(r.Dict) != "[SUBSYSTEM=mem DEVICE=+mem:1]" ||
		r.Mono != 2500*time.Millisecond || !r.HasMono {
		t.Errorf("record 41 = %+v", r)
	}
	if want := "3,41,2500000,c,caller=T7;x=\\x01\\x5c y\n SUBSYSTEM=mem\n DEVICE=+mem:1"; r.Raw != want {
		t.Errorf("Raw = %q, want %q", r.Raw, want)
	}
	if want := time.Unix(0, 0).Add(off + r.Mono); !r.Wall.Equal(want) {
		t.Errorf("Wall = %v, want %v (offset + Mono)", r.Wall, want)
	}
	r = recs[1]
	if r.Seq != 42 || r.Priority != 4 || r.Facility != 1 || r.Cont || r.Text != "Memory cgroup stats for /a:\nanon 1\nfile 2" {
		t.Errorf("record 42 = %+v", r)
	}
	if l.Lost() != 0 {
		t.Errorf("Lost() = %d, want 0", l.Lost())
	}
	if !strings.Contains(fmt.Sprint(logs.entries(t)), "malformed") {
		t.Errorf("malformed record not logged: %v", logs.entries(t))
	}
}

func TestLiveFakeReadError(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name string
		dev  *fakeDevice
		want error
	}{
		{"error", newFakeDevice(kmsgLine(1, "a"), fakeRead{err: boom}), boom},
		{"eof", func() *fakeDevice { d := newFakeDevice(kmsgLine(1, "a")); d.endEOF = true; return d }(), io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, logs := openFake(t, context.Background(), tt.dev, WithStartAtBeginning())
			collect(t, l, 1)
			waitClosed(t, l)
			err := l.Err()
			if !errors.Is(err, tt.want) || !strings.Contains(fmt.Sprint(err), "/fake/kmsg") {
				t.Errorf("Err() = %v, want one wrapping %v and naming the device", err, tt.want)
			}
			if !strings.Contains(fmt.Sprint(logs.entries(t)), "reading stopped") {
				t.Errorf("fatal error not logged")
			}
		})
	}
}

func TestLiveFakeStop(t *testing.T) {
	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		dev := newFakeDevice(kmsgLine(1, "a"))
		l, _ := openFake(t, ctx, dev, WithStartAtBeginning())
		collect(t, l, 1)
		cancel()
		waitClosed(t, l)
		if err := l.Err(); err != nil {
			t.Errorf("Err() after cancel = %v, want nil", err)
		}
	})
	t.Run("close with unread records", func(t *testing.T) {
		var script []fakeRead
		for s := uint64(1); s <= 2*liveRecordBuffer; s++ {
			script = append(script, kmsgLine(s, "x"))
		}
		l, _ := openFake(t, context.Background(), newFakeDevice(script...), WithStartAtBeginning())
		collect(t, l, 1)
		done := make(chan error)
		go func() { done <- l.Close() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Close() = %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Close blocked while the reader was blocked on a full channel")
		}
		if err := l.Close(); err != nil {
			t.Errorf("second Close() = %v", err)
		}
		if err := l.Err(); err != nil {
			t.Errorf("Err() after Close = %v, want nil", err)
		}
	})
	t.Run("canceled context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := OpenLive(ctx, withOpener(func(string) (device, error) { return newFakeDevice(), nil }))
		if !errors.Is(err, context.Canceled) {
			t.Errorf("OpenLive(canceled) = %v, want context.Canceled", err)
		}
	})
	t.Run("open error", func(t *testing.T) {
		_, err := OpenLive(context.Background(), WithDevice("/nonexistent/kmsg"))
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "/nonexistent/kmsg") {
			t.Errorf("OpenLive(missing) = %v, want ErrNotExist naming the path", err)
		}
	})
}

func TestSampleOffset(t *testing.T) {
	// Three triples; the second has the tightest monotonic interval
	// (2 µs) and gives the offset 1000 s − midpoint.
	readings := []time.Duration{
		100, 1000_000_000_000, 150, // span 50
		200, 1000_000_000_300, 202, // span 2, midpoint 201
		300, 1000_000_000_000, 330, // span 30
	}
	i := 0
	clock := func(int32) (time.Duration, error) { v := readings[i]; i++; return v, nil }
	off, err := sampleOffset(clock, 3)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Duration(1000_000_000_300 - 201); off != want {
		t.Errorf("offset = %d, want %d", off, want)
	}
	// A clock that fails is an error.
	if _, err := sampleOffset(func(int32) (time.Duration, error) { return 0, syscall.EINVAL }, 3); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("failing clock: err = %v", err)
	}
	// Backwards in every sample is an error.
	j := 0
	back := func(int32) (time.Duration, error) { j++; return time.Duration(1000 - j), nil }
	if _, err := sampleOffset(back, 2); err == nil {
		t.Error("backwards clock: no error")
	}
	// The real clocks: realtime − monotonic is the boot time, which
	// time.Now agrees with to well within a second.
	off, err = sampleOffset(clockGettime, 8)
	if err != nil {
		t.Fatal(err)
	}
	mono, err := clockGettime(clockMonotonic)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(time.Unix(0, 0).Add(off + mono)); d < -time.Millisecond || d > time.Millisecond {
		t.Errorf("offset + CLOCK_MONOTONIC is %v away from time.Now", d)
	}
}

func TestLiveWallResample(t *testing.T) {
	logs := &syncBuffer{}
	l := &Reader{
		cfg:     liveConfig{clock: fixedClock(2000 * time.Second)},
		log:     zerolog.New(logs),
		offset:  1000 * time.Second,
		sampled: time.Now(),
	}
	// A fresh sample is used as is.
	if got, want := l.wall(time.Second), time.Unix(1001, 0); !got.Equal(want) {
		t.Errorf("fresh offset: wall = %v, want %v", got, want)
	}
	// A sample older than offsetResample is taken again: NTP stepped the
	// clock by 1000 s meanwhile.
	l.sampled = time.Now().Add(-2 * offsetResample)
	if got, want := l.wall(time.Second), time.Unix(2001, 0); !got.Equal(want) {
		t.Errorf("resampled: wall = %v, want %v", got, want)
	}
	// A failing clock keeps the last offset and logs.
	l.cfg.clock = func(int32) (time.Duration, error) { return 0, syscall.EINVAL }
	l.sampled = time.Now().Add(-2 * offsetResample)
	if got, want := l.wall(time.Second), time.Unix(2001, 0); !got.Equal(want) {
		t.Errorf("failing clock: wall = %v, want %v", got, want)
	}
	if !strings.Contains(fmt.Sprint(logs.entries(t)), "sampling the clocks") {
		t.Error("clock failure not logged")
	}
}

// TestGoClock checks the default clock seam against clock_gettime(2): both
// clocks within a millisecond of the kernel's readings around them.
func TestGoClock(t *testing.T) {
	c := goClock()
	for _, id := range []int32{clockMonotonic, clockRealtime} {
		for range 100 {
			before, err := clockGettime(id)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c(id)
			if err != nil {
				t.Fatal(err)
			}
			after, err := clockGettime(id)
			if err != nil {
				t.Fatal(err)
			}
			if got < before-time.Millisecond || got > after+time.Millisecond {
				t.Fatalf("clock %d: %v, the kernel read %v and %v around it", id, got, before, after)
			}
		}
	}
}

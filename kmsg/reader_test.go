package kmsg

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oomscope/oomscope/e2e/kernellock"
)

// openRealReader opens a Reader on /dev/kmsg, closed at cleanup.
func openRealReader(t *testing.T, ctx context.Context, opts ...LiveOption) *Reader {
	t.Helper()
	r, err := OpenReader(ctx, opts...)
	if err != nil {
		t.Fatalf("OpenReader: %v", err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return r
}

// TestReaderDeadline checks that Read waits for a record until its
// deadline, returns a record written meanwhile, and returns at once, with
// what is there, when the deadline has passed.
func TestReaderDeadline(t *testing.T) {
	kernellock.Acquire(t)
	r := openRealReader(t, context.Background(), WithStartAtEnd())
	tag := "oomscope-test reader-deadline " + newNonce()

	// Nothing of ours is written: Read returns by its deadline. Other
	// writers may add records; those are returned early, which is fine.
	began := time.Now()
	for {
		recs, err := r.Read(nil, began.Add(100*time.Millisecond))
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		if len(recs) == 0 {
			break
		}
	}
	if d := time.Since(began); d < 100*time.Millisecond || d > 5*time.Second {
		t.Errorf("Read with nothing to read returned after %v, want its 100ms deadline", d)
	}

	// A record written while Read waits wakes it.
	go func() {
		time.Sleep(50 * time.Millisecond)
		writeKmsg(t, "<6>"+tag+" wake\n")
	}()
	deadline := time.Now().Add(10 * time.Second)
	found := false
	for !found && time.Now().Before(deadline) {
		recs, err := r.Read(nil, deadline)
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		for _, rec := range recs {
			found = found || strings.Contains(rec.Text, tag+" wake")
		}
	}
	if !found {
		t.Fatal("the record written while Read waited was not returned")
	}

	// A deadline already passed: what is there, without waiting.
	writeKmsg(t, "<6>"+tag+" past\n")
	began = time.Now()
	found = false
	for {
		recs, err := r.Read(nil, time.Now().Add(-time.Second))
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		if len(recs) == 0 {
			break
		}
		for _, rec := range recs {
			found = found || strings.Contains(rec.Text, tag+" past")
		}
	}
	if !found {
		t.Error("Read with a past deadline did not return the record written before it")
	}
	if d := time.Since(began); d > time.Second {
		t.Errorf("Read with a past deadline took %v", d)
	}
}

// TestReaderNoneMeansNone checks what the daemon relies on to end a
// report by its deadline: when Read returns no record, every record
// written before the call has been returned — with the records written
// by another goroutine meanwhile.
func TestReaderNoneMeansNone(t *testing.T) {
	kernellock.Acquire(t)
	const n = 40
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r := openRealReader(t, ctx, WithStartAtEnd())
	tag := "oomscope-test reader-none " + newNonce()
	var written atomic.Int64
	werr := writeTaggedAsync(n, tag, &written)
	got, nones := int64(0), 0
	var recs []Record
	for got < n {
		w := written.Load() // records 0..w-1 are in the kernel now
		// Half the calls wait a little, half not at all.
		dl := time.Now().Add(-time.Millisecond)
		if nones%2 == 1 {
			dl = time.Now().Add(time.Millisecond)
		}
		var err error
		recs, err = r.Read(recs[:0], dl)
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		if len(recs) == 0 {
			nones++
			if got < w {
				t.Fatalf("Read returned no record with %d of %d records written and not returned", w-got, w)
			}
		}
		for _, rec := range recs {
			if strings.Contains(rec.Text, tag) {
				got++
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("received %d of %d records", got, n)
		}
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	t.Logf("%d reads returned none", nones)
}

// TestReaderClose checks that Close and the context's end make a waiting
// Read return ErrClosed.
func TestReaderClose(t *testing.T) {
	for _, how := range []string{"Close", "context"} {
		t.Run(how, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			r := openRealReader(t, ctx, WithStartAtEnd())
			errc := make(chan error, 1)
			go func() {
				for {
					recs, err := r.Read(nil, time.Time{})
					if err != nil || len(recs) == 0 {
						errc <- err
						return
					}
				}
			}()
			time.Sleep(50 * time.Millisecond)
			if how == "Close" {
				r.Close()
			} else {
				cancel()
			}
			select {
			case err := <-errc:
				if !errors.Is(err, ErrClosed) {
					t.Errorf("Read after %s = %v, want ErrClosed", how, err)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("Read still waiting 5s after %s", how)
			}
		})
	}
}

package outbox

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The crash test runs this test binary again as a child process that puts
// entries until it is killed.
const (
	childPathEnv   = "OOMSCOPE_OUTBOX_CRASH_CHILD" // the outbox file; unset: not the child
	childPrefixEnv = "OOMSCOPE_OUTBOX_CRASH_PREFIX"
	childRunEnv    = "OOMSCOPE_OUTBOX_CRASH_RUN" // "1": also deliver (and remove) while putting
)

// childBody is the body of report id: its size varies (so that entries
// span one page or several), and it names its id, so that the parent can
// check it came back whole.
func childBody(id string, i int) []byte {
	b, _ := json.Marshal(map[string]any{"id": id, "pad": strings.Repeat("p", 100+(i*397)%6000)})
	return b
}

// TestCrashChild is the child of TestKill9 (it does nothing in a normal
// run). It opens the outbox, prints "open", then Puts entries in a loop and
// prints "ack ID" after each Put returned, until it is killed.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(childPathEnv)
	if path == "" {
		return
	}
	o, err := Open(path, Config{})
	if err != nil {
		fmt.Printf("error %v\n", err)
		os.Exit(2)
	}
	if os.Getenv(childRunEnv) == "1" {
		go o.Run(context.Background(), discardSink{})
	}
	fmt.Println("open")
	prefix := os.Getenv(childPrefixEnv)
	for i := 0; ; i++ {
		id := fmt.Sprintf("%s-%d", prefix, i)
		added, err := o.Put(id, childBody(id, i))
		if err != nil {
			fmt.Printf("error %v\n", err)
			os.Exit(2)
		}
		if !added {
			fmt.Printf("error %s not added\n", id)
			os.Exit(2)
		}
		fmt.Printf("ack %s\n", id) // os.Stdout is unbuffered: one write per line
	}
}

// discardSink confirms everything (the child's deliveries, so that the kill
// also lands amid cursor commits and removals).
type discardSink struct{}

func (discardSink) Name() string                         { return "archive" }
func (discardSink) Deliver(context.Context, Entry) error { return nil }

// kill -9 at any moment loses no entry whose Put returned: three times a
// child Puts in a loop and is SIGKILLed mid-stream (the second time while
// it also delivers and removes entries); after each, the reopened file
// holds every acknowledged id exactly once (or remembers it as removed),
// bodies intact, and bbolt's check passes. While the child holds the file,
// a second Open fails fast with ErrLocked. At the end Run delivers every
// entry held, once, in order.
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("runs child processes")
	}
	path := filepath.Join(t.TempDir(), "outbox.db")
	type ack struct {
		id    string
		round int
	}
	var acked []ack
	for round := 1; round <= 3; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(),
			childPathEnv+"="+path,
			fmt.Sprintf("%s=round%d", childPrefixEnv, round),
			childRunEnv+"="+deliverIn(round))
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 1<<16)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		next := func() string {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("round %d: child exited early: %v", round, cmd.Wait())
				}
				if strings.HasPrefix(l, "error") {
					t.Fatalf("round %d: child: %s", round, l)
				}
				return l
			case <-time.After(60 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("round %d: child silent for 60s", round)
			}
			return ""
		}
		if l := next(); l != "open" {
			t.Fatalf("round %d: child said %q first, want open", round, l)
		}
		n := 0
		want := 200 + rand.IntN(300)
		for n < want {
			l := next()
			id, ok := strings.CutPrefix(l, "ack ")
			if !ok {
				t.Fatalf("round %d: child said %q", round, l)
			}
			acked = append(acked, ack{id, round})
			n++
			if n == 50 && round == 1 {
				// The child holds the file: a second Open fails fast.
				t0 := time.Now()
				_, err := Open(path, Config{LockTimeout: 300 * time.Millisecond})
				el := time.Since(t0)
				if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "another oomscope holds the state dir") {
					t.Fatalf("Open while the child holds the file = %v, want ErrLocked saying another oomscope holds the state dir", err)
				}
				if el > 2*time.Second {
					t.Errorf("Open while locked took %v", el)
				}
				t.Logf("Open while the child holds the file failed after %v: %v", el.Round(time.Millisecond), err)
			}
		}
		time.Sleep(time.Duration(rand.IntN(20)) * time.Millisecond) // kill at a random point of a Put
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		for l := range lines { // what the child printed before it died
			if id, ok := strings.CutPrefix(l, "ack "); ok {
				acked = append(acked, ack{id, round})
			}
		}
		werr := cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(werr, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: child ended with %v, want killed by SIGKILL", round, werr)
		}

		// Reopen: every acknowledged id is there exactly once, or (for the
		// ids a child delivered) remembered as removed.
		o, err := Open(path, Config{})
		if err != nil {
			t.Fatalf("round %d: reopen after kill -9: %v", round, err)
		}
		held := map[string]int{}
		for _, id := range heldIDs(t, o) { // also checks the store, bbolt's check included
			held[id]++
		}
		for id, c := range held {
			if c != 1 {
				t.Errorf("round %d: %s held %d times", round, id, c)
			}
		}
		inRound, missing := 0, 0
		for _, a := range acked {
			if a.round == round {
				inRound++
			}
			if held[a.id] == 1 {
				continue
			}
			// Not held: only the round 2 child delivered (and removed)
			// entries, those of rounds 1 and 2; their ids are remembered.
			mayBeRemoved := round >= 2 && a.round <= 2
			if !mayBeRemoved || func() bool { added, _ := o.Put(a.id, nil); return added }() {
				missing++
				t.Errorf("round %d: acknowledged %s (round %d) lost", round, a.id, a.round)
			}
		}
		t.Logf("round %d: killed the child after %d acknowledged Puts; %d entries held; %d acknowledged in all, %d lost",
			round, inRound, len(held), len(acked), missing)
		if err := o.Close(); err != nil {
			t.Fatal(err)
		}
	}

	// Run delivers every entry held, once, in order, bodies whole.
	o := openAt(t, path, Config{})
	before := heldIDs(t, o)
	s := newRec("archive")
	startRun(t, o, s)
	drain(t, o)
	got := s.entries()
	if len(got) != len(before) {
		t.Fatalf("delivered %d entries, %d were held", len(got), len(before))
	}
	for i, e := range got {
		if e.ID != before[i] || (i > 0 && e.Seq <= got[i-1].Seq) {
			t.Fatalf("delivery %d: %s seq %d, want %s after seq %d", i, e.ID, e.Seq, before[i], got[max(i-1, 0)].Seq)
		}
		var b struct{ ID string }
		if err := json.Unmarshal(e.Body, &b); err != nil || b.ID != e.ID {
			t.Fatalf("entry %s: body %.60q... does not decode to its id: %v", e.ID, e.Body, err)
		}
	}
	t.Logf("final Run delivered %d entries", len(got))
}

// deliverIn tells the child of round whether to deliver too: round 2 does.
func deliverIn(round int) string {
	if round == 2 {
		return "1"
	}
	return "0"
}

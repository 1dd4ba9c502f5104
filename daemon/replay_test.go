package daemon_test

import (
	"context"
	"os"
	"sync"
	"testing"

	"github.com/oomscope/oomscope/daemon"
	"github.com/oomscope/oomscope/kmsg"
)

// memQueue is an in-memory Queue that deduplicates by id as the outbox does.
type memQueue struct {
	mu   sync.Mutex
	seen map[string][]byte
}

func (q *memQueue) Put(id string, body []byte) (bool, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.seen[id]; ok {
		return false, nil
	}
	q.seen[id] = body
	return true, nil
}

// TestReplayTwice: a saved log's reports all reach the queue, and a second
// replay of the same file adds nothing.
func TestReplayTwice(t *testing.T) {
	q := &memQueue{seen: map[string][]byte{}}
	for i, wantAdded := range []int{3, 0} {
		f, err := os.Open(capture)
		if err != nil {
			t.Fatal(err)
		}
		sc := kmsg.NewScanner(f)
		read, added, err := daemon.Replay(context.Background(), sc, daemon.ReplayConfig{Queue: q})
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if read != 3 || added != wantAdded {
			t.Errorf("replay %d: read %d added %d, want 3 and %d", i+1, read, added, wantAdded)
		}
	}
	if len(q.seen) != 3 {
		t.Errorf("queue holds %d reports, want 3", len(q.seen))
	}
}

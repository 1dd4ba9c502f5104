package sink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
)

// JSONLines writes each report as one JSON line to a writer (standard
// output for `oomscope run --stdout`). It remembers the ids it wrote during
// its lifetime (bounded) so a report is not printed twice.
type JSONLines struct {
	mu      sync.Mutex
	w       io.Writer
	noRaw   bool
	seen    map[string]struct{}
	order   []string
	maxSeen int
}

// NewJSONLines returns a JSON-lines sink on w. With withRaw false the raw
// kernel lines are left out of the output.
func NewJSONLines(w io.Writer, withRaw bool) *JSONLines {
	return &JSONLines{w: w, noRaw: !withRaw, seen: make(map[string]struct{}), maxSeen: 4096}
}

// Name implements [Sink].
func (j *JSONLines) Name() string { return "stdout" }

// Publish implements [Sink].
func (j *JSONLines) Publish(_ context.Context, d Delivery) error {
	r := d.Report
	if r == nil || r.Report == nil {
		return errors.New("sink: nil report")
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, ok := j.seen[r.ID]; ok {
		return nil
	}
	var line []byte
	if !j.noRaw && d.Body != nil {
		// The stored JSON is the report whole: written as it is (copied,
		// as the newline must not go into the caller's slice).
		line = append(append(make([]byte, 0, len(d.Body)+1), d.Body...), '\n')
	} else {
		out := r
		if j.noRaw {
			out = r.WithoutRaw()
		}
		b, err := json.Marshal(out)
		if err != nil {
			return fmt.Errorf("sink: encoding report %s: %w", r.ID, err)
		}
		line = append(b, '\n')
	}
	if _, err := j.w.Write(line); err != nil {
		return fmt.Errorf("sink: writing report %s: %w", r.ID, err)
	}
	j.seen[r.ID] = struct{}{}
	j.order = append(j.order, r.ID)
	if len(j.order) > j.maxSeen {
		delete(j.seen, j.order[0])
		j.order = j.order[1:]
	}
	return nil
}

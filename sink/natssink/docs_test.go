package natssink

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// TestDocsStreamJSON keeps the stream definition in docs/nats.md equal to
// StreamConfig's.
func TestDocsStreamJSON(t *testing.T) {
	doc, err := os.ReadFile("../../docs/nats.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "<!-- stream-json")
	if !ok {
		t.Fatal("no stream-json marker in docs/nats.md")
	}
	_, rest, _ = strings.Cut(rest, "```json\n")
	block, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatal("no json block after the marker")
	}
	var got jetstream.StreamConfig
	if err := json.Unmarshal([]byte(block), &got); err != nil {
		t.Fatalf("docs/nats.md stream JSON: %v", err)
	}
	want := StreamConfig(StreamName, DefaultDuplicateWindow, DefaultMaxAge, 1)
	if got.Name != want.Name || got.Description != want.Description || strings.Join(got.Subjects, ",") != strings.Join(want.Subjects, ",") ||
		got.Retention != want.Retention || got.Discard != want.Discard || got.Storage != want.Storage ||
		got.Replicas != want.Replicas || got.Duplicates != want.Duplicates || got.MaxAge != want.MaxAge {
		t.Errorf("docs/nats.md says\n%+v\nStreamConfig is\n%+v", got, want)
	}
	for _, flag := range []string{"--subjects 'oomscope.v1.>'", "--dupe-window 2m", "--max-age 30d", "--storage file"} {
		if !strings.Contains(string(doc), flag) {
			t.Errorf("docs/nats.md: nats stream add lacks %s", flag)
		}
	}
}

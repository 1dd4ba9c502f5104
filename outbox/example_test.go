package outbox_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/oomscope/oomscope/outbox"
)

// printSink stands for a real sink (the archive, NATS, Kubernetes Events).
type printSink struct{}

func (printSink) Name() string { return "stdout" }

func (printSink) Deliver(ctx context.Context, e outbox.Entry) error {
	fmt.Printf("deliver seq=%d id=%s %s\n", e.Seq, e.ID, e.Body)
	return nil // durably delivered: the outbox may forget it
}

// The daemon puts every report, runs the sinks, and (for `run --source
// FILE`) waits until they have everything before it exits.
func Example() {
	dir, err := os.MkdirTemp("", "oomscope-state")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	ob, err := outbox.Open(filepath.Join(dir, "outbox.db"), outbox.Config{})
	if err != nil {
		log.Fatal(err) // e.g. another oomscope holds the state dir
	}
	defer ob.Close()

	for _, id := range []string{"r1", "r2", "r1"} { // r1 comes twice: a replayed log
		added, err := ob.Put(id, []byte(`{"id":"`+id+`"}`))
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("put %s added=%v\n", id, added)
	}
	n, _ := ob.Pending("stdout")
	fmt.Println("pending:", n)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- ob.Run(ctx, printSink{}) }()
	if err := ob.WaitDrained(ctx); err != nil {
		log.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		log.Fatal(err)
	}
	n, _ = ob.Pending("stdout")
	fmt.Println("pending:", n)
	// Output:
	// put r1 added=true
	// put r2 added=true
	// put r1 added=false
	// pending: 2
	// deliver seq=1 id=r1 {"id":"r1"}
	// deliver seq=2 id=r2 {"id":"r2"}
	// pending: 0
}

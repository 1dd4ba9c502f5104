package archive_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/oomscope/oomscope/archive"
	"github.com/oomscope/oomscope/report"
)

// A writer (the daemon) archives reports; a reader (`oomscope archive`, in
// another process) lists them and loads one.
func Example() {
	dir, err := os.MkdirTemp("", "oomscope-archive-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()

	w, err := archive.OpenWriter(ctx, archive.DefaultConfig(dir))
	if err != nil {
		panic(err)
	}
	defer w.Close()
	for i, comm := range []string{"python3", "java"} {
		wall := time.Now().Add(time.Duration(i-2) * time.Minute)
		er := &report.Enriched{Report: &report.Report{
			Schema: report.Schema, ID: fmt.Sprintf("8f5b1c2d-3e4f-4071-8293-a4b5c6d7e8f9/%d", 400+i), Kind: report.KindMemcg,
			First:   report.Stamp{Wall: &wall},
			Victims: []report.Victim{{PID: 4242 + i, Comm: comm}},
			Raw:     []string{"6,400,5235078,-;Memory cgroup out of memory: Killed process ..."},
		}, Pod: &report.Pod{Namespace: "shop", Name: "cart-7d9", UID: "0b7e3c1e-5a42-4c1b-9d7a-2f1f8c3e9a11"}}
		if _, err := w.Put(ctx, er); err != nil {
			panic(err)
		}
	}

	r, err := archive.Open(ctx, archive.Config{Dir: dir})
	if err != nil {
		panic(err)
	}
	for _, e := range r.List(archive.Filter{Namespace: "shop", Since: time.Now().Add(-time.Hour)}) {
		fmt.Println(e.ID, e.File, e.Namespace+"/"+e.Pod, e.Comm, e.PID)
	}
	e, err := r.Lookup("8f5b1c2d-3e4f-4071-8293-a4b5c6d7e8f9/401")
	if err != nil {
		panic(err)
	}
	er, err := r.Load(e)
	if err != nil {
		panic(err)
	}
	fmt.Println(len(er.Raw), "raw kernel line")
	// Output:
	// 8f5b1c2d-3e4f-4071-8293-a4b5c6d7e8f9/400 8f5b1c2d-3e4f-4071-8293-a4b5c6d7e8f9/400.json shop/cart-7d9 python3 4242
	// 8f5b1c2d-3e4f-4071-8293-a4b5c6d7e8f9/401 8f5b1c2d-3e4f-4071-8293-a4b5c6d7e8f9/401.json shop/cart-7d9 java 4243
	// 1 raw kernel line
}

// Command oomscope is an OOM-kill forensics tool for Linux and Kubernetes
// nodes: it rebuilds every oom-killer report from the kernel log, says who
// was killed and why, and publishes the post-mortem.
//
// Subcommands:
//
//	oomscope parse [FILE...|-]   reports found in saved kernel logs
//	oomscope run                 the node daemon: tail /dev/kmsg, enrich, publish
//	oomscope version
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd(os.Stdin, os.Stdout, os.Stderr).ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "oomscope:", err)
		os.Exit(exitCode(err))
	}
}

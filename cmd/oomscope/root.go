package main

import (
	"errors"
	"io"

	"github.com/spf13/cobra"
)

// usageError marks errors caused by the command line (exit code 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func exitCode(err error) int {
	var u usageError
	if errors.As(err, &u) {
		return 2
	}
	return 1
}

// newRootCmd builds the command tree of the real binary.
func newRootCmd(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	return newRootCmdWith(stdin, stdout, stderr, kubePodLookup)
}

// newRootCmdWith builds the command tree with its I/O streams and the
// Kubernetes pod lookup injected (tests).
func newRootCmdWith(stdin io.Reader, stdout, stderr io.Writer, lookup podLookupFunc) *cobra.Command {
	root := &cobra.Command{
		Use:           "oomscope",
		Short:         "OOM-kill forensics for Linux and Kubernetes nodes",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newTailCmd(), newHistoryCmd())
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newParseCmd(lookup), newRunCmd(lookup), newVersionCmd(), newDemoCmd(), newDemoAllocCmd())
	root.AddCommand(newArchiveCmd())
	return root
}

package oomparse

import (
	"errors"
	"fmt"
)

// Sentinel errors. Check them with errors.Is.
var (
	// ErrInvalidOption is wrapped by [New] for an option out of range.
	ErrInvalidOption = errors.New("oomparse: invalid option")
	// ErrMalformed is wrapped by every [LineError] about a line that looks
	// like part of a report but could not be parsed.
	ErrMalformed = errors.New("oomparse: malformed line")
	// ErrGap is wrapped when sequence numbers show lost records.
	ErrGap = errors.New("oomparse: records lost")
)

// LineError describes one problem met while parsing, with where it happened.
// It is passed to the handler set with [WithErrorHandler]; the parser keeps
// going and the report keeps what it could read.
type LineError struct {
	// Seq is the sequence number (or file record number) of the record.
	Seq uint64
	// Line is the text that could not be parsed (clipped).
	Line string
	// Err wraps ErrMalformed or ErrGap.
	Err error
}

// Error implements error.
func (e *LineError) Error() string {
	return fmt.Sprintf("record %d: %v: %q", e.Seq, e.Err, e.Line)
}

// Unwrap returns the underlying error.
func (e *LineError) Unwrap() error { return e.Err }

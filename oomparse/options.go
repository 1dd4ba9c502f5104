package oomparse

import (
	"fmt"
	"time"
)

// Defaults for the options of [New].
const (
	DefaultMaxTasks      = 10000
	DefaultMaxLines      = 20000
	DefaultMaxRawBytes   = 8 << 20
	DefaultMaxCallTrace  = 128
	DefaultMaxUnrelated  = 2000
	DefaultIdleTimeout   = 10 * time.Second
	DefaultVictimLinger  = 3 * time.Second
	DefaultLingerRecords = 256
)

// Option configures a [Parser].
type Option func(*config) error

type config struct {
	maxTasks      int
	maxLines      int
	maxRawBytes   int
	maxCallTrace  int
	maxUnrelated  int
	idleTimeout   time.Duration
	victimLinger  time.Duration
	lingerRecords int
	bootID        string
	host          string
	keepRaw       bool
	onError       func(*LineError)
}

func defaultConfig() config {
	return config{
		maxTasks:      DefaultMaxTasks,
		maxLines:      DefaultMaxLines,
		maxRawBytes:   DefaultMaxRawBytes,
		maxCallTrace:  DefaultMaxCallTrace,
		maxUnrelated:  DefaultMaxUnrelated,
		idleTimeout:   DefaultIdleTimeout,
		victimLinger:  DefaultVictimLinger,
		lingerRecords: DefaultLingerRecords,
		keepRaw:       true,
	}
}

// WithMaxTasks caps the task-table rows kept per report (the largest by rss
// are kept; counts stay exact). n >= 1.
func WithMaxTasks(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("%w: max tasks must be >= 1, got %d", ErrInvalidOption, n)
		}
		c.maxTasks = n
		return nil
	}
}

// WithMaxLines caps the raw records kept per report. n >= 1.
func WithMaxLines(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("%w: max lines must be >= 1, got %d", ErrInvalidOption, n)
		}
		c.maxLines = n
		return nil
	}
}

// WithMaxRawBytes caps the bytes of raw records kept per report; records
// beyond it are counted in Report.RawDropped. n >= 1.
func WithMaxRawBytes(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("%w: max raw bytes must be >= 1, got %d", ErrInvalidOption, n)
		}
		c.maxRawBytes = n
		return nil
	}
}

// WithMaxUnrelated sets how many consecutive records that are not part of
// an unfinished report end it (flagged incomplete). n >= 1.
func WithMaxUnrelated(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("%w: max unrelated must be >= 1, got %d", ErrInvalidOption, n)
		}
		c.maxUnrelated = n
		return nil
	}
}

// WithIdleTimeout sets how long, in kernel time, an unfinished report may go
// without a new record before [Parser.Expire] ends it, flagged incomplete.
func WithIdleTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("%w: idle timeout must be > 0, got %v", ErrInvalidOption, d)
		}
		c.idleTimeout = d
		return nil
	}
}

// WithVictimLinger sets how long after its last victim line a finished
// report waits for memory.oom.group members and oom_reaper lines before it is
// emitted (kernels >= 5.15 delay the reaper by 2 s). It also waits for at
// most [DefaultLingerRecords] unrelated records. 0 emits a report at the
// first record that does not belong to it.
func WithVictimLinger(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("%w: victim linger must be >= 0, got %v", ErrInvalidOption, d)
		}
		c.victimLinger = d
		return nil
	}
}

// WithBootID sets the boot id used in report ids (see [Report.ID]).
func WithBootID(id string) Option {
	return func(c *config) error {
		c.bootID = id
		return nil
	}
}

// WithHost sets the host name put in reports whose records carry none.
func WithHost(h string) Option {
	return func(c *config) error {
		c.host = h
		return nil
	}
}

// WithoutRaw drops raw records from reports (they are kept by default).
func WithoutRaw() Option {
	return func(c *config) error {
		c.keepRaw = false
		return nil
	}
}

// WithErrorHandler sets a function called for every [LineError]. It is
// called synchronously from Feed, Flush or Expire.
func WithErrorHandler(f func(*LineError)) Option {
	return func(c *config) error {
		c.onError = f
		return nil
	}
}

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
	// DefaultContinuationGrace is how long, in kernel time, a record is
	// held back for a continuation fragment of it (a 'c' record).
	DefaultContinuationGrace = 20 * time.Millisecond
)

// The timing of [WithLiveTiming]: a reader of the live kernel log hands a
// report out a few milliseconds after its victim line. The kernel prints a
// report's "Killed process" line, its memory.oom.group line and the
// group's members in one oom_kill_process call, under oom_lock: 0.1 ms
// apart on this project's 6.18 host, up to 2.1 ms (the group line) and
// 14.6 ms (between two members) in the Debian kernels under qemu TCG
// (testdata/kernels/*-oom-group.kmsg). The oom_reaper line comes later
// (2 s later on kernels >= 5.15) and is not waited for.
const (
	// LiveVictimLinger is how long a report waits after its victim line
	// for a memory.oom.group line.
	LiveVictimLinger = 5 * time.Millisecond
	// LiveGroupLinger is how long a report that has its memory.oom.group
	// line waits after each member for the next.
	LiveGroupLinger = 100 * time.Millisecond
	// LiveContinuationGrace is how long a record waits for a continuation
	// fragment: a fragment follows its record at once, from the same task.
	LiveContinuationGrace = 5 * time.Millisecond
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
	groupLinger   time.Duration
	hasGroup      bool // groupLinger was set; else it is victimLinger
	lingerRecords int
	contGrace     time.Duration
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
		contGrace:     DefaultContinuationGrace,
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

// WithGroupLinger sets how long a report whose memory.oom.group line was
// read waits after each group member's "Killed process" line for the next
// member. By default it is the victim linger ([WithVictimLinger]).
func WithGroupLinger(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("%w: group linger must be >= 0, got %v", ErrInvalidOption, d)
		}
		c.groupLinger, c.hasGroup = d, true
		return nil
	}
}

// WithContinuationGrace sets how long, in kernel time, a record is held
// back for a continuation fragment ('c' record) of the same caller before
// it is parsed (default [DefaultContinuationGrace]). d > 0.
func WithContinuationGrace(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("%w: continuation grace must be > 0, got %v", ErrInvalidOption, d)
		}
		c.contGrace = d
		return nil
	}
}

// WithLiveTiming sets the timing for a reader of the live kernel log, which
// must hand a report out as soon as the kernel has printed it:
// [WithVictimLinger]([LiveVictimLinger]), [WithGroupLinger]([LiveGroupLinger])
// and [WithContinuationGrace]([LiveContinuationGrace]). The oom_reaper
// line, which comes seconds later, is then not in the report (Victim.Reaper
// stays nil); such a late line is counted ([Parser.LateReaperLines]) and
// never names a victim of another report. Options after it override it.
func WithLiveTiming() Option {
	return func(c *config) error {
		c.victimLinger = LiveVictimLinger
		c.groupLinger, c.hasGroup = LiveGroupLinger, true
		c.contGrace = LiveContinuationGrace
		return nil
	}
}

// WithMemoryCgroupV1 says that the kernel's memory controller is on cgroup
// v1 (no cgroup v2 memory controller on the host: legacy or hybrid mode).
// There the kernel never prints a memory.oom.group line
// (mem_cgroup_get_oom_group returns NULL unless the controller is on the
// v2 hierarchy), so a report is finished at its victim line: it sets the
// victim linger to 0, and a live reader hands a report out as soon as the
// kernel has no more records for it, without a timer. Give it after
// [WithLiveTiming]; on a host with a v2 memory controller it would cut
// memory.oom.group reports apart.
func WithMemoryCgroupV1() Option {
	return func(c *config) error {
		c.victimLinger = 0
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

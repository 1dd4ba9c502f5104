package kmsg

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/oomscope/oomscope/internal/ascii"
)

// ErrMalformed is wrapped by every error about a line that is not a valid
// record of the format being read.
var ErrMalformed = errors.New("kmsg: malformed record")

// Record is one kernel log record.
//
// Seq is the kernel's sequence number when HasSeq is true. Sources without
// sequence numbers (dmesg, syslog) number their records from 1 in file order
// and leave HasSeq false, so that no gap is ever inferred from them.
type Record struct {
	// Seq is the record's sequence number (see HasSeq).
	Seq uint64
	// HasSeq is true when Seq is the kernel's own sequence number.
	HasSeq bool
	// Priority is the syslog level, 0 (emerg) to 7 (debug); -1 when unknown.
	Priority int8
	// Facility is the syslog facility (0 for kernel messages).
	Facility uint8
	// Mono is the kernel timestamp: time since boot as printed by the
	// kernel (local_clock, microsecond resolution). HasMono says if known.
	Mono time.Duration
	// HasMono is true when Mono was read from the record.
	HasMono bool
	// Wall is the wall-clock time of the record, zero when unknown. Sources
	// document how they derive it.
	Wall time.Time
	// Cont is true for a record flagged as a continuation fragment
	// ('c' or '+'): a pr_cont piece the kernel could not merge.
	Cont bool
	// Caller is the ",caller=" field (CONFIG_PRINTK_CALLER), e.g. "T123".
	Caller string
	// Host is the host name for sources that carry one (syslog, journal).
	Host string
	// Text is the message with \xNN escapes decoded. It may contain '\n'.
	Text string
	// Dict holds the dictionary lines (without the leading space).
	Dict []string
	// Raw is the record as read, escapes intact, for archiving (without
	// what a paste put before each line: quote marks, line numbers).
	Raw string
	// Bare is true for a line read without any prefix (no timestamp, no
	// record header, no syslog tag): kernel text as pasted, or a line of
	// another program that cannot be told from it.
	Bare bool
	// Cut is true for a line the medium cut short: it ended in an ellipsis
	// ("…", removed; journalctl marks so a line it cut to the terminal's
	// width). Its last value may be a part of one.
	Cut bool
}

// Level is the syslog level name of the record's priority.
func (r Record) Level() string {
	names := [...]string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}
	if r.Priority < 0 || int(r.Priority) >= len(names) {
		return ""
	}
	return names[r.Priority]
}

// ParseRecord parses one /dev/kmsg record: the header line
// "PRIO,SEQ,USEC,FLAGS[,k=v...];TEXT" optionally followed by dictionary lines
// that start with a space, separated by '\n'. A trailing newline is ignored.
// Errors wrap [ErrMalformed] and quote the offending field.
func ParseRecord(raw string) (Record, error) {
	raw = strings.TrimSuffix(raw, "\n")
	head, rest, ok := strings.Cut(raw, ";")
	if !ok {
		return Record{}, fmt.Errorf("%w: no ';' after the header in %q", ErrMalformed, clip(raw))
	}
	text, dict := rest, ""
	if i := strings.Index(rest, "\n"); i >= 0 {
		text, dict = rest[:i], rest[i+1:]
	}
	rec := Record{Raw: raw, HasSeq: true, HasMono: true}
	if err := parseHeader(head, &rec); err != nil {
		return Record{}, err
	}
	rec.Text = Unescape(text)
	for dict != "" {
		var line string
		line, dict, _ = strings.Cut(dict, "\n")
		if strings.HasPrefix(line, " ") {
			rec.Dict = append(rec.Dict, Unescape(line[1:]))
		}
	}
	return rec, nil
}

// parseHeader fills the header fields of rec from "PRIO,SEQ,USEC,FLAGS[,...]".
func parseHeader(head string, rec *Record) error {
	var fields [4]string
	n := 0
	for n < 3 {
		f, r, ok := strings.Cut(head, ",")
		if !ok {
			return fmt.Errorf("%w: header %q has %d fields, want at least 4", ErrMalformed, clip(head), n+1)
		}
		fields[n], head = f, r
		n++
	}
	fields[3], head, _ = strings.Cut(head, ",")
	prio, err := strconv.ParseUint(fields[0], 10, 16)
	if err != nil {
		return fmt.Errorf("%w: priority %q: %w", ErrMalformed, clip(fields[0]), err)
	}
	rec.Priority = int8(prio & 7)
	rec.Facility = uint8(prio >> 3)
	if rec.Seq, err = strconv.ParseUint(fields[1], 10, 64); err != nil {
		return fmt.Errorf("%w: sequence number %q: %w", ErrMalformed, clip(fields[1]), err)
	}
	usec, err := strconv.ParseUint(fields[2], 10, 63)
	if err != nil || usec > uint64(maxUsec) {
		return fmt.Errorf("%w: timestamp %q: out of range or not a number", ErrMalformed, clip(fields[2]))
	}
	rec.Mono = time.Duration(usec) * time.Microsecond
	rec.Cont = fields[3] == "c" || fields[3] == "+"
	for head != "" {
		var kv string
		kv, head, _ = strings.Cut(head, ",")
		if v, ok := strings.CutPrefix(kv, "caller="); ok {
			rec.Caller = v
		}
	}
	return nil
}

// maxUsec is the largest timestamp that fits a time.Duration.
const maxUsec = int64(^uint64(0)>>1) / int64(time.Microsecond)

// Unescape decodes the kernel's \xNN escapes. Anything that is not a valid
// escape is kept as is.
func Unescape(s string) string {
	i := strings.Index(s, `\x`)
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i >= 0 {
		b.WriteString(s[:i])
		s = s[i:]
		if len(s) >= 4 && isHex(s[2]) && isHex(s[3]) {
			b.WriteByte(unhex(s[2])<<4 | unhex(s[3]))
			s = s[4:]
		} else {
			b.WriteString(s[:2])
			s = s[2:]
		}
		i = strings.Index(s, `\x`)
	}
	b.WriteString(s)
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// clip shortens s for use in an error message.
func clip(s string) string { return ascii.Clip(s, 80) }

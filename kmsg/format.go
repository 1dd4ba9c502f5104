package kmsg

import (
	"errors"
	"fmt"
	"strings"
)

// Format is the layout of a kernel log file read by a [Scanner].
type Format int

// The formats a [Scanner] reads. Formats of one family share a parser and
// differ only in how they were detected: a file detected as [FormatDmesg]
// still reads a "dmesg -T" line, and one detected as [FormatSyslog] reads a
// journalctl line. See [Detect] for how a line is classified.
const (
	// FormatAuto detects the format from the first line that identifies one.
	FormatAuto Format = iota
	// FormatKmsg is a raw /dev/kmsg dump: "6,372,76086772,-;text", with
	// dictionary lines that start with a space.
	FormatKmsg
	// FormatDmesg is util-linux dmesg output: "[   76.086772] text". The
	// "dmesg -x" prefix "kern  :info  : " and the "dmesg -r" prefix "<6>"
	// give the priority.
	FormatDmesg
	// FormatDmesgT is "dmesg -T" output: "[Sat Apr 27 22:56:09 2019] text".
	FormatDmesgT
	// FormatDmesgISO is "dmesg --time-format=iso" output:
	// "2019-04-27T22:56:09,123456+00:00 text" (a comma before the fraction).
	FormatDmesgISO
	// FormatSyslog is a syslog file (kern.log, /var/log/messages, syslog):
	// "Apr 27 22:56:09 host kernel: [   76.086772] text", with or without the
	// bracket, or the RFC 3339 stamp "2019-04-27T22:56:09.123456+00:00".
	FormatSyslog
	// FormatJournalShort is "journalctl -o short": "Apr 27 22:56:09 host kernel: text".
	FormatJournalShort
	// FormatJournalPrecise is "journalctl -o short-precise":
	// "Apr 27 22:56:09.123456 host kernel: text".
	FormatJournalPrecise
	// FormatJournalISO is "journalctl -o short-iso" and "short-iso-precise":
	// "2019-04-27T22:56:09+0000 host kernel: text".
	FormatJournalISO
	// FormatJournalJSON is "journalctl -o json": one JSON object per line.
	FormatJournalJSON
	// FormatText is kernel text without a known prefix ("dmesg -t", a code
	// block in a ticket): every non-blank line is one record, without a
	// timestamp. With [FormatAuto] such lines are read this way among the
	// others.
	FormatText

	numFormats
)

// ErrUnknownFormat is wrapped by [ParseFormat] for a name it does not know
// and by [Scanner.Err] when no line of the input matches a supported format.
var ErrUnknownFormat = errors.New("kmsg: unknown log format")

// String returns the format's name as accepted by [ParseFormat].
func (f Format) String() string {
	switch f {
	case FormatAuto:
		return "auto"
	case FormatKmsg:
		return "kmsg"
	case FormatDmesg:
		return "dmesg"
	case FormatDmesgT:
		return "dmesg-ctime"
	case FormatDmesgISO:
		return "dmesg-iso"
	case FormatSyslog:
		return "syslog"
	case FormatJournalShort:
		return "journal-short"
	case FormatJournalPrecise:
		return "journal-short-precise"
	case FormatJournalISO:
		return "journal-short-iso"
	case FormatJournalJSON:
		return "journal-json"
	case FormatText:
		return "text"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// ParseFormat returns the format named s (case-insensitive): a name returned
// by [Format.String], or one of the aliases "raw" (kmsg), "dmesg-t", "ctime",
// "kern.log", "messages", "short", "short-precise", "short-iso",
// "short-iso-precise", "json", "bare" and "plain" (text). Errors wrap [ErrUnknownFormat].
func ParseFormat(s string) (Format, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "auto", "":
		return FormatAuto, nil
	case "kmsg", "raw", "dev-kmsg", "/dev/kmsg":
		return FormatKmsg, nil
	case "dmesg":
		return FormatDmesg, nil
	case "dmesg-ctime", "dmesg-t", "ctime":
		return FormatDmesgT, nil
	case "dmesg-iso":
		return FormatDmesgISO, nil
	case "syslog", "kern.log", "messages", "rsyslog":
		return FormatSyslog, nil
	case "journal-short", "short", "journal":
		return FormatJournalShort, nil
	case "journal-short-precise", "short-precise":
		return FormatJournalPrecise, nil
	case "journal-short-iso", "short-iso", "journal-short-iso-precise", "short-iso-precise":
		return FormatJournalISO, nil
	case "journal-json", "json":
		return FormatJournalJSON, nil
	case "text", "bare", "plain":
		return FormatText, nil
	}
	names := make([]string, 0, numFormats)
	for f := FormatAuto; f < numFormats; f++ {
		names = append(names, f.String())
	}
	return FormatAuto, fmt.Errorf("%w %q (want one of %s)", ErrUnknownFormat, clip(s), strings.Join(names, ", "))
}

// family is the parser a format uses.
type family int

const (
	famNone  family = iota
	famKmsg         // raw /dev/kmsg
	famDmesg        // dmesg, dmesg -T, dmesg --time-format=iso
	famShort        // syslog and journalctl short*
	famJSON         // journalctl -o json
	famText         // no prefix (or one of no known format)
)

func (f Format) family() family {
	switch f {
	case FormatKmsg:
		return famKmsg
	case FormatDmesg, FormatDmesgT, FormatDmesgISO:
		return famDmesg
	case FormatSyslog, FormatJournalShort, FormatJournalPrecise, FormatJournalISO:
		return famShort
	case FormatJournalJSON:
		return famJSON
	case FormatText:
		return famText
	}
	return famNone
}

// Detect reports the format that one line identifies, or [FormatAuto] when
// the line identifies none (blank lines, garbage, journalctl's "-- ... --"
// markers, continuation lines).
//
// Syslog files and journalctl's short outputs share a layout, so a line
// alone cannot always tell them apart; Detect decides as follows:
//   - "Mmm dd hh:mm:ss.ffffff" (fractional seconds): [FormatJournalPrecise];
//   - "Mmm dd hh:mm:ss", a kernel line whose text starts with a "[ 76.086772]"
//     timestamp: [FormatSyslog] (rsyslog's imklog keeps it; journald drops it);
//   - "Mmm dd hh:mm:ss", any other kernel line: [FormatJournalShort];
//   - "Mmm dd hh:mm:ss", another program's line: [FormatSyslog];
//   - an RFC 3339 stamp with microseconds and a "+hh:mm" zone (rsyslog's
//     default) or a kernel line with a bracketed timestamp: [FormatSyslog];
//   - any other ISO 8601 stamp: [FormatJournalISO].
//
// A [Scanner] that has seen a journalctl marker line ("-- Logs begin at ...",
// "-- Boot ... --", "-- No entries --") before the first identifying line
// reports the journal variant instead of [FormatSyslog].
func Detect(line string) Format {
	line = cleanLine(line)
	if line == "" || line[0] == ' ' || line[0] == '\t' {
		return FormatAuto
	}
	switch c := line[0]; {
	case c == '{' || c == 0x1e:
		if isJournalJSON(line) {
			return FormatJournalJSON
		}
		return FormatAuto
	case c >= '0' && c <= '9':
		if isKmsgLine(line) {
			return FormatKmsg
		}
	}
	if h, ok := parseDmesgHead(line, nil); ok {
		return h.format
	}
	if h, ok := parseShortHead(line, nil); ok {
		return h.format
	}
	return FormatAuto
}

// cleanLine strips what is never part of a record from a line: leading NUL
// bytes (left in a log file by a crash), a UTF-8 byte order mark and a
// trailing carriage return.
func cleanLine(line string) string {
	line = strings.TrimRight(line, "\r\n")
	line = strings.TrimLeft(line, "\x00")
	line = strings.TrimPrefix(line, "\ufeff")
	return line
}

// isKmsgLine reports whether line is the header line of a /dev/kmsg record.
func isKmsgLine(line string) bool {
	head, _, ok := strings.Cut(line, ";")
	if !ok {
		return false
	}
	var r Record
	return parseHeader(head, &r) == nil
}

// isJournalMarker reports whether line is one of journalctl's "-- ... --"
// lines ("-- Logs begin at ...", "-- Journal begins at ...", "-- Boot ID --",
// "-- Reboot --", "-- No entries --").
func isJournalMarker(line string) bool {
	return len(line) >= 6 && strings.HasPrefix(line, "-- ") && strings.HasSuffix(line, " --")
}

// isJournalCatalog reports whether line is a catalog line that
// "journalctl -x" prints after an entry: "-- Subject: ..." (older) or
// "░░ Subject: ..." (newer).
func isJournalCatalog(line string) bool {
	return strings.HasPrefix(line, "-- ") || strings.HasPrefix(line, "░░ ") || line == "--" || line == "░░"
}

package kmsg

import (
	"strings"
	"time"
)

// head is what a text parser reads from the first line of a record.
type head struct {
	format Format // the format the line identifies
	rec    Record // Priority, Facility, Mono, Wall, Caller, Host
	text   string // the text on this line
	indent int    // byte offset of text in the line: continuation lines are indented by it
	kernel bool   // false for another program's line (syslog, journal)

	bsd      bsdStamp // the year-less stamp of a syslog line ...
	yearless bool     // ... when this is true (rec.Wall is then unset)
}

// parseDmesgHead parses the first line of a dmesg record in any of the
// layouts util-linux prints:
//
//	[   76.086772] text                  dmesg
//	[   76.086772 <    0.000010>] text   dmesg -d
//	[Sat Apr 27 22:56:09 2019] text      dmesg -T
//	2019-04-27T22:56:09,123456+00:00 text  dmesg --time-format=iso
//	kern  :info  : [   76.086772] text   dmesg -x (also without a time: -x -t)
//	<6>[   76.086772] text               dmesg -r (also without a time: -r -t)
//
// each optionally followed by the caller id "[  T123] " (CONFIG_PRINTK_CALLER),
// or directly by "[  T123]" as in the kernel's syslog(2) buffer. loc is the
// location of "dmesg -T" times; nil means UTC.
func parseDmesgHead(line string, loc *time.Location) (head, bool) {
	if loc == nil {
		loc = time.UTC
	}
	h := head{format: FormatDmesg, kernel: true}
	h.rec.Priority = -1
	p, prefixed := 0, false
	if pri, n, ok := parsePri(line); ok {
		h.rec.Priority, h.rec.Facility = int8(pri&7), uint8(pri>>3)
		p, prefixed = n, true
	} else if fac, lvl, n, ok := parseDecode(line); ok {
		h.rec.Priority, h.rec.Facility = int8(lvl), uint8(fac)
		p, prefixed = n, true
	}
	rest := line[p:]
	switch {
	case strings.HasPrefix(rest, "["):
		end := strings.IndexByte(rest, ']')
		if end < 0 || end > 64 {
			return head{}, false
		}
		inner := rest[1:end]
		if i := strings.IndexByte(inner, '<'); i >= 0 { // "-d": " <delta>"
			if !strings.HasSuffix(inner, ">") {
				return head{}, false
			}
			inner = strings.TrimRight(inner[:i], " ")
		}
		if mono, ok := parseMono(inner); ok {
			h.rec.Mono, h.rec.HasMono = mono, true
		} else if t, ok := parseCtime(inner, loc); ok {
			h.rec.Wall, h.format = t, FormatDmesgT
		} else if t, ok := parseCtimeAny(inner, loc); ok {
			// Another locale's day and month names: read what can be
			// read, the date is unknown when the month is.
			h.rec.Wall, h.format = t, FormatDmesgT
		} else {
			return head{}, false
		}
		p += end + 1
		switch {
		case p == len(line):
		case line[p] == ' ':
			p++
		case line[p] == '[': // "[ts][  T123] text" from syslog(2)
		default:
			return head{}, false
		}
	case len(rest) > 0 && rest[0] >= '0' && rest[0] <= '9':
		st, n, ok := parseISO(rest, loc)
		if !ok || st.sep != ',' {
			return head{}, false
		}
		h.rec.Wall, h.format = st.t, FormatDmesgISO
		p += n
		switch {
		case p == len(line):
		case line[p] == ' ':
			p++
		default:
			return head{}, false
		}
	default:
		if !prefixed { // "dmesg -t" output: nothing identifies it
			return head{}, false
		}
	}
	if caller, n, ok := parseCaller(line[p:]); ok {
		h.rec.Caller = caller
		p += n
		if p < len(line) && line[p] == ' ' {
			p++
		}
	}
	h.text, h.indent = line[p:], p
	return h, true
}

// parsePri parses a "<6>" priority prefix ((facility<<3)|level).
func parsePri(line string) (pri int, n int, ok bool) {
	if len(line) < 3 || line[0] != '<' {
		return 0, 0, false
	}
	v, m := digits(line[1:], 4)
	if m == 0 || 1+m >= len(line) || line[1+m] != '>' || v > 255<<3|7 {
		return 0, 0, false
	}
	return int(v), m + 2, true
}

// parseDecode parses the "dmesg -x" prefix "kern  :info  : " (facility and
// level names padded to six columns, each followed by ':').
func parseDecode(line string) (fac, lvl int, n int, ok bool) {
	i := strings.IndexByte(line, ':')
	if i < 1 || i > 10 {
		return 0, 0, 0, false
	}
	if fac = facilityCode(strings.TrimRight(line[:i], " ")); fac < 0 {
		return 0, 0, 0, false
	}
	rest := line[i+1:]
	j := strings.IndexByte(rest, ':')
	if j < 1 || j > 10 {
		return 0, 0, 0, false
	}
	if lvl = levelCode(strings.TrimRight(rest[:j], " ")); lvl < 0 {
		return 0, 0, 0, false
	}
	n = i + 1 + j + 1
	if n < len(line) && line[n] == ' ' {
		n++
	} else if n != len(line) {
		return 0, 0, 0, false
	}
	return fac, lvl, n, true
}

// facilityCode returns the code of a facility name as dmesg prints it, or -1.
func facilityCode(name string) int {
	switch name {
	case "kern":
		return 0
	case "user":
		return 1
	case "mail":
		return 2
	case "daemon":
		return 3
	case "auth":
		return 4
	case "syslog":
		return 5
	case "lpr":
		return 6
	case "news":
		return 7
	case "uucp":
		return 8
	case "cron":
		return 9
	case "authpriv":
		return 10
	case "ftp":
		return 11
	case "res0", "res1", "res2", "res3":
		return 12 + int(name[3]-'0')
	case "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7":
		return 16 + int(name[5]-'0')
	}
	return -1
}

// levelCode returns the code of a level name as dmesg prints it, or -1.
func levelCode(name string) int {
	switch name {
	case "emerg":
		return 0
	case "alert":
		return 1
	case "crit":
		return 2
	case "err":
		return 3
	case "warn", "warning":
		return 4
	case "notice":
		return 5
	case "info":
		return 6
	case "debug":
		return 7
	}
	return -1
}

// parseCaller parses a caller id bracket "[  T123]" or "[C1]" at the start
// of s and returns the id ("T123") and the bytes read.
func parseCaller(s string) (string, int, bool) {
	if len(s) < 4 || s[0] != '[' {
		return "", 0, false
	}
	i := 1
	for i < len(s) && i < 16 && s[i] == ' ' {
		i++
	}
	if i >= len(s) || (s[i] != 'T' && s[i] != 'C') {
		return "", 0, false
	}
	_, n := digits(s[i+1:], 10)
	end := i + 1 + n
	if n == 0 || end >= len(s) || s[end] != ']' {
		return "", 0, false
	}
	return s[i:end], end + 1, true
}

package kmsg

import (
	"strings"
	"time"
	"unicode/utf8"

	"github.com/oomscope/oomscope/internal/ascii"
)

// This file reads the lines people paste: kernel log lines behind what a
// ticket, a mail or a terminal put before them (quote marks, line numbers,
// indentation), behind prefixes of no known format (a log shipper's
// columns, an ISO date and a host), or with no prefix at all.

// maxQuoteDepth bounds the quote levels stripped from one line.
const maxQuoteDepth = 16

// quoteLen returns the length of the e-mail quote marks at the start of
// line: one or more '>' (each optionally preceded by spaces), and the one
// space after the last. "> > text", ">> text" and ">text" all quote.
func quoteLen(line string) int {
	n, depth := 0, 0
	for depth < maxQuoteDepth {
		i := n
		for i < len(line) && i-n < 4 && line[i] == ' ' {
			i++
		}
		if i >= len(line) || line[i] != '>' {
			break
		}
		n, depth = i+1, depth+1
	}
	if depth > 0 && n < len(line) && line[n] == ' ' {
		n++
	}
	return n
}

// lineNumber is a line-number prefix that a paste put before a log line.
type lineNumber struct {
	n     int64
	width int  // bytes of the prefix, separator included
	sure  bool // the separator alone says it is a line number (':' or a tab)
}

// parseLineNumber reads a line-number prefix at the start of line: digits
// followed by ':' (grep -n), by a tab (cat -n, nl: right-aligned with
// spaces), or by a space (less -N, editors). It does not say whether the
// prefix is one: "3351 total pagecache pages" is kernel text.
func parseLineNumber(line string) (lineNumber, bool) {
	i := 0
	for i < len(line) && i < 12 && line[i] == ' ' {
		i++
	}
	v, n := digits(line[i:], 9)
	if n == 0 || i+n >= len(line) {
		return lineNumber{}, false
	}
	p := i + n
	switch line[p] {
	case '\t':
		return lineNumber{n: v, width: p + 1, sure: true}, true
	case ':':
		if i > 0 || p+1 < len(line) && line[p+1] >= '0' && line[p+1] <= '9' {
			return lineNumber{}, false // "22:56:09": a time, not a line number
		}
		w := p + 1
		if w < len(line) && line[w] == ' ' {
			w++
		}
		return lineNumber{n: v, width: w, sure: true}, true
	case ' ':
		return lineNumber{n: v, width: p + 1}, true
	}
	return lineNumber{}, false
}

// leadingBlanks returns the number of spaces and tabs at the start of s.
func leadingBlanks(s string) int {
	i := 0
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return i
}

// trimBlanksRight removes trailing spaces and tabs.
func trimBlanksRight(s string) string {
	return strings.TrimRight(s, " \t")
}

// maxPrefixBytes is how far into a line a kernel anchor is looked for.
const maxPrefixBytes = 256

// anchoredHead parses a line whose prefix is of no known format but that
// holds a kernel anchor: a "[ sec.usec]" timestamp bracket or a "kernel:"
// syslog tag. Everything before the anchor is a prefix (a log shipper's
// columns, an ISO date and a host); a date or time at its start gives the
// record's wall time when it can be read whole. A prefix that holds '(' or
// ')' or starts like a task-table row is kernel text, not a prefix: a
// process name can hold an anchor and must not cut its own line.
func anchoredHead(line string, loc *time.Location, years *yearResolver) (head, bool) {
	limit := min(len(line), maxPrefixBytes)
	tag := -1 // where "kernel:" starts
	dated := startsDated(line)
	depth := 0
	for i := 0; i < limit; i++ {
		switch line[i] {
		case '(':
			// Kernel text has parentheses around process names; a
			// prefix may have balanced ones only after a date or time
			// (a hypervisor's "In(05)"), longer than a process name.
			if !dated {
				return head{}, false
			}
			depth++
		case ')':
			if depth--; depth < 0 {
				return head{}, false
			}
		case '[':
			if i == 0 || depth != 0 {
				continue
			}
			pri := -1
			if line[i-1] == '>' { // "<6>[ts]": dmesg -r behind a prefix
				if j := strings.LastIndexByte(line[:i], '<'); j >= 0 && (j == 0 || line[j-1] == ' ') {
					if v, n := digits(line[j+1:i-1], 4); n > 0 && n == i-1-j-1 && v <= 255<<3|7 {
						pri = int(v)
					}
				}
				if pri < 0 {
					continue
				}
			} else if line[i-1] != ' ' {
				continue
			}
			end := strings.IndexByte(line[i:min(len(line), i+34)], ']')
			if end < 0 {
				continue
			}
			mono, ok := parseMono(line[i+1 : i+end])
			if !ok || !prefixLike(line[:i], dated) {
				continue
			}
			h := prefixStamp(line[:i], loc, years)
			h.rec.Mono, h.rec.HasMono = mono, true
			if pri >= 0 {
				h.rec.Priority, h.rec.Facility = int8(pri&7), uint8(pri>>3)
			}
			p := i + end + 1
			if caller, n, ok := parseCaller(strings.TrimPrefix(line[p:], " ")); ok {
				h.rec.Caller = caller
				p += n + boolInt(strings.HasPrefix(line[p:], " "))
			}
			if p < len(line) && line[p] == ' ' {
				p++
			}
			h.text, h.indent = line[p:], p
			return h, true
		case 'k':
			if tag < 0 && depth == 0 && (i == 0 || line[i-1] == ' ') && strings.HasPrefix(line[i:], "kernel:") &&
				(i+7 == len(line) || line[i+7] == ' ') && prefixLike(line[:i], dated) {
				tag = i
			}
		}
		if tag >= 0 {
			break
		}
	}
	if tag < 0 {
		return head{}, false
	}
	h := prefixStamp(line[:tag], loc, years)
	p := tag + len("kernel:")
	if p < len(line) {
		p++
	}
	h.text, h.indent = line[p:], p
	if strings.HasPrefix(h.text, "[") {
		if end := strings.IndexByte(h.text, ']'); end > 0 && end < 32 {
			if mono, ok := parseMono(h.text[1:end]); ok {
				h.rec.Mono, h.rec.HasMono = mono, true
				q := end + 1
				if q < len(h.text) && h.text[q] == ' ' {
					q++
				}
				h.text = h.text[q:]
			}
		}
	}
	return h, true
}

// boolInt is 1 for true.
func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// prefixLike reports whether p can be the prefix a tool put before a
// kernel line: no parentheses unless it starts with a date or time
// (kernel text has them around process names), and not the "[ 1234]" pid
// bracket of a task-table row.
func prefixLike(p string, dated bool) bool {
	if !dated {
		// Without a date, a prefix is short: a host, a level, a file
		// name and line number ("kern.log:12:"), not a kernel line with
		// another one glued after it.
		t := strings.TrimRight(p, " ")
		if strings.ContainsAny(p, "()") || len(t) > 48 || strings.Contains(t, " ") && strings.Contains(t, ":") {
			return false
		}
	}
	if strings.HasPrefix(p, "[") {
		end := strings.IndexByte(p, ']')
		if end > 0 {
			if _, n := digits(strings.TrimLeft(p[1:end], " "), 12); n > 0 && n == len(strings.TrimLeft(p[1:end], " ")) {
				return false
			}
		}
	}
	return true
}

// prefixStamp reads the wall time at the start of an unknown prefix, when
// it is a whole date and time: RFC 3339 / ISO 8601 (also with a space
// instead of the 'T' and without a zone: then in loc), or a year-less
// syslog stamp. Anything else leaves the time unknown.
func prefixStamp(p string, loc *time.Location, years *yearResolver) head {
	h := head{format: FormatAuto, kernel: true}
	h.rec.Priority = -1
	p = strings.TrimLeft(p, " [")
	if p == "" {
		return h
	}
	if p[0] >= '0' && p[0] <= '9' {
		if st, _, ok := parseISO(p, loc); ok {
			h.rec.Wall = st.t
		} else if t, ok := parseISOLocal(p, loc); ok {
			h.rec.Wall = t
		}
		return h
	}
	if st, _, ok := parseBSD(p); ok && years != nil {
		h.rec.Wall = years.resolve(st, loc)
	}
	return h
}

// parseISOLocal parses "2006-01-02 15:04:05[.frac]" or
// "2006-01-02T15:04:05[.frac]" without a zone, in loc.
func parseISOLocal(s string, loc *time.Location) (time.Time, bool) {
	if len(s) < 19 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ') {
		return time.Time{}, false
	}
	y, ok1 := fixed(s, 4)
	mo, ok2 := fixed(s[5:], 2)
	d, ok3 := fixed(s[8:], 2)
	h, mi, sec, ok4 := clock(s[11:])
	if !ok1 || !ok2 || !ok3 || !ok4 || mo < 1 || mo > 12 || d < 1 || d > 31 {
		return time.Time{}, false
	}
	nsec := 0
	if len(s) > 19 && (s[19] == '.' || s[19] == ',') {
		nsec, _ = fraction(s[20:])
	} else if len(s) > 19 && s[19] != ' ' {
		return time.Time{}, false // a zone or more: not this shape
	}
	return time.Date(y, time.Month(mo), d, h, mi, sec, nsec, loc), true
}

// foreignTagged reports whether a line of unknown prefix is another
// program's syslog line: a time of day in its first columns, then a
// "name[pid]:" or "name:" tag other than "kernel:" among the next tokens.
// Such lines stay out of the kernel records.
func foreignTagged(line string) bool {
	limit := min(len(line), 64)
	c := -1
	for i := 0; i+8 <= limit; i++ {
		if _, _, _, ok := clock(line[i:]); ok {
			c = i + 8
			break
		}
	}
	if c < 0 {
		return false
	}
	rest := line[c:]
	for k := 0; k < 4; k++ {
		rest = strings.TrimLeft(rest, " ")
		tok, tail, _ := strings.Cut(rest, " ")
		rest = tail
		if tok == "" {
			return false
		}
		if !strings.HasSuffix(tok, ":") {
			continue
		}
		name := tok[:len(tok)-1]
		if name == "kernel" {
			return false
		}
		if i := strings.IndexByte(name, '['); i > 0 && strings.HasSuffix(name, "]") {
			return ascii.IsDigits(name[i+1 : len(name)-1])
		}
		return false
	}
	return false
}

// isBinary reports whether a line without a prefix is binary junk rather
// than text: more than one byte in eight is a control byte (other than a
// tab), DEL or not part of valid UTF-8. A text line with a few such bytes
// (a process name with an escape byte) is still text.
func isBinary(s string) bool {
	bad := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 && c != '\t' || c == 0x7f {
				bad++
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			bad++
		}
		i += n
	}
	return bad*8 > len(s)
}

// startsDated reports whether line starts with a date ("2023-12-04") or a
// time of day ("10:49:30"), as a log tool's prefix does.
func startsDated(line string) bool {
	if len(line) >= 10 && line[4] == '-' && line[7] == '-' {
		_, ok1 := fixed(line, 4)
		_, ok2 := fixed(line[5:], 2)
		_, ok3 := fixed(line[8:], 2)
		return ok1 && ok2 && ok3
	}
	_, _, _, ok := clock(line)
	return ok
}

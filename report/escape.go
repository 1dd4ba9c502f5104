package report

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Escape makes an untrusted string (a comm, a cgroup path, a pod name) safe
// to put on one line of any output: a terminal, a log line, a Kubernetes
// Event. It writes as visible escapes the characters that could break the
// line or change how the rest of it reads:
//
//   - newline, carriage return and tab as \n, \r, \t;
//   - the other C0 controls and DEL as \x00 … \x1f, \x7f;
//   - the C1 controls (U+0080–U+009F), the bidirectional overrides,
//     embeddings, isolates and marks (U+202A–U+202E, U+2066–U+2069,
//     U+200E, U+200F, U+061C), the line and paragraph separators (U+2028,
//     U+2029) and the byte order mark (U+FEFF) as \u0085, \u202e, …;
//   - bytes that are not UTF-8 as \xff;
//   - the backslash itself as \\, so that the escaping can be undone.
//
// When max > 0 the result is at most max bytes: a longer one is cut at a
// character (never inside an escape) and ends with "...".
func Escape(s string, max int) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b.WriteString(`\x`)
			b.WriteString(hex2(s[i]))
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			b.WriteString(`\x`)
			b.WriteString(hex2(byte(r)))
		case unsafeRune(r):
			b.WriteString(`\u`)
			h := strconv.FormatInt(int64(r), 16)
			b.WriteString(strings.Repeat("0", 4-len(h)) + h)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
		if max > 0 && b.Len() > max {
			break
		}
	}
	out := b.String()
	if max <= 0 || len(out) <= max {
		return out
	}
	return cut(out, max)
}

// unsafeRune reports whether r is a C1 control or a character that
// reorders or breaks the text around it.
func unsafeRune(r rune) bool {
	switch {
	case r >= 0x80 && r <= 0x9f,
		r >= 0x202a && r <= 0x202e,
		r >= 0x2066 && r <= 0x2069,
		r == 0x200e, r == 0x200f, r == 0x061c,
		r == 0x2028, r == 0x2029, r == 0xfeff:
		return true
	}
	return false
}

func hex2(c byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[c>>4], digits[c&0xf]})
}

// cut shortens an escaped string to at most max bytes ending in "...",
// cutting before a character or an escape, never inside one.
func cut(s string, max int) string {
	const marker = "..."
	if max <= len(marker) {
		return marker[:max]
	}
	limit := max - len(marker)
	end := 0
	for i := 0; i < len(s); {
		n := unitLen(s[i:])
		if i+n > limit {
			break
		}
		i += n
		end = i
	}
	return s[:end] + marker
}

// unitLen is the length of the escape or the character s starts with.
func unitLen(s string) int {
	if s[0] == '\\' && len(s) > 1 {
		switch s[1] {
		case 'x':
			return 4
		case 'u':
			return 6
		}
		return 2
	}
	_, n := utf8.DecodeRuneInString(s)
	return n
}

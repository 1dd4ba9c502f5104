package archive

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Escape returns s safe to show on a terminal and to put in one cell of a
// table: every character that could move the cursor, change colours, end
// the line or reorder what follows is written as a visible escape —
// newline, carriage return and tab as \n, \r, \t; other C0 controls, DEL
// and bytes that are not UTF-8 as \xHH; C1 controls, bidirectional
// overrides, isolates and marks (U+202A–U+202E, U+2066–U+2069, U+200E,
// U+200F, U+061C), other invisible format characters and the Unicode line
// and paragraph separators as \uHHHH (\UHHHHHHHH above U+FFFF). A backslash is left as it is: the
// escapes are for reading, the JSON output is exact.
//
// When max > 0 the result has at most max characters: a longer one is cut,
// never inside an escape, and ends with "…".
func Escape(s string, max int) string {
	if isPlain(s) && (max <= 0 || len(s) <= max) {
		return s
	}
	var b strings.Builder
	n := 0 // characters written
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		unit := ""
		switch {
		case r == utf8.RuneError && size == 1:
			unit = fmt.Sprintf(`\x%02x`, s[i])
		case r == '\n':
			unit = `\n`
		case r == '\r':
			unit = `\r`
		case r == '\t':
			unit = `\t`
		case r < 0x20 || r == 0x7f:
			unit = fmt.Sprintf(`\x%02x`, r)
		case unsafeRune(r) && r > 0xffff:
			unit = fmt.Sprintf(`\U%08x`, r)
		case unsafeRune(r):
			unit = fmt.Sprintf(`\u%04x`, r)
		default:
			unit = s[i : i+size]
		}
		i += size
		u := utf8.RuneCountInString(unit)
		if max > 0 && n+u > max-1 && (n+u > max || i < len(s)) {
			// Cut: this unit does not fit with the ellipsis, or it fits
			// exactly but more follows.
			b.WriteString("…")
			return b.String()
		}
		b.WriteString(unit)
		n += u
	}
	return b.String()
}

// unsafeRune tells whether a non-ASCII rune must be escaped: C1 controls,
// format characters (bidi controls among them) and line/paragraph
// separators.
func unsafeRune(r rune) bool {
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp)
}

// isPlain tells whether s is printable ASCII only.
func isPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			return false
		}
	}
	return true
}

// EscapeJSON rewrites JSON text produced by encoding/json so that it shows
// safely on a terminal too: DEL, C1 controls, format characters (bidi
// controls) and separators, which encoding/json leaves as they are, become
// \uXXXX escapes. Such characters can only occur inside JSON strings, where
// the escape means the same character: the value is unchanged.
func EscapeJSON(b []byte) []byte {
	clean := true
	for _, c := range b {
		if c >= 0x7f {
			clean = false
			break
		}
	}
	if clean {
		return b
	}
	out := make([]byte, 0, len(b)+16)
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		switch {
		case r == 0x7f || (r >= 0x80 && r <= 0xffff && unsafeRune(r)):
			out = fmt.Appendf(out, `\u%04x`, r)
		case r > 0xffff && unsafeRune(r):
			r1, r2 := utf16.EncodeRune(r)
			out = fmt.Appendf(out, `\u%04x\u%04x`, r1, r2)
		default:
			out = append(out, b[i:i+size]...)
		}
		i += size
	}
	return out
}

package main

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// A process names itself (prctl, /proc/self/comm) and tenants name cgroups:
// the strings of a report are the log's, not ours. Printed raw they could
// drive the terminal (a 12-byte name sets the window title and clears the
// screen) or reorder what is shown (bidi overrides). These functions make
// them safe to print.

// unsafeRune reports whether r must not reach a terminal as it is: C0
// controls, DEL, C1 controls, and the bidi embeddings, overrides and
// isolates (U+202A-U+202E, U+2066-U+2069).
func unsafeRune(r rune) bool {
	return r < 0x20 || r == 0x7f || r >= 0x80 && r <= 0x9f ||
		r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069
}

// escapeText returns s with every unsafe rune as a visible escape (\n, \t,
// \r, \x1b, \u202e), each byte that is not valid UTF-8 as \xNN, and a
// backslash doubled, so that no escape can be forged.
func escapeText(s string) string {
	clean := true
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == '\\' || unsafeRune(r) || r == utf8.RuneError && n == 1 {
			clean = false
			break
		}
		i += n
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x80 && unsafeRune(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafeRune(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// safeJSON escapes in JSON output what encoding/json writes raw and a
// terminal would act on: DEL, C1 controls and bidi controls become \uXXXX
// escapes (they can only be inside strings, so the JSON stays the same
// value). encoding/json already escapes C0 controls and replaces invalid
// UTF-8.
func safeJSON(b []byte) []byte {
	i := 0
	for i < len(b) && b[i] < 0x7f {
		i++
	}
	if i == len(b) {
		return b
	}
	out := append([]byte(nil), b[:i]...)
	for i < len(b) {
		r, n := utf8.DecodeRune(b[i:])
		if r >= 0x7f && unsafeRune(r) { // C0 is JSON's own whitespace or already escaped
			out = fmt.Appendf(out, `\u%04x`, r)
		} else {
			out = append(out, b[i:i+n]...)
		}
		i += n
	}
	return out
}

package kubeevents

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ellipsis marks text that was cut.
const ellipsis = "…"

// escapeRune returns how r (or, for an invalid byte, the byte b) is written
// into a message: itself when it is safe to show, else a visible escape.
// Escaped are the backslash itself (so an escape cannot be forged), the
// double quote when quoted is set (so a quoted field cannot be closed early),
// C0 controls and DEL (\n, \r, \t, \x1b), C1 controls (\u0085), the bidi
// embeddings, overrides, isolates and marks (U+202A–U+202E, U+2066–U+2069,
// U+200E, U+200F, U+061C), line and paragraph separators, and every other
// character Go does not consider printable (zero-width and format
// characters, unassigned code points). Invalid UTF-8 bytes become \xNN.
func escapeRune(r rune, b byte, invalid, quoted bool) string {
	switch {
	case invalid:
		return fmt.Sprintf(`\x%02x`, b)
	case r == '\\':
		return `\\`
	case r == '"' && quoted:
		return `\"`
	case r == '\n':
		return `\n`
	case r == '\r':
		return `\r`
	case r == '\t':
		return `\t`
	case r < 0x20 || r == 0x7f:
		return fmt.Sprintf(`\x%02x`, r)
	case r >= 0x80 && r <= 0x9f,
		r >= 0x202a && r <= 0x202e,
		r >= 0x2066 && r <= 0x2069,
		r == 0x200e, r == 0x200f, r == 0x061c,
		r == 0x2028, r == 0x2029:
		return fmt.Sprintf(`\u%04x`, r)
	case r == ' ':
		return " "
	case !strconv.IsPrint(r):
		if r > 0xffff {
			return fmt.Sprintf(`\U%08x`, r)
		}
		return fmt.Sprintf(`\u%04x`, r)
	}
	return string(r)
}

// line builds a one-line message within a byte budget. Text goes in atom
// by atom (a character, or one escape), so a cut never splits a character
// or an escape; the first atom that does not fit ends the line with "…".
type line struct {
	b      strings.Builder
	budget int // bytes, "…" included
	full   bool
}

func newLine(budget int) *line { return &line{budget: budget} }

func (l *line) atom(a string) {
	if l.full {
		return
	}
	if l.b.Len()+len(a)+len(ellipsis) > l.budget {
		// The ellipsis always fits: it was kept out of every earlier atom.
		l.b.WriteString(ellipsis)
		l.full = true
		return
	}
	l.b.WriteString(a)
}

// lit adds trusted text (the message's own words and numbers). It is
// escaped all the same, so a caller mistake cannot break the line.
func (l *line) lit(s string) { l.text(s, false) }

func (l *line) litf(format string, args ...any) { l.lit(fmt.Sprintf(format, args...)) }

func (l *line) text(s string, quoted bool) {
	for i := 0; i < len(s) && !l.full; {
		r, n := utf8.DecodeRuneInString(s[i:])
		l.atom(escapeRune(r, s[i], r == utf8.RuneError && n == 1, quoted))
		i += n
	}
}

// field adds untrusted text: at most maxRunes of it (then "…"), escaped.
func (l *line) field(s string, maxRunes int) { l.bounded(s, maxRunes, false) }

// quoted adds untrusted text in double quotes, like field.
func (l *line) quoted(s string, maxRunes int) {
	l.atom(`"`)
	l.bounded(s, maxRunes, true)
	l.atom(`"`)
}

func (l *line) bounded(s string, maxRunes int, quoted bool) {
	cut := false
	if utf8.RuneCountInString(s) > maxRunes {
		n := 0
		for i := range s {
			if n == maxRunes {
				s, cut = s[:i], true
				break
			}
			n++
		}
	}
	l.text(s, quoted)
	if cut {
		l.atom(ellipsis)
	}
}

func (l *line) String() string { return l.b.String() }

// Escape returns s as it appears in a message: control characters, bidi
// controls and other invisible characters as visible escapes (\n, \x1b,
// \u202e), backslashes doubled, at most maxRunes characters of s (then
// "…"). The result is a single line with no control characters.
func Escape(s string, maxRunes int) string {
	l := newLine(int(^uint(0) >> 1))
	l.field(s, maxRunes)
	return l.String()
}

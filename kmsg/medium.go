package kmsg

import (
	"strings"
)

// This file undoes what a medium did to the lines of a log that went
// through it: a mail body's quoted-printable encoding (soft line breaks,
// "=3D" for '='), and journalctl's ellipsis at the end of a line it cut.
// Lines wrapped by a mail client, cut at a column or glued together are
// repaired by the report parser, which knows the kernel's line shapes.

// maxQPJoin bounds the physical lines one quoted-printable line may span.
const maxQPJoin = 64

// undoMedium decodes a quoted-printable line (joining its soft line
// breaks) and marks a line ending in an ellipsis as cut. The input is
// quoted-printable from its first "=3D" on (the kernel prints '=' in most
// OOM lines and never "=3D", which is how quoted-printable writes '='), or
// from its first soft line break.
func (s *Scanner) undoMedium(ln *textLine) {
	if !s.qp && (strings.Contains(ln.text, "=3D") || softBreak(ln.text)) {
		s.qp = true
	}
	if s.qp {
		text := ln.text
		for n := 0; strings.HasSuffix(text, "=") && n < maxQPJoin; n++ { // a soft line break
			next, ok := s.readLine()
			if !ok {
				break
			}
			text = text[:len(text)-1] + next.text
			ln.trunc = ln.trunc || next.trunc
			ln.cut = next.cut
		}
		ln.text = decodeQP(text)
	}
	if t, ok := strings.CutSuffix(strings.TrimRight(ln.text, " \t"), "…"); ok {
		ln.text, ln.cut = t, true
	}
}

// softBreak reports whether line looks like a quoted-printable line that
// ends in a soft line break: '=' as the 76th character, where encoders
// break lines (RFC 2045). A mail client's wrap after a "key=" is shorter
// as a rule; the "=3D" of an encoded '=' is the surer sign.
func softBreak(line string) bool {
	return len(line) == 76 && strings.HasSuffix(line, "=") && !strings.HasSuffix(line, "==")
}

// decodeQP decodes the "=XX" escapes of a quoted-printable line.
func decodeQP(s string) string {
	i := strings.IndexByte(s, '=')
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i >= 0 {
		b.WriteString(s[:i])
		s = s[i:]
		if len(s) >= 3 && isHex(s[1]) && isHex(s[2]) {
			b.WriteByte(unhex(s[1])<<4 | unhex(s[2]))
			s = s[3:]
		} else {
			b.WriteByte('=')
			s = s[1:]
		}
		i = strings.IndexByte(s, '=')
	}
	b.WriteString(s)
	return b.String()
}

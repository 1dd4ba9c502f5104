// Package ascii holds the small byte-level string helpers that the kernel
// log reader (package kmsg) and the report parser (package oomparse) share:
// kernel text is bytes, mostly ASCII, and these never allocate unless they
// must.
package ascii

// IsDigits reports whether s is a non-empty run of ASCII digits.
func IsDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// Cut returns s cut to at most n bytes, never in the middle of a UTF-8
// sequence (the cut moves back to the sequence's first byte). n < 0 is 0.
func Cut(s string, n int) string {
	if n < 0 {
		n = 0
	}
	if len(s) <= n {
		return s
	}
	for i := n; i > 0 && n-i < 3; i-- {
		if s[i]&0xC0 != 0x80 { // not a continuation byte: a sequence starts here
			return s[:i]
		}
	}
	return s[:n]
}

// Clip shortens s to at most n bytes for a message, marking a cut with
// "...".
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return Cut(s, n) + "..."
}

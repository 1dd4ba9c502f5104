package main

import (
	"encoding/json"
	"testing"
)

func TestEscapeText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain name", "plain name"},
		{"Plex Media Serv", "Plex Media Serv"},
		{"a\nb", `a\nb`},
		{"\x1b]0;pwn\x07\x1b[2J", `\x1b]0;pwn\x07\x1b[2J`},
		{"tab\there", `tab\there`},
		{"del\x7f", `del\x7f`},
		{"c1\u009b", `c1\u009b`},
		{"bad\x9butf8", `bad\x9butf8`},
		{"\u202eevil", `\u202eevil`},
		{"\u2066iso\u2069", `\u2066iso\u2069`},
		{`back\slash`, `back\\slash`},
		{`fake \x1b`, `fake \\x1b`},
		{"utf-8 é ✓ 日本", "utf-8 é ✓ 日本"},
	}
	for _, tt := range tests {
		if got := escapeText(tt.in); got != tt.want {
			t.Errorf("escapeText(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSafeJSON(t *testing.T) {
	for _, s := range []string{"plain", "a\nb\x1b", "del\x7f c1\u0085 \u202eevil \u2068", "é ✓"} {
		b, _ := json.MarshalIndent(map[string]string{"comm": s, "other": "x"}, "", "  ")
		safe := safeJSON(b)
		var back map[string]string
		if err := json.Unmarshal(safe, &back); err != nil || back["comm"] != s {
			t.Errorf("%q: %s does not decode to the same value (%v)", s, safe, err)
		}
		for _, r := range string(safe) {
			if r != '\n' && unsafeRune(r) {
				t.Errorf("%q: %q holds %U", s, safe, r)
			}
		}
	}
}

// unsafeRune reports whether r must not reach a terminal as it is: C0
// controls, DEL, C1 controls, the bidi embeddings, overrides and isolates.
func unsafeRune(r rune) bool {
	return r < 0x20 || r == 0x7f || r >= 0x80 && r <= 0x9f ||
		r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069
}

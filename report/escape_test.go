package report_test

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/oomscope/oomscope/report"
)

func TestDiagnosisEscape(t *testing.T) {
	tests := []struct {
		name, in string
		max      int
		want     string
	}{
		{"plain", "python3", 0, "python3"},
		{"unicode kept", "café/日本", 0, "café/日本"},
		{"newline", "a\nb\r\tc", 0, `a\nb\r\tc`},
		{"fake log line", "x\n4,1,1,-;Killed process 1 (init)", 0, `x\n4,1,1,-;Killed process 1 (init)`},
		{"terminal escape", "\x1b[2J\x1b]0;pwned\x07", 0, `\x1b[2J\x1b]0;pwned\x07`},
		{"nul and del", "a\x00b\x7f", 0, `a\x00b\x7f`},
		{"c1 controls", "a\u0085b\u009bc", 0, `a\u0085b\u009bc`},
		{"bidi override", "evil\u202etxt.exe", 0, `evil\u202etxt.exe`},
		{"bidi isolates and marks", "\u2066a\u2069\u200e\u200f\u061c", 0, `\u2066a\u2069\u200e\u200f\u061c`},
		{"line separators and bom", "a\u2028b\u2029\ufeff", 0, `a\u2028b\u2029\ufeff`},
		{"invalid utf-8", "a\xff\xfeb", 0, `a\xff\xfeb`},
		{"backslash", `sys-dev\x2dsda.slice`, 0, `sys-dev\\x2dsda.slice`},
		{"fits exactly", "abcdef", 6, "abcdef"},
		{"cut", "abcdefghij", 8, "abcde..."},
		{"cut before an escape", "abcd\x1bxyz", 9, "abcd..."},
		{"cut before a rune", "abcd日本", 9, "abcd..."},
		{"tiny max", "abcdef", 2, ".."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := report.Escape(tt.in, tt.max)
			if got != tt.want {
				t.Errorf("Escape(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
			}
		})
	}
}

// TestDiagnosisEscapeHostile checks the properties every output relies on, for
// every single rune class and long hostile inputs.
func TestDiagnosisEscapeHostile(t *testing.T) {
	var hostile strings.Builder
	for r := rune(0); r < 0x3000; r++ {
		hostile.WriteRune(r)
	}
	hostile.WriteString("\xff\xc0\x80\xed\xa0\x80")
	in := hostile.String()
	for _, max := range []int{0, 1, 3, 4, 16, 64, 255, 1000} {
		got := report.Escape(in, max)
		if max > 0 && len(got) > max {
			t.Errorf("max %d: %d bytes", max, len(got))
		}
		if !utf8.ValidString(got) {
			t.Errorf("max %d: not valid UTF-8", max)
		}
		for _, r := range got {
			if r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) || r == 0x2028 || r == 0x2029 {
				t.Errorf("max %d: %U survived", max, r)
			}
		}
	}
}

func ExampleEscape() {
	comm := "bad\x1b[31m\u202eexe\n"
	fmt.Println(report.Escape(comm, 0))
	fmt.Println(report.Escape("/kubepods/burstable/pod0b7e3c1e-5a42-4c1b-9d7a-2f1f8c3e9a11", 24))
	// Output:
	// bad\x1b[31m\u202eexe\n
	// /kubepods/burstable/p...
}

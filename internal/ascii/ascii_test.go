package ascii

import (
	"testing"
	"unicode/utf8"
)

func TestIsDigits(t *testing.T) {
	for s, want := range map[string]bool{"": false, "0": true, "0123456789": true, "12a": false, " 1": false, "-1": false, "١": false} {
		if got := IsDigits(s); got != want {
			t.Errorf("IsDigits(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestCutClip(t *testing.T) {
	tests := []struct {
		s    string
		n    int
		cut  string
		clip string
	}{
		{"", 3, "", ""},
		{"abc", 3, "abc", "abc"},
		{"abcd", 3, "abc", "abc..."},
		{"abcd", 0, "", "..."},
		{"abcd", -1, "", "..."},
		{"aé", 2, "a", "a..."},    // é is 2 bytes: never cut in half
		{"a€b", 3, "a", "a..."},   // € is 3 bytes
		{"a€b", 4, "a€", "a€..."}, // whole
		{"\xff\xfe\xfd\xfc", 2, "\xff\xfe", "\xff\xfe..."},
	}
	for _, tt := range tests {
		if got := Cut(tt.s, tt.n); got != tt.cut {
			t.Errorf("Cut(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.cut)
		}
		if got := Clip(tt.s, tt.n); got != tt.clip {
			t.Errorf("Clip(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.clip)
		}
		if utf8.ValidString(tt.s) && !utf8.ValidString(Cut(tt.s, tt.n)) {
			t.Errorf("Cut(%q, %d) is not valid UTF-8", tt.s, tt.n)
		}
	}
}

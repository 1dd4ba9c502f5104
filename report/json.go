package report

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// MarshalJSON writes the report as encoding/json would, but with every
// character that a terminal or a text viewer would act on rather than show
// written as a \uXXXX escape: encoding/json already escapes C0 controls,
// and this adds DEL, the C1 controls and the bidi overrides, isolates and
// marks. The value a JSON decoder reads back is unchanged; a person who
// prints the JSON (`tail -f`, `jq -c`, a log viewer) sees the escape, not
// a reordered or hidden line. Process names, cgroup paths and pod names
// are the workload's own words.
func (r *Enriched) MarshalJSON() ([]byte, error) {
	type plain Enriched // no MarshalJSON: no recursion
	b, err := json.Marshal((*plain)(r))
	if err != nil {
		return nil, err
	}
	return SafeJSON(b), nil
}

// SafeJSON rewrites the characters of a JSON document that terminals act
// on (DEL, C1 controls, bidi controls) as \uXXXX escapes. Such characters
// can only stand inside JSON strings, where the escape means the same
// character, so the document decodes to the same value. b is returned
// as is when it holds none of them.
func SafeJSON(b []byte) []byte {
	i := bytes.IndexFunc(b, jsonUnsafe)
	if i < 0 {
		return b
	}
	out := make([]byte, 0, len(b)+32)
	for i >= 0 {
		out = append(out, b[:i]...)
		r, n := utf8.DecodeRune(b[i:])
		out = append(out, '\\', 'u', hexDigits[r>>12&15], hexDigits[r>>8&15], hexDigits[r>>4&15], hexDigits[r&15])
		b = b[i+n:]
		i = bytes.IndexFunc(b, jsonUnsafe)
	}
	return append(out, b...)
}

const hexDigits = "0123456789abcdef"

// jsonUnsafe is a character SafeJSON escapes: DEL and what Escape treats
// as unsafe (encoding/json escapes the C0 controls itself).
func jsonUnsafe(r rune) bool { return r == 0x7f || unsafeRune(r) }

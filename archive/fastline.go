package archive

import (
	"bytes"
	"strconv"
	"unicode/utf8"
)

// decodeFast decodes an index line as the writer writes it — one flat JSON
// object of strings without escapes, integers and booleans — about ten
// times faster than encoding/json, which dominates opening an archive of
// 100,000 reports. It returns false for anything else (an escape in a
// string, an unknown shape), and the caller falls back to encoding/json:
// the result is the same either way. in interns repeated values.
func decodeFast(line []byte, e *Entry, in *interner) bool {
	p := fastParser{b: line}
	if !p.byte('{') {
		return false
	}
	*e = Entry{}
	if p.peek() == '}' {
		p.i++
		return p.end()
	}
	for {
		key, ok := p.str()
		if !ok || !p.byte(':') {
			return false
		}
		p.ws()
		if p.i >= len(p.b) {
			return false
		}
		c := p.b[p.i]
		switch {
		case c == '"':
			v, ok := p.str()
			if !ok {
				return false
			}
			if !e.setString(key, v, in) {
				return false
			}
		case c == 't' || c == 'f':
			v, ok := p.boolean()
			if !ok || !e.setBool(key, v) {
				return false
			}
		case c == '-' || (c >= '0' && c <= '9'):
			v, ok := p.number()
			if !ok || !e.setNumber(key, v) {
				return false
			}
		default: // null, objects, arrays: not what the writer writes
			return false
		}
		p.ws()
		if p.i >= len(p.b) {
			return false
		}
		switch p.b[p.i] {
		case ',':
			p.i++
			continue
		case '}':
			p.i++
			return p.end()
		}
		return false
	}
}

func (e *Entry) setString(key, v []byte, in *interner) bool {
	var err error
	switch string(key) {
	case "time": // as time.Time.UnmarshalJSON parses it
		err = e.Time.UnmarshalText(v)
	case "archived":
		err = e.Archived.UnmarshalText(v)
	case "node":
		e.Node = in.get(v)
	case "namespace":
		e.Namespace = in.get(v)
	case "pod":
		e.Pod = string(v)
	case "pod_uid":
		e.PodUID = string(v)
	case "container":
		e.Container = in.get(v)
	case "comm":
		e.Comm = in.get(v)
	case "scope":
		e.Scope = in.get(v)
	case "kind":
		e.Kind = in.get(v)
	case "id":
		e.ID = string(v)
	case "file":
		e.File = string(v)
	default:
		return false
	}
	return err == nil
}

func (e *Entry) setBool(key []byte, v bool) bool {
	switch string(key) {
	case "partial":
		e.Partial = v
	case "incomplete":
		e.Incomplete = v
	default:
		return false
	}
	return true
}

func (e *Entry) setNumber(key, v []byte) bool {
	switch string(key) {
	case "pid":
		n, err := strconv.Atoi(string(v))
		e.PID = n
		return err == nil
	case "limit_bytes":
		n, err := strconv.ParseUint(string(v), 10, 64)
		e.LimitBytes = &n
		return err == nil
	case "size":
		n, err := strconv.ParseInt(string(v), 10, 64)
		e.Size = n
		return err == nil
	}
	return false
}

type fastParser struct {
	b []byte
	i int
}

func (p *fastParser) ws() {
	for p.i < len(p.b) && (p.b[p.i] == ' ' || p.b[p.i] == '\t' || p.b[p.i] == '\n' || p.b[p.i] == '\r') {
		p.i++
	}
}

func (p *fastParser) peek() byte {
	p.ws()
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

// byte consumes c after optional white space.
func (p *fastParser) byte(c byte) bool {
	if p.peek() != c {
		return false
	}
	p.i++
	return true
}

// str reads a string without escapes or control characters, valid UTF-8
// (encoding/json would replace invalid bytes).
func (p *fastParser) str() ([]byte, bool) {
	if !p.byte('"') {
		return nil, false
	}
	j := bytes.IndexByte(p.b[p.i:], '"')
	if j < 0 {
		return nil, false
	}
	s := p.b[p.i : p.i+j]
	ascii := true
	for _, c := range s {
		if c == '\\' || c < 0x20 {
			return nil, false
		}
		if c >= 0x80 {
			ascii = false
		}
	}
	if !ascii && !utf8.Valid(s) {
		return nil, false
	}
	p.i += j + 1
	return s, true
}

func (p *fastParser) boolean() (bool, bool) {
	switch {
	case bytes.HasPrefix(p.b[p.i:], []byte("true")):
		p.i += 4
		return true, true
	case bytes.HasPrefix(p.b[p.i:], []byte("false")):
		p.i += 5
		return false, true
	}
	return false, false
}

// number reads an integer (the index has no other numbers).
func (p *fastParser) number() ([]byte, bool) {
	j := p.i
	if j < len(p.b) && p.b[j] == '-' {
		j++
	}
	start := j
	for j < len(p.b) && p.b[j] >= '0' && p.b[j] <= '9' {
		j++
	}
	if j == start || (p.b[start] == '0' && j > start+1) { // JSON has no leading zeros
		return nil, false
	}
	if j < len(p.b) && (p.b[j] == '.' || p.b[j] == 'e' || p.b[j] == 'E') {
		return nil, false
	}
	v := p.b[p.i:j]
	p.i = j
	return v, true
}

// end tells whether only white space follows.
func (p *fastParser) end() bool {
	p.ws()
	return p.i == len(p.b)
}

// interner shares the strings of values that repeat from line to line
// (node, namespace, container, comm, scope, kind).
type interner struct {
	m map[string]string
}

func (in *interner) get(b []byte) string {
	if s, ok := in.m[string(b)]; ok {
		return s
	}
	if in.m == nil {
		in.m = make(map[string]string)
	}
	if len(in.m) > 4096 { // values that do not repeat: stop collecting
		return string(b)
	}
	s := string(b)
	in.m[s] = s
	return s
}

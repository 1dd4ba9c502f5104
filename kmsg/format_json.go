package kmsg

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// journalEntry holds the fields of a "journalctl -o json" line that make a
// Record. Each is raw because journalctl writes a field as a string, as an
// array of byte values (not valid UTF-8 or not printable), as null (larger
// than 4096 bytes without --all), or as an array of those (a field that
// occurs more than once).
type journalEntry struct {
	Message    json.RawMessage `json:"MESSAGE"`
	Realtime   json.RawMessage `json:"__REALTIME_TIMESTAMP"`
	SourceMono json.RawMessage `json:"_SOURCE_MONOTONIC_TIMESTAMP"`
	Hostname   json.RawMessage `json:"_HOSTNAME"`
	Priority   json.RawMessage `json:"PRIORITY"`
	Facility   json.RawMessage `json:"SYSLOG_FACILITY"`
	Transport  json.RawMessage `json:"_TRANSPORT"`
	Identifier json.RawMessage `json:"SYSLOG_IDENTIFIER"`
	Subsystem  json.RawMessage `json:"_KERNEL_SUBSYSTEM"`
	Device     json.RawMessage `json:"_KERNEL_DEVICE"`
}

// isJournalJSON reports whether line is a journal entry in JSON (an object
// with journal fields; "journalctl -o json-seq" prefixes it with 0x1E).
func isJournalJSON(line string) bool {
	line = strings.TrimPrefix(line, "\x1e")
	if !strings.HasPrefix(line, "{") {
		return false
	}
	if !strings.Contains(line, `"__REALTIME_TIMESTAMP"`) && !strings.Contains(line, `"MESSAGE"`) &&
		!strings.Contains(line, `"_TRANSPORT"`) {
		return false
	}
	return json.Valid([]byte(line))
}

// parseJournalJSON parses one "journalctl -o json" line. kernel is true for
// an entry journald read from the kernel (_TRANSPORT=kernel, or with no
// _TRANSPORT field, SYSLOG_IDENTIFIER=kernel). Wall is __REALTIME_TIMESTAMP
// (when journald received the record) in loc; Mono is
// _SOURCE_MONOTONIC_TIMESTAMP (the kernel's own timestamp).
func parseJournalJSON(line string, loc *time.Location) (rec Record, kernel bool, ok bool) {
	line = strings.TrimPrefix(line, "\x1e")
	if !strings.HasPrefix(line, "{") {
		return Record{}, false, false
	}
	var e journalEntry
	if err := json.Unmarshal([]byte(line), &e); err != nil {
		return Record{}, false, false
	}
	if t, ok := jsonString(e.Transport); ok {
		kernel = t == "kernel"
	} else {
		id, _ := jsonString(e.Identifier)
		kernel = id == "kernel"
	}
	rec.Priority = -1
	if s, ok := jsonString(e.Priority); ok {
		if p, err := strconv.ParseUint(s, 10, 8); err == nil && p <= 7 {
			rec.Priority = int8(p)
		}
	}
	if s, ok := jsonString(e.Facility); ok {
		if f, err := strconv.ParseUint(s, 10, 8); err == nil {
			rec.Facility = uint8(f)
		}
	}
	rec.Host, _ = jsonString(e.Hostname)
	rec.Text, _ = jsonString(e.Message)
	if s, ok := jsonString(e.SourceMono); ok {
		if us, err := strconv.ParseUint(s, 10, 63); err == nil && us <= uint64(maxUsec) {
			rec.Mono, rec.HasMono = time.Duration(us)*time.Microsecond, true
		}
	}
	if s, ok := jsonString(e.Realtime); ok {
		if us, err := strconv.ParseInt(s, 10, 64); err == nil && us > 0 {
			rec.Wall = time.UnixMicro(us).In(loc)
		}
	}
	if s, ok := jsonString(e.Subsystem); ok {
		rec.Dict = append(rec.Dict, "SUBSYSTEM="+s)
	}
	if s, ok := jsonString(e.Device); ok {
		rec.Dict = append(rec.Dict, "DEVICE="+s)
	}
	rec.Raw = line
	return rec, kernel, true
}

// jsonString decodes a journal field value: a string, a number, an array of
// byte values, or an array of those (the first is taken). null and absent
// fields return false.
func jsonString(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "", false
	}
	switch raw[0] {
	case 'n':
		return "", false
	case '"':
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return "", false
		}
		return s, true
	case '[':
		var elems []json.RawMessage
		if json.Unmarshal(raw, &elems) != nil || len(elems) == 0 {
			return "", false
		}
		if b, ok := jsonBytes(elems); ok {
			return string(b), true
		}
		first := bytes.TrimSpace(elems[0])
		switch {
		case len(first) > 0 && first[0] == '"':
			var s string
			if json.Unmarshal(first, &s) != nil {
				return "", false
			}
			return s, true
		case len(first) > 0 && first[0] == '[':
			var inner []json.RawMessage
			if json.Unmarshal(first, &inner) != nil {
				return "", false
			}
			b, ok := jsonBytes(inner)
			return string(b), ok
		}
		return "", false
	case 't', 'f', '{':
		return "", false
	}
	return string(raw), true // a number
}

// jsonBytes decodes an array of byte values.
func jsonBytes(elems []json.RawMessage) ([]byte, bool) {
	b := make([]byte, 0, len(elems))
	for _, e := range elems {
		v, err := strconv.ParseUint(string(bytes.TrimSpace(e)), 10, 8)
		if err != nil {
			return nil, false
		}
		b = append(b, byte(v))
	}
	return b, true
}

// repairJSON turns the first part of a JSON object cut by the line length
// limit into a valid object holding the fields read so far: a string cut
// in the middle is closed (an escape cut in half dropped), and so are the
// open arrays and objects; if that is no valid JSON (the cut fell in a
// key, a literal or after a ':' or ','), the object is closed after its
// last complete field instead. It returns "" if nothing can be saved.
func repairJSON(line string) string {
	prefix := ""
	if strings.HasPrefix(line, "\x1e") {
		prefix, line = "\x1e", line[1:]
	}
	if !strings.HasPrefix(line, "{") {
		return ""
	}
	var stack []byte // closers of the open arrays and objects
	inStr, esc := false, false
	strStart, lastField := 0, -1 // start of the open string; last ',' at depth 1
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case inStr && esc:
			esc = false
		case inStr && c == '\\':
			esc = true
		case inStr && c == '"':
			inStr = false
		case inStr:
		case c == '"':
			inStr, strStart = true, i
		case c == '{':
			stack = append(stack, '}')
		case c == '[':
			stack = append(stack, ']')
		case c == '}' || c == ']':
			if len(stack) == 0 || stack[len(stack)-1] != c {
				return "" // not a cut object but a broken one
			}
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				return "" // complete: cut after the object, nothing to repair
			}
		case c == ',' && len(stack) == 1:
			lastField = i
		}
	}
	var b strings.Builder
	b.Grow(len(line) + len(stack) + 8)
	b.WriteString(line)
	if inStr {
		s := line[strStart:]
		// Drop an escape cut in half: "\", "\u", "\u0" ... "\u00e".
		if esc {
			b.Reset()
			b.WriteString(line[:len(line)-1])
		} else if i := strings.LastIndex(s, `\u`); i >= 0 && len(s)-i < 6 && !escapedBackslash(s[:i]) {
			b.Reset()
			b.WriteString(line[:strStart+i])
		}
		b.WriteByte('"')
	}
	for i := len(stack) - 1; i >= 0; i-- {
		b.WriteByte(stack[i])
	}
	if out := b.String(); json.Valid([]byte(out)) {
		return prefix + out
	}
	if lastField < 0 {
		return ""
	}
	out := line[:lastField] + "}"
	if !json.Valid([]byte(out)) {
		return ""
	}
	return prefix + out
}

// escapedBackslash reports whether s ends in an odd number of
// backslashes, i.e. whether a backslash following s is itself escaped.
func escapedBackslash(s string) bool {
	n := 0
	for n < len(s) && s[len(s)-1-n] == '\\' {
		n++
	}
	return n%2 == 1
}

package kmsg

import (
	"strings"
	"time"
)

// parseShortHead parses the first line of a syslog or journalctl short*
// record:
//
//	Apr 27 22:56:09 host kernel: [   76.086772] text    syslog (imklog)
//	Apr 27 22:56:09 host kernel: text                   journalctl -o short
//	Apr 27 22:56:09.123456 host kernel: text            journalctl -o short-precise
//	2019-04-27T22:56:09+0000 host kernel: text          journalctl -o short-iso
//	2019-04-27T22:56:09.123456+00:00 host kernel: text  rsyslog RFC 3339, short-iso-precise
//	Apr 27 22:56:09 kernel: text                        journalctl --no-hostname
//
// Lines of other programs ("host sshd[123]: ...") parse with kernel false.
// A year-less stamp is returned in h.bsd for the caller to place in a year;
// ISO stamps are converted to loc (nil means UTC).
func parseShortHead(line string, loc *time.Location) (head, bool) {
	if loc == nil {
		loc = time.UTC
	}
	var h head
	h.rec.Priority = -1
	var n int
	iso := false
	if line != "" && line[0] >= '0' && line[0] <= '9' {
		st, m, ok := parseISO(line, loc)
		if !ok || st.sep == ',' {
			return head{}, false
		}
		h.rec.Wall, n, iso = st.t, m, true
		h.format = FormatJournalISO
		if st.sep == '.' && st.colon {
			h.format = FormatSyslog
		}
	} else {
		st, m, ok := parseBSD(line)
		if !ok {
			return head{}, false
		}
		h.bsd, h.yearless, n = st, true, m
	}
	if n >= len(line) || line[n] != ' ' {
		return head{}, false
	}
	p := n + 1
	if p < len(line) && line[p] == ' ' { // an empty host name: "22:56:09  kernel:"
		p++
	}
	tok, ok := token(line[p:])
	if !ok {
		return head{}, false
	}
	if !strings.HasSuffix(tok, ":") { // the host name, then the tag
		h.rec.Host = tok
		p += len(tok) + 1
		if p >= len(line) { // a host name and nothing after it
			return head{}, false
		}
		if tok, ok = token(line[p:]); !ok || !strings.HasSuffix(tok, ":") {
			return head{}, false
		}
	}
	p += len(tok)
	if p < len(line) {
		p++ // the space after "tag:"
	}
	tag := tok[:len(tok)-1]
	h.kernel = tag == "kernel"
	h.indent = p
	h.text = line[p:]
	bracket := false
	if h.kernel && strings.HasPrefix(h.text, "[") {
		if end := strings.IndexByte(h.text, ']'); end > 0 && end < 32 {
			if mono, ok := parseMono(h.text[1:end]); ok {
				h.rec.Mono, h.rec.HasMono, bracket = mono, true, true
				q := end + 1
				if caller, m, ok := parseCaller(h.text[q:]); ok {
					h.rec.Caller = caller
					q += m
				} else if q < len(h.text) && h.text[q] == ' ' {
					if caller, m, ok := parseCaller(h.text[q+1:]); ok {
						h.rec.Caller = caller
						q += 1 + m
					}
				}
				if q < len(h.text) && h.text[q] == ' ' {
					q++
				}
				h.text = h.text[q:]
			}
		}
	}
	switch {
	case bracket:
		h.format = FormatSyslog
	case iso:
	case h.bsd.precise:
		h.format = FormatJournalPrecise
	case h.kernel:
		h.format = FormatJournalShort
	default:
		h.format = FormatSyslog
	}
	return h, true
}

// token returns the non-empty run of bytes at the start of s up to the next
// space or the end.
func token(s string) (string, bool) {
	if i := strings.IndexByte(s, ' '); i >= 0 {
		s = s[:i]
	}
	return s, s != ""
}

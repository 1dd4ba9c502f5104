package kmsg

import (
	"strings"
	"time"
)

// This file holds the timestamp parsers shared by the text formats. They
// are hand-written rather than time.Parse layouts: they run once per line,
// must accept the exact spellings the tools print (space-padded days,
// "+0000" and "+00:00" zones, '.' or ',' before the fraction) and must not
// allocate.

// digits parses the leading decimal digits of s, at most max of them. It
// returns the value and how many digits it read (0 if none).
func digits(s string, max int) (v int64, n int) {
	for n < len(s) && n < max && s[n] >= '0' && s[n] <= '9' {
		v = v*10 + int64(s[n]-'0')
		n++
	}
	return v, n
}

// fixed parses exactly n digits at the start of s.
func fixed(s string, n int) (int, bool) {
	if len(s) < n {
		return 0, false
	}
	v, m := digits(s, n)
	return int(v), m == n
}

// fraction parses up to 9 fractional digits (more are read and ignored) and
// returns them as nanoseconds and the number of bytes read.
func fraction(s string) (nsec int, n int) {
	scale := 100_000_000
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		if n < 9 {
			nsec += int(s[n]-'0') * scale
			scale /= 10
		}
		n++
	}
	return nsec, n
}

// maxMonoSec is the largest number of seconds a kernel timestamp may have
// and still fit a time.Duration.
const maxMonoSec = int64(^uint64(0)>>1)/int64(time.Second) - 1

// parseMono parses the inside of a kernel timestamp bracket, "   76.086772"
// (leading spaces allowed, 1-9 fractional digits).
func parseMono(s string) (time.Duration, bool) {
	s = strings.TrimLeft(s, " ")
	sec, n := digits(s, 11)
	if n == 0 || n >= len(s) || s[n] != '.' || sec > maxMonoSec {
		return 0, false
	}
	nsec, m := fraction(s[n+1:])
	if m == 0 || m > 9 || n+1+m != len(s) {
		return 0, false
	}
	return time.Duration(sec)*time.Second + time.Duration(nsec), true
}

// monthIndex returns the month named by the three letters at the start of
// s ("Jan".."Dec", as printed by strftime's %b in the C locale).
func monthIndex(s string) (time.Month, bool) {
	const names = "JanFebMarAprMayJunJulAugSepOctNovDec"
	if len(s) < 3 {
		return 0, false
	}
	for i := 0; i < 12; i++ {
		if s[:3] == names[3*i:3*i+3] {
			return time.Month(i + 1), true
		}
	}
	return 0, false
}

// isWeekday reports whether s starts with a weekday's three-letter name.
func isWeekday(s string) bool {
	const names = "SunMonTueWedThuFriSat"
	if len(s) < 3 {
		return false
	}
	for i := 0; i < 7; i++ {
		if s[:3] == names[3*i:3*i+3] {
			return true
		}
	}
	return false
}

// clock parses "hh:mm:ss" at the start of s.
func clock(s string) (h, m, sec int, ok bool) {
	if len(s) < 8 || s[2] != ':' || s[5] != ':' {
		return 0, 0, 0, false
	}
	h, ok1 := fixed(s, 2)
	m, ok2 := fixed(s[3:], 2)
	sec, ok3 := fixed(s[6:], 2)
	if !ok1 || !ok2 || !ok3 || h > 23 || m > 59 || sec > 60 {
		return 0, 0, 0, false
	}
	return h, m, sec, true
}

// monthDay parses "Mmm dd" at the start of s, where dd is " 7", "07" or
// "27" (strftime %e and %d) or a single digit. It returns the bytes read.
func monthDay(s string) (mon time.Month, day int, n int, ok bool) {
	mon, ok = monthIndex(s)
	if !ok || len(s) < 5 || s[3] != ' ' {
		return 0, 0, 0, false
	}
	n = 4
	if s[n] == ' ' {
		n++
	}
	d, m := digits(s[n:], 2)
	if m == 0 || d < 1 || d > 31 {
		return 0, 0, 0, false
	}
	return mon, int(d), n + m, true
}

// bsdStamp is a syslog timestamp without a year: "Apr 27 22:56:09", with an
// optional fraction ("Apr 27 22:56:09.123456", journalctl short-precise).
type bsdStamp struct {
	mon                time.Month
	day, h, m, s, nsec int
	precise            bool
}

// parseBSD parses a year-less syslog timestamp at the start of s and
// returns it with the number of bytes read.
func parseBSD(s string) (bsdStamp, int, bool) {
	var st bsdStamp
	var n int
	var ok bool
	st.mon, st.day, n, ok = monthDay(s)
	if !ok || n >= len(s) || s[n] != ' ' {
		return st, 0, false
	}
	n++
	if st.h, st.m, st.s, ok = clock(s[n:]); !ok {
		return st, 0, false
	}
	n += 8
	if n < len(s) && s[n] == '.' {
		nsec, m := fraction(s[n+1:])
		if m == 0 {
			return st, 0, false
		}
		st.nsec, st.precise = nsec, true
		n += 1 + m
	}
	return st, n, true
}

// date returns the stamp's time in year y.
func (st bsdStamp) date(y int, loc *time.Location) time.Time {
	return time.Date(y, st.mon, st.day, st.h, st.m, st.s, st.nsec, loc)
}

// isoStamp describes how an ISO 8601 timestamp was written.
type isoStamp struct {
	t     time.Time
	sep   byte // '.' or ',' before the fraction, 0 without one
	colon bool // the zone was written "+hh:mm" (or "Z") rather than "+hhmm"
}

// parseISO parses "2006-01-02T15:04:05[.frac|,frac](Z|+hh:mm|+hhmm)" at the
// start of s and returns the time in loc and the number of bytes read.
func parseISO(s string, loc *time.Location) (isoStamp, int, bool) {
	var st isoStamp
	if len(s) < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' {
		return st, 0, false
	}
	y, ok1 := fixed(s, 4)
	mo, ok2 := fixed(s[5:], 2)
	d, ok3 := fixed(s[8:], 2)
	h, mi, sec, ok4 := clock(s[11:])
	if !ok1 || !ok2 || !ok3 || !ok4 || mo < 1 || mo > 12 || d < 1 || d > 31 {
		return st, 0, false
	}
	n := 19
	nsec := 0
	if s[n] == '.' || s[n] == ',' {
		var m int
		nsec, m = fraction(s[n+1:])
		if m == 0 {
			return st, 0, false
		}
		st.sep = s[n]
		n += 1 + m
	}
	if n >= len(s) {
		return st, 0, false
	}
	off := 0
	switch s[n] {
	case 'Z':
		n++
		st.colon = true
	case '+', '-':
		zh, ok := fixed(s[n+1:], 2)
		if !ok {
			return st, 0, false
		}
		p := n + 3
		if p < len(s) && s[p] == ':' {
			st.colon = true
			p++
		}
		zm, ok := fixed(s[p:], 2)
		if !ok || zh > 23 || zm > 59 {
			return st, 0, false
		}
		off = (zh*60 + zm) * 60
		if s[n] == '-' {
			off = -off
		}
		n = p + 2
	default:
		return st, 0, false
	}
	t := time.Date(y, time.Month(mo), d, h, mi, sec, nsec, time.UTC).Add(-time.Duration(off) * time.Second)
	st.t = t.In(loc)
	return st, n, true
}

// parseCtime parses the inside of a "dmesg -T" bracket,
// "Sat Apr 27 22:56:09 2019" (strftime "%a %b %e %H:%M:%S %Y"), in loc.
func parseCtime(s string, loc *time.Location) (time.Time, bool) {
	if len(s) < 24 || !isWeekday(s) || s[3] != ' ' {
		return time.Time{}, false
	}
	mon, day, n, ok := monthDay(s[4:])
	if !ok {
		return time.Time{}, false
	}
	n += 4
	if n >= len(s) || s[n] != ' ' {
		return time.Time{}, false
	}
	n++
	h, m, sec, ok := clock(s[n:])
	if !ok {
		return time.Time{}, false
	}
	n += 8
	if n >= len(s) || s[n] != ' ' {
		return time.Time{}, false
	}
	y, k := digits(s[n+1:], 5)
	if k < 4 || n+1+k != len(s) {
		return time.Time{}, false
	}
	t := time.Date(int(y), mon, day, h, m, sec, 0, loc)
	if t.Day() != day { // "Feb 31": no such date
		return time.Time{}, false
	}
	return t, true
}

// localMonths maps the month abbreviations strftime's %b prints in other
// locales than C (lower case, without a trailing '.') to their month. Each
// name means one month in every language listed; a name that is not here
// leaves the date unknown.
var localMonths = map[string]time.Month{
	"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12,
	// German, French, Spanish, Italian, Portuguese, Dutch, Swedish
	"jän": 1, "janv": 1, "ene": 1, "gen": 1,
	"févr": 2, "fev": 2,
	"mär": 3, "mars": 3, "mrt": 3,
	"avr": 4, "avril": 4, "abr": 4,
	"mai": 5, "mag": 5, "mei": 5, "maj": 5,
	"juin": 6, "giu": 6,
	"juil": 7, "lug": 7,
	"août": 8, "ago": 8,
	"sept": 9, "set": 9,
	"okt": 10, "ott": 10, "out": 10,
	"déc": 12, "dez": 12, "dic": 12,
	// Russian (genitive, as %b prints it)
	"янв": 1, "фев": 2, "мар": 3, "апр": 4, "мая": 5, "май": 5, "июн": 6, "июл": 7, "авг": 8, "сен": 9, "окт": 10, "ноя": 11, "дек": 12,
}

// monthAny reads a month name or number as any locale's %b prints it:
// English ("Apr"), a name of localMonths, "4月" (Chinese, Japanese), "4월"
// (Korean), or a bare number 1-12.
func monthAny(tok string) (time.Month, bool) {
	if m, ok := monthIndex(tok); ok && len(tok) == 3 {
		return m, true
	}
	low := strings.TrimSuffix(strings.ToLower(tok), ".")
	if m, ok := localMonths[low]; ok {
		return m, true
	}
	num := strings.TrimSuffix(strings.TrimSuffix(tok, "月"), "월")
	if v, n := digits(num, 2); n > 0 && n == len(num) && v >= 1 && v <= 12 {
		return time.Month(v), true
	}
	return 0, false
}

// parseCtimeAny parses the inside of a "dmesg -T" bracket printed in any
// locale: strftime "%a %b %e %H:%M:%S %Y" with the weekday and month in
// that locale's words ("[六 4月 27 22:56:09 2019]", "[Sa Apr 27 ...]").
// ok says the bracket has that shape (a time of day and a year at its
// end); the time is zero when the month or day cannot be read.
func parseCtimeAny(s string, loc *time.Location) (t time.Time, ok bool) {
	f := strings.Fields(s)
	if len(f) < 3 || len(f) > 6 {
		return time.Time{}, false
	}
	y, yn := digits(f[len(f)-1], 5)
	if yn < 4 || yn != len(f[len(f)-1]) {
		return time.Time{}, false
	}
	h, m, sec, okc := clock(f[len(f)-2])
	if !okc || len(f[len(f)-2]) != 8 {
		return time.Time{}, false
	}
	// Before the time: [weekday] month day.
	if len(f) < 4 {
		return time.Time{}, true
	}
	mon, okm := monthAny(f[len(f)-4])
	d, dn := digits(f[len(f)-3], 2)
	if !okm || dn == 0 || dn != len(f[len(f)-3]) || d < 1 || d > 31 {
		return time.Time{}, true
	}
	t = time.Date(int(y), mon, int(d), h, m, sec, 0, loc)
	if t.Day() != int(d) { // "Feb 31"
		return time.Time{}, true
	}
	return t, true
}

package natsread

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseSince reads a --since value relative to now: a duration back from
// now in Go syntax with days allowed in front ("24h", "90m", "7d",
// "1d12h"), a date ("2006-01-02", local time), a local date and time
// ("2006-01-02 15:04:05") or an RFC 3339 time. A duration must be
// positive.
func ParseSince(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	d, days := s, int64(0)
	if i := strings.IndexByte(d, 'd'); i > 0 {
		if n, err := strconv.ParseInt(d[:i], 10, 32); err == nil && n >= 0 {
			days, d = n, d[i+1:]
		}
	}
	var dur time.Duration
	ok := d == "" && days > 0
	if !ok {
		v, err := time.ParseDuration(d)
		ok, dur = err == nil, v
	}
	if ok {
		total := time.Duration(days)*24*time.Hour + dur
		if total <= 0 || dur < 0 {
			return time.Time{}, fmt.Errorf("--since %q: want a positive duration", s)
		}
		return now.Add(-total), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{time.DateOnly, time.DateTime, "2006-01-02T15:04:05"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("--since %q: want a duration (24h, 90m, 7d), a date (2006-01-02), a local time (2006-01-02 15:04:05) or an RFC 3339 time", s)
}

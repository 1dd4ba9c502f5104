package main

import "github.com/oomscope/oomscope/report"

// A process names itself (prctl, /proc/self/comm) and tenants name cgroups:
// the strings of a report are the log's, not ours. Printed raw they could
// drive the terminal (a 12-byte name sets the window title and clears the
// screen) or reorder what is shown (bidi overrides). Every output of the
// CLI escapes them with the model's one escaping, report.Escape.

// escapeText returns s with every control, bidi and line-breaking
// character as a visible escape (\n, \x1b, \u202e), bytes that are not
// UTF-8 as \xNN, and a backslash doubled, so that no escape can be forged.
func escapeText(s string) string { return report.Escape(s, 0) }

// safeJSON escapes in JSON output what encoding/json writes raw and a
// terminal would act on (report.SafeJSON).
func safeJSON(b []byte) []byte { return report.SafeJSON(b) }

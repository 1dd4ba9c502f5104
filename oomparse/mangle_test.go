package oomparse_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/oomscope/oomscope/internal/goldens"
	"github.com/oomscope/oomscope/kmsg"
	"github.com/oomscope/oomscope/oomparse"
	"github.com/oomscope/oomscope/report"
)

// This file mangles every golden input the way the media people paste
// logs through do (no prefix, quote marks, indentation, line numbers, a
// mail client's wrapping, quoted-printable, mixed prefixes, a terminal's
// cut) and checks that the parser finds the same victims and facts as in
// the clean log, or a documented subset of them, and never a different
// one: absent is better than wrong.

// dline is one line as dmesg prints it: its prefix and its text (the
// second and later lines of a record are indented to the text).
type dline struct {
	prefix, text string
	cont         bool
	mono         string
}

// render prints records the way util-linux dmesg does.
func render(recs []kmsg.Record) []dline {
	var out []dline
	for i, r := range recs {
		us := r.Mono.Microseconds()
		if !r.HasMono { // a log without kernel times: dmesg would print some
			us = int64(1000000 + i*10)
		}
		mono := fmt.Sprintf("%5d.%06d", us/1e6, us%1e6)
		for i, l := range strings.Split(r.Text, "\n") {
			out = append(out, dline{prefix: "[" + mono + "] ", text: dmesgEscape(l), cont: i > 0, mono: mono})
		}
	}
	return out
}

// dmesgEscape escapes what dmesg escapes: control bytes but tab.
func dmesgEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			fmt.Fprintf(&b, `\x%02x`, c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// dmesgLine is l as dmesg prints it.
func (l dline) dmesgLine() string {
	if l.cont {
		return strings.Repeat(" ", len(l.prefix)) + l.text
	}
	return l.prefix + l.text
}

// wrap breaks s as a mail client does at width columns: at the last space
// before the limit (taken out, or kept when flowed), inside a token only
// when it is longer than a line.
func wrap(s string, width int, flowed bool) []string {
	var out []string
	for len(s) > width {
		i := strings.LastIndexByte(s[:width+1], ' ')
		if i <= 0 {
			out, s = append(out, s[:width]), s[width:]
			continue
		}
		if flowed {
			out, s = append(out, s[:i+1]), s[i+1:]
		} else {
			out, s = append(out, s[:i]), s[i+1:]
		}
	}
	return append(out, s)
}

// qpEncode encodes s as quoted-printable, with soft breaks at 76 columns.
func qpEncode(s string) []string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '=' || c >= 0x7f {
			fmt.Fprintf(&b, "=%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	enc := b.String()
	var out []string
	for len(enc) > 75 {
		cut := 75
		for cut > 72 && enc[cut-1] != '=' && cut >= 2 && enc[cut-2] == '=' { // never split an escape
			cut--
		}
		if enc[cut-1] == '=' {
			cut--
		} else if enc[cut-2] == '=' {
			cut -= 2
		}
		out, enc = append(out, enc[:cut]+"="), enc[cut:]
	}
	return append(out, enc)
}

// mangler turns a clean dmesg log into a pasted one.
type mangler struct {
	name string
	// cut: lines are cut short, whose last values are then absent (a
	// documented subset: victims and facts may be missing, never wrong).
	cut bool
	fn  func(lines []dline) []string
}

var manglers = []mangler{
	{name: "no prefix", fn: func(ls []dline) []string { return each(ls, func(l dline) string { return l.text }) }},
	{name: "quoted", fn: func(ls []dline) []string { return each(ls, func(l dline) string { return "> " + l.dmesgLine() }) }},
	{name: "quoted twice, no prefix", fn: func(ls []dline) []string { return each(ls, func(l dline) string { return "> > " + l.text }) }},
	{name: "indented", fn: func(ls []dline) []string { return each(ls, func(l dline) string { return "    " + l.dmesgLine() }) }},
	{name: "numbered (grep -n)", fn: func(ls []dline) []string {
		var out []string
		for i, l := range ls {
			out = append(out, fmt.Sprintf("%d:%s", 100+i, l.dmesgLine()))
		}
		return out
	}},
	{name: "numbered (cat -n), no prefix", fn: func(ls []dline) []string {
		var out []string
		for i, l := range ls {
			out = append(out, fmt.Sprintf("%6d\t%s", i+1, l.text))
		}
		return out
	}},
	{name: "wrapped at 72", fn: func(ls []dline) []string {
		var out []string
		for _, l := range ls {
			out = append(out, wrap(l.dmesgLine(), 72, false)...)
		}
		return out
	}},
	{name: "wrapped at 72, format=flowed, quoted", fn: func(ls []dline) []string {
		var out []string
		for _, l := range ls {
			for _, w := range wrap(l.dmesgLine(), 72, true) {
				out = append(out, "> "+w)
			}
		}
		return out
	}},
	{name: "quoted-printable", fn: func(ls []dline) []string {
		var out []string
		for _, l := range ls {
			out = append(out, qpEncode(l.dmesgLine())...)
		}
		return out
	}},
	{name: "mixed prefixes", fn: func(ls []dline) []string {
		var out []string
		for i, l := range ls {
			switch {
			case l.cont:
				out = append(out, l.dmesgLine())
			case i%4 == 0:
				out = append(out, l.dmesgLine())
			case i%4 == 1:
				out = append(out, "Apr 27 22:56:09 node-1 kernel: ["+l.mono+"] "+l.text)
			case i%4 == 2:
				out = append(out, "2024-04-27T22:56:09.123456+00:00 node-1 kern warning ["+l.mono+"] "+l.text)
			default:
				out = append(out, l.text)
			}
		}
		return out
	}},
	{name: "records glued in pairs on one line", fn: func(ls []dline) []string {
		var out []string
		for i := 0; i < len(ls); i++ {
			line := ls[i].dmesgLine()
			if i+1 < len(ls) && !ls[i].cont && !ls[i+1].cont && i%2 == 0 {
				line += " " + ls[i+1].dmesgLine()
				i++
			}
			out = append(out, line)
		}
		return out
	}},
	{name: "cut at 80 columns", cut: true, fn: func(ls []dline) []string {
		return each(ls, func(l dline) string { s := l.dmesgLine(); return s[:min(len(s), 80)] })
	}},
	{name: "cut at 120 columns with an ellipsis (journalctl)", cut: true, fn: func(ls []dline) []string {
		return each(ls, func(l dline) string {
			if s := l.dmesgLine(); len(s) > 120 {
				return s[:119] + "…"
			}
			return l.dmesgLine()
		})
	}},
}

func each(ls []dline, f func(dline) string) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = f(l)
	}
	return out
}

// mangleSkip are the golden inputs that are no log of one shape to paste:
// binary junk, a 200 KiB record, sequence numbers, a mangled paste.
var mangleSkip = map[string]bool{"robust-garbage.log": true, "robust-long-lines.log": true, "robust-seq-gap.log": true,
	// a mail already: its wrapped header is no clean log to mangle
	"paste-lkml-2.6-quoted.log": true}

// facts flattens reports into their facts: a victim's by its pid, the
// rest by report (key names it) and path: every value a consumer reads,
// but the ids, stamps, flags, problems, counts and derived facts
// (computed from the others), raw lines and the stack trace. An empty
// string is no fact (a value not known).
func facts(t *testing.T, reports []report.Report, key func(i int, r *report.Report) string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for i := range reports {
		r := reports[i]
		k := key(i, &r)
		for _, v := range r.Victims {
			v.GroupMember, v.Seq = false, 0 // a group line cut: members counted apart
			b, _ := json.Marshal(v)
			var m map[string]any
			json.Unmarshal(b, &m)
			flatten(fmt.Sprintf("victim %d", v.PID), m, out)
		}
		r.Victims = nil
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"id", "first", "last", "raw", "raw_dropped", "problems", "unparsed_lines", "partial", "incomplete", "gap",
			"lost_records", "derived", "tasks_total", "tasks_dropped", "task_rss_pages_total", "suppressed_before", "schema", "boot_id", "host"} {
			delete(m, k)
		}
		if m["kind"] == "unknown" {
			delete(m, "kind")
		}
		flatten(k, m, out)
	}
	return out
}

// cleanKey names a report of the clean log by its place.
func cleanKey(i int, _ *report.Report) string { return fmt.Sprintf("report %d", i) }

// mangledKey names a report of a mangled log by the clean report it is
// (part of): the one whose kernel time span holds its start, or that has
// its first victim; else by its own place.
func mangledKey(clean []report.Report) func(int, *report.Report) string {
	return func(i int, r *report.Report) string {
		if m := r.First.MonoUsec; m != nil {
			for j, c := range clean {
				if c.First.MonoUsec != nil && c.Last.MonoUsec != nil && *c.First.MonoUsec <= *m && *m <= *c.Last.MonoUsec {
					return cleanKey(j, nil)
				}
			}
		}
		if len(r.Victims) > 0 {
			for j, c := range clean {
				for _, v := range c.Victims {
					if v.PID == r.Victims[0].PID {
						return cleanKey(j, nil)
					}
				}
			}
		}
		return cleanKey(i, nil)
	}
}

// arrayKeys name the elements of the arrays that have a key of their own,
// so that an element left out does not shift the others.
var arrayKeys = map[string][]string{
	"zones": {"node", "zone"}, "nodes": {"node"}, "tasks": {"pid"},
	"unreclaimable_slab": {"name"}, "shared_mm": {"pid"}, "already_exiting": {"pid"},
}

func flatten(at string, v any, out map[string]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if k == "call_trace" || k == "other" || k == "seq" {
				continue
			}
			flatten(at+"."+k, e, out)
		}
	case []any:
		name := at[strings.LastIndexByte(at, '.')+1:]
		for i, e := range x {
			k := fmt.Sprint(i)
			if m, ok := e.(map[string]any); ok && arrayKeys[name] != nil {
				var parts []string
				for _, f := range arrayKeys[name] {
					parts = append(parts, fmt.Sprint(m[f]))
				}
				k = strings.Join(parts, "/")
			}
			flatten(fmt.Sprintf("%s[%s]", at, k), e, out)
		}
	case nil:
	case string:
		if x != "" {
			out[at] = x
		}
	default:
		out[at] = fmt.Sprint(x)
	}
}

// victimsOf lists a parse's victims as "pid comm".
func victimsOf(reports []report.Report) []string {
	var out []string
	for _, r := range reports {
		for _, v := range r.Victims {
			out = append(out, fmt.Sprintf("%d %q", v.PID, v.Comm))
		}
	}
	return out
}

func parseString(t *testing.T, text string) []report.Report {
	t.Helper()
	reports, err := oomparse.ParseAll(kmsg.NewScanner(strings.NewReader(text), kmsg.WithYear(2026)))
	if err != nil {
		t.Fatal(err)
	}
	return reports
}

// TestMangledGoldens: every golden input, mangled every way, gives the
// victims and facts of the clean log (cut lines: a subset), never a wrong
// one. It prints the figures of the corpus.
func TestMangledGoldens(t *testing.T) {
	type tally struct{ victims, victimsFound, facts, factsFound, rowFacts, rowFactsFound, wrong int }
	totals := map[string]*tally{}
	for _, in := range goldens.Inputs(t, false) {
		if mangleSkip[filepath.Base(in)] {
			continue
		}
		b, err := os.ReadFile(in)
		if err != nil {
			t.Fatal(err)
		}
		var recs []kmsg.Record
		sc := kmsg.NewScanner(strings.NewReader(string(b)), kmsg.WithYear(2026))
		for sc.Scan() {
			recs = append(recs, sc.Record())
		}
		lines := render(recs)
		clean := parseString(t, strings.Join(each(lines, dline.dmesgLine), "\n")+"\n")
		wantFacts := facts(t, clean, cleanKey)
		for _, m := range manglers {
			t.Run(filepath.Base(in)+"/"+m.name, func(t *testing.T) {
				got := parseString(t, strings.Join(m.fn(lines), "\n")+"\n")
				tl := totals[m.name]
				if tl == nil {
					tl = &tally{}
					totals[m.name] = tl
				}
				// A victim is found when its pid is, with its name or, on
				// a line cut inside the name, without.
				gotComm := map[int]string{}
				for _, r := range got {
					for _, v := range r.Victims {
						gotComm[v.PID] = v.Comm
					}
				}
				for _, r := range clean {
					for _, v := range r.Victims {
						tl.victims++
						switch c, ok := gotComm[v.PID]; {
						case ok && (c == v.Comm || m.cut && c == ""):
							tl.victimsFound++
						case !m.cut:
							t.Errorf("victim %d %q not found", v.PID, v.Comm)
						case os.Getenv("OOMSCOPE_MANGLE_ABSENT") != "":
							t.Logf("absent: victim %d %q (got %q %v)", v.PID, v.Comm, c, ok)
						}
					}
				}
				have := facts(t, got, mangledKey(clean))
				tl.facts += len(wantFacts)
				for k := range wantFacts {
					if strings.Contains(k, ".tasks[") {
						tl.rowFacts++
					}
				}
				var wrong []string
				for k, w := range wantFacts {
					switch g, ok := have[k]; {
					case !ok && os.Getenv("OOMSCOPE_MANGLE_ABSENT") != "":
						t.Logf("absent: %s = %q", k, w)
					case ok && g == w:
						tl.factsFound++
						if strings.Contains(k, ".tasks[") {
							tl.rowFactsFound++
						}
					case ok:
						wrong = append(wrong, fmt.Sprintf("%s = %q, want %q", k, g, w))
					}
				}
				for k, g := range have {
					if _, ok := wantFacts[k]; !ok {
						wrong = append(wrong, fmt.Sprintf("%s = %q, not in the clean log", k, g))
					}
				}
				sort.Strings(wrong)
				tl.wrong += len(wrong)
				for _, w := range wrong {
					t.Errorf("wrong fact: %s", w)
				}
			})
		}
	}
	names := make([]string, 0, len(totals))
	for n := range totals {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		tl := totals[n]
		other, otherFound := tl.facts-tl.rowFacts, tl.factsFound-tl.rowFactsFound
		t.Logf("%-50s victims %4d/%4d (%5.1f%%)  facts %6d/%6d (%5.1f%%), task rows aside %5d/%5d (%5.1f%%)  wrong %d", n, tl.victimsFound, tl.victims,
			pct(tl.victimsFound, tl.victims), tl.factsFound, tl.facts, pct(tl.factsFound, tl.facts), otherFound, other, pct(otherFound, other), tl.wrong)
	}
}

func pct(n, of int) float64 { return 100 * float64(n) / float64(max(of, 1)) }

// Package qemu is the host side of the qemu OOM matrix: it boots Debian
// kernels under qemu with the initramfs built by hack/initramfs.sh, reads the
// frames the guest prints on its second serial port (see package frame),
// rebuilds the OOM reports, checks them against the guest's ground truth
// (see package truth) and prints a kernel × scenario table.
//
// The reports checked are oomscope's own, printed in the guest by
// `oomscope run --stdout` ('R' frames) when the initramfs carries oomscope;
// otherwise the host parses the raw /dev/kmsg records ('K' frames) with
// kmsg and oomparse. Either way the raw records of each scenario are kept so
// that they can be saved as golden cases (testdata/kernels/).
package qemu

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/oomscope/oomscope/e2e/qemu/internal/frame"
	"github.com/oomscope/oomscope/e2e/qemu/internal/truth"
	"github.com/oomscope/oomscope/kmsg"
	"github.com/oomscope/oomscope/oomparse"
	"github.com/oomscope/oomscope/report"
)

// Boot is everything one guest boot printed on the frame port.
type Boot struct {
	// Kmsg are the raw /dev/kmsg lines ('K' frames) in order: record lines
	// and their dictionary lines.
	Kmsg []string
	// Truths are the scenarios' ground truths in run order.
	Truths []truth.Truth
	// Reports are the JSON lines `oomscope run --stdout` printed in the
	// guest ('R' frames), nil when oomscope did not run there.
	Reports []string
	// Logs are the guest's progress lines ('L' frames).
	Logs []string
	// Events are the kmsg reader's events ('E' frames: "lost N").
	Events []string
	// BadFrames counts frames with a bad checksum or shape.
	BadFrames int
	// Done is true when the guest's final marker record was seen.
	Done bool
	// RunnerDone is true when the runner reported the end of its run.
	RunnerDone bool
}

// ReadBoot reads the frame port output of one boot.
func ReadBoot(r io.Reader) (*Boot, error) {
	b := &Boot{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 32<<20)
	for sc.Scan() {
		kind, payload, ok, err := frame.Parse(sc.Text())
		if !ok {
			continue
		}
		if err != nil {
			b.BadFrames++
			continue
		}
		switch kind {
		case frame.Kmsg:
			b.Kmsg = append(b.Kmsg, payload)
			if recordText(payload) == doneMarker {
				b.Done = true
			}
		case frame.Truth:
			var t truth.Truth
			if err := json.Unmarshal([]byte(payload), &t); err != nil {
				return b, fmt.Errorf("decode truth frame: %w", err)
			}
			b.Truths = append(b.Truths, t)
		case frame.Report:
			b.Reports = append(b.Reports, payload)
		case frame.Log:
			b.Logs = append(b.Logs, payload)
		case frame.Event:
			b.Events = append(b.Events, payload)
			if payload == "done" {
				b.RunnerDone = true
			}
		}
	}
	if err := sc.Err(); err != nil {
		return b, fmt.Errorf("read frames: %w", err)
	}
	return b, nil
}

const doneMarker = "oomscope-e2e: done"

// recordText returns the text of a raw /dev/kmsg record line ("" for a
// dictionary line).
func recordText(line string) string {
	if strings.HasPrefix(line, " ") {
		return ""
	}
	_, text, ok := strings.Cut(line, ";")
	if !ok {
		return ""
	}
	return text
}

// recordSeq returns the sequence number of a raw record line.
func recordSeq(line string) (uint64, bool) {
	if strings.HasPrefix(line, " ") {
		return 0, false
	}
	head, _, ok := strings.Cut(line, ";")
	if !ok {
		return 0, false
	}
	f := strings.Split(head, ",")
	if len(f) < 2 {
		return 0, false
	}
	n, err := strconv.ParseUint(f[1], 10, 64)
	return n, err == nil
}

// Segment is one scenario of a boot: its truth, the raw records strictly
// between its markers and their sequence range.
type Segment struct {
	Truth truth.Truth
	// Lines are the raw kmsg lines (dictionary lines included) between the
	// markers.
	Lines []string
	// BeginSeq and EndSeq are the markers' sequence numbers (0 when the
	// marker was not seen).
	BeginSeq, EndSeq uint64
}

// Segments splits the boot's records by scenario markers, one Segment per
// truth, in run order.
func (b *Boot) Segments() []Segment {
	var out []Segment
	for _, t := range b.Truths {
		seg := Segment{Truth: t}
		in := false
		for _, line := range b.Kmsg {
			text := recordText(line)
			switch {
			case !in && text == t.Markers.Begin && !strings.HasPrefix(line, " "):
				in = true
				seg.BeginSeq, _ = recordSeq(line)
				continue
			case in && text == t.Markers.End && !strings.HasPrefix(line, " "):
				seg.EndSeq, _ = recordSeq(line)
				in = false
			}
			if in {
				seg.Lines = append(seg.Lines, line)
			}
			if seg.EndSeq != 0 {
				break
			}
		}
		out = append(out, seg)
	}
	return out
}

// Capture returns the segment's raw records as a /dev/kmsg dump file
// (one line each, newline-terminated): the golden-case input format.
func (s Segment) Capture() []byte {
	var sb strings.Builder
	for _, l := range s.Lines {
		sb.WriteString(l)
		sb.WriteByte('\n')
	}
	return []byte(sb.String())
}

// ParseSegment rebuilds the segment's reports on the host with kmsg and
// oomparse, as `oomscope parse` would from the capture.
func ParseSegment(s Segment) ([]report.Report, error) {
	sc := kmsg.NewScanner(strings.NewReader(string(s.Capture())), kmsg.WithFormat(kmsg.FormatKmsg))
	reports, err := oomparse.ParseAll(sc)
	if err != nil {
		return nil, fmt.Errorf("parse %s capture: %w", s.Truth.Scenario, err)
	}
	return reports, nil
}

// GuestAttributions decodes the attribution of the 'R' frames whose
// report is in the segment.
func (b *Boot) GuestAttributions(s Segment) ([]guestAttribution, error) {
	var out []guestAttribution
	for _, line := range b.Reports {
		var r report.Report
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			return nil, fmt.Errorf("decode oomscope report line: %w", err)
		}
		seq := r.First.Seq
		if seq == 0 && len(r.Victims) > 0 {
			seq = r.Victims[0].Seq
		}
		if r.Schema != report.Schema || seq <= s.BeginSeq || s.EndSeq != 0 && seq >= s.EndSeq {
			continue
		}
		var g guestAttribution
		if err := json.Unmarshal([]byte(line), &g); err != nil {
			return nil, fmt.Errorf("decode oomscope report line: %w", err)
		}
		out = append(out, g)
	}
	return out, nil
}

// GuestReports decodes the 'R' frames and returns the ones whose first
// record lies inside the segment (by sequence number).
func (b *Boot) GuestReports(s Segment) ([]report.Report, error) {
	var out []report.Report
	for _, line := range b.Reports {
		var r report.Report
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			return nil, fmt.Errorf("decode oomscope report line: %w", err)
		}
		if r.Schema != report.Schema {
			continue
		}
		seq := r.First.Seq
		if seq == 0 && len(r.Victims) > 0 {
			seq = r.Victims[0].Seq
		}
		if seq > s.BeginSeq && (s.EndSeq == 0 || seq < s.EndSeq) {
			out = append(out, r)
		}
	}
	return out, nil
}

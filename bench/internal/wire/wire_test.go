package wire

import (
	"testing"

	"github.com/oomscope/oomscope/report"
)

func TestOf(t *testing.T) {
	v := report.Victim{PID: 5, Comm: "a", AnonRSSBytes: 4096}
	bare := &report.Report{Partial: true, Victims: []report.Victim{v}}
	if got := Of(bare, &bare.Victims[0]); got != FieldPID|FieldComm|FieldRSS || got.Count() != 3 {
		t.Errorf("bare victim line: %b", got)
	}
	full := &report.Report{TaskMemcg: "/x", Memory: &report.Counter{UsageBytes: 1, LimitBytes: 1}, Tasks: []report.Task{{PID: 5}}, TasksTotal: 1, Victims: []report.Victim{v}}
	if got := Of(full, &full.Victims[0]); got.Count() != NumFields {
		t.Errorf("full report: %b", got)
	}
}

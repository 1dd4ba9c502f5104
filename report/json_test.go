package report_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/oomscope/oomscope/report"
)

func TestMarshalJSONEscapesTerminalControls(t *testing.T) {
	comm := "x\n\x1b]0;pwn\x07\u202e\u2066\u0085\x7fé"
	r := &report.Enriched{Report: &report.Report{Schema: report.Schema, ID: "b/1", Victims: []report.Victim{{PID: 1, Comm: comm}}},
		Pod: &report.Pod{UID: "u", Name: "p\u202dq"}}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, raw := range []string{"\n", "\x1b", "\x07", "\u202e", "\u2066", "\u0085", "\x7f", "\u202d"} {
		if strings.Contains(string(b), raw) {
			t.Errorf("JSON carries raw %q: %s", raw, b)
		}
	}
	if !strings.Contains(string(b), "é") {
		t.Errorf("printable non-ASCII was escaped too: %s", b)
	}
	var back report.Enriched
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Victims[0].Comm != comm || back.Pod.Name != "p\u202dq" {
		t.Errorf("decoded %q %q, want the names unchanged", back.Victims[0].Comm, back.Pod.Name)
	}
	// Indented output (the archive) goes through the same method.
	ind, _ := json.MarshalIndent(r, "", "  ")
	if strings.Contains(string(ind), "\u202e") {
		t.Error("MarshalIndent carries a raw bidi override")
	}
	if got := string(report.SafeJSON([]byte(`{"a":"plain"}`))); got != `{"a":"plain"}` {
		t.Errorf("SafeJSON changed a clean document: %s", got)
	}
}

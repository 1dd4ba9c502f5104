package oomparse_test

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/oomscope/oomscope/internal/goldens"
	"github.com/oomscope/oomscope/internal/jsonschema"
	"github.com/oomscope/oomscope/kmsg"
	"github.com/oomscope/oomscope/oomparse"
	"github.com/oomscope/oomscope/report"
)

// This file checks the Report's JSON against docs/report.schema.json:
// every golden report and the parser's fresh output of every golden input
// must validate, and every key the Go types can emit must be described in
// the schema (and nothing more), so that the schema cannot drift from the
// code. The validator and the reflect walk live in internal/jsonschema
// (with their own tests); package enrich runs the same checks over
// report.Enriched, whose enrichment keys this file leaves aside.

const schemaFile = "../docs/report.schema.json"

// schemaEnrichKeys are the top-level keys package enrich adds beside the
// report's own (report.Enriched); they have no field in report.Report.
var schemaEnrichKeys = []string{"pod", "container", "cgroups", "snapshot", "missed_kills", "diagnosis", "enrichment", "attribution"}

func reportSchemaValidator(t *testing.T) *jsonschema.Validator {
	t.Helper()
	v, err := jsonschema.Load(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestSchemaGoldens validates every golden report file.
func TestSchemaGoldens(t *testing.T) {
	v := reportSchemaValidator(t)
	for _, g := range goldens.Goldens(t) {
		t.Run(strings.TrimPrefix(g, "../testdata/"), func(t *testing.T) {
			b, err := os.ReadFile(g)
			if err != nil {
				t.Fatal(err)
			}
			doc, err := jsonschema.Decode(b)
			if err != nil {
				t.Fatalf("%s: %v", g, err)
			}
			reports, ok := doc.([]any)
			if !ok {
				t.Fatalf("%s: want an array of reports, got %s", g, jsonschema.TypeOf(doc))
			}
			for i, r := range reports {
				for _, e := range v.Validate(r) {
					t.Errorf("report %d: %s", i, e)
				}
			}
		})
	}
}

// TestSchemaParserOutput validates what the parser produces now from every
// golden input, raw lines included, with and without a boot id (the two
// id forms).
func TestSchemaParserOutput(t *testing.T) {
	v := reportSchemaValidator(t)
	total := 0
	for _, in := range goldens.Inputs(t, true) {
		t.Run(strings.TrimPrefix(in, "../testdata/"), func(t *testing.T) {
			for _, opts := range [][]oomparse.Option{nil, {oomparse.WithBootID("6a1f8c52-0d3e-4b7a-9c21-5e8f0a6b3d47"), oomparse.WithHost("node-1")}} {
				for i, r := range goldens.Parse(t, in, opts...) {
					total++
					b, err := json.Marshal(r)
					if err != nil {
						t.Fatal(err)
					}
					inst, err := jsonschema.Decode(b)
					if err != nil {
						t.Fatal(err)
					}
					for _, e := range v.Validate(inst) {
						t.Errorf("report %d (%d options): %s", i, len(opts), e)
					}
				}
			}
		})
	}
	if total == 0 {
		t.Fatal("the golden inputs produced no reports")
	}
}

// TestSchemaParserOutputFlags validates reports of the robustness paths
// (rate limited, gap, cut short, reaper, exiting, garbage), which the
// golden cases may not all cover, and checks that each took the path meant.
func TestSchemaParserOutputFlags(t *testing.T) {
	v := reportSchemaValidator(t)
	header := "4,100,1000000,-;stress invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0\n" +
		"6,101,1000010,-;memory: usage 1024kB, limit 1024kB, failcnt 3\n"
	killed := "3,%d,1000100,-;Memory cgroup out of memory: Killed process 42 (stress) total-vm:8192kB, anon-rss:1000kB, file-rss:4kB, shmem-rss:0kB, UID:0 pgtables:40kB oom_score_adj:0\n"
	tests := []struct {
		name  string
		input string
		check func(r map[string]any) bool
	}{
		{"rate limited", fmt.Sprintf(killed, 7), func(r map[string]any) bool { return r["partial"] == true }},
		{"gap inside", header + fmt.Sprintf(killed, 150), func(r map[string]any) bool { return r["gap"] == true && r["incomplete"] == true }},
		{"cut short", header, func(r map[string]any) bool { return r["incomplete"] == true && len(r["victims"].([]any)) == 0 }},
		{"reaper", header + fmt.Sprintf(killed, 102) + "6,103,1000200,-;oom_reaper: reaped process 42 (stress), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB\n",
			func(r map[string]any) bool { _, ok := r["victims"].([]any)[0].(map[string]any)["reaper"]; return ok }},
		{"exiting", header + "6,102,1000100,-;Memory cgroup out of memory: OOM victim 42 (stress) is already exiting. Skip killing the task\n",
			func(r map[string]any) bool {
				return len(r["victims"].([]any)) == 0 && len(r["already_exiting"].([]any)) == 1 && r["incomplete"] == false
			}},
		{"chosen without its Killed line", header + "3,102,1000100,-;Memory cgroup out of memory: Kill process 42 (stress) score 990 or sacrifice child\n",
			func(r map[string]any) bool {
				return len(r["victims"].([]any)) == 0 && r["chosen"].(map[string]any)["pid"] == json.Number("42")
			}},
		{"victim named by the reaper", header + "6,102,1000050,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),oom_memcg=/a,task_memcg=/a,task=stress,pid=42,uid=0\n" +
			"6,103,1000200,-;oom_reaper: reaped process 42 (stress), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB\n",
			func(r map[string]any) bool {
				v := r["victims"].([]any)[0].(map[string]any)
				_, sized := v["anon_rss_bytes"]
				return v["inferred"] == "oom_reaper" && !sized && r["incomplete"] == true
			}},
		{"garbage inside", header + "4,102,1000050,-;\xff\xfe garbage \x00 line\n4,103,1000060,-;Killed process x (\n" + fmt.Sprintf(killed, 104),
			func(r map[string]any) bool { _, ok := r["unparsed_lines"]; return ok }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sc := kmsg.NewScanner(strings.NewReader(tc.input), kmsg.WithYear(2026), kmsg.WithLocation(time.UTC))
			reports, err := oomparse.ParseAll(sc)
			if err != nil {
				t.Fatal(err)
			}
			if len(reports) != 1 {
				t.Fatalf("want 1 report, got %d", len(reports))
			}
			b, err := json.Marshal(reports[0])
			if err != nil {
				t.Fatal(err)
			}
			inst, err := jsonschema.Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range v.Validate(inst) {
				t.Error(e)
			}
			if !tc.check(inst.(map[string]any)) {
				t.Errorf("the report did not take the path meant: %s", b)
			}
		})
	}
}

// TestSchemaRejectsBrokenReports mutates a real report and checks that the
// report schema (not just the validator) catches each mutation.
func TestSchemaRejectsBrokenReports(t *testing.T) {
	v := reportSchemaValidator(t)
	reports := goldens.Parse(t, "../testdata/captures/qemu-debian-6.1-cgroupv2-memcg.kmsg")
	if len(reports) == 0 {
		t.Fatal("no report in the capture")
	}
	b, err := json.Marshal(reports[0])
	if err != nil {
		t.Fatal(err)
	}
	fresh := func() map[string]any {
		inst, err := jsonschema.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		return inst.(map[string]any)
	}
	if errs := v.Validate(fresh()); len(errs) > 0 {
		t.Fatalf("the unmodified report is invalid: %q", errs)
	}
	sub := func(r map[string]any, keys ...string) map[string]any {
		for _, k := range keys {
			r = r[k].(map[string]any)
		}
		return r
	}
	victim := func(r map[string]any) map[string]any { return r["victims"].([]any)[0].(map[string]any) }
	tests := []struct {
		name    string
		mutate  func(r map[string]any)
		wantErr string
	}{
		{"unknown top-level key", func(r map[string]any) { r["pod_name"] = "web" }, `unknown key "pod_name"`},
		{"missing id", func(r map[string]any) { delete(r, "id") }, `missing required key "id"`},
		{"missing partial", func(r map[string]any) { delete(r, "partial") }, `missing required key "partial"`},
		{"wrong schema version", func(r map[string]any) { r["schema"] = "oomscope.report/v2" }, `/schema: want "oomscope.report/v1"`},
		{"bad id", func(r map[string]any) { r["id"] = "report-1" }, `/id: "report-1" does not match`},
		{"unknown kind", func(r map[string]any) { r["kind"] = "oom" }, `/kind: "oom" is not one of`},
		{"victim pid as string", func(r map[string]any) { victim(r)["pid"] = "85" }, "/victims/0/pid: want integer, got string"},
		{"victim missing comm", func(r map[string]any) { delete(victim(r), "comm") }, `/victims/0: missing required key "comm"`},
		{"victim size in kB", func(r map[string]any) { victim(r)["anon_rss_kb"] = json.Number("1") }, `/victims/0: unknown key "anon_rss_kb"`},
		{"negative usage", func(r map[string]any) { sub(r, "memory")["usage_bytes"] = json.Number("-1") }, "/memory/usage_bytes: -1 is less than the minimum 0"},
		{"null limit", func(r map[string]any) { sub(r, "memory")["limit_bytes"] = nil }, "/memory/limit_bytes: want integer, got null"},
		{"stat as string", func(r map[string]any) {
			r["memcg_stats"].([]any)[0].(map[string]any)["stats"].(map[string]any)["anon"] = "1"
		}, "/memcg_stats/0/stats/anon: want integer, got string"},
		{"task rss fractional", func(r map[string]any) {
			r["tasks"].([]any)[0].(map[string]any)["rss_pages"] = json.Number("1.5")
		}, "/tasks/0/rss_pages: want integer, got number"},
		{"derived unknown source", func(r map[string]any) { sub(r, "derived")["source"] = "guess" }, `/derived/source: "guess" is not one of`},
		{"trigger missing comm", func(r map[string]any) { delete(sub(r, "trigger"), "comm") }, `/trigger: missing required key "comm"`},
		{"stamp unknown key", func(r map[string]any) { sub(r, "first")["usec"] = json.Number("1") }, `/first: unknown key "usec"`},
		{"diagnosis bad scope", func(r map[string]any) {
			r["diagnosis"] = map[string]any{"scope": "namespace", "summary": "x"}
		}, `/diagnosis/scope: "namespace" is not one of`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := fresh()
			tc.mutate(r)
			errs := v.Validate(r)
			if !strings.Contains(strings.Join(errs, "\n"), tc.wantErr) {
				t.Fatalf("want an error containing %q, got %q", tc.wantErr, errs)
			}
		})
	}
}

// TestSchemaCoversStructs walks the Go types of report.Report with
// reflect: every key they can emit must be a property of the schema with a
// matching type, every key emitted without omitempty must be required, and
// every property of the schema must be a key of the Go type (the enrichment
// keys at the top level excepted: they belong to report.Enriched).
func TestSchemaCoversStructs(t *testing.T) {
	v := reportSchemaValidator(t)
	for _, e := range v.Cover(reflect.TypeFor[report.Report](), jsonschema.ForeignKeys(schemaEnrichKeys...)) {
		t.Error(e)
	}
}

const schemaDocFile = "../docs/report.md"

// TestSchemaDocExample validates every ```json block of docs/report.md, so
// that the worked example stays a valid report.
func TestSchemaDocExample(t *testing.T) {
	v := reportSchemaValidator(t)
	b, err := os.ReadFile(schemaDocFile)
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```json\n(.*?)```").FindAllSubmatch(b, -1)
	if len(blocks) == 0 {
		t.Fatalf("%s has no JSON example", schemaDocFile)
	}
	for i, m := range blocks {
		inst, err := jsonschema.Decode(m[1])
		if err != nil {
			t.Fatalf("example %d: %v", i, err)
		}
		for _, e := range v.Validate(inst) {
			t.Errorf("example %d: %s", i, e)
		}
	}
}

// TestSchemaDocCoversKeys checks that every key the schema describes is
// named (in backticks) in docs/report.md.
func TestSchemaDocCoversKeys(t *testing.T) {
	v := reportSchemaValidator(t)
	b, err := os.ReadFile(schemaDocFile)
	if err != nil {
		t.Fatal(err)
	}
	named := jsonschema.DocumentedWords(b)
	props := v.Properties()
	for _, p := range props {
		if !named[p.Key] {
			t.Errorf("%s: key %q is not documented in %s", p.Path, p.Key, schemaDocFile)
		}
	}
	if len(props) < 100 {
		t.Fatalf("walked only %d keys of the schema", len(props))
	}
}

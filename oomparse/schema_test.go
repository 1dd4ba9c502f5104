package oomparse_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/oomscope/oomscope/kmsg"
	"github.com/oomscope/oomscope/oomparse"
)

// This file checks the Report's JSON against docs/report.schema.json:
// every golden report and the parser's fresh output of every golden input
// must validate, and every key the Go types can emit must be described in
// the schema (and nothing more), so that the schema cannot drift from the
// code. The validator implements the subset of JSON Schema 2020-12 the
// schema uses and refuses schemas that use any other keyword, so that no
// constraint is silently ignored.

const schemaFile = "../docs/report.schema.json"

// schemaEnrichKeys are the top-level keys package enrich adds beside the
// report's own (enrich.Report); they have no field in oomparse.Report.
var schemaEnrichKeys = []string{"pod", "container", "cgroups", "snapshot", "missed_kills", "diagnosis", "enrichment"}

// schemaValidator validates JSON instances (decoded with UseNumber) against
// a JSON Schema document.
type schemaValidator struct {
	root any
	re   map[string]*regexp.Regexp // every pattern of the schema, compiled by check
}

// schemaAnnotations carry no constraint; the validator ignores them.
var schemaAnnotations = map[string]bool{
	"$schema": true, "$id": true, "$comment": true, "title": true, "description": true,
	"format": true, "examples": true, "default": true, "deprecated": true,
}

// schemaAssertions are the keywords the validator implements.
var schemaAssertions = map[string]bool{
	"$defs": true, "$ref": true, "type": true, "properties": true, "required": true,
	"additionalProperties": true, "patternProperties": true, "items": true,
	"enum": true, "const": true, "minimum": true, "pattern": true,
}

var schemaJSONTypes = map[string]bool{"null": true, "boolean": true, "object": true, "array": true, "number": true, "string": true, "integer": true}

// schemaDecode decodes b keeping numbers exact.
func schemaDecode(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("decode JSON: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("decode JSON: trailing data after the value")
	}
	return v, nil
}

// newSchemaValidator parses a schema document and checks that it only uses
// supported keywords, that its patterns compile and its $refs resolve.
func newSchemaValidator(doc []byte) (*schemaValidator, error) {
	root, err := schemaDecode(doc)
	if err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	v := &schemaValidator{root: root, re: map[string]*regexp.Regexp{}}
	if err := v.check(root, "#"); err != nil {
		return nil, err
	}
	return v, nil
}

// check verifies one schema node and its subschemas.
func (v *schemaValidator) check(s any, at string) error {
	if _, ok := s.(bool); ok {
		return nil
	}
	m, ok := s.(map[string]any)
	if !ok {
		return fmt.Errorf("schema %s: a schema must be an object or a boolean, got %T", at, s)
	}
	for k, val := range m {
		switch {
		case schemaAnnotations[k]:
		case !schemaAssertions[k]:
			return fmt.Errorf("schema %s: unsupported keyword %q", at, k)
		case k == "$defs" || k == "properties" || k == "patternProperties":
			sub, ok := val.(map[string]any)
			if !ok {
				return fmt.Errorf("schema %s/%s: want an object", at, k)
			}
			for name, ss := range sub {
				if k == "patternProperties" {
					re, err := regexp.Compile(name)
					if err != nil {
						return fmt.Errorf("schema %s/%s: pattern %q: %w", at, k, name, err)
					}
					v.re[name] = re
				}
				if err := v.check(ss, at+"/"+k+"/"+name); err != nil {
					return err
				}
			}
		case k == "additionalProperties" || k == "items":
			if err := v.check(val, at+"/"+k); err != nil {
				return err
			}
		case k == "$ref":
			ref, ok := val.(string)
			if !ok {
				return fmt.Errorf("schema %s/$ref: want a string", at)
			}
			if _, err := v.resolve(ref); err != nil {
				return fmt.Errorf("schema %s: %w", at, err)
			}
		case k == "type":
			names, err := schemaTypeNames(val)
			if err != nil {
				return fmt.Errorf("schema %s/type: %w", at, err)
			}
			for _, n := range names {
				if !schemaJSONTypes[n] {
					return fmt.Errorf("schema %s/type: unknown type %q", at, n)
				}
			}
		case k == "required":
			list, ok := val.([]any)
			if !ok {
				return fmt.Errorf("schema %s/required: want an array", at)
			}
			for _, r := range list {
				if _, ok := r.(string); !ok {
					return fmt.Errorf("schema %s/required: want strings", at)
				}
			}
		case k == "enum":
			if _, ok := val.([]any); !ok {
				return fmt.Errorf("schema %s/enum: want an array", at)
			}
		case k == "minimum":
			if _, ok := val.(json.Number); !ok {
				return fmt.Errorf("schema %s/minimum: want a number", at)
			}
		case k == "pattern":
			p, ok := val.(string)
			if !ok {
				return fmt.Errorf("schema %s/pattern: want a string", at)
			}
			re, err := regexp.Compile(p)
			if err != nil {
				return fmt.Errorf("schema %s/pattern: %w", at, err)
			}
			v.re[p] = re
		}
	}
	return nil
}

func schemaTypeNames(val any) ([]string, error) {
	switch t := val.(type) {
	case string:
		return []string{t}, nil
	case []any:
		var out []string
		for _, e := range t {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("want type names, got %v", e)
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, fmt.Errorf("want a string or an array of strings, got %T", val)
}

// resolve follows a local reference ("#/$defs/name", any JSON pointer).
func (v *schemaValidator) resolve(ref string) (any, error) {
	ptr, ok := strings.CutPrefix(ref, "#")
	if !ok {
		return nil, fmt.Errorf("$ref %q: only local references are supported", ref)
	}
	node := v.root
	if ptr == "" {
		return node, nil
	}
	if !strings.HasPrefix(ptr, "/") {
		return nil, fmt.Errorf("$ref %q: not a JSON pointer", ref)
	}
	for _, tok := range strings.Split(ptr[1:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := node.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("$ref %q: %q is not inside an object", ref, tok)
		}
		if node, ok = m[tok]; !ok {
			return nil, fmt.Errorf("$ref %q: no %q", ref, tok)
		}
	}
	return node, nil
}

// Validate returns every violation of the root schema by inst, each
// prefixed with its JSON pointer in inst.
func (v *schemaValidator) Validate(inst any) []string {
	var errs []string
	v.validate(v.root, inst, "", &errs, 0)
	return errs
}

func (v *schemaValidator) validate(s, inst any, at string, errs *[]string, depth int) {
	fail := func(format string, args ...any) {
		where := at
		if where == "" {
			where = "/"
		}
		*errs = append(*errs, where+": "+fmt.Sprintf(format, args...))
	}
	if depth > 64 {
		fail("schema nesting too deep ($ref loop?)")
		return
	}
	switch s := s.(type) {
	case bool:
		if !s {
			fail("no value is allowed here")
		}
		return
	case map[string]any:
		if ref, ok := s["$ref"].(string); ok {
			target, err := v.resolve(ref)
			if err != nil {
				fail("%v", err)
				return
			}
			v.validate(target, inst, at, errs, depth+1)
		}
		if t, ok := s["type"]; ok {
			names, _ := schemaTypeNames(t)
			if !schemaHasType(names, inst) {
				fail("want %s, got %s", strings.Join(names, " or "), schemaJSONType(inst))
				return
			}
		}
		if c, ok := s["const"]; ok && !schemaEqual(c, inst) {
			fail("want %s, got %s", schemaShow(c), schemaShow(inst))
		}
		if e, ok := s["enum"].([]any); ok {
			found := false
			for _, c := range e {
				found = found || schemaEqual(c, inst)
			}
			if !found {
				fail("%s is not one of %s", schemaShow(inst), schemaShow(e))
			}
		}
		if n, ok := inst.(json.Number); ok {
			if min, ok := s["minimum"].(json.Number); ok && schemaRat(n).Cmp(schemaRat(min)) < 0 {
				fail("%s is less than the minimum %s", n, min)
			}
		}
		if str, ok := inst.(string); ok {
			if p, ok := s["pattern"].(string); ok && !v.re[p].MatchString(str) {
				fail("%q does not match %q", str, p)
			}
		}
		if arr, ok := inst.([]any); ok {
			if items, ok := s["items"]; ok {
				for i, e := range arr {
					v.validate(items, e, fmt.Sprintf("%s/%d", at, i), errs, depth+1)
				}
			}
		}
		if obj, ok := inst.(map[string]any); ok {
			v.validateObject(s, obj, at, errs, depth, fail)
		}
	}
}

func (v *schemaValidator) validateObject(s, obj map[string]any, at string, errs *[]string, depth int, fail func(string, ...any)) {
	props, _ := s["properties"].(map[string]any)
	pats, _ := s["patternProperties"].(map[string]any)
	if req, ok := s["required"].([]any); ok {
		for _, r := range req {
			if _, ok := obj[r.(string)]; !ok {
				fail("missing required key %q", r)
			}
		}
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		val, sub := obj[k], at+"/"+strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1")
		matched := false
		if ps, ok := props[k]; ok {
			matched = true
			v.validate(ps, val, sub, errs, depth+1)
		}
		for p, ps := range pats {
			if v.re[p].MatchString(k) {
				matched = true
				v.validate(ps, val, sub, errs, depth+1)
			}
		}
		if ap, ok := s["additionalProperties"]; ok && !matched {
			if b, ok := ap.(bool); ok && !b {
				fail("unknown key %q", k)
				continue
			}
			v.validate(ap, val, sub, errs, depth+1)
		}
	}
}

func schemaHasType(names []string, inst any) bool {
	got := schemaJSONType(inst)
	for _, n := range names {
		if n == got || n == "number" && got == "integer" {
			return true
		}
	}
	return false
}

// schemaJSONType is the JSON Schema type of a decoded value; an integral number is
// "integer".
func schemaJSONType(inst any) string {
	switch x := inst.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	case json.Number:
		if schemaRat(x).IsInt() {
			return "integer"
		}
		return "number"
	}
	return fmt.Sprintf("Go %T", inst)
}

func schemaRat(n json.Number) *big.Rat {
	r, ok := new(big.Rat).SetString(n.String())
	if !ok {
		return new(big.Rat)
	}
	return r
}

// schemaEqual compares decoded JSON values; numbers compare by value.
func schemaEqual(a, b any) bool {
	an, aok := a.(json.Number)
	bn, bok := b.(json.Number)
	if aok || bok {
		return aok && bok && schemaRat(an).Cmp(schemaRat(bn)) == 0
	}
	switch x := a.(type) {
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !schemaEqual(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, xv := range x {
			yv, ok := y[k]
			if !ok || !schemaEqual(xv, yv) {
				return false
			}
		}
		return true
	}
	return a == b
}

func schemaShow(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	if len(b) > 80 {
		return string(b[:80]) + "..."
	}
	return string(b)
}

func mustSchemaValidator(t *testing.T, schema string) *schemaValidator {
	t.Helper()
	v, err := newSchemaValidator([]byte(schema))
	if err != nil {
		t.Fatalf("schema: %v", err)
	}
	return v
}

func reportSchemaValidator(t *testing.T) *schemaValidator {
	t.Helper()
	b, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	v, err := newSchemaValidator(b)
	if err != nil {
		t.Fatalf("%s: %v", schemaFile, err)
	}
	return v
}

// TestSchemaValidator proves the validator itself: each case must be
// accepted or rejected, with the error mentioning a given text.
func TestSchemaValidator(t *testing.T) {
	const obj = `{
		"type": "object",
		"properties": {
			"id": {"type": "string", "pattern": "^[a-z]+/[0-9]+$"},
			"n": {"$ref": "#/$defs/count"},
			"adj": {"type": "integer"},
			"share": {"type": "number", "minimum": 0},
			"opt": {"type": ["string", "null"]},
			"kind": {"enum": ["a", "b"]},
			"schema": {"const": "v1"},
			"list": {"type": "array", "items": {"$ref": "#/$defs/item"}},
			"stats": {"type": "object", "patternProperties": {"^[a-z_]+$": {"$ref": "#/$defs/count"}}, "additionalProperties": false},
			"labels": {"type": "object", "additionalProperties": {"type": "string"}}
		},
		"required": ["id", "n"],
		"additionalProperties": false,
		"$defs": {
			"count": {"type": "integer", "minimum": 0},
			"item": {"type": "object", "properties": {"pid": {"type": "integer"}}, "required": ["pid"], "additionalProperties": false}
		}
	}`
	v := mustSchemaValidator(t, obj)
	tests := []struct {
		name, inst string
		wantErr    string // "" = valid
	}{
		{"minimal", `{"id": "boot/1", "n": 0}`, ""},
		{"full", `{"id": "boot/1", "n": 18446744073709551615, "adj": -1000, "share": 0.25, "opt": null, "kind": "b", "schema": "v1",
			"list": [{"pid": 1}, {"pid": 2}], "stats": {"total_rss": 4096}, "labels": {"app": "web"}}`, ""},
		{"integral float is an integer", `{"id": "boot/1", "n": 1.0}`, ""},
		{"nullable string", `{"id": "boot/1", "n": 1, "opt": "x"}`, ""},
		{"not an object", `[]`, "want object, got array"},
		{"missing required", `{"id": "boot/1"}`, `missing required key "n"`},
		{"unknown key", `{"id": "boot/1", "n": 1, "extra": true}`, `unknown key "extra"`},
		{"string for integer", `{"id": "boot/1", "n": "1"}`, "/n: want integer, got string"},
		{"fraction for integer", `{"id": "boot/1", "n": 1.5}`, "/n: want integer, got number"},
		{"below minimum via ref", `{"id": "boot/1", "n": -1}`, "/n: -1 is less than the minimum 0"},
		{"below minimum number", `{"id": "boot/1", "n": 1, "share": -0.5}`, "/share: -0.5 is less than the minimum 0"},
		{"null not allowed", `{"id": null, "n": 1}`, "/id: want string, got null"},
		{"boolean for string or null", `{"id": "boot/1", "n": 1, "opt": false}`, "/opt: want string or null, got boolean"},
		{"pattern", `{"id": "BOOT", "n": 1}`, `/id: "BOOT" does not match`},
		{"enum", `{"id": "boot/1", "n": 1, "kind": "c"}`, `/kind: "c" is not one of ["a","b"]`},
		{"const", `{"id": "boot/1", "n": 1, "schema": "v2"}`, `/schema: want "v1", got "v2"`},
		{"item wrong type", `{"id": "boot/1", "n": 1, "list": [{"pid": 1}, {"pid": "x"}]}`, "/list/1/pid: want integer, got string"},
		{"item unknown key", `{"id": "boot/1", "n": 1, "list": [{"pid": 1, "tid": 2}]}`, `/list/0: unknown key "tid"`},
		{"item missing key", `{"id": "boot/1", "n": 1, "list": [{}]}`, `/list/0: missing required key "pid"`},
		{"items not an array", `{"id": "boot/1", "n": 1, "list": {}}`, "/list: want array, got object"},
		{"pattern property wrong type", `{"id": "boot/1", "n": 1, "stats": {"rss": true}}`, "/stats/rss: want integer, got boolean"},
		{"pattern property negative", `{"id": "boot/1", "n": 1, "stats": {"rss": -4}}`, "/stats/rss: -4 is less than the minimum 0"},
		{"key matching no pattern", `{"id": "boot/1", "n": 1, "stats": {"Bad Key": 1}}`, `/stats: unknown key "Bad Key"`},
		{"additionalProperties schema", `{"id": "boot/1", "n": 1, "labels": {"app": 1}}`, "/labels/app: want string, got integer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inst, err := schemaDecode([]byte(tc.inst))
			if err != nil {
				t.Fatal(err)
			}
			errs := v.Validate(inst)
			if tc.wantErr == "" {
				if len(errs) > 0 {
					t.Fatalf("want valid, got %q", errs)
				}
				return
			}
			if len(errs) == 0 {
				t.Fatalf("want an error containing %q, got none", tc.wantErr)
			}
			if !strings.Contains(strings.Join(errs, "\n"), tc.wantErr) {
				t.Fatalf("want an error containing %q, got %q", tc.wantErr, errs)
			}
		})
	}
}

// TestSchemaValidatorRefusesSchemas proves that a schema using what the
// validator does not implement is refused instead of half-checked.
func TestSchemaValidatorRefusesSchemas(t *testing.T) {
	tests := []struct{ name, schema, wantErr string }{
		{"unsupported keyword", `{"type": "object", "properties": {"a": {"oneOf": []}}}`, `unsupported keyword "oneOf"`},
		{"unknown type", `{"type": "int"}`, `unknown type "int"`},
		{"dangling ref", `{"$defs": {}, "$ref": "#/$defs/nope"}`, `no "nope"`},
		{"remote ref", `{"$ref": "https://example.com/s.json"}`, "only local references"},
		{"bad pattern", `{"pattern": "("}`, "pattern"},
		{"bad pattern property", `{"patternProperties": {"(": true}}`, "pattern"},
		{"schema not an object", `{"items": 3}`, "must be an object or a boolean"},
		{"not JSON", `{`, "decode JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newSchemaValidator([]byte(tc.schema))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("want an error containing %q, got %v", tc.wantErr, err)
			}
		})
	}
}

// schemaInputs lists the golden reports and the inputs (alternate formats
// included) under goldenDirs.
func schemaInputs(t *testing.T) (goldens, inputs []string) {
	t.Helper()
	for _, dir := range goldenDirs {
		_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			switch {
			case strings.HasSuffix(path, ".golden.json"):
				goldens = append(goldens, path)
			case strings.HasSuffix(path, ".log") || strings.HasSuffix(path, ".kmsg"):
				inputs = append(inputs, path) // alternates (.alt*.log) too
			}
			return nil
		})
	}
	if len(goldens) == 0 || len(inputs) == 0 {
		t.Fatalf("no golden reports (%d) or inputs (%d) under %v", len(goldens), len(inputs), goldenDirs)
	}
	return goldens, inputs
}

// TestSchemaGoldens validates every golden report file.
func TestSchemaGoldens(t *testing.T) {
	v := reportSchemaValidator(t)
	goldens, _ := schemaInputs(t)
	for _, g := range goldens {
		t.Run(strings.TrimPrefix(g, "../testdata/"), func(t *testing.T) {
			b, err := os.ReadFile(g)
			if err != nil {
				t.Fatal(err)
			}
			doc, err := schemaDecode(b)
			if err != nil {
				t.Fatalf("%s: %v", g, err)
			}
			reports, ok := doc.([]any)
			if !ok {
				t.Fatalf("%s: want an array of reports, got %s", g, schemaJSONType(doc))
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
	_, inputs := schemaInputs(t)
	total := 0
	for _, in := range inputs {
		t.Run(strings.TrimPrefix(in, "../testdata/"), func(t *testing.T) {
			for _, opts := range [][]oomparse.Option{nil, {oomparse.WithBootID("6a1f8c52-0d3e-4b7a-9c21-5e8f0a6b3d47"), oomparse.WithHost("node-1")}} {
				for i, r := range schemaParse(t, in, opts...) {
					total++
					b, err := json.Marshal(r)
					if err != nil {
						t.Fatal(err)
					}
					inst, err := schemaDecode(b)
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
			func(r map[string]any) bool { return r["victims"].([]any)[0].(map[string]any)["exiting"] == true }},
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
			inst, err := schemaDecode(b)
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

func schemaParse(t *testing.T, path string, opts ...oomparse.Option) []oomparse.Report {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := kmsg.NewScanner(f, kmsg.WithYear(2026), kmsg.WithLocation(time.UTC))
	reports, err := oomparse.ParseAll(sc, opts...)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	return reports
}

// TestSchemaRejectsBrokenReports mutates a real report and checks that the
// report schema (not just the validator) catches each mutation.
func TestSchemaRejectsBrokenReports(t *testing.T) {
	v := reportSchemaValidator(t)
	reports := schemaParse(t, "../testdata/captures/qemu-debian-6.1-cgroupv2-memcg.kmsg")
	if len(reports) == 0 {
		t.Fatal("no report in the capture")
	}
	b, err := json.Marshal(reports[0])
	if err != nil {
		t.Fatal(err)
	}
	fresh := func() map[string]any {
		inst, err := schemaDecode(b)
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
		{"trigger missing order", func(r map[string]any) { delete(sub(r, "trigger"), "order") }, `/trigger: missing required key "order"`},
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

// TestSchemaCoversStructs walks the Go types of oomparse.Report with
// reflect: every key they can emit must be a property of the schema with a
// matching type, every key emitted without omitempty must be required, and
// every property of the schema must be a key of the Go type (the enrichment
// keys at the top level excepted: they belong to enrich.Report).
func TestSchemaCoversStructs(t *testing.T) {
	v := reportSchemaValidator(t)
	var errs []string
	v.cover(reflect.TypeFor[oomparse.Report](), v.root, "", &errs, true)
	for _, e := range errs {
		t.Error(e)
	}
}

// deref follows $ref chains and returns the schema node that holds the
// keywords, merged with the keywords beside each $ref.
func (v *schemaValidator) deref(s any) map[string]any {
	out := map[string]any{}
	for i := 0; i < 16; i++ {
		m, ok := s.(map[string]any)
		if !ok {
			return out
		}
		for k, val := range m {
			if _, set := out[k]; !set && k != "$ref" {
				out[k] = val
			}
		}
		ref, ok := m["$ref"].(string)
		if !ok {
			return out
		}
		s, _ = v.resolve(ref)
	}
	return out
}

// schemaTypes is the set of JSON types a schema node allows, from "type"
// or, without it, from the values of "const" / "enum".
func schemaTypes(m map[string]any) map[string]bool {
	set := map[string]bool{}
	if t, ok := m["type"]; ok {
		names, _ := schemaTypeNames(t)
		for _, n := range names {
			set[n] = true
		}
		return set
	}
	if c, ok := m["const"]; ok {
		set[schemaJSONType(c)] = true
	}
	if e, ok := m["enum"].([]any); ok {
		for _, c := range e {
			set[schemaJSONType(c)] = true
		}
	}
	return set
}

var schemaTimeType = reflect.TypeFor[time.Time]()

// cover checks that schema s describes Go type typ (at JSON path at).
func (v *schemaValidator) cover(typ reflect.Type, s any, at string, errs *[]string, top bool) {
	fail := func(format string, args ...any) {
		*errs = append(*errs, fmt.Sprintf("%s (Go %s): ", schemaAt(at), typ)+fmt.Sprintf(format, args...))
	}
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	m := v.deref(s)
	types := schemaTypes(m)
	want := ""
	switch {
	case typ == schemaTimeType, typ.Kind() == reflect.String:
		want = "string"
	case typ.Kind() == reflect.Bool:
		want = "boolean"
	case typ.Kind() >= reflect.Int && typ.Kind() <= reflect.Uintptr:
		want = "integer"
	case typ.Kind() == reflect.Float32 || typ.Kind() == reflect.Float64:
		want = "number"
	case typ.Kind() == reflect.Slice || typ.Kind() == reflect.Array:
		want = "array"
	case typ.Kind() == reflect.Map || typ.Kind() == reflect.Struct:
		want = "object"
	default:
		fail("no JSON type for Go kind %s", typ.Kind())
		return
	}
	if !types[want] {
		fail("schema allows %v, the Go type marshals to %s", schemaSortedKeys(types), want)
		return
	}
	for tname := range types {
		if tname != want && tname != "null" && !(want == "number" && tname == "integer") {
			fail("schema allows %q, the Go type never marshals to it", tname)
		}
	}
	if typ.Kind() >= reflect.Uint && typ.Kind() <= reflect.Uintptr {
		if min, ok := m["minimum"].(json.Number); !ok || schemaRat(min).Sign() < 0 {
			fail("unsigned: the schema must say minimum 0")
		}
	}
	switch {
	case typ == schemaTimeType:
	case typ.Kind() == reflect.Slice || typ.Kind() == reflect.Array:
		items, ok := m["items"]
		if !ok {
			fail("array without items")
			return
		}
		v.cover(typ.Elem(), items, at+"/[]", errs, false)
	case typ.Kind() == reflect.Map:
		if typ.Key().Kind() != reflect.String {
			fail("map key is not a string")
		}
		n := 0
		if ap, ok := m["additionalProperties"]; ok {
			if _, isBool := ap.(bool); !isBool {
				n++
				v.cover(typ.Elem(), ap, at+"/*", errs, false)
			}
		}
		if pats, ok := m["patternProperties"].(map[string]any); ok {
			for p, ps := range pats {
				n++
				v.cover(typ.Elem(), ps, at+"/"+p, errs, false)
			}
		}
		if props, ok := m["properties"].(map[string]any); ok {
			for k, ps := range props {
				n++
				v.cover(typ.Elem(), ps, at+"/"+k, errs, false)
			}
		}
		if n == 0 {
			fail("map without a schema for its values")
		}
	case typ.Kind() == reflect.Struct:
		v.coverStruct(typ, m, at, errs, top, fail)
	}
}

func (v *schemaValidator) coverStruct(typ reflect.Type, m map[string]any, at string, errs *[]string, top bool, fail func(string, ...any)) {
	if ap, ok := m["additionalProperties"].(bool); !ok || ap {
		fail("a struct has fixed keys: the schema must say additionalProperties: false")
	}
	props, _ := m["properties"].(map[string]any)
	required := map[string]bool{}
	if req, ok := m["required"].([]any); ok {
		for _, r := range req {
			required[r.(string)] = true
		}
	}
	seen := map[string]bool{}
	for _, f := range schemaJSONFields(typ) {
		seen[f.name] = true
		ps, ok := props[f.name]
		if !ok {
			fail("key %q is not in the schema", f.name)
			continue
		}
		if !f.omitempty && !required[f.name] {
			fail("key %q is always emitted (no omitempty) but not required", f.name)
		}
		v.cover(f.typ, ps, at+"/"+f.name, errs, false)
	}
	for k := range props {
		if seen[k] || top && schemaContains(schemaEnrichKeys, k) {
			continue
		}
		fail("the schema describes key %q that the Go type never emits", k)
	}
	for k := range required {
		if !seen[k] && !(top && schemaContains(schemaEnrichKeys, k)) {
			fail("required key %q is not a key of the Go type", k)
		}
	}
}

type schemaField struct {
	name      string
	typ       reflect.Type
	omitempty bool
}

// schemaJSONFields lists the keys encoding/json emits for a struct type, with
// embedded structs flattened (their fields promoted) as the encoder does.
func schemaJSONFields(typ reflect.Type) []schemaField {
	var out []schemaField
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			et := f.Type
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				out = append(out, schemaJSONFields(et)...)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		omit := false
		for _, o := range strings.Split(opts, ",") {
			omit = omit || o == "omitempty" || o == "omitzero"
		}
		out = append(out, schemaField{name: name, typ: f.Type, omitempty: omit})
	}
	return out
}

func schemaContains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

func schemaSortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func schemaAt(at string) string {
	if at == "" {
		return "/"
	}
	return at
}

// TestSchemaCoverCatchesDrift proves the struct walk fails on a schema that
// lacks a key, describes one too many, or types one wrongly.
func TestSchemaCoverCatchesDrift(t *testing.T) {
	type inner struct {
		N uint64 `json:"n"`
	}
	type sample struct {
		ID    string            `json:"id"`
		Opt   *int              `json:"opt,omitempty"`
		Items []inner           `json:"items,omitempty"`
		Stats map[string]uint64 `json:"stats,omitempty"`
		skip  int
	}
	_ = sample{}.skip
	const good = `{"type": "object", "additionalProperties": false, "required": ["id"], "properties": {
		"id": {"type": "string"}, "opt": {"type": "integer"},
		"items": {"type": "array", "items": {"type": "object", "additionalProperties": false, "required": ["n"], "properties": {"n": {"type": "integer", "minimum": 0}}}},
		"stats": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}}}}`
	tests := []struct {
		name, schema, wantErr string
	}{
		{"matching", good, ""},
		{"missing key", strings.Replace(good, `"opt": {"type": "integer"},`, "", 1), `key "opt" is not in the schema`},
		{"extra key", strings.Replace(good, `"opt": {"type": "integer"},`, `"opt": {"type": "integer"}, "old": {"type": "string"},`, 1), `describes key "old"`},
		{"not required", strings.Replace(good, `"required": ["id"]`, `"required": []`, 1), `key "id" is always emitted`},
		{"wrong type", strings.Replace(good, `"id": {"type": "string"}`, `"id": {"type": "integer"}`, 1), "marshals to string"},
		{"unsigned without minimum", strings.Replace(good, `{"type": "integer", "minimum": 0}}}}`, `{"type": "integer"}}}}`, 1), "minimum 0"},
		{"open struct", strings.Replace(good, `"additionalProperties": false, "required": ["id"]`, `"required": ["id"]`, 1), "additionalProperties: false"},
		{"nested missing key", strings.Replace(good, `"properties": {"n": {"type": "integer", "minimum": 0}}`, `"properties": {}`, 1), `/items/[] (Go oomparse_test.inner): key "n" is not in the schema`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := mustSchemaValidator(t, tc.schema)
			var errs []string
			v.cover(reflect.TypeFor[sample](), v.root, "", &errs, false)
			got := strings.Join(errs, "\n")
			if tc.wantErr == "" && got != "" || !strings.Contains(got, tc.wantErr) {
				t.Fatalf("want errors containing %q, got %q", tc.wantErr, got)
			}
		})
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
		inst, err := schemaDecode(m[1])
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
	// Every word written in backticks: `derived.top_tasks[].share` names
	// derived, top_tasks and share.
	named := map[string]bool{}
	split := regexp.MustCompile(`[^A-Za-z0-9_]+`)
	for _, m := range regexp.MustCompile("`[^`\n]+`").FindAll(b, -1) {
		for _, w := range split.Split(string(m), -1) {
			named[w] = true
		}
	}
	seen := map[string]bool{}
	var walk func(s any, at string)
	walk = func(s any, at string) {
		m := v.deref(s)
		if props, ok := m["properties"].(map[string]any); ok {
			for k, ps := range props {
				path := strings.TrimPrefix(at+"."+k, ".")
				if !seen[path] {
					seen[path] = true
					if !named[k] {
						t.Errorf("%s: key %q is not documented in %s", path, k, schemaDocFile)
					}
					walk(ps, path)
				}
			}
		}
		if items, ok := m["items"]; ok {
			walk(items, at+"[]")
		}
	}
	walk(v.root, "")
	if len(seen) < 100 {
		t.Fatalf("walked only %d keys of the schema", len(seen))
	}
}

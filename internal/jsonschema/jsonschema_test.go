package jsonschema

import (
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

func mustNew(t *testing.T, schema string) *Validator {
	t.Helper()
	v, err := New([]byte(schema))
	if err != nil {
		t.Fatalf("schema: %v", err)
	}
	return v
}

// TestValidator proves the validation (the library's) and this package's
// error strings: each case must be accepted or rejected, with an error
// naming the instance location and the rule, for each rule class the
// report schema uses.
func TestValidator(t *testing.T) {
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
			"labels": {"type": "object", "additionalProperties": {"type": "string"}},
			"when": {"type": "string", "format": "date-time"}
		},
		"required": ["id", "n"],
		"additionalProperties": false,
		"$defs": {
			"count": {"type": "integer", "minimum": 0},
			"item": {"type": "object", "properties": {"pid": {"type": "integer"}}, "required": ["pid"], "additionalProperties": false}
		}
	}`
	v := mustNew(t, obj)
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
		{"boolean for string or null", `{"id": "boot/1", "n": 1, "opt": false}`, "/opt: want null or string, got boolean"},
		{"root not an object", `"x"`, "/: want object, got string"},
		{"missing two required", `{}`, `/: missing required key "id"`},
		{"unknown keys, one each", `{"id": "boot/1", "n": 1, "x": 1, "y": 2}`, `/: unknown key "y"`},
		{"ref to a def", `{"id": "boot/1", "n": true}`, "/n: want integer, got boolean"},
		{"big integer via ref", `{"id": "boot/1", "n": 1e400}`, ""},
		{"date-time", `{"id": "boot/1", "n": 1, "when": "2026-11-26T23:00:00.123456789+01:00"}`, ""},
		{"not a date-time", `{"id": "boot/1", "n": 1, "when": "2026-11-26 23:00"}`, `/when: '2026-11-26 23:00' is not valid date-time`},
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
		{"escaped key in the location", `{"id": "boot/1", "n": 1, "labels": {"a/b~c": 1}}`, "/labels/a~1b~0c: want string, got integer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inst, err := Decode([]byte(tc.inst))
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

// TestValidatorOneErrorPerKey checks that required and additionalProperties
// give one error string per key, each naming the object.
func TestValidatorOneErrorPerKey(t *testing.T) {
	v := mustNew(t, `{"type": "object", "properties": {"a": {}, "b": {}}, "required": ["a", "b"], "additionalProperties": false}`)
	errs, err := v.ValidateJSON([]byte(`{"x": 1, "y": 2}`))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`/: missing required key "a"`, `/: missing required key "b"`, `/: unknown key "x"`, `/: unknown key "y"`}
	sort.Strings(errs)
	if strings.Join(errs, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got %q, want %q", errs, want)
	}
}

// TestValidatorRefusesSchemas proves that a schema using what the
// validator does not implement is refused instead of half-checked.
func TestValidatorRefusesSchemas(t *testing.T) {
	tests := []struct{ name, schema, wantErr string }{
		{"unknown keyword", `{"type": "object", "requried": ["a"]}`, `schema: /: unknown keyword "requried"`},
		{"unknown keyword deep", `{"type": "object", "properties": {"a": {"type": "array", "items": {"$ref": "#/$defs/d"}}},
			"$defs": {"d": {"type": "object", "patternProperties": {"^x": {"minimun": 0}}}}}`,
			`schema: /$defs/d/patternProperties/^x: unknown keyword "minimun"`},
		{"unknown keywords at every level", `{"titel": "t", "properties": {"a": {"x-nullable": true, "items": {"minimun": 0}}}}`,
			`schema: /: unknown keyword "titel"; /properties/a/items: unknown keyword "minimun"; /properties/a: unknown keyword "x-nullable"`},
		{"unknown type", `{"type": "int"}`, "value must be one of 'array', 'boolean'"},
		{"dangling ref", `{"$defs": {}, "$ref": "#/$defs/nope"}`, `"mem:///schema.json#/$defs/nope" not found`},
		{"remote ref", `{"$ref": "https://example.com/s.json"}`, "only references inside the schema document"},
		{"file ref", `{"$ref": "report.schema.json"}`, "only references inside the schema document"},
		{"bad pattern", `{"pattern": "("}`, "pattern"},
		{"bad pattern property", `{"patternProperties": {"(": true}}`, "patternProperties"},
		{"schema not an object", `{"items": 3}`, "at '/items': got number, want boolean or object"},
		{"not JSON", `{`, "decode JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New([]byte(tc.schema))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("want an error containing %q, got %v", tc.wantErr, err)
			}
		})
	}
}

// TestCoverCatchesDrift proves the struct walk fails on a schema that
// lacks a key, describes one too many, or types one wrongly.
func TestCoverCatchesDrift(t *testing.T) {
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
		{"nested missing key", strings.Replace(good, `"properties": {"n": {"type": "integer", "minimum": 0}}`, `"properties": {}`, 1), `/items/[] (Go jsonschema.inner): key "n" is not in the schema`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := mustNew(t, tc.schema)
			got := strings.Join(v.Cover(reflect.TypeFor[sample]()), "\n")
			if tc.wantErr == "" && got != "" || !strings.Contains(got, tc.wantErr) {
				t.Fatalf("want errors containing %q, got %q", tc.wantErr, got)
			}
		})
	}
}

type selfMarshaled struct{ A int }

func (selfMarshaled) MarshalJSON() ([]byte, error) { return []byte(`"x"`), nil }

// TestCoverEmbedded proves the walk flattens embedded structs (through a
// pointer too) as encoding/json does, honours foreign top-level keys, and
// optional top-level keys, and refuses types that marshal themselves.
func TestCoverEmbedded(t *testing.T) {
	type base struct {
		ID   string    `json:"id"`
		When time.Time `json:"when"`
	}
	type outer struct {
		*base
		Extra float64 `json:"extra,omitempty"`
	}
	type custom struct {
		S selfMarshaled `json:"s"`
	}
	const good = `{"type": "object", "additionalProperties": false, "required": ["id", "when"], "properties": {
		"id": {"type": "string"}, "when": {"type": "string", "format": "date-time"}, "extra": {"type": "number"}, "foreign": {"type": "boolean"}}}`
	tests := []struct {
		name, schema string
		typ          reflect.Type
		opts         []CoverOption
		wantErr      string
	}{
		{"flattened with foreign key", good, reflect.TypeFor[outer](), []CoverOption{ForeignKeys("foreign")}, ""},
		{"foreign key not declared", good, reflect.TypeFor[outer](), nil, `describes key "foreign"`},
		{"embedded key missing", strings.Replace(good, `"id": {"type": "string"}, `, "", 1), reflect.TypeFor[outer](), []CoverOption{ForeignKeys("foreign")}, `key "id" is not in the schema`},
		{"time is a string", strings.Replace(good, `"when": {"type": "string", "format": "date-time"}`, `"when": {"type": "object"}`, 1), reflect.TypeFor[outer](), []CoverOption{ForeignKeys("foreign")}, "marshals to string"},
		{"integer for float", strings.Replace(good, `"extra": {"type": "number"}`, `"extra": {"type": "integer"}`, 1), reflect.TypeFor[outer](), []CoverOption{ForeignKeys("foreign")}, "marshals to number"},
		{"always emitted, not required", strings.Replace(good, `"required": ["id", "when"]`, `"required": ["when"]`, 1), reflect.TypeFor[outer](), []CoverOption{ForeignKeys("foreign")}, `key "id" is always emitted`},
		{"optional at the top", strings.Replace(good, `"required": ["id", "when"]`, `"required": ["when"]`, 1), reflect.TypeFor[outer](), []CoverOption{ForeignKeys("foreign"), OptionalKeys("id")}, ""},
		{"self-marshaled", `{"type": "object", "additionalProperties": false, "required": ["s"], "properties": {"s": {"type": "object"}}}`, reflect.TypeFor[custom](), nil, "marshals itself"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := strings.Join(mustNew(t, tc.schema).Cover(tc.typ, tc.opts...), "\n")
			if tc.wantErr == "" && got != "" || !strings.Contains(got, tc.wantErr) {
				t.Fatalf("want errors containing %q, got %q", tc.wantErr, got)
			}
		})
	}
}

// TestProperties checks the property walk follows $ref and items and names
// each path once.
func TestProperties(t *testing.T) {
	v := mustNew(t, `{"type": "object", "properties": {
		"a": {"$ref": "#/$defs/pair"},
		"list": {"type": "array", "items": {"$ref": "#/$defs/pair"}},
		"map": {"type": "object", "additionalProperties": {"$ref": "#/$defs/pair"}}},
		"$defs": {"pair": {"type": "object", "properties": {"x": {"type": "integer"}, "y": {"type": "integer"}}}}}`)
	var got []string
	for _, p := range v.Properties() {
		got = append(got, p.Path+"="+p.Key+"@"+p.Schema)
	}
	want := "a=a@#/properties/a a.x=x@#/$defs/pair/properties/x a.y=y@#/$defs/pair/properties/y " +
		"list=list@#/properties/list list[].x=x@#/$defs/pair/properties/x list[].y=y@#/$defs/pair/properties/y map=map@#/properties/map"
	if strings.Join(got, " ") != want {
		t.Fatalf("got %q, want %q", strings.Join(got, " "), want)
	}
}

// TestDocumentedWords checks which words count as documented.
func TestDocumentedWords(t *testing.T) {
	got := DocumentedWords([]byte("The `derived.top_tasks[].share` key; plain share_x is not;\n`a`, `b c` and `unclosed\nnext`."))
	for _, w := range []string{"derived", "top_tasks", "share", "a", "b", "c"} {
		if !got[w] {
			t.Errorf("%q not found in %v", w, got)
		}
	}
	for _, w := range []string{"share_x", "plain", "unclosed", "next", ""} {
		if got[w] {
			t.Errorf("%q must not count as documented", w)
		}
	}
}

// TestValidateJSON checks the decoding shortcut, including its errors.
func TestValidateJSON(t *testing.T) {
	v := mustNew(t, `{"type": "integer", "minimum": 0}`)
	if errs, err := v.ValidateJSON([]byte("18446744073709551615")); err != nil || len(errs) > 0 {
		t.Fatalf("want valid, got %q, %v", errs, err)
	}
	if errs, err := v.ValidateJSON([]byte("-1")); err != nil || len(errs) != 1 {
		t.Fatalf("want one violation, got %q, %v", errs, err)
	}
	if _, err := v.ValidateJSON([]byte("1 2")); err == nil || !strings.Contains(err.Error(), "trailing data") {
		t.Fatalf("want a trailing data error, got %v", err)
	}
}

package jsonschema

import (
	"encoding"
	"encoding/json"
	"fmt"
	"math/big"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
)

var (
	timeType          = reflect.TypeFor[time.Time]()
	jsonMarshalerType = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
)

// CoverOption adjusts [Validator.Cover] for a type that shares its schema
// with other types.
type CoverOption func(*coverConfig)

type coverConfig struct {
	foreign  []string // top-level properties other types add
	optional []string // top-level keys the type always emits, others don't
}

// ForeignKeys names top-level properties that other types add beside the
// walked type's keys in the same object (e.g. enrich's keys beside
// report.Report's): they are not reported as keys the type never emits.
func ForeignKeys(keys ...string) CoverOption {
	return func(c *coverConfig) { c.foreign = append(c.foreign, keys...) }
}

// OptionalKeys names top-level keys the walked type always emits but the
// schema may not require, because other types described by the same
// schema lack them (e.g. enrichment, absent from a bare report.Report).
func OptionalKeys(keys ...string) CoverOption {
	return func(c *coverConfig) { c.optional = append(c.optional, keys...) }
}

// Cover walks Go type typ with reflect, as encoding/json marshals it, and
// returns every way the root schema fails to describe it exactly:
//
//   - every key the type can emit must be a property of the schema with a
//     matching JSON type (unsigned integers need "minimum": 0; time.Time is
//     a string), recursively through pointers, slices, maps and structs;
//   - every key emitted without omitempty/omitzero must be required;
//   - a struct's schema must say "additionalProperties": false, and every
//     property and required key of it must be a key of the struct.
//
// Embedded structs (also through pointers) are flattened into their
// parent's object, as encoding/json does. opts relax the top level only.
// A type with its own MarshalJSON or MarshalText (time.Time excepted)
// cannot be walked and is reported.
func (v *Validator) Cover(typ reflect.Type, opts ...CoverOption) []string {
	cfg := &coverConfig{}
	for _, o := range opts {
		o(cfg)
	}
	var errs []string
	v.cover(typ, v.root, "", &errs, cfg)
	return errs
}

// deref follows $ref chains and returns the schema node that holds the
// keywords, merged with the keywords beside each $ref (the outer ones win).
func (v *Validator) deref(s any) map[string]any {
	out := map[string]any{}
	for range 16 {
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

// resolve follows a reference inside the document ("#/$defs/name", any
// JSON pointer: what the report schema uses) for the walks. The library
// has resolved every reference when New compiled the document; one this
// cannot follow (an $anchor, an absolute URL) leaves Cover an empty
// schema node, which it reports as a mismatch instead of passing over.
func (v *Validator) resolve(ref string) (any, bool) {
	ptr, ok := strings.CutPrefix(ref, "#")
	if !ok {
		return nil, false
	}
	node := v.root
	if ptr == "" {
		return node, true
	}
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := node.(map[string]any)
		if !ok {
			return nil, false
		}
		if node, ok = m[tok]; !ok {
			return nil, false
		}
	}
	return node, true
}

// negative tells whether a schema's number is below zero.
func negative(n json.Number) bool {
	r, ok := new(big.Rat).SetString(n.String())
	return ok && r.Sign() < 0
}

// typeNames lists the names of a "type" keyword's value.
func typeNames(val any) []string {
	switch t := val.(type) {
	case string:
		return []string{t}
	case []any:
		var out []string
		for _, e := range t {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// schemaTypes is the set of JSON types a schema node allows, from "type"
// or, without it, from the values of "const" / "enum".
func schemaTypes(m map[string]any) map[string]bool {
	set := map[string]bool{}
	if t, ok := m["type"]; ok {
		for _, n := range typeNames(t) {
			set[n] = true
		}
		return set
	}
	if c, ok := m["const"]; ok {
		set[TypeOf(c)] = true
	}
	if e, ok := m["enum"].([]any); ok {
		for _, c := range e {
			set[TypeOf(c)] = true
		}
	}
	return set
}

// cover checks that schema s describes Go type typ (at JSON path at);
// top is not nil only at the top level.
func (v *Validator) cover(typ reflect.Type, s any, at string, errs *[]string, top *coverConfig) {
	fail := func(format string, args ...any) {
		*errs = append(*errs, fmt.Sprintf("%s (Go %s): ", pathOrRoot(at), typ)+fmt.Sprintf(format, args...))
	}
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	if typ != timeType && (typ.Implements(jsonMarshalerType) || reflect.PointerTo(typ).Implements(jsonMarshalerType) ||
		typ.Implements(textMarshalerType) || reflect.PointerTo(typ).Implements(textMarshalerType)) {
		fail("the type marshals itself (MarshalJSON/MarshalText): its keys cannot be checked")
		return
	}
	m := v.deref(s)
	types := schemaTypes(m)
	want := ""
	switch {
	case typ == timeType, typ.Kind() == reflect.String:
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
		fail("schema allows %v, the Go type marshals to %s", sortedKeys(types), want)
		return
	}
	for tname := range types {
		if tname != want && tname != "null" && !(want == "number" && tname == "integer") {
			fail("schema allows %q, the Go type never marshals to it", tname)
		}
	}
	if typ.Kind() >= reflect.Uint && typ.Kind() <= reflect.Uintptr {
		if min, ok := m["minimum"].(json.Number); !ok || negative(min) {
			fail("unsigned: the schema must say minimum 0")
		}
	}
	switch {
	case typ == timeType:
	case typ.Kind() == reflect.Slice || typ.Kind() == reflect.Array:
		items, ok := m["items"]
		if !ok {
			fail("array without items")
			return
		}
		v.cover(typ.Elem(), items, at+"/[]", errs, nil)
	case typ.Kind() == reflect.Map:
		if typ.Key().Kind() != reflect.String {
			fail("map key is not a string")
		}
		n := 0
		if ap, ok := m["additionalProperties"]; ok {
			if _, isBool := ap.(bool); !isBool {
				n++
				v.cover(typ.Elem(), ap, at+"/*", errs, nil)
			}
		}
		if pats, ok := m["patternProperties"].(map[string]any); ok {
			for p, ps := range pats {
				n++
				v.cover(typ.Elem(), ps, at+"/"+p, errs, nil)
			}
		}
		if props, ok := m["properties"].(map[string]any); ok {
			for k, ps := range props {
				n++
				v.cover(typ.Elem(), ps, at+"/"+k, errs, nil)
			}
		}
		if n == 0 {
			fail("map without a schema for its values")
		}
	case typ.Kind() == reflect.Struct:
		v.coverStruct(typ, m, at, errs, top, fail)
	}
}

func (v *Validator) coverStruct(typ reflect.Type, m map[string]any, at string, errs *[]string, top *coverConfig, fail func(string, ...any)) {
	if top == nil {
		top = &coverConfig{}
	}
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
	for _, f := range jsonFields(typ) {
		if seen[f.name] {
			fail("key %q comes from two fields; encoding/json emits at most one of them", f.name)
			continue
		}
		seen[f.name] = true
		ps, ok := props[f.name]
		if !ok {
			fail("key %q is not in the schema", f.name)
			continue
		}
		if !f.omitempty && !required[f.name] && !slices.Contains(top.optional, f.name) {
			fail("key %q is always emitted (no omitempty) but not required", f.name)
		}
		v.cover(f.typ, ps, at+"/"+f.name, errs, nil)
	}
	for _, k := range sortedKeys(props) {
		if !seen[k] && !slices.Contains(top.foreign, k) {
			fail("the schema describes key %q that the Go type never emits", k)
		}
	}
	for _, k := range sortedKeys(required) {
		if !seen[k] && !slices.Contains(top.foreign, k) {
			fail("required key %q is not a key of the Go type", k)
		}
	}
}

type jsonField struct {
	name      string
	typ       reflect.Type
	omitempty bool
}

// jsonFields lists the keys encoding/json emits for a struct type, with
// embedded structs flattened (their fields promoted) as the encoder does.
func jsonFields(typ reflect.Type) []jsonField {
	var out []jsonField
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
				out = append(out, jsonFields(et)...)
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
		out = append(out, jsonField{name: name, typ: f.Type, omitempty: omit})
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func pathOrRoot(at string) string {
	if at == "" {
		return "/"
	}
	return at
}

// Property is one property the schema describes, reached from the root.
type Property struct {
	// Path is the dotted path from the root, "[]" marking array items:
	// "derived.top_tasks[].share".
	Path string
	// Key is the property's own name: "share".
	Key string
	// Schema is the JSON pointer of the property's schema:
	// "#/$defs/top_task/properties/share". Properties reached through the
	// same $ref at several paths share it.
	Schema string
}

// Properties lists every property the schema describes, following $refs,
// "properties" and "items" (not patternProperties or
// additionalProperties), each path once, sorted by path.
func (v *Validator) Properties() []Property {
	seen := map[string]bool{}
	var out []Property
	var walk func(s any, ptr, at string, depth int)
	walk = func(s any, ptr, at string, depth int) {
		if depth > 32 {
			return
		}
		m, ptr := v.holder(s, ptr, "properties")
		if props, ok := m["properties"].(map[string]any); ok {
			for _, k := range sortedKeys(props) {
				path := strings.TrimPrefix(at+"."+k, ".")
				if !seen[path] {
					seen[path] = true
					sub := ptr + "/properties/" + escapePointer(k)
					out = append(out, Property{Path: path, Key: k, Schema: sub})
					walk(props[k], sub, path, depth+1)
				}
			}
		}
		if m, ptr := v.holder(s, ptr, "items"); m["items"] != nil {
			walk(m["items"], ptr+"/items", at+"[]", depth+1)
		}
	}
	walk(v.root, "#", "", 0)
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// holder follows the $ref chain from s (at JSON pointer ptr) to the first
// node that has keyword kw, as deref merges them, and returns it with its
// pointer; the last node of the chain when none has it.
func (v *Validator) holder(s any, ptr, kw string) (map[string]any, string) {
	for range 16 {
		m, ok := s.(map[string]any)
		if !ok {
			return nil, ptr
		}
		if _, ok := m[kw]; ok {
			return m, ptr
		}
		ref, ok := m["$ref"].(string)
		if !ok {
			return m, ptr
		}
		s, _ = v.resolve(ref)
		ptr = ref
	}
	return nil, ptr
}

func escapePointer(k string) string {
	return strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1")
}

var (
	backticked = regexp.MustCompile("`[^`\n]+`")
	nonWord    = regexp.MustCompile(`[^A-Za-z0-9_]+`)
)

// DocumentedWords returns every word written in backticks in a Markdown
// text: `derived.top_tasks[].share` names derived, top_tasks and share.
// A property is documented when its Key is among them.
func DocumentedWords(markdown []byte) map[string]bool {
	named := map[string]bool{}
	for _, m := range backticked.FindAll(markdown, -1) {
		for _, w := range nonWord.Split(string(m), -1) {
			if w != "" {
				named[w] = true
			}
		}
	}
	return named
}

// Package jsonschema validates JSON documents against the subset of JSON
// Schema (draft 2020-12) that docs/report.schema.json uses, and checks that
// a schema describes a Go type exactly (see [Validator.Cover]), so that the
// report schema cannot drift from the code that marshals the reports.
//
// The validator implements the keywords $defs, $ref (local JSON pointers
// only), type, properties, required, additionalProperties,
// patternProperties, items, enum, const, minimum and pattern, ignores the
// annotations ($schema, $id, $comment, title, description, format,
// examples, default, deprecated) and refuses a schema that uses any other
// keyword, so that no constraint is silently ignored. Numbers are compared
// exactly (math/big), so 64-bit integers beyond 2^53 validate correctly.
//
// It exists for tests (the report's schema tests in packages oomparse and
// enrich) and carries no state besides the parsed schema.
package jsonschema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"regexp"
	"sort"
	"strings"
)

// Validator validates JSON instances (decoded with [Decode]) against one
// schema document. It is safe for concurrent use once created.
type Validator struct {
	root any
	re   map[string]*regexp.Regexp // every pattern of the schema, compiled by New
}

// annotations carry no constraint; the validator ignores them.
var annotations = map[string]bool{
	"$schema": true, "$id": true, "$comment": true, "title": true, "description": true,
	"format": true, "examples": true, "default": true, "deprecated": true,
}

// assertions are the keywords the validator implements.
var assertions = map[string]bool{
	"$defs": true, "$ref": true, "type": true, "properties": true, "required": true,
	"additionalProperties": true, "patternProperties": true, "items": true,
	"enum": true, "const": true, "minimum": true, "pattern": true,
}

var jsonTypes = map[string]bool{"null": true, "boolean": true, "object": true, "array": true, "number": true, "string": true, "integer": true}

// Decode decodes one JSON value keeping numbers exact (as json.Number), as
// the validator needs. Trailing data after the value is an error.
func Decode(b []byte) (any, error) {
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

// Load reads the schema document at path and parses it with [New].
func Load(path string) (*Validator, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("jsonschema: %w", err)
	}
	v, err := New(b)
	if err != nil {
		return nil, fmt.Errorf("jsonschema: %s: %w", path, err)
	}
	return v, nil
}

// New parses a schema document and checks that it only uses supported
// keywords, that its patterns compile and that its $refs resolve.
func New(doc []byte) (*Validator, error) {
	root, err := Decode(doc)
	if err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	v := &Validator{root: root, re: map[string]*regexp.Regexp{}}
	if err := v.check(root, "#"); err != nil {
		return nil, err
	}
	return v, nil
}

// check verifies one schema node and its subschemas.
func (v *Validator) check(s any, at string) error {
	if _, ok := s.(bool); ok {
		return nil
	}
	m, ok := s.(map[string]any)
	if !ok {
		return fmt.Errorf("schema %s: a schema must be an object or a boolean, got %T", at, s)
	}
	for k, val := range m {
		switch {
		case annotations[k]:
		case !assertions[k]:
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
			names, err := typeNames(val)
			if err != nil {
				return fmt.Errorf("schema %s/type: %w", at, err)
			}
			for _, n := range names {
				if !jsonTypes[n] {
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

func typeNames(val any) ([]string, error) {
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
func (v *Validator) resolve(ref string) (any, error) {
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

// Validate returns every violation of the root schema by inst (a value
// decoded by [Decode]), each prefixed with its JSON pointer in inst; none
// means valid.
func (v *Validator) Validate(inst any) []string {
	var errs []string
	v.validate(v.root, inst, "", &errs, 0)
	return errs
}

// ValidateJSON decodes b with [Decode] and validates it.
func (v *Validator) ValidateJSON(b []byte) ([]string, error) {
	inst, err := Decode(b)
	if err != nil {
		return nil, err
	}
	return v.Validate(inst), nil
}

func (v *Validator) validate(s, inst any, at string, errs *[]string, depth int) {
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
			names, _ := typeNames(t)
			if !hasType(names, inst) {
				fail("want %s, got %s", strings.Join(names, " or "), TypeOf(inst))
				return
			}
		}
		if c, ok := s["const"]; ok && !equal(c, inst) {
			fail("want %s, got %s", show(c), show(inst))
		}
		if e, ok := s["enum"].([]any); ok {
			found := false
			for _, c := range e {
				found = found || equal(c, inst)
			}
			if !found {
				fail("%s is not one of %s", show(inst), show(e))
			}
		}
		if n, ok := inst.(json.Number); ok {
			if min, ok := s["minimum"].(json.Number); ok && rat(n).Cmp(rat(min)) < 0 {
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

func (v *Validator) validateObject(s, obj map[string]any, at string, errs *[]string, depth int, fail func(string, ...any)) {
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

func hasType(names []string, inst any) bool {
	got := TypeOf(inst)
	for _, n := range names {
		if n == got || n == "number" && got == "integer" {
			return true
		}
	}
	return false
}

// TypeOf is the JSON Schema type of a value decoded by [Decode]: null,
// boolean, string, array, object, integer (an integral number) or number.
func TypeOf(inst any) string {
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
		if rat(x).IsInt() {
			return "integer"
		}
		return "number"
	}
	return fmt.Sprintf("Go %T", inst)
}

func rat(n json.Number) *big.Rat {
	r, ok := new(big.Rat).SetString(n.String())
	if !ok {
		return new(big.Rat)
	}
	return r
}

// equal compares decoded JSON values; numbers compare by value.
func equal(a, b any) bool {
	an, aok := a.(json.Number)
	bn, bok := b.(json.Number)
	if aok || bok {
		return aok && bok && rat(an).Cmp(rat(bn)) == 0
	}
	switch x := a.(type) {
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equal(x[i], y[i]) {
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
			if !ok || !equal(xv, yv) {
				return false
			}
		}
		return true
	}
	return a == b
}

func show(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	if len(b) > 80 {
		return string(b[:80]) + "..."
	}
	return string(b)
}

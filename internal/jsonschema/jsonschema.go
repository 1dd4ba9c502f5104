// Package jsonschema validates JSON documents against a JSON Schema
// (draft 2020-12) with github.com/santhosh-tekuri/jsonschema/v6, and checks
// that a schema describes a Go type exactly (see [Validator.Cover]), so
// that the report schema (docs/report.schema.json) cannot drift from the
// code that marshals the reports.
//
// What this package adds to the library:
//
//   - strict schemas: a schema whose objects use a keyword that draft
//     2020-12 does not define (a typo such as "requried") is refused, since
//     the library would silently ignore it and its constraint with it;
//   - references stay inside the document: nothing is loaded from files or
//     the network;
//   - "format" is asserted (date-time values must be RFC 3339);
//   - one error string per violation, prefixed with the instance's JSON
//     pointer, in the wording the schema tests of packages oomparse and
//     enrich match on;
//   - the drift walk [Validator.Cover] and the property list
//     [Validator.Properties], over the decoded schema document.
//
// It exists for tests (the report's schema tests in packages oomparse and
// enrich) and carries no state besides the compiled schema.
package jsonschema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	schemalib "github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// Validator validates JSON instances (decoded with [Decode]) against one
// schema document. It is safe for concurrent use once created.
type Validator struct {
	root any               // the decoded document, walked by Cover and Properties
	sch  *schemalib.Schema // the document compiled by the library
}

// schemaURL is where New files the document for the library; the
// document's own $id, if any, takes over as the base of its references.
// It is hierarchical so that a relative reference ("other.json") resolves
// to another document, which noLoader refuses; against an opaque URL (a
// urn) it would resolve to the document itself.
const schemaURL = "mem:///schema.json"

// strictMetaURL names strictMeta for the library.
const strictMetaURL = "urn:oomscope:jsonschema:strict-meta"

// strictMeta is the draft 2020-12 meta-schema with unevaluatedProperties
// false. Its $dynamicAnchor "meta" makes the 2020-12 meta-schema apply it
// (through "$dynamicRef": "#meta") to every subschema too, so that a
// keyword which no 2020-12 vocabulary evaluates is an error anywhere in
// the document.
const strictMeta = `{
	"$schema": "https://json-schema.org/draft/2020-12/schema",
	"$id": "` + strictMetaURL + `",
	"$dynamicAnchor": "meta",
	"$ref": "https://json-schema.org/draft/2020-12/schema",
	"unevaluatedProperties": false
}`

var compileStrictMeta = sync.OnceValues(func() (*schemalib.Schema, error) {
	doc, err := Decode([]byte(strictMeta))
	if err != nil {
		return nil, err
	}
	c := schemalib.NewCompiler()
	if err := c.AddResource(strictMetaURL, doc); err != nil {
		return nil, err
	}
	return c.Compile(strictMetaURL)
})

// noLoader refuses every reference out of the document: a schema test
// must not depend on files beside it or on the network.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("$ref to %s: only references inside the schema document are supported", url)
}

// Decode decodes one JSON value keeping numbers exact (as json.Number), so
// that 64-bit integers beyond 2^53 validate correctly. Trailing data after
// the value is an error.
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

// Load reads the schema document at path and compiles it with [New].
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

// New compiles a schema document (draft 2020-12 unless its $schema says
// otherwise). It refuses a document that is not a valid schema, uses a
// keyword draft 2020-12 does not define, or refers outside itself.
func New(doc []byte) (*Validator, error) {
	root, err := Decode(doc)
	if err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	c := schemalib.NewCompiler()
	c.DefaultDraft(schemalib.Draft2020)
	c.AssertFormat()
	c.UseLoader(noLoader{})
	if err := c.AddResource(schemaURL, root); err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	sch, err := c.Compile(schemaURL) // checks the document against its meta-schema
	if err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	meta, err := compileStrictMeta()
	if err != nil {
		return nil, fmt.Errorf("strict meta-schema: %w", err)
	}
	if err := meta.Validate(root); err != nil {
		cp, _ := Decode(doc) // a copy for unknownKeywords to edit; it decoded above
		return nil, fmt.Errorf("schema: %s", strings.Join(unknownKeywords(meta, cp), "; "))
	}
	return &Validator{root: root, sch: sch}, nil
}

// unknownKeywords lists the keywords of doc (a decoded copy of the
// document, which it edits) that no draft 2020-12 vocabulary evaluates,
// as the strict meta-schema finds them: each is an unevaluated property
// (a false schema). An object holding one fails, and a failed object's
// annotations are dropped, which leaves every keyword of the object above
// it unevaluated too; so each round takes only the deepest objects'
// errors, deletes those keywords and validates again.
func unknownKeywords(meta *schemalib.Schema, doc any) []string {
	var out []string
	for range 64 { // deeper than any schema; each round removes a level
		var verr *schemalib.ValidationError
		if err := meta.Validate(doc); !errors.As(err, &verr) {
			if err != nil {
				out = append(out, err.Error())
			}
			break
		}
		all := leaves(verr)
		n := len(out)
		for _, e := range all {
			loc := e.InstanceLocation
			if _, ok := e.ErrorKind.(*kind.FalseSchema); !ok || len(loc) == 0 {
				continue
			}
			obj := loc[:len(loc)-1]
			deeper := false
			for _, o := range all {
				deeper = deeper || len(o.InstanceLocation) > len(loc) && slices.Equal(o.InstanceLocation[:len(obj)], obj)
			}
			if !deeper {
				out = append(out, fmt.Sprintf("%s: unknown keyword %q", pointer(obj), loc[len(loc)-1]))
				if m, ok := valueAt(doc, obj).(map[string]any); ok {
					delete(m, loc[len(loc)-1])
				}
			}
		}
		if len(out) == n { // not an unknown keyword: say what the library says
			out = append(out, verr.Error())
			break
		}
	}
	sort.Strings(out)
	return out
}

// Validate returns every violation of the schema by inst (a value decoded
// by [Decode]), each prefixed with its JSON pointer in inst ("/" for the
// root), sorted (the library's order follows map iteration); none means
// valid.
func (v *Validator) Validate(inst any) []string {
	err := v.sch.Validate(inst)
	if err == nil {
		return nil
	}
	var verr *schemalib.ValidationError
	if !errors.As(err, &verr) {
		return []string{"/: " + err.Error()}
	}
	var out []string
	for _, e := range leaves(verr) {
		for _, msg := range messages(e.ErrorKind, valueAt(inst, e.InstanceLocation)) {
			out = append(out, pointer(e.InstanceLocation)+": "+msg)
		}
	}
	sort.Strings(out)
	return out
}

// ValidateJSON decodes b with [Decode] and validates it.
func (v *Validator) ValidateJSON(b []byte) ([]string, error) {
	inst, err := Decode(b)
	if err != nil {
		return nil, err
	}
	return v.Validate(inst), nil
}

// leaves flattens the library's error tree to the errors that say what is
// wrong: the root, groups, $refs and allOf only carry their causes. Other
// combinators (anyOf, oneOf, not) are kept whole: their branches' errors
// alone would read as if each branch were required.
func leaves(e *schemalib.ValidationError) []*schemalib.ValidationError {
	switch e.ErrorKind.(type) {
	case *kind.Schema, *kind.Group, *kind.Reference, *kind.AllOf:
		if len(e.Causes) > 0 {
			var out []*schemalib.ValidationError
			for _, c := range e.Causes {
				out = append(out, leaves(c)...)
			}
			return out
		}
	}
	return []*schemalib.ValidationError{e}
}

var printer = message.NewPrinter(language.English)

// messages words the rule classes the report's schema tests match on (and
// that the package has always worded so); every other rule keeps the
// library's own message. Required and additionalProperties give one
// message per key.
func messages(k schemalib.ErrorKind, value any) []string {
	switch k := k.(type) {
	case *kind.Type:
		// The library calls every number a number; the value tells an
		// integer ("want string, got integer").
		return []string{fmt.Sprintf("want %s, got %s", strings.Join(k.Want, " or "), TypeOf(value))}
	case *kind.Required:
		out := make([]string, len(k.Missing))
		for i, key := range k.Missing {
			out[i] = fmt.Sprintf("missing required key %q", key)
		}
		return out
	case *kind.AdditionalProperties:
		out := make([]string, len(k.Properties))
		for i, key := range k.Properties {
			out[i] = fmt.Sprintf("unknown key %q", key)
		}
		return out
	case *kind.Const:
		return []string{fmt.Sprintf("want %s, got %s", show(k.Want), show(k.Got))}
	case *kind.Enum:
		return []string{fmt.Sprintf("%s is not one of %s", show(k.Got), show(k.Want))}
	case *kind.Minimum:
		return []string{fmt.Sprintf("%s is less than the minimum %s", decimal(k.Got), decimal(k.Want))}
	case *kind.Pattern:
		return []string{fmt.Sprintf("%q does not match %q", k.Got, k.Want)}
	case *kind.FalseSchema:
		return []string{"no value is allowed here"}
	}
	return []string{k.LocalizedString(printer)}
}

// valueAt is the value at a location of inst (nil if there is none).
func valueAt(inst any, tokens []string) any {
	for _, t := range tokens {
		switch x := inst.(type) {
		case map[string]any:
			inst = x[t]
		case []any:
			i, err := strconv.Atoi(t)
			if err != nil || i < 0 || i >= len(x) {
				return nil
			}
			inst = x[i]
		default:
			return nil
		}
	}
	return inst
}

// pointer is the JSON pointer of a location, "/" for the root.
func pointer(tokens []string) string {
	if len(tokens) == 0 {
		return "/"
	}
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(escapePointer(t))
	}
	return b.String()
}

// decimal writes r as the decimal it was decoded from (a JSON number has
// a finite decimal expansion), instead of big.Rat's "-1/2".
func decimal(r *big.Rat) string {
	if r.IsInt() {
		return r.RatString()
	}
	for prec := 1; prec <= 64; prec++ {
		s := r.FloatString(prec)
		if back, ok := new(big.Rat).SetString(s); ok && back.Cmp(r) == 0 {
			return s
		}
	}
	return r.RatString()
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
		if r, ok := new(big.Rat).SetString(x.String()); ok && r.IsInt() {
			return "integer"
		}
		return "number"
	}
	return fmt.Sprintf("Go %T", inst)
}

// show writes a decoded JSON value as JSON, cut to 80 bytes.
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

package manifests

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
)

// Strict member names. encoding/json, which decodes image-spec's types,
// binds a member to a struct field whatever its case ("MediaType",
// "LAYERS", even "ſize" with a long s all fill the field), and lets the last
// of repeated members win. Other parsers (JavaScript, Python, Rust's serde)
// match names exactly, and some keep the first repeat: the same bytes would
// then mean one manifest to the registry and another to a client. Parse
// therefore refuses, after decoding:
//
//   - in an object that decodes into a struct (the manifest, a descriptor,
//     a platform), a member whose name matches a field only by case
//     folding;
//   - in any object (annotations too), a member name that appears twice
//     (compared after unescaping).
//
// Unknown members stay allowed, as the image-spec requires. The field names
// come from the decoded types' json tags, so the check follows image-spec's
// structs as they are.

// shape is what encoding/json binds in one JSON value: for a struct, its
// fields by member name with each value's shape; nil for everything else
// (maps, whose keys are data, and scalars).
type shape map[string]shape

// shapeOf describes t, looking through pointers and slices to their
// elements.
func shapeOf(t reflect.Type) shape {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	s := shape{}
	addFields(s, t)
	return s
}

// addFields adds t's fields to s, and those of untagged embedded structs,
// which encoding/json promotes.
func addFields(s shape, t reflect.Type) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct:
			addFields(s, f.Type)
		case !f.IsExported() || name == "-":
		case name == "":
			s[f.Name] = shapeOf(f.Type)
		default:
			s[name] = shapeOf(f.Type)
		}
	}
}

// fold returns the field name k matches only by case folding, or "".
func (s shape) fold(k string) string {
	for name := range s {
		if name != k && strings.EqualFold(name, k) {
			return name
		}
	}
	return ""
}

// checkKeys applies the rules above to body, which has decoded into v
// without error: body is therefore one valid JSON value.
func checkKeys(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	return checkValue(dec, shapeOf(reflect.TypeOf(v)))
}

// checkValue reads one value from dec and checks its members against s.
// Nesting is bounded: encoding/json has already refused documents nested
// more than 10,000 deep.
func checkValue(dec *json.Decoder, s shape) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return err
			}
			k, _ := kt.(string)
			if seen[k] {
				return &keyError{msg: fmt.Sprintf("member %q appears more than once", k)}
			}
			seen[k] = true
			if s != nil {
				if _, ok := s[k]; !ok {
					if name := s.fold(k); name != "" {
						return &keyError{msg: fmt.Sprintf("member %q must be spelled %q", k, name)}
					}
				}
			}
			if err := checkValue(dec, s[k]); err != nil {
				return within(err, "."+k)
			}
		}
	case json.Delim('['):
		for i := 0; dec.More(); i++ {
			if err := checkValue(dec, s); err != nil {
				return within(err, fmt.Sprintf("[%d]", i))
			}
		}
	default:
		return nil // a scalar
	}
	_, err = dec.Token() // the closing delimiter
	return err
}

// keyError is a refused member name and the path of the object that holds
// it, built while the walk unwinds ("layers[0].annotations").
type keyError struct{ path, msg string }

func (e *keyError) Error() string {
	if e.path == "" {
		return e.msg
	}
	return strings.TrimPrefix(e.path, ".") + ": " + e.msg
}

// within prefixes the path of a keyError with seg.
func within(err error, seg string) error {
	var ke *keyError
	if errors.As(err, &ke) {
		ke.path = seg + ke.path
	}
	return err
}

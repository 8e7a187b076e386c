package manifests

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"unicode/utf8"
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
func (s shape) fold(k []byte) string {
	for name := range s {
		if name != string(k) && bytes.EqualFold([]byte(name), k) {
			return name
		}
	}
	return ""
}

// checkKeys applies the rules above to body, which has decoded into v
// without error: body is therefore one valid JSON value, possibly with
// whitespace around it, which lets the scanner below skip validation.
// (json.Decoder.Token would do, at four times the cost of the decode.)
func checkKeys(body []byte, v any) error {
	sc := keyScanner{b: body}
	return sc.value(shapeOf(reflect.TypeOf(v)))
}

// keyScanner walks a valid JSON document.
type keyScanner struct {
	b []byte
	i int
}

func (sc *keyScanner) space() {
	for sc.i < len(sc.b) && (sc.b[sc.i] == ' ' || sc.b[sc.i] == '\t' || sc.b[sc.i] == '\n' || sc.b[sc.i] == '\r') {
		sc.i++
	}
}

// value checks the value at sc.i against s and moves past it.
func (sc *keyScanner) value(s shape) error {
	sc.space()
	switch sc.b[sc.i] {
	case '{':
		return sc.object(s)
	case '[':
		sc.i++
		sc.space()
		for n := 0; sc.b[sc.i] != ']'; n++ {
			if err := sc.value(s); err != nil {
				return within(err, fmt.Sprintf("[%d]", n))
			}
			sc.space()
			if sc.b[sc.i] == ',' {
				sc.i++
			}
			sc.space()
		}
		sc.i++
	case '"':
		sc.str()
	default: // a number, true, false or null
		for sc.i < len(sc.b) && !strings.ContainsRune(",]} \t\n\r", rune(sc.b[sc.i])) {
			sc.i++
		}
	}
	return nil
}

// object checks the object at sc.i: its member names against s, none
// repeated, and each member's value against its field's shape.
func (sc *keyScanner) object(s shape) error {
	sc.i++
	var buf [16][]byte
	few := buf[:0]           // names so far, while there are few
	var many map[string]bool // then in a map
	sc.space()
	for sc.b[sc.i] != '}' {
		k := sc.key()
		switch {
		case many != nil && many[string(k)], many == nil && slices.ContainsFunc(few, func(f []byte) bool { return bytes.Equal(f, k) }):
			return &keyError{msg: fmt.Sprintf("member %q appears more than once", k)}
		case many != nil:
			many[string(k)] = true
		case len(few) < 16:
			few = append(few, k)
		default:
			many = map[string]bool{string(k): true}
			for _, f := range few {
				many[string(f)] = true
			}
		}
		var field shape
		if s != nil {
			f, ok := s[string(k)]
			if !ok {
				if name := s.fold(k); name != "" {
					return &keyError{msg: fmt.Sprintf("member %q must be spelled %q", k, name)}
				}
			}
			field = f
		}
		sc.space()
		sc.i++ // the colon
		if err := sc.value(field); err != nil {
			return within(err, "."+string(k))
		}
		sc.space()
		if sc.b[sc.i] == ',' {
			sc.i++
		}
		sc.space()
	}
	sc.i++
	return nil
}

// str moves past the string at sc.i and returns it with its quotes, and
// whether it has escapes.
func (sc *keyScanner) str() (raw []byte, escaped bool) {
	start := sc.i
	sc.i++
	for sc.b[sc.i] != '"' {
		if sc.b[sc.i] == '\\' {
			escaped = true
			sc.i++
		}
		sc.i++
	}
	sc.i++
	return sc.b[start:sc.i], escaped
}

// key returns the member name at sc.i as encoding/json reads it: escapes
// resolved, invalid UTF-8 replaced by U+FFFD.
func (sc *keyScanner) key() []byte {
	raw, escaped := sc.str()
	if !escaped && utf8.Valid(raw) {
		return raw[1 : len(raw)-1]
	}
	var k string
	json.Unmarshal(raw, &k) // valid JSON: cannot fail
	return []byte(k)
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

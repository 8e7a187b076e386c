package registry_test

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/artifact-store/artifact-store/eventlog"
	"github.com/artifact-store/artifact-store/manifests"
)

// eventPayloads are the payload structs of the event types. A type
// without one here fails TestOpenAPIEventPayloads: add it.
var eventPayloads = map[eventlog.Type]any{
	eventlog.TypeBlobCommitted:    eventlog.BlobCommitted{},
	eventlog.TypeBlobLinked:       eventlog.BlobLinked{},
	eventlog.TypeBlobUnlinked:     eventlog.BlobUnlinked{},
	eventlog.TypeBlobTiered:       eventlog.BlobTiered{},
	eventlog.TypeManifestPut:      eventlog.ManifestPut{},
	eventlog.TypeManifestDeleted:  eventlog.ManifestDeleted{},
	eventlog.TypeManifestPulled:   eventlog.ManifestPulled{},
	eventlog.TypeTagSet:           eventlog.TagSet{},
	eventlog.TypeTagDeleted:       eventlog.TagDeleted{},
	eventlog.TypeUploadStarted:    eventlog.UploadStarted{},
	eventlog.TypeUploadFinished:   eventlog.UploadFinished{},
	eventlog.TypeUploadCancelled:  eventlog.UploadCancelled{},
	eventlog.TypeVersionPublished: eventlog.VersionPublished{},
	eventlog.TypeVersionDeleted:   eventlog.VersionDeleted{},
	eventlog.TypeAPIKeyCreated:    eventlog.APIKeyCreated{},
	eventlog.TypeAPIKeyRevoked:    eventlog.APIKeyRevoked{},
	eventlog.TypeGCCondemned:      eventlog.GCCondemned{},
	eventlog.TypeGCSwept:          eventlog.GCSwept{},
	eventlog.TypePolicySet:        eventlog.PolicySet{},
	eventlog.TypePolicyRemoved:    eventlog.PolicyRemoved{},
	eventlog.TypeTrashPurged:      eventlog.TrashPurged{},
}

// TestOpenAPIEventTypes: eventlog.Types lists every Type constant of
// package eventlog, and the document names exactly those types in the
// Event type enum, in the payload schemas chosen by type, and in the
// examples of the events API's type filter. A type added to the log
// without documenting it fails here.
func TestOpenAPIEventTypes(t *testing.T) {
	want := typeNames(eventlog.Types())
	if dup := duplicates(want); len(dup) > 0 {
		t.Errorf("eventlog.Types() lists %v more than once", dup)
	}
	want = sortedSet(want)
	if consts := typeConstants(t); !slices.Equal(want, consts) {
		t.Errorf("eventlog.Types() differs from the Type constants of package eventlog: it lacks %v and lists %v, which is no constant",
			setDiff(consts, want), setDiff(want, consts))
	}

	doc := fetchOpenAPI(t, newServer(t))
	lists := map[string][]string{}
	enum, err := resolvePointer(doc, "#/components/schemas/Event/properties/type/enum")
	if err != "" {
		t.Fatalf("Event type enum: %s", err)
	}
	lists["the Event type enum"] = stringList(t, enum)
	lists["the payload schemas by type (Event allOf if/then)"] = sortedKeys(payloadRefs(t, doc))
	params, err := resolvePointer(doc, "#/paths/~1api~1v1~1events/get/parameters")
	if err != "" {
		t.Fatalf("GET /api/v1/events parameters: %s", err)
	}
	var filter any
	for _, p := range params.([]any) {
		if pm, _ := p.(map[string]any); pm["name"] == "type" && pm["in"] == "query" {
			filter, err = resolvePointer(pm, "#/schema/items/examples")
		}
	}
	if filter == nil {
		t.Fatalf("GET /api/v1/events: no examples of the type filter: %s", err)
	}
	lists["the examples of the events API's type filter"] = stringList(t, filter)

	for _, what := range sortedKeys(lists) {
		got := lists[what]
		if dup := duplicates(got); len(dup) > 0 {
			t.Errorf("%s names %v more than once", what, dup)
		}
		got = sortedSet(got)
		if !slices.Equal(got, want) {
			missing, extra := setDiff(want, got), setDiff(got, want)
			t.Errorf("%s differs from eventlog.Types(): it lacks %v and names %v, which is no type", what, missing, extra)
		}
	}
}

// TestOpenAPIEventPayloads: each type's payload schema has exactly the
// fields its payload shows on /api/v1/events (encoded as the log stores
// it and shown as the API does), and requires exactly those shown even
// when empty. Fields of arrays of objects (manifest.pulled's pulls) are
// checked too.
func TestOpenAPIEventPayloads(t *testing.T) {
	doc := fetchOpenAPI(t, newServer(t))
	refs := payloadRefs(t, doc)
	for _, typ := range eventlog.Types() {
		p, ok := eventPayloads[typ]
		if !ok {
			t.Errorf("%s: no payload struct in eventPayloads", typ)
			continue
		}
		ref, ok := refs[string(typ)]
		if !ok {
			continue // TestOpenAPIEventTypes reports it
		}
		schema, err := resolvePointer(doc, ref)
		if err != "" {
			t.Errorf("%s: %s: %s", typ, ref, err)
			continue
		}
		full := reflect.New(reflect.TypeOf(p)).Elem()
		fillValue(full)
		compareShape(t, string(typ)+" payload", doc, schema.(map[string]any),
			shownPayload(t, typ, full.Interface()), shownPayload(t, typ, p))
	}
}

// TestOpenAPIEventFields: every field an event shows on /api/v1/events,
// and every field of its actor, is in the Event schema, which allows no
// others.
func TestOpenAPIEventFields(t *testing.T) {
	s := newServer(t)
	s.pushBlob("r", randomBytes(t, 100))
	doc := fetchOpenAPI(t, s)
	props, _ := schemaFields(t, doc, map[string]any{"$ref": "#/components/schemas/Event"})
	actor := map[string]any{}
	if a, ok := props["actor"].(map[string]any); ok {
		actor, _ = schemaFields(t, doc, a)
	}
	r := s.do("GET", "/api/v1/events", nil)
	expect(t, r, http.StatusOK)
	var page struct{ Events []map[string]any }
	if err := json.Unmarshal(r.body, &page); err != nil || len(page.Events) == 0 {
		t.Fatalf("events page %s (%v)", r.body, err)
	}
	for _, e := range page.Events {
		for _, k := range sortedKeys(e) {
			if _, ok := props[k]; !ok {
				t.Errorf("event %v shows %q, which the Event schema does not document", e["seq"], k)
			}
		}
		a, _ := e["actor"].(map[string]any)
		for _, k := range sortedKeys(a) {
			if _, ok := actor[k]; !ok {
				t.Errorf("event %v's actor shows %q, which the Event schema does not document", e["seq"], k)
			}
		}
	}
}

// shownPayload encodes p as eventlog.New does and decodes it as the
// events API shows it.
func shownPayload(t *testing.T, typ eventlog.Type, p any) map[string]any {
	t.Helper()
	j, err := manifests.CBORToJSON(eventlog.New(typ, "", p).Payload)
	if err != nil {
		t.Fatalf("%s: show payload: %v", typ, err)
	}
	var m map[string]any
	if err := json.Unmarshal(j, &m); err != nil {
		t.Fatalf("%s: payload %s is not a JSON object: %v", typ, j, err)
	}
	return m
}

// compareShape checks that schema's properties are the keys of full and
// its required fields the keys of zero (nil: not checked), then descends
// into arrays of objects.
func compareShape(t *testing.T, where string, doc, schema, full, zero map[string]any) {
	t.Helper()
	props, required := schemaFields(t, doc, schema)
	shown := sortedKeys(full)
	if got := sortedKeys(props); !slices.Equal(got, shown) {
		t.Errorf("%s: documented fields %v, shown fields %v: undocumented %v, not shown %v",
			where, got, shown, setDiff(shown, got), setDiff(got, shown))
	}
	if zero != nil {
		always := sortedKeys(zero)
		if got := sortedSet(required); !slices.Equal(got, always) {
			t.Errorf("%s: required %v, but the fields shown even when empty are %v", where, got, always)
		}
	}
	for _, k := range shown {
		items, _ := full[k].([]any)
		if len(items) == 0 {
			continue
		}
		item, ok := items[0].(map[string]any)
		ps, _ := props[k].(map[string]any)
		is, _ := ps["items"].(map[string]any)
		if ok && is != nil {
			compareShape(t, where+"."+k+"[]", doc, resolved(t, doc, is), item, nil)
		}
	}
}

// schemaFields collects an object schema's properties and required
// fields, including those of the schemas it combines with allOf.
func schemaFields(t *testing.T, doc, schema map[string]any) (props map[string]any, required []string) {
	t.Helper()
	schema = resolved(t, doc, schema)
	props = map[string]any{}
	if ps, ok := schema["properties"].(map[string]any); ok {
		for k, v := range ps {
			props[k] = resolved(t, doc, v.(map[string]any))
		}
	}
	if r, ok := schema["required"]; ok {
		required = stringList(t, r)
	}
	all, _ := schema["allOf"].([]any)
	for _, s := range all {
		p, r := schemaFields(t, doc, s.(map[string]any))
		for k, v := range p {
			props[k] = v
		}
		required = append(required, r...)
	}
	return props, required
}

// resolved follows schema's $ref, if it has one.
func resolved(t *testing.T, doc, schema map[string]any) map[string]any {
	t.Helper()
	ref, ok := schema["$ref"].(string)
	if !ok {
		return schema
	}
	v, err := resolvePointer(doc, ref)
	if err != "" {
		t.Fatalf("$ref %s: %s", ref, err)
	}
	return v.(map[string]any)
}

// payloadRefs maps each type the Event schema selects a payload schema
// for (allOf: if type is const, then payload is $ref) to that $ref.
func payloadRefs(t *testing.T, doc map[string]any) map[string]string {
	t.Helper()
	all, err := resolvePointer(doc, "#/components/schemas/Event/allOf")
	if err != "" {
		t.Fatalf("Event allOf: %s", err)
	}
	out := map[string]string{}
	for i, c := range all.([]any) {
		typ, err1 := resolvePointer(c, "#/if/properties/type/const")
		ref, err2 := resolvePointer(c, "#/then/properties/payload/$ref")
		if err1 != "" || err2 != "" {
			t.Errorf("Event allOf/%d is not {if type const, then payload $ref}: %s%s", i, err1, err2)
			continue
		}
		s, _ := typ.(string)
		if _, dup := out[s]; dup {
			t.Errorf("Event allOf names the payload of %q more than once", s)
		}
		out[s], _ = ref.(string)
	}
	return out
}

// typeConstants reads the values of the Type constants declared in
// package eventlog's source.
func typeConstants(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "eventlog", "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no eventlog sources (%v)", err)
	}
	var out []string
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, spec := range g.Specs {
				vs := spec.(*ast.ValueSpec)
				if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Type" {
					continue
				}
				for _, v := range vs.Values {
					if lit, ok := v.(*ast.BasicLit); ok && lit.Kind == token.STRING {
						s, _ := strconv.Unquote(lit.Value)
						out = append(out, s)
					}
				}
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("no Type constants found in package eventlog")
	}
	return sortedSet(out)
}

// fillValue sets every settable part of v to a non-empty value: slices and
// maps get one filled element, so omitempty leaves nothing out.
func fillValue(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString("x")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(1)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fillValue(s.Index(0))
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fillValue(k)
		fillValue(e)
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Struct:
		for i := range v.NumField() {
			if f := v.Field(i); f.CanSet() {
				fillValue(f)
			}
		}
	}
}

func typeNames(ts []eventlog.Type) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = string(t)
	}
	return out
}

// stringList reads a JSON array of strings.
func stringList(t *testing.T, v any) []string {
	t.Helper()
	l, ok := v.([]any)
	if !ok {
		t.Fatalf("%v is not an array", v)
	}
	out := make([]string, len(l))
	for i, e := range l {
		if out[i], ok = e.(string); !ok {
			t.Fatalf("%v: %v is not a string", v, e)
		}
	}
	return out
}

func sortedSet(ss []string) []string {
	out := slices.Clone(ss)
	slices.Sort(out)
	return slices.Compact(out)
}

func duplicates(ss []string) []string {
	seen, out := map[string]bool{}, []string{}
	for _, s := range ss {
		if seen[s] && !slices.Contains(out, s) {
			out = append(out, s)
		}
		seen[s] = true
	}
	return out
}

// setDiff lists what a has and b does not.
func setDiff(a, b []string) []string {
	var out []string
	for _, s := range a {
		if !slices.Contains(b, s) {
			out = append(out, s)
		}
	}
	return out
}

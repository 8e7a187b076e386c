package registry_test

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// openAPIMethods are the operation keys of an OpenAPI path item.
var openAPIMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// fetchOpenAPI gets the document from a running server and decodes it.
func fetchOpenAPI(t *testing.T, s *testServer) map[string]any {
	t.Helper()
	r := s.do("GET", "/api/v1/openapi.json", nil)
	expect(t, r, http.StatusOK)
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var doc map[string]any
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatalf("/api/v1/openapi.json is not JSON: %v", err)
	}
	return doc
}

// TestOpenAPIServed: the document is served, is OpenAPI 3.1.0, and can be
// revalidated.
func TestOpenAPIServed(t *testing.T) {
	s := newServer(t)
	doc := fetchOpenAPI(t, s)
	if v := doc["openapi"]; v != "3.1.0" {
		t.Fatalf(`"openapi" is %v, want "3.1.0"`, v)
	}
	r := s.do("GET", "/api/v1/openapi.json", nil)
	etag := r.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	expect(t, s.do("GET", "/api/v1/openapi.json", nil, "If-None-Match: "+etag), http.StatusNotModified)
	expect(t, s.do("GET", "/api/v1/openapi.json", nil, `If-None-Match: "sha256:other"`), http.StatusOK)
}

// openAPIPath turns a mux path template into OpenAPI form: {name:.+?}
// becomes {name}. Patterns may themselves contain braces ({n:[0-9]{2}}).
func openAPIPath(tpl string) string {
	var b strings.Builder
	for i := 0; i < len(tpl); i++ {
		if tpl[i] != '{' {
			b.WriteByte(tpl[i])
			continue
		}
		depth, j := 0, i
		for ; j < len(tpl); j++ {
			if tpl[j] == '{' {
				depth++
			} else if tpl[j] == '}' {
				if depth--; depth == 0 {
					break
				}
			}
		}
		name, _, _ := strings.Cut(tpl[i+1:j], ":")
		b.WriteString("{" + name + "}")
		i = j
	}
	return b.String()
}

func TestOpenAPIPathNormalisation(t *testing.T) {
	for in, want := range map[string]string{
		"/api/v1/repositories/{name:.+?}/-/versions/{version}/files/{path:.+}": "/api/v1/repositories/{name}/-/versions/{version}/files/{path}",
		"/api/v1/x/{n:[0-9]{2}}/y": "/api/v1/x/{n}/y",
		"/api/v1/events":           "/api/v1/events",
	} {
		if got := openAPIPath(in); got != want {
			t.Errorf("openAPIPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestOpenAPIMatchesRoutes: every /api/v1 route and method the router
// serves is in the document, and every path and method of the document is
// served. A route added without documenting it fails here.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	s := newServer(t)
	doc := fetchOpenAPI(t, s)
	routes, err := s.reg.Routes()
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]map[string]bool{} // OpenAPI path -> lower-case method
	for _, rt := range routes {
		if !strings.HasPrefix(rt.Path, "/api/v1/") {
			continue
		}
		p := openAPIPath(rt.Path)
		if served[p] == nil {
			served[p] = map[string]bool{}
		}
		for _, m := range rt.Methods {
			served[p][strings.ToLower(m)] = true
		}
	}
	if len(served) == 0 {
		t.Fatal("the router serves no /api/v1/ routes")
	}
	paths, _ := doc["paths"].(map[string]any)
	documented := map[string]map[string]bool{}
	for p, item := range paths {
		documented[p] = map[string]bool{}
		for k := range item.(map[string]any) {
			if slices.Contains(openAPIMethods, k) {
				documented[p][k] = true
			}
		}
	}
	for _, p := range sortedKeys(served) {
		for _, m := range sortedKeys(served[p]) {
			if !documented[p][m] {
				t.Errorf("%s %s is served but not in registry/openapi.json", strings.ToUpper(m), p)
			}
		}
	}
	for _, p := range sortedKeys(documented) {
		for _, m := range sortedKeys(documented[p]) {
			if !served[p][m] {
				t.Errorf("%s %s is in registry/openapi.json but no route serves it", strings.ToUpper(m), p)
			}
		}
	}
}

// TestOpenAPIStructure checks what a JSON parse cannot: references resolve,
// path parameters are declared, operations are named once, and the error
// codes are the server's.
func TestOpenAPIStructure(t *testing.T) {
	doc := fetchOpenAPI(t, newServer(t))

	// Every $ref is a local JSON pointer to something that exists.
	walkJSON(doc, "#", func(at string, v map[string]any) {
		ref, ok := v["$ref"]
		if !ok {
			return
		}
		s, _ := ref.(string)
		if _, err := resolvePointer(doc, s); err != "" {
			t.Errorf("%s: $ref %v: %s", at, ref, err)
		}
	})

	paths, _ := doc["paths"].(map[string]any)
	opIDs := map[string]string{}
	for _, p := range sortedKeys(paths) {
		item := paths[p].(map[string]any)
		inTemplate := map[string]bool{}
		for _, part := range strings.Split(p, "/") {
			if strings.HasPrefix(part, "{") && strings.HasSuffix(part, "}") {
				inTemplate[part[1:len(part)-1]] = true
			} else if strings.ContainsAny(part, "{}") {
				t.Errorf("%s: a parameter must be a whole path segment", p)
			}
		}
		for _, m := range openAPIMethods {
			op, ok := item[m].(map[string]any)
			if !ok {
				continue
			}
			where := strings.ToUpper(m) + " " + p
			id, _ := op["operationId"].(string)
			if id == "" {
				t.Errorf("%s: no operationId", where)
			} else if prev, dup := opIDs[id]; dup {
				t.Errorf("%s: operationId %q is also %s", where, id, prev)
			}
			opIDs[id] = where
			if r, _ := op["responses"].(map[string]any); len(r) == 0 {
				t.Errorf("%s: no responses", where)
			}
			// Path-level parameters apply unless the operation overrides them.
			params := map[string]map[string]any{}
			for _, list := range []any{item["parameters"], op["parameters"]} {
				l, _ := list.([]any)
				for _, raw := range l {
					pm, _ := raw.(map[string]any)
					if ref, ok := pm["$ref"].(string); ok {
						res, _ := resolvePointer(doc, ref)
						pm, _ = res.(map[string]any)
					}
					name, _ := pm["name"].(string)
					in, _ := pm["in"].(string)
					if name == "" || in == "" {
						t.Errorf("%s: a parameter without name or in: %v", where, raw)
						continue
					}
					params[in+":"+name] = pm
				}
			}
			for name := range inTemplate {
				pm, ok := params["path:"+name]
				if !ok {
					t.Errorf("%s: path parameter {%s} is not declared in: path", where, name)
				} else if pm["required"] != true {
					t.Errorf("%s: path parameter {%s} must be required: true", where, name)
				}
			}
			for key := range params {
				if name, ok := strings.CutPrefix(key, "path:"); ok && !inTemplate[name] {
					t.Errorf("%s: declares path parameter %q that the path does not have", where, name)
				}
			}
		}
	}

	// The ErrorCode enum is exactly the Code constants of errors.go.
	var enum []string
	if ec, err := resolvePointer(doc, "#/components/schemas/ErrorCode/enum"); err != "" {
		t.Errorf("ErrorCode enum: %s", err)
	} else {
		for _, c := range ec.([]any) {
			enum = append(enum, c.(string))
		}
	}
	codes := errorCodes(t)
	sort.Strings(enum)
	if !slices.Equal(enum, codes) {
		t.Errorf("ErrorCode enum %v, want the codes of errors.go %v", enum, codes)
	}
}

// errorCodes reads the values of the Code constants in errors.go.
func errorCodes(t *testing.T) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "errors.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok || len(vs.Values) != 1 {
			return true
		}
		if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Code" {
			return true
		}
		if lit, ok := vs.Values[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
			s, _ := strconv.Unquote(lit.Value)
			out = append(out, s)
		}
		return true
	})
	if len(out) == 0 {
		t.Fatal("no Code constants found in errors.go")
	}
	sort.Strings(out)
	return out
}

// walkJSON calls fn on every object in v, with its JSON pointer.
func walkJSON(v any, at string, fn func(at string, obj map[string]any)) {
	switch v := v.(type) {
	case map[string]any:
		fn(at, v)
		for k, c := range v {
			walkJSON(c, at+"/"+strings.NewReplacer("~", "~0", "/", "~1").Replace(k), fn)
		}
	case []any:
		for i, c := range v {
			walkJSON(c, at+"/"+strconv.Itoa(i), fn)
		}
	}
}

// resolvePointer resolves a local reference ("#/a/b") in doc; err says why
// it does not resolve.
func resolvePointer(doc any, ref string) (v any, err string) {
	rest, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, "not a local reference (#/...)"
	}
	v = doc
	for _, tok := range strings.Split(rest, "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		switch c := v.(type) {
		case map[string]any:
			if v, ok = c[tok]; !ok {
				return nil, "no " + strconv.Quote(tok)
			}
		case []any:
			i, convErr := strconv.Atoi(tok)
			if convErr != nil || i < 0 || i >= len(c) {
				return nil, "no index " + tok
			}
			v = c[i]
		default:
			return nil, "cannot descend into " + strconv.Quote(tok)
		}
	}
	return v, ""
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

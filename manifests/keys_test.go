package manifests

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// TestParseStrictMemberNames: a member name that encoding/json would bind
// to a field only by case folding, or a name repeated in one object, is
// refused with ErrInvalid and a message naming the member and where it is;
// unknown members and annotation keys differing in case are accepted.
func TestParseStrictMemberNames(t *testing.T) {
	index := func(platform string) string {
		return `{"schemaVersion":2,"mediaType":"` + MediaTypeImageIndex + `","manifests":[{"mediaType":"` + MediaTypeImageManifest +
			`","digest":"` + someDigest + `","size":2,"platform":` + platform + `}]}`
	}
	for _, c := range []struct {
		name, ct, body string
		want           string // "" when accepted, else a part of the message
	}{
		{"exact names", MediaTypeImageManifest, `{"schemaVersion":2,"config":` + cfg + `,"layers":[` + layer + `]}`, ""},
		{"unknown members", MediaTypeImageManifest, `{"schemaVersion":2,"config":` + cfg + `,"Foo":1,"foo":{"Foo":1,"x":[1]}}`, ""},
		{"annotation keys differing in case", MediaTypeImageManifest, `{"schemaVersion":2,"config":` + cfg + `,"annotations":{"a":"1","A":"2"}}`, ""},
		{"platform", MediaTypeImageIndex, index(`{"architecture":"amd64","os":"linux","os.version":"1","features":["sse4"]}`), ""},

		{"top-level case", MediaTypeImageManifest, `{"schemaVersion":2,"MediaType":"` + MediaTypeImageManifest + `","config":` + cfg + `}`, `"MediaType" must be spelled "mediaType"`},
		{"schemaVersion case", MediaTypeImageManifest, `{"schemaversion":2,"config":` + cfg + `}`, `"schemaversion" must be spelled "schemaVersion"`},
		{"long s folds to s", MediaTypeImageManifest, `{"schemaVersion":2,"config":{"mediaType":"a/b","digest":"` + someDigest + `","ſize":2}}`, `config: member "ſize" must be spelled "size"`},
		{"layer case", MediaTypeImageManifest, `{"schemaVersion":2,"config":` + cfg + `,"layers":[` + layer + `,{"mediaType":"a/b","Digest":"` + someDigest + `","size":2}]}`, `layers[1]: member "Digest"`},
		{"subject case", MediaTypeImageManifest, `{"schemaVersion":2,"config":` + cfg + `,"subject":{"mediaType":"a/b","digest":"` + someDigest + `","SIZE":2}}`, `subject: member "SIZE"`},
		{"platform case", MediaTypeImageIndex, index(`{"architecture":"amd64","OS":"linux"}`), `manifests[0].platform: member "OS" must be spelled "os"`},
		{"config on an index by case", MediaTypeImageIndex, `{"schemaVersion":2,"manifests":[],"Config":` + cfg + `}`, `"Config" must be spelled "config"`},
		{"repeated member", MediaTypeImageManifest, `{"schemaVersion":2,"mediaType":"` + MediaTypeImageManifest + `","config":` + cfg + `,"mediaType":"` + MediaTypeImageIndex + `"}`, `member "mediaType" appears more than once`},
		{"repeated in a descriptor", MediaTypeImageManifest, `{"schemaVersion":2,"config":{"mediaType":"a/b","digest":"` + someDigest + `","size":2,"size":3}}`, `config: member "size" appears more than once`},
		{"repeated annotation, escaped", MediaTypeImageManifest, `{"schemaVersion":2,"config":` + cfg + `,"annotations":{"a":"1","\u0061":"2"}}`, `annotations: member "a" appears more than once`},
		{"repeated in an unknown member", MediaTypeImageManifest, `{"schemaVersion":2,"config":` + cfg + `,"x":[{"k":1},{"k":1,"k":2}]}`, `x[1]: member "k" appears more than once`},
	} {
		_, err := Parse(c.ct, []byte(c.body))
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && !errors.Is(err, ErrInvalid):
			t.Errorf("%s: %v, want ErrInvalid", c.name, err)
		case c.want != "" && !strings.Contains(err.Error(), c.want):
			t.Errorf("%s: %q does not say %q", c.name, err, c.want)
		}
	}
}

// FuzzCheckKeys compares the scanner with a reference walk over
// json.Decoder tokens, on every document that decodes.
func FuzzCheckKeys(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":2,"config":` + cfg + `,"layers":[` + layer + `],"annotations":{"a":"1","\u0061":"2"}}`))
	f.Add([]byte(` {"Layers":[{"x":[1,"]",{"k":true,"k":null}]}], "ſize":-1.5e3 } `))
	f.Add([]byte(`{"manifests":[{"platform":{"OS":"\"}"}}],"\xff":1,"\xfe":2}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var doc document
		dec := json.NewDecoder(bytes.NewReader(body))
		if dec.Decode(&doc) != nil || dec.More() {
			return
		}
		got := checkKeys(body, doc)
		ref := tokenWalk(json.NewDecoder(bytes.NewReader(body)), shapeOf(reflect.TypeOf(doc)))
		if (got == nil) != (ref == nil) || got != nil && got.Error() != ref.Error() {
			t.Fatalf("scanner: %v; reference: %v", got, ref)
		}
	})
}

// tokenWalk is the reference: the same rules over json.Decoder.Token.
func tokenWalk(dec *json.Decoder, s shape) error {
	tok, _ := dec.Token()
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			kt, _ := dec.Token()
			k := kt.(string)
			if seen[k] {
				return &keyError{msg: fmt.Sprintf("member %q appears more than once", k)}
			}
			seen[k] = true
			if _, ok := s[k]; !ok && s != nil && s.fold([]byte(k)) != "" {
				return &keyError{msg: fmt.Sprintf("member %q must be spelled %q", k, s.fold([]byte(k)))}
			}
			if err := tokenWalk(dec, s[k]); err != nil {
				return within(err, "."+k)
			}
		}
		dec.Token()
	case json.Delim('['):
		for i := 0; dec.More(); i++ {
			if err := tokenWalk(dec, s); err != nil {
				return within(err, fmt.Sprintf("[%d]", i))
			}
		}
		dec.Token()
	}
	return nil
}

package registry

import (
	"regexp"
	"strings"
	"testing"
)

func TestValidateName(t *testing.T) {
	for name, ok := range map[string]bool{
		"a": true, "library/ubuntu": true, "a.b_c__d---e/f": true, "conformance/repo1": true,
		"": false, "A": false, "a//b": false, "a/": false, "/a": false, "a/../b": false, "..": false,
		"a___b": false, "-a": false, "a-": false, strings.Repeat("a", 256): false, strings.Repeat("a", 255): true,
	} {
		if err := ValidateName(name); (err == nil) != ok {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", name, err, ok)
		}
	}
}

func TestValidateTag(t *testing.T) {
	for tag, ok := range map[string]bool{
		"latest": true, "v1.0.0": true, "_x": true, strings.Repeat("a", 128): true,
		"": false, ".x": false, "-x": false, "a/b": false, "a:b": false, strings.Repeat("a", 129): false,
	} {
		if err := ValidateTag(tag); (err == nil) != ok {
			t.Errorf("ValidateTag(%q) = %v, want ok=%v", tag, err, ok)
		}
	}
}

// The grammar as regular expressions: the oracle the hand-written checks
// are fuzzed against.
var (
	nameComponent = `[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*`
	nameRE        = regexp.MustCompile(`^` + nameComponent + `(?:/` + nameComponent + `)*$`)
	tagRE         = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
)

func FuzzReference(f *testing.F) {
	f.Add("library/ubuntu", "latest")
	f.Add("a/../b", "sha256:abc")
	f.Add("a__b/c-.d", "x..y")
	f.Add("a---b/c_d.e", "_9")
	f.Fuzz(func(t *testing.T, name, ref string) {
		if got, want := validName(name), nameRE.MatchString(name); got != want {
			t.Fatalf("validName(%q) = %v, the grammar says %v", name, got, want)
		}
		if got, want := validTag(ref), tagRE.MatchString(ref); got != want {
			t.Fatalf("validTag(%q) = %v, the grammar says %v", ref, got, want)
		}
		if ValidateName(name) == nil {
			if strings.Contains(name, "..") || strings.ToLower(name) != name || len(name) > maxNameLen {
				t.Fatalf("accepted name %q", name)
			}
		}
		if ValidateTag(ref) == nil && (strings.ContainsAny(ref, ":/@") || len(ref) > 128) {
			t.Fatalf("accepted tag %q", ref)
		}
		parseReference(ref) // must not panic
	})
}

package registry

import (
	"net/http"
	"strings"
	"unicode/utf8"
)

// Repository names and tags follow the distribution-spec's "pulling"
// section:
//
//	name      [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*
//	tag       [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}
//
// They are checked by hand rather than with regexp: every request checks a
// name, and a regexp match costs more than the rest of a small GET.

// maxNameLen bounds a repository name; the spec advises clients to keep
// hostname plus name under 255 characters.
const maxNameLen = 255

// ValidateName returns a NAME_INVALID error unless name is a valid
// repository name.
func ValidateName(name string) error {
	if len(name) > maxNameLen {
		return errorf(CodeNameInvalid, "repository name is %d characters long; the limit is %d", len(name), maxNameLen)
	}
	if !validName(name) {
		return errorf(CodeNameInvalid, "invalid repository name %q: use lowercase letters, digits and separators (. _ __ -) in path components separated by /", name)
	}
	return nil
}

// ValidateTag returns a MANIFEST_INVALID error unless tag is a valid tag.
func ValidateTag(tag string) error {
	if !validTag(tag) {
		return errorf(CodeManifestInvalid, "invalid tag %q: up to 128 characters of [a-zA-Z0-9_.-], not starting with . or -", tag).withStatus(http.StatusBadRequest)
	}
	return nil
}

func isLowerAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

// validName checks the name grammar: components of lowercase alphanumerics
// joined by ".", "_", "__" or runs of "-", separated by single "/".
func validName(name string) bool {
	for _, comp := range strings.Split(name, "/") {
		if comp == "" || !isLowerAlnum(comp[0]) || !isLowerAlnum(comp[len(comp)-1]) {
			return false
		}
		for i := 0; i < len(comp); {
			c := comp[i]
			if isLowerAlnum(c) {
				i++
				continue
			}
			// A separator run: ".", "_", "__" or "-"+, then an alphanumeric.
			j := i
			switch c {
			case '.':
				j++
			case '_':
				j++
				if j < len(comp) && comp[j] == '_' {
					j++
				}
			case '-':
				for j < len(comp) && comp[j] == '-' {
					j++
				}
			default:
				return false
			}
			if j >= len(comp) || !isLowerAlnum(comp[j]) {
				return false
			}
			i = j
		}
	}
	return true
}

func validTag(tag string) bool {
	if len(tag) == 0 || len(tag) > 128 || tag[0] == '.' || tag[0] == '-' {
		return false
	}
	for i := 0; i < len(tag); i++ {
		c := tag[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// validText reports whether s may be stored and compared as text on every
// backend: valid UTF-8 without NUL (PostgreSQL refuses both).
func validText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// textParam refuses a query parameter validText would not store.
func textParam(name, value string) error {
	if !validText(value) {
		return errorf(CodeUnsupported, "parameter %s must be UTF-8 text without NUL", name).withStatus(http.StatusBadRequest)
	}
	return nil
}

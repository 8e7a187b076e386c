package registry

import (
	"net/http"
	"regexp"
)

// Repository names and tags, from the distribution-spec's "pulling" section.
var (
	nameComponent = `[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*`
	nameRE        = regexp.MustCompile(`^` + nameComponent + `(?:/` + nameComponent + `)*$`)
	tagRE         = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
)

// maxNameLen bounds a repository name; the spec advises clients to keep
// hostname plus name under 255 characters.
const maxNameLen = 255

// ValidateName returns a NAME_INVALID error unless name is a valid
// repository name.
func ValidateName(name string) error {
	if len(name) > maxNameLen {
		return errorf(CodeNameInvalid, "repository name is %d characters long; the limit is %d", len(name), maxNameLen)
	}
	if !nameRE.MatchString(name) {
		return errorf(CodeNameInvalid, "invalid repository name %q: use lowercase letters, digits and separators (. _ __ -) in path components separated by /", name)
	}
	return nil
}

// ValidateTag returns a MANIFEST_INVALID error unless tag is a valid tag.
func ValidateTag(tag string) error {
	if !tagRE.MatchString(tag) {
		return errorf(CodeManifestInvalid, "invalid tag %q: up to 128 characters of [a-zA-Z0-9_.-], not starting with . or -", tag).withStatus(http.StatusBadRequest)
	}
	return nil
}

package auth

import (
	"fmt"
	"path"
	"strings"
)

// Glob matches repository names segment by segment: "*" (and the rest of
// path.Match's syntax) within one segment, "**" any number of whole
// segments, none included, as in "team/**" or "**/cache". The policy, API
// keys and retention policies share it, so that one pattern names the same
// repositories everywhere. The zero Glob matches nothing.
type Glob struct {
	pattern string
	parts   []string
}

// CompileGlob checks pattern: segments separated by single slashes, no
// leading or trailing slash, "**" only as a whole segment, each other
// segment a valid path.Match pattern.
func CompileGlob(pattern string) (Glob, error) {
	if pattern == "" || strings.HasPrefix(pattern, "/") || strings.HasSuffix(pattern, "/") || strings.Contains(pattern, "//") {
		return Glob{}, fmt.Errorf("repository glob %q: write segments separated by single slashes", pattern)
	}
	g := Glob{pattern: pattern, parts: strings.Split(pattern, "/")}
	for _, part := range g.parts {
		if part == "**" {
			continue
		}
		if strings.Contains(part, "**") {
			return Glob{}, fmt.Errorf("repository glob %q: ** must be a whole segment", pattern)
		}
		if _, err := path.Match(part, ""); err != nil {
			return Glob{}, fmt.Errorf("repository glob %q: %w", pattern, err)
		}
	}
	return g, nil
}

// Match reports whether repo, a repository name, matches the glob.
func (g Glob) Match(repo string) bool {
	return g.parts != nil && matchParts(g.parts, strings.Split(repo, "/"))
}

// String returns the pattern the glob was compiled from.
func (g Glob) String() string { return g.pattern }

func matchParts(pat, name []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			for i := 0; i <= len(name); i++ {
				if matchParts(pat[1:], name[i:]) {
					return true
				}
			}
			return false
		}
		if len(name) == 0 {
			return false
		}
		if ok, _ := path.Match(pat[0], name[0]); !ok {
			return false
		}
		pat, name = pat[1:], name[1:]
	}
	return len(name) == 0
}

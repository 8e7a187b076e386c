package registry

import (
	"net/http"
	"strings"

	"github.com/gorilla/mux"
)

// repoPath matches the paths of one repository route, "/v2/" then the
// repository name then a suffix ("/blobs/{digest}", "/tags/list"), as
// gorilla/mux matches the template "/v2/{name:.+}"+suffix, but with string
// operations instead of a regular expression: on a small pull, matching
// the route and extracting its variables with the template's expression
// (run twice, once to match and once for the variables) cost some 30 % of
// the server's CPU. TestRepoPathMatchesTemplate holds the two to the same
// answers.
//
// The suffix is fixed text, optionally ending in one variable that takes
// the last path segment ("{digest}": mux's default pattern, [^/]+). The
// name takes everything between "/v2/" and the suffix, as the greedy .+
// does, and like it never a newline.
type repoPath struct {
	template string // "/v2/{name:.+}" + suffix, the route's name as mux would derive it
	fixed    string // the suffix up to its variable, or whole
	variable string // the variable's name, or ""
}

func newRepoPath(suffix string) repoPath {
	p := repoPath{template: "/v2/{name:.+}" + suffix, fixed: suffix}
	if open := strings.LastIndexByte(suffix, '{'); open >= 0 && strings.HasSuffix(suffix, "}") {
		p.fixed, p.variable = suffix[:open], suffix[open+1:len(suffix)-1]
	}
	return p
}

// match returns the name and the variable's value when path is one of
// the route's.
func (p repoPath) match(path string) (name, value string, ok bool) {
	rest := path
	if p.variable != "" {
		slash := strings.LastIndexByte(path, '/')
		if slash < 0 || slash == len(path)-1 {
			return "", "", false
		}
		rest, value = path[:slash+1], path[slash+1:]
	}
	const prefix = "/v2/"
	if !strings.HasPrefix(rest, prefix) || !strings.HasSuffix(rest, p.fixed) || len(rest) <= len(prefix)+len(p.fixed) {
		return "", "", false
	}
	name = rest[len(prefix) : len(rest)-len(p.fixed)]
	if strings.IndexByte(name, '\n') >= 0 {
		return "", "", false
	}
	return name, value, true
}

// matcher is the route's mux matcher: on a match it sets the route's
// variables, which mux.Vars then returns. Every route that can match a
// repository route's path is one too, so no template route's variables
// are ever added to a map one of these set for a route whose method then
// did not match.
func (p repoPath) matcher(req *http.Request, m *mux.RouteMatch) bool {
	name, value, ok := p.match(req.URL.Path)
	if !ok {
		return false
	}
	m.Vars = map[string]string{"name": name}
	if p.variable != "" {
		m.Vars[p.variable] = value
	}
	return true
}

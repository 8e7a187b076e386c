package registry

import (
	"net/http"
	"slices"
	"strings"

	"github.com/gorilla/mux"
)

// nativeSeparator is the path segment between a repository name and the
// native API's sub-resources (/-/versions, /-/blobs). The name grammar
// cannot produce it as a component, so it ends a name unambiguously.
const nativeSeparator = "-"

// repositoriesPrefix is where the native API's per-repository URLs start.
const repositoriesPrefix = "/api/v1/repositories/"

// noEndpoint answers a path no route matches: a 404 that, under
// /api/v1/repositories/, explains the URL scheme and, for a URL in the old
// form without the separator, gives the URL to use instead.
func noEndpoint(w http.ResponseWriter, req *http.Request) error {
	msg := "no endpoint " + req.Method + " " + req.URL.Path
	if hint := nativeURLHint(req.URL.Path); hint != "" {
		msg += "; " + hint
	}
	return errorf(CodeUnsupported, "%s", msg).withStatus(http.StatusNotFound)
}

// nativeURLHint explains the native URL scheme for a path under
// /api/v1/repositories/ that matched nothing, proposing the separator
// before the first "versions" or "blobs" segment when the path has none.
func nativeURLHint(p string) string {
	rest, ok := strings.CutPrefix(p, repositoriesPrefix)
	if !ok {
		return ""
	}
	const scheme = "native URLs put /-/ between the repository and what follows: " +
		repositoriesPrefix + "NAME/-/versions[/VERSION[/files[/PATH]]] or " + repositoriesPrefix + "NAME/-/blobs/DIGEST"
	parts := strings.Split(rest, "/")
	if slices.Contains(parts, nativeSeparator) {
		return scheme
	}
	for i := 1; i < len(parts); i++ {
		if parts[i] == "versions" || parts[i] == "blobs" {
			fixed := repositoriesPrefix + strings.Join(parts[:i], "/") + "/" + nativeSeparator + "/" + strings.Join(parts[i:], "/")
			return scheme + " (if the repository is " + strings.Join(parts[:i], "/") + ": " + fixed + ")"
		}
	}
	return scheme
}

// allowedMethods lists, sorted, the methods some route serves at the
// request's path: the Allow header of a 405.
func allowedMethods(m *mux.Router, req *http.Request) []string {
	var out []string
	m.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		methods, err := route.GetMethods()
		if err != nil {
			return nil
		}
		for _, method := range methods {
			probe := *req
			probe.Method = method
			if !slices.Contains(out, method) && route.Match(&probe, &mux.RouteMatch{}) {
				out = append(out, method)
			}
		}
		return nil
	})
	slices.Sort(out)
	return out
}

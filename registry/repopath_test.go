package registry

import (
	"math/rand/v2"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/gorilla/mux"
)

// TestRepoPathMatchesTemplate: each repository route's matcher answers
// exactly as a gorilla/mux route with its template ("/v2/{name:.+}"+suffix)
// does: the same paths match, with the same name and variable. Paths are the
// routes' own, odd ones (empty segments, the suffix repeated inside the
// name, newlines, the suffix alone), and random ones built from the
// pieces routes are made of.
func TestRepoPathMatchesTemplate(t *testing.T) {
	suffixes := []string{"/blobs/{digest}", "/manifests/{reference}", "/tags/list", "/referrers/{digest}", "/blobs/uploads/", "/blobs/uploads/{uuid}"}
	paths := []string{
		"/v2/a/blobs/sha256:00", "/v2/a/b/c/blobs/x", "/v2//blobs/x", "/v2/a//blobs/x", "/v2/a/blobs/", "/v2/a/blobs",
		"/v2/blobs/x", "/v2/a/blobs/blobs/x", "/v2/a/blobs/x/", "/v2/a/blobs/uploads/", "/v2/a/blobs/uploads/u", "/v2/a/blobs/uploads/u/",
		"/v2/a\n/blobs/x", "/v2/a/blobs/x\n", "/v2/\n/tags/list", "/v2/a/tags/list", "/v2/a/tags/list/tags/list", "/v2//tags/list",
		"/v2/tags/list", "/v2/a/tags/list/", "/v2/a/manifests/latest", "/v2/a/manifests/", "/v2/a/referrers/sha256:1", "/v2/",
		"/v2", "v2/a/blobs/x", "/api/v1/a/blobs/x", "/v2/a/b/manifests/m/manifests/n", "/v2/a/blobs/uploads/uploads/", "/v2/ /blobs/ ",
		"/v2/a/blobs/uploads//", "/v2/./blobs/..", "/v2/a%2Fb/blobs/x", "/v2/é/blobs/ü",
	}
	pieces := []string{"/", "v2", "a", "blobs", "uploads", "manifests", "tags", "list", "referrers", "\n", "x", "", ":"}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		var b strings.Builder
		if rng.IntN(4) > 0 {
			b.WriteString("/v2/")
		}
		for range rng.IntN(8) {
			b.WriteString(pieces[rng.IntN(len(pieces))])
			if rng.IntN(2) == 0 {
				b.WriteString("/")
			}
		}
		paths = append(paths, b.String())
	}
	for _, name := range []string{"a", "a/b", "blobs", "a/blobs/uploads", "x/manifests", "tags/list", "-", "a\nb"} {
		for _, suffix := range suffixes {
			for _, value := range []string{"v", "sha256:1", "", "v/w"} {
				paths = append(paths, "/v2/"+name+regexp.MustCompile(`\{[a-z]+\}`).ReplaceAllString(suffix, value))
			}
		}
	}
	for _, suffix := range suffixes {
		p := newRepoPath(suffix)
		router := mux.NewRouter()
		router.SkipClean(true) // as routes() does
		route := router.NewRoute().Path(p.template)
		matched := 0
		for _, path := range paths {
			var want mux.RouteMatch
			wantOK := route.Match(&http.Request{Method: http.MethodGet, URL: &url.URL{Path: path}}, &want)
			name, value, ok := p.match(path)
			if ok != wantOK {
				t.Fatalf("%s on %q: matcher %v, mux %v", suffix, path, ok, wantOK)
			}
			if !ok {
				continue
			}
			matched++
			if name != want.Vars["name"] || value != want.Vars[p.variable] {
				t.Fatalf("%s on %q: matcher (%q, %q), mux %v", suffix, path, name, value, want.Vars)
			}
		}
		if matched < 10 {
			t.Errorf("%s: only %d paths matched; the test is not exercising it", suffix, matched)
		}
	}
}

package registry

import (
	_ "embed"
	"net/http"
	"strconv"
	"strings"

	"github.com/artifact-store/artifact-store/digest"
)

// openAPIDoc is the OpenAPI 3.1 description of /api/v1/. TestOpenAPI
// checks that it and the route table name the same paths and methods.
//
//go:embed openapi.json
var openAPIDoc []byte

// openAPIETag changes exactly when the document does.
var openAPIETag = `"` + digest.FromBytes(digest.SHA256, openAPIDoc).String() + `"`

// openAPI serves the document.
func (r *Registry) openAPI(w http.ResponseWriter, req *http.Request) error {
	h := w.Header()
	h.Set("ETag", openAPIETag)
	// Revalidate on every use: the document changes with the server.
	h.Set("Cache-Control", "no-cache")
	if inm := req.Header.Get("If-None-Match"); inm != "" && etagListed(inm, openAPIETag) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(openAPIDoc)))
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(openAPIDoc)
	return err
}

// etagListed reports whether an If-None-Match value names etag (weak
// comparison, as RFC 9110 asks for If-None-Match) or is "*".
func etagListed(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}

package registry

import (
	"bytes"
	"crypto/sha512"
	"embed"
	"encoding/base64"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
)

// uiFiles are the web UI's pages: one static page and its script and
// style, embedded so that the binary serves them offline, from no CDN.
// The page reads everything it shows from /api/v1/ and /v2/ with the
// browser's credentials, so it sees exactly what its user may pull.
//
//go:embed ui
var uiFiles embed.FS

// uiPolicy keeps the pages to their own files: the one script whose hash
// it names (%s), no other origin, no framing. Values from the server are
// put in pages as text, never markup (ui/app.js), and this is the second
// line: a script is allowed by its hash, not its origin, because anyone who
// may push can serve a file from this origin.
const uiPolicy = "default-src 'none'; script-src '%s'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// ui serves the web UI under /ui/.
func (r *Registry) ui() http.Handler {
	sub, err := fs.Sub(uiFiles, "ui")
	if err != nil {
		panic(err) // the embedded tree always has ui/
	}
	script, err := fs.ReadFile(sub, "app.js")
	if err != nil {
		panic(err)
	}
	sum := sha512.Sum384(script)
	integrity := "sha384-" + base64.StdEncoding.EncodeToString(sum[:])
	policy := strings.Replace(uiPolicy, "%s", integrity, 1)
	// The page names its script with that hash (Subresource Integrity),
	// which is what lets the policy allow it.
	page, err := fs.ReadFile(sub, "index.html")
	if err != nil {
		panic(err)
	}
	page = bytes.Replace(page, []byte(`<script src="app.js" defer>`), []byte(`<script src="app.js" integrity="`+integrity+`" defer>`), 1)
	files := http.StripPrefix("/ui/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", policy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache") // small files: revalidate, so an upgrade shows at once
		if req.URL.Path == "/ui/" || req.URL.Path == "/ui/index.html" {
			h.Set("Content-Type", "text/html; charset=utf-8")
			h.Set("Content-Length", strconv.Itoa(len(page)))
			if req.Method != http.MethodHead {
				w.Write(page)
			}
			return
		}
		files.ServeHTTP(w, req)
	})
}

// toUI sends a browser at / or /ui to the UI.
func toUI(w http.ResponseWriter, req *http.Request) {
	http.Redirect(w, req, "/ui/", http.StatusFound)
}

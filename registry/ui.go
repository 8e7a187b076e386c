package registry

import (
	"embed"
	"io/fs"
	"net/http"
)

// uiFiles are the web UI's pages: one static page and its script and
// style, embedded so that the binary serves them offline, from no CDN.
// The page reads everything it shows from /api/v1/ and /v2/ with the
// browser's credentials, so it sees exactly what its user may pull.
//
//go:embed ui
var uiFiles embed.FS

// uiPolicy keeps the pages to their own files: no inline script, no
// other origin, no framing. Values from the server are put in pages as
// text, never markup (ui/app.js), and this is the second line.
const uiPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// ui serves the web UI under /ui/.
func (r *Registry) ui() http.Handler {
	sub, err := fs.Sub(uiFiles, "ui")
	if err != nil {
		panic(err) // the embedded tree always has ui/
	}
	files := http.StripPrefix("/ui/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if rec := recorderOf(w); rec != nil {
			rec.noteRoute(req)
		}
		h := w.Header()
		h.Set("Content-Security-Policy", uiPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache") // small files: revalidate, so an upgrade shows at once
		files.ServeHTTP(w, req)
	})
}

// toUI sends a browser at / or /ui to the UI.
func toUI(w http.ResponseWriter, req *http.Request) {
	http.Redirect(w, req, "/ui/", http.StatusFound)
}

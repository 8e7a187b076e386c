package registry_test

import (
	"bytes"
	"io"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/artifact-store/artifact-store/blobstore"
	blobfs "github.com/artifact-store/artifact-store/blobstore/fs"
)

// doChunked sends body without a Content-Length (Transfer-Encoding:
// chunked), as a streaming client does.
func (s *testServer) doChunked(method, path string, body []byte, headers ...string) response {
	s.t.Helper()
	req, err := http.NewRequest(method, s.url+path, io.MultiReader(bytes.NewReader(body)))
	if err != nil {
		s.t.Fatal(err)
	}
	for _, h := range headers {
		k, v, _ := bytes.Cut([]byte(h), []byte(":"))
		req.Header.Add(string(bytes.TrimSpace(k)), string(bytes.TrimSpace(v)))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp, b}
}

// TestContentRangeOverflow: Content-Range values whose arithmetic would
// overflow an int64, and bodies that do not match their range, are
// refused; no chunk is acknowledged (202) unless every byte it carried is
// stored, on either blob backend.
func TestContentRangeOverflow(t *testing.T) {
	stores := []struct {
		name string
		open func(t *testing.T) blobstore.Backend
	}{
		{"fs", func(t *testing.T) blobstore.Backend {
			b, err := blobfs.New(filepath.Join(t.TempDir(), "blobs"))
			if err != nil {
				t.Fatal(err)
			}
			return b
		}},
		{"s3", func(t *testing.T) blobstore.Backend {
			_, b := startS3(t, "", 0)
			return b
		}},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			s := serveOn(t, nil, st.open(t))
			open := s.do("POST", "/v2/r/blobs/uploads/", nil)
			expect(t, open, 202)
			loc := open.Header.Get("Location")
			holds := func(want string) {
				t.Helper()
				r := s.do("GET", loc, nil)
				expect(t, r, 204)
				if r.Header.Get("Range") != want {
					t.Fatalf("upload Range %q, want %q", r.Header.Get("Range"), want)
				}
			}
			data := randomBytes(t, 10)

			for _, cr := range []string{
				"0-99999999999999999999",        // beyond int64
				"0-9223372036854775807",         // end+1 overflows
				"bytes 0-9223372036854775807/*", // the same in the bytes form
				"99999999999999999999-5",
				"-1-9",
				"5-2",
			} {
				for _, chunked := range []bool{false, true} {
					var r response
					if chunked {
						r = s.doChunked("PATCH", loc, data, "Content-Range: "+cr)
					} else {
						r = s.do("PATCH", loc, data, "Content-Range: "+cr)
					}
					if r.StatusCode != http.StatusRequestedRangeNotSatisfiable && r.StatusCode != http.StatusBadRequest {
						t.Fatalf("PATCH Content-Range %q (chunked %v): %d %s, want 416 or 400", cr, chunked, r.StatusCode, r.body)
					}
				}
			}
			holds("0-0")

			// A chunked body longer than its range: nothing of it is kept.
			r := s.doChunked("PATCH", loc, randomBytes(t, 20), "Content-Range: 0-9")
			expect(t, r, 400, "SIZE_INVALID")
			holds("0-0")

			// A range as long as an int64 allows, with a short body: the
			// bytes that came are kept and the answer says so (not 202).
			r = s.doChunked("PATCH", loc, data, "Content-Range: 0-9223372036854775806")
			expect(t, r, 400, "SIZE_INVALID")
			holds("0-9")

			// The session is still good.
			more := randomBytes(t, 5)
			expect(t, s.doChunked("PATCH", loc, more, "Content-Range: 10-14"), 202)
			whole := append(append([]byte{}, data...), more...)
			expect(t, s.do("PUT", withQuery(loc, "digest="+sha256Of(whole)), nil), 201)
			got := s.do("GET", "/v2/r/blobs/"+sha256Of(whole), nil)
			if !bytes.Equal(got.body, whole) {
				t.Fatalf("stored blob differs from what was sent")
			}
		})
	}
}

package registry_test

import (
	"path/filepath"
	"strings"
	"sync"
	"testing"

	blobfs "github.com/artifact-store/artifact-store/blobstore/fs"
)

// TestNoPathInErrors races two PUTs completing the same upload (with and
// without a last chunk), then asks for the finished session's status:
// one PUT wins, the other is told the upload is unknown, and no answer
// names the server's data directory.
func TestNoPathInErrors(t *testing.T) {
	dir := t.TempDir()
	fsb, err := blobfs.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	s := serveOn(t, nil, fsb)
	check := func(r response) {
		t.Helper()
		if strings.Contains(string(r.body), dir) {
			t.Fatalf("%s %s: the answer names a server path: %s", r.Request.Method, r.Request.URL.Path, r.body)
		}
		if r.StatusCode >= 500 {
			t.Fatalf("%s %s: %d %s", r.Request.Method, r.Request.URL.Path, r.StatusCode, r.body)
		}
	}
	for i := 0; i < 40; i++ {
		data := randomBytes(t, 64<<10)
		open := s.do("POST", "/v2/r/blobs/uploads/", nil)
		expect(t, open, 202)
		loc := open.Header.Get("Location")
		put := withQuery(loc, "digest="+sha256Of(data))
		var body []byte
		if i%2 == 0 {
			expect(t, s.do("PATCH", loc, data), 202)
		} else {
			body = data // the last chunk comes with the PUT
		}
		var wg sync.WaitGroup
		answers := make([]response, 2)
		for j := range answers {
			wg.Add(1)
			go func() { defer wg.Done(); answers[j] = s.do2("PUT", put, body) }()
		}
		wg.Wait()
		created := 0
		for _, r := range answers {
			check(r)
			switch {
			case r.StatusCode == 201:
				created++
			case r.StatusCode == 404 && r.errCode() == "BLOB_UPLOAD_UNKNOWN":
			case r.StatusCode == 416 && body != nil:
				// The loser's last chunk met the winner's: also an answer.
			default:
				t.Fatalf("racing PUT: %d %s", r.StatusCode, r.body)
			}
		}
		if created == 0 {
			t.Fatalf("neither racing PUT completed the upload: %s / %s", answers[0].body, answers[1].body)
		}
		st := s.do("GET", loc, nil)
		expect(t, st, 404, "BLOB_UPLOAD_UNKNOWN")
		check(st)
		check(s.do("PATCH", loc, []byte("late")))
		check(s.do("DELETE", loc, nil))
	}
}

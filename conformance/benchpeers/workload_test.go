package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/artifact-store/artifact-store/blobstore"
	blobfs "github.com/artifact-store/artifact-store/blobstore/fs"
	"github.com/artifact-store/artifact-store/eventlog/sqlite"
	"github.com/artifact-store/artifact-store/registry"
)

// tiny is a workload small enough for a unit test, with chunks that split
// the large blobs' replaced first bytes.
var tiny = config{rounds: 1, bigSize: 1_003, chunks: 100, blobs: 30, blobSize: 512,
	manifests: 25, lists: 2, clients: 3, layers: 2, layerSize: 1000}

// registryServer is an artifactstore registry in this process, on SQLite
// and a filesystem blob store, behind wrap (which may corrupt answers).
func registryServer(t *testing.T, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	dir := t.TempDir()
	l, err := sqlite.Open(context.Background(), filepath.Join(dir, "log.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	fsb, err := blobfs.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := registry.New(registry.Options{Log: l, Blobs: blobstore.New(fsb), UploadTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var h http.Handler = reg
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func tinyData(t *testing.T) *workloadData {
	t.Helper()
	d, err := generate(context.Background(), t.TempDir(), tiny)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.close)
	return d
}

// httpSteps are the steps that need no client program, in workload order.
var httpSteps = []struct {
	name string
	run  func(context.Context, *workload) (float64, error)
}{
	{"monolithic", pushMonolithic}, {"chunked", pushChunked}, {"small push", pushSmall},
	{"small pull", pullSmall}, {"manifest put", putManifests}, {"tags list", listTags},
	{"manifest get", getManifests},
}

// TestWorkload runs every HTTP step against a registry: each reports a
// rate, and the large blobs the server holds are the bytes the steps
// meant to send.
func TestWorkload(t *testing.T) {
	d := tinyData(t)
	w := newWorkload(tiny, d, registryServer(t, nil))
	defer w.close()
	ctx := context.Background()
	for _, s := range httpSteps {
		r, err := s.run(ctx, w)
		if err != nil || r <= 0 {
			t.Fatalf("%s: rate %v, error %v", s.name, r, err)
		}
	}
	for _, b := range []*bigBlob{&d.monolith, &d.chunked} {
		resp, err := w.do(ctx, "GET", "/v2/"+repoBig+"/blobs/"+b.digest, nil, 0, 200)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want, _ := io.ReadAll(b.reader(0, b.size))
		if !bytes.Equal(got, want) || !bytes.HasPrefix(got, b.head) {
			t.Errorf("blob %s: the server holds %d other bytes", b.digest, len(got))
		}
	}
	if w.data.monolith.digest == w.data.chunked.digest {
		t.Error("the monolithic and chunked steps push the same blob")
	}
}

// TestStepsRefuseWrongAnswers: a step whose server answers wrongly fails
// instead of reporting a rate.
func TestStepsRefuseWrongAnswers(t *testing.T) {
	corrupt := func(match func(r *http.Request) bool, answer func(w http.ResponseWriter)) func(http.Handler) http.Handler {
		return func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if match(r) {
					answer(w)
					return
				}
				next.ServeHTTP(w, r)
			})
		}
	}
	isGet := func(part string) func(*http.Request) bool {
		return func(r *http.Request) bool { return r.Method == "GET" && strings.Contains(r.URL.Path, part) }
	}
	for _, c := range []struct {
		name   string
		step   string
		wrap   func(http.Handler) http.Handler
		inMsgs string
	}{
		{"blob GET with other bytes", "small pull", corrupt(isGet("/blobs/sha256:"), func(w http.ResponseWriter) {
			w.Write(make([]byte, tiny.blobSize))
		}), "not the ones pushed"},
		{"tags list missing tags", "tags list", corrupt(isGet("/tags/list"), func(w http.ResponseWriter) {
			w.Write([]byte(`{"name":"bench/manifests","tags":["t0"]}`))
		}), "1 tags, want 25"},
		{"manifest GET with other bytes", "manifest get", corrupt(isGet("/manifests/t"), func(w http.ResponseWriter) {
			w.Write([]byte(`{"schemaVersion":2}`))
		}), "want sha256:"},
		{"PATCH answered 204", "chunked", corrupt(func(r *http.Request) bool { return r.Method == "PATCH" }, func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusNoContent)
		}), "204, want 202"},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newWorkload(tiny, tinyData(t), registryServer(t, c.wrap))
			defer w.close()
			for _, s := range httpSteps {
				r, err := s.run(context.Background(), w)
				if s.name != c.step {
					continue // an earlier step, which prepares this one
				}
				if err == nil || !strings.Contains(err.Error(), c.inMsgs) {
					t.Fatalf("%s: rate %v, error %v; want an error saying %q", s.name, r, err, c.inMsgs)
				}
				return
			}
			t.Fatalf("no step %q", c.step)
		})
	}
}

// TestBigBlobReader: any section of a large blob is the file's bytes with
// the head in front.
func TestBigBlobReader(t *testing.T) {
	file := []byte("0123456789abcdefghij")
	path := filepath.Join(t.TempDir(), "f")
	os.WriteFile(path, file, 0o644)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := &bigBlob{file: f, size: int64(len(file)), head: []byte("HEAD")}
	want := "HEAD456789abcdefghij"
	for off := int64(0); off <= b.size; off++ {
		for n := int64(0); off+n <= b.size; n++ {
			got, err := io.ReadAll(b.reader(off, n))
			if err != nil || string(got) != want[off:off+n] {
				t.Fatalf("reader(%d, %d) = %q, %v; want %q", off, n, got, err, want[off:off+n])
			}
		}
	}
}

package registry_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/artifact-store/artifact-store/blobstore"
	blobfs "github.com/artifact-store/artifact-store/blobstore/fs"
	"github.com/artifact-store/artifact-store/eventlog/postgres"
	"github.com/artifact-store/artifact-store/eventlog/postgres/pgtest"
	"github.com/artifact-store/artifact-store/registry"
)

// replicas starts n registries sharing one PostgreSQL schema and one blob
// directory, each on its own loopback server, and a round-robin reverse
// proxy in front of them. Every request through the proxy goes to the next
// replica, so a multi-request operation crosses replicas.
func replicas(t testing.TB, n int) (proxy *testServer, direct []*testServer) {
	dsn := pgtest.DSN(t)
	blobDir := t.TempDir()
	var targets []*url.URL
	for i := 0; i < n; i++ {
		l, err := postgres.Open(context.Background(), dsn, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		fsb, err := blobfs.New(filepath.Join(blobDir, "blobs"))
		if err != nil {
			t.Fatal(err)
		}
		reg, err := registry.New(registry.Options{Log: l, Blobs: blobstore.New(fsb)})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(reg)
		t.Cleanup(srv.Close)
		u, _ := url.Parse(srv.URL)
		targets = append(targets, u)
		direct = append(direct, &testServer{t: t, url: srv.URL, log: l, blobs: blobstore.New(fsb), reg: reg})
	}
	var next atomic.Uint64
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(targets[next.Add(1)%uint64(len(targets))])
			pr.Out.Host = pr.In.Host
		},
		FlushInterval: -1,
	}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	return &testServer{t: t, url: srv.URL, log: direct[0].log, blobs: direct[0].blobs}, direct
}

// TestReplicasBehaveAsOne pushes and pulls through a round-robin proxy,
// with a chunked upload whose requests alternate between replicas.
func TestReplicasBehaveAsOne(t *testing.T) {
	p, direct := replicas(t, 2)
	// A chunked upload: POST, PATCH, PATCH, PATCH, PUT land on alternating
	// replicas; each replica re-derives the hash state the other advanced.
	data := randomBytes(t, 3<<20)
	r := p.do("POST", "/v2/multi/repo/blobs/uploads/", nil)
	expect(t, r, 202)
	loc := r.Header.Get("Location")
	for off := 0; off < len(data); off += 1 << 20 {
		end := min(off+1<<20, len(data))
		r = p.do("PATCH", loc, data[off:end], fmt.Sprintf("Content-Range: %d-%d", off, end-1))
		expect(t, r, 202)
		loc = r.Header.Get("Location")
		st := p.do("GET", loc, nil)
		expect(t, st, 204)
		if want := fmt.Sprintf("0-%d", end-1); st.Header.Get("Range") != want {
			t.Fatalf("status on the other replica: Range %q, want %q", st.Header.Get("Range"), want)
		}
	}
	expect(t, p.do("PUT", loc+"?digest="+sha256Of(data), nil), 201)
	for i, d := range direct {
		got := d.do("GET", "/v2/multi/repo/blobs/"+sha256Of(data), nil)
		expect(t, got, 200)
		if !bytes.Equal(got.body, data) {
			t.Fatalf("replica %d serves different bytes", i)
		}
	}
	// Push through the proxy, pull from each replica directly.
	m, d := p.pushImage("multi/repo", "v1", "")
	for _, s := range direct {
		got := s.do("GET", "/v2/multi/repo/manifests/v1", nil)
		expect(t, got, 200)
		if !bytes.Equal(got.body, m) {
			t.Fatal("replicas disagree on a manifest")
		}
	}
	// A tag moved on one replica is seen on the other at once.
	m2, d2 := direct[0].pushImage("multi/repo", "v2", "")
	expect(t, direct[0].do("PUT", "/v2/multi/repo/manifests/v1", m2, "Content-Type: "+ociManifest), 201)
	if got := direct[1].do("HEAD", "/v2/multi/repo/manifests/v1", nil); got.Header.Get("Docker-Content-Digest") != d2 || d == d2 {
		t.Fatalf("tag moved on replica 0; replica 1 answers %q", got.Header.Get("Docker-Content-Digest"))
	}
}

// TestEventReachesStreamOnOtherReplica opens a stream on one replica and
// appends on the other.
func TestEventReachesStreamOnOtherReplica(t *testing.T) {
	_, direct := replicas(t, 2)
	stream := openStream(t, direct[1].url+"/api/v1/events?type=tag.set")
	time.Sleep(100 * time.Millisecond) // the stream has read the head
	start := time.Now()
	direct[0].pushImage("x", "fresh", "")
	ev := next(t, stream, time.Second)
	if ev.data["payload"].(map[string]any)["tag"] != "fresh" {
		t.Fatalf("unexpected event %+v", ev)
	}
	t.Logf("event crossed replicas in %v", time.Since(start))
}

// TestCrossReplicaCommitRace finishes an upload on one replica while a
// misbehaving client appends to it on the other. Whichever wins, a blob
// that exists must hash to its digest: the upload lock spans replicas.
func TestCrossReplicaCommitRace(t *testing.T) {
	_, direct := replicas(t, 2)
	for i := 0; i < 10; i++ {
		head := randomBytes(t, 200_000)
		r := direct[0].do("POST", "/v2/race/blobs/uploads/", nil)
		loc := r.Header.Get("Location")
		expect(t, direct[0].do("PATCH", loc, head), 202)
		done := make(chan struct{})
		go func() {
			defer close(done)
			req, _ := http.NewRequest("PATCH", direct[1].url+loc, bytes.NewReader(randomBytes(t, 2_000_000)))
			req.Header.Set("Content-Range", fmt.Sprintf("%d-%d", len(head), len(head)+2_000_000-1))
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
		direct[0].do("PUT", loc+"?digest="+sha256Of(head), nil)
		<-done
		if got := direct[1].do("GET", "/v2/race/blobs/"+sha256Of(head), nil); got.StatusCode == 200 && !bytes.Equal(got.body, head) {
			t.Fatalf("round %d: blob %s holds %d bytes of something else", i, sha256Of(head), len(got.body))
		}
	}
}

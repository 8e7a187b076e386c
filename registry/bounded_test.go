package registry_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/artifact-store/artifact-store/blobstore"
	"github.com/artifact-store/artifact-store/digest"
	"github.com/artifact-store/artifact-store/registry"
)

// stallPatch opens a PATCH of loc that announces announce bytes, sends
// send of them and then goes quiet, as a hostile or broken client does.
// The connection stays open until the test ends.
func stallPatch(t testing.TB, s *testServer, loc string, send, announce int) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(s.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "PATCH %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", loc, announce)
	c.Write(make([]byte, send))
	return c
}

// pushChunked pushes p through an upload session in two chunks, failing
// the test on any error; the HTTP client gives up after 20s, so a registry
// frozen by other clients fails the test rather than hanging it.
func pushChunked(t testing.TB, s *testServer, repo string, p []byte) {
	t.Helper()
	client := &http.Client{Timeout: 20 * time.Second}
	send := func(method, u string, body []byte, hdr ...string) *http.Response {
		req, _ := http.NewRequest(method, u, strings.NewReader(string(body)))
		for _, h := range hdr {
			k, v, _ := strings.Cut(h, ": ")
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, u, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	resp := send("POST", s.url+"/v2/"+repo+"/blobs/uploads/", nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST: %d", resp.StatusCode)
	}
	loc := s.url + resp.Header.Get("Location")
	half := len(p) / 2
	if r := send("PATCH", loc, p[:half], fmt.Sprintf("Content-Range: 0-%d", half-1)); r.StatusCode != http.StatusAccepted {
		t.Fatalf("PATCH: %d", r.StatusCode)
	}
	if r := send("PATCH", loc, p[half:], fmt.Sprintf("Content-Range: %d-%d", half, len(p)-1)); r.StatusCode != http.StatusAccepted {
		t.Fatalf("PATCH: %d", r.StatusCode)
	}
	if r := send("PUT", loc+"?digest="+sha256Of(p), nil); r.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: %d", r.StatusCode)
	}
}

// TestStalledBodiesHoldNothing: clients that send part of a PATCH body and
// go quiet — more of them than the PostgreSQL lock pool has connections —
// neither freeze other uploads nor keep their sessions: their bodies are
// cut after the idle timeout, with 408, and the sessions are usable again
// and expirable.
func TestStalledBodiesHoldNothing(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		const idle = 500 * time.Millisecond
		s := b.server(t, func(o *registry.Options) { o.BodyIdleTimeout = idle })
		const stalled = 40 // the PostgreSQL lock pool had 32 connections
		locs := make([]string, stalled)
		conns := make([]net.Conn, stalled)
		for i := range stalled {
			r := s.do("POST", "/v2/stall/blobs/uploads/", nil)
			expect(t, r, http.StatusAccepted)
			locs[i] = r.Header.Get("Location")
			conns[i] = stallPatch(t, s, locs[i], 1000, 1<<20)
		}
		// While they stall, another client pushes, and the janitor passes
		// without waiting on them.
		pushChunked(t, s, "other", randomBytes(t, 300_000))
		done := make(chan error, 1)
		go func() { _, err := s.reg.ExpireUploads(context.Background(), time.Now()); done <- err }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the upload janitor waits on stalled clients")
		}
		// Each stalled request is answered 408 once its body stops.
		for i, c := range conns {
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("stalled PATCH %d: no answer: %v", i, err)
			}
			if resp.StatusCode != http.StatusRequestTimeout {
				t.Fatalf("stalled PATCH %d: status %d, want 408", i, resp.StatusCode)
			}
		}
		// The sessions are free: nothing of the cut bodies was kept, and
		// they can be resumed and finished.
		for _, loc := range locs[:3] {
			st := s.do("GET", loc, nil)
			expect(t, st, http.StatusNoContent)
			if st.Header.Get("Range") != "0-0" {
				t.Fatalf("after a cut body the upload reports Range %q", st.Header.Get("Range"))
			}
			data := randomBytes(t, 2000)
			expect(t, s.do("PATCH", loc, data), http.StatusAccepted)
			expect(t, s.do("PUT", loc+"?digest="+sha256Of(data), nil), http.StatusCreated)
		}
		// And the rest expire.
		n, err := s.reg.ExpireUploads(context.Background(), time.Now().Add(2*time.Hour))
		if err != nil || n != stalled-3 {
			t.Fatalf("expired %d (%v), want %d", n, err, stalled-3)
		}
	})
}

// TestUploadSessionCaps: open sessions are capped per repository and in
// total, with 429 and a message that says what to do. The caps count the
// sessions that hold bytes (ADR 0018): a POST beyond them is refused, and
// so are the first bytes of a session opened before they were reached; a
// session that never holds a byte takes no room.
func TestUploadSessionCaps(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		s := b.server(t, func(o *registry.Options) { o.MaxUploadsPerRepo = 5; o.MaxUploads = 8 })
		open := func(repo string) string {
			t.Helper()
			r := s.do("POST", "/v2/"+repo+"/blobs/uploads/", nil)
			expect(t, r, http.StatusAccepted)
			return r.Header.Get("Location")
		}
		early, whole := open("a"), open("a")
		for range 20 {
			open("a") // sessions without bytes: no room taken
		}
		var locs []string
		for range 5 {
			loc := open("a")
			expect(t, s.do("PATCH", loc, []byte("x")), http.StatusAccepted)
			locs = append(locs, loc)
		}
		r := s.do("POST", "/v2/a/blobs/uploads/", nil)
		expect(t, r, http.StatusTooManyRequests, "TOOMANYREQUESTS")
		if !strings.Contains(string(r.body), "cancel") {
			t.Fatalf("the refusal does not say what to do: %s", r.body)
		}
		r = s.do("PATCH", early, []byte("x"))
		expect(t, r, http.StatusTooManyRequests, "TOOMANYREQUESTS")
		// Refused, the session is still open and still empty.
		expect(t, s.do("GET", early, nil), http.StatusNoContent)
		// A monolithic push, or a PUT carrying the whole blob, leaves no
		// session behind, and still works.
		s.pushBlob("a", []byte("small"))
		blob := []byte("whole")
		expect(t, s.do("PUT", whole+"?digest="+sha256Of(blob), blob), http.StatusCreated)
		expect(t, s.do("DELETE", locs[0], nil), http.StatusNoContent)
		open("a") // room again, at once: the POST is told the counts as they are now
		expect(t, s.do("PATCH", early, []byte("x")), http.StatusAccepted)
		for range 3 {
			expect(t, s.do("PATCH", open("b"), []byte("x")), http.StatusAccepted)
		}
		expect(t, s.do("POST", "/v2/c/blobs/uploads/", nil), http.StatusTooManyRequests, "TOOMANYREQUESTS")
	})
}

// countingBackend counts reads of staged upload bytes: the re-hashing
// that a lost hash state costs.
type countingBackend struct {
	blobstore.Backend
	reads atomic.Int64
}

func (c *countingBackend) OpenUpload(ctx context.Context, id string) (io.ReadCloser, error) {
	c.reads.Add(1)
	return c.Backend.OpenUpload(ctx, id)
}

// TestCutPatchNeedsNoRehash: a PATCH cut off midway leaves the upload as
// it was, and the next one continues from the kept hash state without
// re-reading what was staged.
func TestCutPatchNeedsNoRehash(t *testing.T) {
	s0 := newServer(t)
	cb := &countingBackend{Backend: s0.blobs.Backend()}
	s := serveOn(t, nil, cb, func(o *registry.Options) { o.BodyIdleTimeout = 300 * time.Millisecond })
	first := randomBytes(t, 1<<20)
	r := s.do("POST", "/v2/r/blobs/uploads/", nil)
	loc := r.Header.Get("Location")
	expect(t, s.do("PATCH", loc, first), http.StatusAccepted)
	// Cut by the client going away, then by stalling.
	c := stallPatch(t, s, loc, 200_000, 1<<20)
	time.Sleep(100 * time.Millisecond)
	c.Close()
	c = stallPatch(t, s, loc, 200_000, 1<<20)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("stalled PATCH: %v %v", resp, err)
	}
	var st response
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		st = s.do("GET", loc, nil)
		if st.Header.Get("Range") == fmt.Sprintf("0-%d", len(first)-1) || time.Now().After(deadline) {
			break
		}
	}
	expect(t, st, http.StatusNoContent)
	if st.Header.Get("Range") != fmt.Sprintf("0-%d", len(first)-1) {
		t.Fatalf("after cut PATCHes the upload reports Range %q", st.Header.Get("Range"))
	}
	second := randomBytes(t, 1000)
	expect(t, s.do("PATCH", loc, second), http.StatusAccepted)
	all := append(first, second...)
	expect(t, s.do("PUT", loc+"?digest="+sha256Of(all), nil), http.StatusCreated)
	if n := cb.reads.Load(); n != 0 {
		t.Fatalf("the staged bytes were re-read %d times after cut PATCHes", n)
	}
	got := s.do("GET", "/v2/r/blobs/"+blake3Of(all), nil)
	expect(t, got, http.StatusOK)
	if string(got.body) != string(all) {
		t.Fatal("the blob differs from what was pushed")
	}
}

// TestHashStatesBounded: many idle sessions do not each keep hash state in
// memory; a session whose state was evicted still finishes correctly.
func TestHashStatesBounded(t *testing.T) {
	s := newServer(t, func(o *registry.Options) { o.MaxUploadsPerRepo = 2000 })
	first := s.do("POST", "/v2/r/blobs/uploads/", nil).Header.Get("Location")
	expect(t, s.do("PATCH", first, []byte("first bytes")), http.StatusAccepted)
	for range 1100 {
		loc := s.do("POST", "/v2/r/blobs/uploads/", nil).Header.Get("Location")
		expect(t, s.do("PATCH", loc, []byte("x")), http.StatusAccepted)
	}
	if n := s.blobs.States(); n > 1024 {
		t.Fatalf("%d upload hash states in memory, want at most 1024", n)
	}
	expect(t, s.do("PATCH", first, []byte(" and more")), http.StatusAccepted)
	expect(t, s.do("PUT", first+"?digest="+blake3Of([]byte("first bytes and more")), nil), http.StatusCreated)
}

// TestCrashBetweenCommitAndEvent: a session whose bytes were committed but
// whose upload.finished was never recorded (a crash in between) is closed
// by the janitor's first pass, and its status never names a server path.
func TestCrashBetweenCommitAndEvent(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		s := b.server(t)
		data := randomBytes(t, 3000)
		loc := s.do("POST", "/v2/r/blobs/uploads/", nil).Header.Get("Location")
		expect(t, s.do("PATCH", loc, data), http.StatusAccepted)
		id := loc[strings.LastIndex(loc, "/")+1:]
		// What a PUT does before its event: the bytes go under their key.
		if _, err := s.blobs.CommitUpload(context.Background(), id, blobstoreDigest(sha256Of(data))); err != nil {
			t.Fatal(err)
		}
		if _, err := s.reg.ExpireUploads(context.Background(), time.Now()); err != nil {
			t.Fatal(err)
		}
		r := s.do("GET", loc, nil)
		expect(t, r, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
		if strings.Contains(string(r.body), "/tmp") || strings.Contains(string(r.body), "uploads/") {
			t.Fatalf("the status names a server path: %s", r.body)
		}
		// The client starts again; the bytes are stored once.
		s.pushBlob("r", data)
		expect(t, s.do("GET", "/v2/r/blobs/"+sha256Of(data), nil), http.StatusOK)
	})
}

func blobstoreDigest(s string) digest.Digest { return digest.Digest(s) }

// TestEmptySessionsExpireSoon: a recorded session that holds no byte (its
// first chunk was refused) does not hold the caps for the whole upload
// TTL; sessions never recorded hold nothing at all.
func TestEmptySessionsExpireSoon(t *testing.T) {
	s := newServer(t, func(o *registry.Options) { o.MaxUploads = 3; o.UploadTTL = 24 * time.Hour })
	var locs []string
	for range 3 {
		locs = append(locs, s.do("POST", "/v2/r/blobs/uploads/", nil).Header.Get("Location"))
	}
	expect(t, s.do("PATCH", locs[0], []byte("some")), http.StatusAccepted)
	for _, loc := range locs[1:] {
		r := s.do("PATCH", loc, []byte("late"), "Content-Range: 10-13")
		expect(t, r, http.StatusRequestedRangeNotSatisfiable, "BLOB_UPLOAD_INVALID")
	}
	expect(t, s.do("POST", "/v2/other/blobs/uploads/", nil), http.StatusTooManyRequests, "TOOMANYREQUESTS")
	n, err := s.reg.ExpireUploads(context.Background(), time.Now().Add(16*time.Minute))
	if err != nil || n != 2 {
		t.Fatalf("expired %d (%v), want the 2 empty sessions", n, err)
	}
	expect(t, s.do("GET", locs[0], nil), http.StatusNoContent) // the one with bytes stays
	expect(t, s.do("POST", "/v2/other/blobs/uploads/", nil), http.StatusAccepted)
}

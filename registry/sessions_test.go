package registry_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/artifact-store/artifact-store/eventlog"
	"github.com/artifact-store/artifact-store/registry"
)

// eventTypes returns the types of the events after seq.
func eventTypes(t *testing.T, l *eventlog.Log, after int64) []string {
	t.Helper()
	var out []string
	err := l.Events(context.Background(), after, func(e eventlog.Event) error {
		out = append(out, string(e.Type))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestUnrecordedSessions: a session is recorded with its first bytes (ADR
// 0018). Until then it is only its id: valid in its own repository, until
// it ends or expires, and for nothing else.
func TestUnrecordedSessions(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		s := b.server(t)
		ctx := context.Background()
		open := func(repo string) string {
			t.Helper()
			r := s.do("POST", "/v2/"+repo+"/blobs/uploads/", nil)
			expect(t, r, http.StatusAccepted)
			return r.Header.Get("Location")
		}
		head := func() int64 {
			h, err := s.log.Head(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return h
		}
		gone := func(loc, why string) {
			t.Helper()
			for _, m := range []string{"GET", "PATCH", "PUT", "DELETE"} {
				r := s.do(m, loc+"?digest="+sha256Of([]byte("b")), []byte("b"))
				if r.StatusCode != http.StatusNotFound || r.errCode() != "BLOB_UPLOAD_UNKNOWN" {
					t.Fatalf("%s: %s %s: %d %s, want 404 BLOB_UPLOAD_UNKNOWN", why, m, loc, r.StatusCode, r.body)
				}
			}
		}

		// Opening a session records nothing, yet it is open.
		before := head()
		loc := open("a")
		if h := head(); h != before {
			t.Fatalf("a POST recorded %v", eventTypes(t, s.log, before))
		}
		r := s.do("GET", loc, nil)
		expect(t, r, http.StatusNoContent)
		if r.Header.Get("Range") != "0-0" || r.Header.Get("Location") != loc {
			t.Fatalf("status of a new session: Range %q, Location %q", r.Header.Get("Range"), r.Header.Get("Location"))
		}
		// An empty PATCH keeps nothing and records nothing.
		expect(t, s.do("PATCH", loc, []byte{}), http.StatusAccepted)
		if h := head(); h != before {
			t.Fatalf("an empty PATCH recorded %v", eventTypes(t, s.log, before))
		}

		// Only in its own repository.
		other := strings.Replace(loc, "/v2/a/", "/v2/b/", 1)
		gone(other, "another repository's session")
		// Ids the registry did not issue: altered, cut short, made up.
		id := loc[strings.LastIndex(loc, "/")+1:]
		flipped := map[byte]byte{'0': '1', '1': '0'}
		alt := []byte(id)
		last := alt[len(alt)-1]
		if f, ok := flipped[last]; ok {
			alt[len(alt)-1] = f
		} else {
			alt[len(alt)-1] = '0'
		}
		gone(strings.TrimSuffix(loc, id)+string(alt), "an altered id")
		gone(strings.TrimSuffix(loc, id)+id[:32], "a shortened id")
		gone("/v2/a/blobs/uploads/00112233445566778899aabbccddeeff", "an id of the old format, never recorded")

		// A PUT carrying the whole blob: one append, no upload.started.
		blob := []byte("a whole small blob")
		before = head()
		r = s.do("PUT", loc+"?digest="+sha256Of(blob), blob)
		expect(t, r, http.StatusCreated)
		types := strings.Join(eventTypes(t, s.log, before), " ")
		if strings.Contains(types, "upload.started") || !strings.HasSuffix(types, "upload.finished") {
			t.Fatalf("events of a whole PUT: %s", types)
		}
		if got := s.do("GET", "/v2/a/blobs/"+sha256Of(blob), nil); string(got.body) != string(blob) {
			t.Fatalf("the blob reads back as %q", got.body)
		}
		gone(loc, "a finished session")

		// Cancelled before any byte: its id does not serve again.
		loc = open("a")
		expect(t, s.do("DELETE", loc, nil), http.StatusNoContent)
		gone(loc, "a cancelled session")

		// A wrong digest ends the session, as on the staged path.
		loc = open("a")
		r = s.do("PUT", loc+"?digest="+sha256Of([]byte("other")), blob)
		expect(t, r, http.StatusBadRequest, "DIGEST_INVALID")
		gone(loc, "a session whose digest did not match")

		// The empty blob, whole: one append too.
		loc = open("a")
		before = head()
		expect(t, s.do("PUT", loc+"?digest="+sha256Of(nil), nil), http.StatusCreated)
		if types := strings.Join(eventTypes(t, s.log, before), " "); strings.Contains(types, "upload.started") {
			t.Fatalf("events of an empty whole PUT: %s", types)
		}
		gone(loc, "a session finished with the empty blob")

		// A crash between making a session's staging area and recording
		// the session leaves the area behind; the id stays valid, and its
		// next first bytes start afresh.
		loc = open("a")
		id = loc[strings.LastIndex(loc, "/")+1:]
		if err := s.blobs.CreateUpload(ctx, id); err != nil {
			t.Fatal(err)
		}
		if _, err := s.blobs.AppendUpload(ctx, id, 0, strings.NewReader("left by a crash")); err != nil {
			t.Fatal(err)
		}
		r = s.do("PATCH", loc, []byte("fresh"))
		expect(t, r, http.StatusAccepted)
		if r.Header.Get("Range") != "0-4" {
			t.Fatalf("after a leftover staging area: Range %q, want 0-4", r.Header.Get("Range"))
		}
		expect(t, s.do("PUT", r.Header.Get("Location")+"?digest="+sha256Of([]byte("fresh")), nil), http.StatusCreated)

		// Chunks: the first PATCH records the session.
		loc = open("a")
		before = head()
		r = s.do("PATCH", loc, []byte("chunk one,"))
		expect(t, r, http.StatusAccepted)
		if types := eventTypes(t, s.log, before); len(types) != 1 || types[0] != "upload.started" {
			t.Fatalf("events of a first PATCH: %v", types)
		}
		loc = r.Header.Get("Location")
		expect(t, s.do("PATCH", loc, []byte(" chunk two")), http.StatusAccepted)
		all := []byte("chunk one, chunk two")
		expect(t, s.do("PUT", loc+"?digest="+sha256Of(all), nil), http.StatusCreated)
		gone(loc, "a finished recorded session")
	})
}

// TestUnrecordedSessionsExpire: an id nobody used stops being a session
// when the upload TTL (at most 15 minutes for sessions without bytes)
// has passed.
func TestUnrecordedSessionsExpire(t *testing.T) {
	s := newServer(t, func(o *registry.Options) { o.UploadTTL = 2 * time.Second })
	r := s.do("POST", "/v2/a/blobs/uploads/", nil)
	expect(t, r, http.StatusAccepted)
	loc := r.Header.Get("Location")
	expect(t, s.do("GET", loc, nil), http.StatusNoContent)
	time.Sleep(3 * time.Second)
	expect(t, s.do("GET", loc, nil), http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
	expect(t, s.do("PATCH", loc, []byte("late")), http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
}

// TestUnrecordedSessionsAcrossReplicas: an id one replica issued is a
// session on another (the key is shared through the database), and once
// one replica has finished it, no replica takes it again.
func TestUnrecordedSessionsAcrossReplicas(t *testing.T) {
	_, direct := replicas(t, 2)
	a, b := direct[0], direct[1]
	r := a.do("POST", "/v2/x/blobs/uploads/", nil)
	expect(t, r, http.StatusAccepted)
	loc := r.Header.Get("Location")
	expect(t, b.do("GET", loc, nil), http.StatusNoContent)
	blob := []byte("crossed replicas")
	expect(t, b.do("PUT", loc+"?digest="+sha256Of(blob), blob), http.StatusCreated)
	expect(t, a.do("PUT", loc+"?digest="+sha256Of(blob), blob), http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
	expect(t, a.do("GET", loc, nil), http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
	// PUTs racing on one session over both replicas: one wins.
	for round := range 5 {
		r := a.do("POST", "/v2/x/blobs/uploads/", nil)
		expect(t, r, http.StatusAccepted)
		racePuts(t, []string{a.url, b.url}, r.Header.Get("Location"), []byte(fmt.Sprintf("raced across %d", round)))
	}
}

// TestWholePutWithoutLease: a PUT that carries a whole small blob ends a
// session never recorded without taking its lease (ADR 0021). What the
// lease guarded still holds: a session a PATCH recorded first is finished
// as a recorded one, with the PUT's bytes after the PATCH's, and of PUTs
// racing on one session exactly one is answered 201, on one replica or on
// several.
func TestWholePutWithoutLease(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		s := b.server(t)
		r := s.do("POST", "/v2/a/blobs/uploads/", nil)
		expect(t, r, http.StatusAccepted)
		r = s.do("PATCH", r.Header.Get("Location"), []byte("chunk one,"))
		expect(t, r, http.StatusAccepted)
		all := []byte("chunk one, chunk two")
		expect(t, s.do("PUT", r.Header.Get("Location")+"?digest="+sha256Of(all), []byte(" chunk two")), http.StatusCreated)
		if got := s.do("GET", "/v2/a/blobs/"+sha256Of(all), nil); string(got.body) != string(all) {
			t.Fatalf("a recorded session finished by a PUT with bytes reads back as %q, want %q", got.body, all)
		}
		// Recorded by a PATCH cut before its first byte, the session holds
		// nothing: a PUT with the whole blob is refused the unleased way
		// and finished the leased way, with the bytes it had read.
		r = s.do("POST", "/v2/a/blobs/uploads/", nil)
		expect(t, r, http.StatusAccepted)
		loc := r.Header.Get("Location")
		before, _ := s.log.Head(context.Background())
		c, err := net.Dial("tcp", strings.TrimPrefix(s.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("PATCH " + loc + " HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"))
		for deadline := time.Now().Add(10 * time.Second); !slices.Contains(eventTypes(t, s.log, before), "upload.started"); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("a PATCH with a body to come did not record its session")
			}
		}
		c.Close()
		blob := []byte("whole, after a cut PATCH")
		expect(t, s.do("PUT", loc+"?digest="+sha256Of(blob), blob), http.StatusCreated)
		if got := s.do("GET", "/v2/a/blobs/"+sha256Of(blob), nil); string(got.body) != string(blob) {
			t.Fatalf("the blob reads back as %q, want %q", got.body, blob)
		}
		for round := range 5 {
			r := s.do("POST", "/v2/a/blobs/uploads/", nil)
			expect(t, r, http.StatusAccepted)
			racePuts(t, []string{s.url}, r.Header.Get("Location"), []byte(fmt.Sprintf("raced %d", round)))
		}
	})
}

// racePuts sends 8 PUTs of blob to session loc at once, spread over the
// servers, and checks that one is answered 201 and the others 404
// BLOB_UPLOAD_UNKNOWN.
func racePuts(t *testing.T, servers []string, loc string, blob []byte) {
	t.Helper()
	const n = 8
	codes := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("PUT", servers[i%len(servers)]+loc+"?digest="+sha256Of(blob), bytes.NewReader(blob))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				codes[i] = err.Error()
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			codes[i] = fmt.Sprint(resp.StatusCode)
			if resp.StatusCode == http.StatusNotFound && !strings.Contains(string(body), "BLOB_UPLOAD_UNKNOWN") {
				codes[i] += " " + string(body)
			}
		}()
	}
	wg.Wait()
	slices.Sort(codes)
	want := append([]string{"201"}, slices.Repeat([]string{"404"}, n-1)...)
	if !slices.Equal(codes, want) {
		t.Fatalf("answers to %d PUTs racing on one session: %q, want one 201 and the others 404 BLOB_UPLOAD_UNKNOWN", n, codes)
	}
}

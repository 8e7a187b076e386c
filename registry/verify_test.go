package registry_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	blobfs "github.com/artifact-store/artifact-store/blobstore/fs"
	"github.com/artifact-store/artifact-store/eventlog"
	"github.com/artifact-store/artifact-store/eventlog/postgres"
	"github.com/artifact-store/artifact-store/eventlog/postgres/pgtest"
	"github.com/artifact-store/artifact-store/eventlog/sqlite"
	"github.com/artifact-store/artifact-store/registry"
)

// scratchLog is an empty SQLite log for Verify to rebuild the views in.
func scratchLog(t testing.TB) *eventlog.Log {
	t.Helper()
	l, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "scratch.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// rawServer is a server whose database the test can also edit by hand,
// as an operator (or an intruder) with database access would, and whose
// blob files it can damage.
type rawServer struct {
	*testServer
	db    *sql.DB
	blobs string // the filesystem blob store's root
	logs  *syncBuffer
}

// rawServerOn starts a registry over a fresh log of backend name and a
// filesystem blob store, with a second connection to the same database.
func rawServerOn(t *testing.T, name string) *rawServer {
	t.Helper()
	ctx := context.Background()
	var l *eventlog.Log
	var db *sql.DB
	var err error
	switch name {
	case "sqlite":
		path := filepath.Join(t.TempDir(), "log.db")
		if l, err = sqlite.Open(ctx, path, sqlite.Options{}); err == nil {
			db, err = sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
		}
	case "postgres":
		dsn := pgtest.DSN(t)
		if l, err = postgres.Open(ctx, dsn, postgres.Options{}); err == nil {
			db, err = sql.Open("pgx", dsn)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close(); l.Close() })
	root := filepath.Join(t.TempDir(), "blobs")
	fsb, err := blobfs.New(root)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	s := serveOn(t, l, fsb, func(o *registry.Options) { o.Logger = slog.New(slog.NewTextHandler(logs, nil)) })
	return &rawServer{testServer: s, db: db, blobs: root, logs: logs}
}

// forRawBackends runs fn on SQLite and PostgreSQL.
func forRawBackends(t *testing.T, fn func(t *testing.T, s *rawServer)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { fn(t, rawServerOn(t, b.name)) })
	}
}

// exec runs SQL by hand; the statements are literal (no placeholders, which
// differ between the backends).
func (s *rawServer) exec(query string) {
	s.t.Helper()
	if _, err := s.db.Exec(query); err != nil {
		s.t.Fatalf("%s: %v", query, err)
	}
}

func (s *rawServer) verify(quarantine bool) registry.VerifyReport {
	s.t.Helper()
	rep, err := registry.Verify(context.Background(), s.log, s.testServer.blobs, registry.VerifyOptions{Scratch: scratchLog(s.t), Quarantine: quarantine})
	if err != nil {
		s.t.Fatalf("verify: %v", err)
	}
	return rep
}

// problemsWith returns the problems that contain every one of parts.
func problemsWith(rep registry.VerifyReport, parts ...string) []string {
	var out []string
next:
	for _, p := range rep.Problems {
		for _, part := range parts {
			if !strings.Contains(p, part) {
				continue next
			}
		}
		out = append(out, p)
	}
	return out
}

func (s *rawServer) blobPath(d string) string {
	hex := strings.TrimPrefix(d, "sha256:")
	return filepath.Join(s.blobs, "sha256", hex[:2], hex)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestVerifyFindsViewsEditedByHand: rows the API serves but the log does
// not produce — a tag moved in the database, a blob linked into another
// repository — are each reported with their table, key and both values;
// a clean store has no problems.
func TestVerifyFindsViewsEditedByHand(t *testing.T) {
	forRawBackends(t, func(t *testing.T, s *rawServer) {
		_, d1 := s.pushImage("a", "v1", "")
		_, d2 := s.pushImage("a", "v2", "")
		secret := randomBytes(t, 500)
		sd := s.pushBlob("b", secret)
		if rep := s.verify(false); len(rep.Problems) != 0 || rep.ViewsAt == 0 {
			t.Fatalf("clean store: %+v", rep)
		}

		// Move a tag by hand: the API now serves the other manifest.
		s.exec(fmt.Sprintf(`UPDATE tags SET digest = '%s' WHERE repo = 'a' AND tag = 'v1'`, d2))
		if got := s.do("GET", "/v2/a/manifests/v1", nil).Header.Get("Docker-Content-Digest"); got != d2 {
			t.Fatalf("the edit is not served (%s): the test proves nothing", got)
		}
		// Link b's blob into a by hand: a now serves it.
		s.exec(fmt.Sprintf(`INSERT INTO blob_links (repo, sha256, seq) VALUES ('a', '%s', 1)`, sd))
		expect(t, s.do("GET", "/v2/a/blobs/"+sd, nil), http.StatusOK)
		// And drop a row the log produces.
		s.exec(`DELETE FROM repositories WHERE name = 'b'`)

		rep := s.verify(false)
		if p := problemsWith(rep, "view tags", "repo=a tag=v1", "digest="+d2, "digest="+d1); len(p) != 1 {
			t.Errorf("the moved tag is not reported with both digests: %q", rep.Problems)
		}
		if p := problemsWith(rep, "view blob_links", "repo=a sha256="+sd, "not produced by the log"); len(p) != 1 {
			t.Errorf("the hand-made link is not reported: %q", rep.Problems)
		}
		if p := problemsWith(rep, "view repositories", "name=b", "missing"); len(p) != 1 {
			t.Errorf("the deleted repository row is not reported: %q", rep.Problems)
		}
		if len(rep.Problems) != 3 {
			t.Errorf("%d problems, want exactly the 3 edits: %q", len(rep.Problems), rep.Problems)
		}
		// Replay repairs the views; verify is clean again.
		if _, err := s.log.Replay(context.Background()); err != nil {
			t.Fatal(err)
		}
		if rep := s.verify(false); len(rep.Problems) != 0 {
			t.Fatalf("after replay: %q", rep.Problems)
		}
		expect(t, s.do("GET", "/v2/a/blobs/"+sd, nil), http.StatusNotFound, "BLOB_UNKNOWN")
	})
}

// TestVerifyFailsWhenTheLogLosesItsAnchoredHead: events removed from the
// log's tail leave a valid chain; the anchor in the blob store is what
// shows them gone. A server then keeps the old anchor as evidence.
func TestVerifyFailsWhenTheLogLosesItsAnchoredHead(t *testing.T) {
	forRawBackends(t, func(t *testing.T, s *rawServer) {
		ctx := context.Background()
		if _, ok := s.reg.Anchor(); ok {
			t.Fatal("an anchor before any was written")
		}
		s.pushImage("a", "v1", "")
		a, err := s.reg.WriteAnchor(ctx)
		if err != nil || a.Seq == 0 {
			t.Fatalf("write anchor: %+v %v", a, err)
		}
		if got, ok := s.reg.Anchor(); !ok || got != a {
			t.Fatalf("Anchor() = %+v %v, want %+v", got, ok, a)
		}
		if want := fmt.Sprintf("anchored event log head\" seq=%d hash=%s", a.Seq, a.Hash); !strings.Contains(s.logs.String(), want) {
			t.Fatalf("the server log does not show the anchor (%s):\n%s", want, s.logs.String())
		}
		rep := s.verify(false)
		if len(rep.Problems) != 0 || rep.Anchor == nil || *rep.Anchor != a {
			t.Fatalf("clean store with an anchor: %+v", rep)
		}
		// An intruder (or an old backup) drops the last two events and the
		// rows they produced: the chain is still whole.
		s.exec(fmt.Sprintf(`DELETE FROM events WHERE seq > %d`, a.Seq-2))
		if _, err := s.log.Replay(ctx); err != nil {
			t.Fatal(err)
		}
		rep = s.verify(false)
		want := fmt.Sprintf("names event %d (hash %s), but the log ends at event %d", a.Seq, a.Hash, a.Seq-2)
		if p := problemsWith(rep, want); len(p) != 1 || len(rep.Problems) != 1 {
			t.Fatalf("verify after removing the tail: %q, want one problem with %q", rep.Problems, want)
		}
		// New pushes must not hide it: the server keeps the old anchor.
		s.pushBlob("a", randomBytes(t, 10))
		s.pushBlob("a", randomBytes(t, 10))
		if _, err := s.reg.WriteAnchor(ctx); err == nil {
			t.Fatal("the server re-anchored a log that lost its anchored head")
		}
		if rep := s.verify(false); len(problemsWith(rep, fmt.Sprintf("names event %d", a.Seq))) != 1 {
			t.Fatalf("after new pushes over the rolled-back log: %q", rep.Problems)
		}
	})
}

// TestDamagedBlobIsNotServedAndARePushRepairsIt: a truncated blob file is
// refused on open, never served under its recorded digest and length; a
// re-push of the right bytes replaces it. A same-size corruption (found
// only by re-hashing) is quarantined by verify and repaired the same way.
// The blobs are pushed through upload sessions, which store them as files
// whatever their size.
func TestDamagedBlobIsNotServedAndARePushRepairsIt(t *testing.T) {
	forRawBackends(t, func(t *testing.T, s *rawServer) {
		for _, size := range []int{1000, 200_000} { // one read, and ServeContent
			t.Run(fmt.Sprint(size), func(t *testing.T) { testDamagedBlob(t, s, size) })
		}
	})
}

func testDamagedBlob(t *testing.T, s *rawServer, size int) {
	s.t = t
	data := randomBytes(t, size)
	d := s.pushBlobInSession("r", data)
	path := s.blobPath(d)
	damagedAnswer := func(why string) {
		t.Helper()
		r := s.do2("GET", "/v2/r/blobs/"+d, nil)
		if r.StatusCode != http.StatusInternalServerError || !strings.Contains(string(r.body), "damaged") || !strings.Contains(string(r.body), why) {
			t.Fatalf("GET of a damaged blob: %d %s", r.StatusCode, r.body)
		}
		if cl := r.Header.Get("Content-Length"); cl == fmt.Sprint(size) {
			t.Fatalf("a damaged blob answered with its recorded Content-Length %s", cl)
		}
		for _, h := range []string{"Docker-Content-Digest", "ETag", "Cache-Control"} {
			if v := r.Header.Get(h); v != "" {
				t.Fatalf("a damaged blob's error carries %s: %s", h, v)
			}
		}
		// Its manifest-like read by the native API is refused alike.
		if r := s.do2("GET", "/api/v1/repositories/r/-/blobs/"+d, nil); r.StatusCode != http.StatusInternalServerError || r.Header.Get("Repr-Digest") != "" {
			t.Fatalf("native GET of a damaged blob: %d %v", r.StatusCode, r.Header)
		}
	}
	servedWhole := func() {
		t.Helper()
		r := s.do("GET", "/v2/r/blobs/"+d, nil)
		expect(t, r, http.StatusOK)
		if !bytes.Equal(r.body, data) {
			t.Fatalf("GET after repair: %d bytes, want the %d pushed", len(r.body), size)
		}
	}

	// Truncated: refused on open, and a re-push replaces it.
	if err := os.Truncate(path, int64(size/2)); err != nil {
		t.Fatal(err)
	}
	damagedAnswer(fmt.Sprintf("stored size %d, recorded %d", size/2, size))
	if !strings.Contains(s.logs.String(), "damaged blob refused") {
		t.Fatal("the refusal is not in the server log")
	}
	if rep := s.verify(false); len(problemsWith(rep, "blob "+d, fmt.Sprintf("size is %d, recorded %d", size/2, size))) != 1 {
		t.Fatalf("verify of a truncated blob: %q", rep.Problems)
	}
	s.pushBlobInSession("r", data)
	servedWhole()

	// Same size, one byte flipped: only a re-hash sees it. verify
	// --quarantine moves it aside; the API then says it is damaged.
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte{data[size/3] ^ 0xff}, int64(size/3))
	f.Close()
	rep := s.verify(true)
	if len(problemsWith(rep, "blob "+d, "corrupted", "moved to quarantine")) != 1 || len(rep.Quarantined) != 1 || rep.Quarantined[0] != d {
		t.Fatalf("verify --quarantine of a corrupted blob: %+v", rep)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("the quarantined blob is still in place: %v", err)
	}
	damagedAnswer("quarantined")
	if rep := s.verify(false); len(problemsWith(rep, "blob "+d, "quarantined as damaged")) != 1 || len(rep.Problems) != 1 {
		t.Fatalf("verify after quarantine: %q", rep.Problems)
	}
	s.pushBlobInSession("r", data)
	servedWhole()
	if rep := s.verify(false); len(rep.Problems) != 0 {
		t.Fatalf("verify after the repair: %q", rep.Problems)
	}
}

// TestVerifyBesideConcurrentPushes: views compared at one snapshot, with
// the replay stopped at that snapshot's head, agree while pushes keep
// appending; a comparison of moving views would report rows as missing.
func TestVerifyBesideConcurrentPushes(t *testing.T) {
	forRawBackends(t, func(t *testing.T, s *rawServer) {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := 0; w < 2; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					p := randomBytes(t, 100)
					d := sha256Of(p)
					req, _ := http.NewRequest("POST", s.url+fmt.Sprintf("/v2/c%d/blobs/uploads/?digest=%s", i%3, d), bytes.NewReader(p))
					if resp, err := http.DefaultClient.Do(req); err == nil {
						resp.Body.Close()
					}
				}
			}()
		}
		var last int64
		for i := 0; i < 5; i++ {
			rep, err := registry.Verify(context.Background(), s.log, s.testServer.blobs, registry.VerifyOptions{Scratch: scratchLog(t)})
			if err != nil || len(rep.Problems) != 0 {
				close(stop)
				wg.Wait()
				t.Fatalf("verify beside pushes: %v %q", err, rep.Problems)
			}
			last = rep.ViewsAt
		}
		close(stop)
		wg.Wait()
		if last == 0 {
			t.Fatal("no pushes landed while verifying: the test proves nothing")
		}
		t.Logf("last comparison at event %d", last)
	})
}

// TestDamagedManifestIsNotServed: a manifest whose stored bytes were cut
// short or altered is refused, never sent with its recorded length, on
// /v2/ and through the native view of its tag: one kept in the log (its
// contents row edited by hand) and one too large for that (a file). A
// push of the same manifest repairs the row.
func TestDamagedManifestIsNotServed(t *testing.T) {
	forRawBackends(t, func(t *testing.T, s *rawServer) {
		s.t = t
		refused := func(tag, md string) {
			t.Helper()
			for _, u := range []string{"/v2/r/manifests/" + tag, "/v2/r/manifests/" + md, "/api/v1/repositories/r/-/versions/" + tag} {
				r := s.do2("GET", u, nil, "Accept: "+ociManifest)
				if r.StatusCode != http.StatusInternalServerError || !strings.Contains(string(r.body), "damaged") || r.Header.Get("Docker-Content-Digest") != "" {
					t.Fatalf("GET %s of a damaged manifest: %d %v %s", u, r.StatusCode, r.Header, r.body)
				}
			}
		}
		m, md := s.pushImage("r", "1", "")
		s.exec(fmt.Sprintf(`UPDATE contents SET bytes = substr(bytes, 1, %d) WHERE sha256 = '%s'`, len(m)/2, md))
		refused("1", md)
		if rep := s.verify(false); len(problemsWith(rep, "blob "+md, "kept in the log is damaged", fmt.Sprintf("size is %d", len(m)/2))) != 1 {
			t.Fatalf("verify of a truncated contents row: %q", rep.Problems)
		}
		expect(t, s.do("PUT", "/v2/r/manifests/1", m, "Content-Type: "+ociManifest), http.StatusCreated)
		if r := s.do("GET", "/v2/r/manifests/1", nil, "Accept: "+ociManifest); !bytes.Equal(r.body, m) {
			t.Fatalf("manifest after a push repaired it: %d %s", r.StatusCode, r.body)
		}
		// The same length, the bytes rotated by one: the manifest read
		// hashes them.
		s.reg.ForgetManifests()
		s.exec(fmt.Sprintf(`UPDATE contents SET bytes = substr(bytes, 2) || substr(bytes, 1, 1) WHERE sha256 = '%s'`, md))
		refused("1", md)
		if rep := s.verify(false); len(problemsWith(rep, "blob "+md, "kept in the log is damaged", "corrupted")) != 1 {
			t.Fatalf("verify of a corrupted contents row: %q", rep.Problems)
		}

		pad := strings.Repeat("p", registry.DefaultInlineMax)
		big, bd := s.pushImage("r", "2", `,"annotations":{"pad":"`+pad+`"}`)
		if err := os.Truncate(s.blobPath(bd), int64(len(big)/2)); err != nil {
			t.Fatal(err)
		}
		refused("2", bd)
	})
}

// pushBlobInSession pushes p through an upload session (POST, PATCH,
// PUT), which stores it as a file whatever its size, and returns its
// sha256 digest.
func (s *testServer) pushBlobInSession(repo string, p []byte) string {
	s.t.Helper()
	d := sha256Of(p)
	open := s.do("POST", "/v2/"+repo+"/blobs/uploads/", nil)
	expect(s.t, open, http.StatusAccepted)
	loc := open.Header.Get("Location")
	patch := s.do("PATCH", loc, p, fmt.Sprintf("Content-Range: 0-%d", len(p)-1))
	expect(s.t, patch, http.StatusAccepted)
	expect(s.t, s.do("PUT", withQuery(patch.Header.Get("Location"), "digest="+d), nil), http.StatusCreated)
	return d
}

package registry_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/artifact-store/artifact-store/blobstore"
	blobfs "github.com/artifact-store/artifact-store/blobstore/fs"
	"github.com/artifact-store/artifact-store/digest"
	"github.com/artifact-store/artifact-store/eventlog"
	"github.com/artifact-store/artifact-store/eventlog/sqlite"
	"github.com/artifact-store/artifact-store/registry"
)

// gcBackend is a combination of event log and blob stores the collector
// must be correct on.
type gcBackend struct {
	name   string
	server func(t *testing.T, mutate ...func(*registry.Options)) *testServer
}

var gcBackends = []gcBackend{
	{"sqlite+fs", func(t *testing.T, m ...func(*registry.Options)) *testServer { return backends[0].server(t, m...) }},
	{"postgres+fs", func(t *testing.T, m ...func(*registry.Options)) *testServer { return backends[1].server(t, m...) }},
	{"sqlite+s3", func(t *testing.T, m ...func(*registry.Options)) *testServer {
		_, b := startS3(t, "", 0)
		return serveOn(t, nil, b, m...)
	}},
	{"postgres+fs+cold-s3", func(t *testing.T, m ...func(*registry.Options)) *testServer {
		_, cold := startS3(t, "cold", 0)
		hot, err := blobfs.New(filepath.Join(t.TempDir(), "blobs"))
		if err != nil {
			t.Fatal(err)
		}
		l := backends[1].open(t)
		t.Cleanup(func() { l.Close() })
		return serveOn(t, l, hot, append([]func(*registry.Options){func(o *registry.Options) {
			o.Cold, o.Tiering = blobstore.New(cold), registry.TierPolicy{Grace: time.Millisecond}
		}}, m...)...)
	}},
}

func forGCBackends(t *testing.T, fn func(t *testing.T, b gcBackend)) {
	for _, b := range gcBackends {
		t.Run(b.name, func(t *testing.T) { fn(t, b) })
	}
}

// image is what pushLayers pushed: the manifest and its blobs' bytes.
type image struct {
	repo, digest string
	manifest     []byte
	blobs        map[string][]byte // digest -> bytes, config first
}

// pushLayers pushes an image whose layers are the given bytes (and a
// config of its own) under tag, and returns it.
func (s *testServer) pushLayers(repo, tag string, layers ...[]byte) image {
	s.t.Helper()
	img := image{repo: repo, blobs: map[string][]byte{}}
	cfg := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"tag":%q,"r":%q}`, tag, randomBytes(s.t, 8)))
	img.blobs[s.pushBlob(repo, cfg)] = cfg
	var descs []byte
	for i, l := range layers {
		d := s.pushBlob(repo, l)
		img.blobs[d] = l
		if i > 0 {
			descs = append(descs, ',')
		}
		descs = fmt.Appendf(descs, `{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":%q,"size":%d}`, d, len(l))
	}
	img.manifest = []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[%s]}`,
		sha256Of(cfg), len(cfg), descs))
	expect(s.t, s.do("PUT", "/v2/"+repo+"/manifests/"+tag, img.manifest, "Content-Type: application/vnd.oci.image.manifest.v1+json"), http.StatusCreated)
	img.digest = sha256Of(img.manifest)
	return img
}

// pullsWhole fails the test unless img pulls byte for byte.
func (s *testServer) pullsWhole(img image) {
	s.t.Helper()
	r := s.do("GET", "/v2/"+img.repo+"/manifests/"+img.digest, nil)
	if r.StatusCode != 200 || !bytes.Equal(r.body, img.manifest) {
		s.t.Fatalf("manifest %s of %s: %d", img.digest, img.repo, r.StatusCode)
	}
	for d, want := range img.blobs {
		r := s.do("GET", "/v2/"+img.repo+"/blobs/"+d, nil)
		if r.StatusCode != 200 || !bytes.Equal(r.body, want) {
			s.t.Fatalf("blob %s of %s: %d, %d bytes", d, img.repo, r.StatusCode, len(r.body))
		}
	}
}

// stored reports whether any of the server's stores holds key.
func (s *testServer) stored(key string) bool {
	if _, err := s.log.Content(context.Background(), key); err == nil {
		return true // kept in the log
	}
	for _, st := range []*blobstore.Store{s.blobs, s.cold} {
		if st == nil {
			continue
		}
		if _, err := st.Stat(context.Background(), digest.Digest(key)); err == nil {
			return true
		}
	}
	return false
}

// tier is the tier the blobs view records for key ("" when it has none).
func (s *testServer) tier(key string) string {
	b, err := s.log.Blob(context.Background(), key)
	if err != nil {
		return ""
	}
	return b.Tier
}

func digestsOf(bs []registry.GCBlob) []string {
	var out []string
	for _, b := range bs {
		out = append(out, b.Digest)
	}
	slices.Sort(out)
	return out
}

func linksOf(ls []registry.GCLink) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l.Repo+"@"+l.Digest)
	}
	slices.Sort(out)
	return out
}

// verifyClean runs verify and fails on any problem, unrecorded bytes or
// unused blob or link.
func (s *testServer) verifyClean() {
	s.t.Helper()
	rep, err := registry.Verify(context.Background(), s.log, s.blobs, registry.VerifyOptions{Cold: s.cold, Scratch: scratchLog(s.t)})
	if err != nil || len(rep.Problems) != 0 || rep.Orphans != 0 || rep.Unreferenced != 0 {
		s.t.Fatalf("verify: %v; problems %v; %d unrecorded, %d unreferenced", err, rep.Problems, rep.Orphans, rep.Unreferenced)
	}
}

// garbage is the fixture the collector tests share: image a:v1, with a
// layer it shares with b:v1, deleted; b:v1 kept; a stray blob in a. The
// layers are files in the blob store; the stray blob and the manifests
// are small enough to be kept in the log (ADR 0016).
type garbage struct {
	kept     image
	shared   string // the layer a and b share
	stray    string
	strayP   []byte
	swept    []string // the blobs a collection must delete, sorted
	unlinked []string // the links it must remove ("repo@digest"), sorted
}

func makeGarbage(t *testing.T, s *testServer) garbage {
	sharedP := randomBytes(t, registry.DefaultInlineMax+4000)
	g := garbage{shared: sha256Of(sharedP), strayP: randomBytes(t, 5000)}
	a := s.pushLayers("a", "v1", sharedP, randomBytes(t, registry.DefaultInlineMax+3000))
	g.kept = s.pushLayers("b", "v1", sharedP)
	g.stray = s.pushBlob("a", g.strayP)
	expect(t, s.do("DELETE", "/v2/a/manifests/"+a.digest, nil), http.StatusAccepted)
	g.swept = []string{a.digest, g.stray}
	g.unlinked = []string{"a@" + g.stray}
	for d := range a.blobs {
		g.unlinked = append(g.unlinked, "a@"+d)
		if d != g.shared {
			g.swept = append(g.swept, d)
		}
	}
	slices.Sort(g.swept)
	slices.Sort(g.unlinked)
	return g
}

// TestGCReclaimsDeletedImage: deleting an image and collecting gives back
// the space of what nothing else uses, on every backend combination; the
// dry run lists exactly what the run then removes; the image that shares
// a layer still pulls whole; a second run finds nothing; verify is clean.
func TestGCReclaimsDeletedImage(t *testing.T) {
	forGCBackends(t, func(t *testing.T, b gcBackend) {
		s := b.server(t)
		ctx := context.Background()
		g := makeGarbage(t, s)
		kept, wantSwept, wantUnlinked := g.kept, g.swept, g.unlinked
		if s.cold != nil {
			// Part of the garbage, and the layer b keeps, in the cold tier:
			// the files (what the log keeps has no tier to move to).
			var files []string
			for _, d := range wantSwept {
				if s.tier(d) == eventlog.TierHot {
					files = append(files, d)
				}
			}
			if len(files) != 1 || s.tier(g.stray) != eventlog.TierInline {
				t.Fatalf("garbage files %v; want one layer, and the stray blob kept in the log", files)
			}
			for _, d := range append(files, g.shared) {
				if err := s.reg.MoveBlob(ctx, d, eventlog.TierCold); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := s.reg.SweepMoved(ctx, time.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		var wantBytes int64
		for _, d := range wantSwept {
			b, err := s.log.Blob(ctx, d)
			if err != nil {
				t.Fatal(err)
			}
			wantBytes += b.Size
		}
		plan, err := s.reg.CollectGarbage(ctx, registry.GCOptions{DryRun: true})
		if err != nil {
			t.Fatal(err)
		}
		rep, err := s.reg.CollectGarbage(ctx, registry.GCOptions{})
		if err != nil {
			t.Fatal(err)
		}
		byDigest := func(a, b registry.GCBlob) int { return strings.Compare(a.Digest, b.Digest) }
		slices.SortFunc(plan.Swept, byDigest)
		slices.SortFunc(rep.Swept, byDigest)
		if !slices.Equal(plan.Swept, rep.Swept) {
			t.Fatalf("the dry run described %+v, the run swept %+v", plan.Swept, rep.Swept)
		}
		for _, r := range []registry.GCReport{plan, rep} {
			if got := digestsOf(r.Swept); !slices.Equal(got, wantSwept) {
				t.Fatalf("dry %v: swept %v, want %v", r.DryRun, got, wantSwept)
			}
			if got := linksOf(r.Unlinked); !slices.Equal(got, wantUnlinked) {
				t.Fatalf("dry %v: unlinked %v, want %v", r.DryRun, got, wantUnlinked)
			}
			if r.BytesFreed != wantBytes {
				t.Fatalf("dry %v: %d bytes freed, want %d", r.DryRun, r.BytesFreed, wantBytes)
			}
		}
		for _, d := range wantSwept {
			if s.stored(d) {
				t.Fatalf("%s is still stored after the collection", d)
			}
		}
		s.pullsWhole(kept)
		for _, l := range wantUnlinked {
			expect(t, s.do("GET", "/v2/a/blobs/"+l[2:], nil), http.StatusNotFound, "BLOB_UNKNOWN")
		}
		again, err := s.reg.CollectGarbage(ctx, registry.GCOptions{})
		if err != nil || len(again.Swept)+len(again.Unlinked) != 0 || again.BytesFreed != 0 {
			t.Fatalf("second collection: %+v, %v", again, err)
		}
		s.verifyClean()
		// Content collected can be pushed again, and is whole.
		s.pullsWhole(s.pushLayers("a", "v2", g.strayP))
	})
}

// TestGCGrace: links made or read within the grace, and unrecorded bytes
// younger than it, are spared; without grace they go. A HEAD renews a
// link's grace, as a client about to skip a layer relies on it.
func TestGCGrace(t *testing.T) {
	s := newServer(t)
	ctx := context.Background()
	stray := s.pushBlob("r", randomBytes(t, 1000))
	unrecorded, err := s.blobs.Ingest(ctx, bytes.NewReader(randomBytes(t, 2000)), "")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := s.reg.CollectGarbage(ctx, registry.GCOptions{Grace: time.Hour})
	if err != nil || len(rep.Unlinked)+len(rep.Swept) != 0 {
		t.Fatalf("within the grace: %+v, %v", rep, err)
	}
	time.Sleep(1100 * time.Millisecond)
	expect(t, s.do("HEAD", "/v2/r/blobs/"+stray, nil), http.StatusOK)
	rep, err = s.reg.CollectGarbage(ctx, registry.GCOptions{Grace: time.Second})
	if err != nil || len(rep.Unlinked) != 0 || !slices.Equal(digestsOf(rep.Swept), []string{unrecorded.SHA256.String()}) || !rep.Swept[0].Unrecorded {
		t.Fatalf("a link read within the grace, unrecorded bytes past it: %+v, %v", rep, err)
	}
	if s.stored(unrecorded.SHA256.String()) {
		t.Fatal("unrecorded bytes past the grace are still stored")
	}
	time.Sleep(1100 * time.Millisecond)
	rep, err = s.reg.CollectGarbage(ctx, registry.GCOptions{Grace: time.Second})
	if err != nil || !slices.Equal(linksOf(rep.Unlinked), []string{"r@" + stray}) || len(rep.Swept) != 0 {
		t.Fatalf("past the grace: %+v, %v; want the link removed and the blob kept, unused only from now", rep, err)
	}
	// Unused from its unlink, the blob waits out a grace of its own: a
	// client that deletes a blob and pushes it again soon finds it kept.
	time.Sleep(1100 * time.Millisecond)
	rep, err = s.reg.CollectGarbage(ctx, registry.GCOptions{Grace: time.Second})
	if err != nil || len(rep.Unlinked) != 0 || !slices.Equal(digestsOf(rep.Swept), []string{stray}) {
		t.Fatalf("a grace after its unlink: %+v, %v", rep, err)
	}
	s.verifyClean()
}

// TestGCGraceReadDuringMark: a HEAD that finds a link within its grace
// renews it even when it comes while a collection is marking, after the
// collection has read the reads noted so far: the client that skips the
// blob and puts its manifest within the grace succeeds.
func TestGCGraceReadDuringMark(t *testing.T) {
	const grace = 2 * time.Second
	s := newServer(t)
	cfg := []byte(`{"architecture":"amd64","os":"linux"}`)
	d := s.pushBlob("r", cfg)
	time.Sleep(grace / 2)
	s.reg.PauseGCAt("reads flushed", func() {
		// The HEAD comes after the flush, within the link's grace; the
		// mark, after that grace has passed.
		expect(t, s.do("HEAD", "/v2/r/blobs/"+d, nil), http.StatusOK)
		time.Sleep(grace * 3 / 4)
	})
	if _, err := s.reg.CollectGarbage(context.Background(), registry.GCOptions{Grace: grace}); err != nil {
		t.Fatal(err)
	}
	m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[]}`, d, len(cfg))
	expect(t, s.do("PUT", "/v2/r/manifests/v1", []byte(m), "Content-Type: application/vnd.oci.image.manifest.v1+json"), http.StatusCreated)
}

// TestGCGraceReadBeingFlushed: a read that another flush (the periodic
// one) has taken but not yet recorded when a collection begins still
// renews the grace: the collection waits for that flush. The database's
// write lock, held meanwhile, stalls the flush.
func TestGCGraceReadBeingFlushed(t *testing.T) {
	const grace = 3 * time.Second
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "log.db")
	l, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	s := serveOnFS(t, l)
	cfg := []byte(`{"architecture":"amd64","os":"linux"}`)
	d := s.pushBlob("r", cfg)
	time.Sleep(grace / 2)
	expect(t, s.do("HEAD", "/v2/r/blobs/"+d, nil), http.StatusOK)

	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	flushed := make(chan error, 1)
	go func() { flushed <- s.reg.FlushReads(ctx) }()
	time.Sleep(grace * 6 / 10) // past the link's grace, within the read's
	collected := make(chan error, 1)
	go func() {
		_, err := s.reg.CollectGarbage(ctx, registry.GCOptions{Grace: grace})
		collected <- err
	}()
	time.Sleep(grace / 10)
	conn.ExecContext(ctx, "ROLLBACK")
	conn.Close()
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
	if err := <-collected; err != nil {
		t.Fatal(err)
	}
	m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[]}`, d, len(cfg))
	expect(t, s.do("PUT", "/v2/r/manifests/v1", []byte(m), "Content-Type: application/vnd.oci.image.manifest.v1+json"), http.StatusCreated)
}

// TestGCInterrupted stops a collection at each stage, as a kill there
// would, and restarts: the log stays consistent, a push of a condemned
// blob is refused with a retryable 503 meanwhile, and the next collection
// finishes the job.
func TestGCInterrupted(t *testing.T) {
	for _, stage := range []string{"unlinked", "condemned", "deleting", "deleted"} {
		t.Run(stage, func(t *testing.T) {
			forGCBackends(t, func(t *testing.T, b gcBackend) {
				s := b.server(t)
				ctx := context.Background()
				g := makeGarbage(t, s)
				s.reg.CrashGCAt(stage)
				if _, err := s.reg.CollectGarbage(ctx, registry.GCOptions{}); err == nil {
					t.Fatal("the collection did not stop")
				}
				s.pullsWhole(g.kept)
				left, err := s.log.Condemned(ctx)
				if err != nil || (stage != "unlinked") != (len(left) > 0) {
					t.Fatalf("after a stop at %s, %d blobs left condemned (%v)", stage, len(left), err)
				}
				if len(left) > 0 {
					// A push of a condemned blob: refused, retryable.
					r := s.do2("POST", "/v2/a/blobs/uploads/?digest="+g.stray, g.strayP)
					if r.StatusCode != http.StatusServiceUnavailable || r.errCode() != "UNAVAILABLE" || r.Header.Get("Retry-After") == "" {
						t.Fatalf("push of a condemned blob: %d %s", r.StatusCode, r.body)
					}
				}
				// "Restart": a new registry over the same log and stores.
				s2 := serveOn(t, s.log, s.blobs.Backend(), func(o *registry.Options) { o.Cold = s.cold })
				rep, err := s2.reg.CollectGarbage(ctx, registry.GCOptions{})
				if err != nil {
					t.Fatal(err)
				}
				for _, d := range g.swept {
					if s2.stored(d) {
						t.Fatalf("%s still stored after the next collection (report %+v)", d, rep)
					}
				}
				s2.pullsWhole(g.kept)
				s2.verifyClean()
				// The push refused meanwhile succeeds now.
				s2.pushBlob("a", g.strayP)
				expect(t, s2.do("GET", "/v2/a/blobs/"+g.stray, nil), http.StatusOK)
			})
		})
	}
}

// TestGCRacesPushes runs collections without grace back to back while
// clients push images made of a few shared layers (so that pushes keep
// re-uploading blobs the collector is sweeping), delete some, and pull.
// Without grace a push may be told to retry (503, or MANIFEST_BLOB_UNKNOWN
// when a layer it pushed was collected before its manifest); it never
// gets another 5xx, and every image acknowledged and not deleted pulls
// whole at the end, on every backend, with two replicas on PostgreSQL.
// With a grace, no push is ever told to retry.
func TestGCRacesPushes(t *testing.T) {
	run := func(t *testing.T, push *testServer, collectors []*testServer, grace time.Duration) {
		layers := make([][]byte, 5) // files, and content the log keeps
		for i := range layers {
			layers[i] = randomBytes(t, 2000+i+(i%2)*registry.DefaultInlineMax)
		}
		ctx, stop := context.WithCancel(context.Background())
		defer stop()
		sweeps := make(chan int, len(collectors))
		var swept atomic.Int64 // so far, for the writers to keep racing
		for _, c := range collectors {
			go func() {
				n := 0
				defer func() { sweeps <- n }()
				for ctx.Err() == nil {
					start := time.Now()
					rep, err := c.reg.CollectGarbage(ctx, registry.GCOptions{Grace: grace})
					if err != nil && ctx.Err() == nil {
						t.Errorf("collection: %v", err)
						return
					}
					n += len(rep.Swept)
					swept.Add(int64(len(rep.Swept)))
					// Pause as long as the collection took, so that pushes
					// get through between collections on slow stores too.
					time.Sleep(max(10*time.Millisecond, 3*time.Since(start)))
				}
			}()
		}
		moves := make(chan int, 1)
		go func() { moves <- moveTiersUntil(ctx, t, collectors[0], layers) }()
		type result struct {
			kept              []image
			retries, refusals int
		}
		results := make(chan result, 3)
		for w := range 3 {
			go func() {
				var res result
				defer func() { results <- res }()
				// 12 images, and more (up to 60) until a collection has
				// swept something: without grace the race must happen,
				// however fast the pushes or slow the collections.
				for i := 0; i < 12 || grace == 0 && swept.Load() == 0 && i < 60; i++ {
					img, retries, ok := push.pushRetrying(fmt.Sprintf("w%d", w), fmt.Sprintf("t%d", i), layers[i%5], layers[(i+w)%5])
					res.retries += retries
					if !ok {
						res.refusals++
						continue
					}
					if i%3 == 0 {
						r := push.do2("DELETE", "/v2/"+img.repo+"/manifests/"+img.digest, nil)
						if r.StatusCode != http.StatusAccepted {
							t.Errorf("delete %s: %d %s", img.digest, r.StatusCode, r.body)
						}
						continue
					}
					res.kept = append(res.kept, img)
				}
			}()
		}
		var kept []image
		retries := 0
		for range 3 {
			r := <-results
			kept = append(kept, r.kept...)
			retries += r.retries
		}
		stop()
		sweptAll := 0
		for range collectors {
			sweptAll += <-sweeps
		}
		moved := <-moves
		t.Logf("grace %v: %d images kept, %d pushes retried, %d blobs swept and %d moved between tiers while pushing", grace, len(kept), retries, sweptAll, moved)
		// Within a grace nothing the pushes touched is swept yet; without
		// one the collectors must have raced them.
		if len(kept) == 0 || grace == 0 && sweptAll == 0 {
			t.Fatal("the race was not exercised: nothing pushed or nothing swept")
		}
		if grace > 0 && retries > 0 {
			t.Fatalf("%d pushes were told to retry within the grace", retries)
		}
		if _, err := collectors[0].reg.CollectGarbage(context.Background(), registry.GCOptions{}); err != nil {
			t.Fatal(err)
		}
		for _, img := range kept {
			push.pullsWhole(img)
		}
		collectors[0].verifyClean()
	}
	for _, grace := range []time.Duration{0, time.Minute} {
		t.Run(fmt.Sprint("grace-", grace), func(t *testing.T) {
			forGCBackends(t, func(t *testing.T, b gcBackend) {
				s := b.server(t)
				run(t, s, []*testServer{s}, grace)
			})
			t.Run("postgres-replicas", func(t *testing.T) {
				proxy, direct := replicas(t, 2)
				run(t, proxy, direct, grace)
			})
		})
	}
}

// moveTiersUntil moves the layers stored as files between the hot and
// cold tiers, and sweeps the copies moves leave, until ctx is done, when s
// has a cold tier; it returns the moves made. A move of a blob that is
// collected meanwhile fails and is no error.
func moveTiersUntil(ctx context.Context, t *testing.T, s *testServer, all [][]byte) int {
	if s.cold == nil {
		return 0
	}
	var layers [][]byte
	for _, l := range all {
		if len(l) > registry.DefaultInlineMax {
			layers = append(layers, l)
		}
	}
	moved := 0
	for i := 0; ctx.Err() == nil; i++ {
		tier := eventlog.TierCold
		if i%2 == 1 {
			tier = eventlog.TierHot
		}
		err := s.reg.MoveBlob(context.Background(), sha256Of(layers[i%len(layers)]), tier)
		switch {
		case err == nil:
			moved++
		case errors.Is(err, eventlog.ErrNotFound), errors.Is(err, eventlog.ErrReferenceMissing):
		default:
			t.Errorf("move %d to %s: %v", i%len(layers), tier, err)
			return moved
		}
		if _, err := s.reg.SweepMoved(context.Background(), time.Now().Add(time.Hour)); err != nil {
			t.Errorf("sweep moved: %v", err)
			return moved
		}
	}
	return moved
}

// pushRetrying pushes an image of the given layers as a client does when
// a collection races it: a 503 or MANIFEST_BLOB_UNKNOWN starts the push
// over, a few times. Any other failure fails the test.
func (s *testServer) pushRetrying(repo, tag string, layers ...[]byte) (image, int, bool) {
	s.t.Helper()
	cfg := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"tag":%q}`, repo+tag))
	all := append([][]byte{cfg}, layers...)
	img := image{repo: repo, blobs: map[string][]byte{}}
	var descs []byte
	for i, l := range layers {
		if i > 0 {
			descs = append(descs, ',')
		}
		descs = fmt.Appendf(descs, `{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":%q,"size":%d}`, sha256Of(l), len(l))
	}
	img.manifest = []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[%s]}`,
		sha256Of(cfg), len(cfg), descs))
	img.digest = sha256Of(img.manifest)
	retryable := func(r response) bool {
		if r.StatusCode == http.StatusServiceUnavailable || r.errCode() == "MANIFEST_BLOB_UNKNOWN" {
			s.t.Logf("retry after %s %s: %d %s", r.Request.Method, r.Request.URL.Path, r.StatusCode, r.body)
			return true
		}
		return false
	}
attempts:
	for attempt := 0; attempt < 10; attempt++ {
		time.Sleep(time.Duration(attempt) * 10 * time.Millisecond) // back off, as clients do
		for _, p := range all {
			img.blobs[sha256Of(p)] = p
			r := s.do2("POST", "/v2/"+repo+"/blobs/uploads/?digest="+sha256Of(p), p)
			if retryable(r) {
				continue attempts
			}
			if r.StatusCode != http.StatusCreated {
				s.t.Errorf("push blob: %d %s", r.StatusCode, r.body)
				return img, attempt, false
			}
		}
		r := s.do2("PUT", "/v2/"+repo+"/manifests/"+tag, img.manifest, "Content-Type: application/vnd.oci.image.manifest.v1+json")
		if retryable(r) {
			continue
		}
		if r.StatusCode != http.StatusCreated {
			s.t.Errorf("push manifest: %d %s", r.StatusCode, r.body)
			return img, attempt, false
		}
		return img, attempt, true
	}
	return img, 10, false
}

// TestGCKeepsWhatPartialManifestsName: a layer pushed after its manifest
// (a sparse push, or a non-distributable layer) is not recorded with the
// manifest; the collector reads such manifests and keeps the layer, even
// once sparse pushes are no longer allowed.
func TestGCKeepsWhatPartialManifestsName(t *testing.T) {
	l := backends[0].open(t)
	t.Cleanup(func() { l.Close() })
	fsb, err := blobfs.New(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	sparse := serveOn(t, l, fsb, func(o *registry.Options) { o.AllowSparse = true })
	cfg, layer, foreign := randomBytes(t, 100), randomBytes(t, 2000), randomBytes(t, 3000)
	img := image{repo: "r", blobs: map[string][]byte{sparse.pushBlob("r", cfg): cfg}}
	img.manifest = []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":%q,"size":%d},{"mediaType":"application/vnd.oci.image.layer.nondistributable.v1.tar","digest":%q,"size":%d}]}`,
		sha256Of(cfg), len(cfg), sha256Of(layer), len(layer), sha256Of(foreign), len(foreign)))
	expect(t, sparse.do("PUT", "/v2/r/manifests/v1", img.manifest, "Content-Type: application/vnd.oci.image.manifest.v1+json"), 201)
	img.digest = sha256Of(img.manifest)
	img.blobs[sparse.pushBlob("r", layer)] = layer
	img.blobs[sparse.pushBlob("r", foreign)] = foreign
	strict := serveOn(t, l, fsb) // the same store, sparse pushes now refused
	rep, err := strict.reg.CollectGarbage(context.Background(), registry.GCOptions{})
	if err != nil || len(rep.Unlinked)+len(rep.Swept) != 0 {
		t.Fatalf("the collection removed %v and %v (%v)", linksOf(rep.Unlinked), digestsOf(rep.Swept), err)
	}
	strict.pullsWhole(img)
}

// TestReadRenewsLink: a HEAD that tells a client a blob exists renews a
// link older than half the grace, and an unlink the collector decided
// before that is then refused; a fresh link costs no renewal.
func TestReadRenewsLink(t *testing.T) {
	s := newServer(t, func(o *registry.Options) { o.GCGrace = 2 * time.Second })
	ctx := context.Background()
	d := s.pushBlob("r", randomBytes(t, 100))
	expect(t, s.do("HEAD", "/v2/r/blobs/"+d, nil), 200)
	before, _ := s.log.Head(ctx)
	time.Sleep(1100 * time.Millisecond)
	mark, _ := s.log.Head(ctx)
	if mark != before {
		t.Fatalf("a HEAD of a fresh link appended %d events", mark-before)
	}
	expect(t, s.do("HEAD", "/v2/r/blobs/"+d, nil), 200)
	e, err := s.log.Event(ctx, mark+1)
	if err != nil || e.Type != eventlog.TypeBlobLinked || e.Actor.Name != "artifactstore:grace" {
		t.Fatalf("after a HEAD of a link older than half the grace: event %+v, %v; want its renewal", e, err)
	}
	_, err = s.log.Append(ctx, eventlog.New(eventlog.TypeBlobUnlinked, "r", eventlog.BlobUnlinked{SHA256: d, Mark: mark}))
	if !errors.Is(err, eventlog.ErrConflict) {
		t.Fatalf("an unlink decided before the renewal: %v, want ErrConflict", err)
	}
	expect(t, s.do("GET", "/v2/r/blobs/"+d, nil), 200)
}

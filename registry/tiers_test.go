package registry_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/artifact-store/artifact-store/blobstore"
	blobfs "github.com/artifact-store/artifact-store/blobstore/fs"
	"github.com/artifact-store/artifact-store/digest"
	"github.com/artifact-store/artifact-store/eventlog"
	"github.com/artifact-store/artifact-store/registry"
)

// tieredServer is a registry with a filesystem hot tier and an S3 cold
// tier on a real gateway.
func tieredServer(t *testing.T, policy registry.TierPolicy) *testServer {
	_, cold := startS3(t, "cold", 0)
	hot, err := blobfs.New(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	return serveOn(t, nil, hot, func(o *registry.Options) { o.Cold, o.Tiering = blobstore.New(cold), policy })
}

func tierOf(t *testing.T, s *testServer, d string) string {
	b, err := s.log.Blob(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	return b.Tier
}

// TestTieringUnderConcurrentPulls moves blobs cold and back, and sweeps
// the old copies, while clients pull them: no read may fail.
func TestTieringUnderConcurrentPulls(t *testing.T) {
	s := tieredServer(t, registry.TierPolicy{Grace: time.Millisecond})
	blobs := map[string][]byte{}
	for i := 0; i < 12; i++ {
		data := randomBytes(t, 1000+i*150_000)
		blobs[s.pushBlob("t", data)] = data
	}
	var digests []string
	for d := range blobs {
		digests = append(digests, d)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	reads, failures := 0, []string{}
	for c := 0; c < 4; c++ {
		wg.Add(1)
		go func(seed int64) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(seed))
			for i := 0; i < 2000; i++ { // bounded
				select {
				case <-stop:
					return
				default:
				}
				d := digests[rng.Intn(len(digests))]
				r := s.do2("GET", "/v2/t/blobs/"+d, nil)
				mu.Lock()
				reads++
				if r.StatusCode != 200 || !bytes.Equal(r.body, blobs[d]) {
					failures = append(failures, fmt.Sprintf("%s: %d, %d bytes", d, r.StatusCode, len(r.body)))
				}
				mu.Unlock()
			}
		}(int64(c))
	}
	ctx := context.Background()
	var files []string // the first blob is small: the log keeps it, and it has no tier to move to
	for _, d := range digests {
		if tierOf(t, s, d) != eventlog.TierInline {
			files = append(files, d)
		}
	}
	if len(files) != len(digests)-1 {
		t.Fatalf("%d of %d blobs stored as files; want all but the small one", len(files), len(digests))
	}
	for round := 0; round < 3; round++ {
		for _, tier := range []string{eventlog.TierCold, eventlog.TierHot} {
			for _, d := range files {
				if err := s.reg.MoveBlob(ctx, d, tier); err != nil {
					t.Fatalf("move %s to %s: %v", d, tier, err)
				}
			}
			if _, err := s.reg.SweepMoved(ctx, time.Now().Add(time.Second)); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(stop)
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d of %d reads failed during moves, e.g. %s", len(failures), reads, failures[0])
	}
	t.Logf("%d reads during 6 moves of %d blobs, none failed", reads, len(files))
	for _, d := range files {
		if _, err := s.cold.Stat(ctx, digest.Digest(d)); err == nil {
			t.Fatalf("%s back in the hot tier still has a cold copy after the sweep", d)
		}
	}
	rep, err := registry.Verify(ctx, s.log, s.blobs, registry.VerifyOptions{Cold: s.cold, Scratch: scratchLog(t)})
	if err != nil || len(rep.Problems) != 0 || rep.Orphans != 0 {
		t.Fatalf("verify after the moves: %+v, %v", rep, err)
	}
}

// TestTierPolicy: the size rule moves large blobs only; reads stay
// transparent; a read of a cold blob promotes it back.
func TestTierPolicy(t *testing.T) {
	s := tieredServer(t, registry.TierPolicy{LargerThan: 100_000, Promote: true, Grace: time.Millisecond})
	small, large := randomBytes(t, 1000), randomBytes(t, 300_000)
	ds, dl := s.pushBlob("p", small), s.pushBlob("p", large)
	n, err := s.reg.TierPass(context.Background(), time.Now())
	if err != nil || n != 1 {
		t.Fatalf("tier pass moved %d, %v; want the large blob", n, err)
	}
	if tierOf(t, s, dl) != "cold" || tierOf(t, s, ds) != eventlog.TierInline {
		t.Fatalf("tiers after the pass: large %s, small %s", tierOf(t, s, dl), tierOf(t, s, ds))
	}
	// The sweep removed the hot copy; the read comes from the cold tier.
	s.reg.SweepMoved(context.Background(), time.Now().Add(time.Second))
	if _, err := s.blobs.Stat(context.Background(), digest.Digest(dl)); err == nil {
		t.Fatal("the hot copy of a cold blob survived the sweep")
	}
	r := s.do("GET", "/v2/p/blobs/"+dl, nil)
	if r.StatusCode != 200 || !bytes.Equal(r.body, large) {
		t.Fatalf("read of a cold blob: %d", r.StatusCode)
	}
	expect(t, s.do("GET", "/v2/p/blobs/"+dl, nil, "Range: bytes=100-199"), 206)
	// That read promotes it, in the background.
	deadline := time.Now().Add(10 * time.Second)
	for tierOf(t, s, dl) != "hot" {
		if time.Now().After(deadline) {
			t.Fatal("a read of a cold blob did not promote it")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Replay rebuilds the tiers from the blob.tiered events.
	before := dump(t, s)
	if _, err := s.log.Replay(context.Background()); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(dump(t, s)) != fmt.Sprint(before) {
		t.Fatal("tiers differ after replay")
	}
}

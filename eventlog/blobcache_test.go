package eventlog

import (
	"fmt"
	"strings"
	"testing"
)

// TestBlobCacheBounded: the cache holds no more than its bytes, the least
// recently used go first, and an entry larger than the whole is not kept.
func TestBlobCacheBounded(t *testing.T) {
	const each = cacheEntryCost + 1000
	c := newBlobCache(10 * each)
	blob := func(i int) Blob {
		return Blob{SHA256: fmt.Sprintf("sha256:%064x", i), Tier: TierInline, Content: make([]byte, 1000)}
	}
	for i := range 10 {
		c.fill(c.gen, "r", blob(i).SHA256, blob(i))
	}
	if _, _, ok := c.get("r", blob(0).SHA256, true); !ok { // now the most recently used
		t.Fatal("entry 0 missing before the cache was full")
	}
	for i := 10; i < 15; i++ {
		c.fill(c.gen, "r", blob(i).SHA256, blob(i))
	}
	if c.entries.Size() > 10*each || c.entries.Len() != 10 {
		t.Fatalf("size %d of %d, %d entries; want at most the bound, 10 entries", c.entries.Size(), 10*each, c.entries.Len())
	}
	for i, want := range map[int]bool{0: true, 1: false, 5: false, 6: true, 14: true} {
		if _, _, ok := c.get("r", blob(i).SHA256, true); ok != want {
			t.Errorf("entry %d kept: %v, want %v", i, ok, want)
		}
	}
	for sha, keys := range c.bySHA {
		for _, k := range keys {
			if _, ok := c.entries.Get(k); !ok {
				t.Errorf("bySHA names %s under %s, which is not an entry", k, sha)
			}
		}
	}
	huge := Blob{SHA256: "sha256:huge", Tier: TierInline, Content: make([]byte, 11*each)}
	c.fill(c.gen, "r", huge.SHA256, huge)
	if _, _, ok := c.get("r", huge.SHA256, true); ok || c.entries.Len() != 10 {
		t.Fatalf("an entry larger than the cache was kept (%v) or emptied it (%d entries)", ok, c.entries.Len())
	}
}

// TestBlobCacheForget: a blob's entries under each of its digests go with
// it, and nothing of it stays in the cache's bookkeeping.
func TestBlobCacheForget(t *testing.T) {
	c := newBlobCache(blobCacheBytes)
	b := Blob{SHA256: "sha256:aa", BLAKE3: "blake3:bb", Tier: TierHot}
	other := Blob{SHA256: "sha256:cc", Tier: TierHot}
	for _, k := range []cacheKey{{"r", b.SHA256}, {"r", b.BLAKE3}, {"s", b.SHA256}} {
		c.fill(c.gen, k.repo, k.digest, b)
	}
	c.fill(c.gen, "r", other.SHA256, other)
	c.forget(b.SHA256)
	if c.entries.Len() != 1 || len(c.bySHA) != 1 || len(c.bySHA[other.SHA256]) != 1 || c.entries.Size() != cacheEntryCost {
		t.Fatalf("after forgetting one of two blobs: %d entries, %d storage keys, size %d", c.entries.Len(), len(c.bySHA), c.entries.Size())
	}
	if _, _, ok := c.get("r", other.SHA256, false); !ok {
		t.Fatal("the other blob went too")
	}
}

// TestManifestCacheCountsStrings: a manifest row's strings count towards
// the bound, so rows with a megabyte artifact type (a manifest may carry
// one) cannot make the cache hold more than its bytes.
func TestManifestCacheCountsStrings(t *testing.T) {
	c := newBlobCache(blobCacheBytes)
	long := strings.Repeat("x", 1<<20)
	for i := range 40 {
		d := fmt.Sprintf("sha256:%064x", i)
		c.fillManifest(c.mgen, manifestKey{"r", "t:" + fmt.Sprint(i)}, Manifest{Repo: "r", Digest: d, SHA256: d, ArtifactType: long}, false)
	}
	if c.manifests.Len() > manifestCacheBytes>>20 {
		t.Fatalf("%d entries of 1 MiB each kept, bound %d bytes", c.manifests.Len(), manifestCacheBytes)
	}
	held := 0
	for k := range c.byRow {
		held += len(c.byRow[k])
	}
	if held != c.manifests.Len() {
		t.Fatalf("byRow indexes %d entries, the cache holds %d", held, c.manifests.Len())
	}
}

// TestCacheRewound: a group commit that finds the log's head below what
// the cache has applied (the database restored to an earlier state under
// a live server) empties the cache and starts applied there; a head at or
// past it changes nothing.
func TestCacheRewound(t *testing.T) {
	c := newBlobCache(blobCacheBytes)
	c.applied = 100
	d := fmt.Sprintf("sha256:%064x", 1)
	c.fill(c.gen, "r", d, Blob{SHA256: d, Tier: TierHot})
	c.fillManifest(c.mgen, manifestKey{"r", "t:v1"}, Manifest{Repo: "r", Digest: d, SHA256: d}, false)
	c.rewound(100)
	if _, _, ok := c.get("r", d, false); !ok || c.applied != 100 {
		t.Fatalf("head at applied: entry kept %v, applied %d; want kept, 100", ok, c.applied)
	}
	c.rewound(90)
	_, _, blob := c.get("r", d, false)
	_, _, manifest := c.getManifest(manifestKey{"r", "t:v1"}, false)
	if blob || manifest || c.applied != 90 {
		t.Fatalf("head below applied: blob kept %v, manifest kept %v, applied %d; want neither, 90", blob, manifest, c.applied)
	}
}

package registry

import (
	"bytes"
	"sync"

	"github.com/artifact-store/artifact-store/internal/lru"
)

// manifestCache keeps the bytes of recently read manifests in memory, by
// SHA-256, so that a GET of a popular manifest does not open, size, read
// and re-hash its file each time.
//
// Invariant: an entry's bytes hash to its key. Entries are added only
// after readStored has checked that, and content addressed by its digest
// never changes, so an entry is never stale: whether a repository still
// has the manifest is asked of the views on every request, before the
// cache. What the cache can hide is later damage to the stored copy (the
// correct bytes are served from memory while they are cached); `verify`
// reads the store and reports it. Likewise a manifest that verify has
// quarantined is still served, correctly, while cached.
//
// Bounded: at most maxBytes in all, each entry counted with its overhead,
// and no manifest over maxEntry, so a client pulling many manifests
// evicts, it does not grow memory. Only clients' reads fill it: a garbage
// collection reading every manifest would evict the ones in use.
type manifestCache struct {
	maxEntry int64

	mu      sync.Mutex
	entries *lru.Cache[string, []byte]
}

// Defaults: a few thousand typical manifests.
const (
	manifestCacheBytes = 16 << 20
	manifestCacheEntry = 256 << 10
)

// entryOverhead is what an entry costs beyond its bytes: its key, the
// map's and the list's bookkeeping.
const entryOverhead = 256

func newManifestCache(maxBytes, maxEntry int64) *manifestCache {
	cost := func(body []byte) int64 { return int64(len(body)) + entryOverhead }
	return &manifestCache{maxEntry: maxEntry, entries: lru.New[string](maxBytes, cost, nil)}
}

// get returns the cached bytes of key; callers must not modify them.
func (c *manifestCache) get(key string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.entries.Get(key)
}

// add caches a copy of body under key (a copy: the caller's slice may be
// a larger read buffer, which the cache must not keep alive).
func (c *manifestCache) add(key string, body []byte) {
	if int64(len(body)) > c.maxEntry {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries.Get(key); ok {
		return
	}
	c.entries.Add(key, bytes.Clone(body))
}

// forget drops every entry.
func (c *manifestCache) forget() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries.Clear()
}

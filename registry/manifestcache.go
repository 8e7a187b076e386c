package registry

import (
	"bytes"
	"container/list"
	"sync"
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
	maxBytes, maxEntry int64

	mu      sync.Mutex
	size    int64
	entries map[string]*list.Element // of *cachedManifest
	recency list.List                // front: most recently used
}

type cachedManifest struct {
	key  string
	body []byte
}

// Defaults: a few thousand typical manifests.
const (
	manifestCacheBytes = 16 << 20
	manifestCacheEntry = 256 << 10
)

func newManifestCache(maxBytes, maxEntry int64) *manifestCache {
	return &manifestCache{maxBytes: maxBytes, maxEntry: maxEntry, entries: map[string]*list.Element{}}
}

// get returns the cached bytes of key; callers must not modify them.
func (c *manifestCache) get(key string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok {
		return nil, false
	}
	c.recency.MoveToFront(e)
	return e.Value.(*cachedManifest).body, true
}

// entryOverhead is what an entry costs beyond its bytes (map slot, list
// element, key), counted against the budget so that many tiny manifests
// cannot hold more memory than it says.
const entryOverhead = 256

// add caches a copy of body, which must hash to key, evicting the least
// recently used entries beyond the budget. The copy is exactly body's
// size: a read's buffer may be several times larger.
func (c *manifestCache) add(key string, body []byte) {
	cost := int64(len(body)) + entryOverhead
	if int64(len(body)) > c.maxEntry || cost > c.maxBytes {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; ok {
		return
	}
	c.entries[key] = c.recency.PushFront(&cachedManifest{key: key, body: bytes.Clone(body)})
	c.size += cost
	for c.size > c.maxBytes {
		last := c.recency.Back()
		m := c.recency.Remove(last).(*cachedManifest)
		delete(c.entries, m.key)
		c.size -= int64(len(m.body)) + entryOverhead
	}
}

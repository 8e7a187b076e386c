package registry

import (
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
// reads the store and reports it.
//
// Bounded: at most maxBytes in all, and no manifest over maxEntry, so a
// client pulling many large manifests evicts, it does not grow memory.
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

// add caches body, which must hash to key, evicting the least recently
// used entries beyond the budget.
func (c *manifestCache) add(key string, body []byte) {
	n := int64(len(body))
	if n > c.maxEntry || n > c.maxBytes {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; ok {
		return
	}
	c.entries[key] = c.recency.PushFront(&cachedManifest{key: key, body: body})
	c.size += n
	for c.size > c.maxBytes {
		last := c.recency.Back()
		m := c.recency.Remove(last).(*cachedManifest)
		delete(c.entries, m.key)
		c.size -= int64(len(m.body))
	}
}

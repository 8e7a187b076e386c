package registry

import (
	"bytes"
	"fmt"
	"testing"
)

// The cache holds at most its budget, evicting the least recently used,
// and refuses entries over its per-entry bound.
func TestManifestCacheBounded(t *testing.T) {
	c := newManifestCache(10*(1_000+entryOverhead), 4_000)
	body := func(i int) []byte { return bytes.Repeat([]byte{byte(i)}, 1_000) }
	for i := 0; i < 10; i++ {
		c.add(fmt.Sprint(i), body(i))
	}
	c.get("0") // now the most recently used
	c.add("10", body(10))
	if _, ok := c.get("1"); ok {
		t.Error("the least recently used entry was kept over the budget")
	}
	for _, k := range []string{"0", "2", "10"} {
		if b, ok := c.get(k); !ok || len(b) != 1_000 {
			t.Errorf("entry %s lost", k)
		}
	}
	if c.size > c.maxBytes || len(c.entries) != c.recency.Len() {
		t.Errorf("size %d of %d, %d entries, %d in the list", c.size, c.maxBytes, len(c.entries), c.recency.Len())
	}
	c.add("big", make([]byte, 4_001))
	if _, ok := c.get("big"); ok {
		t.Error("an entry over the per-entry bound was cached")
	}
	// Tiny manifests count their overhead: the budget holds fewer of them.
	tiny := newManifestCache(100*(10+entryOverhead), 4_000)
	for i := 0; i < 1_000; i++ {
		tiny.add(fmt.Sprint(i), make([]byte, 10, 512))
	}
	if n := len(tiny.entries); n != 100 {
		t.Errorf("%d tiny entries kept, want 100", n)
	}
	for _, e := range tiny.entries {
		if b := e.Value.(*cachedManifest).body; cap(b) > 16 {
			t.Fatalf("an entry keeps its read buffer (capacity %d)", cap(b))
		}
	}
}

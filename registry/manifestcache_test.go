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
	if max := int64(10 * (1_000 + entryOverhead)); c.entries.Size() > max || c.entries.Len() != 10 {
		t.Errorf("size %d of %d, %d entries; want 10", c.entries.Size(), max, c.entries.Len())
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
	if n := tiny.entries.Len(); n != 100 {
		t.Errorf("%d tiny entries kept, want 100", n)
	}
	for i := 900; i < 1_000; i++ {
		if b, ok := tiny.get(fmt.Sprint(i)); !ok || cap(b) > 16 {
			t.Fatalf("entry %d: kept %v, capacity %d; want kept, without its read buffer", i, ok, cap(b))
		}
	}
}

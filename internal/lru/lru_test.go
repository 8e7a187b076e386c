package lru

import "testing"

// TestBounded: the cache stays within its bound by evicting the least
// recently used (a Get counts as a use), tells the owner of each
// eviction, keeps Size the sum of its values' costs, and keeps nothing
// costing more than the bound.
func TestBounded(t *testing.T) {
	var evicted []int
	c := New(10, func(v int) int64 { return int64(v) }, func(k, _ int) { evicted = append(evicted, k) })
	for k := range 5 {
		c.Add(k, 2)
	}
	c.Get(0)
	c.Add(5, 3) // over by 3: 1 and 2 go, 0 was used
	if len(evicted) != 2 || evicted[0] != 1 || evicted[1] != 2 {
		t.Fatalf("evicted %v, want [1 2]", evicted)
	}
	if _, ok := c.Get(0); !ok || c.Len() != 4 || c.Size() != 9 {
		t.Fatalf("after eviction: entry 0 kept %v, %d entries, size %d; want true, 4, 9", ok, c.Len(), c.Size())
	}
	c.Add(3, 1) // replaces: size 9 - 2 + 1
	if v, _ := c.Get(3); v != 1 || c.Size() != 8 {
		t.Fatalf("replaced value %d, size %d; want 1, 8", v, c.Size())
	}
	if c.Add(9, 11) || c.Len() != 4 {
		t.Fatalf("a value over the whole bound was kept, or emptied the cache (%d entries)", c.Len())
	}
	if v, ok := c.Remove(5); !ok || v != 3 || c.Size() != 5 {
		t.Fatalf("Remove: %d %v, size %d; want 3 true, 5", v, ok, c.Size())
	}
	c.Clear()
	if c.Len() != 0 || c.Size() != 0 {
		t.Fatal("Clear left entries")
	}
}

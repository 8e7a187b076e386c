// Package lru is a map that keeps the values it was most recently asked
// for, bounded by the total cost of its values: the byte budgets of the
// registry's caches (manifest bytes, blob lookups).
//
// Invariant: Size is the sum of cost(v) over the entries, and never above
// the bound after an Add returns. A Cache is not safe for concurrent use:
// its owner holds a lock of its own around it, which also covers the
// owner's bookkeeping beside it (OnEvict).
package lru

import "container/list"

// Cache maps keys to values, least recently used out first.
type Cache[K comparable, V any] struct {
	max     int64
	cost    func(V) int64
	onEvict func(K, V) // told of each entry Add evicts, or nil

	size    int64
	entries map[K]*list.Element // of *entry[K, V]
	recency list.List           // front: most recently used
}

type entry[K comparable, V any] struct {
	key   K
	value V
}

// New returns a cache holding values of total cost at most max; onEvict,
// when not nil, is called for each entry an Add evicts to stay within it.
func New[K comparable, V any](max int64, cost func(V) int64, onEvict func(K, V)) *Cache[K, V] {
	return &Cache[K, V]{max: max, cost: cost, onEvict: onEvict, entries: map[K]*list.Element{}}
}

// Get returns the value of k and makes it the most recently used.
func (c *Cache[K, V]) Get(k K) (V, bool) {
	el, ok := c.entries[k]
	if !ok {
		var zero V
		return zero, false
	}
	c.recency.MoveToFront(el)
	return el.Value.(*entry[K, V]).value, true
}

// Add makes v the value of k, the most recently used, and evicts the
// least recently used entries until the cache is within its bound. A
// value costing more than the whole bound is not kept (false), and k's
// old value, if any, is removed all the same.
func (c *Cache[K, V]) Add(k K, v V) bool {
	c.Remove(k)
	cost := c.cost(v)
	if cost > c.max {
		return false
	}
	c.entries[k] = c.recency.PushFront(&entry[K, V]{k, v})
	c.size += cost
	for c.size > c.max {
		e := c.recency.Back().Value.(*entry[K, V])
		c.Remove(e.key)
		if c.onEvict != nil {
			c.onEvict(e.key, e.value)
		}
	}
	return true
}

// Remove drops k and returns its value.
func (c *Cache[K, V]) Remove(k K) (V, bool) {
	el, ok := c.entries[k]
	if !ok {
		var zero V
		return zero, false
	}
	e := c.recency.Remove(el).(*entry[K, V])
	delete(c.entries, k)
	c.size -= c.cost(e.value)
	return e.value, true
}

// Clear drops every entry (OnEvict is not told).
func (c *Cache[K, V]) Clear() {
	clear(c.entries)
	c.recency.Init()
	c.size = 0
}

// Len is how many entries the cache holds; Size their total cost.
func (c *Cache[K, V]) Len() int    { return len(c.entries) }
func (c *Cache[K, V]) Size() int64 { return c.size }

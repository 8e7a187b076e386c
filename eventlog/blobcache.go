package eventlog

import (
	"bytes"
	"slices"
	"sync"
	"time"

	"github.com/artifact-store/artifact-store/internal/lru"
)

// blobCache answers LinkedBlob and LinkedBlobForRead from memory, and the
// manifest lookups too (manifestlookups.go), for a log opened Exclusive
// (or Follow, follow.go): one whose every append, and every other write to
// the views, passes through this process's Log. Only then does the log
// see every change to what a lookup returns, and can it keep a result
// until one happens.
//
// What a lookup of (repository, digest) returns changes only with these
// events, each naming the blob's storage key: blob.committed (the tier
// becomes inline), blob.tiered, blob.linked (the link's time),
// blob.unlinked, and gc.condemned (the blob is gone); Replay and Project
// rebuild everything. cacheEffect says so for every event type, and
// unknown types empty the cache.
//
// Invariants:
//   - An entry is what the views said for its key at some point after the
//     last change to its blob was committed: the committer drops a
//     blob's entries after each commit that touches it, under mu, and a
//     lookup that read the views adds its result only if no commit has
//     come in between (gen unchanged), so a result read before a commit
//     is never kept after it.
//   - Only hits are kept: a key not found is asked of the views each time.
//   - An entry a push fills takes its digest and size from the
//     blob.committed, as a new row does. A row that already existed keeps
//     its own, which are the same unless a caller committed a blob with a
//     BLAKE3 or size that are not its bytes' (the registry derives both
//     from the bytes): then the entry has the true ones and the views the
//     damage, which verify reports.
//   - Entries hold at most max bytes (content plus a fixed cost each);
//     the least recently used go first.
type blobCache struct {
	mu  sync.Mutex
	gen uint64 // counts commits that touched a blob, and resets
	// applied is the sequence number up to which every event has been
	// applied, in order: by the committer, for the groups it commits, and
	// for a followed log (follow.go) by the follower. It only grows,
	// unless the database itself went back (rewound).
	applied int64
	entries *lru.Cache[cacheKey, Blob] // Content set when inline and read with it
	bySHA   map[string][]cacheKey      // storage key → its entries (mostly one)

	// Manifest lookups (manifestlookups.go): mgen counts the changes that
	// dropped entries; byRow maps a repository and a row's digest to the
	// entries answered with that row.
	mgen      uint64
	manifests *lru.Cache[manifestKey, manifestEntry]
	byRow     map[manifestKey]map[manifestKey]struct{}
}

type cacheKey struct{ repo, digest string }

// cacheEntryCost is what an entry costs beyond its content: the keys, the
// row's strings, the maps' and the list's bookkeeping (some 700 bytes of
// heap, measured: rounded up).
const cacheEntryCost = 1024

// blobCacheBytes bounds a cache: 2,000 small blobs of 4 KiB with room to
// spare, and nothing next to the server's other memory.
const blobCacheBytes = 16 << 20

func newBlobCache(max int64) *blobCache {
	c := &blobCache{bySHA: map[string][]cacheKey{}, byRow: map[manifestKey]map[manifestKey]struct{}{}}
	cost := func(b Blob) int64 { return cacheEntryCost + int64(len(b.Content)) }
	c.entries = lru.New(max, cost, c.unindex)
	c.manifests = lru.New(manifestCacheBytes, manifestCost, c.unindexManifest)
	return c
}

// get returns the entry for (repo, digest); withContent asks for an
// inline blob's bytes too, which an entry filled without them lacks.
// The caller must not modify the Content it gets.
func (c *blobCache) get(repo, digest string, withContent bool) (b Blob, gen uint64, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok = c.entries.Get(cacheKey{repo, digest})
	switch {
	case !ok, withContent && b.Tier == TierInline && b.Content == nil:
		return Blob{}, c.gen, false
	case !withContent:
		b.Content = nil
	}
	return b, c.gen, true
}

// fill keeps b, read from the views, for (repo, digest), unless a commit
// that touched a blob has happened since gen (get's) was current.
func (c *blobCache) fill(gen uint64, repo, digest string, b Blob) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen == gen {
		c.put(cacheKey{repo, digest}, b)
	}
}

func (c *blobCache) put(k cacheKey, b Blob) {
	c.remove(k)
	if c.entries.Add(k, b) {
		c.bySHA[b.SHA256] = append(c.bySHA[b.SHA256], k)
	}
}

func (c *blobCache) remove(k cacheKey) {
	if b, ok := c.entries.Remove(k); ok {
		c.unindex(k, b)
	}
}

// unindex drops k, which no longer has an entry, from its blob's list.
func (c *blobCache) unindex(k cacheKey, b Blob) {
	keys := slices.DeleteFunc(c.bySHA[b.SHA256], func(o cacheKey) bool { return o == k })
	if len(keys) == 0 {
		delete(c.bySHA, b.SHA256)
	} else {
		c.bySHA[b.SHA256] = keys
	}
}

// forget drops every entry of the blob stored under sha256.
func (c *blobCache) forget(sha256 string) {
	for _, k := range slices.Clone(c.bySHA[sha256]) { // remove edits the list
		c.remove(k)
	}
}

// reset drops everything: the views were rebuilt, or a commit's outcome
// is unknown.
func (c *blobCache) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.clearLocked()
}

func (c *blobCache) clearLocked() {
	c.gen++
	c.entries.Clear()
	clear(c.bySHA)
	c.mgen++
	c.manifests.Clear()
	clear(c.byRow)
}

// committed updates the cache for the events of a group this process
// committed, in their order: it drops the entries of every blob they
// touch, and keeps what a push of small content (blob.committed with the
// bytes, then blob.linked) makes a repository serve, so that the first
// pull of a blob just pushed is answered from memory too.
//
// When the group follows applied directly, applied moves past it: a
// follower then reads nothing it does not need (with one writer, nothing
// at all). Events of a group are numbered without gaps (record).
func (c *blobCache) committed(evs []Event) {
	if len(evs) == 0 {
		return
	}
	first, last := evs[0].Seq, evs[len(evs)-1].Seq
	c.apply(evs, func() int {
		if last <= c.applied {
			// A follower has applied these already, and perhaps later
			// events too: applying them again now could bring back an
			// entry a later event dropped.
			return len(evs)
		}
		if first <= c.applied+1 && last-first == int64(len(evs)-1) {
			c.applied = last
		}
		// Otherwise events before the group are not applied yet: a
		// round applies them later, then this group again, in order,
		// before any lookup waiting on that round reads.
		return 0
	})
}

// followed applies evs, the events after some earlier value of applied,
// read by the follower: those after applied now, in order, and moves
// applied to the last of them.
func (c *blobCache) followed(evs []Event) {
	c.apply(evs, func() int {
		i := 0
		for i < len(evs) && evs[i].Seq <= c.applied { // the committer's own, applied at its commit
			i++
		}
		if len(evs) > 0 {
			c.applied = max(c.applied, evs[len(evs)-1].Seq)
		}
		return i
	})
}

// skipTo drops everything and takes every event up to head as applied:
// for a follower too far behind to read its way.
func (c *blobCache) skipTo(head int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.clearLocked()
	c.applied = max(c.applied, head)
}

// rewound is told the log's head as a group commit reads it, under the
// write lock, when no commit is in flight: every committed event is at or
// below it, so a head below applied means the database was put back to an
// earlier state under a live log (a backup restored while servers run).
// Entries may then describe events it no longer has, and applied a point
// it has not reached: everything goes, and applied starts again there.
// It reports whether that happened.
func (c *blobCache) rewound(head int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if head < c.applied {
		c.clearLocked()
		c.applied = head
		return true
	}
	return false
}

// appliedSeq returns applied.
func (c *blobCache) appliedSeq() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.applied
}

// apply updates the cache for evs[from:], in their order, where from is
// what start returns; start runs under the lock, before anything changes.
func (c *blobCache) apply(evs []Event, start func() int) {
	type effect struct {
		shas   []string
		commit *BlobCommitted
		ok     bool
	}
	effects := make([]effect, len(evs)) // decoded before the lock, which lookups wait on
	changes := make([]manifestChange, len(evs))
	for i, e := range evs {
		effects[i].shas, effects[i].commit, effects[i].ok = cacheEffect(e)
		changes[i] = manifestEffect(e)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	from := start()
	pushed := map[string]BlobCommitted{}    // inline blobs committed in these events
	puts := map[manifestKey]manifestEntry{} // manifests put in them, for their tags
	for i := from; i < len(evs); i++ {
		e, shas, commit := evs[i], effects[i].shas, effects[i].commit
		if !effects[i].ok {
			c.clearLocked()
			clear(pushed)
			clear(puts)
			continue
		}
		if len(shas) > 0 {
			c.gen++
		}
		for _, sha := range shas {
			c.forget(sha)
		}
		switch e.Type {
		case TypeBlobCommitted, TypeBlobTiered, TypeGCCondemned: // the row changes
			for _, sha := range shas {
				delete(pushed, sha)
			}
			if commit != nil && commit.Content != nil {
				pushed[commit.SHA256] = *commit
			}
		case TypeBlobLinked:
			if p, ok := pushed[shas[0]]; ok {
				c.put(cacheKey{e.Repo, p.SHA256}, Blob{SHA256: p.SHA256, BLAKE3: p.BLAKE3, Size: p.Size, Tier: TierInline,
					Linked: time.Unix(0, e.Time.UnixNano()).UTC(), Content: p.Content})
			}
		}
		c.applyManifest(e, changes[i], puts, pushed)
	}
}

// cacheEffect returns the storage keys of the blobs whose lookups e
// changes (and, for blob.committed, its payload), and false when it cannot
// tell (an unknown type, an undecodable payload): then every entry must go.
func cacheEffect(e Event) (shas []string, commit *BlobCommitted, ok bool) {
	var sha string
	var err error
	switch e.Type {
	case TypeBlobCommitted:
		// One copy of the content, of its size: an entry keeping the
		// payload's would keep the payload, which rounds up to a larger
		// size class (4 KiB of content took 4.75).
		var v blobCommittedView
		err = e.Decode(&v)
		commit = new(BlobCommitted)
		*commit = v.value()
		commit.Content = bytes.Clone(commit.Content)
		sha = commit.SHA256
	case TypeBlobTiered, TypeBlobLinked, TypeBlobUnlinked:
		var p struct { // the one field their payloads share
			SHA256 string `json:"sha256"`
		}
		err = e.Decode(&p)
		sha = p.SHA256
	case TypeGCCondemned:
		var p GCCondemned
		if err := e.Decode(&p); err != nil {
			return nil, nil, false
		}
		return p.Blobs, nil, true
	case TypeManifestPut, TypeManifestDeleted, TypeTagSet, TypeTagDeleted,
		TypeUploadStarted, TypeUploadFinished, TypeUploadCancelled,
		TypeVersionPublished, TypeVersionDeleted, TypeAPIKeyCreated, TypeAPIKeyRevoked,
		TypeGCSwept, TypePolicySet, TypePolicyRemoved, TypeTrashPurged, TypeManifestPulled:
		// None writes blobs, blob_digests, blob_links or contents (their
		// used_seq updates are not part of a lookup's answer).
		return nil, nil, true
	default:
		return nil, nil, false
	}
	if err != nil {
		return nil, nil, false
	}
	return []string{sha}, commit, true
}

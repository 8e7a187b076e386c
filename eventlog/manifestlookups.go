package eventlog

import "strings"

// Manifest lookups (TaggedManifest, Manifest and their ForRead forms, the
// lookup of every manifest pull) are kept in the same cache as blob
// lookups, under the same lock and by the same rules (blobcache.go): an
// entry is what the views answered for its key after the last change to
// it was applied; the committer (and a follower) drops entries as the
// events that change them are applied, in order; a lookup keeps its
// answer only if nothing was dropped while it read (mgen).
//
// What a manifest lookup answers changes only with these events of its
// repository: manifest.put and manifest.deleted (the manifest's row, so
// the entry of its digest and every entry answered with that row, the
// tags that point at it; answers for another algorithm's digest of the
// same bytes are never kept, fillManifest), tag.set and tag.deleted (one
// tag's entry). Anything else that may write manifests
// or tags drops everything: versions (native publishes write both), a
// collection, a move between tiers, a purge of the trash, and any type
// manifestEffect does not know or payload it cannot read.
//
// A put fills entries as it commits: the manifest under its digest and
// under each tag the same events set, with its bytes when a blob.committed
// among them carried them (what a ForRead lookup then returns), so that
// the first pull of a manifest just pushed needs no query either.

// manifestKey is a lookup's repository and reference: "t:" and a tag, or
// "d:" and the digest asked for. byRow's keys are a repository and a
// row's own digest, bare.
type manifestKey struct{ repo, ref string }

// manifestEntry is a lookup's answer; withContent says its Content is what
// a ForRead lookup returns (nil: the log keeps no bytes for it).
type manifestEntry struct {
	m           Manifest
	withContent bool
}

// manifestEntryCost is what an entry costs beyond its bytes and strings
// (the maps' and list's bookkeeping, the key's reference); manifestCacheBytes
// bounds them all: some 10,000 typical manifests with their bytes.
const (
	manifestEntryCost  = 512
	manifestCacheBytes = 8 << 20
)

// manifestCost counts every string an entry holds, with its key and its
// place in byRow: an artifact type can be most of a 4 MiB manifest, and a
// cost that left it out would let a few such entries hold gigabytes.
func manifestCost(e manifestEntry) int64 {
	m := e.m
	return manifestEntryCost + int64(len(m.Content)+3*len(m.Repo)+2*len(m.Digest)+len(m.SHA256)+
		len(m.MediaType)+len(m.ArtifactType)+len(m.Subject))
}

// manifestScope is how much of the cache an event's manifest effect reaches.
type manifestScope int

const (
	scopeNone manifestScope = iota
	scopeTag                // the entry of (repository, "t:" tag)
	scopeRow                // the manifest's: its digest's entry, and every entry answered with its row
	scopeAll                // every entry
)

// manifestChange is an event's effect on manifest lookups, decoded before
// the cache's lock is taken.
type manifestChange struct {
	scope manifestScope
	ref   string       // the tag (scopeTag) or digest (scopeRow)
	to    string       // for tag.set: the digest the tag now names
	put   *ManifestPut // for manifest.put, to fill entries from
}

// manifestEffect returns e's effect on manifest lookups. An event whose
// payload cannot be read reaches every entry.
func manifestEffect(e Event) manifestChange {
	all := manifestChange{scope: scopeAll}
	switch e.Type {
	case TypeTagSet, TypeTagDeleted:
		var p TagSet
		if len(e.Payload) == 0 || e.Decode(&p) != nil || p.Tag == "" {
			return all
		}
		c := manifestChange{scope: scopeTag, ref: p.Tag}
		if e.Type == TypeTagSet {
			c.to = p.Digest
		}
		return c
	case TypeManifestPut:
		var p ManifestPut
		if len(e.Payload) == 0 || e.Decode(&p) != nil || p.Digest == "" {
			return all
		}
		return manifestChange{scope: scopeRow, ref: p.Digest, put: &p}
	case TypeManifestDeleted:
		var p ManifestDeleted
		if len(e.Payload) == 0 || e.Decode(&p) != nil || p.Digest == "" {
			return all
		}
		return manifestChange{scope: scopeRow, ref: p.Digest}
	case TypeBlobCommitted, TypeBlobLinked, TypeBlobUnlinked, TypeUploadStarted, TypeUploadFinished,
		TypeUploadCancelled, TypeAPIKeyCreated, TypeAPIKeyRevoked, TypeGCSwept, TypePolicySet,
		TypePolicyRemoved, TypeManifestPulled:
		// None writes manifests or tags (a pull's used_seq is not part of
		// a lookup's answer; a commit with content adds bytes that an
		// entry holding none, read from the store instead, does not need).
		return manifestChange{}
	default: // versions, collections, moves between tiers, trash purges, types not known here
		return all
	}
}

// applyManifest applies one event's manifest effect, under c.mu. puts
// holds the entries the manifest.puts among the events being applied
// filled, by repository and digest, for the tag.sets that follow; pushed
// the content committed among them (apply's).
func (c *blobCache) applyManifest(e Event, ch manifestChange, puts map[manifestKey]manifestEntry, pushed map[string]BlobCommitted) {
	switch ch.scope {
	case scopeTag:
		c.mgen++
		c.removeManifest(manifestKey{e.Repo, "t:" + ch.ref})
	case scopeRow:
		c.mgen++
		row := manifestKey{e.Repo, ch.ref}
		c.removeManifest(manifestKey{e.Repo, "d:" + ch.ref})
		for k := range c.byRow[row] {
			c.removeManifest(k)
		}
		delete(puts, row)
	case scopeAll:
		c.mgen++
		c.manifests.Clear()
		clear(c.byRow)
		clear(puts)
	}
	switch {
	case ch.put != nil:
		p := ch.put
		ent := manifestEntry{m: Manifest{Repo: e.Repo, Digest: p.Digest, SHA256: p.SHA256, MediaType: p.MediaType,
			ArtifactType: p.ArtifactType, Size: p.Size, Subject: p.Subject}}
		if b, ok := pushed[p.SHA256]; ok {
			ent.m.Content, ent.withContent = b.Content, true
		}
		puts[manifestKey{e.Repo, p.Digest}] = ent
		c.putManifest(manifestKey{e.Repo, "d:" + p.Digest}, ent)
	case ch.to != "":
		if ent, ok := puts[manifestKey{e.Repo, ch.to}]; ok {
			c.putManifest(manifestKey{e.Repo, "t:" + ch.ref}, ent)
		}
	}
}

// getManifest returns the entry for k; withContent asks for what a
// ForRead lookup returns, which an entry filled by another lookup lacks.
// The caller must not modify the Content it gets.
func (c *blobCache) getManifest(k manifestKey, withContent bool) (m Manifest, gen uint64, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.manifests.Get(k)
	switch {
	case !ok, withContent && !e.withContent:
		return Manifest{}, c.mgen, false
	case !withContent:
		e.m.Content = nil
	}
	return e.m, c.mgen, true
}

// fillManifest keeps m, read from the views for k, unless an entry was
// dropped since gen (getManifest's) was current. An answer for a digest
// that is not the row's own (the views' fallback to the manifest with the
// same bytes under another algorithm) is not kept: which row answers it
// can change with a put of a third digest of those bytes, which drops
// only its own row's entries.
func (c *blobCache) fillManifest(gen uint64, k manifestKey, m Manifest, withContent bool) {
	if d, ok := strings.CutPrefix(k.ref, "d:"); ok && d != m.Digest {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mgen == gen {
		c.putManifest(k, manifestEntry{m: m, withContent: withContent})
	}
}

func (c *blobCache) putManifest(k manifestKey, e manifestEntry) {
	c.removeManifest(k)
	if c.manifests.Add(k, e) {
		row := manifestKey{k.repo, e.m.Digest}
		if c.byRow[row] == nil {
			c.byRow[row] = map[manifestKey]struct{}{}
		}
		c.byRow[row][k] = struct{}{}
	}
}

func (c *blobCache) removeManifest(k manifestKey) {
	if e, ok := c.manifests.Remove(k); ok {
		c.unindexManifest(k, e)
	}
}

// unindexManifest drops k, which no longer has an entry, from the keys
// answered with its row.
func (c *blobCache) unindexManifest(k manifestKey, e manifestEntry) {
	row := manifestKey{k.repo, e.m.Digest}
	delete(c.byRow[row], k)
	if len(c.byRow[row]) == 0 {
		delete(c.byRow, row)
	}
}

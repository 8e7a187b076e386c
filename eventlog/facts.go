package eventlog

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
)

// Facts read once per group commit. Five checks run for nearly every
// append of a push or a manifest put: is the committed blob tombstoned
// (guardFenced), does the log keep the content a blob.committed carries
// already (keptContent), does the repository link every blob the manifest
// names (the manifest.put guard), is the tag being set a native version
// (the tag.set guard), was the session a push ends without recording it
// recorded or ended first (the upload.finished guard). Asked one append at
// a time they are round trips each inside the committer, which every
// writer waits on; groupFacts asks them for the whole group in one query,
// once the transaction holds the write lock.
//
// Invariants that make an answer read before the group's first append
// still exact at its last:
//   - no other transaction appends meanwhile (the write lock), and only
//     appends write these views;
//   - every event of the group is of a type whose projection can neither
//     tombstone a blob, remove a link, nor publish a version (factsHold);
//     a group holding any other type reads no facts;
//   - an upload id's answer is kept only when one event of the group
//     names the id: the upload events change what it asks; likewise a
//     content's, only when one blob.committed of the group carries
//     content for that blob (only blob.committed writes contents here);
//   - only answers that let an event through are taken from the facts:
//     a tombstone found, a link missing or a version present is asked
//     again at the event, so a refusal always states what the database
//     holds at that moment (an earlier append of the group may have
//     linked the blob since).

// factsHold lists the event types a group may hold for its facts to stay
// exact: none of their projections inserts into blob_tombstones, deletes
// from blob_links or inserts into versions. A type missing here only
// costs the group its facts.
var factsHold = map[Type]bool{
	TypeBlobCommitted:   true,
	TypeBlobLinked:      true,
	TypeManifestPut:     true,
	TypeTagSet:          true,
	TypeUploadStarted:   true,
	TypeUploadFinished:  true,
	TypeUploadCancelled: true,
}

// maxFactKeys bounds the keys one facts query carries (a parameter each,
// two for a pair); a group naming more asks per event, as without facts.
const maxFactKeys = 1000

// groupFacts holds what the database said, before the group, about every
// key the group's events name. A nil *groupFacts knows nothing.
type groupFacts struct {
	tombstoned map[string]bool    // sha256 → has a blob_tombstones row
	linked     map[[2]string]bool // (repo, sha256) → has a blob_links row
	version    map[[2]string]bool // (repo, tag) → has a versions row
	uploads    map[string]bool    // upload id → has an uploads or ended_uploads row
	kept       map[string][]byte  // sha256 → the content its contents row holds, when the group carries the same
}

// contentKept reports whether the contents view holds sha256's row with
// exactly content.
func (f *groupFacts) contentKept(sha256 string, content []byte) bool {
	if f == nil {
		return false
	}
	k, ok := f.kept[sha256]
	return ok && bytes.Equal(k, content)
}

// untombstoned reports whether sha256 is known to have no tombstone.
func (f *groupFacts) untombstoned(sha256 string) bool {
	if f == nil {
		return false
	}
	t, asked := f.tombstoned[sha256]
	return asked && !t
}

// allLinked reports whether repo is known to link every one of blobs.
func (f *groupFacts) allLinked(repo string, blobs []string) bool {
	if f == nil {
		return false
	}
	for _, b := range blobs {
		if !f.linked[[2]string{repo, b}] {
			return false
		}
	}
	return true
}

// notVersion reports whether tag is known not to be a native version of
// repo.
func (f *groupFacts) notVersion(repo, tag string) bool {
	if f == nil {
		return false
	}
	v, asked := f.version[[2]string{repo, tag}]
	return asked && !v
}

// withoutKeptContent returns e, a blob.committed carrying content the
// log keeps already, byte for byte, without that content: the log keeps
// content once, however many pushes carry it (ADR 0016), and a writer
// need not ask before it appends. Only on what the facts know, and only
// for a blob without a tombstone, whose guard passes with the bytes or
// without. Anything else comes back unchanged (and is written again,
// which changes nothing but a damaged row).
func (f *groupFacts) withoutKeptContent(e Event) Event {
	if f == nil || len(f.kept) == 0 || e.Type != TypeBlobCommitted {
		return e
	}
	var v blobCommittedView
	if e.Decode(&v) != nil || !f.contentKept(v.SHA256, v.Content.bytes) || !f.untombstoned(v.SHA256) {
		return e
	}
	p := v.value()
	p.Content = nil
	e.Payload = New(e.Type, e.Repo, p).Payload
	return e
}

// uploadFree reports whether upload id is known to be neither recorded
// nor ended.
func (f *groupFacts) uploadFree(id string) bool {
	if f == nil {
		return false
	}
	taken, asked := f.uploads[id]
	return asked && !taken
}

// readFacts asks, in one query, about every key the group's events name;
// nil (and no query) when the group holds an event that could change an
// answer, names too many keys, or needs none.
func (l *Log) readFacts(ctx context.Context, tx *sql.Tx, group []*appendReq) (*groupFacts, error) {
	var blobs, claims []string
	var links, tags [][2]string
	named := map[string]int{} // upload id → the group's upload events naming it
	var carried []blobCommittedView
	carriers := map[string]int{} // sha256 → the group's blob.committed carrying content for it
	for _, r := range group {
		for _, e := range r.evs {
			if !factsHold[e.Type] {
				return nil, nil
			}
			switch e.Type {
			case TypeBlobCommitted:
				var p blobCommittedView // no copy of the content
				if e.Decode(&p) == nil {
					blobs = append(blobs, p.SHA256)
					if p.Content.n > 0 {
						carried = append(carried, p)
						carriers[p.SHA256]++
					}
				}
			case TypeManifestPut:
				var p ManifestPut
				if e.Decode(&p) == nil {
					for _, b := range p.Blobs {
						links = append(links, [2]string{e.Repo, b})
					}
				}
			case TypeTagSet:
				var p TagSet
				if e.Decode(&p) == nil {
					tags = append(tags, [2]string{e.Repo, p.Tag})
				}
			case TypeUploadStarted, TypeUploadFinished, TypeUploadCancelled:
				var p UploadFinished // the one field they share, and Unrecorded
				if e.Decode(&p) == nil {
					named[p.ID]++
					if p.Unrecorded {
						claims = append(claims, p.ID)
					}
				}
			}
		}
		if len(blobs)+2*len(links)+2*len(tags)+2*len(claims)+2*len(carried) > maxFactKeys {
			return nil, nil
		}
	}
	claims = slices.DeleteFunc(claims, func(id string) bool { return named[id] > 1 })
	carried = slices.DeleteFunc(carried, func(p blobCommittedView) bool { return carriers[p.SHA256] > 1 })
	if len(blobs)+len(links)+len(tags)+len(claims) == 0 {
		return nil, nil
	}
	var parts []string
	var args []any
	if len(blobs) > 0 {
		parts = append(parts, `SELECT 't', sha256, '', CAST(NULL AS bytea) FROM blob_tombstones WHERE sha256 IN (`+placeholders(len(blobs), 1)+`)`)
		args = append(args, anySlice(blobs)...)
	}
	if len(links) > 0 {
		parts = append(parts, `SELECT 'l', repo, sha256, CAST(NULL AS bytea) FROM blob_links WHERE (repo, sha256) IN (VALUES `+placeholders(len(links), 2)+`)`)
		args = append(args, pairArgs(links)...)
	}
	if len(tags) > 0 {
		parts = append(parts, `SELECT 'v', repo, version, CAST(NULL AS bytea) FROM versions WHERE (repo, version) IN (VALUES `+placeholders(len(tags), 2)+`)`)
		args = append(args, pairArgs(tags)...)
	}
	if len(carried) > 0 {
		// The rows found come back with their bytes, compared here: a row
		// that differs (damaged by hand) is not kept, and the content is
		// written again. Asked by key alone, the query carries no content:
		// most pushes bring content the log does not keep yet, and sending
		// it to be compared cost a copy of every carried byte into the
		// query (on PostgreSQL, a message that pgx then builds in buffers
		// it grows and drops at each flush).
		parts = append(parts, `SELECT 'c', sha256, '', bytes FROM contents WHERE sha256 IN (`+placeholders(len(carried), 1)+`)`)
		for _, p := range carried {
			args = append(args, p.SHA256)
		}
	}
	if len(claims) > 0 {
		in := placeholders(len(claims), 1)
		parts = append(parts, `SELECT 'u', id, '', CAST(NULL AS bytea) FROM uploads WHERE id IN (`+in+`) UNION ALL SELECT 'u', id, '', CAST(NULL AS bytea) FROM ended_uploads WHERE id IN (`+in+`)`)
		args = append(args, anySlice(claims)...)
		args = append(args, anySlice(claims)...)
	}
	f := &groupFacts{tombstoned: make(map[string]bool, len(blobs)), linked: map[[2]string]bool{}, version: make(map[[2]string]bool, len(tags)),
		uploads: make(map[string]bool, len(claims)), kept: map[string][]byte{}}
	for _, b := range blobs {
		f.tombstoned[b] = false
	}
	for _, id := range claims {
		f.uploads[id] = false
	}
	for _, t := range tags {
		f.version[t] = false
	}
	rows, err := tx.QueryContext(ctx, l.q(strings.Join(parts, " UNION ALL ")), args...)
	if err != nil {
		return nil, fmt.Errorf("append check: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var kind, a, b string
		var kept []byte
		if err := rows.Scan(&kind, &a, &b, &kept); err != nil {
			return nil, fmt.Errorf("append check: %w", err)
		}
		switch kind {
		case "t":
			f.tombstoned[a] = true
		case "l":
			f.linked[[2]string{a, b}] = true
		case "v":
			f.version[[2]string{a, b}] = true
		case "u":
			f.uploads[a] = true
		case "c":
			for _, p := range carried {
				if p.SHA256 == a && bytes.Equal(p.Content.bytes, kept) {
					f.kept[a] = p.Content.bytes
				}
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("append check: %w", err)
	}
	return f, nil
}

// placeholders returns n tuples of width parameters: "?, ?" for width 1,
// "(?, ?), (?, ?)" for width 2.
func placeholders(n, width int) string {
	one := strings.TrimSuffix(strings.Repeat("?, ", width), ", ")
	if width > 1 {
		one = "(" + one + ")"
	}
	return strings.TrimSuffix(strings.Repeat(one+", ", n), ", ")
}

func pairArgs(pairs [][2]string) []any {
	out := make([]any, 0, 2*len(pairs))
	for _, p := range pairs {
		out = append(out, p[0], p[1])
	}
	return out
}

// Package eventlog is the control plane's source of truth: an append-only,
// hash-chained log of every state change, and the materialised views the
// API reads, written in the same transaction as each event.
//
// Invariants:
//
//   - Sequence numbers start at 1 and are gap-free; event N+1 commits after
//     event N.
//   - Event N's Hash is BLAKE3 over its record (see chainInput) including
//     PrevHash, which equals event N-1's Hash (32 zero bytes for event 1).
//     Altering, removing or reordering any event breaks the chain.
//   - Every view row is a function of the events alone: dropping the views
//     and replaying the log yields exactly the same rows (Replay, Dump).
//   - An event that says bytes exist is appended only after the blob store
//     has made them durable, or carries them itself (BlobCommitted.Content,
//     which the group commit makes durable with the event).
//
// The log is backend-neutral SQL over database/sql; eventlog/sqlite and
// eventlog/postgres open a database and hand it to Open. Checks that must
// not race (immutable versions, references a manifest needs) run inside
// the append's transaction (guard.go, and apply).
package eventlog

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/zeebo/blake3"
)

// Type names an event.
type Type string

// The event types. Payload types of the same name describe their payloads.
const (
	TypeBlobCommitted    Type = "blob.committed"
	TypeBlobLinked       Type = "blob.linked"
	TypeBlobUnlinked     Type = "blob.unlinked"
	TypeManifestPut      Type = "manifest.put"
	TypeManifestDeleted  Type = "manifest.deleted"
	TypeTagSet           Type = "tag.set"
	TypeTagDeleted       Type = "tag.deleted"
	TypeUploadStarted    Type = "upload.started"
	TypeUploadFinished   Type = "upload.finished"
	TypeUploadCancelled  Type = "upload.cancelled"
	TypeBlobTiered       Type = "blob.tiered"
	TypeVersionPublished Type = "version.published"
	TypeVersionDeleted   Type = "version.deleted"
	TypeAPIKeyCreated    Type = "apikey.created" // apikeys.go
	TypeAPIKeyRevoked    Type = "apikey.revoked"
	TypeGCCondemned      Type = "gc.condemned" // gc.go
	TypeGCSwept          Type = "gc.swept"
	TypePolicySet        Type = "retention.policy.set" // retention.go
	TypePolicyRemoved    Type = "retention.policy.removed"
	TypeTrashPurged      Type = "retention.purged"
	TypeManifestPulled   Type = "manifest.pulled"
)

// Types returns every event type, in the order of the constants above:
// the set a reader of the log may meet. A new constant belongs here too;
// registry's TestOpenAPIEventTypes fails until it is, and until the API
// document describes it. The slice is new on each call, so a caller may
// change it.
func Types() []Type {
	return []Type{
		TypeBlobCommitted, TypeBlobLinked, TypeBlobUnlinked,
		TypeManifestPut, TypeManifestDeleted, TypeTagSet, TypeTagDeleted,
		TypeUploadStarted, TypeUploadFinished, TypeUploadCancelled,
		TypeBlobTiered, TypeVersionPublished, TypeVersionDeleted,
		TypeAPIKeyCreated, TypeAPIKeyRevoked, TypeGCCondemned, TypeGCSwept,
		TypePolicySet, TypePolicyRemoved, TypeTrashPurged, TypeManifestPulled,
	}
}

// Event is one record of the log.
type Event struct {
	Seq      int64
	Time     time.Time
	Type     Type
	Repo     string // empty for events that concern no repository
	Payload  []byte // canonical CBOR of the type's payload struct
	Actor    Actor  // who made the change (zero for events older than actors)
	PrevHash []byte
	Hash     []byte

	// Fence is not recorded. On a blob.committed it is the log position
	// the writer had read before it made the bytes durable (Observed);
	// Append refuses the event with ErrFenced if a collector condemned or
	// swept the blob after that position, since the bytes the writer found
	// or wrote may be the ones the sweep deleted (gc.go).
	Fence int64

	// PayloadSize is the stored payload's length. Set by Read, which
	// leaves Payload nil when it is larger than Query.MaxPayload.
	PayloadSize int64
}

// Payloads. Digests are strings in "algorithm:hex" form.
type (
	// BlobCommitted: bytes are durable in the blob store under SHA256 or,
	// when Content is set, are Content: small content that arrived whole
	// (manifests, small blobs) travels in the event, and the contents view
	// keeps it (ADR 0016). Append checks Content's length against Size,
	// and drops Content the log keeps already, byte for byte (facts.go):
	// the event recorded then carries none.
	BlobCommitted struct {
		SHA256  string `json:"sha256"`
		BLAKE3  string `json:"blake3"`
		SHA512  string `json:"sha512,omitempty"`
		Size    int64  `json:"size"`
		Content []byte `json:"content,omitempty"`
	}
	// BlobLinked: the repository may serve the blob.
	BlobLinked struct {
		SHA256 string `json:"sha256"`
	}
	// BlobUnlinked: the repository no longer serves the blob.
	BlobUnlinked struct {
		SHA256 string `json:"sha256"`
		// Mark, set by the collector, is the log position it found the
		// link unused at: Append refuses the unlink if the repository
		// linked the blob again after it (a push, or a read renewing it).
		Mark int64 `json:"mark,omitempty"`
	}
	// BlobTiered: the blob's bytes are now durable and verified in Tier
	// ("hot" or "cold"); the copy in the other tier may be removed.
	BlobTiered struct {
		SHA256 string `json:"sha256"`
		Tier   string `json:"tier"`
	}
	// ManifestPut: a manifest exists in the repository under Digest; its
	// bytes are the blob SHA256.
	ManifestPut struct {
		Digest       string            `json:"digest"`
		SHA256       string            `json:"sha256"`
		MediaType    string            `json:"mediaType"`
		ArtifactType string            `json:"artifactType,omitempty"`
		Size         int64             `json:"size"`
		Subject      string            `json:"subject,omitempty"`
		Annotations  map[string]string `json:"annotations,omitempty"`
		// Blobs are the storage keys (sha256) of the config and layers
		// the repository held when the manifest was put: what a pull of
		// it needs. Append refuses the put unless the repository links
		// each, and refuses to unlink one while the manifest exists.
		Blobs []string `json:"blobs,omitempty"`
		// Manifests are the digests of an index's children that the
		// repository held; Append refuses the put unless each exists.
		Manifests []string `json:"manifests,omitempty"`
		// Complete says Blobs and Manifests name everything the manifest
		// references. A put without it (a sparse push, a non-distributable
		// layer not held, or a put recorded before the field existed) may
		// reference more: the collector reads such a manifest to learn what.
		Complete bool `json:"complete,omitempty"`
	}
	// ManifestDeleted: the manifest and every tag pointing at it are gone.
	ManifestDeleted struct {
		Digest string `json:"digest"`
		Retention
	}
	// TagSet: Tag points at the manifest Digest (created or moved).
	TagSet struct {
		Tag    string `json:"tag"`
		Digest string `json:"digest"`
		// Restores is set when the tag is restored (retention.go): the
		// event that had set it before retention deleted it (the original
		// one, across repeated restores), whose time stays the tag's push
		// time for retention.
		Restores int64 `json:"restores,omitempty"`
		// Fixed: the tag is immutable for the writer; Append refuses to
		// move it if it points at another manifest by then.
		Fixed bool `json:"fixed,omitempty"`
	}
	// TagDeleted: Tag no longer exists.
	TagDeleted struct {
		Tag string `json:"tag"`
		Retention
	}
	// UploadStarted: an upload session is recorded, as its first bytes
	// arrive (ADR 0018); a POST that opens a session records nothing.
	UploadStarted struct {
		ID string `json:"id"`
	}
	// UploadFinished: an upload session's bytes became the blob Digest.
	UploadFinished struct {
		ID     string `json:"id"`
		SHA256 string `json:"sha256"`
		SessionEnd
		// Unrecorded: the session was never recorded, and this event is
		// the whole of it (a POST, then a PUT with the blob). Append
		// refuses it (ErrUploadTaken) if the id was recorded or ended
		// first: its writer held no lease (ADR 0021).
		Unrecorded bool `json:"unrecorded,omitempty"`
	}
	// VersionPublished: a native artifact version exists. Its manifest is
	// the canonical CBOR blob Native*; OCIDigest is the manifest derived
	// from it, recorded by the manifest.put and tag.set of the same append.
	VersionPublished struct {
		Version      string `json:"version"`
		NativeSHA256 string `json:"nativeSha256"`
		NativeBLAKE3 string `json:"nativeBlake3"`
		NativeSize   int64  `json:"nativeSize"`
		OCIDigest    string `json:"ociDigest"`
		// Restores: as TagSet's, for a restored version.
		Restores int64 `json:"restores,omitempty"`
	}
	// VersionDeleted: a native version is gone (its tag and derived
	// manifest go in the same append); its blobs are left to GC.
	VersionDeleted struct {
		Version string `json:"version"`
		Retention
	}
	// UploadCancelled: an upload session was cancelled or expired.
	UploadCancelled struct {
		ID     string `json:"id"`
		Reason string `json:"reason"`
		SessionEnd
	}
)

// SessionEnd is what the end of an upload session (finished or cancelled)
// says of its id. A session need not have an upload.started: a registry
// may hand out ids that are valid without a record until they expire, and
// record a session only once it holds bytes (ADR 0018).
type SessionEnd struct {
	// IDExpires, in Unix nanoseconds, is when the session's id stops
	// being valid on its own. When it lies after the event's time, the
	// log remembers that the session ended until then (Upload answers
	// ErrUploadEnded), so that the id cannot start a session again.
	// Zero: the id is never valid without a record.
	IDExpires int64 `json:"idExpires,omitempty"`
}

// New builds an unsequenced event with payload p encoded as canonical CBOR
// (RFC 8949 core deterministic encoding: map keys are the payload
// structs' json names). Seq, Time and hashes are assigned by Append.
func New(t Type, repo string, p any) Event {
	em, err := payloadEncoder()
	if err == nil {
		var b []byte
		if b, err = em.Marshal(p); err == nil {
			return Event{Type: t, Repo: repo, Payload: b}
		}
	}
	// Payloads are the plain structs above; they always encode.
	panic(fmt.Sprintf("eventlog: encode %s payload: %v", t, err))
}

// payloadEncoder builds the canonical encoder once. It is a cached
// immutable value, not mutable state: the options never change.
var payloadEncoder = sync.OnceValues(func() (cbor.EncMode, error) { return cbor.CoreDetEncOptions().EncMode() })

// Decode unmarshals the event's payload into p. Payloads are canonical
// CBOR; logs written before CBOR payloads hold JSON objects, which are
// still read.
func (e Event) Decode(p any) error {
	var err error
	if len(e.Payload) > 0 && e.Payload[0] == '{' {
		err = json.Unmarshal(e.Payload, p)
	} else {
		err = cbor.Unmarshal(e.Payload, p)
	}
	if err != nil {
		return fmt.Errorf("event %d (%s): decode payload: %w", e.Seq, e.Type, err)
	}
	return nil
}

// genesis is the PrevHash of event 1.
var genesis = make([]byte, 32)

// chainHash computes an event's hash from its fields and PrevHash. The input
// is unambiguous: a domain tag, fixed-width integers, and length-prefixed
// strings, so no two distinct events share an input. An event with an
// actor uses form v2, which appends it; one without keeps form v1, so logs
// written before actors existed verify unchanged.
//
//	"artifactstore.event.v1" | prev_hash(32) | seq(u64be) | time_ns(i64be)
//	| len(type) u32be | type | len(repo) u32be | repo | len(payload) u32be | payload
//	"artifactstore.event.v2" | the same fields | len(actor) u32be | actor (Actor.encode)
func chainHash(e Event) []byte {
	h := blake3.New()
	actor := e.Actor.encode()
	if actor == "" {
		h.Write([]byte("artifactstore.event.v1"))
	} else {
		h.Write([]byte("artifactstore.event.v2"))
	}
	h.Write(e.PrevHash)
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(e.Seq))
	h.Write(n[:])
	binary.BigEndian.PutUint64(n[:], uint64(e.Time.UnixNano()))
	h.Write(n[:])
	fields := [][]byte{[]byte(e.Type), []byte(e.Repo), e.Payload}
	if actor != "" {
		fields = append(fields, []byte(actor))
	}
	for _, s := range fields {
		binary.BigEndian.PutUint32(n[:4], uint32(len(s)))
		h.Write(n[:4])
		h.Write(s)
	}
	return h.Sum(nil)
}

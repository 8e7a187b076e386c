package eventlog

import (
	"encoding/json"
	"errors"

	"github.com/fxamacker/cbor/v2"
)

// blobCommittedView is a blob.committed decoded without copying its
// content. The committer decodes a push's blob.committed several times
// (its guard, the append's own list of blobs, the projection, the lookups
// cache); each copied up to InlineMax bytes, most of what a small push
// allocated.
//
// Content aliases the event's payload, which is never modified once built
// (New encodes a fresh one; a payload read from the database is a fresh
// slice): a reader must not modify it either, and one that keeps it keeps
// the payload.
type blobCommittedView struct {
	SHA256  string     `json:"sha256"`
	BLAKE3  string     `json:"blake3"`
	SHA512  string     `json:"sha512,omitempty"`
	Size    int64      `json:"size"`
	Content contentRef `json:"content,omitempty"`
}

// value is the payload as a BlobCommitted, its Content still aliasing.
func (v blobCommittedView) value() BlobCommitted {
	return BlobCommitted{SHA256: v.SHA256, BLAKE3: v.BLAKE3, SHA512: v.SHA512, Size: v.Size, Content: v.Content.bytes}
}

// contentRef decodes a byte string without copying it: n is its length,
// set says one was there (a BlobCommitted whose Content is not nil), and
// bytes are its bytes, within the payload.
type contentRef struct {
	n     int
	set   bool
	bytes []byte
}

// UnmarshalCBOR finds the bytes after the byte string's head: data is the
// whole item, within the payload, which the decoder has checked is well
// formed.
func (c *contentRef) UnmarshalCBOR(data []byte) error {
	if len(data) == 0 {
		return errors.New("content: empty item")
	}
	if data[0] == 0xf6 { // null
		*c = contentRef{}
		return nil
	}
	if data[0]>>5 != 2 {
		return errors.New("content: not a byte string")
	}
	head := 0
	switch ai := data[0] & 31; {
	case ai < 24:
		head = 1
	case ai <= 27:
		head = 1 + 1<<(ai-24) // 1, 2, 4 or 8 bytes of length follow
	default: // an indefinite length, in chunks: joined, in a copy
		var b []byte
		if err := cbor.Unmarshal(data, &b); err != nil {
			return err
		}
		*c = contentRef{len(b), true, b}
		return nil
	}
	if head > len(data) {
		return errors.New("content: truncated byte string")
	}
	b := data[head:len(data):len(data)] // an append must not write past it
	if len(b) == 0 {
		b = []byte{} // set, as BlobCommitted's Content would be
	}
	*c = contentRef{len(b), true, b}
	return nil
}

// UnmarshalJSON decodes the base64 of payloads written as JSON (events
// from before CBOR payloads), the long way.
func (c *contentRef) UnmarshalJSON(data []byte) error {
	var b []byte
	if err := json.Unmarshal(data, &b); err != nil {
		return err
	}
	*c = contentRef{len(b), b != nil, b}
	return nil
}

// CarriedContent is how many bytes of content a blob.committed carries in
// the log (ADR 0016), read without copying them; 0 for other events, for
// blobs in the store and for payloads that do not decode.
func (e Event) CarriedContent() int {
	if e.Type != TypeBlobCommitted {
		return 0
	}
	var p blobCommittedView
	if e.Decode(&p) != nil {
		return 0
	}
	return p.Content.n
}

package eventlog

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

// TestBlobCommittedView: decoding a blob.committed without copying its
// bytes gives the keys, the content's length and its bytes a full decode
// gives, for every width
// of CBOR length, for indefinite-length byte strings, for content absent
// and for payloads written as JSON.
func TestBlobCommittedView(t *testing.T) {
	check := func(name string, e Event, want BlobCommitted) {
		t.Helper()
		var v blobCommittedView
		if err := e.Decode(&v); err != nil {
			t.Fatalf("%s: decode view: %v", name, err)
		}
		if v.Content.n != len(want.Content) || v.Content.set != (want.Content != nil) {
			t.Errorf("%s: content of %d bytes (set %v), want %d (set %v)", name, v.Content.n, v.Content.set, len(want.Content), want.Content != nil)
		}
		if got := v.value(); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: value() = %+v\nwant %+v", name, got, want)
		}
		if got := e.CarriedContent(); got != len(want.Content) {
			t.Errorf("%s: CarriedContent = %d, want %d", name, got, len(want.Content))
		}
	}
	for _, n := range []int{0, 1, 23, 24, 255, 256, 65535, 65536, 70000} {
		p := BlobCommitted{SHA256: "sha256:a", BLAKE3: "blake3:b", Size: int64(n)}
		if n > 0 {
			p.Content = make([]byte, n)
			p.Content[n-1] = 7
		}
		check("cbor", New(TypeBlobCommitted, "r", p), p)
		js, _ := json.Marshal(p)
		check("json", Event{Type: TypeBlobCommitted, Payload: js}, p)
	}
	// The bytes are the payload's, not a copy.
	e := New(TypeBlobCommitted, "r", BlobCommitted{SHA256: "sha256:a", Size: 3, Content: []byte{1, 2, 3}})
	var v blobCommittedView
	if err := e.Decode(&v); err != nil {
		t.Fatal(err)
	}
	if end := &e.Payload[len(e.Payload)-1]; len(v.Content.bytes) != 3 || &v.Content.bytes[2] != end {
		t.Errorf("the content is not the payload's last bytes: %v in %x", v.Content.bytes, e.Payload)
	}
	// An indefinite-length byte string: two chunks, 3 and 2 bytes.
	item := []byte{0x5f, 0x43, 1, 2, 3, 0x42, 4, 5, 0xff}
	payload, err := cbor.Marshal(map[string]any{"sha256": "sha256:a", "blake3": "blake3:b", "size": 5, "content": cbor.RawMessage(item)})
	if err != nil {
		t.Fatal(err)
	}
	check("indefinite", Event{Type: TypeBlobCommitted, Payload: payload}, BlobCommitted{SHA256: "sha256:a", BLAKE3: "blake3:b", Size: 5, Content: []byte{1, 2, 3, 4, 5}})
	if got := New(TypeBlobLinked, "r", BlobLinked{SHA256: "sha256:a"}).CarriedContent(); got != 0 {
		t.Errorf("CarriedContent of blob.linked = %d", got)
	}
}

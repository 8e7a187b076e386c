package blobstoretest

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/artifact-store/artifact-store/blobstore"
	"github.com/artifact-store/artifact-store/digest"
)

// testAside: named objects beside the blobs are replaced whole, never
// listed as blobs, and cannot be named into the blob or staging areas.
func testAside(t *testing.T, s *blobstore.Store) {
	ctx := context.Background()
	if _, err := s.ReadAside(ctx, "anchors/head", 1024); !errors.Is(err, blobstore.ErrNotFound) {
		t.Fatalf("read of a missing object: %v, want ErrNotFound", err)
	}
	for _, v := range []string{"first version of the record", "second"} {
		if err := s.PutAside(ctx, "anchors/head", []byte(v)); err != nil {
			t.Fatal(err)
		}
		got, err := s.ReadAside(ctx, "anchors/head", 1024)
		if err != nil || string(got) != v {
			t.Fatalf("read back %q, %v; want %q", got, err, v)
		}
	}
	if _, err := s.ReadAside(ctx, "anchors/head", 3); err == nil {
		t.Fatal("a read past its limit succeeded")
	}
	s.Walk(ctx, func(b blobstore.BlobInfo) error {
		t.Errorf("Walk lists %s: objects kept aside are not blobs", b.Key)
		return nil
	})
	for _, bad := range []string{"", "../x", "a//b", ".hidden", "A", "sha256/ab", "uploads/x", "blobs/sha256/x", "a/../../b"} {
		if err := s.PutAside(ctx, bad, []byte("x")); err == nil {
			t.Errorf("PutAside(%q) succeeded", bad)
		}
	}
}

// testQuarantineAndRepair: a damaged copy moved aside is no longer served,
// and a commit of the right bytes repairs a key whose copy has the wrong
// size (truncated), instead of keeping it as "already stored".
func testQuarantineAndRepair(t *testing.T, s *blobstore.Store) {
	ctx := context.Background()
	data := random(t, 3000)
	key := digest.FromBytes(digest.SHA256, data)
	// Plant a truncated copy under the key, through the backend, which
	// does not hash: what a disk or an operator's mistake leaves behind.
	b := s.Backend()
	id := blobstore.NewUploadID()
	if err := b.CreateUpload(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := b.AppendUpload(ctx, id, 0, bytes.NewReader(data[:1000])); err != nil {
		t.Fatal(err)
	}
	if err := b.CommitUpload(ctx, id, key); err != nil {
		t.Fatal(err)
	}
	if q, err := s.Quarantined(ctx, key); err != nil || q {
		t.Fatalf("quarantined before any quarantine: %v %v", q, err)
	}
	// A re-push of the right bytes replaces the truncated copy.
	ds, err := s.Ingest(ctx, bytes.NewReader(data), key)
	if err != nil {
		t.Fatal(err)
	}
	if ds.Size != 3000 || !bytes.Equal(readAll(t, s, key), data) {
		t.Fatal("the re-push left the truncated copy in place")
	}
	if q, err := s.Quarantined(ctx, key); err != nil || !q {
		t.Fatalf("the truncated copy was not kept aside: %v %v", q, err)
	}
	// Quarantine takes the blob out of service.
	if err := s.Quarantine(ctx, key); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open(ctx, key); !errors.Is(err, blobstore.ErrNotFound) {
		t.Fatalf("open after quarantine: %v, want ErrNotFound", err)
	}
	if err := s.Quarantine(ctx, key); !errors.Is(err, blobstore.ErrNotFound) {
		t.Fatalf("second quarantine: %v, want ErrNotFound", err)
	}
	// And a re-push brings it back.
	if _, err := s.Ingest(ctx, bytes.NewReader(data), key); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readAll(t, s, key), data) {
		t.Fatal("re-push after quarantine: wrong bytes")
	}
	n := 0
	s.Walk(ctx, func(blobstore.BlobInfo) error { n++; return nil })
	if n != 1 {
		t.Fatalf("Walk lists %d blobs, want 1 (the quarantined copy is not a blob)", n)
	}
}

package s3

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"testing"

	"github.com/artifact-store/artifact-store/blobstore"
	"github.com/artifact-store/artifact-store/blobstore/blobstoretest"
	"github.com/artifact-store/artifact-store/blobstore/s3/s3test"
	"github.com/artifact-store/artifact-store/digest"
)

func newBackend(t testing.TB, srv *s3test.Server, prefix string) *Backend {
	b, err := New(context.Background(), Options{Endpoint: srv.Endpoint, AccessKey: s3test.AccessKey, SecretKey: s3test.SecretKey,
		Region: "us-east-1", Bucket: s3test.Bucket(), Prefix: prefix, PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestContract(t *testing.T) {
	srv := s3test.Start(t)
	blobstoretest.Run(t, func(t *testing.T) blobstore.Backend { return newBackend(t, srv, "artifactstore/test") })
}

// TestComposeLargeChunks commits an upload of chunks large enough for S3
// to assemble server-side (UploadPartCopy), and checks the bytes.
func TestComposeLargeChunks(t *testing.T) {
	srv := s3test.Start(t)
	b := newBackend(t, srv, "")
	s := blobstore.New(b)
	ctx := context.Background()
	data := make([]byte, 13<<20)
	rand.Read(data)
	id := blobstore.NewUploadID()
	if err := s.CreateUpload(ctx, id); err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(data); off += 6 << 20 {
		end := min(off+6<<20, len(data))
		if _, err := s.AppendUpload(ctx, id, int64(off), bytes.NewReader(data[off:end])); err != nil {
			t.Fatal(err)
		}
	}
	ds, err := s.CommitUpload(ctx, id, digest.FromBytes(digest.SHA256, data))
	if err != nil {
		t.Fatal(err)
	}
	f, err := s.Open(ctx, ds.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, _ := io.ReadAll(f)
	if !bytes.Equal(got, data) {
		t.Fatalf("composed blob: %d bytes, equal=%v", len(got), bytes.Equal(got, data))
	}
	if ups, _ := s.ListUploads(ctx); len(ups) != 0 {
		t.Fatalf("staging left: %v", ups)
	}
}

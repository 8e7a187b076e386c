package fs

import (
	"testing"

	"github.com/artifact-store/artifact-store/blobstore"
	"github.com/artifact-store/artifact-store/blobstore/blobstoretest"
)

func TestContract(t *testing.T) {
	blobstoretest.Run(t, func(t *testing.T) blobstore.Backend {
		b, err := New(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}

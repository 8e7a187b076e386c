//go:build linux

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"flag"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/artifact-store/artifact-store/blobstore"
)

// --buffered-blobs reaches the filesystem backend: a large blob is then
// served from the page cache (no direct-I/O stream), and without it
// streamed past the cache where the filesystem takes direct I/O.
func TestBufferedBlobsFlag(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	probe, err := os.OpenFile(filepath.Join(dir, "probe"), os.O_CREATE|os.O_WRONLY|syscall.O_DIRECT, 0o644)
	directIO := err == nil
	if directIO {
		probe.Close()
	}
	p := make([]byte, 33<<20)
	rand.Read(p)
	for _, args := range [][]string{nil, {"--buffered-blobs"}} {
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		c := storeFlags(fs)
		if err := fs.Parse(append([]string{"--data", filepath.Join(dir, []string{"direct", "buffered"}[len(args)])}, args...)); err != nil {
			t.Fatal(err)
		}
		b, err := openBackend(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		s := blobstore.New(b)
		ds, err := s.Ingest(ctx, bytes.NewReader(p), "")
		if err != nil {
			t.Fatal(err)
		}
		st := s.OpenStream(ctx, ds.SHA256, int64(len(p)))
		if want := directIO && len(args) == 0; (st != nil) != want {
			t.Fatalf("flags %q: a direct-I/O stream of 33 MiB: %v, want %v", args, st != nil, want)
		}
		if st != nil {
			st.Close()
		}
	}
}

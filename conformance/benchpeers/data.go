package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
)

// workloadData is what a run generates once and every server receives:
// one random file the size of a large blob, the small blobs, and an OCI
// layout for skopeo. Large blobs are streamed from the file, never held
// in memory.
type workloadData struct {
	bigPath   string  // the random file; oras pushes it as it is
	monolith  bigBlob // the file under another first bytes, for the monolithic push
	chunked   bigBlob // and under others, for the chunked push
	small     []smallBlob
	layout    string   // an OCI image layout, tag "v1", for skopeo
	layerSize int64    // bytes of its layers, together
	layers    []string // the layers' digests
	file      *os.File
}

func (d *workloadData) close() { d.file.Close() }

type smallBlob struct {
	data   []byte
	digest string
}

// generate writes the run's data under dir.
func generate(ctx context.Context, dir string, cfg config) (*workloadData, error) {
	d := &workloadData{bigPath: filepath.Join(dir, "big.bin")}
	if err := writeRandom(ctx, d.bigPath, cfg.bigSize); err != nil {
		return nil, err
	}
	f, err := os.Open(d.bigPath)
	if err != nil {
		return nil, err
	}
	d.file = f
	// Three blobs from one file: no server holds the blob a step pushes
	// because an earlier step pushed the same bytes.
	d.monolith = bigBlob{file: f, size: cfg.bigSize, head: []byte("benchpeers:monolithic")}
	d.chunked = bigBlob{file: f, size: cfg.bigSize, head: []byte("benchpeers:chunked-patches")}
	if err := digestBoth(&d.monolith, &d.chunked); err != nil {
		f.Close()
		return nil, err
	}
	d.small = make([]smallBlob, cfg.blobs)
	for i := range d.small {
		b := make([]byte, cfg.blobSize)
		rand.Read(b)
		d.small[i] = smallBlob{data: b, digest: sha256Digest(b)}
	}
	d.layout = filepath.Join(dir, "layout")
	if d.layers, d.layerSize, err = writeLayout(d.layout, cfg.layers, cfg.layerSize); err != nil {
		f.Close()
		return nil, err
	}
	return d, nil
}

// writeRandom writes size pseudo-random bytes (ChaCha8, randomly seeded:
// incompressible and different every run) to path, 1 MiB at a time.
func writeRandom(ctx context.Context, path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	var seed [32]byte
	rand.Read(seed[:])
	src := mrand.NewChaCha8(seed)
	buf := make([]byte, mib)
	for left := size; left > 0; left -= int64(len(buf)) {
		if err := ctx.Err(); err != nil {
			f.Close()
			return err
		}
		buf = buf[:min(int64(len(buf)), left)]
		src.Read(buf)
		if _, err := f.Write(buf); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

// bigBlob is a large blob: the random file with its first len(head) bytes
// replaced by head.
type bigBlob struct {
	file   *os.File
	size   int64
	head   []byte
	digest string
}

// reader streams n bytes of the blob from offset off.
func (b *bigBlob) reader(off, n int64) io.Reader {
	h := int64(len(b.head))
	var parts []io.Reader
	if off < h {
		parts = append(parts, bytes.NewReader(b.head[off:min(off+n, h)]))
	}
	from := max(off, h)
	if end := off + n; end > from {
		parts = append(parts, io.NewSectionReader(b.file, from, end-from))
	}
	return io.MultiReader(parts...)
}

// digestBoth hashes the blobs, which share a file, in one read of it.
func digestBoth(a, b *bigBlob) error {
	ha, hb := sha256.New(), sha256.New()
	ha.Write(a.head)
	hb.Write(b.head)
	// The file past the longer head is common to both; the few bytes
	// between the heads' ends go to the blob with the shorter head.
	la, lb := int64(len(a.head)), int64(len(b.head))
	if la < lb {
		io.Copy(ha, io.NewSectionReader(a.file, la, lb-la))
	} else {
		io.Copy(hb, io.NewSectionReader(b.file, lb, la-lb))
	}
	from := max(la, lb)
	if _, err := io.Copy(io.MultiWriter(ha, hb), io.NewSectionReader(a.file, from, a.size-from)); err != nil {
		return err
	}
	a.digest, b.digest = hexDigest(ha), hexDigest(hb)
	return nil
}

func sha256Digest(p []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(p)) }
func hexDigest(h hash.Hash) string { return fmt.Sprintf("sha256:%x", h.Sum(nil)) }

// writeLayout writes an OCI image layout at dir with n random layers of
// size bytes each, tagged "v1", and returns the layers' digests and their
// total size. Each
// layer is a gzip stream of stored (uncompressed) blocks: a real gzip
// layer, so that skopeo copies it as it is instead of compressing
// random bytes, which would measure gzip rather than the registry.
func writeLayout(dir string, n, size int) (digests []string, total int64, err error) {
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return nil, 0, err
	}
	put := func(data []byte) (string, error) {
		d := sha256Digest(data)
		return d, os.WriteFile(filepath.Join(blobs, d[len("sha256:"):]), data, 0o644)
	}
	type descriptor struct {
		MediaType string `json:"mediaType"`
		Digest    string `json:"digest"`
		Size      int64  `json:"size"`
	}
	var layers []descriptor
	var diffIDs []string
	for range n {
		raw := make([]byte, size)
		rand.Read(raw)
		diffIDs = append(diffIDs, sha256Digest(raw))
		gz, err := gzipStored(raw)
		if err != nil {
			return nil, 0, err
		}
		d, err := put(gz)
		if err != nil {
			return nil, 0, err
		}
		digests, total = append(digests, d), total+int64(len(gz))
		layers = append(layers, descriptor{"application/vnd.oci.image.layer.v1.tar+gzip", d, int64(len(gz))})
	}
	config, _ := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs},
	})
	cd, err := put(config)
	if err != nil {
		return nil, 0, err
	}
	manifest, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        descriptor{"application/vnd.oci.image.config.v1+json", cd, int64(len(config))},
		"layers":        layers,
	})
	md, err := put(manifest)
	if err != nil {
		return nil, 0, err
	}
	index, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.index.v1+json",
		"manifests": []map[string]any{{
			"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": len(manifest),
			"annotations": map[string]string{"org.opencontainers.image.ref.name": "v1"},
		}},
	})
	if err := os.WriteFile(filepath.Join(dir, "index.json"), index, 0o644); err != nil {
		return nil, 0, err
	}
	return digests, total, os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
}

// gzipStored is raw as a gzip stream without compression.
func gzipStored(raw []byte) ([]byte, error) {
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.NoCompression)
	if _, err := w.Write(raw); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// The steps that send requests themselves: large blobs one request after
// another, small requests from cfg.clients concurrent clients.

// pushMonolithic pushes the large blob as one PUT, streamed from the file.
func pushMonolithic(ctx context.Context, w *workload) (float64, error) {
	b := &w.data.monolith
	start := time.Now()
	if err := w.pushBlob(ctx, repoBig, b.reader(0, b.size), b.size, b.digest); err != nil {
		return 0, err
	}
	r := rate(float64(b.size)/1e6, start)
	return r, w.checkBlob(ctx, repoBig, b.digest, b.size)
}

// pushChunked pushes the other large blob as cfg.chunks PATCHes, each to
// the location the previous answer gave, then a PUT ?digest= without
// bytes.
func pushChunked(ctx context.Context, w *workload) (float64, error) {
	b := &w.data.chunked
	start := time.Now()
	loc, err := w.startUpload(ctx, repoBig)
	if err != nil {
		return 0, err
	}
	chunk := b.size / int64(w.cfg.chunks)
	for i := range w.cfg.chunks {
		off := int64(i) * chunk
		n := chunk
		if i == w.cfg.chunks-1 {
			n = b.size - off // the last chunk takes the remainder
		}
		resp, err := w.do(ctx, "PATCH", loc, b.reader(off, n), n, 202,
			"Content-Type", "application/octet-stream",
			"Content-Range", fmt.Sprintf("%d-%d", off, off+n-1))
		if err != nil {
			return 0, fmt.Errorf("chunk %d: %w", i, err)
		}
		done(resp)
		if loc = resp.Header.Get("Location"); loc == "" {
			return 0, fmt.Errorf("PATCH chunk %d: no Location", i)
		}
	}
	resp, err := w.do(ctx, "PUT", withDigest(loc, b.digest), bytes.NewReader(nil), 0, 201)
	if err != nil {
		return 0, err
	}
	done(resp)
	r := rate(float64(b.size)/1e6, start)
	return r, w.checkBlob(ctx, repoBig, b.digest, b.size)
}

// concurrently runs op(i) for every i in [0, n) from clients goroutines
// and returns the operations per second. The first error stops the rest.
func concurrently(ctx context.Context, n, clients int, op func(ctx context.Context, i int) error) (float64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next atomic.Int64
	var once sync.Once
	var first error
	var wg sync.WaitGroup
	start := time.Now()
	for range clients {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := op(ctx, i); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		})
	}
	wg.Wait()
	if first != nil {
		return 0, first
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return rate(float64(n), start), nil
}

func pushSmall(ctx context.Context, w *workload) (float64, error) {
	return concurrently(ctx, len(w.data.small), w.cfg.clients, func(ctx context.Context, i int) error {
		b := w.data.small[i]
		return w.pushBlob(ctx, repoSmall, bytes.NewReader(b.data), int64(len(b.data)), b.digest)
	})
}

func pullSmall(ctx context.Context, w *workload) (float64, error) {
	return concurrently(ctx, len(w.data.small), w.cfg.clients, func(ctx context.Context, i int) error {
		return w.getBlob(ctx, repoSmall, w.data.small[i])
	})
}

// manifestSet is the data of the manifests step: a config and a layer,
// and different manifests that use them.
type manifestSet struct {
	config, layer smallBlob
	bodies        [][]byte
	digests       []string
}

func newManifestSet(n int, layer smallBlob) manifestSet {
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	m := manifestSet{config: smallBlob{config, sha256Digest(config)}, layer: layer}
	for i := range n {
		m.bodies = append(m.bodies, manifestFor(m.config, layer, i))
		m.digests = append(m.digests, sha256Digest(m.bodies[i]))
	}
	return m
}

// manifestFor is the i-th manifest of the manifests step: the same config
// and layer, and an annotation that makes each one different.
func manifestFor(config, layer smallBlob, i int) []byte {
	desc := func(mt string, b smallBlob) map[string]any {
		return map[string]any{"mediaType": mt, "digest": b.digest, "size": len(b.data)}
	}
	m, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     mediaTypeManifest,
		"config":        desc("application/vnd.oci.image.config.v1+json", config),
		"layers":        []any{desc("application/vnd.oci.image.layer.v1.tar", layer)},
		"annotations":   map[string]string{"bench.n": fmt.Sprint(i)},
	})
	return m
}

// pushBlobs pushes the config and the layer, so that the manifests are
// complete.
func (m manifestSet) pushBlobs(ctx context.Context, w *workload) error {
	for _, b := range []smallBlob{m.config, m.layer} {
		if err := w.pushBlob(ctx, repoManifests, bytes.NewReader(b.data), int64(len(b.data)), b.digest); err != nil {
			return err
		}
	}
	return nil
}

// putManifests pushes the manifest set's blobs (untimed), then its
// manifests, each PUT under its own tag.
func putManifests(ctx context.Context, w *workload) (float64, error) {
	m := newManifestSet(w.cfg.manifests, w.data.small[0])
	if err := m.pushBlobs(ctx, w); err != nil {
		return 0, err
	}
	w.manifests = m.digests
	return concurrently(ctx, len(m.bodies), w.cfg.clients, func(ctx context.Context, i int) error {
		return w.putManifest(ctx, repoManifests, tagFor(i), m.bodies[i])
	})
}

func tagFor(i int) string { return fmt.Sprintf("t%d", i) }

// listTags lists the manifests' tags cfg.lists times, one listing after
// another, and checks that each has them all.
func listTags(ctx context.Context, w *workload) (float64, error) {
	start := time.Now()
	for range w.cfg.lists {
		n, err := w.listTags(ctx, repoManifests)
		if err != nil {
			return 0, err
		}
		if n != len(w.manifests) {
			return 0, fmt.Errorf("tags list: %d tags, want %d", n, len(w.manifests))
		}
	}
	return rate(float64(w.cfg.lists), start), nil
}

func getManifests(ctx context.Context, w *workload) (float64, error) {
	if len(w.manifests) == 0 {
		return 0, fmt.Errorf("no manifests: the PUT step did not run")
	}
	return concurrently(ctx, len(w.manifests), w.cfg.clients, func(ctx context.Context, i int) error {
		return w.getManifest(ctx, repoManifests, tagFor(i), w.manifests[i])
	})
}

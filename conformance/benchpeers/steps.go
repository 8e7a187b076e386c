package main

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// A step is one measured part of the workload. run returns its rate, in
// unit, over the part it times; it returns an error, and no rate, when any
// answer was not what the protocol says, so that a fast wrong answer is
// never measured.
type step struct {
	name     string
	unit     string
	deadline time.Duration
	run      func(ctx context.Context, w *workload) (float64, error)
	large    bool // a push of the large blob, compared with the machine's ceiling
}

// Units. MB is 10^6 bytes, as the table counts them.
const (
	unitMBps = "MB/s"
	unitOps  = "ops/s"
)

// Repositories of the steps: each its own, so that a tag listing lists
// only the manifests step's tags.
const (
	repoBig       = "bench/big"
	repoOras      = "bench/oras"
	repoSmall     = "bench/small"
	repoManifests = "bench/manifests"
	repoSkopeo    = "bench/skopeo"
)

// workloadSteps is the fixed workload, in order: later steps read what
// earlier ones wrote. The oras and skopeo steps need their clients.
func workloadSteps(cfg config, bins binaries) []step {
	big := func(b int64) string {
		if b%(1<<30) == 0 {
			return fmt.Sprintf("%d GiB", b>>30)
		}
		return fmt.Sprintf("%d MiB", b>>20)
	}
	size := big(cfg.bigSize)
	steps := []step{
		{fmt.Sprintf("%s blob, POST + one PUT", size), unitMBps, 20 * time.Minute, pushMonolithic, true},
		{fmt.Sprintf("%s blob, %d PATCH chunks", size, cfg.chunks), unitMBps, 20 * time.Minute, pushChunked, true},
	}
	if bins.oras != "" {
		steps = append(steps,
			step{fmt.Sprintf("oras push, %s", size), unitMBps, 20 * time.Minute, orasPush(bins.oras), true},
			step{fmt.Sprintf("oras pull, %s", size), unitMBps, 20 * time.Minute, orasPull(bins.oras), false})
	}
	steps = append(steps,
		step{fmt.Sprintf("%d × %d KiB blobs push, %d clients", cfg.blobs, cfg.blobSize/kib, cfg.clients), unitOps, 10 * time.Minute, pushSmall, false},
		step{fmt.Sprintf("%d × %d KiB blobs pull, %d clients", cfg.blobs, cfg.blobSize/kib, cfg.clients), unitOps, 10 * time.Minute, pullSmall, false},
		step{fmt.Sprintf("%d manifest PUT + tag, %d clients", cfg.manifests, cfg.clients), unitOps, 10 * time.Minute, putManifests, false},
		step{fmt.Sprintf("tags list of %d tags", cfg.manifests), "lists/s", 5 * time.Minute, listTags, false},
		step{fmt.Sprintf("%d manifest GET by tag, %d clients", cfg.manifests, cfg.clients), unitOps, 10 * time.Minute, getManifests, false},
	)
	if bins.skopeo != "" {
		layers := fmt.Sprintf("%d × %d MiB layers", cfg.layers, cfg.layerSize/mib)
		steps = append(steps,
			step{"skopeo copy in, " + layers, unitMBps, 10 * time.Minute, skopeoIn(bins.skopeo), false},
			step{"skopeo copy out, " + layers, unitMBps, 10 * time.Minute, skopeoOut(bins.skopeo), false})
	}
	return steps
}

// workload is one server's session: its URL, the run's data, and what the
// steps learn on the way (the manifests' digests).
type workload struct {
	cfg       config
	data      *workloadData
	base      string
	client    *http.Client
	manifests []string // digest of the manifest tagged "t<i>"
}

func newWorkload(cfg config, data *workloadData, base string) *workload {
	return &workload{cfg: cfg, data: data, base: base, client: &http.Client{Transport: &http.Transport{
		// Enough idle connections for every client to keep its own; large
		// buffers so that the client's syscalls weigh little on a shared
		// machine, the same for every server.
		MaxIdleConnsPerHost: 4 * cfg.clients,
		WriteBufferSize:     256 * kib,
		ReadBufferSize:      256 * kib,
		DisableCompression:  true,
	}}}
}

func (w *workload) close() { w.client.CloseIdleConnections() }

// rate is n units over the time since start.
func rate(n float64, start time.Time) float64 { return n / time.Since(start).Seconds() }

const mediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"

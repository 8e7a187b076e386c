package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// config is the workload's sizes and counts. The defaults are issue 11's
// fixed workload; BENCH_SMALL=1 shrinks them for trying the harness out,
// and each BENCH_* variable overrides one of them.
type config struct {
	rounds    int      // BENCH_ROUNDS: each server is started this many times
	bigSize   int64    // BENCH_BIG_MIB: bytes of each large blob
	chunks    int      // BENCH_CHUNKS: PATCHes of the chunked push
	blobs     int      // BENCH_BLOBS: small blobs pushed, then pulled
	blobSize  int      // BENCH_BLOB_KIB: bytes of each small blob
	manifests int      // BENCH_MANIFESTS: manifests PUT with a tag each, then got by tag
	lists     int      // BENCH_LISTS: full tag listings, one after another
	clients   int      // BENCH_CLIENTS: concurrent clients of the small steps
	layers    int      // BENCH_LAYERS: layers of the image skopeo copies
	layerSize int      // BENCH_LAYER_MIB: bytes of each layer
	replicas  []int    // BENCH_REPLICAS: artifactstore replicas of the scaling run (with BENCH_POSTGRES)
	postgres  string   // BENCH_POSTGRES: a PostgreSQL server; artifactstore is measured on it too
	servers   []string // BENCH_SERVERS: measure only these targets (names as in the table)
	dir       string   // BENCH_DIR: where data directories and generated files go (default: the temp dir)
}

const (
	kib = 1 << 10
	mib = 1 << 20
)

// loadConfig reads the BENCH_* variables through getenv.
func loadConfig(getenv func(string) string) (config, error) {
	c := config{
		rounds: 3, bigSize: 1024 * mib, chunks: 64, blobs: 2000, blobSize: 4 * kib,
		manifests: 1000, lists: 20, clients: 8, layers: 5, layerSize: 20 * mib,
		replicas: []int{1, 2, 4},
		postgres: getenv("BENCH_POSTGRES"),
		dir:      getenv("BENCH_DIR"),
	}
	if getenv("BENCH_SMALL") == "1" {
		c.bigSize, c.chunks, c.blobs, c.manifests, c.lists, c.layerSize = 16*mib, 8, 200, 100, 5, 1*mib
	}
	if c.dir == "" {
		c.dir = os.TempDir()
	}
	ints := []struct {
		name  string
		unit  int64
		dst   func(int64)
		floor int64
	}{
		{"BENCH_ROUNDS", 1, func(v int64) { c.rounds = int(v) }, 1},
		{"BENCH_BIG_MIB", mib, func(v int64) { c.bigSize = v }, mib},
		{"BENCH_CHUNKS", 1, func(v int64) { c.chunks = int(v) }, 1},
		{"BENCH_BLOBS", 1, func(v int64) { c.blobs = int(v) }, 1},
		{"BENCH_BLOB_KIB", kib, func(v int64) { c.blobSize = int(v) }, kib},
		{"BENCH_MANIFESTS", 1, func(v int64) { c.manifests = int(v) }, 1},
		{"BENCH_LISTS", 1, func(v int64) { c.lists = int(v) }, 1},
		{"BENCH_CLIENTS", 1, func(v int64) { c.clients = int(v) }, 1},
		{"BENCH_LAYERS", 1, func(v int64) { c.layers = int(v) }, 1},
		{"BENCH_LAYER_MIB", mib, func(v int64) { c.layerSize = int(v) }, mib},
	}
	for _, v := range ints {
		s := getenv(v.name)
		if s == "" {
			continue
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n*v.unit < v.floor || n > 1<<20 {
			return c, fmt.Errorf("%s=%q: want a whole number of at least %d", v.name, s, v.floor/v.unit)
		}
		v.dst(n * v.unit)
	}
	if s := getenv("BENCH_REPLICAS"); s != "" {
		c.replicas = nil
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 || n > 16 {
				return c, fmt.Errorf("BENCH_REPLICAS=%q: want replica counts from 1 to 16, comma-separated, e.g. 1,2,4", s)
			}
			c.replicas = append(c.replicas, n)
		}
	}
	if s := getenv("BENCH_SERVERS"); s != "" {
		c.servers = strings.Split(s, ",")
	}
	if int64(c.chunks) > c.bigSize {
		return c, fmt.Errorf("BENCH_CHUNKS=%d: more chunks than bytes in the large blob", c.chunks)
	}
	return c, nil
}

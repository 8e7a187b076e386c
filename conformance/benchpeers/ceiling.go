package main

import (
	"crypto/sha256"
	"fmt"
	"hash"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/artifact-store/artifact-store/blobstore"
	"github.com/zeebo/blake3"
)

// The issue asks large pushes to come within 80% of what the disk and the
// two hashes allow on the machine. ceiling measures those three rates, each
// alone, before the rounds: SHA-256 and BLAKE3 over 1 MiB writes in memory
// (the implementations the server uses), and the disk as a large push
// meets it: 1 MiB direct-I/O writes into the data directory's filesystem,
// then one fsync. A push cannot beat the slowest of the three; with
// client and server on the same CPUs it cannot reach it either, so the
// fraction is an upper bound's share, not a target of 1.
type ceiling struct {
	sha256, blake3, disk float64 // MB/s
	err                  error
}

// ceilingBytes is how much each measurement streams: long enough to
// leave the disk's write cache and the CPU's boost behind.
const ceilingBytes = 512 * mib

func measureCeiling(dir string) ceiling {
	buf := blobstore.AlignedBuffer(mib)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	c := ceiling{
		sha256: hashRate(sha256.New(), buf),
		blake3: hashRate(blake3.New(), buf),
	}
	c.disk, c.err = diskRate(dir, buf)
	return c
}

func hashRate(h hash.Hash, buf []byte) float64 {
	start := time.Now()
	for n := 0; n < ceilingBytes; n += len(buf) {
		h.Write(buf)
	}
	h.Sum(nil)
	return rate(ceilingBytes/1e6, start)
}

func diskRate(dir string, buf []byte) (float64, error) {
	f, err := os.CreateTemp(dir, "ceiling-")
	if err != nil {
		return 0, err
	}
	name := f.Name()
	f.Close()
	defer os.Remove(name)
	f, err = os.OpenFile(name, os.O_WRONLY|oDirect, 0)
	if err != nil {
		return 0, fmt.Errorf("open %s for direct I/O: %w", filepath.Base(name), err)
	}
	defer f.Close()
	start := time.Now()
	for n := 0; n < ceilingBytes; n += len(buf) {
		if _, err := f.Write(buf); err != nil {
			return 0, err
		}
	}
	if err := f.Sync(); err != nil {
		return 0, err
	}
	return rate(ceilingBytes/1e6, start), nil
}

func (c ceiling) limit() float64 { return min(c.sha256, c.blake3, c.disk) }

// render is the report's section on the ceiling: the three rates, and
// each server's large pushes as a share of the slowest.
func (c ceiling) render(r *results, steps []step) string {
	var b strings.Builder
	b.WriteString("\n## Large pushes against the machine's ceiling\n\n")
	if c.err != nil {
		fmt.Fprintf(&b, "Not measured: %v\n", c.err)
		return b.String()
	}
	fmt.Fprintf(&b, "Alone, each on one CPU: SHA-256 %s MB/s, BLAKE3 %s MB/s, the disk (direct I/O, then fsync) %s MB/s; "+
		"a push cannot go faster than the slowest, %s MB/s. Client and server share the CPUs here, so no server reaches it.\n\n",
		number(c.sha256), number(c.blake3), number(c.disk), number(c.limit()))
	b.WriteString("| step")
	for _, t := range r.targets {
		b.WriteString(" | " + t.name)
	}
	b.WriteString(" |\n|---" + strings.Repeat("|--:", len(r.targets)) + "|\n")
	for _, s := range steps {
		if !s.large {
			continue
		}
		b.WriteString("| " + s.name)
		for _, t := range r.targets {
			m := median(r.rates[cellKey{t.name, s.name}])
			b.WriteString(" | " + ratio(m, c.limit()))
		}
		b.WriteString(" |\n")
	}
	return b.String()
}

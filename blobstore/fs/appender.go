package fs

import (
	"errors"
	"io"
	"os"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/artifact-store/artifact-store/blobstore"
)

// Direct I/O. A buffered write(2) copies every byte into the page cache
// and the kernel later writes it back; on the machines this registry was
// measured on that copy was most of a large push's CPU, and writeback
// throttling capped it near 250 MB/s where the disk takes 1.2 GB/s. So an
// append writes whole aligned blocks through a second descriptor opened
// with O_DIRECT, from the Store's aligned buffers, and only what is left
// (a chunk's unaligned head or tail) through the page cache. Both reach
// the same file; the fsync that ends the append covers both.
//
// The trade-off: what was written directly is not in the page cache, so
// the first pull of it reads the disk, which on the machines measured was
// a third of the speed of a cached read (300 vs 1,000 MB/s). Pushes are
// often followed by pulls, so the first Options.CacheFirst bytes of every
// upload (32 MiB) go through the page cache: most layers and every
// manifest stay cached, and direct I/O takes over where the per-byte cost
// is what limits a push.
//
// Buffered writes go to the kernel in pieces of at most bufferedWriteMax.
// On virtual machines whose balloon reports free memory back to the host
// (Firecracker, QEMU's virtio-balloon with free page reporting, here in
// blocks of 2 MiB), the kernel backs a 1 MiB write(2) with memory the host
// has taken back, and the copy into it pays a host fault for every page;
// smaller writes are served from memory the guest still holds. Measured
// on such a machine (dd of 1 GiB into ext4, after its free memory had
// settled): 1.1 s of system CPU with 1 MiB writes, 0.21-0.33 s with any
// size from 32 to 512 KiB; in make bench-peers, the server's CPU for
// skopeo's 100 MiB copy in went from 0.71 to 0.33 s. Elsewhere the pieces
// cost a syscall per 256 KiB.
//
// Where O_DIRECT is refused (tmpfs, some network filesystems) or a direct
// write fails with EINVAL (alignment the device does not accept), the
// append goes on buffered: direct I/O is a speed-up, never a requirement.

// bufferedWriteMax is the most one buffered write(2) is given (see above).
const bufferedWriteMax = 256 << 10

// writeBuffered writes p to f, buffered, in pieces of bufferedWriteMax.
func writeBuffered(f io.Writer, p []byte) error {
	for len(p) > 0 {
		n, err := f.Write(p[:min(len(p), bufferedWriteMax)])
		if err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}

// appender writes an upload's new bytes at its end. It is an io.Writer
// that never returns a short write without an error.
type appender struct {
	f      File // the ordinary descriptor, positioned at the end
	direct File // opened with O_DIRECT, or nil
	pos    int64
	dpos   int64 // where direct's own offset is
	fpos   int64 // where f's own offset is
	cached int64 // bytes from the upload's start that stay buffered
	stats  *atomic.Int64
}

// newAppender prepares appends to the file at path, open as f, at offset.
func (b *Backend) newAppender(path string, f File, offset int64) *appender {
	a := &appender{f: f, pos: offset, dpos: -1, fpos: -1, cached: b.cacheFirst, stats: &b.directBytes}
	if oDirect != 0 && !b.buffered {
		if d, err := b.openFile(path, os.O_WRONLY|oDirect, 0); err == nil {
			a.direct = d
		}
	}
	return a
}

func (a *appender) close() {
	if a.direct != nil {
		a.direct.Close()
	}
}

// Write implements io.Writer.
func (a *appender) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		n := len(p)
		w, pos := a.f, &a.fpos
		switch off := a.pos % blobstore.BufferAlign; {
		case a.direct == nil:
		case a.pos < a.cached:
			n = min(n, int(a.cached-a.pos))
		case off != 0:
			// Buffered up to the next block, so that the buffers after
			// this one, aligned in memory, are aligned in the file too.
			n = min(n, int(blobstore.BufferAlign-off))
		case aligned(p) && len(p) >= blobstore.BufferAlign:
			n = len(p) &^ (blobstore.BufferAlign - 1)
			w, pos = a.direct, &a.dpos
		}
		if w == a.f {
			n = min(n, bufferedWriteMax)
		}
		if *pos != a.pos {
			if _, err := w.Seek(a.pos, io.SeekStart); err != nil {
				return written, err
			}
		}
		m, err := w.Write(p[:n])
		if w == a.direct {
			a.stats.Add(int64(max(m, 0)))
		}
		a.pos += int64(max(m, 0))
		*pos = a.pos
		written += max(m, 0)
		p = p[max(m, 0):]
		if err != nil && w == a.direct && errors.Is(err, syscall.EINVAL) {
			a.direct.Close() // not for this device after all: go on buffered
			a.direct = nil
			continue
		}
		if err != nil {
			return written, err
		}
	}
	return written, nil
}

func aligned(p []byte) bool {
	return uintptr(unsafe.Pointer(unsafe.SliceData(p)))&(blobstore.BufferAlign-1) == 0
}

package fs

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// oDirect opens a file for direct I/O: writes go from the caller's memory
// to the device without a copy into the page cache.
const oDirect = syscall.O_DIRECT

// directFile is a blob opened with O_DIRECT (read_direct.go).
type directFile struct{ f *os.File }

// ReadBlocks implements blobstore.BlockReader with pread(2) directly:
// os.File.ReadAt would go on reading after a short read at the end, at an
// offset direct I/O refuses.
func (d directFile) ReadBlocks(p []byte, off int64) (int, error) {
	rc, err := d.f.SyscallConn()
	if err != nil {
		return 0, err
	}
	n := 0
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		for n < len(p) {
			m, err := syscall.Pread(int(fd), p[n:], off+int64(n))
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			if err != nil {
				rerr = fmt.Errorf("direct read at %d: %w", off+int64(n), err)
				return true
			}
			if m == 0 || m%blockSize != 0 {
				n += m
				return true // the end of the file
			}
			n += m
		}
		return true
	})
	if rerr != nil {
		return n, rerr
	}
	return n, err
}

func (d directFile) Close() error { return d.f.Close() }

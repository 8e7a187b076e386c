//go:build !linux

package fs

import (
	"errors"
	"os"
)

// oDirect is 0 where direct I/O is not used: every write is buffered.
const oDirect = 0

// directFile is never opened where oDirect is 0 (read_direct.go).
type directFile struct{ f *os.File }

func (d directFile) ReadBlocks([]byte, int64) (int, error) { return 0, errors.ErrUnsupported }

func (d directFile) Close() error { return d.f.Close() }

//go:build !unix

package fs

import (
	"errors"
	"syscall"
)

// isNoSpace reports whether err says the filesystem is full.
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC)
}

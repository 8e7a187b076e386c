//go:build unix

package main

import (
	"log/slog"
	"syscall"
)

// connectionBound is --max-connections, lowered to half the process's
// descriptor limit when above it (Go raises the soft limit to the hard
// one at start): the other half stays for blob files, the database and
// the listener, so that the bound is reached before accept fails with
// EMFILE and refuses everyone.
func connectionBound(flag int, logger *slog.Logger) int {
	var lim syscall.Rlimit
	if flag == 0 {
		return 0
	}
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return flag
	}
	half := int(min(lim.Cur/2, 1<<30))
	if flag > half {
		logger.Info("--max-connections lowered to half the descriptor limit", "max-connections", half, "descriptor limit", lim.Cur)
		return half
	}
	return flag
}

//go:build !linux

package fs

// oDirect is 0 where direct I/O is not used: every write is buffered.
const oDirect = 0

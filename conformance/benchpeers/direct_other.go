//go:build !linux

package main

// oDirect is 0 where there is no direct I/O: the ceiling's disk rate is
// then a buffered write and its fsync.
const oDirect = 0

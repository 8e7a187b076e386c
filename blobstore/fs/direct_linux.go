package fs

import "syscall"

// oDirect opens a file for direct I/O: writes go from the caller's memory
// to the device without a copy into the page cache.
const oDirect = syscall.O_DIRECT
